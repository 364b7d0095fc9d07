//! Containers' traffic beyond the bridge, in network namespaces the test makes: an
//! "outside" peer (documentation addresses 203.0.113.0/24 and 198.51.100.0/24) behind an
//! uplink, the engine's host side in a namespace of its own (its bridge, nftables tables
//! and forwarding switch are private to it). Egress is masqueraded, SMTP refused unless
//! allowed, the host's services closed to tenants unless opened, nothing outside reaches a
//! container's private address, and `acetate net teardown` leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use acetate_engine::testing::unique_name;

use crate::support::state_dir;

/// Two network namespaces joined by a veth pair; deleted (with everything in them) when
/// dropped.
pub(crate) struct Namespaces {
    pub(crate) host: String,
    pub(crate) peer: String,
    servers: Vec<Child>,
}

pub(crate) fn sh(cmd: &str) -> Output {
    Command::new("sh").args(["-c", cmd]).output().unwrap()
}

pub(crate) fn must(cmd: &str) -> String {
    let out = sh(cmd);
    assert!(out.status.success(), "{cmd}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Namespaces {
    pub(crate) fn new(tag: &str) -> Namespaces {
        let host = format!("{tag}-h");
        let peer = format!("{tag}-p");
        let _ = sh(&format!("ip netns del {host}; ip netns del {peer}"));
        for cmd in [
            format!("ip netns add {host}"),
            format!("ip netns add {peer}"),
            format!("ip -n {host} link add uplink type veth peer name peer0 netns {peer}"),
            format!("ip -n {host} addr add 203.0.113.1/24 dev uplink"),
            format!("ip -n {host} link set uplink up"),
            format!("ip -n {host} link set lo up"),
            format!("ip -n {host} route add default via 203.0.113.2"),
            // Forwarding off, as on a host that never routed: the engine turns it on.
            format!("ip netns exec {host} sysctl -qw net.ipv4.ip_forward=0"),
            format!("ip -n {peer} addr add 203.0.113.2/24 dev peer0"),
            format!("ip -n {peer} addr add 198.51.100.10/32 dev lo"),
            format!("ip -n {peer} link set peer0 up"),
            format!("ip -n {peer} link set lo up"),
            // The peer knows the way to the containers' network, as a misconfigured or
            // hostile neighbour on the provider's LAN would.
            format!("ip -n {peer} route add 10.0.0.0/8 via 203.0.113.1"),
        ] {
            must(&cmd);
        }
        Namespaces {
            host,
            peer,
            servers: Vec::new(),
        }
    }

    /// A TCP server in namespace `ns` on `addr:port` (IPv4 or IPv6) that answers `hello` and appends each
    /// client's address to `log`.
    pub(crate) fn serve(&mut self, ns: &str, addr: &str, port: u16, log: &Path) {
        let code = format!(
            "import socket\n\
             s = socket.socket(socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('{addr}', {port})); s.listen()\n\
             while True:\n\
             \x20   c, a = s.accept()\n\
             \x20   open('{log}', 'a').write(a[0] + '\\n')\n\
             \x20   c.sendall(b'hello'); c.close()\n",
            log = log.display()
        );
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &code])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.servers.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !must(&format!("ip netns exec {ns} ss -Htln")).contains(&format!(":{port} ")) {
            assert!(
                Instant::now() < deadline,
                "the server on {addr}:{port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = sh(&format!(
            "ip netns del {}; ip netns del {}",
            self.host, self.peer
        ));
    }
}

