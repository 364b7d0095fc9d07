use std::path::PathBuf;
use std::process::{Command, Output};

use acetate_engine::testing::{root_or_skip, shared_state_dir};

/// The state dir for CLI tests, or `None` when not root outside CI.
pub fn state_dir(test: &str) -> Option<PathBuf> {
    root_or_skip(test).then(|| shared_state_dir("e2e"))
}

/// Whether Debian's mmdebstrap is there for `test` (template builds); outside CI a test
/// without it is skipped, saying so; in CI it fails.
pub fn has_mmdebstrap(test: &str) -> bool {
    if std::path::Path::new("/usr/bin/mmdebstrap").exists() {
        return true;
    }
    assert!(
        !acetate_engine::testing::in_ci(),
        "{test} needs mmdebstrap: scripts/setup installs it"
    );
    eprintln!("SKIPPED {test}: mmdebstrap is not installed");
    false
}

/// Runs `acetate --state-dir DIR ARGS...`.
pub fn acetate(state: &PathBuf, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acetate"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .expect("run acetate")
}

/// Runs acetate and returns stdout, failing the test on a non-zero exit.
pub fn ok(state: &PathBuf, args: &[&str]) -> String {
    let out = acetate(state, args);
    assert!(
        out.status.success(),
        "acetate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The engine's names of the panel containers of customer `owner`.
pub fn engine_names_of(state: &PathBuf, owner: &str) -> Vec<String> {
    let list: serde_json::Value =
        serde_json::from_str(&ok(state, &["ct", "list", "--json"])).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|c| c["owner"] == format!("panel:{owner}").as_str())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// The engine's name of the panel container of customer `owner` (its only one).
pub fn engine_name_of(state: &PathBuf, owner: &str) -> String {
    engine_names_of(state, owner)
        .pop()
        .unwrap_or_else(|| panic!("the engine has no container of {owner}"))
}

/// The address of the panel container of customer `owner` (its only one) in the engine.
pub fn engine_address(state: &PathBuf, owner: &str) -> String {
    let name = engine_name_of(state, owner);
    let shown: serde_json::Value =
        serde_json::from_str(&ok(state, &["ct", "show", &name, "--json"])).unwrap();
    shown["network"]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has no address: {shown}"))
        .to_string()
}

/// Runs acetate expecting failure; returns (exit code, stderr).
pub fn fails(state: &PathBuf, args: &[&str]) -> (i32, String) {
    let out = acetate(state, args);
    assert!(!out.status.success(), "acetate {args:?} should have failed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A state dir of a test's own under /var/tmp: when dropped, every container in it is
/// destroyed first (a test that failed half-way would leave them running, their loop
/// devices attached), then the parent cgroups its engine made, then the directory.
pub struct OwnState {
    dir: tempfile::TempDir,
}

impl OwnState {
    /// A new state dir on a test network of its own (never the host's `acetate0`).
    pub fn new() -> OwnState {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        acetate_engine::testing::open_on_test_network(dir.path());
        OwnState { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for OwnState {
    fn drop(&mut self) {
        let state = self.path();
        let listed = acetate(&state, &["ct", "list", "--json"]);
        let list: serde_json::Value =
            serde_json::from_slice(&listed.stdout).unwrap_or(serde_json::Value::Null);
        for c in list.as_array().into_iter().flatten() {
            if let Some(name) = c["name"].as_str() {
                let _ = acetate(&state, &["ct", "destroy", name, "--timeout", "5"]);
            }
        }
        // Its bridge and nftables table, then its parent cgroups. Without `engine.json`
        // (a test that failed before its first command) it made none, and the stored
        // identity would name the host's real engine's.
        if state.join("engine.json").exists() {
            let _ = acetate(&state, &["net", "teardown"]);
            let parent = acetate_engine::identity::Identity::stored(&state).cgroup_parent();
            remove_cgroups(&parent);
        }
    }
}

/// Removes the cgroup directory `path` (relative to each hierarchy) and its parents up to
/// the hierarchy's root, deepest first, in every hierarchy, where they are empty.
pub fn remove_cgroups(path: &str) {
    for root in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let mut path = path;
        loop {
            let _ = std::fs::remove_dir(root.path().join(path));
            match path.rsplit_once('/') {
                Some((up, _)) => path = up,
                None => break,
            }
        }
    }
}

/// A running `acetate serve` on a port of its own, stopped (SIGTERM) when dropped; then
/// the containers its database holds are destroyed in the engine (the e2e state dir is
/// shared by every test and outlives the run), unless the test keeps them for a panel it
/// starts again on the same database ([`Server::stop_keeping`]).
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
    pub state: PathBuf,
    pub database: String,
    /// The SSH gateway's address (a port of its own on loopback).
    pub ssh: Option<String>,
    keep: bool,
    /// The SQLite database's directory, when the server made it (dropped after the clean-up).
    _db_dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start(state: &PathBuf, database: &str) -> Server {
        Server::start_on(state, database, "127.0.0.1:0")
    }

    /// Starts a server listening on `listen`.
    pub fn start_on(state: &PathBuf, database: &str, listen: &str) -> Server {
        Server::start_with(state, database, listen, &[])
    }

    /// Starts a server listening on `listen`, with more environment variables.
    pub fn start_with(
        state: &PathBuf,
        database: &str,
        listen: &str,
        env: &[(&str, &str)],
    ) -> Server {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_acetate"))
            .arg("--state-dir")
            .arg(state)
            .args(["--database", database, "serve", "--listen", listen])
            .env("ACETATE_ADMIN_PASSWORD", "provider-password-1")
            // Never the default 0.0.0.0:2222: tests run beside each other and a real panel.
            .env("ACETATE_SSH_LISTEN", "127.0.0.1:0")
            // Nor ports 80 and 443: the front door's test turns it on in its own namespace.
            .env("ACETATE_FRONT_HTTP", "off")
            .env("ACETATE_FRONT_HTTPS", "off")
            // Quiet unless asked: `serve` logs every request at info.
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start acetate serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut ssh = None;
        let base = loop {
            let line = lines
                .next()
                .expect("acetate serve exited before listening")
                .unwrap();
            if let Some(addr) = line.strip_prefix("acetate: ssh on ") {
                ssh = Some(addr.to_string());
            }
            if let Some(addr) = line.strip_prefix("acetate: listening on ") {
                break addr.to_string();
            }
        };
        Server {
            child,
            base,
            state: state.clone(),
            database: database.to_string(),
            ssh,
            keep: false,
            _db_dir: None,
        }
    }

    /// A server on a fresh SQLite database of its own (removed with the server).
    pub fn with_sqlite(state: &PathBuf) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}/panel.db?mode=rwc", dir.path().display());
        let mut server = Server::start(state, &db);
        server._db_dir = Some(dir);
        server
    }

    /// Runs an acetate CLI command against this server's database, with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        let out = with_database(&self.state, &self.database, args, stdin);
        assert!(
            out.status.success(),
            "acetate {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Adds a user and returns a new API token for it.
    pub fn user_with_token(&self, name: &str, role: &str, reseller: Option<&str>) -> String {
        let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
        if let Some(r) = reseller {
            args.extend(["--reseller", r]);
        }
        self.cli(&args, "a long enough password\n");
        self.cli(&["token", "create", name], "")
    }

    /// Stops the panel and destroys its containers: the end of a test.
    pub fn stop(self) {}

    /// Stops the panel only: its containers stay (the test checks them in the engine).
    pub fn stop_keeping(mut self) {
        self.keep = true;
    }

    /// Stops the panel and starts another on the same database and state dir; the
    /// containers stay, for the new panel (which destroys them when it stops).
    pub fn restart(mut self) -> Server {
        self.keep = true;
        self.terminate();
        let mut next = Server::start(&self.state, &self.database);
        next._db_dir = self._db_dir.take();
        next
    }

    fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }

    /// Destroys, in the engine, every container the panel's database names. A name that is
    /// gone already (the test destroyed it, or another panel on the same database did) is
    /// no error.
    fn destroy_containers(&self) {
        let url = self.database.clone();
        // Tests run in tokio runtimes: the database is read on a thread of its own.
        let names = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                acetate::db::Db::connect(&url)
                    .await?
                    .all_engine_names()
                    .await
            })
        })
        .join()
        .expect("read the panel's containers");
        let names = match names {
            Ok(names) => names,
            Err(e) => {
                eprintln!("the panel's containers are not destroyed: {e}");
                return;
            }
        };
        for name in names {
            let out = acetate(&self.state, &["ct", "destroy", &name, "--timeout", "5"]);
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() && !err.contains("no such container") {
                eprintln!("destroy {name} after the test: {err}");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate();
        }
        if !self.keep {
            self.destroy_containers();
        }
    }
}

