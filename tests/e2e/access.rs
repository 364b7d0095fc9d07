//! Customer access through the real OpenSSH client (Debian's openssh-client, rsync): the
//! SSH gateway of `acetate serve` with keys from the API, a shell on a terminal, commands
//! with stdin and exit codes, scp, sftp and rsync of a 50 MB file, refusals, sessions
//! listed and ended, nothing left behind by a client that goes away; and the WebSocket
//! exec of the API.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::api::{customer, reseller_with_plan, roomy_plan, roomy_pool, Api};
use crate::support::{state_dir, Server};

fn need_tools(test: &str) -> bool {
    let missing: Vec<&str> = [
        "/usr/bin/ssh",
        "/usr/bin/ssh-keygen",
        "/usr/bin/scp",
        "/usr/bin/sftp",
        "/usr/bin/rsync",
        "/usr/lib/openssh/sftp-server",
    ]
    .into_iter()
    .filter(|t| !Path::new(t).exists())
    .collect();
    if missing.is_empty() {
        return true;
    }
    if acetate_engine::testing::in_ci() {
        panic!("{test} needs {missing:?}: scripts/setup installs openssh-client, openssh-sftp-server and rsync");
    }
    eprintln!("SKIPPED {test}: {missing:?} missing");
    false
}

/// An ed25519 key pair made by ssh-keygen in `dir`; returns the private key's path.
fn keygen(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    key
}

struct Ssh {
    host: String,
    port: String,
}

impl Ssh {
    fn new(server: &Server) -> Ssh {
        let addr = server.ssh.clone().expect("the panel runs its SSH gateway");
        let (host, port) = addr.rsplit_once(':').unwrap();
        Ssh {
            host: host.to_string(),
            port: port.to_string(),
        }
    }

