//! Snapshots and backups: what is restored is what was there, a live snapshot is a clean
//! filesystem, backups store only what changed and what no other backup holds, and
//! Debian's `restic` reads the repository.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use acetate_engine::backup::{BackupRepo, Retention};
use acetate_engine::testing::in_ci;
use acetate_engine::{Error, State};

use crate::helpers::{engine, Ct};

const T: Duration = Duration::from_secs(5);
const MIB: u64 = 1 << 20;

/// Checksums of everything under /data inside the container, sorted.
fn sums(ct: &Ct) -> String {
    let (code, out, err) = ct.sh("cd /data && find . -type f | sort | xargs -r sha256sum");
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn a_snapshot_restores_what_was_there_running_or_not() {
    let Some(engine) = engine("a_snapshot_restores_what_was_there_running_or_not") else {
        return;
    };
    let ct = Ct::started(engine, "snap-rt", |b| b.disk(256 * MIB));
    let (code, _, err) = ct.sh(
        "mkdir -p /data/sub && head -c 3000000 /dev/urandom > /data/big && \
         echo one > /data/sub/a && echo two > /data/b && ln -s b /data/link && \
         rm -f /etc/motd && chown 33:33 /data/b",
    );
    assert_eq!(code, 0, "{err}");
    let before = sums(&ct);
    let snap = engine.snapshot(&ct.name, Some("first"), None).unwrap();
    assert!(snap.live);
    assert!(snap.bytes >= 3_000_000, "{snap:?}");
    assert!(
        snap.bytes < 64 * MIB,
        "a sparse copy, not the whole disk: {snap:?}"
    );

    let (code, _, err) = ct.sh(
        "echo changed > /data/sub/a && rm /data/big && echo new > /data/c && echo hi > /etc/motd",
    );
    assert_eq!(code, 0, "{err}");
    assert_ne!(sums(&ct), before);

    let info = engine.restore_snapshot(&ct.name, "first", T).unwrap();
    assert_eq!(info.state, State::Running, "a running container runs again");
    assert_eq!(sums(&ct), before);
    let (_, out, _) =
        ct.sh("readlink /data/link; stat -c %u /data/b; test -e /etc/motd || echo gone");
    assert_eq!(
        out, "b\n33\ngone\n",
        "links, owners and deletions (whiteouts) come back"
    );

    // Stopped: the same.
    engine.stop(&ct.name, T).unwrap();
    let second = engine.snapshot(&ct.name, None, None).unwrap();
    assert!(
        !second.live && second.name.starts_with("snap-"),
        "{second:?}"
    );
    let names: Vec<_> = engine
        .snapshots(&ct.name)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["first", second.name.as_str()]);

    // Bad input changes nothing.
    assert!(matches!(
        engine.snapshot(&ct.name, Some("first"), None),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        engine.snapshot(&ct.name, Some("x"), Some(2)),
        Err(Error::Unsupported(m)) if m.contains("as many as its plan allows")
    ));
    assert!(matches!(
        engine.snapshot(&ct.name, Some("Bad/Name"), None),
        Err(Error::InvalidName(..))
    ));
    assert!(matches!(
        engine.restore_snapshot(&ct.name, "nope", T),
        Err(Error::NoSuchSnapshot(..))
    ));
    assert_eq!(engine.snapshots(&ct.name).unwrap().len(), 2);

    engine.delete_snapshot(&ct.name, "first").unwrap();
    assert!(matches!(
        engine.delete_snapshot(&ct.name, "first"),
        Err(Error::NoSuchSnapshot(..))
    ));
    assert_eq!(engine.snapshots(&ct.name).unwrap().len(), 1);
    let dir = engine.layout().container(&ct.name).join("snapshots");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        [second.name.as_str()],
        "no debris in {}",
        dir.display()
    );
}

