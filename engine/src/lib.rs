//! Acetate's container engine.
//!
//! A container is a thin overlay on a shared, read-only template: its writable layer lives
//! in its own sparse ext4 image on a loop device (disk blocks and inodes limited by the
//! filesystem), its processes run in new pid, mount, uts, ipc, net, cgroup and user
//! namespaces under a small init of ours, and its memory, CPU, process and I/O limits are
//! cgroup limits. The engine knows nothing of tenants, HTTP or SQL: it manages containers
//! by name under a state directory, and any number of processes may use it at once (each
//! container has a lock; containers outlive the process that started them).

pub mod backup;
mod boot;
pub mod capacity;
pub mod cgroup;
mod cpuset;
pub mod debian;
pub mod devices;
pub mod error;
pub mod export;
pub mod firewall;
mod fitting;
pub mod forward;
mod halts;
mod host_ops;
pub mod identity;
mod idmap;
mod inspect;
pub mod iostat;
mod live;
mod loopdev;
pub mod lxcfs;
pub mod mounts;
pub mod netconf;
mod netlink;
pub mod network;
mod nft;
mod recovery;
pub mod runtime;
pub mod security;
pub mod size;
pub mod snapshot;
pub mod spec;
pub mod storage;
pub mod store;
pub mod template;
pub mod terminal;
#[doc(hidden)]
pub mod testing;
pub mod unpack;

use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use cgroup::CgroupUsage;
pub use error::{Error, Result};
pub use runtime::{ExecChild, ExecIo};
pub use spec::{ContainerSpec, ContainerSpecBuilder, IoLimits, Limits, LimitsUpdate};
pub use storage::DiskUsage;
pub use template::TemplateInfo;

use cgroup::ContainerCgroup;
use error::IoContext;
use security::SeccompPrograms;
use storage::Rollback;
use store::{ContainerConfig, Layout, Lock, RunState};

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/acetate";

/// How long an operation waits for another acetate process to release a container.
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// Default time a container gets between SIGTERM and SIGKILL on stop.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a container's init is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Stopped,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Running => "running",
            State::Stopped => "stopped",
        })
    }
}

/// Live resource use of a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Cgroup counters; `None` while stopped.
    pub cgroup: Option<CgroupUsage>,
    /// Writable layer; `None` if its image is not mounted.
    pub disk: Option<DiskUsage>,
    /// Bytes through its network interface since it started; `None` without one or stopped.
    #[serde(default)]
    pub net: Option<network::NetCounters>,
}

/// What `ct list` and `ct show` print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub name: String,
    /// The name it knows itself by (the panel's: its owner's name for it).
    #[serde(default)]
    pub hostname: String,
    pub template: String,
    pub owner: Option<String>,
    pub state: State,
    /// Host pid of the container's init while running.
    pub pid: Option<i32>,
    /// What runs as its PID 1 (while stopped: what it will boot).
    #[serde(default = "spec::Init::minimal")]
    pub init: spec::Init,
    pub created_at: u64,
    pub started_at: Option<u64>,
    /// Host uid of the container's root.
    pub host_uid: u32,
    pub limits: Limits,
    /// Its address on the host bridge, if it has a network interface.
    #[serde(default)]
    pub network: Option<network::NetInfo>,
    pub usage: Usage,
}

