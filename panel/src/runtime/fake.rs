//! An in-memory engine for the panel's own tests: containers are entries in a map, with
//! the engine's checks that the panel relies on (names taken, missing containers and
//! templates, running or not). Tests can make an operation fail or take time, to see
//! what the panel does then. Nothing here touches the host.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acetate_engine::backup::{BackupInfo, Retention};
use acetate_engine::capacity::DiskCapacity;
use acetate_engine::snapshot::SnapshotInfo;
use acetate_engine::unpack::ImportOptions;
use acetate_engine::{
    ContainerInfo, ContainerSpec, Error, LimitsUpdate, Result, State, TemplateInfo, Usage,
};

use acetate_engine::forward::{Forward, PublicPort};
use acetate_engine::netconf::Network;
use acetate_engine::spec::Init;

use super::{CommandRun, Exclusive, Runtime};

#[derive(Debug, Default)]
pub(super) struct Inner {
    pub(super) containers: BTreeMap<String, ContainerInfo>,
    pub(super) templates: BTreeMap<String, TemplateInfo>,
    /// operation -> how many more calls fail.
    failures: HashMap<&'static str, usize>,
    /// operation -> how long each call takes.
    delays: HashMap<&'static str, Duration>,
    next_pid: i32,
    snapshots: BTreeMap<String, Vec<SnapshotInfo>>,
    backups: Vec<BackupInfo>,
    /// container -> its forwards.
    pub(super) forwards: BTreeMap<String, Vec<Forward>>,
    /// Containers whose traffic to the outside is refused.
    pub(super) no_egress: std::collections::BTreeSet<String>,
    /// Containers whose SysV init was halted or rebooted from inside.
    pub(super) halted_inside: BTreeMap<String, acetate_engine::spec::Halt>,
}

/// The in-memory engine. Clones share their containers.
#[derive(Debug, Clone)]
pub struct FakeRuntime {
    inner: Arc<Mutex<Inner>>,
    uploads: PathBuf,
}

impl FakeRuntime {
    /// An engine with the `host` template and no containers; uploads go to `uploads`.
    pub fn new(uploads: impl Into<PathBuf>) -> FakeRuntime {
        let fake = FakeRuntime {
            inner: Arc::default(),
            uploads: uploads.into(),
        };
        fake.add_template("host");
        fake
    }

    /// Makes the next `times` calls of `op` ("create", "start", "stop", "set", ...) fail.
    pub fn fail(&self, op: &'static str, times: usize) {
        self.lock().failures.insert(op, times);
    }

    /// Makes every call of `op` take `delay`.
    pub fn delay(&self, op: &'static str, delay: Duration) {
        self.lock().delays.insert(op, delay);
    }

    /// Makes every container's disk image take `bytes` of host disk (what a snapshot of
    /// it would cost).
    pub fn set_image_allocated(&self, bytes: u64) {
        for info in self.lock().containers.values_mut() {
            let mut disk = info.usage.disk.unwrap_or_default();
            disk.image_allocated = bytes;
            info.usage.disk = Some(disk);
        }
    }

    /// The names of the containers that exist.
    pub fn list_names(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    /// How many containers exist.
    pub fn count(&self) -> usize {
        self.lock().containers.len()
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("fake runtime lock")
    }

    /// Waits as told for `op`, then fails if told to.
    pub(super) fn enter(&self, op: &'static str) -> Result<()> {
        let delay = self.lock().delays.get(op).copied();
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        let mut inner = self.lock();
        match inner.failures.get_mut(op) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(Error::Unsupported(format!("injected failure of {op}")))
            }
            _ => Ok(()),
        }
    }

    fn with<T>(&self, name: &str, f: impl FnOnce(&mut ContainerInfo) -> Result<T>) -> Result<T> {
        let mut inner = self.lock();
        let info = inner
            .containers
            .get_mut(name)
            .ok_or_else(|| Error::NoSuchContainer(name.to_string()))?;
        f(info)
    }

    pub(super) fn run(info: &mut ContainerInfo, pid: i32) {
        info.state = State::Running;
        info.pid = Some(pid);
        info.started_at = Some(acetate_engine::store::unix_now());
    }

    pub(super) fn halt(info: &mut ContainerInfo) {
        info.state = State::Stopped;
        info.pid = None;
        info.started_at = None;
    }

    pub(super) fn pid(&self) -> i32 {
        let mut inner = self.lock();
        inner.next_pid += 1;
        1000 + inner.next_pid
    }
}