/// `acetate ARGS` run in namespace `ns` (the engine's host side there). `nsenter` joins
/// the network namespace only (`ip netns exec` would also remount /sys, hiding the cgroup
/// hierarchies).
pub(crate) fn acetate_in(ns: &str, state: &Path, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg(env!("CARGO_BIN_EXE_acetate"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn ok_in(ns: &str, state: &Path, args: &[&str]) -> String {
    let out = acetate_in(ns, state, args);
    assert!(out.status.success(), "acetate {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Connects from container `name` to `addr:port`: what it answered, or why it failed.
pub(crate) fn connect_from(ns: &str, state: &Path, name: &str, addr: &str, port: u16) -> String {
    let code = format!(
        "import socket\n\
         try:\n\
         \x20   c = socket.create_connection(('{addr}', {port}), timeout=2)\n\
         \x20   print(c.recv(16).decode())\n\
         except Exception as e:\n\
         \x20   print(type(e).__name__)\n"
    );
    let out = acetate_in(
        ns,
        state,
        &["ct", "exec", name, "--", "python3", "-c", &code],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub(crate) fn lines(path: &PathBuf) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn egress_is_masqueraded_smtp_refused_and_the_host_closed_to_tenants() {
    let test = "egress_is_masqueraded_smtp_refused_and_the_host_closed_to_tenants";
    let Some(state) = state_dir(test) else { return };
    let tag = unique_name("acnt");
    let mut ns = Namespaces::new(&tag);
    let logs = tempfile::tempdir().unwrap();
    let (web_log, smtp_log, host_log) = (
        logs.path().join("web"),
        logs.path().join("smtp"),
        logs.path().join("host"),
    );
    ns.serve(&ns.peer.clone(), "198.51.100.10", 80, &web_log);
    ns.serve(&ns.peer.clone(), "198.51.100.10", 25, &smtp_log);
    ns.serve(&ns.host.clone(), "0.0.0.0", 8099, &host_log);

    let name = unique_name("egress");
    let host = ns.host.clone();
    let forwarding = || {
        must(&format!(
            "ip netns exec {host} cat /proc/sys/net/ipv4/ip_forward"
        ))
    };
    let forwarding_before = forwarding();
    ok_in(
        &host,
        &state,
        &[
            "ct", "create", &name, "--net", "--memory", "256M", "--disk", "256M",
        ],
    );
    let cleanup = scopeguard(&host, &state, &name);
    // The test engine's own network (a bridge and a subnet of its own, see README).
    let net = acetate_engine::identity::Identity::stored(&state).network();
    let (bridge, gateway) = (net.bridge.clone(), net.gateway().to_string());
    // A route a router advertisement planted on the bridge before Acetate's filter was
    // there goes when the engine sets the bridge up (over netlink).
    must(&format!(
        "ip netns exec {host} sh -c 'ip link add {bridge} type bridge && \
         ip link set {bridge} up && \
         ip -6 route add 2001:db8:99::/64 dev {bridge} proto ra'"
    ));
    // A forward left by an earlier version, whose maps held address and port together:
    // moved into the pair of maps the JSON interface takes, and still DNATed.
    let legacy = "add table inet acetate\n\
        add map inet acetate fwd_tcp { type inet_service : ipv4_addr . inet_service; }\n\
        add element inet acetate fwd_tcp { 9090 : 10.88.0.77 . 80 }\n\
        add chain inet acetate prerouting { type nat hook prerouting priority dstnat; }\n\
        add rule inet acetate prerouting fib daddr type local dnat ip to tcp dport map @fwd_tcp\n";
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &host, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(legacy.as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(status.success());
    ok_in(&host, &state, &["ct", "start", &name]);
    let planted = must(&format!("ip netns exec {host} ip -6 route show proto ra"));
    assert_eq!(planted.trim(), "", "the advertised route is gone");
    let table = must(&format!("ip netns exec {host} nft list table inet acetate"));
    assert!(!table.contains("map fwd_tcp {"), "{table}");
    assert!(table.contains("9090 : 10.88.0.77"), "{table}");
    assert!(table.contains("9090 : 80"), "{table}");
    assert!(
        table.contains("dnat ip to tcp dport map @fwd_tcp_addr:tcp dport map @fwd_tcp_port"),
        "{table}"
    );

    assert_eq!((forwarding_before.trim(), forwarding().trim()), ("0", "1"));
    // Out through the uplink, seen outside as the host's address, never the private one.
    assert_eq!(
        connect_from(&host, &state, &name, "198.51.100.10", 80),
        "hello"
    );
    assert_eq!(lines(&web_log), ["203.0.113.1"]);
    // Mail is refused at once (a reset), and never reaches the peer.
    assert_eq!(
        connect_from(&host, &state, &name, "198.51.100.10", 25),
        "ConnectionRefusedError"
    );
    assert!(lines(&smtp_log).is_empty());
    // The host's own service, listening on every address, is closed to the tenant.
    assert_eq!(
        connect_from(&host, &state, &name, &gateway, 8099),
        "TimeoutError"
    );
    assert_eq!(
        connect_from(&host, &state, &name, "203.0.113.1", 8099),
        "TimeoutError"
    );
    assert!(lines(&host_log).is_empty());
    // Nothing outside reaches the container's private address.
    let show: serde_json::Value =
        serde_json::from_str(&ok_in(&host, &state, &["--json", "ct", "show", &name])).unwrap();
    let address = show["network"]["address"].as_str().unwrap().to_string();
    ok_in(&host, &state, &["ct", "exec", &name, "--", "sh", "-c",
        "python3 -c 'import socket; s=socket.socket(); s.bind((\"0.0.0.0\", 7272)); s.listen(); s.settimeout(8); s.accept()' >/dev/null 2>&1 &"]);
    std::thread::sleep(Duration::from_millis(300));
    let probe = must(&format!(
        "ip netns exec {} python3 -c \"import socket\ntry:\n  socket.create_connection(('{address}', 7272), timeout=2); print('reached')\nexcept Exception as e: print(type(e).__name__)\"",
        ns.peer
    ));
    assert_eq!(
        probe.trim(),
        "TimeoutError",
        "the outside reached {address}"
    );

    // A public port forwarded to the container: from outside, from the host itself and
    // from another container (hairpin), to any of the host's addresses; given only once;
    // kept across a restart.
    let serve_in = |ct: &str| {
        ok_in(&host, &state, &["ct", "exec", ct, "--", "sh", "-c",
            "python3 -c 'import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"0.0.0.0\", 7474)); s.listen()\nwhile True:\n  c, a = s.accept(); c.sendall(b\"from-ct\"); c.close()' >/dev/null 2>&1 &"]);
        std::thread::sleep(Duration::from_millis(400));
    };
    serve_in(&name);
    let added = ok_in(
        &host,
        &state,
        &["ct", "forward", "add", &name, "8022:7474/tcp"],
    );
    assert!(added.contains("8022:7474/tcp"), "{added}");
    let from_peer = |port: u16| {
        must(&format!(
            "ip netns exec {} python3 -c \"import socket\ntry:\n  print(socket.create_connection(('203.0.113.1', {port}), timeout=2).recv(16).decode())\nexcept Exception as e: print(type(e).__name__)\"",
            ns.peer
        ))
        .trim()
        .to_string()
    };
    assert_eq!(from_peer(8022), "from-ct");
    // A forward published on one address of the host only.
    must(&format!("ip -n {host} addr add 203.0.113.3/24 dev uplink"));
    let added = ok_in(
        &host,
        &state,
        &["ct", "forward", "add", &name, "203.0.113.3:8024:7474/tcp"],
    );
    assert!(added.contains("203.0.113.3:8024:7474/tcp"), "{added}");
    let from_peer_to = |addr: &str, port: u16| {
        must(&format!(
            "ip netns exec {} python3 -c \"import socket\ntry:\n  print(socket.create_connection(('{addr}', {port}), timeout=2).recv(16).decode())\nexcept Exception as e: print(type(e).__name__)\"",
            ns.peer
        ))
        .trim()
        .to_string()
    };
    assert_eq!(from_peer_to("203.0.113.3", 8024), "from-ct");
    assert_eq!(from_peer_to("203.0.113.1", 8024), "ConnectionRefusedError");
    ok_in(
        &host,
        &state,
        &["ct", "forward", "remove", &name, "203.0.113.3:8024/tcp"],
    );
    assert_eq!(from_peer_to("203.0.113.3", 8024), "ConnectionRefusedError");
    let from_host = must(&format!(
        "ip netns exec {host} python3 -c \"import socket; print(socket.create_connection(('203.0.113.1', 8022), timeout=2).recv(16).decode())\""
    ));
    assert_eq!(from_host.trim(), "from-ct");
    let other = unique_name("egress-b");
    ok_in(
        &host,
        &state,
        &[
            "ct", "create", &other, "--net", "--memory", "128M", "--disk", "128M",
        ],
    );
    let _other_guard = scopeguard(&host, &state, &other);
    ok_in(&host, &state, &["ct", "start", &other]);
    assert_eq!(
        connect_from(&host, &state, &other, "203.0.113.1", 8022),
        "from-ct"
    );
    assert_eq!(
        connect_from(&host, &state, &other, &gateway, 8022),
        "from-ct"
    );
    let out = acetate_in(&host, &state, &["ct", "forward", "add", &other, "8022:22"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already forwarded"),
        "{out:?}"
    );
    assert!(ok_in(&host, &state, &["ct", "forward", "list", &other]).contains("no forwards"));
    ok_in(&host, &state, &["ct", "restart", &name]);
    serve_in(&name);
    assert_eq!(from_peer(8022), "from-ct");
    // An unforwarded port of the host leads nowhere.
    assert_eq!(from_peer(8023), "ConnectionRefusedError");
    ok_in(&host, &state, &["ct", "stop", &other]);

    // A container made without egress (a plan can say so) reaches nothing outside, until
    // it is let out, live.
    let closed = unique_name("egress-c");
    ok_in(
        &host,
        &state,
        &[
            "ct",
            "create",
            &closed,
            "--net",
            "--no-egress",
            "--memory",
            "128M",
            "--disk",
            "128M",
        ],
    );
    let _closed_guard = scopeguard(&host, &state, &closed);
    ok_in(&host, &state, &["ct", "start", &closed]);
    assert_ne!(
        connect_from(&host, &state, &closed, "198.51.100.10", 80),
        "hello"
    );
    assert_eq!(
        lines(&web_log).len(),
        1,
        "the peer heard from a container without egress"
    );
    // The host's open ports and forwards still work for it.
    assert_eq!(
        connect_from(&host, &state, &closed, "203.0.113.1", 8022),
        "from-ct"
    );
    ok_in(&host, &state, &["ct", "egress", &closed, "on"]);
    assert_eq!(
        connect_from(&host, &state, &closed, "198.51.100.10", 80),
        "hello"
    );
    ok_in(&host, &state, &["ct", "egress", &closed, "off"]);
    assert_ne!(
        connect_from(&host, &state, &closed, "198.51.100.10", 80),
        "hello"
    );
    ok_in(&host, &state, &["ct", "stop", &closed]);

    // The provider's settings open what it chooses; a start applies them.
    ok_in(
        &host,
        &state,
        &[
            "--allow-smtp",
            "--host-port",
            "8099/tcp",
            "ct",
            "restart",
            &name,
        ],
    );
    assert_eq!(
        connect_from(&host, &state, &name, "198.51.100.10", 25),
        "hello"
    );
    assert_eq!(lines(&smtp_log), ["203.0.113.1"]);
    assert_eq!(connect_from(&host, &state, &name, &gateway, 8099), "hello");
    let policy = ok_in(
        &host,
        &state,
        &["--allow-smtp", "--host-port", "8099/tcp", "net", "policy"],
    );
    assert!(
        policy.contains("allowed") && policy.contains("8099/tcp"),
        "{policy}"
    );

    // Teardown is refused while the container runs, then removes everything Acetate added
    // to this namespace: both tables, the bridge, forwarding (as it was before).
    let out = acetate_in(&host, &state, &["net", "teardown"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&name),
        "{out:?}"
    );
    ok_in(&host, &state, &["ct", "stop", &name]);
    let removed = ok_in(&host, &state, &["net", "teardown"]);
    assert!(
        removed.contains("inet acetate") && removed.contains(&format!("bridge {bridge}")),
        "{removed}"
    );
    assert_eq!(
        must(&format!("ip netns exec {host} nft list tables")).trim(),
        ""
    );
    assert!(!sh(&format!("ip -n {host} link show {bridge}"))
        .status
        .success());
    assert_eq!(forwarding(), forwarding_before, "forwarding is as it was");
    // And the next start puts it all back, its forward too.
    ok_in(&host, &state, &["ct", "start", &name]);
    assert_eq!(
        connect_from(&host, &state, &name, "198.51.100.10", 80),
        "hello"
    );
    serve_in(&name);
    assert_eq!(from_peer(8022), "from-ct");
    // A removed forward, or the container's destruction, frees the port.
    ok_in(
        &host,
        &state,
        &["ct", "forward", "remove", &name, "8022/tcp"],
    );
    assert_eq!(from_peer(8022), "ConnectionRefusedError");
    ok_in(&host, &state, &["ct", "forward", "add", &name, "8022:7474"]);
    ok_in(&host, &state, &["ct", "destroy", &name]);
    // Gone from both maps of the pair (the target's address and its port).
    for map in ["fwd_tcp_addr", "fwd_tcp_port"] {
        let map = must(&format!(
            "ip netns exec {host} nft list map inet acetate {map}"
        ));
        assert!(!map.contains("8022"), "{map}");
    }
    drop(cleanup);
}

/// Destroys the test's container and removes what the engine added to the namespace when
/// dropped (even when the test fails half-way).
struct Guard<'a> {
    ns: &'a str,
    state: &'a Path,
    name: &'a str,
}

fn scopeguard<'a>(ns: &'a str, state: &'a Path, name: &'a str) -> Guard<'a> {
    Guard { ns, state, name }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = acetate_in(self.ns, self.state, &["ct", "destroy", self.name]);
        let _ = acetate_in(self.ns, self.state, &["net", "teardown"]);
    }
}