/// The engine, bound to one state directory.
#[derive(Debug)]
pub struct Engine {
    layout: Layout,
    identity: identity::Identity,
    /// `identity.cgroup_parent()`, made once.
    cgroup_parent: String,
    /// The provider's rules for the state dir's disk.
    disk: capacity::DiskPolicy,
    /// Where backups go (the provider's setting; `<state>/backups/repo` by default).
    backup_repo: backup::BackupRepo,
    /// Nameservers written into new containers' `/etc/resolv.conf` (the provider's
    /// setting; by default the host's that a container can reach).
    resolvers: Vec<std::net::IpAddr>,
    /// What containers' traffic may do beyond the bridge (the provider's setting).
    net_policy: firewall::NetPolicy,
    init: File,
    seccomp: SeccompPrograms,
    fail_point: Option<&'static str>,
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

fn require_root(what: &'static str) -> Result<()> {
    match euid() {
        0 => Ok(()),
        uid => Err(Error::NotRoot(what, uid)),
    }
}

impl Engine {
    /// Opens the engine on `state_dir`, creating its layout. Reading (list, show) works
    /// without root on an existing state dir; everything that changes containers needs root.
    pub fn open(state_dir: impl Into<PathBuf>) -> Result<Engine> {
        Engine::open_with(state_dir, &identity::Wanted::default())
    }

    /// Opens the engine on `state_dir` with the provider's settings for its ids, cgroup
    /// parent and network (kept in the state dir; refused with a clear error, changing
    /// nothing, if another live engine holds any of them or if containers were made under
    /// others).
    pub fn open_with(state_dir: impl Into<PathBuf>, wanted: &identity::Wanted) -> Result<Engine> {
        let layout = Layout::new(state_dir);
        storage::check_path_for_overlay(layout.root())?;
        if euid() == 0 {
            layout.ensure()?;
        } else if !layout.root().is_dir() {
            return Err(Error::NotRoot("create the state directory", euid()));
        }
        let (init, identity) = if euid() == 0 {
            (
                runtime::install_init(&layout)?,
                identity::claim(layout.root(), wanted)?,
            )
        } else {
            (
                File::open("/dev/null").ctx("open", "/dev/null")?,
                identity::Identity::stored(layout.root()),
            )
        };
        Ok(Engine {
            backup_repo: backup::BackupRepo::in_state_dir(layout.root()),
            resolvers: storage::host_resolvers(),
            net_policy: firewall::NetPolicy::default(),
            layout,
            cgroup_parent: identity.cgroup_parent(),
            identity,
            disk: capacity::DiskPolicy::default(),
            init,
            seccomp: security::seccomp_programs()?,
            fail_point: None,
        })
    }

    /// Makes `create` fail at the named storage step (one of [`storage::CREATE_STEPS`]),
    /// to prove that a failed create leaves nothing behind.
    #[doc(hidden)]
    pub fn with_fail_point(mut self, step: &'static str) -> Self {
        self.fail_point = Some(step);
        self
    }

    /// Backs containers up into the repository at `location` (a path); its password stays
    /// in the state dir.
    pub fn with_backup_repository(mut self, location: impl Into<PathBuf>) -> Self {
        self.backup_repo.location = location.into();
        self
    }

    /// Writes these nameservers into new containers' `/etc/resolv.conf` (instead of the
    /// host's).
    pub fn with_resolvers(mut self, resolvers: Vec<std::net::IpAddr>) -> Self {
        self.resolvers = resolvers;
        self
    }

    /// The provider's rules for containers' traffic (SMTP, the host's open ports).
    pub fn with_net_policy(mut self, policy: firewall::NetPolicy) -> Self {
        self.net_policy = policy;
        self
    }

    pub fn net_policy(&self) -> &firewall::NetPolicy {
        &self.net_policy
    }

    /// The provider's backup repository.
    pub fn backup_repo(&self) -> &backup::BackupRepo {
        &self.backup_repo
    }