impl Runtime for FakeRuntime {
    fn create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerInfo> {
        self.enter("create")?;
        spec.limits.validate()?;
        let pid = self.pid();
        let mut inner = self.lock();
        if !inner.templates.contains_key(&spec.template) {
            return Err(Error::NoSuchTemplate(spec.template.clone()));
        }
        if inner.containers.contains_key(&spec.name) {
            return Err(Error::NameTaken(spec.name.clone()));
        }
        let mut info = ContainerInfo {
            name: spec.name.clone(),
            hostname: spec.hostname.clone().unwrap_or_else(|| spec.name.clone()),
            template: spec.template.clone(),
            owner: spec.owner.clone(),
            state: State::Stopped,
            pid: None,
            init: spec.init.unwrap_or(inner.templates[&spec.template].init),
            created_at: acetate_engine::store::unix_now(),
            started_at: None,
            host_uid: 100_000,
            limits: spec.limits.clone(),
            // Networked containers get the address their id range would give them.
            network: spec
                .network
                .then(|| Network::default().info(1 << 20, (pid as u32 % 4096 + 16) << 16)),
            usage: Usage::default(),
        };
        Self::run(&mut info, pid);
        inner.containers.insert(spec.name.clone(), info.clone());
        if spec.no_egress {
            inner.no_egress.insert(spec.name.clone());
        }
        Ok(info)
    }

    fn start(&self, name: &str) -> Result<ContainerInfo> {
        self.enter("start")?;
        let pid = self.pid();
        self.with(name, |i| {
            if i.state == State::Running {
                return Err(Error::AlreadyRunning(name.to_string()));
            }
            Self::run(i, pid);
            Ok(i.clone())
        })
    }

    fn stop(&self, name: &str, _timeout: Duration) -> Result<ContainerInfo> {
        self.enter("stop")?;
        self.with(name, |i| {
            if i.state != State::Running {
                return Err(Error::NotRunning(name.to_string()));
            }
            Self::halt(i);
            Ok(i.clone())
        })
    }

    fn restart(&self, name: &str, _timeout: Duration) -> Result<ContainerInfo> {
        self.enter("restart")?;
        let pid = self.pid();
        self.with(name, |i| {
            Self::run(i, pid);
            Ok(i.clone())
        })
    }

    fn destroy(&self, name: &str, _timeout: Duration) -> Result<()> {
        self.enter("destroy")?;
        self.lock().containers.remove(name);
        self.lock().forwards.remove(name);
        Ok(())
    }

    fn set(&self, name: &str, update: &LimitsUpdate) -> Result<ContainerInfo> {
        self.enter("set")?;
        self.with(name, |i| {
            let next = update.applied_to(&i.limits);
            next.validate()?;
            i.limits = next;
            Ok(i.clone())
        })
    }

    fn reinstall(
        &self,
        name: &str,
        template: Option<&str>,
        _timeout: Duration,
    ) -> Result<ContainerInfo> {
        self.enter("reinstall")?;
        let known = template.is_none_or(|t| self.lock().templates.contains_key(t));
        if !known {
            return Err(Error::NoSuchTemplate(template.unwrap_or_default().into()));
        }
        let pid = self.pid();
        self.with(name, |i| {
            if let Some(t) = template {
                i.template = t.to_string();
            }
            Self::run(i, pid);
            Ok(i.clone())
        })
    }

    fn show(&self, name: &str) -> Result<ContainerInfo> {
        self.with(name, |i| Ok(i.clone()))
    }

