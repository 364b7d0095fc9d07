//! Two engines on one host, each with the provider's own settings (one from a config
//! file, one from flags): their ids, cgroups, bridges and addresses never meet, their
//! containers reach the outside (IPv6 routed, IPv4 masqueraded) but not each other, a
//! third engine asking for any part of theirs is refused, and tearing one network down
//! leaves the other's. All of it in network namespaces the test makes.

use std::path::Path;
use std::process::Command;

use acetate_engine::testing::unique_name;

use crate::network::{acetate_in, connect_from, lines, must, ok_in, sh, Namespaces};
use crate::support::state_dir;

/// Ids held by one engine (2048 containers of 65536).
const RANGE: u64 = 2048 * 65536;

/// A fresh state dir with the `host` template, and the cgroup parent to remove after.
struct Engine {
    dir: tempfile::TempDir,
    args: Vec<String>,
    cgroup: String,
}

impl Engine {
    fn state(&self) -> &Path {
        self.dir.path()
    }
    /// `acetate` in namespace `ns` with this engine's settings (flags, if it has them).
    fn ok(&self, ns: &str, args: &[&str]) -> String {
        let mut all: Vec<&str> = self.args.iter().map(String::as_str).collect();
        all.extend(args);
        ok_in(ns, self.state(), &all)
    }
    fn show(&self, ns: &str, name: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(ns, &["--json", "ct", "show", name])).unwrap()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A test that failed half-way leaves its container: it goes first.
        let _ = Command::new(env!("CARGO_BIN_EXE_acetate"))
            .arg("--state-dir")
            .arg(self.state())
            .args(&self.args)
            .args(["ct", "destroy", "web"])
            .output();
        // The parent cgroups the engine made, deepest first, in every hierarchy.
        crate::support::remove_cgroups(&self.cgroup);
    }
}