    /// OpenSSH options: this key only, no prompts, no known_hosts.
    fn opts(key: &Path) -> Vec<String> {
        [
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([key.display().to_string()])
        .collect()
    }

    fn command(&self, key: &Path, login: &str) -> Command {
        let mut c = Command::new("ssh");
        c.args(Ssh::opts(key))
            .args(["-p", &self.port])
            .arg(format!("{login}@{}", self.host));
        c
    }

    /// Runs `cmd` as `login` with `input` on stdin.
    fn run(&self, key: &Path, login: &str, cmd: &str, input: &[u8]) -> Output {
        let mut child = self
            .command(key, login)
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, key: &Path, login: &str, cmd: &str) -> String {
        let out = self.run(key, login, cmd, b"");
        assert!(out.status.success(), "ssh {login} {cmd:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn target(&self, login: &str, path: &str) -> String {
        format!("{login}@{}:{path}", self.host)
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// A client on a terminal of its own (a pty made by the test), as a person at a terminal.
struct Tty {
    master: std::fs::File,
    child: Child,
    out: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Tty {
    fn spawn(mut cmd: Command, cols: u16, rows: u16) -> Tty {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty fills two descriptors; the name and termios pointers may be null.
        let rc =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: fresh descriptors owned from here on.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe; they make the pty the child's
        // controlling terminal.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Tty {
            master,
            child,
            out,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, text: &[u8]) {
        self.master.write_all(text).unwrap();
    }

    /// Waits until the output shows `what`, and drops what came before it.
    fn expect(&mut self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(i) = find(&self.seen, what.as_bytes()) {
                self.seen.drain(..i + what.len());
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => panic!(
                    "no {what:?} on the terminal; it showed {:?}",
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    fn resize(&self, cols: u16, rows: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize on the stack; the client gets SIGWINCH.
        unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn shells(api: &Api<'_>) -> Vec<Value> {
    let (status, list) = api.get("/api/v1/shells").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

/// Waits until `cond` holds on the container's processes (`ps` through the gateway).
fn wait_processes(ssh: &Ssh, key: &Path, login: &str, cond: impl Fn(&str) -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ps = ssh.ok(key, login, "ps -eo args");
        if cond(&ps) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}; processes:\n{ps}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn ssh_gateway_gives_customers_their_containers() {
    let test = "ssh_gateway_gives_customers_their_containers";
    let Some(state) = state_dir(test) else { return };
    if !need_tools(test) {
        return;
    }
    let server = Server::with_sqlite(&state);
    let http = Client::new();
    let (_provider, reseller) =
        reseller_with_plan(&server, &http, "ssh-res", roomy_plan(), roomy_pool()).await;
    let alice = customer(&server, &http, &reseller, "ssh-alice").await;
    let bob = customer(&server, &http, &reseller, "ssh-bob").await;
    for (api, name) in [(&alice, "web"), (&bob, "db")] {
        let (status, body) = api.post("/api/v1/containers", json!({"name": name})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let keys = tempfile::tempdir().unwrap();
    let (a_key, b_key, r_key, stranger) = (
        keygen(keys.path(), "alice"),
        keygen(keys.path(), "bob"),
        keygen(keys.path(), "reseller"),
        keygen(keys.path(), "stranger"),
    );
    for (api, key) in [(&alice, &a_key), (&bob, &b_key), (&reseller, &r_key)] {
        let line = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let (status, body) = api
            .post("/api/v1/ssh-keys", json!({"public_key": line}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    }
    // A key belongs to one account; a private key or garbage is refused with the reason.
    let line = std::fs::read_to_string(a_key.with_extension("pub")).unwrap();
    let (status, body) = bob
        .post("/api/v1/ssh-keys", json!({"public_key": line}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let private = std::fs::read_to_string(&stranger).unwrap();
    let (status, body) = bob
        .post("/api/v1/ssh-keys", json!({"public_key": private}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("private key"), "{body}");

    let ssh = Ssh::new(&server);
    // A command: stdin in, stdout and stderr apart, the exit code back.
    let out = ssh.run(
        &a_key,
        "web",
        "tr a-z A-Z; echo oops >&2; exit 3",
        b"hello gateway\n",
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO GATEWAY\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(ssh.ok(&a_key, "web", "hostname").trim(), "web");

    // A shell on a terminal: prompt, its size, a resize, Ctrl-C, the exit code.
    let mut cmd = ssh.command(&a_key, "web");
    cmd.arg("-tt");
    let mut tty = Tty::spawn(cmd, 100, 30);
    tty.send(b"PS1='READY> '\n");
    tty.expect("READY> ");
    tty.send(b"stty size; tty\n");
    tty.expect("30 100");
    tty.expect("/dev/pts/");
    tty.resize(120, 40);
    std::thread::sleep(Duration::from_millis(300));
    tty.send(b"stty size\n");
    tty.expect("40 120");
    tty.send(b"sleep 1000\n");
    std::thread::sleep(Duration::from_millis(500));
    tty.send(b"\x03");
    tty.send(b"echo after-$((6*7))\n");
    tty.expect("after-42");
    tty.send(b"exit 7\n");
    let status = tty.child.wait().unwrap();
    assert_eq!(status.code(), Some(7));

    // scp (SFTP protocol), sftp and rsync: 50 MB each way, checksums equal.
    let files = tempfile::tempdir().unwrap();
    let big = files.path().join("big");
    let out = Command::new("head")
        .args(["-c", "50M", "/dev/urandom"])
        .output()
        .unwrap();
    std::fs::write(&big, &out.stdout).unwrap();
    let sum = sha256(&big);
    let scp = |args: &[String]| {
        let out = Command::new("scp")
            .args(Ssh::opts(&a_key))
            .args(["-P", &ssh.port])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "scp {args:?}: {out:?}");
    };
    scp(&[big.display().to_string(), ssh.target("web", "/root/big")]);
    assert!(ssh
        .ok(&a_key, "web", "sha256sum /root/big")
        .starts_with(&sum));
    let back = files.path().join("back");
    scp(&[ssh.target("web", "/root/big"), back.display().to_string()]);
    assert_eq!(sha256(&back), sum);
    let batch = files.path().join("batch");
    let via_sftp = files.path().join("via-sftp");
    std::fs::write(
        &batch,
        format!(
            "put {} /tmp/sftp-big\nget /tmp/sftp-big {}\n",
            big.display(),
            via_sftp.display()
        ),
    )
    .unwrap();
    let out = Command::new("sftp")
        .args(Ssh::opts(&a_key))
        .args(["-P", &ssh.port, "-b"])
        .arg(&batch)
        .arg(format!("web@{}", ssh.host))
        .output()
        .unwrap();
    assert!(out.status.success(), "sftp: {out:?}");
    assert_eq!(sha256(&via_sftp), sum);
    let rsh = format!("ssh {} -p {}", Ssh::opts(&a_key).join(" "), ssh.port);
    let out = Command::new("rsync")
        .args(["-a", "-e", &rsh])
        .arg(&big)
        .arg(ssh.target("web", "/root/rsynced"))
        .output()
        .unwrap();
    assert!(out.status.success(), "rsync: {out:?}");
    assert!(ssh
        .ok(&a_key, "web", "sha256sum /root/rsynced")
        .starts_with(&sum));

    // Refusals: an unknown key, another tenant's container, a name nobody has.
    for (key, login) in [
        (&stranger, "web"),
        (&b_key, "ssh-alice+web"),
        (&b_key, "web"),
        (&a_key, "nothing"),
    ] {
        let out = ssh.run(key, login, "true", b"");
        assert_eq!(out.status.code(), Some(255), "{login}: {out:?}");
        assert!(
            // Only keys are offered: password logins are off unless the provider enables them.
            String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey)."),
            "{out:?}"
        );
    }
    // Bob's own container is his, by its own name.
    assert_eq!(ssh.ok(&b_key, "db", "hostname").trim(), "db");
    // The reseller enters its customer's container with its own key (audited below).
    assert_eq!(ssh.ok(&r_key, "ssh-alice+web", "hostname").trim(), "web");

    // git over ssh, as a deploy does.
    ssh.ok(&a_key, "web", "git init -q --bare /root/app.git");
    let repo = files.path().join("app");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=Test",
                "-c",
                "user.email=test@example.org",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .env(
                "GIT_SSH_COMMAND",
                format!("ssh {}", Ssh::opts(&a_key).join(" ")),
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    std::fs::create_dir(&repo).unwrap();
    std::fs::write(repo.join("index.html"), "hello\n").unwrap();
    git(&["init", "-q"]);
    git(&["add", "index.html"]);
    git(&["commit", "-qm", "first deploy"]);
    git(&[
        "push",
        "-q",
        &format!("ssh://web@{}:{}/root/app.git", ssh.host, ssh.port),
        "HEAD:main",
    ]);
    assert!(ssh
        .ok(
            &a_key,
            "web",
            "git --git-dir=/root/app.git log --format=%s main"
        )
        .contains("first deploy"));

    // The provider on the host: `acetate ct enter` gives a login shell on a terminal.
    let list = server.cli(&["--json", "ct", "list"], "");
    let list: Value = serde_json::from_str(&list).unwrap();
    let engine_name = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["owner"] == "panel:ssh-alice" && c["hostname"] == "web")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .expect("alice's web in ct list");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_acetate"));
    cmd.arg("--state-dir")
        .arg(&server.state)
        .args(["ct", "enter", &engine_name]);
    let mut tty = Tty::spawn(cmd, 90, 20);
    tty.send(b"PS1='HOST> '\n");
    tty.expect("HOST> ");
    tty.send(b"stty size; hostname\n");
    tty.expect("20 90");
    tty.expect("web");
    tty.send(b"exit 4\n");
    assert_eq!(tty.child.wait().unwrap().code(), Some(4));

    // Open sessions are listed (to their holder and the reseller) and can be ended.
    let long = ssh
        .command(&a_key, "web")
        .arg("sleep 777")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let id = loop {
        if let Some(s) = shells(&alice)
            .await
            .into_iter()
            .find(|s| s["command"] == "sleep 777")
        {
            assert_eq!(s["kind"], "ssh");
            assert_eq!(s["container"], "web");
            break s["id"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "the session is not listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(shells(&reseller).await.iter().any(|s| s["id"] == id));
    assert!(shells(&bob).await.is_empty(), "bob sees alice's session");
    let (status, _) = bob
        .call(Method::DELETE, &format!("/api/v1/shells/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = alice
        .call(Method::DELETE, &format!("/api/v1/shells/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let out = long.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ended"),
        "{out:?}"
    );
    wait_processes(
        &ssh,
        &a_key,
        "web",
        |ps| !ps.contains("sleep 777"),
        "an ended session left its command",
    );

    // A client that goes away leaves nothing behind: neither a command nor a shell's job.
    let mut gone = ssh.command(&a_key, "web").arg("sleep 778").spawn().unwrap();
    wait_processes(
        &ssh,
        &a_key,
        "web",
        |ps| ps.contains("sleep 778"),
        "the command did not start",
    );
    gone.kill().unwrap();
    gone.wait().unwrap();
    let mut cmd = ssh.command(&a_key, "web");
    cmd.arg("-tt");
    let mut tty = Tty::spawn(cmd, 80, 24);
    tty.send(b"PS1='READY> '\n");
    tty.expect("READY> ");
    tty.send(b"sleep 779 &\n");
    tty.expect("READY> ");
    tty.child.kill().unwrap();
    tty.child.wait().unwrap();
    wait_processes(
        &ssh,
        &a_key,
        "web",
        |ps| !ps.contains("sleep 778") && !ps.contains("sleep 779"),
        "a client that went away left processes behind",
    );

    // Streamed exec over a WebSocket: stdin in, stdout back, the exit code at the end.
    let (frames, code) = ws_exec(
        &server,
        alice.token(),
        "web",
        "tr a-z A-Z; exit 5",
        b"abc\n",
    )
    .await;
    assert_eq!(frames, b"ABC\n");
    assert_eq!(code, 5);

    // The browser terminal's socket: the login session's, from the panel's page only, and
    // ended when that login ends.
    let pages = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut browser =
        crate::web::logged_in(&pages, &server.base, "ssh-alice", "a long enough password").await;
    let sid = browser.cookie("acetate_session").expect("a session");
    let mut term = terminal_socket(&server, &sid, &server.base).await.unwrap();
    term_send(&mut term, b"echo hi-$((2*3))\r").await;
    term_until(&mut term, "hi-6").await;
    let refused = terminal_socket(&server, &sid, "http://evil.example").await;
    assert!(
        refused.unwrap_err().contains("403"),
        "a foreign page opened the terminal"
    );
    let (_, home) = browser.fetch("/").await;
    browser
        .post("/logout", &[("csrf", &crate::web::csrf(&home))])
        .await;
    term_until(&mut term, "\"reason\":\"ended\"").await;

    // A stopped container and a suspended customer get a clear message.
    let (status, body) = alice.post("/api/v1/containers/web/stop", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let out = ssh.run(&a_key, "web", "true", b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("web is not running"),
        "{out:?}"
    );
    // A suspension ends the customer's open sessions, and refuses new ones.
    let open = ssh
        .command(&b_key, "db")
        .arg("sleep 301")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shells(&bob)
        .await
        .iter()
        .any(|s| s["command"] == "sleep 301")
    {
        assert!(Instant::now() < deadline, "bob's session is not listed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = reseller
        .post("/api/v1/customers/ssh-bob/suspend", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ended = open.wait_with_output().unwrap();
    assert_ne!(ended.status.code(), Some(0), "{ended:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !shells(&bob).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "a suspended customer keeps a session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = ssh.run(&b_key, "db", "true", b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("suspended"),
        "{out:?}"
    );

    // Every session is in the audit log: who, where, how it ended.
    let (_, audit) = reseller.get("/api/v1/audit?limit=1000").await;
    let rows = audit.as_array().unwrap();
    let has = |user: &str, action: &str, result: &str| {
        rows.iter().any(|r| {
            r["actor"] == user
                && r["action"] == action
                && r["result"].as_str().unwrap_or("").contains(result)
        })
    };
    assert!(has("ssh-res", "container.session.open", "ssh"), "{audit}");
    assert!(
        has("ssh-alice", "container.session.end", "exit 7"),
        "{audit}"
    );
    assert!(
        has("ssh-alice", "container.session.end", "disconnected"),
        "{audit}"
    );
    assert!(has("ssh-alice", "container.session.end", "sftp"), "{audit}");
    server.stop();
}

/// Runs `command` through the API's WebSocket exec with `input`; returns what came out on
/// stdout and the exit code.
async fn ws_exec(
    server: &Server,
    token: &str,
    name: &str,
    command: &str,
    input: &[u8],
) -> (Vec<u8>, i64) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let base = server.base.replace("http://", "ws://");
    let q: String = url_escape(command);
    let mut req = format!("{base}/api/v1/containers/{name}/exec/stream?command={q}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(Message::Binary(input.to_vec().into()))
        .await
        .unwrap();
    ws.send(Message::Text(r#"{"type":"eof"}"#.into()))
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut code = None;
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("the stream answers")
    {
        match msg.unwrap() {
            Message::Binary(b) => {
                assert_eq!(b[0], 1, "stdout frames carry stream 1");
                out.extend_from_slice(&b[1..]);
            }
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["type"], "exit", "{v}");
                code = v["code"].as_i64();
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    (out, code.expect("an exit frame"))
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the browser terminal's socket with session `sid`, as a page from `origin` would.
async fn terminal_socket(server: &Server, sid: &str, origin: &str) -> Result<Socket, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let base = server.base.replace("http://", "ws://");
    let mut req = format!("{base}/containers/web/terminal/ws?cols=80&rows=24")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("cookie", format!("acetate_session={sid}").parse().unwrap());
    req.headers_mut().insert("origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

async fn term_send(ws: &mut Socket, bytes: &[u8]) {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::Binary(bytes.to_vec().into()))
        .await
        .unwrap();
}

/// Reads the socket (output and control frames alike) until `text` shows.
async fn term_until(ws: &mut Socket, text: &str) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(text) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {text:?} from the terminal; it sent {seen:?}"));
        match msg {
            Some(Ok(Message::Binary(b))) => seen.push_str(&String::from_utf8_lossy(&b[1..])),
            Some(Ok(Message::Text(t))) => seen.push_str(&t),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => panic!("the terminal closed before {text:?}; it sent {seen:?}"),
        }
    }
}

#[tokio::test]
async fn idle_ssh_sessions_end_and_busy_ones_do_not() {
    let test = "idle_ssh_sessions_end_and_busy_ones_do_not";
    let Some(state) = state_dir(test) else { return };
    if !need_tools(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/panel.db?mode=rwc", dir.path().display());
    let server = Server::start_with(
        &state,
        &db,
        "127.0.0.1:0",
        &[("ACETATE_SESSION_IDLE", "10")],
    );
    let http = Client::new();
    let (_provider, reseller) =
        reseller_with_plan(&server, &http, "idle-res", roomy_plan(), roomy_pool()).await;
    let carl = customer(&server, &http, &reseller, "idle-carl").await;
    let (status, body) = carl
        .post("/api/v1/containers", json!({"name": "web"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let keys = tempfile::tempdir().unwrap();
    let key = keygen(keys.path(), "carl");
    let line = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let (status, body) = carl
        .post("/api/v1/ssh-keys", json!({"public_key": line}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ssh = Ssh::new(&server);
    let started = Instant::now();
    let spawn = |cmd: &str| {
        ssh.command(&key, "web")
            .arg(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Output every 2 s keeps a 14 s command alive past the 10 s idle time; silence ends
    // the other.
    let busy = spawn("for i in 1 2 3 4 5 6 7; do echo tick; sleep 2; done");
    let quiet = spawn("sleep 60");
    let quiet = quiet.wait_with_output().unwrap();
    let quiet_took = started.elapsed();
    let busy = busy.wait_with_output().unwrap();
    assert!(
        quiet_took >= Duration::from_secs(9) && quiet_took < Duration::from_secs(30),
        "the quiet session ended after {quiet_took:?}"
    );
    assert_ne!(quiet.status.code(), Some(0), "{quiet:?}");
    assert!(
        String::from_utf8_lossy(&quiet.stderr).contains("idle"),
        "{quiet:?}"
    );
    assert_eq!(busy.status.code(), Some(0), "{busy:?}");
    assert_eq!(
        String::from_utf8_lossy(&busy.stdout)
            .matches("tick")
            .count(),
        7
    );
    server.stop();
}