    pub fn state_dir(&self) -> &Path {
        self.layout.root()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// This engine's slot: its id range and cgroup parent.
    pub fn identity(&self) -> &identity::Identity {
        &self.identity
    }

    /// The cgroup of container `name`.
    pub fn cgroup(&self, name: &str) -> ContainerCgroup {
        ContainerCgroup::new(&self.cgroup_parent, name)
    }

    // ---- containers ------------------------------------------------------------------

    fn configs(&self) -> Result<Vec<ContainerConfig>> {
        let dir = self.layout.containers();
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("read directory", dir, e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Some(cfg) = store::read_json::<ContainerConfig>(&self.layout.config(&name))? {
                out.push(cfg);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn config(&self, name: &str) -> Result<ContainerConfig> {
        spec::validate_name(name).map_err(|_| Error::NoSuchContainer(name.to_string()))?;
        store::read_json(&self.layout.config(name))?
            .ok_or_else(|| Error::NoSuchContainer(name.to_string()))
    }

    /// Locks an existing container; fails with `NoSuchContainer` if it is not (or no
    /// longer, once the lock is ours) there.
    fn lock(&self, name: &str) -> Result<(Lock, ContainerConfig)> {
        self.config(name)?;
        let lock = self.layout.lock_container(name, LOCK_TIMEOUT)?;
        let cfg = self.config(name)?;
        snapshot::thaw_left_freeze(&self.layout, name);
        Ok((lock, cfg))
    }

    fn run_state(&self, name: &str) -> Result<Option<RunState>> {
        snapshot::thaw_left_freeze(&self.layout, name);
        let st: Option<RunState> = store::read_json(&self.layout.run_state(name))?;
        Ok(st.filter(|st| runtime::check(st) == runtime::ProcState::Alive))
    }

    fn next_id_base(&self, configs: &[ContainerConfig]) -> Result<u32> {
        let used: std::collections::HashSet<u32> = configs.iter().map(|c| c.id_base).collect();
        let capacity = self.identity.capacity();
        (0..capacity)
            .map(|i| self.identity.container_base(i))
            .find(|b| !used.contains(b))
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "this engine holds {capacity} containers, as many as its id range and \
                     subnet allow",
                ))
            })
    }

    /// Creates a container (stopped): its disk image, mounts and config. On any error,
    /// nothing is left behind.
    #[tracing::instrument(skip(self, spec), fields(name = %spec.name))]
    pub fn create(&self, spec: &ContainerSpec) -> Result<ContainerInfo> {
        spec.validate()?;
        require_root("create containers")?;
        if !template::exists(&self.layout, &spec.template) {
            return Err(Error::NoSuchTemplate(spec.template.clone()));
        }
        self.check_init(&spec.template, spec.init)?;
        let _g = self.layout.lock_global(LOCK_TIMEOUT)?;
        let dir = self.layout.container(&spec.name);
        if self.layout.config(&spec.name).exists() {
            return Err(Error::NameTaken(spec.name.clone()));
        }
        // A directory without a config is the debris of a create or destroy that crashed.
        self.sweep(&spec.name)?;
        let configs = self.configs()?;
        let promised = configs.iter().map(|c| c.limits.disk).sum();
        let cap = capacity::capacity(self.layout.root(), &self.disk, promised)?;
        capacity::admit(&cap, spec.limits.disk, &self.disk)?;
        capacity::hold_reserve(self.layout.root(), cap.reserve)?;
        let id_base = self.next_id_base(&configs)?;
        let mut rollback = Rollback::new();
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .ctx("create directory", &dir)?;
        let d = dir.clone();
        rollback.push("directory", move || {
            let _ = fs::remove_dir_all(&d);
        });
        let _lock = self.layout.lock_container(&spec.name, LOCK_TIMEOUT)?;
        let disk = storage::DiskSpec {
            template: &spec.template,
            size: spec.limits.disk,
            inodes: spec.limits.inodes,
            id_base,
        };
        storage::create(
            &self.layout,
            &spec.name,
            &disk,
            self.fail_point,
            &mut rollback,
        )?;
        let cfg = ContainerConfig::new(spec, id_base);
        storage::write_identity(
            &self.layout,
            &spec.name,
            cfg.hostname(),
            id_base,
            &self.resolvers,
        )?;
        store::write_json(&self.layout.config(&spec.name), &cfg)?;
        rollback.commit();
        Ok(self.info(&cfg, None))
    }

