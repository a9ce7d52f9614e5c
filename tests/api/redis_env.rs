//! Whether a Redis test runs, and Redis servers a test owns.
//!
//! `CANCELGATE_TEST_REDIS_URL` set: run against it. Unset: the machine's Redis at
//! `redis://127.0.0.1:6379` when it answers; otherwise print a `skipped:` line and pass, except
//! under `CI`, where a Redis test that cannot run fails (as PostgreSQL tests do).
//! A test that must stop Redis starts its own [`OwnRedis`] on a free port: never the machine's.

use std::io::Write as _;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::postgres_env::in_ci;

pub const REDIS_URL_VAR: &str = "CANCELGATE_TEST_REDIS_URL";
const LOCAL_REDIS: &str = "redis://127.0.0.1:6379";

/// The shared Redis's URL, or `None` (after saying so) when Redis tests are skipped.
pub fn redis_url(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var(REDIS_URL_VAR)
        && !url.trim().is_empty()
    {
        return Some(url);
    }
    if TcpStream::connect_timeout(&"127.0.0.1:6379".parse().ok()?, Duration::from_millis(200)).is_ok() {
        return Some(LOCAL_REDIS.to_owned());
    }
    assert!(!in_ci(), "CI is set but no Redis answers at 127.0.0.1:6379 (or {REDIS_URL_VAR}): {test} must run in CI");
    let _ = writeln!(std::io::stderr(), "skipped: redis::{test} (no Redis at 127.0.0.1:6379; set {REDIS_URL_VAR})");
    None
}

/// A key prefix no other test (or test run) uses, so tests sharing one Redis share no quota.
pub fn unique_prefix(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("cgtest:{test}:{}:{}:{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A `redis-server` of the test's own, on a free port, keeping nothing on disk. Killed on drop.
#[derive(Debug)]
pub struct OwnRedis {
    child: Option<Child>,
    pub port: u16,
}

impl OwnRedis {
    /// `None` (after saying so) where `redis-server` is not installed, except under CI.
    pub fn start(test: &str) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut redis = Self { child: None, port };
        if !redis.spawn() {
            assert!(!in_ci(), "CI is set but redis-server cannot be started: {test} must run in CI");
            let _ = writeln!(std::io::stderr(), "skipped: redis::{test} (no redis-server on the PATH)");
            return None;
        }
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// kill -9: the server is gone at once, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
