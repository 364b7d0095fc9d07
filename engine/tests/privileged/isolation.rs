//! What a container's root can and cannot do.

use std::fs;

use crate::helpers::{engine, Ct};

#[test]
fn root_inside_is_an_unprivileged_host_uid() {
    let Some(engine) = engine("root_inside_is_an_unprivileged_host_uid") else {
        return;
    };
    let ct = Ct::started(engine, "iso-uid", |b| b);
    let (code, out, _) = ct.sh("id -u; cat /proc/self/uid_map");
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"), "root inside: {out}");
    let map: Vec<u64> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let info = engine.show(&ct.name).unwrap();
    assert_eq!(map, vec![0, u64::from(info.host_uid), 65536]);
    assert!(info.host_uid >= 1 << 20);
    // Seen from the host, the container's init runs as that unprivileged uid.
    let status = fs::read_to_string(format!("/proc/{}/status", info.pid.unwrap())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == info.host_uid.to_string()),
        "{uid_line}"
    );
}

#[test]
fn sees_only_its_own_processes_hostname_and_files() {
    let Some(engine) = engine("sees_only_its_own_processes_hostname_and_files") else {
        return;
    };
    let ct = Ct::started(engine, "iso-view", |b| b);
    let marker = format!("/tmp/acetate-host-marker-{}", std::process::id());
    fs::write(&marker, "host secret").unwrap();

    let (code, out, _) = ct.sh(&format!(
        "hostname; cat /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'; \
         test -e {marker} && echo VISIBLE || echo hidden"
    ));
    fs::remove_file(&marker).unwrap();
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], ct.name);
    assert!(
        lines[1].starts_with("acetate-init"),
        "pid 1 is our init: {out}"
    );
    let procs: u32 = lines[2].parse().unwrap();
    assert!(
        procs <= 4,
        "only init, the shell and its children are visible: {out}"
    );
    assert_eq!(lines[3], "hidden");
}

#[test]
fn cannot_change_the_host() {
    let Some(engine) = engine("cannot_change_the_host") else {
        return;
    };
    let ct = Ct::started(engine, "iso-host", |b| b);
    let probe = format!("acetate-write-probe-{}", std::process::id());
    // Writes to template files land in the container's own layer, never on the host.
    let (code, _, err) = ct.sh(&format!(
        "echo tenant > /usr/bin/{probe} && cat /usr/bin/{probe}"
    ));
    assert_eq!(code, 0, "{err}");
    assert!(!std::path::Path::new(&format!("/usr/bin/{probe}")).exists());
    assert!(!engine
        .layout()
        .template_rootfs("host")
        .join(format!("usr/bin/{probe}"))
        .exists());

    let checks = [
        ("mount", "mount -t tmpfs none /mnt"),
        ("bind mount", "mount --bind /usr /mnt"),
        ("new namespaces", "unshare -m true"),
        ("kernel sysctl", "echo 1 > /proc/sys/kernel/sysrq"),
        ("sysfs", "echo x > /sys/kernel/uevent_helper"),
        ("clock", "date -s '2001-01-01'"),
        ("host devices", "mknod /dev/sda1 b 8 1 && cat /dev/sda1"),
        ("kernel log", "dmesg"),
    ];
    for (what, cmd) in checks {
        let (code, out, err) = ct.sh(&format!("{cmd} 2>&1"));
        assert_ne!(code, 0, "{what} must fail inside a container: {out}{err}");
    }
    let (_, out, _) = ct.sh("grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status");
    let field = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .to_string()
    };
    let eff = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
    let bnd = u64::from_str_radix(&field("CapBnd:"), 16).unwrap();
    for (cap, name) in [
        (16, "SYS_MODULE"),
        (21, "SYS_ADMIN"),
        (25, "SYS_TIME"),
        (17, "SYS_RAWIO"),
    ] {
        assert_eq!(eff & (1 << cap), 0, "CAP_{name} must be dropped");
        assert_eq!(
            bnd & (1 << cap),
            0,
            "CAP_{name} must be out of the bounding set"
        );
    }
    assert_eq!(field("Seccomp:"), "2", "a seccomp filter is active");
    // No host cgroup files, read-only /sys, minimal /dev.
    let (_, out, _) = ct.sh("ls /sys/fs/cgroup | wc -l; ls /dev | tr '\\n' ' '");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("0"), "host cgroup files are hidden");
    let devs = lines.next().unwrap();
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts",
    ] {
        assert!(
            devs.split(' ').any(|d| d == dev),
            "/dev/{dev} missing: {devs}"
        );
    }
    assert!(!devs.contains("sda") && !devs.contains("vda") && !devs.contains("mem "));
}

#[test]
fn exec_passes_stdio_and_exit_codes() {
    let Some(engine) = engine("exec_passes_stdio_and_exit_codes") else {
        return;
    };
    let ct = Ct::started(engine, "iso-exec", |b| b);
    let (code, out, _) = ct.run_with_stdin(&["tr", "a-z", "A-Z"], b"hello tenant\n");
    assert_eq!((code, out.as_str()), (0, "HELLO TENANT\n"));
    let (code, _, err) = ct.sh("echo oops >&2; exit 7");
    assert_eq!((code, err.as_str()), (7, "oops\n"));
    let (code, _, err) = ct.run_with_stdin(&["no-such-command"], b"");
    assert_eq!(code, 127);
    assert!(err.contains("command not found"), "{err}");
    let (code, _, _) = ct.sh("kill -9 $$");
    assert_eq!(code, 128 + 9);
}