    fn list(&self) -> Result<Vec<ContainerInfo>> {
        Ok(self.lock().containers.values().cloned().collect())
    }

    fn start_all(&self, _workers: usize) -> Result<Vec<(String, Result<ContainerInfo>)>> {
        Ok(Vec::new())
    }

    fn recover(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn templates(&self) -> Result<Vec<TemplateInfo>> {
        let inner = self.lock();
        Ok(inner
            .templates
            .values()
            .map(|t| TemplateInfo {
                containers: inner
                    .containers
                    .values()
                    .filter(|c| c.template == t.name)
                    .count(),
                ..t.clone()
            })
            .collect())
    }

    fn installed_templates(&self) -> Result<Vec<TemplateInfo>> {
        Ok(self.lock().templates.values().cloned().collect())
    }

    fn ensure_host_template(&self) -> Result<bool> {
        Ok(false)
    }

    fn import_template(
        &self,
        name: &str,
        source: &Path,
        _opts: &ImportOptions,
    ) -> Result<TemplateInfo> {
        self.enter("import")?;
        acetate_engine::spec::validate_name(name)?;
        if self.lock().templates.contains_key(name) {
            return Err(Error::TemplateExists(name.to_string()));
        }
        if !source.exists() {
            return Err(Error::Unsupported(format!("{} is gone", source.display())));
        }
        self.add_template(name);
        self.lock()
            .templates
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchTemplate(name.to_string()))
    }

    fn delete_template(&self, name: &str) -> Result<()> {
        let mut inner = self.lock();
        if !inner.templates.contains_key(name) {
            return Err(Error::NoSuchTemplate(name.to_string()));
        }
        let users = inner
            .containers
            .values()
            .filter(|c| c.template == name)
            .count();
        if users > 0 {
            return Err(Error::TemplateInUse(name.to_string(), users));
        }
        inner.templates.remove(name);
        Ok(())
    }

    fn disk_capacity(&self) -> Result<DiskCapacity> {
        let promised = self.lock().containers.values().map(|c| c.limits.disk).sum();
        Ok(DiskCapacity {
            total: 1 << 40,
            free: 1 << 39,
            promised,
            allowed: 1 << 40,
            reserve: 0,
            reserve_held: true,
        })
    }

    fn disk_overcommit(&self) -> f64 {
        1.0
    }

    fn relieve_disk(&self) -> Result<bool> {
        Ok(false)
    }

    fn upload_dir(&self) -> PathBuf {
        self.uploads.clone()
    }

    fn open_session(
        &self,
        name: &str,
        req: super::interactive::SessionRequest,
    ) -> super::SessionOpen {
        self.fake_session(name, req)
    }

    fn run_command(
        &self,
        name: &str,
        argv: Vec<String>,
        timeout: Duration,
        max_output: usize,
    ) -> CommandRun {
        self.fake_command(name, argv, timeout, max_output)
    }

    fn add_forward(&self, name: &str, f: Forward) -> Result<Vec<Forward>> {
        self.enter("forward")?;
        self.fake_add_forward(name, f)
    }

    fn remove_forward(&self, name: &str, public: PublicPort) -> Result<Vec<Forward>> {
        self.fake_remove_forward(name, public)
    }

    fn set_egress(&self, name: &str, allowed: bool) -> Result<()> {
        self.fake_set_egress(name, allowed)
    }
    fn set_init(&self, name: &str, init: Option<Init>) -> Result<()> {
        self.fake_set_init(name, init)
    }

    fn settle_halts(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, acetate_engine::spec::Halt, Result<()>)>> {
        Ok(self.fake_settle_halts(names))
    }

    fn exclusive_metering(&self) -> Result<Exclusive> {
        Ok(Box::new(()))
    }

    fn supervise_lxcfs(&self) -> Result<()> {
        Ok(())
    }