    /// Starts a stopped container.
    #[tracing::instrument(skip(self))]
    pub fn start(&self, name: &str) -> Result<ContainerInfo> {
        require_root("start containers")?;
        let (_lock, cfg) = self.lock(name)?;
        let info = self.start_locked(&cfg)?;
        self.want_running(name, true);
        Ok(info)
    }

    fn start_locked(&self, cfg: &ContainerConfig) -> Result<ContainerInfo> {
        let name = &cfg.name;
        if let Some(st) = self.run_state(name)? {
            // A SysV init halted from inside is over: start it anew.
            if self.sysvinit_halted(name, &st).is_none() {
                return Err(Error::AlreadyRunning(name.clone()));
            }
            self.stop_locked(cfg, Duration::ZERO)?;
        }
        // A filesystem that went read-only (its image could not grow on a full host disk)
        // is checked and repaired before the container runs on it again.
        let went_read_only = storage::is_mounted(&self.layout, name)
            && capacity::is_read_only(&self.layout.disk(name));
        if went_read_only {
            storage::unmount_all(&self.layout, name)?;
        }
        if !storage::is_mounted(&self.layout, name) {
            if !template::exists(&self.layout, &cfg.template) {
                return Err(Error::NoSuchTemplate(cfg.template.clone()));
            }
            let image = self.layout.image(name);
            if went_read_only || capacity::has_errors(&image)? {
                capacity::repair(&image)?;
            }
            storage::mount_existing(&self.layout, name, &cfg.template, cfg.id_base)?;
        }
        self.clear_halt_mark(name);
        let cgroup = self.cgroup(name);
        // Leftovers of a crash (processes of a previous run without a state file) go first.
        cgroup.delete()?;
        cgroup.create(&cfg.limits)?;
        if cfg.limits.io.any() {
            if let Err(e) = self.apply_io_limits(&cgroup, name, &cfg.limits) {
                let _ = cgroup.delete();
                return Err(e);
            }
        }
        let rootfs = self.layout.rootfs(name);
        let net = cfg.network.then(|| self.identity.net_info(cfg.id_base));
        let bridge = self.identity.network();
        if net.is_some() {
            if let Err(e) = self.ready_network(cfg) {
                let _ = cgroup.delete();
                return Err(e);
            }
        }
        let boot = self.boots(cfg);
        if boot == spec::Init::Systemd {
            boot::size_host_for_systemd();
        }
        let params = runtime::StartParams {
            name,
            hostname: cfg.hostname(),
            rootfs: &rootfs,
            init: &self.init,
            boot,
            id_base: cfg.id_base,
            cgroup: &cgroup,
            seccomp: &self.seccomp,
            network: net.as_ref().map(|n| (n, &bridge, cfg.limits.net_rate)),
        };
        let st = match runtime::start(&params) {
            Ok(st) => st,
            Err(e) => {
                let _ = cgroup.delete();
                return Err(e);
            }
        };
        if let Err(e) = store::write_json(&self.layout.run_state(name), &st) {
            let _ = runtime::kill(&st);
            let _ = cgroup.delete();
            return Err(e);
        }
        lxcfs::attach(name, st.pid);
        Ok(self.info_started(cfg, st))
    }

    /// Stops a running container: SIGTERM to everything in it, SIGKILL after `timeout`.
    #[tracing::instrument(skip(self))]
    pub fn stop(&self, name: &str, timeout: Duration) -> Result<ContainerInfo> {
        require_root("stop containers")?;
        let (_lock, cfg) = self.lock(name)?;
        self.want_running(name, false);
        if !self.stop_locked(&cfg, timeout)? {
            return Err(Error::NotRunning(name.to_string()));
        }
        Ok(self.info(&cfg, None))
    }

