//! SSH public keys of accounts: added and removed by their holder, looked up by the SSH
//! gateway when a client offers one.

use russh::keys::{HashAlg, PublicKey};

use super::AppState;
use crate::db::keys::SshKey;
use crate::domain::User;
use crate::error::{AppError, AppResult};

/// Keys an account may hold.
const MAX_KEYS: usize = 50;
/// Longest key line accepted (an RSA 16384-bit key is about 2.8 kB).
const MAX_KEY_LEN: usize = 8192;

/// Parses one line in `authorized_keys` form (`type base64 [comment]`).
pub fn parse(line: &str) -> AppResult<PublicKey> {
    let line = line.trim();
    if line.is_empty() {
        return Err(AppError::Unprocessable(
            "public_key: paste one public key (the line of ~/.ssh/id_ed25519.pub)".into(),
        ));
    }
    if line.starts_with("-----BEGIN") {
        return Err(AppError::Unprocessable(
            "public_key: this is a private key: paste the public one (the .pub file), and \
             keep the private key to yourself"
                .into(),
        ));
    }
    if line.len() > MAX_KEY_LEN || line.lines().count() > 1 {
        return Err(AppError::Unprocessable(
            "public_key: give exactly one public key line".into(),
        ));
    }
    let key = PublicKey::from_openssh(line).map_err(|e| {
        AppError::Unprocessable(format!(
            "public_key: not an OpenSSH public key ({e}); paste the line of your .pub file"
        ))
    })?;
    if key.algorithm().as_str() == "ssh-dss" {
        return Err(AppError::Unprocessable(
            "public_key: DSA keys are insecure and refused: make an ed25519 key \
             (ssh-keygen -t ed25519)"
                .into(),
        ));
    }
    if let Some(rsa) = key.key_data().rsa() {
        let bits = rsa.key_size();
        if bits < 2048 {
            return Err(AppError::Unprocessable(format!(
                "public_key: an RSA key of {bits} bits is too weak: use at least 2048 bits, \
                 or an ed25519 key"
            )));
        }
    }
    Ok(key)
}

/// `SHA256:...`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Adds a key to the caller's account; `name` defaults to the key's comment.
pub async fn add(
    st: &AppState,
    caller: &User,
    name: Option<&str>,
    public_key: &str,
) -> AppResult<SshKey> {
    let key = parse(public_key)?;
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| key.comment().as_str_lossy().trim().to_string());
    let name = if name.is_empty() {
        "key".to_string()
    } else {
        name
    };
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::Unprocessable(
            "name: at most 100 printable characters".into(),
        ));
    }
    if st.db.ssh_keys(caller.id).await?.len() >= MAX_KEYS {
        return Err(AppError::Unprocessable(format!(
            "public_key: an account holds at most {MAX_KEYS} keys: remove one first"
        )));
    }
    let mut line = key.clone();
    line.set_comment("");
    let text = line
        .to_openssh()
        .map_err(|e| AppError::Internal(format!("encode a public key: {e}")))?;
    let fp = fingerprint(&key);
    let added = st
        .db
        .add_ssh_key(caller.id, &name, key.algorithm().as_str(), &fp, text.trim())
        .await?;
    st.db
        .audit(Some(caller), "account.ssh_key.add", &caller.name, &fp)
        .await?;
    Ok(added)
}

pub async fn list(st: &AppState, caller: &User) -> AppResult<Vec<SshKey>> {
    st.db.ssh_keys(caller.id).await
}

/// Removes the caller's key `id`.
pub async fn remove(st: &AppState, caller: &User, id: i64) -> AppResult<()> {
    let keys = st.db.ssh_keys(caller.id).await?;
    let key = keys.iter().find(|k| k.id == id).ok_or(AppError::NotFound)?;
    st.db.delete_ssh_key(caller.id, id).await?;
    st.db
        .audit(
            Some(caller),
            "account.ssh_key.remove",
            &caller.name,
            &key.fingerprint,
        )
        .await?;
    Ok(())
}

/// The account a key logs in as, if any account holds it.
pub async fn account_of(st: &AppState, key: &PublicKey) -> AppResult<Option<User>> {
    Ok(st
        .db
        .user_by_ssh_key(&fingerprint(key))
        .await?
        .map(|(user, _)| user))
}

/// Whether some account holds `key` (before its holder proved it has the private half).
pub async fn is_known(st: &AppState, key: &PublicKey) -> AppResult<bool> {
    st.db.ssh_key_exists(&fingerprint(key)).await
}