    fn snapshot(&self, name: &str, snap: Option<&str>, max: Option<usize>) -> Result<SnapshotInfo> {
        self.enter("snapshot")?;
        let info = self.show(name)?;
        let mut inner = self.lock();
        let list = inner.snapshots.entry(name.to_string()).or_default();
        let snap = snap.map_or_else(|| format!("snap-{}", list.len() + 1), str::to_string);
        acetate_engine::spec::validate_name(&snap)?;
        if list.iter().any(|s| s.name == snap) || max.is_some_and(|m| list.len() >= m) {
            return Err(Error::Unsupported(format!("no room for snapshot {snap:?}")));
        }
        let taken = SnapshotInfo {
            name: snap,
            created_at: acetate_engine::store::unix_now(),
            bytes: info.usage.disk.map_or(0, |d| d.image_allocated),
            disk_size: info.limits.disk,
            live: info.state == State::Running,
            copy: "fake".into(),
        };
        list.push(taken.clone());
        Ok(taken)
    }

    fn snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        self.show(name)?;
        Ok(self.lock().snapshots.get(name).cloned().unwrap_or_default())
    }

    fn delete_snapshot(&self, name: &str, snap: &str) -> Result<()> {
        self.enter("delete_snapshot")?;
        let mut inner = self.lock();
        let list = inner.snapshots.entry(name.to_string()).or_default();
        let before = list.len();
        list.retain(|s| s.name != snap);
        if list.len() == before {
            return Err(Error::NoSuchSnapshot(name.into(), snap.into()));
        }
        Ok(())
    }

    fn restore_snapshot(
        &self,
        name: &str,
        snap: &str,
        _timeout: Duration,
    ) -> Result<ContainerInfo> {
        self.enter("restore_snapshot")?;
        if !self.snapshots(name)?.iter().any(|s| s.name == snap) {
            return Err(Error::NoSuchSnapshot(name.into(), snap.into()));
        }
        self.show(name)
    }

    fn backup(
        &self,
        name: &str,
        progress: Option<&acetate_engine::backup::BackupProgress>,
    ) -> Result<BackupInfo> {
        if let Some(p) = progress {
            // Half-way through, as far as anyone watching can tell.
            p.total
                .store(100 << 20, std::sync::atomic::Ordering::Relaxed);
            p.done.store(50 << 20, std::sync::atomic::Ordering::Relaxed);
        }
        self.enter("backup")?;
        let info = self.show(name)?;
        let mut inner = self.lock();
        let b = BackupInfo {
            id: format!("{:064x}", inner.backups.len() + 1),
            container: name.to_string(),
            template: info.template,
            owner: info.owner,
            time: acetate_engine::store::unix_now(),
            bytes: 0,
            added: 0,
            files_new: 0,
            files_changed: 0,
            files_unmodified: 0,
        };
        inner.backups.push(b.clone());
        Ok(b)
    }

    fn backups(&self, name: Option<&str>) -> Result<Vec<BackupInfo>> {
        let inner = self.lock();
        Ok(inner
            .backups
            .iter()
            .filter(|b| name.is_none_or(|n| b.container == n))
            .cloned()
            .collect())
    }

    fn restore_backup(&self, id: &str, target: &str, _timeout: Duration) -> Result<ContainerInfo> {
        self.enter("restore_backup")?;
        if !self.lock().backups.iter().any(|b| b.id.starts_with(id)) {
            return Err(Error::NoSuchBackup(id.into()));
        }
        self.show(target)
    }

    fn forget_backups(&self, name: &str, keep: &Retention) -> Result<Vec<String>> {
        let last = keep.last.unwrap_or(u32::MAX) as usize;
        let mut inner = self.lock();
        let mine: Vec<String> = inner
            .backups
            .iter()
            .filter(|b| b.container == name)
            .map(|b| b.id.clone())
            .collect();
        let doomed: Vec<String> = mine
            .iter()
            .take(mine.len().saturating_sub(last))
            .cloned()
            .collect();
        inner.backups.retain(|b| !doomed.contains(&b.id));
        Ok(doomed)
    }
}
