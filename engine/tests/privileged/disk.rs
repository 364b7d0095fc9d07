//! The state dir's disk filling up: admission by the over-commit ratio, the reserve that
//! keeps the host writable, destroy on a full disk, and the repair of a container
//! filesystem that went read-only.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use acetate_engine::capacity::{self, DiskPolicy};
use acetate_engine::testing::{leftovers, root_or_skip, unique_name};
use acetate_engine::{ContainerSpec, Engine};

/// A small ext4 filesystem of the test's own, mounted as a state dir; unmounted (after
/// its containers are destroyed) when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
    state: PathBuf,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let image = dir.path().join("fs.img");
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
            assert!(out.status.success(), "{args:?}: {:?}", out);
        };
        run(&["truncate", "-s", size, image.to_str().unwrap()]);
        run(&["mkfs.ext4", "-q", "-F", "-m", "0", image.to_str().unwrap()]);
        run(&[
            "mount",
            "-o",
            "loop",
            image.to_str().unwrap(),
            state.to_str().unwrap(),
        ]);
        SmallDisk { dir, state }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if let Ok(engine) = Engine::open(&self.state) {
            for c in engine.list().unwrap_or_default() {
                let _ = engine.destroy(&c.name, Duration::from_secs(2));
            }
        }
        let _ = Command::new("umount").arg(&self.state).status();
        let _ = self.dir.path();
    }
}

/// Writes `path` until the disk refuses; returns the bytes written.
fn fill(path: &Path) -> u64 {
    let chunk = vec![0xa5u8; 4 << 20];
    let mut written = 0u64;
    let Ok(mut f) = fs::File::create(path) else {
        return 0;
    };
    loop {
        if f.write_all(&chunk).is_err() || f.sync_data().is_err() {
            return written;
        }
        written += chunk.len() as u64;
    }
}

#[test]
fn a_full_host_disk_is_admitted_reserved_and_repaired() {
    if !root_or_skip("a_full_host_disk_is_admitted_reserved_and_repaired") {
        return;
    }
    let disk = SmallDisk::new("700M");
    let policy = DiskPolicy {
        overcommit: 2.0,
        reserve: Some(64 << 20),
    };
    let engine = Engine::open(&disk.state)
        .unwrap()
        .with_disk_policy(policy)
        .unwrap();
    // A minimal template: the container's init is ours, no shell is needed.
    let tree = tempfile::tempdir().unwrap();
    for d in ["etc", "usr/bin"] {
        fs::create_dir_all(tree.path().join(d)).unwrap();
    }
    engine.import_template("mini", tree.path()).unwrap();

    // Admission: 2 × (size − reserve) of quotas, no more; a refused create leaves nothing.
    let spec = |tag: &str, disk: u64| {
        ContainerSpec::builder(unique_name(tag))
            .template("mini")
            .disk(disk)
            .build()
            .unwrap()
    };
    let a = engine.create(&spec("full-a", 500 << 20)).unwrap().name;
    let b = engine.create(&spec("full-b", 500 << 20)).unwrap().name;
    let refused = spec("full-c", 500 << 20);
    let err = engine.create(&refused).unwrap_err().to_string();
    assert!(
        err.contains("does not fit") && err.contains("over-commit ratio 2"),
        "{err}"
    );
    assert!(leftovers(engine.layout(), &refused.name).is_empty());
    let cap = engine.disk_capacity().unwrap();
    assert_eq!(cap.promised, 1000 << 20);
    assert!(cap.reserve_held, "{cap:?}");
    // Growing a disk is held to the same bound.
    let grow = acetate_engine::LimitsUpdate {
        disk: Some(900 << 20),
        ..Default::default()
    };
    let err = engine.set(&b, &grow).unwrap_err().to_string();
    assert!(err.contains("does not fit"), "{err}");

    // Tenants fill their disks; together they fill the host's.
    engine.start(&a).unwrap();
    engine.start(&b).unwrap();
    let in_a = fill(&engine.layout().rootfs(&a).join("fill"));
    let in_b = fill(&engine.layout().rootfs(&b).join("fill"));
    assert!(in_a > 300 << 20, "a wrote {in_a}");
    let (_, free) = capacity::filesystem(&disk.state).unwrap();
    assert!(
        free < 64 << 20,
        "the host disk is full ({free} free, b wrote {in_b})"
    );
    // The reserve is given up: the panel and its database have room again.
    assert!(engine.relieve_disk().unwrap());
    let (_, free) = capacity::filesystem(&disk.state).unwrap();
    assert!(free >= 64 << 20, "{free}");
    // Destroy works on a full disk and frees the image.
    engine.destroy(&a, Duration::from_secs(2)).unwrap();
    assert!(leftovers(engine.layout(), &a).is_empty());

    // b's filesystem may have gone read-only when its image could not grow: a restart
    // checks and repairs it, and it is writable again.
    let b_disk = engine.layout().disk(&b);
    let went_ro = capacity::is_read_only(&b_disk);
    eprintln!("b's filesystem went read-only: {went_ro}");
    engine.restart(&b, Duration::from_secs(2)).unwrap();
    assert!(!capacity::is_read_only(&b_disk));
    fs::remove_file(engine.layout().rootfs(&b).join("fill")).unwrap();
    fs::write(engine.layout().rootfs(&b).join("after"), "ok").unwrap();
    // The reserve comes back once there is room.
    assert!(!engine.relieve_disk().unwrap());
    assert!(engine.disk_capacity().unwrap().reserve_held);

    // A filesystem the kernel marked as having errors is repaired at its next start.
    engine.stop(&b, Duration::from_secs(2)).unwrap();
    acetate_engine::storage::unmount_all(engine.layout(), &b).unwrap();
    let image = engine.layout().image(&b);
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&image)
            .unwrap();
        let mut state = [0u8; 2];
        f.read_exact_at(&mut state, 1024 + 58).unwrap();
        state[0] |= 0x02;
        f.write_all_at(&state, 1024 + 58).unwrap();
    }
    assert!(capacity::has_errors(&image).unwrap());
    engine.start(&b).unwrap();
    assert!(
        !capacity::has_errors(&image).unwrap(),
        "repaired before mounting"
    );
    assert_eq!(
        fs::read_to_string(engine.layout().rootfs(&b).join("after")).unwrap(),
        "ok"
    );

    // A filesystem that is mounted read-only when the container starts (as the kernel
    // leaves it after a journal abort) is unmounted, checked and mounted writable again.
    engine.stop(&b, Duration::from_secs(2)).unwrap();
    let status = Command::new("mount")
        .args(["-o", "remount,ro"])
        .arg(&b_disk)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(capacity::is_read_only(&b_disk));
    engine.start(&b).unwrap();
    assert!(!capacity::is_read_only(&b_disk));
    fs::write(engine.layout().rootfs(&b).join("again"), "ok").unwrap();
}
