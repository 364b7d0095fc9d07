//! Attacks through what the engine is given: crafted template tarballs, crafted layers,
//! device nodes, descriptors of the caller.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use acetate_engine::template::ImportOptions;
use acetate_engine::ExecIo;

use crate::helpers::{engine, Ct};

/// Builds a tarball from `(path, kind)` members.
enum M<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Link(&'a str, &'a str),
    Hard(&'a str, &'a str),
    Dev(&'a str, tar::EntryType, u32, u32),
    Fifo(&'a str),
}

fn tarball(dir: &Path, name: &str, members: &[M<'_>]) -> PathBuf {
    let path = dir.join(name);
    let mut b = tar::Builder::new(fs::File::create(&path).unwrap());
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        let (p, data): (&str, &[u8]) = match m {
            M::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (p, b"")
            }
            M::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (p, data)
            }
            M::Link(p, target) | M::Hard(p, target) => {
                h.set_entry_type(if matches!(m, M::Link(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                h.set_link_name(target).unwrap();
                (p, b"")
            }
            M::Dev(p, kind, major, minor) => {
                h.set_entry_type(*kind);
                h.set_mode(0o666);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                (p, b"")
            }
            M::Fifo(p) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                (p, b"")
            }
        };
        h.set_size(data.len() as u64);
        // Raw names: the builder's checked setters refuse the '..' an attacker would use.
        let bytes = p.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.finish().unwrap();
    path
}

/// A host directory an attack would like to reach, and how it looks now.
struct Victim {
    dir: PathBuf,
    mode: u32,
    root_mode: u32,
}

impl Victim {
    fn new(tag: &str) -> Victim {
        let dir = PathBuf::from(format!("/tmp/acetate-victim-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(dir.join("secret"), "host secret").unwrap();
        Victim {
            mode: fs::metadata(&dir).unwrap().mode(),
            root_mode: fs::metadata("/").unwrap().mode(),
            dir,
        }
    }

    fn assert_untouched(&self) {
        let entries: Vec<_> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(entries, vec!["secret".to_string()], "host dir changed");
        assert_eq!(fs::metadata(&self.dir).unwrap().mode(), self.mode);
        assert_eq!(fs::metadata("/").unwrap().mode(), self.root_mode);
        assert_eq!(
            fs::read_to_string(self.dir.join("secret")).unwrap(),
            "host secret"
        );
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn remove_template(engine: &acetate_engine::Engine, name: &str) {
    let _ = fs::remove_dir_all(engine.layout().template(name));
}

fn no_scratch_left(engine: &acetate_engine::Engine, name: &str) {
    let left: Vec<_> = fs::read_dir(engine.layout().templates())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(name))
        .collect();
    assert!(left.is_empty(), "import left {left:?}");
}

const BASE: &[M<'static>] = &[
    M::Dir("etc", 0o755),
    M::File("etc/hostname", b"x\n", 0o644),
    M::Dir("usr", 0o755),
    M::Dir("usr/bin", 0o755),
];

#[test]
fn crafted_tarballs_cannot_reach_the_host() {
    let Some(engine) = engine("crafted_tarballs_cannot_reach_the_host") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let victim = Victim::new("tar");
    let v = victim.dir.to_str().unwrap();
    let v_file = format!("{v}/secret");
    let attacks: Vec<(&str, Vec<M<'_>>)> = vec![
        // The mount points of the container's root as links to the host's directories.
        (
            "mountpoints",
            vec![
                M::Link("proc", "/"),
                M::Link("dev", "/dev"),
                M::Link("sys", v),
                M::Link("tmp", v),
                M::Link("run", "../../../../../"),
            ],
        ),
        // A link, then members written through it.
        (
            "through",
            vec![
                M::Link("evil", v),
                M::File("evil/pwned", b"owned", 0o4755),
                M::Dir("evil/sub", 0o777),
            ],
        ),
        // A link, then a directory member of the same name whose mode would be applied.
        ("dirmode", vec![M::Link("evil", v), M::Dir("evil", 0o777)]),
        // A link to a host file, then a regular file of the same name (replaced, not
        // written through), then a hard link to it.
        (
            "replace",
            vec![
                M::Link("usr/bin/x", &v_file),
                M::File("usr/bin/x", b"replaced", 0o644),
                M::Hard("usr/bin/y", &v_file),
            ],
        ),
        // Names that climb out of the root.
        (
            "dotdot",
            vec![M::File("../../../../../tmp/pwned", b"x", 0o644)],
        ),
    ];
    for (tag, members) in attacks {
        let name = format!("evil-{tag}-{}", std::process::id());
        let mut all: Vec<M<'_>> = Vec::new();
        for m in BASE {
            all.push(match m {
                M::Dir(p, mode) => M::Dir(p, *mode),
                M::File(p, d, mode) => M::File(p, d, *mode),
                _ => unreachable!(),
            });
        }
        all.extend(members);
        let ball = tarball(tmp.path(), &format!("{tag}.tar"), &all);
        let result = engine.import_template(&name, &ball);
        victim.assert_untouched();
        assert!(!Path::new("/tmp/pwned").exists());
        match (tag, result) {
            ("dotdot", r) => {
                let err = r.unwrap_err().to_string();
                assert!(err.contains("leaves the root"), "{err}");
                no_scratch_left(engine, &name);
            }
            ("mountpoints", Ok(_)) => {
                let root = engine.layout().template_rootfs(&name);
                for dir in ["proc", "dev", "sys", "tmp", "run"] {
                    let m = fs::symlink_metadata(root.join(dir)).unwrap();
                    assert!(m.is_dir(), "{dir} became a real directory");
                }
                remove_template(engine, &name);
            }
            ("replace", Ok(_)) => {
                let root = engine.layout().template_rootfs(&name);
                assert_eq!(fs::read(root.join("usr/bin/x")).unwrap(), b"replaced");
                remove_template(engine, &name);
            }
            (_, Ok(_)) => remove_template(engine, &name),
            (_, Err(_)) => no_scratch_left(engine, &name),
        }
    }
}

#[test]
fn device_nodes_and_set_id_bits_stay_out_of_templates() {
    let Some(engine) = engine("device_nodes_and_set_id_bits_stay_out_of_templates") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut members: Vec<M<'_>> = vec![
        M::Dir("etc", 0o755),
        M::Dir("usr", 0o755),
        M::Dir("usr/bin", 0o755),
        M::Dir("dev", 0o755),
    ];
    members.extend([
        M::Dev("dev/loop0", tar::EntryType::Block, 7, 0),
        M::Dev("dev/mem", tar::EntryType::Char, 1, 1),
        M::Dev("hidden-null", tar::EntryType::Char, 1, 3),
        M::Fifo("run-fifo"),
        M::File("usr/bin/su", b"#!/bin/sh\n", 0o4755),
        M::File("usr/bin/wall", b"#!/bin/sh\n", 0o2755),
    ]);
    let ball = tarball(tmp.path(), "dev.tar", &members);
    let name = format!("devs-{}", std::process::id());
    engine.import_template(&name, &ball).unwrap();
    let root = engine.layout().template_rootfs(&name);
    for gone in ["dev/loop0", "dev/mem", "hidden-null"] {
        assert!(
            fs::symlink_metadata(root.join(gone)).is_err(),
            "{gone} left out"
        );
    }
    assert!(fs::symlink_metadata(root.join("run-fifo")).is_ok());
    let mode = |p: &str| fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode("usr/bin/su"), 0o755);
    assert_eq!(mode("usr/bin/wall"), 0o755);
    remove_template(engine, &name);

    // A provider who trusts the template keeps the bits.
    let opts = ImportOptions {
        allow_setid: true,
        ..ImportOptions::default()
    };
    engine.import_template_with(&name, &ball, &opts).unwrap();
    let root = engine.layout().template_rootfs(&name);
    assert_eq!(
        fs::metadata(root.join("usr/bin/su")).unwrap().mode() & 0o7777,
        0o4755
    );
    remove_template(engine, &name);
}

#[test]
fn imports_are_bounded_in_entries_and_bytes() {
    let Some(engine) = engine("imports_are_bounded_in_entries_and_bytes") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let big = vec![b'x'; 64 << 10];
    let members = vec![
        M::Dir("etc", 0o755),
        M::Dir("usr", 0o755),
        M::Dir("usr/bin", 0o755),
        M::File("usr/bin/a", &big, 0o755),
        M::File("usr/bin/b", &big, 0o755),
    ];
    let ball = tarball(tmp.path(), "big.tar", &members);
    // Also compressed: the bound holds on what comes out of the decompressor.
    let gz = tmp.path().join("big.tar.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -c {} > {}", ball.display(), gz.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let name = format!("bounded-{}", std::process::id());
    for source in [&ball, &gz] {
        let few = ImportOptions {
            max_entries: 3,
            ..ImportOptions::default()
        };
        let err = engine
            .import_template_with(&name, source, &few)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 3 entries"), "{err}");
        no_scratch_left(engine, &name);
        let small = ImportOptions {
            max_bytes: 100 << 10,
            ..ImportOptions::default()
        };
        let err = engine
            .import_template_with(&name, source, &small)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unpacks to more than"), "{err}");
        no_scratch_left(engine, &name);
    }
    // A directory is bounded the same way.
    let tree = tempfile::tempdir().unwrap();
    for d in ["etc", "usr/bin", "var/lib"] {
        fs::create_dir_all(tree.path().join(d)).unwrap();
    }
    fs::write(tree.path().join("usr/bin/a"), &big).unwrap();
    fs::write(tree.path().join("usr/bin/b"), &big).unwrap();
    let few = ImportOptions {
        max_entries: 3,
        ..ImportOptions::default()
    };
    let err = engine
        .import_template_with(&name, tree.path(), &few)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 3 entries"), "{err}");
    no_scratch_left(engine, &name);
    let small = ImportOptions {
        max_bytes: 100 << 10,
        ..ImportOptions::default()
    };
    let err = engine
        .import_template_with(&name, tree.path(), &small)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 100"), "{err}");
    no_scratch_left(engine, &name);

    // A truncated compressed archive is refused, not half-imported.
    let cut = tmp.path().join("cut.tar.gz");
    let data = fs::read(&gz).unwrap();
    fs::write(&cut, &data[..data.len() / 2]).unwrap();
    assert!(engine.import_template(&name, &cut).is_err());
    no_scratch_left(engine, &name);
}

#[test]
fn a_layer_whose_mount_points_are_links_does_not_start() {
    let Some(engine) = engine("a_layer_whose_mount_points_are_links_does_not_start") else {
        return;
    };
    let victim = Victim::new("layer");
    let ct = Ct::created(engine, "evil-layer", |b| b);
    let rootfs = engine.layout().rootfs(&ct.name);
    for (dir, target) in [
        ("run", "/"),
        ("dev", victim.dir.to_str().unwrap()),
        ("proc", "/"),
    ] {
        let p = rootfs.join(dir);
        fs::remove_dir_all(&p).unwrap();
        std::os::unix::fs::symlink(target, &p).unwrap();
        let err = engine.start(&ct.name).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{dir}: {err}");
        victim.assert_untouched();
        assert!(engine.show(&ct.name).unwrap().pid.is_none());
        fs::remove_file(&p).unwrap();
        fs::create_dir(&p).unwrap();
    }
    // Repaired, it starts.
    engine.start(&ct.name).unwrap();
    let (code, out, _) = ct.sh("test -e /proc/self/status && echo ok");
    assert_eq!((code, out.trim()), (0, "ok"));
}

#[test]
fn device_nodes_in_a_layer_open_nothing() {
    let Some(engine) = engine("device_nodes_in_a_layer_open_nothing") else {
        return;
    };
    let ct = Ct::created(engine, "evil-dev", |b| b);
    let rootfs = engine.layout().rootfs(&ct.name);
    // A block device (a loop device of the host) and /dev/mem, planted in the layer.
    for (name, kind, dev) in [
        ("evil-loop", libc::S_IFBLK, libc::makedev(7, 0)),
        ("evil-mem", libc::S_IFCHR, libc::makedev(1, 1)),
        ("evil-null", libc::S_IFCHR, libc::makedev(1, 3)),
    ] {
        let p = std::ffi::CString::new(rootfs.join(name).to_str().unwrap()).unwrap();
        // SAFETY: mknod with a valid path.
        let rc = unsafe { libc::mknod(p.as_ptr(), kind | 0o666, dev) };
        assert_eq!(rc, 0, "mknod {name}");
    }
    engine.start(&ct.name).unwrap();
    let (code, out, err) = ct.sh("for f in /evil-loop /evil-mem /evil-null; do \
           if head -c 1 $f >/dev/null 2>&1; then echo OPENED $f; else echo refused $f; fi; \
         done; echo x > /dev/null && echo devnull-ok");
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("OPENED"), "{out}");
    assert!(out.contains("devnull-ok"), "{out}");
    // On v2 and hybrid hosts the container's processes are in a cgroup2 directory with
    // the BPF device filter (proven on its own below).
    let init = engine.show(&ct.name).unwrap().pid.unwrap();
    let v2_dir = engine
        .cgroup(&ct.name)
        .paths()
        .into_iter()
        .find(|d| d.join("cgroup.subtree_control").exists());
    if let Some(dir) = v2_dir {
        // In the directory or below it (systemd moves itself to `init.scope`).
        let procs = procs_below(&dir);
        assert!(procs.lines().any(|l| l == init.to_string()), "{procs}");
    } else {
        assert!(!std::path::Path::new("/sys/fs/cgroup/unified").exists());
    }
    // On v1 hosts the cgroup allows only the container's own nodes.
    let cg = engine.cgroup(&ct.name);
    if let Some(list) = cg
        .paths()
        .iter()
        .map(|p| p.join("devices.list"))
        .find(|p| p.exists())
    {
        let list = fs::read_to_string(list).unwrap();
        assert!(!list.contains("a *:* rwm"), "{list}");
        assert!(list.contains("c 1:3 rwm"), "{list}");
        assert!(!list.contains("b "), "no block device allowed: {list}");
    }
}

#[test]
fn an_exec_holds_no_descriptor_of_its_caller() {
    let Some(engine) = engine("an_exec_holds_no_descriptor_of_its_caller") else {
        return;
    };
    let ct = Ct::started(engine, "fds", |b| b);
    // A listening socket and a file without close-on-exec, as a careless caller has.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let raw = {
        use std::os::fd::AsRawFd;
        listener.as_raw_fd()
    };
    // SAFETY: clears FD_CLOEXEC on our own descriptor.
    unsafe { libc::fcntl(raw, libc::F_SETFD, 0) };
    let (code, out, _) = ct.sh("ls /proc/self/fd | sort -n | tr '\\n' ' '");
    assert_eq!(code, 0);
    // 0, 1, 2 and the descriptor ls reads the directory with.
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert!(fds.len() <= 4, "the command holds {fds:?}");

    // The helper that waits for a command holds nothing of ours either.
    let null = fs::File::open("/dev/null").unwrap();
    let io = {
        use std::os::fd::AsRawFd;
        ExecIo {
            stdin: Some(null.as_raw_fd()),
            stdout: Some(null.as_raw_fd()),
            stderr: Some(null.as_raw_fd()),
            tty: false,
        }
    };
    let child = engine
        .spawn_exec(&ct.name, &["sleep".into(), "30".into()], &[], io)
        .unwrap();
    let sock_inode = fs::metadata(format!("/proc/self/fd/{raw}")).unwrap().ino();
    let helper_fds: Vec<String> = fs::read_dir(format!("/proc/{}/fd", child.pid()))
        .unwrap()
        .filter_map(|e| fs::read_link(e.unwrap().path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    assert!(
        !helper_fds
            .iter()
            .any(|l| l.contains(&sock_inode.to_string())),
        "helper holds the listening socket: {helper_fds:?}"
    );
    // Its standard streams and three pidfds (the init, its parent, its command).
    assert!(helper_fds.len() <= 6, "helper holds {helper_fds:?}");
    assert!(helper_fds
        .iter()
        .all(|l| l == "/dev/null" || l.contains("pidfd")));
    // The helper is outside the tenant's cgroup; the command is inside.
    let procs: Vec<i32> = cg_procs(engine, &ct.name);
    assert!(
        !procs.contains(&child.pid()),
        "helper in the tenant's cgroup"
    );
    child.kill();
    assert_eq!(child.wait().unwrap(), 137);
    let (_, out, _) = ct.sh("for i in $(seq 50); do \
           if ! ps -eo stat=,comm= | grep -v '^Z' | grep -qw sleep; then echo none; exit; fi; \
           read -t 0.1 x </dev/zero; \
         done; ps -eo pid,stat,comm");
    assert_eq!(out.trim(), "none", "the command died with its helper");
}

fn cg_procs(engine: &acetate_engine::Engine, name: &str) -> Vec<i32> {
    engine.cgroup(name).processes()
}

#[test]
fn two_engines_on_one_host_do_not_collide() {
    let Some(first) = engine("two_engines_on_one_host_do_not_collide") else {
        return;
    };
    let second = crate::helpers::engine_of("engine-second");
    assert_ne!(first.identity(), second.identity());
    // The same name in both: different id ranges, cgroups, addresses.
    let a = Ct::started(first, "twin", |b| b.network(true));
    let b = Ct::started(second, "twin", |b| b.network(true));
    assert_eq!(a.name, b.name);
    let (ia, ib) = (first.show(&a.name).unwrap(), second.show(&b.name).unwrap());
    assert_ne!(ia.host_uid, ib.host_uid);
    assert!(first.identity().owns(ia.host_uid) && second.identity().owns(ib.host_uid));
    assert_ne!(ia.network, ib.network);
    let (pa, pb) = (
        first.cgroup(&a.name).paths(),
        second.cgroup(&b.name).paths(),
    );
    assert!(pa.iter().all(|p| !pb.contains(p)), "{pa:?} {pb:?}");
    // Stopping one leaves the other running, with its own network interface.
    second.stop(&b.name, Duration::from_secs(2)).unwrap();
    let (code, out, _) = a.sh("ip -o link show eth0 >/dev/null && echo up");
    assert_eq!(
        (code, out.trim()),
        (0, "up"),
        "the first engine's container lives on"
    );
    assert_eq!(first.show(&a.name).unwrap().pid, ia.pid);
}

/// Raw frames a tenant with `NET_RAW` can send from `eth0`: a forged source address, a
/// forged source MAC (another tenant's), ARP replies claiming another tenant's address, a
/// router advertisement, and one legitimate datagram.
const FORGE: &str = r#"
import socket, struct, sys
gw_mac, gw_ip, my_ip, other_ip, other_mac, port = sys.argv[1:7]
port = int(port)
mac = lambda m: bytes(int(x, 16) for x in m.split(':'))
ip = socket.inet_aton
my_mac = open('/sys/class/net/eth0/address').read().strip()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
def cks(b):
    if len(b) % 2:
        b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return (~t) & 0xffff
def udp(src_mac, src_ip, payload):
    u = struct.pack('!HHHH', 40000, port, 8 + len(payload), 0) + payload
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(u), 1, 0, 64, 17, 0, ip(src_ip), ip(gw_ip))
    h = h[:10] + struct.pack('!H', cks(h)) + h[12:]
    s.send(mac(gw_mac) + mac(src_mac) + b'\x08\x00' + h + u)
def arp(src_mac, sender_ip):
    a = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 2, mac(src_mac), ip(sender_ip), mac(gw_mac), ip(gw_ip))
    s.send(mac(gw_mac) + mac(src_mac) + b'\x08\x06' + a)
def ra():
    src6 = socket.inet_pton(socket.AF_INET6, 'fe80::ac:1')
    dst6 = socket.inet_pton(socket.AF_INET6, 'ff02::1')
    body = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0)
    pseudo = src6 + dst6 + struct.pack('!I3xB', len(body), 58)
    body = body[:2] + struct.pack('!H', cks(pseudo + body)) + body[4:]
    h6 = struct.pack('!IHBB16s16s', 6 << 28, len(body), 58, 255, src6, dst6)
    s.send(mac('33:33:00:00:00:01') + mac(my_mac) + b'\x86\xdd' + h6 + body)
udp(my_mac, '203.0.113.9', b'forged-ip')
udp(my_mac, other_ip, b'forged-neighbour-ip')
udp(other_mac, my_ip, b'forged-mac')
arp(my_mac, other_ip)
arp(other_mac, other_ip)
ra()
udp(my_mac, my_ip, b'legit')
print('sent')
"#;

fn host_cmd(args: &[&str]) -> String {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_tenant_cannot_forge_addresses_on_the_bridge() {
    let Some(engine) = engine("a_tenant_cannot_forge_addresses_on_the_bridge") else {
        return;
    };
    let a = Ct::started(engine, "forger", |b| b.network(true));
    let b = Ct::started(engine, "victim", |b| b.network(true));
    let ia = engine.show(&a.name).unwrap().network.unwrap();
    let ib = engine.show(&b.name).unwrap().network.unwrap();
    // Each container's eth0 has the MAC the filter expects.
    assert_eq!(a.sh("cat /sys/class/net/eth0/address").1.trim(), ia.mac);
    let bridge = engine.identity().network().bridge;
    let bridge_mac = acetate_engine::network::bridge_mac(&bridge);
    assert_eq!(
        fs::read_to_string(format!("/sys/class/net/{bridge}/address"))
            .unwrap()
            .trim(),
        bridge_mac,
        "the gateway's MAC does not move with its ports"
    );
    // The host knows the victim's MAC (it talks to it first), long enough ago for an
    // unsolicited ARP reply to be allowed to override it. The host listens on its DNS
    // port, the one it opens to containers by default (nothing else of it answers them).
    let udp = std::net::UdpSocket::bind((ia.gateway, 53)).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let port = udp.local_addr().unwrap().port();
    let _ = udp.send_to(b"hello", (ib.address, 9));
    std::thread::sleep(Duration::from_millis(1300));
    let neigh = host_cmd(&[
        "ip",
        "neigh",
        "show",
        &ib.address.to_string(),
        "dev",
        &bridge,
    ]);
    assert!(neigh.contains(&ib.mac), "host learnt the victim: {neigh}");

    let (code, out, err) = a.run_with_stdin(
        &[
            "python3",
            "-",
            &bridge_mac,
            &ia.gateway.to_string(),
            &ia.address.to_string(),
            &ib.address.to_string(),
            &ib.mac,
            &port.to_string(),
        ],
        FORGE.as_bytes(),
    );
    assert_eq!((code, out.trim()), (0, "sent"), "{err}");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while let Ok((n, peer)) = udp.recv_from(&mut buf) {
        got.push((String::from_utf8_lossy(&buf[..n]).into_owned(), peer.ip()));
    }
    assert_eq!(
        got,
        vec![("legit".to_string(), std::net::IpAddr::V4(ia.address))],
        "only the genuine datagram arrives"
    );
    // The host's ARP entry for the victim still has the victim's MAC; the bridge did not
    // learn the victim's MAC on the forger's port; no route came from a router
    // advertisement.
    let neigh = host_cmd(&[
        "ip",
        "neigh",
        "show",
        &ib.address.to_string(),
        "dev",
        &bridge,
    ]);
    assert!(
        neigh.contains(&ib.mac) && !neigh.contains(&ia.mac),
        "{neigh}"
    );
    let fdb = host_cmd(&["bridge", "fdb", "show", "dev", &ia.host_interface]);
    assert!(!fdb.contains(&ib.mac), "forwarding table poisoned: {fdb}");
    let routes = host_cmd(&["ip", "-6", "route", "show", "dev", &bridge]);
    assert!(!routes.contains("default"), "{routes}");
    assert_eq!(
        fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{bridge}/accept_ra"))
            .unwrap()
            .trim(),
        "0"
    );
}

#[test]
fn the_bpf_device_filter_allows_only_the_listed_nodes() {
    if !acetate_engine::testing::root_or_skip("the_bpf_device_filter_allows_only_the_listed_nodes")
    {
        return;
    }
    // The cgroup2 hierarchy: the whole tree on v2 hosts, beside v1 on hybrid ones.
    let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists())
        .expect("a cgroup2 hierarchy");
    let dir = root.join(format!("acetate-devtest-{}", std::process::id()));
    fs::create_dir(&dir).unwrap();
    acetate_engine::devices::restrict(
        &dir,
        &[acetate_engine::devices::Allowed {
            char: true,
            major: 1,
            minor: Some(3),
        }],
    )
    .unwrap();
    // A process that moves itself into the cgroup (and into no v1 devices cgroup), then
    // opens /dev/null (listed) and /dev/zero (not listed).
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {}/cgroup.procs && \
             (head -c1 /dev/zero >/dev/null 2>&1 && echo zero-OPENED || echo zero-refused); \
             echo null-ok > /dev/null && echo null-ok",
            dir.display()
        ))
        .output()
        .unwrap();
    let _ = fs::remove_dir(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        ["zero-refused", "null-ok"],
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `cgroup.procs` of a cgroup2 directory and of every group below it.
fn procs_below(dir: &std::path::Path) -> String {
    let mut all = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            all.push_str(&procs_below(&entry.path()));
        }
    }
    all
}
