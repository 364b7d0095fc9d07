//! The gateway's SSH host key: made once per state dir, and the same for every panel
//! serving it, even two starting at once.

use std::path::Path;

use russh::keys::PrivateKey;

/// The gateway's host key, made once in `<state>/ssh/` and kept.
pub fn host_key(state_dir: &Path) -> anyhow::Result<PrivateKey> {
    let dir = state_dir.join("ssh");
    let path = dir.join("ssh_host_ed25519_key");
    let read = |text: &str| {
        PrivateKey::from_openssh(text)
            .map_err(|e| anyhow::anyhow!("read the SSH host key {}: {e}", path.display()))
    };
    if let Ok(text) = std::fs::read_to_string(&path) {
        return read(&text);
    }
    use anyhow::Context as _;
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let pair = russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let mut key = PrivateKey::from(pair);
    key.set_comment("acetate gateway");
    let text = key
        .to_openssh(russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encode the SSH host key: {e}"))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    // Written whole under a name of this process's own, then linked into place, which
    // fails if another panel starting on the same state dir got there first: both then
    // serve the key that won, never one each.
    let tmp = dir.join(format!(
        ".ssh_host_ed25519_key.{}.{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, &path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            return read(&text);
        }
        Err(e) => {
            return Err(e).with_context(|| format!("write the SSH host key {}", path.display()))
        }
    }
    let public = dir.join("ssh_host_ed25519_key.pub");
    std::fs::write(&public, format!("{}\n", key.public_key().to_openssh()?))
        .with_context(|| format!("write {}", public.display()))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    #[test]
    fn panels_starting_at_once_on_one_state_dir_serve_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<String> = std::thread::scope(|s| {
            let made: Vec<_> = (0..8)
                .map(|_| s.spawn(|| super::host_key(dir.path()).unwrap()))
                .collect();
            made.into_iter()
                .map(|t| t.join().unwrap().public_key().to_openssh().unwrap())
                .collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");
        // Kept: a later start reads it; nothing of the writers' is left beside it.
        let again = super::host_key(dir.path()).unwrap();
        assert_eq!(again.public_key().to_openssh().unwrap(), keys[0]);
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("ssh"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"]);
    }
}
