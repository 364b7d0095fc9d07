//! Secrets the panel keeps in its database — TOTP secrets and the private keys of issued
//! certificates — are sealed (AES-256-GCM) with a key that lives in the state dir
//! (`secrets.key`, root-only), never in the database: a dump or a copy of the database (a
//! PostgreSQL server elsewhere, its backups) does not give them away. Each value is bound
//! to what it is (the column) so that one cannot be passed off as another. Values written
//! before sealing existed are read as they are and sealed when next written.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{AppError, AppResult};

const PREFIX: &str = "sealed1:";
const KEY_FILE: &str = "secrets.key";

/// The state dir's sealing key.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

fn internal(what: &str) -> AppError {
    AppError::Internal(what.to_string())
}

impl Sealer {
    /// The key of `state_dir`, made (32 random bytes, mode 0600) the first time.
    pub fn of_state_dir(state_dir: &Path) -> AppResult<Sealer> {
        let path = state_dir.join(KEY_FILE);
        let rng = SystemRandom::new();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = vec![0u8; 32];
                rng.fill(&mut b)
                    .map_err(|_| internal("no randomness for the sealing key"))?;
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                let mut f = std::fs::OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(|e| AppError::Internal(format!("write {}: {e}", tmp.display())))?;
                f.write_all(&b)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| AppError::Internal(format!("write {}: {e}", tmp.display())))?;
                // A concurrent first start may have won: theirs is the key.
                match std::fs::hard_link(&tmp, &path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        b = std::fs::read(&path).map_err(|e| {
                            AppError::Internal(format!("read {}: {e}", path.display()))
                        })?;
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(AppError::Internal(format!(
                            "install {}: {e}",
                            path.display()
                        )));
                    }
                }
                let _ = std::fs::remove_file(&tmp);
                b
            }
            Err(e) => {
                return Err(AppError::Internal(format!("read {}: {e}", path.display())));
            }
        };
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| internal("the sealing key (secrets.key) is not 32 bytes"))?;
        Ok(Sealer {
            key: LessSafeKey::new(key),
            rng,
        })
    }

    /// `plain` sealed, bound to `what` (the column it goes in).
    pub fn seal(&self, what: &str, plain: &str) -> AppResult<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| internal("no randomness for a nonce"))?;
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(what.as_bytes()),
                &mut data,
            )
            .map_err(|_| internal("sealing a secret"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        ))
    }

    /// The secret in `stored` (sealed for `what`, or kept from before sealing existed).
    pub fn open(&self, what: &str, stored: &str) -> AppResult<String> {
        let Some(body) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let broken = || {
            internal(
                "a sealed secret does not open with this state dir's secrets.key \
                 (another state dir's database, or a changed key)",
            )
        };
        let mut data = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| broken())?;
        if data.len() < NONCE_LEN {
            return Err(broken());
        }
        let nonce = Nonce::try_assume_unique_for_key(&data[..NONCE_LEN]).map_err(|_| broken())?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(what.as_bytes()), &mut data[NONCE_LEN..])
            .map_err(|_| broken())?;
        String::from_utf8(plain.to_vec()).map_err(|_| broken())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_for_their_column() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sealer::of_state_dir(dir.path()).unwrap();
        let key = dir.path().join(KEY_FILE);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sealed = s.seal("totp.secret", "JBSWY3DPEHPK3PXP").unwrap();
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("JBSWY3DP"));
        assert_ne!(sealed, s.seal("totp.secret", "JBSWY3DPEHPK3PXP").unwrap());
        assert_eq!(s.open("totp.secret", &sealed).unwrap(), "JBSWY3DPEHPK3PXP");
        // Bound to its column, and to this key; the same key comes back from the file.
        assert!(s.open("cert_key", &sealed).is_err());
        let other = tempfile::tempdir().unwrap();
        assert!(Sealer::of_state_dir(other.path())
            .unwrap()
            .open("totp.secret", &sealed)
            .is_err());
        let again = Sealer::of_state_dir(dir.path()).unwrap();
        assert_eq!(
            again.open("totp.secret", &sealed).unwrap(),
            "JBSWY3DPEHPK3PXP"
        );
        // A value from before sealing reads as it is.
        assert_eq!(s.open("totp.secret", "PLAIN").unwrap(), "PLAIN");
    }
}
