//! A PostgreSQL server of the test's own, for tests that stop the database: never the
//! machine's (`CANCELGATE_TEST_POSTGRES_URL`), which other tests share.
//!
//! `initdb` into a temp dir, `pg_ctl start` on a free port of 127.0.0.1 (socket in the same
//! dir), trust authentication, `fsync` off (it is thrown away). PostgreSQL refuses to run as
//! root, so as root every command runs as the `postgres` OS user (`runuser`). Dropped: stopped
//! (`immediate`) and deleted.
//!
//! ```ignore
//! let Some(pg) = OwnPostgres::start("my_test") else { return };  // skipped without PostgreSQL
//! let url = pg.url();          // postgres://postgres@127.0.0.1:<port>/postgres
//! pg.stop_immediately();       // pg_ctl -m immediate stop: the server dies, clients see it
//! pg.start_again();            // same data, same port
//! ```
//!
//! Without the binaries (`/usr/lib/postgresql/<version>/bin`, or `CANCELGATE_TEST_PG_BIN`) the
//! test is skipped with a `skipped:` line, except under `CI`, where it fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::postgres_env::in_ci;

/// Where to look for `initdb` and `pg_ctl`, newest first.
const BIN_DIRS: &[&str] = &["/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"];

#[derive(Debug)]
pub struct OwnPostgres {
    bin: PathBuf,
    /// Holds `data/` (the cluster), the socket and `server.log`; owned by the server's user.
    dir: tempfile::TempDir,
    port: u16,
    /// `Some("postgres")` when running as root.
    run_as: Option<&'static str>,
}

impl OwnPostgres {
    /// A fresh server, started; `None` (after saying so) when the test is to be skipped.
    pub fn start(test: &str) -> Option<OwnPostgres> {
        let Some(bin) = find_bin() else {
            let message = format!("no PostgreSQL binaries (initdb, pg_ctl) in {BIN_DIRS:?} or CANCELGATE_TEST_PG_BIN");
            assert!(!in_ci(), "CI is set: {test} must run, but {message}");
            let _ = writeln!(std::io::stderr(), "skipped: {test} ({message})");
            return None;
        };
        let run_as = is_root().then_some("postgres");
        let dir = tempfile::Builder::new().prefix("cg-own-pg-").tempdir().expect("a temp dir");
        if let Some(user) = run_as {
            let status = Command::new("chown").arg(user).arg(dir.path()).status().expect("chown runs");
            assert!(status.success(), "chown {user} {}", dir.path().display());
        }
        let mut pg = OwnPostgres { bin, dir, port: 0, run_as };
        let data = pg.data_dir();
        pg.run("initdb", &["-D", path_str(&data), "-U", "postgres", "-A", "trust", "--no-sync", "--no-instructions"]);
        // A few tries: the free port picked may be taken by someone else before the server binds it.
        for _ in 0..5 {
            pg.port = free_port();
            if pg.try_start() {
                return Some(pg);
            }
        }
        panic!("own PostgreSQL did not start; its log:\n{}", pg.log());
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres` (trust: any password is accepted).
    #[allow(dead_code)] // The helper's plain API; this crate's tests so far want a password in it.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The same, with a password in it (ignored by trust authentication): for tests that check
    /// the URL's secret never shows.
    pub fn url_with_password(&self, password: &str) -> String {
        format!("postgres://postgres:{password}@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl -m immediate stop`: the server and its backends die at once, without a checkpoint
    /// (as on a crash); connections are cut and new ones refused.
    pub fn stop_immediately(&self) {
        let out = self.run_raw("pg_ctl", &["-D", path_str(&self.data_dir()), "-m", "immediate", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the stopped server again, same data and port.
    pub fn start_again(&self) {
        assert!(self.try_start(), "own PostgreSQL did not start again; its log:\n{}", self.log());
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn try_start(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let data = self.data_dir();
        let args = ["-D", path_str(&data), "-l", path_str(&log), "-o", &options, "-w", "-t", "30", "start"];
        self.run_raw("pg_ctl", &args).status.success()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.run_raw(tool, args);
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn run_raw(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        // The server's cwd must be readable by its user (the test's may not be).
        command.args(args).current_dir(self.dir.path()).output().unwrap_or_else(|e| panic!("{tool}: {e}"))
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        // Whether it runs or not; the temp dir goes with it.
        let _ = self.run_raw("pg_ctl", &["-D", path_str(&self.data_dir()), "-m", "immediate", "-w", "stop"]);
    }
}

fn find_bin() -> Option<PathBuf> {
    let from_env = std::env::var_os("CANCELGATE_TEST_PG_BIN").map(PathBuf::from);
    from_env.into_iter().chain(BIN_DIRS.iter().map(PathBuf::from)).find(|dir| dir.join("initdb").is_file())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}