#[test]
fn a_snapshot_under_write_load_is_a_clean_filesystem() {
    let Some(engine) = engine("a_snapshot_under_write_load_is_a_clean_filesystem") else {
        return;
    };
    let ct = Ct::started(engine, "snap-load", |b| b.disk(256 * MIB));
    // Writers that create, append, rename and delete as fast as they can.
    let (code, _, err) = ct.sh(
        "mkdir -p /data; for w in 1 2; do (i=0; while :; do i=$((i+1)); \
         echo $i >> /data/log$w; head -c 20000 /dev/urandom > /data/f$w.$((i%50)).tmp; \
         mv /data/f$w.$((i%50)).tmp /data/f$w.$((i%50)); rm -f /data/f$w.$(((i+25)%50)); \
         done) >/dev/null 2>&1 & done; sleep 1",
    );
    assert_eq!(code, 0, "{err}");
    for n in 0..3 {
        let snap = engine
            .snapshot(&ct.name, Some(&format!("load-{n}")), None)
            .unwrap();
        assert!(snap.live);
        let image = engine
            .layout()
            .container(&ct.name)
            .join("snapshots")
            .join(&snap.name)
            .join("disk.img");
        let out = Command::new("e2fsck")
            .args(["-fn"])
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "e2fsck -fn of snapshot {n}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The writers kept writing: the freeze was let go.
    let (_, a, _) = ct.sh("wc -l < /data/log1");
    std::thread::sleep(Duration::from_millis(300));
    let (_, b, _) = ct.sh("wc -l < /data/log1");
    assert!(b.trim().parse::<u64>().unwrap() > a.trim().parse::<u64>().unwrap());
    assert!(!engine.layout().container(&ct.name).join("frozen").exists());
}

/// Debian's restic, which must read what Acetate writes (installed by scripts/setup).
fn restic(repo: &BackupRepo, args: &[&str]) -> Option<std::process::Output> {
    let out = Command::new("restic")
        .arg("-r")
        .arg(&repo.location)
        .arg("--password-file")
        .arg(&repo.password_file)
        .args(["--no-cache", "--quiet"])
        .args(args)
        .output();
    match out {
        Ok(out) => Some(out),
        Err(e) if !in_ci() => {
            eprintln!("skipping the restic checks: {e} (scripts/setup installs restic)");
            None
        }
        Err(e) => panic!("run restic (scripts/setup installs it): {e}"),
    }
}

/// Deterministic bytes, the same in every container that gets them.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn put(ct: &Ct, path: &str, data: &[u8]) {
    let (code, _, err) = ct.run_with_stdin(
        &["sh", "-c", &format!("mkdir -p /data && cat > {path}")],
        data,
    );
    assert_eq!(code, 0, "{err}");
}