/// The engines an interrupted run of this test left (killed, it could not clean up):
/// they hold its bridges and subnets, so a new run would be refused them.
fn remove_interrupted_runs() {
    for dir in std::fs::read_dir("/var/tmp")
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = dir.path();
        let ours = dir
            .file_name()
            .to_string_lossy()
            .starts_with("acetate-engine-")
            && std::fs::read_to_string(path.join("engine.json"))
                .is_ok_and(|j| j.contains("\"hosting_a\"") || j.contains("\"hosting_b\""));
        if ours {
            let _ = Command::new(env!("CARGO_BIN_EXE_acetate"))
                .arg("--state-dir")
                .arg(&path)
                .args(["ct", "destroy", "web"])
                .output();
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

fn fresh(args: Vec<String>, cgroup: &str) -> Engine {
    let dir = tempfile::Builder::new()
        .prefix("acetate-engine-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let engine = Engine {
        dir,
        args,
        cgroup: cgroup.to_string(),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_acetate"))
        .arg("--state-dir")
        .arg(engine.state())
        .args(&engine.args)
        .args(["template", "build", "host"])
        .output()
        .unwrap();
    assert!(out.status.success(), "template build: {out:?}");
    engine
}

#[test]
fn two_engines_with_their_own_settings_share_no_ids_cgroups_bridges_or_addresses() {
    let test = "two_engines_with_their_own_settings_share_no_ids_cgroups_bridges_or_addresses";
    if state_dir(test).is_none() {
        return;
    }
    remove_interrupted_runs();
    let pid = std::process::id();
    // High id ranges, apart from the default slots of engines already on this host.
    let base_a = 1_048_576 + (24 + u64::from(pid % 6)) * RANGE;
    let base_b = base_a + RANGE;
    let (cg_a, cg_b) = (
        format!("acetate-test-{pid}/a"),
        format!("acetate-test-{pid}/b"),
    );
    // The first engine reads a config file.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!(
            "[engine]\nbridge = \"hosting_a\"\nsubnet = \"10.61.0.0/24\"\n\
             ipv6-prefix = \"2001:db8:61::/64\"\nid-base = {base_a}\ncgroup-parent = \"{cg_a}\"\n"
        ),
    )
    .unwrap();
    let a = fresh(
        vec!["--config".into(), config.path().display().to_string()],
        &cg_a,
    );
    // The second takes flags.
    let b = fresh(
        vec![
            "--bridge".into(),
            "hosting_b".into(),
            "--subnet".into(),
            "10.62.0.0/24".into(),
            "--id-base".into(),
            base_b.to_string(),
            "--cgroup-parent".into(),
            cg_b.clone(),
        ],
        &cg_b,
    );

    let tag = unique_name("acng");
    let mut ns = Namespaces::new(&tag);
    let (host, peer) = (ns.host.clone(), ns.peer.clone());
    for cmd in [
        format!("ip -n {host} addr add 2001:db8:ff::1/64 dev uplink nodad"),
        format!("ip -n {host} -6 route add default via 2001:db8:ff::2"),
        format!("ip -n {peer} addr add 2001:db8:ff::2/64 dev peer0 nodad"),
        format!("ip -n {peer} route add 10.61.0.0/24 via 203.0.113.1"),
        format!("ip -n {peer} route add 10.62.0.0/24 via 203.0.113.1"),
        format!("ip -n {peer} -6 route add 2001:db8:61::/64 via 2001:db8:ff::1"),
    ] {
        must(&cmd);
    }
    let logs = tempfile::tempdir().unwrap();
    let (v4_log, v6_log) = (logs.path().join("v4"), logs.path().join("v6"));
    ns.serve(&peer, "198.51.100.10", 80, &v4_log);
    ns.serve(&peer, "2001:db8:ff::2", 81, &v6_log);

    let name = "web";
    for e in [&a, &b] {
        e.ok(
            &host,
            &[
                "ct", "create", name, "--net", "--memory", "128M", "--disk", "128M",
            ],
        );
        e.ok(&host, &["ct", "start", name]);
    }
    let (sa, sb) = (a.show(&host, name), b.show(&host, name));
    let net_a: serde_json::Value =
        serde_json::from_str(&a.ok(&host, &["--json", "net", "show"])).unwrap();
    let net_b: serde_json::Value =
        serde_json::from_str(&b.ok(&host, &["--json", "net", "show"])).unwrap();
    let cgroup_of = |v: &serde_json::Value| {
        let pid = v["pid"].as_i64().unwrap();
        std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .lines()
            .find(|l| l.contains(":memory:") || l.starts_with("0::"))
            .unwrap_or("")
            .to_string()
    };
    let report = format!("{sa}\n{sb}\n{net_a}\n{net_b}");
    // Each where its settings say.
    assert_eq!(sa["host_uid"].as_u64(), Some(base_a), "{report}");
    assert_eq!(sb["host_uid"].as_u64(), Some(base_b), "{report}");
    assert_eq!(sa["network"]["address"], "10.61.0.2", "{report}");
    assert_eq!(sa["network"]["address6"], "2001:db8:61::2", "{report}");
    assert_eq!(sa["network"]["gateway6"], "2001:db8:61::1", "{report}");
    assert_eq!(sb["network"]["address"], "10.62.0.2", "{report}");
    assert!(sb["network"].get("address6").is_none(), "{report}");
    assert_ne!(
        sa["network"]["host_interface"],
        sb["network"]["host_interface"]
    );
    assert!(
        cgroup_of(&sa).ends_with(&format!("/{cg_a}/{name}")),
        "{}",
        cgroup_of(&sa)
    );
    assert!(
        cgroup_of(&sb).ends_with(&format!("/{cg_b}/{name}")),
        "{}",
        cgroup_of(&sb)
    );
    assert_eq!(
        (
            net_a["bridge"].as_str(),
            net_a["ipv6_prefix"].as_str(),
            net_a["shared"].as_bool()
        ),
        (Some("hosting_a"), Some("2001:db8:61::/64"), Some(false))
    );
    assert_eq!(net_b["subnet"], "10.62.0.0/24");
    let links = must(&format!("ip -n {host} -o link show type bridge"));
    assert!(
        links.contains("hosting_a") && links.contains("hosting_b"),
        "{links}"
    );

    // Out to the peer: IPv4 masqueraded (seen as the host's uplink address), IPv6 routed
    // from the container's own address.
    assert_eq!(
        connect_from(&host, a.state(), name, "198.51.100.10", 80),
        "hello"
    );
    assert_eq!(
        connect_from(&host, b.state(), name, "198.51.100.10", 80),
        "hello"
    );
    assert_eq!(lines(&v4_log), ["203.0.113.1", "203.0.113.1"]);
    // The first IPv6 contact waits for neighbour discovery on a bridge made a moment ago:
    // a slow machine may need more than one 2-second try.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let got = connect_from(&host, a.state(), name, "2001:db8:ff::2", 81);
        if got == "hello" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "IPv6 out: {got}");
    }
    let seen = lines(&v6_log);
    assert!(
        !seen.is_empty() && seen.iter().all(|a| a == "2001:db8:61::2"),
        "{seen:?}"
    );
    // Its traffic is counted, from the kernel's counters of this namespace's interfaces.
    let counted = a.show(&host, name)["usage"]["net"].clone();
    assert!(
        counted["tx_bytes"].as_u64().unwrap_or(0) > 0
            && counted["rx_bytes"].as_u64().unwrap_or(0) > 0,
        "{counted}"
    );
    // A forged IPv6 source is dropped at the bridge; the container's own passes.
    let udp_log = logs.path().join("udp6");
    let mut listener = Command::new("ip")
        .args(["netns", "exec", &peer, "python3", "-c"])
        .arg(format!(
            "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
             s.bind(('2001:db8:ff::2', 9999))\nwhile True:\n\
             \x20   d, a = s.recvfrom(64)\n\
             \x20   open('{}', 'a').write(a[0] + ' ' + d.decode() + '\\n')\n",
            udp_log.display()
        ))
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let send = "import socket\n\
        for src, text in (('2001:db8:61::99', 'forged'), ('2001:db8:61::2', 'own')):\n\
        \x20   s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
        \x20   s.setsockopt(socket.IPPROTO_IPV6, 78, 1)\n\
        \x20   s.bind((src, 0))\n\
        \x20   s.sendto(text.encode(), ('2001:db8:ff::2', 9999))\n";
    a.ok(&host, &["ct", "exec", name, "--", "python3", "-c", send]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(lines(&udp_log), ["2001:db8:61::2 own"]);
    // Not into each other's network.
    a.ok(&host, &["ct", "exec", name, "--", "sh", "-c",
        "python3 -c 'import socket\ns=socket.socket(); s.bind((\"0.0.0.0\", 7575)); s.listen()\nwhile True:\n  c, _ = s.accept(); c.sendall(b\"a\"); c.close()' >/dev/null 2>&1 &"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(connect_from(&host, a.state(), name, "127.0.0.1", 7575), "a");
    assert_eq!(
        connect_from(&host, b.state(), name, "10.61.0.2", 7575),
        "TimeoutError"
    );

    // A third engine asking for any part of theirs is refused, and nothing is made.
    let third = tempfile::Builder::new()
        .prefix("acetate-engine-")
        .tempdir_in("/var/tmp")
        .unwrap();
    for clash in [
        vec!["--bridge", "hosting_a", "--subnet", "10.63.0.0/24"],
        vec!["--bridge", "hosting_c", "--subnet", "10.62.0.128/25"],
        vec![
            "--bridge",
            "hosting_c",
            "--subnet",
            "10.63.0.0/24",
            "--ipv6-prefix",
            "2001:db8:61::/48",
        ],
        vec!["--cgroup-parent", &cg_b],
    ] {
        let mut args = clash.clone();
        args.extend(["ct", "list"]);
        let out = acetate_in(&host, third.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("already uses it"),
            "{clash:?}: {err}"
        );
        assert!(!third.path().join("engine.json").exists(), "{clash:?}");
    }
    // Settings cannot change under containers.
    let out = acetate_in(
        &host,
        a.state(),
        &["--subnet", "10.64.0.0/24", "ct", "list"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("subnet 10.61.0.0/24 -> 10.64.0.0/24"),
        "{err}"
    );
    // Flags win over the file.
    let out = acetate_in(
        &host,
        a.state(),
        &[
            "--config",
            &config.path().display().to_string(),
            "--bridge",
            "hosting_x",
            "ct",
            "list",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bridge hosting_a -> hosting_x"),
        "{out:?}"
    );

    // A forward reaches a container with an IPv6 address over both families, on the
    // host's own addresses: from outside, and back from the container itself (hairpin).
    a.ok(&host, &["ct", "exec", name, "--", "sh", "-c",
        "python3 -c 'import socket\ns=socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"::\", 7676)); s.listen()\nwhile True:\n  c, _ = s.accept(); c.sendall(b\"dual\"); c.close()' >/dev/null 2>&1 &"]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    a.ok(&host, &["ct", "forward", "add", name, "8076:7676/tcp"]);
    let fetch_port_from_peer = |addr: &str, port: u16| {
        must(&format!(
            "ip netns exec {peer} python3 -c \"import socket\ntry:\n  print(socket.create_connection(('{addr}', {port}), timeout=2).recv(16).decode())\nexcept Exception as e: print(type(e).__name__)\""
        ))
        .trim()
        .to_string()
    };
    let fetch_from_peer = |addr: &str| fetch_port_from_peer(addr, 8076);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while fetch_from_peer("2001:db8:ff::1") != "dual" {
        assert!(
            std::time::Instant::now() < deadline,
            "IPv6 forward: {}",
            fetch_from_peer("2001:db8:ff::1")
        );
    }
    assert_eq!(fetch_from_peer("203.0.113.1"), "dual");
    for addr in ["203.0.113.1", "2001:db8:ff::1"] {
        assert_eq!(
            connect_from(&host, a.state(), name, addr, 8076),
            "dual",
            "hairpin to {addr}"
        );
    }
    // Published on one IPv6 address of the host only; refused for a container without
    // an IPv6 address, changing nothing.
    a.ok(
        &host,
        &[
            "ct",
            "forward",
            "add",
            name,
            "[2001:db8:ff::1]:8077:7676/tcp",
        ],
    );
    assert_eq!(fetch_port_from_peer("2001:db8:ff::1", 8077), "dual");
    assert_eq!(
        fetch_port_from_peer("203.0.113.1", 8077),
        "ConnectionRefusedError"
    );
    let listed = a.ok(&host, &["ct", "forward", "list", name]);
    assert!(
        listed.contains("[2001:db8:ff::1]:8077:7676/tcp"),
        "{listed}"
    );
    let out = acetate_in(
        &host,
        b.state(),
        &["ct", "forward", "add", name, "[2001:db8:ff::1]:8078:80/tcp"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("no IPv6 address"),
        "{err}"
    );
    assert!(b
        .ok(&host, &["ct", "forward", "list", name])
        .contains("no forwards"));
    a.ok(
        &host,
        &["ct", "forward", "remove", name, "[2001:db8:ff::1]:8077/tcp"],
    );
    assert_eq!(
        fetch_port_from_peer("2001:db8:ff::1", 8077),
        "ConnectionRefusedError"
    );
    a.ok(&host, &["ct", "forward", "remove", name, "8076/tcp"]);
    assert_eq!(fetch_from_peer("2001:db8:ff::1"), "ConnectionRefusedError");

    // Tearing the first engine's network down leaves the second's working.
    a.ok(&host, &["ct", "destroy", name]);
    let removed = a.ok(&host, &["net", "teardown"]);
    assert!(
        removed.contains("inet acetate_hosting_a") && removed.contains("bridge hosting_a"),
        "{removed}"
    );
    let tables = must(&format!("ip netns exec {host} nft list tables"));
    assert!(
        !tables.contains("acetate_hosting_a") && tables.contains("acetate_hosting_b"),
        "{tables}"
    );
    assert!(!sh(&format!("ip -n {host} link show hosting_a"))
        .status
        .success());
    assert_eq!(
        connect_from(&host, b.state(), name, "198.51.100.10", 80),
        "hello"
    );
    b.ok(&host, &["ct", "destroy", name]);
    let removed = b.ok(&host, &["net", "teardown"]);
    assert!(
        removed.contains("inet acetate") && removed.contains("bridge acetate"),
        "{removed}"
    );
    assert_eq!(
        must(&format!("ip netns exec {host} nft list tables")).trim(),
        ""
    );
}
