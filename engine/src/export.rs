//! `ct export` / `ct import`: one portable archive per container, the basis for moving a
//! container to another host. It is a zstd-compressed tar made by GNU tar (so `tar
//! --zstd -tvf` reads it anywhere): `config.json` (template, limits, hostname) and
//! `upper/`, the container's own layer (whiteouts and xattrs included), with the ids files
//! have inside the container, so that it imports into any id range.
//!
//! Export reads a snapshot (consistent, even of a running container) and writes the
//! archive under a temporary name, renamed when complete. Import checks the archive and
//! the template before anything is made, creates the container, and fills its layer in a
//! staged image; a container whose import was interrupted carries a mark that `recover`
//! (run by `acetate serve` at start) removes it by.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, IoContext, Result};
use crate::spec::ContainerSpec;
use crate::store::ContainerConfig;
use crate::{spec, storage, template, ContainerInfo, Engine};

/// Options GNU tar needs to carry an overlay layer faithfully.
const TAR_KEEP: &[&str] = &[
    "--zstd",
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=*",
    "--acls",
    "--sparse",
];

/// Reads the `config.json` of an export archive.
fn read_config(file: &Path) -> Result<ContainerConfig> {
    let out = Command::new("tar")
        .args(["--zstd", "-xOf"])
        .arg(file)
        .arg("config.json")
        .output()
        .map_err(|e| Error::sys("run tar", e))?;
    if !out.status.success() {
        return Err(Error::Unsupported(format!(
            "{} is not an Acetate export (a .tar.zst with config.json and upper/): {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        Error::Unsupported(format!(
            "{}: its config.json is not an Acetate container's: {e}",
            file.display()
        ))
    })
}

/// Marks a container whose import is not complete.
fn importing_mark(engine: &Engine, name: &str) -> std::path::PathBuf {
    engine.layout.container(name).join("importing")
}

impl Engine {
    /// Writes container `name` (running or not) to `file` as a portable archive; returns
    /// its size in bytes.
    #[tracing::instrument(skip(self))]
    pub fn export(&self, name: &str, file: &Path) -> Result<u64> {
        crate::require_root("export containers")?;
        let (stage, _cfg) = self.staged_view(name, "export")?;
        let partial = file.with_extension("partial");
        let _ = fs::remove_file(&partial);
        let written = storage::run_tool(
            Command::new("tar")
                .arg("--create")
                .args(TAR_KEEP)
                .arg("--file")
                .arg(&partial)
                .arg("-C")
                .arg(stage.path("root"))
                .args(["config.json", "upper"]),
        )
        .and_then(|()| {
            crate::testing::crash_point("export-written");
            fs::rename(&partial, file).ctx("rename into place", file)
        });
        if let Err(e) = written {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
        Ok(fs::metadata(file).ctx("stat", file)?.len())
    }

    /// Creates a container from an archive of [`Engine::export`], called `name` (its
    /// original name by default), stopped. The archive and its template are checked before
    /// anything is made; on any error nothing is left.
    #[tracing::instrument(skip(self))]
    pub fn import(&self, file: &Path, name: Option<&str>) -> Result<ContainerInfo> {
        crate::require_root("import containers")?;
        let source = read_config(file)?;
        let name = name.unwrap_or(&source.name).to_string();
        spec::validate_name(&name)?;
        if !template::exists(&self.layout, &source.template) {
            return Err(Error::NoSuchTemplate(source.template));
        }
        let spec = ContainerSpec {
            name: name.clone(),
            template: source.template.clone(),
            limits: source.limits.clone(),
            owner: None,
            network: source.network,
            hostname: source.hostname.clone(),
            no_egress: source.no_egress,
            init: source.init,
        };
        self.create(&spec)?;
        let mark = importing_mark(self, &name);
        let filled = fs::write(&mark, b"")
            .ctx("write", &mark)
            .and_then(|()| self.fill_from_archive(&name, file));
        match filled {
            Ok(info) => {
                let _ = fs::remove_file(&mark);
                Ok(info)
            }
            Err(e) => {
                let _ = self.destroy(&name, Duration::from_secs(5));
                Err(e)
            }
        }
    }

    fn fill_from_archive(&self, name: &str, file: &Path) -> Result<ContainerInfo> {
        let (_lock, cfg) = self.lock(name)?;
        self.refill(&cfg, "import", crate::DEFAULT_STOP_TIMEOUT, |rw| {
            crate::testing::crash_point("import-filling");
            storage::run_tool(
                Command::new("tar")
                    .arg("--extract")
                    .args(TAR_KEEP)
                    .args(["--same-owner", "--same-permissions", "--strip-components=1"])
                    .arg("--file")
                    .arg(file)
                    .arg("-C")
                    .arg(rw)
                    .arg("upper"),
            )
        })
    }

    /// Whether container `name` (locked by the caller) is the remains of an interrupted
    /// import. The importer holds the container's lock while it fills the layer; the mark
    /// must also be older than two seconds, for the moment between create and that lock.
    pub(crate) fn is_half_imported(&self, name: &str) -> bool {
        fs::metadata(importing_mark(self, name))
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(2)))
    }
}