fn dir_size(path: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn backups_store_only_what_changed_once_and_restic_reads_them() {
    let Some(engine) = engine("backups_store_only_what_changed_once_and_restic_reads_them") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = BackupRepo {
        location: dir.path().join("repo"),
        password_file: dir.path().join("password"),
    };
    let big = pattern(50 << 20, 42);
    let a = Ct::started(engine, "bk-a", |b| b.disk(512 * MIB));
    put(&a, "/data/big", &big);
    put(&a, "/data/small", b"version one\n");
    let (code, _, err) = a.sh("rm -f /etc/motd; mkdir -p /srv/www && echo site > /srv/www/index.html && chown -R 33:33 /srv/www");
    assert_eq!(code, 0, "{err}");
    let before = sums(&a);

    let first = engine.backup(&a.name, &repo, None).unwrap();
    assert_eq!(first.container, a.name);
    assert_eq!(first.template, "host");
    assert!(first.added >= 50 << 20, "{first:?}");
    let size1 = dir_size(&repo.location);
    // The password and the key it opens are private to root; rustic's cache is beside them.
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "password" || name.starts_with("masterkey-") {
            let mode =
                std::os::unix::fs::PermissionsExt::mode(&entry.metadata().unwrap().permissions());
            assert_eq!(mode & 0o077, 0, "{name} is {mode:o}");
        }
    }
    assert!(std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("masterkey-")));

    // A small change: the second backup reads and stores only that.
    put(&a, "/data/small", b"version two\n");
    let second = engine.backup(&a.name, &repo, None).unwrap();
    assert!(second.files_unmodified >= 1, "{second:?}");
    assert!(second.added < MIB, "only the change is added: {second:?}");
    let size2 = dir_size(&repo.location);
    assert!(
        size2 - size1 < 2 * MIB,
        "repository grew by {} bytes",
        size2 - size1
    );

    // Another container with the same 50 MB file: stored once.
    let b = Ct::started(engine, "bk-b", |b| b.disk(512 * MIB));
    put(&b, "/data/copy", &big);
    let third = engine.backup(&b.name, &repo, None).unwrap();
    assert!(
        third.added < 2 * MIB,
        "the same data is not stored twice: {third:?}"
    );
    let size3 = dir_size(&repo.location);
    assert!(
        size3 - size2 < 3 * MIB,
        "repository grew by {} bytes",
        size3 - size2
    );

    let listed = engine.backups(&repo, Some(&a.name)).unwrap();
    assert_eq!(
        listed.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        [first.id.as_str(), second.id.as_str()]
    );
    assert_eq!(engine.backups(&repo, None).unwrap().len(), 3);
    let cfg = engine.backup_config(&repo, &second.id).unwrap();
    assert_eq!(
        (cfg.name.as_str(), cfg.template.as_str()),
        (a.name.as_str(), "host")
    );

    // Debian's restic lists them and restores a file without Acetate.
    if let Some(out) = restic(&repo, &["snapshots", "--json"]) {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids: Vec<_> = snaps
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        assert!(
            ids.contains(&first.id) && ids.contains(&third.id),
            "{ids:?} {first:?} {third:?}"
        );
        let target = dir.path().join("restic-out");
        let out = restic(
            &repo,
            &[
                "restore",
                &first.id,
                "--target",
                &target.to_string_lossy(),
                "--include",
                &format!("/acetate/{}/upper/data/big", a.name),
            ],
        )
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = std::fs::read(target.join(format!("acetate/{}/upper/data/big", a.name))).unwrap();
        assert!(got == big, "restic restored other bytes");
        let check = restic(&repo, &["check"]).unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    // Restore the first backup over a changed container: what was there comes back.
    let (code, _, _) = a.sh("rm /data/big; echo x > /data/new; rm -r /srv/www");
    assert_eq!(code, 0);
    put(&a, "/data/small", b"version one\n");
    let info = engine
        .restore_backup(&repo, &first.id, &a.name, T, None)
        .unwrap();
    assert_eq!(info.state, State::Running);
    assert_eq!(sums(&a), before);
    let (_, out, _) = a.sh("stat -c %u:%g /srv/www/index.html; test -e /etc/motd || echo gone");
    assert_eq!(out, "33:33\ngone\n", "owners and deletions come back");

    // Into another container (another id range): the files have its ids.
    let c = Ct::created(engine, "bk-c", |b| b.disk(512 * MIB));
    engine
        .restore_backup(&repo, &second.id, &c.name, T, None)
        .unwrap();
    engine.start(&c.name).unwrap();
    let (_, out, _) = c.sh("cat /data/small; stat -c %u /srv/www/index.html");
    assert_eq!(out, "version two\n33\n");
    let host_uid = std::fs::metadata(engine.layout().upper(&c.name).join("srv/www/index.html"))
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    assert_eq!(host_uid, engine.show(&c.name).unwrap().host_uid + 33);

    // Bad input changes nothing.
    assert!(matches!(
        engine.restore_backup(&repo, "deadbeef", &a.name, T, None),
        Err(Error::NoSuchBackup(_))
    ));
    assert!(matches!(
        engine.restore_backup(&repo, "../x", &a.name, T, None),
        Err(Error::NoSuchBackup(_))
    ));
    assert_eq!(sums(&a), before);

    // Retention: keep the last one of a's.
    let gone = engine
        .forget_backups(
            &repo,
            &a.name,
            &Retention {
                last: Some(1),
                ..Retention::default()
            },
        )
        .unwrap();
    assert_eq!(gone, [first.id.as_str()]);
    let left = engine.backups(&repo, None).unwrap();
    assert_eq!(left.len(), 2, "b's backup is untouched: {left:?}");
    if let Some(out) = restic(&repo, &["snapshots", "--json"]) {
        let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            snaps.as_array().unwrap().len(),
            2,
            "restic sees the pruned repository"
        );
        let check = restic(&repo, &["check"]).unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

#[test]
fn an_export_imports_as_it_was_under_another_name_and_bad_archives_change_nothing() {
    let Some(engine) = engine("an_export_imports_as_it_was_under_another_name") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Ct::started(engine, "exp-a", |b| b.disk(256 * MIB).memory(192 * MIB));
    let (code, _, err) = a.sh(
        "mkdir -p /data/d && head -c 2000000 /dev/urandom > /data/big && echo hi > /data/d/x && \
         ln -s d/x /data/link && chown -R 33:33 /data/d && rm -f /etc/motd && \
         setfattr -n user.note -v kept /data/big 2>/dev/null; true",
    );
    assert_eq!(code, 0, "{err}");
    let before = sums(&a);
    let file = dir.path().join("a.tar.zst");
    let bytes = engine.export(&a.name, &file).unwrap();
    assert!(bytes > 1_000_000 && bytes < 8_000_000, "{bytes}");
    assert!(!dir.path().join("a.partial").exists());
    // GNU tar lists it without Acetate; ids are the container's own.
    let out = Command::new("tar")
        .args(["--zstd", "--numeric-owner", "-tvf"])
        .arg(&file)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("33/33") && listing.contains("upper/data/big"),
        "{listing}"
    );

    let name = acetate_engine::testing::unique_name("exp-b");
    let info = engine.import(&file, Some(&name)).unwrap();
    let b = Ct {
        engine,
        name: name.clone(),
    };
    assert_eq!(info.state, State::Stopped);
    assert_eq!(
        (info.limits.disk, info.limits.memory),
        (256 * MIB, 192 * MIB)
    );
    assert_ne!(info.host_uid, engine.show(&a.name).unwrap().host_uid);
    engine.start(&name).unwrap();
    assert_eq!(sums(&b), before);
    let (_, out, _) =
        b.sh("stat -c %u:%g /data/d/x; readlink /data/link; test -e /etc/motd || echo gone");
    assert_eq!(out, "33:33\nd/x\ngone\n");
    assert!(!engine.layout().container(&name).join("importing").exists());

    // Bad input changes nothing: no archive, not an archive, a taken name, a missing
    // template.
    assert!(engine
        .import(&dir.path().join("missing.tar.zst"), Some("imp-x"))
        .is_err());
    std::fs::write(dir.path().join("junk.tar.zst"), b"not an archive").unwrap();
    let err = engine
        .import(&dir.path().join("junk.tar.zst"), Some("imp-x"))
        .unwrap_err();
    assert!(err.to_string().contains("not an Acetate export"), "{err}");
    assert!(matches!(
        engine.import(&file, Some(&name)),
        Err(Error::NameTaken(_))
    ));
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let out = Command::new("tar")
        .args(["--zstd", "-xf"])
        .arg(&file)
        .arg("-C")
        .arg(&other)
        .arg("config.json")
        .status()
        .unwrap();
    assert!(out.success());
    let cfg = std::fs::read_to_string(other.join("config.json"))
        .unwrap()
        .replace("\"template\": \"host\"", "\"template\": \"gone-template\"");
    std::fs::write(other.join("config.json"), cfg).unwrap();
    std::fs::create_dir(other.join("upper")).unwrap();
    let bad = dir.path().join("bad.tar.zst");
    let status = Command::new("tar")
        .args(["--zstd", "-cf"])
        .arg(&bad)
        .arg("-C")
        .arg(&other)
        .args(["config.json", "upper"])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(matches!(
        engine.import(&bad, Some("imp-y")),
        Err(Error::NoSuchTemplate(t)) if t == "gone-template"
    ));
    // Nothing was made (other tests share the engine: count this test's names only).
    assert!(!engine
        .list()
        .unwrap()
        .iter()
        .any(|c| c.name == "imp-y" || c.name == "imp-x"));
    assert!(acetate_engine::testing::leftovers(engine.layout(), "imp-x").is_empty());
    assert!(acetate_engine::testing::leftovers(engine.layout(), "imp-y").is_empty());
}

