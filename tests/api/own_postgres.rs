//! A PostgreSQL server of the test's own, for tests that stop, kill or freeze the ledger's
//! database: never the machine's shared server (other tests use it at the same time).
//!
//! [`OwnPostgres::start`] runs `initdb` and `pg_ctl start` in a fresh temporary directory, on a
//! free port of 127.0.0.1 (trust authentication, user `postgres`, database `postgres`, `fsync`
//! off: the tests kill it, they do not test its durability). As root the server runs as the
//! `postgres` system user (`runuser`), because PostgreSQL refuses to run as root. Dropping it
//! stops the server (`-m immediate`), kills what is left of it by pid, and removes the directory.
//!
//! Without PostgreSQL's server binaries the test is skipped (a `skipped:` line), except under
//! `CI`, where it fails: the same rule as `postgres_env`.
//!
//! ```ignore
//! let Some(pg) = OwnPostgres::start("my_test") else { return };
//! let url = pg.url();            // postgres://postgres@127.0.0.1:<port>/postgres
//! let url = pg.url_with_password("pw"); // the same, with a password (trust ignores it)
//! pg.kill_postmaster();          // kill -9 of the postmaster (its backends notice and exit)
//! pg.stop_immediate();           // pg_ctl -m immediate stop (SIGQUIT: every backend at once)
//! pg.freeze(); pg.thaw();        // SIGSTOP / SIGCONT of every process of the server: it hangs
//! pg.start_again();              // the same data directory, the same port
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::postgres_env::in_ci;

/// A running PostgreSQL server owned by one test.
#[derive(Debug)]
pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// `Some(user)` when the server runs as another user (we are root).
    run_as: Option<&'static str>,
    /// Processes of a server whose postmaster was killed: they must be gone before it restarts
    /// (they hold its shared memory).
    orphans: std::sync::Mutex<Vec<u32>>,
}

impl OwnPostgres {
    /// Initializes and starts a server; `None` (after saying so) when PostgreSQL's binaries are
    /// not installed and the test may be skipped.
    pub fn start(test: &str) -> Option<OwnPostgres> {
        let Some(bin) = server_bin_dir() else {
            assert!(!in_ci(), "CI is set but no PostgreSQL server binaries (initdb, pg_ctl) are installed: {test}");
            let _ = writeln!(std::io::stderr(), "skipped: {test} (no PostgreSQL server binaries to start one)");
            return None;
        };
        let run_as = is_root().then_some("postgres");
        let dir = tempfile::Builder::new().prefix("cg_own_pg_").tempdir().expect("temp dir");
        if let Some(user) = run_as {
            // The server's user must own its directory (the data directory is created inside).
            let status = Command::new("chown").args([user, &dir.path().display().to_string()]).status().unwrap();
            assert!(status.success(), "chown {user} {}", dir.path().display());
        }
        let pg = OwnPostgres { bin, dir, port: free_port(), run_as, orphans: Default::default() };
        let data = pg.data_dir();
        pg.run_ok("initdb", &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
        pg.start_again();
        Some(pg)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The same, with a password in it (ignored by trust authentication): for tests that check
    /// the URL's secret never shows.
    pub fn url_with_password(&self, password: &str) -> String {
        format!("postgres://postgres:{password}@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's log so far.
    #[allow(dead_code, reason = "part of the helper's API, for a failing test's message")]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Starts the server (again) on the same data directory and port; waits until it accepts.
    pub fn start_again(&self) {
        let orphans = std::mem::take(&mut *self.orphans.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        reap(&orphans, Duration::from_secs(10));
        // `synchronous_commit` stays on: `fsync` off spares the disk, but a commit must still
        // reach the WAL before it is acknowledged, or a `-m immediate` stop loses committed
        // work (the last migrations applied at start, whose loss then reads as a gateway bug).
        let options = format!(
            "-p {} -h 127.0.0.1 -k {} -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run_ok("pg_ctl", &["-D", &self.data_dir(), "-l", &log, "-w", "-t", "30", "-o", &options, "start"]);
    }

    /// `pg_ctl -m immediate stop`: every server process quits at once, no checkpoint (a crash
    /// as far as the clients can tell; connections are refused from then on).
    pub fn stop_immediate(&self) {
        self.run_ok("pg_ctl", &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"]);
    }

    /// `kill -9` of the postmaster alone, as the probe did: new connections are refused, the
    /// backends notice their parent died and exit (a moment later: a query may still succeed
    /// meanwhile). [`OwnPostgres::start_again`] waits for them to be gone.
    #[allow(dead_code, reason = "part of the helper's API for the ledger-outage tests; unused here")]
    pub fn kill_postmaster(&self) {
        let pids = self.server_pids();
        let pid = *pids.first().expect("the server runs");
        self.orphans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(pids);
        signal(pid, "KILL");
    }

    /// SIGSTOP to every process of the server: connections stay open and nothing answers, like
    /// a database host that stopped responding.
    pub fn freeze(&self) {
        for pid in self.server_pids() {
            signal(pid, "STOP");
        }
    }

    /// SIGCONT to every process of the server (undoes [`OwnPostgres::freeze`]).
    pub fn thaw(&self) {
        for pid in self.server_pids() {
            signal(pid, "CONT");
        }
    }

    /// The postmaster's pid, from `postmaster.pid` (`None` when the server is not running).
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(Path::new(&self.data_dir()).join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The postmaster and its children (backends, background workers), by pid.
    fn server_pids(&self) -> Vec<u32> {
        let Some(postmaster) = self.postmaster_pid() else { return Vec::new() };
        let mut pids = vec![postmaster];
        let Ok(entries) = std::fs::read_dir("/proc") else { return pids };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // `pid (comm) state ppid …`: comm may hold spaces, so read after the last ')'.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        pids
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run_ok(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let output = command.args(args).current_dir(self.dir.path()).output().expect("PostgreSQL tool runs");
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        // Frozen processes cannot even quit.
        self.thaw();
        let mut pids = self.server_pids();
        pids.extend(self.orphans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..));
        let exe = self.bin.join("pg_ctl");
        let data = self.data_dir();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "-t", "10", "stop"];
        let _ = match self.run_as {
            Some(user) => Command::new("runuser").args(["-u", user, "--"]).arg(&exe).args(args).output(),
            None => Command::new(&exe).args(args).output(),
        };
        // After a kill -9 of the postmaster, pg_ctl finds nobody to stop, and orphaned backends
        // exit on their own: not before the directory is removed.
        reap(&pids, Duration::ZERO);
    }
}

/// Waits up to `grace` for `pids` to exit on their own, then kills what is left (by pid).
fn reap(pids: &[u32], grace: Duration) {
    let alive = |pid: &u32| Path::new(&format!("/proc/{pid}")).exists();
    let deadline = Instant::now() + grace;
    while pids.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in pids {
        while alive(pid) && Instant::now() < deadline {
            signal(*pid, "KILL");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ =
        Command::new("kill").args([format!("-{name}"), pid.to_string()]).stderr(std::process::Stdio::null()).status();
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`, else `pg_config --bindir`.
fn server_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some(bin)
}

/// A port nobody listens on right now (bound and released; another test picking the same one
/// in between is unlikely, and `pg_ctl start` would then fail loudly rather than share it).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}