/// A private PostgreSQL server for one test: its own data dir, loopback, a free port,
/// trust authentication. Stopped and removed when dropped.
pub struct Postgres {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    pub url: String,
}

impl Postgres {
    /// Starts one; `None` outside CI when PostgreSQL is not installed (in CI: panics).
    pub fn start(test: &str) -> Option<Postgres> {
        use std::os::unix::process::CommandExt;
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .find(|b| b.join("postgres").exists())
        });
        let Some(bin) = bin else {
            if acetate_engine::testing::in_ci() {
                panic!("{test} needs PostgreSQL: scripts/setup installs it");
            }
            eprintln!("SKIPPED {test}: PostgreSQL is not installed");
            return None;
        };
        let id = |flag: &str| -> u32 {
            let out = Command::new("id")
                .args([flag, "postgres"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("a postgres user")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        let data = dir.path().join("data");
        let out = Command::new(bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .uid(uid)
            .gid(gid)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pg = Postgres {
            child,
            _dir: dir,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        };
        for _ in 0..200 {
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Some(pg);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("PostgreSQL did not become ready");
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child; SIGINT is PostgreSQL's fast shutdown.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

/// The current month as YYYY-MM (UTC), computed here independently of the panel's code.
pub fn current_period() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let z = secs / 86_400 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}

/// Runs `acetate --state-dir STATE --database DATABASE ARGS...` with `stdin`.
pub fn with_database(state: &PathBuf, database: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_acetate"))
        .arg("--state-dir")
        .arg(state)
        .args(["--database", database])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run acetate");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
