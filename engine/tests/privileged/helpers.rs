use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::Duration;

use acetate_engine::testing::{leftovers, root_or_skip, shared_state_dir, unique_name};
use acetate_engine::{ContainerSpec, ContainerSpecBuilder, Engine, ExecIo};

pub static ENGINE: OnceLock<Engine> = OnceLock::new();

/// The engine on the shared test state dir, or `None` when not root outside CI.
pub fn engine(test: &str) -> Option<&'static Engine> {
    if !root_or_skip(test) {
        return None;
    }
    Some(ENGINE.get_or_init(|| {
        let engine = Engine::open(shared_state_dir("engine")).unwrap();
        // A `host` template kept from an older build is made again (while unused).
        engine.ensure_host_template().unwrap();
        engine
    }))
}

/// An engine on a state dir of its own (`/var/tmp/acetate-tests/<suite>`, kept across runs
/// like the shared one, with the `host` template), for tests that must not see or touch
/// other tests' containers.
pub fn engine_of(suite: &str) -> &'static Engine {
    let dir = std::path::PathBuf::from("/var/tmp/acetate-tests").join(suite);
    std::fs::create_dir_all(&dir).unwrap();
    Box::leak(Box::new(acetate_engine::testing::open_test_engine(&dir)))
}

/// A container destroyed (and checked for leftovers) when dropped.
pub struct Ct {
    pub engine: &'static Engine,
    pub name: String,
}

impl Ct {
    /// Creates and starts a container named after `tag` with the limits of `spec`.
    pub fn started(
        engine: &'static Engine,
        tag: &str,
        spec: impl FnOnce(ContainerSpecBuilder) -> ContainerSpecBuilder,
    ) -> Ct {
        let ct = Ct::created(engine, tag, spec);
        let info = engine.start(&ct.name).expect("start");
        // A booting systemd cleans /tmp and starts services: tests begin once it is done.
        if info.init == acetate_engine::spec::Init::Systemd {
            ct.booted();
        }
        ct
    }

    pub fn created(
        engine: &'static Engine,
        tag: &str,
        spec: impl FnOnce(ContainerSpecBuilder) -> ContainerSpecBuilder,
    ) -> Ct {
        let name = unique_name(tag);
        let spec = spec(ContainerSpec::builder(&name))
            .build()
            .expect("valid spec");
        engine.create(&spec).expect("create");
        Ct { engine, name }
    }

    /// Waits until the container's systemd has finished booting; its verdict (`running`
    /// when every unit came up).
    pub fn booted(&self) -> String {
        // Until systemd has made its socket, systemctl cannot reach it.
        let (_, out, err) = self.sh(
            "for i in $(seq 100); do test -S /run/systemd/private && break; sleep 0.1; done; \
             timeout 120 systemctl is-system-running --wait",
        );
        assert!(err.is_empty(), "systemctl: {err}");
        out.trim().to_string()
    }

    /// Runs a shell script inside; returns (exit code, stdout, stderr).
    pub fn sh(&self, script: &str) -> (i32, String, String) {
        self.run_with_stdin(&["sh", "-c", script], b"")
    }

    pub fn run_with_stdin(&self, argv: &[&str], stdin: &[u8]) -> (i32, String, String) {
        let mut input = tempfile::tempfile().unwrap();
        input.write_all(stdin).unwrap();
        input.rewind().unwrap();
        let mut out = tempfile::tempfile().unwrap();
        let mut err = tempfile::tempfile().unwrap();
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let code = self
            .engine
            .exec(
                &self.name,
                &argv,
                &[],
                ExecIo {
                    stdin: Some(input.as_raw_fd()),
                    stdout: Some(out.as_raw_fd()),
                    stderr: Some(err.as_raw_fd()),
                    tty: false,
                },
            )
            .expect("exec");
        (code, read_all(&mut out), read_all(&mut err))
    }
}

fn read_all(f: &mut File) -> String {
    let mut s = String::new();
    f.rewind().unwrap();
    f.read_to_string(&mut s).unwrap();
    s
}

impl Drop for Ct {
    fn drop(&mut self) {
        let result = self.engine.destroy(&self.name, Duration::from_secs(2));
        if std::thread::panicking() {
            return;
        }
        result.expect("destroy");
        let left = leftovers(self.engine.layout(), &self.name);
        assert!(left.is_empty(), "destroy left behind: {left:?}");
    }
}
