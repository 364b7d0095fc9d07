//! The real engine behind the runtime trait.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use acetate_engine::backup::{BackupInfo, BackupProgress, Retention};
use acetate_engine::capacity::DiskCapacity;
use acetate_engine::snapshot::SnapshotInfo;
use acetate_engine::unpack::ImportOptions;
use acetate_engine::{
    ContainerInfo, ContainerSpec, Engine, Error, LimitsUpdate, Result, TemplateInfo,
};

use super::{CommandRun, Exclusive, Runtime};

/// The engine is shared with the command runner, which outlives a call.
#[derive(Debug, Clone)]
pub struct EngineRuntime(pub Arc<Engine>);

impl Runtime for EngineRuntime {
    fn create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerInfo> {
        self.0.create(spec)?;
        match self.0.start(&spec.name) {
            Ok(info) => Ok(info),
            Err(err) => {
                let _ = self.0.destroy(&spec.name, Duration::from_secs(5));
                Err(err)
            }
        }
    }

    fn start(&self, name: &str) -> Result<ContainerInfo> {
        self.0.start(name)
    }

    fn stop(&self, name: &str, timeout: Duration) -> Result<ContainerInfo> {
        self.0.stop(name, timeout)
    }

    fn restart(&self, name: &str, timeout: Duration) -> Result<ContainerInfo> {
        self.0.restart(name, timeout)
    }

    fn destroy(&self, name: &str, timeout: Duration) -> Result<()> {
        match self.0.destroy(name, timeout) {
            Err(Error::NoSuchContainer(_)) => Ok(()),
            other => other,
        }
    }

    fn set(&self, name: &str, update: &LimitsUpdate) -> Result<ContainerInfo> {
        self.0.set(name, update)
    }

    fn reinstall(
        &self,
        name: &str,
        template: Option<&str>,
        timeout: Duration,
    ) -> Result<ContainerInfo> {
        self.0.reinstall(name, template, timeout)
    }

    fn show(&self, name: &str) -> Result<ContainerInfo> {
        self.0.show(name)
    }

    fn list(&self) -> Result<Vec<ContainerInfo>> {
        self.0.list()
    }

    fn drops_inside(&self, name: &str) -> Result<Option<u64>> {
        self.0.drops_inside(name)
    }

    fn start_all(&self, workers: usize) -> Result<Vec<(String, Result<ContainerInfo>)>> {
        self.0.start_all(workers)
    }

    fn recover(&self) -> Result<Vec<String>> {
        self.0.recover()
    }

    fn templates(&self) -> Result<Vec<TemplateInfo>> {
        self.0.templates()
    }

    fn installed_templates(&self) -> Result<Vec<TemplateInfo>> {
        self.0.installed_templates()
    }

    fn ensure_host_template(&self) -> Result<bool> {
        self.0.ensure_host_template()
    }

    fn import_template(
        &self,
        name: &str,
        source: &Path,
        opts: &ImportOptions,
    ) -> Result<TemplateInfo> {
        self.0.import_template_with(name, source, opts)
    }

    fn delete_template(&self, name: &str) -> Result<()> {
        self.0.delete_template(name)
    }

    fn disk_capacity(&self) -> Result<DiskCapacity> {
        self.0.disk_capacity()
    }

    fn disk_overcommit(&self) -> f64 {
        self.0.disk_policy().overcommit
    }

    fn identity(&self) -> Option<acetate_engine::identity::Identity> {
        Some(self.0.identity().clone())
    }

    fn relieve_disk(&self) -> Result<bool> {
        self.0.relieve_disk()
    }

    fn upload_dir(&self) -> std::path::PathBuf {
        self.0.state_dir().join("uploads")
    }

    fn open_session(
        &self,
        name: &str,
        req: super::interactive::SessionRequest,
    ) -> super::SessionOpen {
        Box::pin(super::interactive::open(
            self.0.clone(),
            name.to_string(),
            req,
        ))
    }

    fn add_forward(
        &self,
        name: &str,
        f: acetate_engine::forward::Forward,
    ) -> Result<Vec<acetate_engine::forward::Forward>> {
        self.0.add_forward(name, f)
    }

    fn remove_forward(
        &self,
        name: &str,
        public: acetate_engine::forward::PublicPort,
    ) -> Result<Vec<acetate_engine::forward::Forward>> {
        self.0.remove_forward(name, public)
    }

    fn set_egress(&self, name: &str, allowed: bool) -> Result<()> {
        self.0.set_egress(name, allowed)
    }

    fn set_init(&self, name: &str, init: Option<acetate_engine::spec::Init>) -> Result<()> {
        self.0.set_init(name, init).map(|_| ())
    }

    fn settle_halts(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, acetate_engine::spec::Halt, Result<()>)>> {
        self.0.settle_halts(names)
    }

    fn run_command(
        &self,
        name: &str,
        argv: Vec<String>,
        timeout: Duration,
        max_output: usize,
    ) -> CommandRun {
        Box::pin(super::command::run(
            self.0.clone(),
            name.to_string(),
            argv,
            timeout,
            max_output,
        ))
    }

    fn exclusive_metering(&self) -> Result<Exclusive> {
        let dir = self.0.state_dir().join("meter");
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
            op: "create the meter lock directory",
            path: dir.clone(),
            source: e,
        })?;
        let lock = acetate_engine::store::Lock::acquire_in(&dir, Duration::from_secs(30))?;
        Ok(Box::new(lock))
    }

    fn supervise_lxcfs(&self) -> Result<()> {
        self.0.supervise_lxcfs()
    }

    fn snapshot(&self, name: &str, snap: Option<&str>, max: Option<usize>) -> Result<SnapshotInfo> {
        self.0.snapshot(name, snap, max)
    }

    fn snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>> {
        self.0.snapshots(name)
    }

    fn delete_snapshot(&self, name: &str, snap: &str) -> Result<()> {
        self.0.delete_snapshot(name, snap)
    }

    fn restore_snapshot(&self, name: &str, snap: &str, timeout: Duration) -> Result<ContainerInfo> {
        self.0.restore_snapshot(name, snap, timeout)
    }

    fn backup(&self, name: &str, progress: Option<&BackupProgress>) -> Result<BackupInfo> {
        self.0.backup(name, self.0.backup_repo(), progress)
    }

    fn backups(&self, name: Option<&str>) -> Result<Vec<BackupInfo>> {
        self.0.backups(self.0.backup_repo(), name)
    }

    fn restore_backup(&self, id: &str, target: &str, timeout: Duration) -> Result<ContainerInfo> {
        self.0
            .restore_backup(self.0.backup_repo(), id, target, timeout, None)
    }

    fn forget_backups(&self, name: &str, keep: &Retention) -> Result<Vec<String>> {
        self.0.forget_backups(self.0.backup_repo(), name, keep)
    }
}
