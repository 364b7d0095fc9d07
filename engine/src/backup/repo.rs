//! The provider's backup repository: where it is, its password (made once, 0600), the
//! decrypted key kept beside it, opening (and creating) it through rustic_core, and the
//! byte counts a running backup reports.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustic_backend::BackendOptions;
use rustic_core::repofile::MasterKey;
use rustic_core::{
    ConfigOptions, Credentials, KeyOptions, OpenStatus, Progress, ProgressBars, ProgressType,
    Repository, RepositoryOptions, RusticProgress,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Where backups go: the provider's repository and the file holding its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRepo {
    /// A local path (the only backend this build carries).
    pub location: PathBuf,
    /// Created (0600, random) on first use when missing.
    pub password_file: PathBuf,
}

impl BackupRepo {
    /// The default: `<state>/backups/repo`, its password in `<state>/backups/password`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        BackupRepo {
            location: state_dir.join("backups/repo"),
            password_file: state_dir.join("backups/password"),
        }
    }

    fn password(&self) -> Result<String> {
        match fs::read_to_string(&self.password_file) {
            Ok(p) => return Ok(p.trim_end_matches('\n').to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("read", &self.password_file, e)),
        }
        if let Some(dir) = self.password_file.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .ctx("create directory", dir)?;
        }
        let mut raw = [0u8; 32];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut raw))
            .ctx("read", "/dev/urandom")?;
        let password: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = self.password_file.with_extension("new");
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .ctx("create", &tmp)?;
        f.write_all(format!("{password}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .ctx("write", &tmp)?;
        // Never replaces a password another process wrote meanwhile.
        fs::hard_link(&tmp, &self.password_file)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })
            .ctx("create", &self.password_file)?;
        let _ = fs::remove_file(&tmp);
        self.password()
    }

    /// Where the repository's decrypted master key is kept (0600, beside the password):
    /// restic's key derivation (scrypt, N=2^17) costs about 0.3 s of CPU and 128 MiB on every
    /// open, and protects nothing here, where the password is 256 random bits. One file per
    /// repository location.
    fn key_cache(&self) -> PathBuf {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
        for b in self.location.as_os_str().as_encoded_bytes() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.password_file
            .with_file_name(format!("masterkey-{h:016x}.json"))
    }

    fn write_key_cache(&self, key: &MasterKey) {
        let path = self.key_cache();
        let tmp = path.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(&serde_json::to_vec(key).expect("a key serialises"))?;
                f.sync_all()
            })
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(error = %e, path = %path.display(), "caching the backup key");
        }
    }

    fn backend(&self, progress: Option<&BackupProgress>) -> Result<Repository<()>> {
        let location = self.location.to_string_lossy();
        let backends = BackendOptions::default()
            .repository(location.as_ref())
            .to_backends()
            .map_err(rustic)?;
        // rustic's cache beside the password, not in root's home.
        let opts =
            RepositoryOptions::default().cache_dir(self.password_file.with_file_name("cache"));
        match progress {
            Some(p) => Repository::new_with_progress(&opts, &backends, p.clone()),
            None => Repository::new(&opts, &backends),
        }
        .map_err(rustic)
    }

    /// Opens the repository, creating it (and its password) on first use.
    pub(super) fn open(&self, progress: Option<&BackupProgress>) -> Result<Repository<OpenStatus>> {
        let cached: Option<MasterKey> = fs::read(self.key_cache())
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok());
        if let Some(key) = cached {
            let repo = self.backend(progress)?;
            if repo.config_id().map_err(rustic)?.is_some() {
                match repo.open(&Credentials::Masterkey(key)) {
                    Ok(repo) => return Ok(repo),
                    // Another repository at that path now: the password decides.
                    Err(e) => tracing::debug!(error = %e, "the cached backup key does not open it"),
                }
            }
        }
        let credentials = Credentials::password(self.password()?);
        let repo = self.backend(progress)?;
        if repo.config_id().map_err(rustic)?.is_none() {
            fs::create_dir_all(&self.location).ctx("create directory", &self.location)?;
            let made = repo
                .init(
                    &credentials,
                    &KeyOptions::default(),
                    &ConfigOptions::default(),
                )
                .map_err(rustic)?;
            self.write_key_cache(&made.key());
            return Ok(made);
        }
        let opened = repo.open(&credentials).map_err(|e| match rustic(e) {
            Error::Backup(m) if m.contains("password") => Error::Backup(format!(
                "the repository at {} was made with another password than the one in {} \
                 (each state dir keeps its own: give each engine its own repository, or \
                 the same password file)",
                self.location.display(),
                self.password_file.display()
            )),
            e => e,
        })?;
        self.write_key_cache(&opened.key());
        Ok(opened)
    }
}

/// rustic's error, without the details and backtrace it appends for its own CLI.
pub(super) fn rustic(e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    let text = text
        .split("\n\nSome additional details")
        .next()
        .unwrap_or_default()
        .split("\n\nBacktrace:")
        .next()
        .unwrap_or_default();
    let text: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Message:")
        .collect();
    Error::Backup(text.join(" "))
}

/// Bytes done and to do of the running backup or restore, for a progress display.
#[derive(Debug, Clone, Default)]
pub struct BackupProgress {
    pub done: Arc<AtomicU64>,
    pub total: Arc<AtomicU64>,
}

#[derive(Debug)]
struct ByteCounter(BackupProgress);

impl RusticProgress for ByteCounter {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.total.store(len, Ordering::Relaxed);
    }
    fn set_title(&self, _title: &str) {}
    fn inc(&self, inc: u64) {
        self.0.done.fetch_add(inc, Ordering::Relaxed);
    }
    fn finish(&self) {}
}

impl ProgressBars for BackupProgress {
    fn progress(&self, kind: ProgressType, _prefix: &str) -> Progress {
        match kind {
            ProgressType::Bytes => Progress::new(ByteCounter(self.clone())),
            _ => Progress::hidden(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_made_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let repo = BackupRepo::in_state_dir(dir.path());
        let p1 = repo.password().unwrap();
        assert_eq!(p1.len(), 64);
        assert_eq!(repo.password().unwrap(), p1);
        let mode = fs::metadata(&repo.password_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
