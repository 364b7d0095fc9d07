//! What a container's root can and cannot do.

use std::fs;

use acetate_engine::spec::Init;

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
    for init in [Init::Minimal, Init::Systemd] {
        let ct = Ct::started(engine, "iso-view", |b| b.init(init));
        if init == Init::Systemd {
            assert_eq!(ct.booted(), "running");
        }
        let marker = format!("/tmp/acetate-host-marker-{}", std::process::id());
        fs::write(&marker, "host secret").unwrap();
        // Seen from the host: every process of the container, before the probe runs.
        let own = engine.cgroup(&ct.name).processes().len();
        let (code, out, _) = ct.sh(&format!(
            "hostname; cat /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'; \
             test -e {marker} && echo VISIBLE || echo hidden"
        ));
        fs::remove_file(&marker).unwrap();
        assert_eq!(code, 0);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], ct.name);
        let pid1 = match init {
            Init::Minimal => "acetate-init",
            Init::Systemd | Init::Sysvinit => "/sbin/init",
        };
        assert!(lines[1].starts_with(pid1), "pid 1 is {pid1}: {out}");
        let procs: usize = lines[2].parse().unwrap();
        assert!(
            procs <= own + 3,
            "only its own {own} processes, the shell and its children are visible: {out}"
        );
        assert_eq!(lines[3], "hidden");
    }
}

#[test]
fn cannot_change_the_host() {
    let Some(engine) = engine("cannot_change_the_host") else {
        return;
    };
    for init in [Init::Minimal, Init::Systemd] {
        cannot_change_the_host_with(engine, init);
    }
}

