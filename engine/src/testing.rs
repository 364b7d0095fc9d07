//! Support for the privileged tests of the engine and the panel: a shared state directory
//! with the `host` template built once, the root check that fails in CI instead of
//! skipping, and a leak check that lists whatever a container left on the host.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::cgroup::ContainerCgroup;
use crate::store::Layout;
use crate::{mounts, storage, Engine};

/// Whether the tests run in CI (`CI=true`), where missing privileges are a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// True when this process is root. Outside CI a non-root run prints why the test does
/// nothing and returns false; in CI it panics, so that a privileged test never passes by
/// skipping.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if in_ci() {
        panic!("{test} needs root, and CI must run it: run the test suite as root");
    }
    eprintln!("SKIPPED {test}: needs root (run the suite as root; CI does)");
    false
}

struct Shared {
    dir: PathBuf,
    _lock: File,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The state dir shared by one test process: `/var/tmp/acetate-tests/<suite>`, locked for
/// the life of the process, with the `host` template (built on first use and kept across
/// runs) and no container left from an earlier, interrupted run.
pub fn shared_state_dir(suite: &str) -> PathBuf {
    SHARED
        .get_or_init(|| {
            let dir = PathBuf::from("/var/tmp/acetate-tests").join(suite);
            fs::create_dir_all(&dir).expect("create the test state dir");
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("test-run.lock"))
                .expect("open the test lock");
            // SAFETY: flock on our own descriptor.
            let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
            assert_eq!(rc, 0, "lock the test state dir");
            open_test_engine(&dir);
            Shared { dir, _lock: lock }
        })
        .dir
        .clone()
}

/// Opens the engine of the test state dir `dir`, with the `host` template and no container
/// left by an earlier, interrupted run, on a network of its own: `actest<slot>` and
/// 10.247.<8 x slot>.0/21, never the default `acetate0` that a real panel on the same host
/// uses (an engine's policy for tenants, SMTP and host ports, lives with its bridge).
pub fn open_test_engine(dir: &Path) -> Engine {
    let engine = Engine::open(dir).expect("open the engine");
    engine
        .ensure_host_template()
        .expect("build the host template");
    for c in engine.list().expect("list containers") {
        engine
            .destroy(&c.name, Duration::from_secs(1))
            .expect("remove a container left by an earlier run");
    }
    let engine = on_test_network(engine, dir);
    give_back_at_exit(dir);
    engine
}

/// The test state dirs whose networks go when the test process ends.
static TEST_NETWORKS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Takes the network of the test state dir `dir` down (its bridge and nftables table, as
/// `acetate net teardown` does) when this test process exits: a run then leaves nothing
/// of its own on the host's network. A dir with a running container keeps it (a failed
/// test's leftover, which the next run removes first).
fn give_back_at_exit(dir: &Path) {
    let mut dirs = TEST_NETWORKS.lock().unwrap_or_else(|e| e.into_inner());
    if dirs.is_empty() {
        // SAFETY: registers a function without arguments, run once as the process exits.
        unsafe { libc::atexit(give_back_networks) };
    }
    if !dirs.iter().any(|d| d == dir) {
        dirs.push(dir.to_path_buf());
    }
}

extern "C" fn give_back_networks() {
    // Nothing may unwind out of an exit handler.
    let _ = std::panic::catch_unwind(|| {
        let dirs = std::mem::take(&mut *TEST_NETWORKS.lock().unwrap_or_else(|e| e.into_inner()));
        for dir in dirs {
            if !dir.join("engine.json").exists() {
                continue;
            }
            let Ok(engine) = Engine::open(&dir) else {
                continue;
            };
            let busy = engine.list().map_or(true, |list| {
                list.iter().any(|c| c.state == crate::State::Running)
            });
            if !busy && !engine.identity().network().is_shared() {
                let _ = crate::firewall::teardown(&engine.identity().network());
            }
        }
    });
}

/// Opens the engine of the test state dir `dir` on its network of its own (see
/// [`open_test_engine`]), claiming it on first use (the dir must not have containers on
/// the shared network yet). For tests with a state dir of their own, before their first
/// command.
pub fn open_on_test_network(dir: &Path) -> Engine {
    on_test_network(Engine::open(dir).expect("open the engine"), dir)
}

/// `engine` (opened on `dir`), or the same engine opened again on its test network when it
/// is still on the shared one.
fn on_test_network(engine: Engine, dir: &Path) -> Engine {
    let slot = engine.identity().slot;
    if !engine.identity().network().is_shared() {
        return engine;
    }
    assert!(
        (1..32).contains(&slot),
        "the test state dir {} has slot {slot}: test networks exist for slots 1 to 31 \
         (remove the state dirs of earlier, interrupted test runs under /var/tmp)",
        dir.display()
    );
    let wanted = crate::identity::Wanted {
        bridge: Some(format!("actest{slot}")),
        subnet: Some(
            format!("10.247.{}.0/21", slot * 8)
                .parse()
                .expect("a subnet"),
        ),
        ..Default::default()
    };
    drop(engine);
    Engine::open_with(dir, &wanted).expect("give the test engine a network of its own")
}

/// Everything container `name` of `layout` left on the host: its directory, mounts under
/// it, loop devices on its image, cgroup directories. Empty means clean.
pub fn leftovers(layout: &Layout, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let dir = layout.container(name);
    if fs::symlink_metadata(&dir).is_ok() {
        found.push(format!("directory {}", dir.display()));
    }
    for m in mounts::mount_table().unwrap_or_default() {
        if m.mount_point.starts_with(&dir) {
            found.push(format!("mount {}", m.mount_point.display()));
        }
    }
    for dev in storage::loops_backed_by(&layout.image(name)) {
        found.push(format!("loop device {}", dev.display()));
    }
    let parent = crate::identity::Identity::stored(layout.root()).cgroup_parent();
    for p in ContainerCgroup::new(&parent, name).paths() {
        if p.exists() {
            found.push(format!("cgroup {}", p.display()));
        }
    }
    found
}

/// A unique container name for a test (`<tag>-<pid>`).
pub fn unique_name(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

/// Whether `path` is a mount point in this process's namespace.
pub fn is_mount_point(path: &Path) -> bool {
    mounts::mount_table()
        .map(|t| mounts::mount_at(&t, path).is_some())
        .unwrap_or(false)
}

/// The variable that names a crash point for tests: a process whose environment has
/// `ACETATE_CRASH_AT=<point>` kills itself with SIGKILL (as `kill -9` would: no unwinding,
/// no cleanup) when it reaches that point, proving that a crash there leaves nothing
/// blocked or half-made.
pub const CRASH_AT: &str = "ACETATE_CRASH_AT";

/// Kills the process if the test asked for a crash at `point`.
pub fn crash_point(point: &str) {
    if std::env::var_os(CRASH_AT).is_some_and(|v| v == point) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
}