/// A state dir on its own XFS filesystem (reflinks), with the shared `host` template bound
/// into it; unmounted when dropped.
struct XfsStateDir {
    _dir: tempfile::TempDir,
    mnt: std::path::PathBuf,
}

impl XfsStateDir {
    fn new(template_from: &Path) -> Option<XfsStateDir> {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let img = dir.path().join("xfs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
        match Command::new("mkfs.xfs")
            .args(["-q", "-m", "reflink=1"])
            .arg(&img)
            .status()
        {
            Ok(s) => assert!(s.success(), "mkfs.xfs"),
            Err(e) if !in_ci() => {
                eprintln!("skipping the reflink test: {e} (scripts/setup installs xfsprogs)");
                return None;
            }
            Err(e) => panic!("run mkfs.xfs (scripts/setup installs xfsprogs): {e}"),
        }
        let mnt = dir.path().join("state");
        std::fs::create_dir(&mnt).unwrap();
        let ok = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(ok.success(), "mount the XFS image");
        let host = mnt.join("templates/host");
        std::fs::create_dir_all(&host).unwrap();
        let ok = Command::new("mount")
            .arg("--bind")
            .arg(template_from)
            .arg(&host)
            .status()
            .unwrap();
        assert!(ok.success(), "bind the host template");
        Some(XfsStateDir { _dir: dir, mnt })
    }
}

impl Drop for XfsStateDir {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg(self.mnt.join("templates/host"))
            .status();
        // Busy for a moment while the test's last container goes; never left mounted (its
        // image is deleted with the temporary dir, its loop device held until unmounted).
        let unmounted = (0..50).any(|_| {
            let done = Command::new("umount")
                .arg(&self.mnt)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !done {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            done
        });
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}

#[test]
fn on_a_state_dir_that_shares_blocks_a_snapshot_is_a_reflink() {
    let Some(shared) = engine("on_a_state_dir_that_shares_blocks_a_snapshot_is_a_reflink") else {
        return;
    };
    let Some(xfs) = XfsStateDir::new(&shared.layout().template("host")) else {
        return;
    };
    let engine: &'static acetate_engine::Engine =
        Box::leak(Box::new(acetate_engine::Engine::open(&xfs.mnt).unwrap()));
    {
        let ct = Ct::started(engine, "reflink", |b| b.disk(512 * MIB));
        let (code, _, err) =
            ct.sh("mkdir -p /data && head -c 100000000 /dev/urandom > /data/big && sync");
        assert_eq!(code, 0, "{err}");
        let before = sums(&ct);
        let used = |p: &Path| {
            nix::sys::statvfs::statvfs(p)
                .map(|s| (s.blocks() - s.blocks_free()) * s.fragment_size())
                .unwrap()
        };
        let used_before = used(&xfs.mnt);
        let snap = engine.snapshot(&ct.name, Some("shared"), None).unwrap();
        assert_eq!(snap.copy, "reflink", "{snap:?}");
        // The copy shares the container's blocks: the filesystem barely grows.
        let grown = used(&xfs.mnt).saturating_sub(used_before);
        assert!(
            grown < 20 * MIB,
            "the snapshot took {grown} bytes of new space"
        );
        let (code, _, _) = ct.sh("rm /data/big && echo new > /data/other");
        assert_eq!(code, 0);
        engine.restore_snapshot(&ct.name, "shared", T).unwrap();
        assert_eq!(sums(&ct), before);
    }
}