fn cannot_change_the_host_with(engine: &'static acetate_engine::Engine, init: Init) {
    let ct = Ct::started(engine, "iso-host", |b| b.init(init));
    if init == Init::Systemd {
        assert_eq!(ct.booted(), "running");
    }
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
    // PID 1 (systemd too) is bound by the same capabilities and filter.
    let (_, init_status, _) = ct.sh("grep -E '^(CapBnd|Seccomp):' /proc/1/status");
    assert!(
        init_status.contains(&format!("CapBnd:\t{bnd:016x}")),
        "{init_status}"
    );
    assert!(init_status.contains("Seccomp:\t2"), "{init_status}");
    // No host cgroup files: none at all under the minimal init; under systemd only the
    // container's own subtree (the root of its cgroup namespace), whose limits it cannot
    // raise.
    let (_, out, _) = ct.sh(
        "find /sys/fs/cgroup -mindepth 1 -maxdepth 1 -type d -printf '%f '; echo; \
         for f in memory.max pids.max cpu.max memory.swap.max cgroup.max.descendants; do \
           test -e /sys/fs/cgroup/$f && echo max > /sys/fs/cgroup/$f 2>/dev/null && echo RAISED $f; \
         done; grep '^0::' /proc/self/cgroup; ls /dev | tr '\\n' ' '",
    );
    let mut lines = out.lines();
    let groups = lines.next().unwrap();
    match init {
        Init::Minimal | Init::Sysvinit => {
            assert_eq!(groups.trim(), "", "host cgroup files are hidden")
        }
        Init::Systemd => {
            assert!(
                groups.contains("init.scope"),
                "systemd's own groups: {groups}"
            );
            for g in groups.split_whitespace() {
                assert!(
                    g.ends_with(".scope") || g.ends_with(".slice") || g == "acetate-exec",
                    "only systemd's own groups: {groups}"
                );
            }
        }
    }
    let line = lines.next().unwrap();
    assert!(!line.contains("RAISED"), "{line}");
    assert_eq!(
        line, "0::/",
        "the shell sits at the root of its cgroup namespace"
    );
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

#[test]
fn a_networked_container_is_shaped_and_reaches_neither_neighbours_nor_host_services() {
    use std::io::Write;
    let Some(engine) =
        engine("a_networked_container_is_shaped_and_reaches_neither_neighbours_nor_host_services")
    else {
        return;
    };
    let rate = 4_000_000; // 4 Mbit/s
    let a = Ct::started(engine, "net-a", |b| b.net_rate(Some(rate)));
    let b = Ct::started(engine, "net-b", |b| b.network(true));
    let loner = Ct::started(engine, "net-none", |b| b);
    let ia = engine
        .show(&a.name)
        .unwrap()
        .network
        .expect("a has an address");
    let ib = engine
        .show(&b.name)
        .unwrap()
        .network
        .expect("b has an address");
    assert!(engine.show(&loner.name).unwrap().network.is_none());
    assert_ne!(ia.address, ib.address);
    // The tests' engines are on networks of their own, never the host's shared `acetate0`
    // (a real panel's tenants, and its policy for them, live there).
    let net = engine.identity().network();
    assert!(
        net.bridge.starts_with("actest") && !net.is_shared(),
        "the test engine is on {} {}",
        net.bridge,
        net.subnet
    );
    assert!(
        net.subnet.contains(&ia.address),
        "{} is outside {}",
        ia.address,
        net.subnet
    );

    // Inside: eth0 with its address and the default route through the bridge.
    let (code, out, err) = a.sh("cat /proc/net/route; cat /sys/class/net/eth0/operstate");
    assert_eq!(code, 0, "{err}");
    // /proc/net/route shows the gateway as the hex of its bytes in memory order.
    let gateway = format!("{:08X}", u32::from_le_bytes(ia.gateway.octets()));
    assert!(
        out.contains(&format!("eth0\t00000000\t{gateway}")),
        "default route via {}: {out}",
        ia.gateway
    );
    assert!(out.trim_end().ends_with("up"), "{out}");
    let (_, out, _) = loner.sh("ls /sys/class/net");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    // The tenant cannot lift its own rate limit (no CAP_NET_ADMIN).
    let (code, _, _) =
        a.sh("tc qdisc del dev eth0 root 2>/dev/null || ip link set eth0 down 2>/dev/null");
    assert_ne!(code, 0);

    // The host reaches the container, and what the container receives is shaped (the
    // host end's bucket).
    let bytes = 1_500_000usize;
    let serve = "python3 -c 'import socket, time; s=socket.socket(); s.bind((\"0.0.0.0\", 7171)); s.listen(); \
c, a = s.accept(); t=time.monotonic(); n=0\nwhile True:\n  d = c.recv(65536)\n  if not d: break\n  n += len(d)\n\
print(n, time.monotonic()-t, a[0])' > /tmp/received 2>&1 &";
    assert_eq!(a.sh(serve).0, 0);
    let mut to_a = None;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Ok(c) = std::net::TcpStream::connect((ia.address, 7171)) {
            to_a = Some(c);
            break;
        }
    }
    let mut to_a = to_a.expect("the host reaches the container");
    to_a.write_all(&vec![b'x'; bytes]).unwrap();
    drop(to_a);
    let mut report = String::new();
    for _ in 0..100 {
        report = a.sh("cat /tmp/received").1;
        if !report.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let fields: Vec<&str> = report.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{report}");
    let (got, took): (usize, f64) = (fields[0].parse().unwrap(), fields[1].parse().unwrap());
    assert_eq!(got, bytes);
    assert_eq!(
        fields[2],
        ia.gateway.to_string(),
        "the host comes from the gateway"
    );
    // 1.5 MB at 4 Mbit/s is 3 s; the bucket's burst may shave a little off, nothing more.
    let bits_per_second = got as f64 * 8.0 / took;
    assert!(
        bits_per_second < rate as f64 * 1.25,
        "shaped to {rate} bit/s, measured {bits_per_second:.0}"
    );
    let counters = engine.show(&a.name).unwrap().usage.net.expect("counted");
    assert!(counters.rx_bytes >= bytes as u64, "{counters:?}");

    // The container does not reach the host's services (only the ports the provider
    // opens: DNS by default), even one listening on every address.
    let listener = std::net::TcpListener::bind(("0.0.0.0", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!(
        "python3 -c 'import socket; socket.create_connection((\"{}\", {port}), timeout=2)'",
        ia.gateway
    );
    let (code, _, err) = a.sh(&probe);
    assert_ne!(
        code, 0,
        "the container reached a host service on port {port}"
    );
    assert!(err.contains("timed out"), "{err}");
    drop(listener);

    // The limit changes live, and can be lifted; a container without network has none to set.
    let qdisc = |dev: &str| {
        let out = std::process::Command::new("tc")
            .args(["qdisc", "show", "dev", dev])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let set = |name: &str, rate: u64| {
        let update = acetate_engine::LimitsUpdate {
            net_rate: Some(rate),
            ..Default::default()
        };
        engine.set(name, &update)
    };
    set(&a.name, 16_000_000).unwrap();
    // Both ends, each a token bucket as `tc ... tbf rate 16mbit burst 40000 latency 50ms`
    // makes (set through netlink).
    let bucket = "rate 16Mbit burst 40000b lat 50ms";
    assert!(
        qdisc(&ia.host_interface).contains(bucket),
        "{}",
        qdisc(&ia.host_interface)
    );
    let pid = engine.show(&a.name).unwrap().pid.unwrap();
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["tc", "qdisc", "show", "dev", "eth0"])
        .output()
        .unwrap();
    let inside = String::from_utf8_lossy(&out.stdout);
    assert!(inside.contains(bucket), "{inside}");
    assert_eq!(
        engine.show(&a.name).unwrap().limits.net_rate,
        Some(16_000_000)
    );
    set(&a.name, 0).unwrap();
    assert!(
        !qdisc(&ia.host_interface).contains("tbf"),
        "{}",
        qdisc(&ia.host_interface)
    );
    assert_eq!(engine.show(&a.name).unwrap().limits.net_rate, None);
    assert!(matches!(
        set(&loner.name, 16_000_000),
        Err(acetate_engine::Error::InvalidLimit { .. })
    ));

    // Neighbours on the bridge do not reach each other.
    let serve = "python3 -c 'import socket; s=socket.socket(); s.bind((\"0.0.0.0\", 7070)); s.listen(); s.settimeout(4); s.accept()' >/dev/null 2>&1 &";
    assert_eq!(b.sh(serve).0, 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let probe = format!(
        "python3 -c 'import socket; socket.create_connection((\"{}\", 7070), timeout=1)'",
        ib.address
    );
    let (code, _, _) = a.sh(&probe);
    assert_ne!(code, 0, "a reached b across the bridge");
    // The host does reach b.
    let mut host_to_b = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from((ib.address, 7070)),
        std::time::Duration::from_secs(2),
    )
    .expect("the host reaches a container");
    let _ = host_to_b.write_all(b"hi");

    // Stopping removes the pair (the kernel frees a dead namespace's links shortly after),
    // and an immediate restart gets its interface again.
    engine
        .restart(&a.name, std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(a.sh("cat /sys/class/net/eth0/operstate").1.trim(), "up");
    engine
        .stop(&a.name, std::time::Duration::from_secs(5))
        .unwrap();
    let gone = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        !std::path::Path::new("/sys/class/net")
            .join(&ia.host_interface)
            .exists()
    });
    assert!(gone, "{} outlived the container", ia.host_interface);
}
