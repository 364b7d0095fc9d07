//! The narrow boundary between the panel and the container engine. Services call the
//! engine only through [`Runtime`]; `acetate serve` plugs in the real engine, and the
//! panel's own tests plug in [`fake::FakeRuntime`], an in-memory stand-in, so that the
//! panel's rules are tested without root. Methods block: services call them off the async
//! threads.

use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use acetate_engine::backup::{BackupInfo, Retention};
use acetate_engine::capacity::DiskCapacity;
use acetate_engine::snapshot::SnapshotInfo;
use acetate_engine::unpack::ImportOptions;
use acetate_engine::{ContainerInfo, ContainerSpec, LimitsUpdate, Result, TemplateInfo};

mod command;
mod engine;
pub mod fake;
mod fake_io;
pub mod interactive;

pub use engine::EngineRuntime;
pub use fake::FakeRuntime;

/// What a one-shot command did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CommandOutcome {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Some output was cut at the bound.
    pub truncated: bool,
    /// The command was killed at its timeout.
    pub timed_out: bool,
}

/// A running command's eventual outcome.
pub type CommandRun = Pin<Box<dyn Future<Output = crate::error::AppResult<CommandOutcome>> + Send>>;

/// Held while a metering pass runs; dropping it lets the next one in.
pub type SessionOpen =
    Pin<Box<dyn Future<Output = crate::error::AppResult<interactive::Interactive>> + Send>>;

pub type Exclusive = Box<dyn Send>;

/// What the panel needs of a container engine.
pub trait Runtime: Send + Sync + Debug + 'static {
    /// Creates a container and starts it; a container that does not start is destroyed
    /// again, so a failed create leaves nothing.
    fn create_and_start(&self, spec: &ContainerSpec) -> Result<ContainerInfo>;
    fn start(&self, name: &str) -> Result<ContainerInfo>;
    fn stop(&self, name: &str, timeout: Duration) -> Result<ContainerInfo>;
    fn restart(&self, name: &str, timeout: Duration) -> Result<ContainerInfo>;
    /// Destroys a container; one that does not exist counts as destroyed.
    fn destroy(&self, name: &str, timeout: Duration) -> Result<()>;
    fn set(&self, name: &str, update: &LimitsUpdate) -> Result<ContainerInfo>;
    fn reinstall(
        &self,
        name: &str,
        template: Option<&str>,
        timeout: Duration,
    ) -> Result<ContainerInfo>;
    fn show(&self, name: &str) -> Result<ContainerInfo>;
    fn list(&self) -> Result<Vec<ContainerInfo>>;
    /// Starts every container that should run and does not, `workers` at a time.
    fn start_all(&self, workers: usize) -> Result<Vec<(String, Result<ContainerInfo>)>>;
    /// Sweeps what a crash left half-made; returns the containers it repaired.
    fn recover(&self) -> Result<Vec<String>>;

    fn templates(&self) -> Result<Vec<TemplateInfo>>;
    /// Installed templates without their container counts (cheap: no container is read).
    fn installed_templates(&self) -> Result<Vec<TemplateInfo>>;
    /// Builds the `host` template unless it exists; whether it was built.
    fn ensure_host_template(&self) -> Result<bool>;
    /// Deletes a template no container uses.
    fn delete_template(&self, name: &str) -> Result<()>;
    fn import_template(
        &self,
        name: &str,
        source: &Path,
        opts: &ImportOptions,
    ) -> Result<TemplateInfo>;

    /// The disk the containers' images share.
    fn disk_capacity(&self) -> Result<DiskCapacity>;
    /// The provider's over-commit ratio for that disk.
    fn disk_overcommit(&self) -> f64;
    /// The engine's ids, cgroup parent and network (none where there is no engine).
    fn identity(&self) -> Option<acetate_engine::identity::Identity> {
        None
    }
    /// Gives up (or takes back) the disk reserve; whether it was given up now.
    fn relieve_disk(&self) -> Result<bool>;
    /// Where the panel may keep uploads on their way into the engine.
    fn upload_dir(&self) -> std::path::PathBuf;

    /// Runs `argv` in a container with no input, keeping at most `max_output` bytes of
    /// each stream and killing it after `timeout`.
    fn run_command(
        &self,
        name: &str,
        argv: Vec<String>,
        timeout: Duration,
        max_output: usize,
    ) -> CommandRun;

    /// Serialises metering passes on this host (also with the CLI's).
    /// Starts an interactive process (a shell or a command, with or without a terminal)
    /// in running container `name`.
    fn open_session(&self, name: &str, req: interactive::SessionRequest) -> SessionOpen;

    /// Forwards a public port of the host to a port of container `name` (kept by the
    /// engine across restarts); the container's forwards after.
    fn add_forward(
        &self,
        name: &str,
        f: acetate_engine::forward::Forward,
    ) -> Result<Vec<acetate_engine::forward::Forward>>;
    fn remove_forward(
        &self,
        name: &str,
        public: acetate_engine::forward::PublicPort,
    ) -> Result<Vec<acetate_engine::forward::Forward>>;
    /// Lets container `name` reach the outside or not, live and for its next starts.
    fn set_egress(&self, name: &str, allowed: bool) -> Result<()>;
    /// What container `name` boots from its next start: `init`, or its template's own.
    fn set_init(&self, name: &str, init: Option<acetate_engine::spec::Init>) -> Result<()>;

    fn exclusive_metering(&self) -> Result<Exclusive>;

    /// Finishes the halts and reboots begun inside containers `names` (see
    /// `Engine::settle_halts`).
    fn settle_halts(
        &self,
        names: &[String],
    ) -> Result<Vec<(String, acetate_engine::spec::Halt, Result<()>)>>;

    /// Packets a rate-limited running container's own shaper dropped of what it sent
    /// (`None`: no rate limit, stopped, or an engine that cannot tell).
    fn drops_inside(&self, _name: &str) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Keeps lxcfs running and its views bound in every running container (cheap while
    /// nothing changed).
    fn supervise_lxcfs(&self) -> Result<()>;

    /// Takes a snapshot (named from the time if `snap` is `None`), at most `max` in all.
    fn snapshot(&self, name: &str, snap: Option<&str>, max: Option<usize>) -> Result<SnapshotInfo>;
    fn snapshots(&self, name: &str) -> Result<Vec<SnapshotInfo>>;
    fn delete_snapshot(&self, name: &str, snap: &str) -> Result<()>;
    /// Rolls a container back to a snapshot (stopped and started again if it ran).
    fn restore_snapshot(&self, name: &str, snap: &str, timeout: Duration) -> Result<ContainerInfo>;
    /// Backs a container up into the provider's repository; `progress` counts bytes.
    fn backup(
        &self,
        name: &str,
        progress: Option<&acetate_engine::backup::BackupProgress>,
    ) -> Result<BackupInfo>;
    /// Backups in the repository, of one container or of all.
    fn backups(&self, name: Option<&str>) -> Result<Vec<BackupInfo>>;
    /// Restores backup `id` into container `target`.
    fn restore_backup(&self, id: &str, target: &str, timeout: Duration) -> Result<ContainerInfo>;
    /// Forgets a container's backups beyond `keep` and prunes the repository.
    fn forget_backups(&self, name: &str, keep: &Retention) -> Result<Vec<String>>;
}