    /// Stops if running; returns whether it was.
    fn stop_locked(&self, cfg: &ContainerConfig, timeout: Duration) -> Result<bool> {
        let st = self.run_state(&cfg.name)?;
        if let Some(st) = &st {
            let timeout = self.shut_down_first(cfg, st, timeout);
            runtime::stop(st, timeout)?;
        }
        self.cgroup(&cfg.name).delete()?;
        match fs::remove_file(self.layout.run_state(&cfg.name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", self.layout.run_state(&cfg.name), e)),
        }
        Ok(st.is_some())
    }

    /// Reinstalls a container: a fresh, empty writable layer over `template` (its current
    /// one if `None`), same name, limits and id range; everything written inside is gone.
    /// A running container is stopped first and started again. The new disk image is made
    /// beside the old one and replaces it only once complete, so a failure (a missing
    /// template, a full host disk) leaves the container as it was.
    #[tracing::instrument(skip(self))]
    pub fn reinstall(
        &self,
        name: &str,
        template: Option<&str>,
        timeout: Duration,
    ) -> Result<ContainerInfo> {
        require_root("reinstall containers")?;
        let (_lock, mut cfg) = self.lock(name)?;
        let template = template.unwrap_or(&cfg.template).to_string();
        spec::validate_name(&template).map_err(|_| Error::NoSuchTemplate(template.clone()))?;
        if !template::exists(&self.layout, &template) {
            return Err(Error::NoSuchTemplate(template));
        }
        let image = self.layout.image(name);
        let fresh = image.with_extension("new");
        let _ = fs::remove_file(&fresh);
        if let Err(e) = storage::make_image(&fresh, cfg.limits.disk, cfg.limits.inodes) {
            let _ = fs::remove_file(&fresh);
            return Err(e);
        }
        let was_running = self.stop_locked(&cfg, timeout)?;
        let swapped = storage::unmount_all(&self.layout, name).and_then(|()| {
            fs::rename(&fresh, &image).map_err(|e| Error::io("replace disk image", &image, e))
        });
        if let Err(e) = swapped {
            let _ = fs::remove_file(&fresh);
            // Back to where it was: the old image, mounted, running if it was.
            if was_running {
                let _ = self.start_locked(&cfg);
            }
            return Err(e);
        }
        if template != cfg.template {
            cfg.template = template;
            // The template's init asked for by name follows the template: the new one's.
            if cfg.init.is_some_and(|i| i.is_templates()) {
                cfg.init = None;
            }
            store::write_json(&self.layout.config(name), &cfg)?;
        }
        storage::mount_existing(&self.layout, name, &cfg.template, cfg.id_base)?;
        storage::write_identity(
            &self.layout,
            name,
            cfg.hostname(),
            cfg.id_base,
            &self.resolvers,
        )?;
        if was_running {
            self.start_locked(&cfg)
        } else {
            Ok(self.info(&cfg, None))
        }
    }

    /// Stops (if running) and starts a container.
    #[tracing::instrument(skip(self))]
    pub fn restart(&self, name: &str, timeout: Duration) -> Result<ContainerInfo> {
        require_root("restart containers")?;
        let (_lock, cfg) = self.lock(name)?;
        self.stop_locked(&cfg, timeout)?;
        let info = self.start_locked(&cfg)?;
        self.want_running(name, true);
        Ok(info)
    }

    /// Destroys a container (stopping it first): its processes, cgroup, mounts, loop
    /// device, image and directory.
    #[tracing::instrument(skip(self))]
    pub fn destroy(&self, name: &str, timeout: Duration) -> Result<()> {
        require_root("destroy containers")?;
        let (_lock, cfg) = self.lock(name)?;
        self.destroy_locked(&cfg, timeout)
    }

    fn destroy_locked(&self, cfg: &ContainerConfig, timeout: Duration) -> Result<()> {
        let name = &cfg.name;
        self.stop_locked(cfg, timeout)?;
        storage::unmount_all(&self.layout, name)?;
        let dir = self.layout.container(name);
        self.release_network(cfg);
        // The config goes first: a crash from here on leaves a directory that is not a
        // container and is swept by the next destroy of the same name or by create.
        fs::remove_file(self.layout.config(name)).ctx("remove", self.layout.config(name))?;
        store::remove_tree(&dir)
    }
}
