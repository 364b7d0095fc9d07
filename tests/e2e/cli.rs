//! `acetate template` and `acetate ct` from the outside.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use acetate_engine::store::Layout;
use acetate_engine::testing::{leftovers, unique_name};
use serde_json::Value;

use crate::support::{acetate, fails, ok, state_dir};

#[test]
fn a_container_outlives_the_cli_that_started_it() {
    let Some(state) = state_dir("a_container_outlives_the_cli_that_started_it") else {
        return;
    };
    let name = unique_name("cli-life");
    let created: Value = serde_json::from_str(&ok(
        &state,
        &[
            "ct",
            "create",
            &name,
            "--template",
            "host",
            "--memory",
            "256M",
            "--cpus",
            "0.5",
            "--disk",
            "1G",
            "--inodes",
            "50000",
            "--procs",
            "64",
            "--io-weight",
            "100",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(created["state"], "stopped");
    assert_eq!(created["limits"]["memory"], 256 << 20);
    assert_eq!(created["limits"]["inodes"], 50000);

    ok(&state, &["ct", "start", &name]);
    // That acetate process has exited; the container runs on and a new process finds it.
    let shown: Value = serde_json::from_str(&ok(&state, &["ct", "show", &name, "--json"])).unwrap();
    assert_eq!(shown["state"], "running");
    let pid = shown["pid"].as_i64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert!(shown["usage"]["cgroup"]["procs"].as_u64().unwrap() >= 1);
    assert_eq!(
        shown["usage"]["disk"]["inodes_total"].as_u64().unwrap() / 1000,
        50
    );

    let out = acetate(
        &state,
        &[
            "ct",
            "exec",
            &name,
            "--",
            "sh",
            "-c",
            "echo in $(hostname); exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("in {name}\n"));

    let list: Value = serde_json::from_str(&ok(&state, &["ct", "list", "--json"])).unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == name.as_str()));
    let text = ok(&state, &["ct", "list"]);
    assert!(text.starts_with("NAME") && text.contains(&name), "{text}");

    ok(
        &state,
        &[
            "ct", "set", &name, "--memory", "512M", "--cpus", "1.5", "--procs", "128",
        ],
    );
    let shown: Value = serde_json::from_str(&ok(&state, &["ct", "show", &name, "--json"])).unwrap();
    assert_eq!(shown["limits"]["memory"], 512 << 20);
    assert_eq!(shown["limits"]["cpus_milli"], 1500);

    ok(&state, &["ct", "stop", &name]);
    let (_, err) = fails(&state, &["ct", "stop", &name]);
    assert!(err.contains("not running"), "{err}");
    ok(&state, &["ct", "destroy", &name]);
    assert_eq!(leftovers(&Layout::new(&state), &name), Vec::<String>::new());
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_nothing() {
    let Some(state) = state_dir("bad_input_gets_a_clear_error_and_leaves_nothing") else {
        return;
    };
    let name = unique_name("cli-bad");
    let layout = Layout::new(&state);
    let cases: &[(&[&str], &str)] = &[
        (&["ct", "create", &name, "--memory", "12X"], "unknown unit"),
        (&["ct", "create", &name, "--cpus", "lots"], "not a number"),
        (&["ct", "create", &name, "--memory", "1M"], "memory"),
        (&["ct", "create", &name, "--disk", "20T"], "disk"),
        (
            &[
                "ct", "create", &name, "--disk", "64M", "--inodes", "10000000",
            ],
            "inodes",
        ),
        (&["ct", "create", "Bad_Name"], "invalid name"),
        (
            &["ct", "create", &name, "--template", "nope"],
            "no such template",
        ),
        (
            &["ct", "create", &name, "--net-rate", "1kbit"],
            "below 8kbit",
        ),
        (&["ct", "start", "nosuch"], "no such container"),
        (&["ct", "show", "nosuch"], "no such container"),
        (&["ct", "destroy", "nosuch"], "no such container"),
        (
            &["ct", "set", "nosuch", "--memory", "1G"],
            "no such container",
        ),
        (
            &["template", "import", "x", "/no/such/path"],
            "no such file",
        ),
        // The provider's disk policy: quotas beyond it are refused; a ratio that is none
        // is refused before anything is looked at.
        (
            &[
                "ct",
                "create",
                &name,
                "--disk",
                "64M",
                "--disk-overcommit",
                "0.000001",
            ],
            "does not fit",
        ),
        (
            &["ct", "create", &name, "--disk-overcommit", "0"],
            "over-commit ratio",
        ),
        (
            &["ct", "create", &name, "--io-read-bps", "1k"],
            "i/o read rate",
        ),
        (
            &["ct", "create", &name, "--io-write-iops", "5"],
            "i/o write operations",
        ),
    ];
    for (args, expected) in cases {
        let (code, err) = fails(&state, args);
        assert!(code == 1 || code == 2, "{args:?} exit {code}");
        assert!(
            err.to_lowercase().contains(expected),
            "{args:?}: {err:?} should mention {expected:?}"
        );
        assert_eq!(leftovers(&layout, &name), Vec::<String>::new(), "{args:?}");
    }
    let out = acetate(&state, &["ct", "exec", "nosuch", "--", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let (_, err) = fails(&state, &["ct", "set", "nosuch"]);
    assert!(err.contains("nothing to change"), "{err}");
}

#[test]
fn changing_containers_needs_root() {
    let Some(state) = state_dir("changing_containers_needs_root") else {
        return;
    };
    let name = unique_name("cli-nonroot");
    let out = Command::new(env!("CARGO_BIN_EXE_acetate"))
        .args(["--state-dir"])
        .arg(&state)
        .args(["ct", "create", &name])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must run as root"), "{err}");
    assert_eq!(leftovers(&Layout::new(&state), &name), Vec::<String>::new());
}

#[test]
fn templates_import_from_a_directory_or_a_tarball() {
    let Some(state) = state_dir("templates_import_from_a_directory_or_a_tarball") else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("etc")).unwrap();
    std::fs::create_dir_all(src.path().join("bin")).unwrap();
    std::fs::write(src.path().join("etc/os-release"), "ID=tiny\n").unwrap();
    let dir_name = unique_name("tpl-dir");
    let tar_name = unique_name("tpl-tar");
    let bad_name = unique_name("tpl-bad");
    ok(
        &state,
        &[
            "template",
            "import",
            &dir_name,
            src.path().to_str().unwrap(),
        ],
    );

    let tarball = src.path().with_extension("tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(src.path())
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    ok(
        &state,
        &["template", "import", &tar_name, tarball.to_str().unwrap()],
    );
    std::fs::remove_file(&tarball).unwrap();

    let list: Value = serde_json::from_str(&ok(&state, &["template", "list", "--json"])).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"host")
            && names.contains(&dir_name.as_str())
            && names.contains(&tar_name.as_str())
    );
    let layout = Layout::new(&state);
    assert_eq!(
        std::fs::read_to_string(layout.template_rootfs(&tar_name).join("etc/os-release")).unwrap(),
        "ID=tiny\n"
    );

    let (_, err) = fails(
        &state,
        &[
            "template",
            "import",
            &dir_name,
            src.path().to_str().unwrap(),
        ],
    );
    assert!(err.contains("already exists"), "{err}");
    // Not a root filesystem: refused, and nothing is left in templates/.
    let empty = tempfile::tempdir().unwrap();
    let (_, err) = fails(
        &state,
        &[
            "template",
            "import",
            &bad_name,
            empty.path().to_str().unwrap(),
        ],
    );
    assert!(
        err.contains("does not look like a root filesystem"),
        "{err}"
    );
    let stray: Vec<_> = std::fs::read_dir(layout.templates())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(&bad_name))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    for t in [&dir_name, &tar_name] {
        std::fs::remove_dir_all(layout.template(t)).unwrap();
    }
}

/// `acetate plugin check|run|wit`: no root, no state needed.
#[test]
fn plugin_check_and_run_for_plugin_authors() {
    let state = std::env::temp_dir().join("acetate-plugin-cli-unused");
    let dir = acetate_plugins::examples_dir();
    let path = |name: &str| dir.join(format!("{name}.wasm")).display().to_string();
    let out = crate::support::ok(&state, &["plugin", "check", &path("naming_policy")]);
    assert!(
        out.contains("a valid hook plugin (acetate:plugin@1.2.0) for provisioning events,"),
        "{out}"
    );
    let out = crate::support::ok(
        &state,
        &["--json", "plugin", "check", &path("tiered_billing")],
    );
    let checked: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(checked["kind"], "billing");

    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), b"\0asm\x01\0\0\0").unwrap();
    let (code, err) =
        crate::support::fails(&state, &["plugin", "check", junk.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not a component: build it for wasm32-wasip2"),
        "{err}"
    );
    let (_, err) = crate::support::fails(&state, &["plugin", "check", "/no/such.wasm"]);
    assert!(err.contains("cannot read /no/such.wasm"), "{err}");

    let event = r#"{"kind":"create","at":1795000000,"tenant":{"reseller":"r","customer":"c",
        "plan":{"name":"trial","monthly_price":{"amount":0,"currency":"EUR"}}},
        "requested":{"name":"web","limits":{"memory_bytes":1073741824}}}"#;
    let out = crate::support::ok(
        &state,
        &["plugin", "run", &path("naming_policy"), "--event", event],
    );
    assert!(
        out.contains("decision: amend") && out.contains("\"memory_bytes\":268435456"),
        "{out}"
    );
    assert!(
        out.contains("fuel used:") && out.contains("log info: trial: memory of web capped"),
        "{out}"
    );
    let (code, _) = crate::support::fails(
        &state,
        &[
            "plugin",
            "run",
            &path("naming_policy"),
            "--event",
            "{\"kind\":\"explode\"}",
        ],
    );
    assert_eq!(code, 1);
    let out = crate::support::acetate(
        &state,
        &["plugin", "run", &path("hostile_loop"), "--event", event],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ran out of fuel"));

    let usage = r#"{"period":"2026-11","period_start":1793491200,"period_end":1796083200,
        "tenant":{"reseller":"r","customer":"c"},"currency":"EUR",
        "containers":[{"name":"web","seconds_existing":2592000,"cpu_millis":7200000}]}"#;
    let out = crate::support::ok(
        &state,
        &[
            "--json",
            "plugin",
            "run",
            &path("pay_as_you_go"),
            "--event",
            usage,
        ],
    );
    let ran: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ran["result"][0]["amount"]["amount"], 7200, "{ran}");
    // An overuse policy on a limit hit: its actions, and the hook half on an event.
    let out = crate::support::ok(&state, &["plugin", "check", &path("overuse_policy")]);
    assert!(
        out.contains("for provisioning events and limit hits"),
        "{out}"
    );
    let hit = r#"{"at":1795000000,"tenant":{"reseller":"r","customer":"c"},
        "container":{"name":"web"},"faults":[{"kind":"oom-kill","amount":2}],
        "interval_seconds":60}"#;
    let out = crate::support::ok(
        &state,
        &["plugin", "run", &path("overuse_policy"), "--event", hit],
    );
    assert!(
        out.contains("action: notify: web ran into its limits (2 process(es) killed")
            && out.contains("would store: strikes/c/web"),
        "{out}"
    );
    let out = crate::support::ok(
        &state,
        &["plugin", "run", &path("overuse_policy"), "--event", event],
    );
    assert!(out.contains("decision: allow"), "{out}");
    let out = crate::support::acetate(
        &state,
        &["plugin", "run", &path("naming_policy"), "--event", hit],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("does not export acetate:plugin/overuse"),
        "{out:?}"
    );
    let wit = crate::support::ok(&state, &["plugin", "wit"]);
    assert!(wit.contains("package acetate:plugin@1.2.0;"));
}

/// Runs cargo for a plugin project outside the tree, without the outer build's settings.
fn cargo_in(dir: &Path, target_dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    command.output().expect("cargo runs")
}

/// `acetate plugin new`: a project made outside Acetate's tree builds for wasm32-wasip2
/// with the SDK and WIT it was given, passes its own unit test natively, and its component
/// checks and runs on the example input it came with. (Its dependencies come from the
/// examples' and the SDK's target directories, which the build filled: nothing is fetched.)
#[test]
fn a_plugin_project_from_plugin_new_builds_outside_the_tree() {
    let state = std::env::temp_dir().join("acetate-plugin-cli-unused");
    let home = tempfile::tempdir().unwrap();
    let wasm_target = acetate_plugins::examples_dir()
        .ancestors()
        .nth(2)
        .expect("<target>/wasm-plugins")
        .to_path_buf();
    for (kind, example, expect) in [
        ("hook", "create", "decision: allow"),
        (
            "overuse",
            "overuse",
            "action: notify: web ran into its limits",
        ),
    ] {
        let name = format!("demo-{kind}");
        let dir = home.path().join(&name);
        let out = ok(
            &state,
            &["plugin", "new", kind, &name, "--dir", dir.to_str().unwrap()],
        );
        assert!(out.contains("made "), "{out}");
        let (_, err) = fails(
            &state,
            &["plugin", "new", kind, &name, "--dir", dir.to_str().unwrap()],
        );
        assert!(err.contains("exists already"), "{err}");
        let built = cargo_in(
            &dir,
            &wasm_target,
            &[
                "build",
                "--offline",
                "--release",
                "--target",
                "wasm32-wasip2",
            ],
        );
        assert!(
            built.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let wasm = wasm_target
            .join("wasm32-wasip2/release")
            .join(format!("{}.wasm", name.replace('-', "_")));
        let checked = ok(&state, &["plugin", "check", wasm.to_str().unwrap()]);
        assert!(checked.contains("a valid hook plugin"), "{checked}");
        let event = format!("@{}", dir.join(format!("events/{example}.json")).display());
        let ran = ok(
            &state,
            &["plugin", "run", wasm.to_str().unwrap(), "--event", &event],
        );
        assert!(ran.contains(expect), "{kind}: {ran}");
    }
    // Its unit test runs natively (the SDK's own target directory has the dependencies).
    let sdk_target = wasm_target.with_file_name("sdk");
    let tested = cargo_in(
        &home.path().join("demo-hook"),
        &sdk_target,
        &["test", "--offline", "--lib"],
    );
    assert!(
        tested.status.success(),
        "{}",
        String::from_utf8_lossy(&tested.stderr)
    );
    let example = ok(&state, &["plugin", "example-event", "billing"]);
    let input: Value = serde_json::from_str(&example).unwrap();
    assert_eq!(input["currency"], "EUR", "{example}");
}

#[test]
fn user_add_refuses_what_does_not_fit_and_changes_nothing() {
    let Some(state) =
        crate::support::state_dir("user_add_refuses_what_does_not_fit_and_changes_nothing")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/users.db?mode=rwc", dir.path().display());
    let add = |args: &[&str], password: &str| {
        let args: Vec<&str> = ["user", "add"]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["--password-stdin"])
            .collect();
        let out = crate::support::with_database(&state, &db, &args, password);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let good = "a long enough password\n";
    assert_eq!(add(&["rita", "--role", "reseller"], good).0, 0);
    for (args, password, message) in [
        (
            &["cy", "--role", "customer"][..],
            good,
            "a customer needs --reseller",
        ),
        (
            &["cy", "--role", "customer", "--reseller", "nobody"],
            good,
            "no reseller named \"nobody\"",
        ),
        (
            &[
                "cy",
                "--role",
                "customer",
                "--reseller",
                "rita",
                "--plan",
                "gold",
            ],
            good,
            "the reseller has no plan named \"gold\"",
        ),
        (
            &["ray", "--role", "reseller", "--plan", "gold"],
            good,
            "only customers have a plan",
        ),
        (
            &["ray", "--role", "provider", "--reseller", "rita"],
            good,
            "only customers belong to a reseller",
        ),
        (
            &["Bad Name", "--role", "reseller"],
            good,
            "invalid user name",
        ),
        (&["ray", "--role", "reseller"], "short\n", "password"),
        (&["rita", "--role", "reseller"], good, "exists"),
    ] {
        let (code, err) = add(args, password);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    // Nothing was added by the refusals: only the provider-less database's one reseller.
    let out = crate::support::with_database(&state, &db, &["token", "create", "cy"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named \"cy\""));
}

#[test]
fn a_start_that_crashes_half_way_leaves_nothing_blocked() {
    let Some(state) = state_dir("a_start_that_crashes_half_way_leaves_nothing_blocked") else {
        return;
    };
    let name = unique_name("cli-crash");
    ok(&state, &["ct", "create", &name, "--disk", "64M"]);
    // The CLI dies between cloning the container's init and releasing it.
    let out = Command::new(env!("CARGO_BIN_EXE_acetate"))
        .arg("--state-dir")
        .arg(&state)
        .args(["ct", "start", &name])
        .env(acetate_engine::testing::CRASH_AT, "start")
        .output()
        .unwrap();
    assert!(!out.status.success());
    // The half-started init finds its parent gone and exits by itself...
    let engine = acetate_engine::Engine::open(&state).unwrap();
    let gone = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        engine.cgroup(&name).processes().is_empty()
    });
    assert!(gone, "the half-started init is still there");
    // ...holding no lock: the next start goes through at once (a held lock would make
    // it wait two minutes).
    let out = Command::new("timeout")
        .arg("20")
        .arg(env!("CARGO_BIN_EXE_acetate"))
        .arg("--state-dir")
        .arg(&state)
        .args(["ct", "start", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(&state, &["ct", "destroy", &name]);
    assert!(leftovers(&Layout::new(&state), &name).is_empty());
}

/// Kills every container's processes and detaches its storage, as a host reboot does.
fn simulate_reboot(state: &Path, names: &[&str]) {
    let engine = acetate_engine::Engine::open(state).unwrap();
    for name in names {
        if let Some(pid) = engine.show(name).unwrap().pid {
            // SAFETY: kill(2) takes no pointers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            for _ in 0..200 {
                if engine.show(name).unwrap().pid.is_none() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        acetate_engine::storage::unmount_all(engine.layout(), name).unwrap();
    }
}

fn running(state: &Path, name: &str) -> bool {
    let out = ok(&state.to_path_buf(), &["ct", "show", name, "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["state"] == "running"
}

#[test]
fn containers_that_should_run_come_back_after_a_reboot() {
    if state_dir("containers_that_should_run_come_back_after_a_reboot").is_none() {
        return;
    }
    // A state dir of its own: `start --all` and `serve` act on every container in it.
    let dir = crate::support::OwnState::new();
    let state = dir.path();
    ok(&state, &["template", "build", "host"]);
    for name in ["web", "db", "spare"] {
        ok(&state, &["ct", "create", name, "--disk", "64M"]);
    }
    ok(&state, &["ct", "start", "web"]);
    ok(&state, &["ct", "start", "db"]);
    ok(&state, &["ct", "stop", "db"]);

    simulate_reboot(&state, &["web", "db", "spare"]);
    assert!(!running(&state, "web"));
    let out = ok(&state, &["ct", "start", "--all"]);
    assert_eq!(out.trim(), "container web started");
    assert!(running(&state, "web") && !running(&state, "db") && !running(&state, "spare"));
    let out = ok(&state, &["ct", "start", "--all", "--json"]);
    assert_eq!(out.trim(), "[]");
    let (_, err) = fails(&state, &["ct", "start"]);
    assert!(err.contains("--all"), "{err}");

    // `serve` does the same by itself when it starts.
    simulate_reboot(&state, &["web"]);
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/panel.db?mode=rwc", db.path().display());
    let server = crate::support::Server::start(&state, &url);
    let back = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        running(&state, "web")
    });
    server.stop_keeping();
    assert!(back, "serve did not start web again");
    assert!(!running(&state, "db"));
    for name in ["web", "db", "spare"] {
        ok(&state, &["ct", "destroy", name]);
    }
}

#[test]
fn a_debian_template_is_built_with_debians_own_tools_and_boots() {
    let test = "a_debian_template_is_built_with_debians_own_tools_and_boots";
    let Some(state) = state_dir(test) else {
        return;
    };
    if !crate::support::has_mmdebstrap(test) {
        return;
    }
    let templates = Layout::new(&state).templates();
    let builds = || {
        std::fs::read_dir(&templates)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".debian-build"))
            .count()
    };
    // Bad input is refused before anything is fetched, and leaves nothing.
    let tmpl = unique_name("deb");
    let (_, err) = fails(
        &state,
        &[
            "template",
            "build",
            "debian",
            "--suite=--keyring=/x",
            "--name",
            &tmpl,
        ],
    );
    assert!(err.contains("suite"), "{err}");
    let (_, err) = fails(
        &state,
        &[
            "template",
            "build",
            "debian",
            "--mirror",
            "file:///etc",
            "--name",
            &tmpl,
        ],
    );
    assert!(err.contains("mirror"), "{err}");

    let built: Value = serde_json::from_str(&ok(
        &state,
        &[
            "template", "build", "debian", "--suite", "bookworm", "--name", &tmpl, "--json",
        ],
    ))
    .unwrap();
    assert_eq!(built["os"], "Debian GNU/Linux 12 (bookworm)", "{built}");
    assert!(
        built["source"]
            .as_str()
            .unwrap()
            .starts_with("debian bookworm"),
        "{built}"
    );
    assert_eq!(builds(), 0, "the build's scratch directory is gone");
    let listed = ok(&state, &["template", "list"]);
    assert!(
        listed.contains(&tmpl) && listed.contains("Debian GNU/Linux 12"),
        "{listed}"
    );
    assert_eq!(built["init"], "systemd", "{built}");

    let name = unique_name("deb-ct");
    ok(
        &state,
        &[
            "ct",
            "create",
            &name,
            "--template",
            &tmpl,
            "--memory",
            "256M",
            "--disk",
            "512M",
        ],
    );
    ok(&state, &["ct", "start", &name]);
    let version = ok(
        &state,
        &["ct", "exec", &name, "--", "cat", "/etc/debian_version"],
    );
    assert!(version.starts_with("12."), "{version}");
    // What a hosting customer needs is there; Debian's set-uid programs keep their bits.
    let out = ok(
        &state,
        &[
            "ct",
            "exec",
            &name,
            "--",
            "sh",
            "-c",
            "test -x /usr/lib/openssh/sftp-server && stat -c %a /usr/bin/su && command -v ps nano",
        ],
    );
    assert!(out.starts_with("4755\n"), "{out}");
    // It boots Debian's systemd, whose cron runs the customer's jobs.
    let boot = "for i in $(seq 100); do test -S /run/systemd/private && break; sleep 0.1; done; \
                timeout 120 systemctl is-system-running --wait";
    let sh = |script: &str| ok(&state, &["ct", "exec", &name, "--", "sh", "-c", script]);
    let booted = sh(boot);
    assert_eq!(booted.trim(), "running", "{booted}");
    let job = "echo '@reboot root echo ran > /var/tmp/cron-ran' > /etc/cron.d/tenant && \
               systemctl is-enabled cron";
    assert_eq!(sh(job), "enabled\n");
    ok(&state, &["ct", "restart", &name]);
    let ran = sh(&format!(
        "{boot} >/dev/null; for i in $(seq 100); do test -e /var/tmp/cron-ran && break; \
         sleep 0.1; done; cat /var/tmp/cron-ran"
    ));
    assert_eq!(ran, "ran\n", "cron ran the job");
    // Fitted for a container: idle generators masked, and systemd notes a reboot inside
    // for the engine as it goes down (read through the container's root on the host).
    sh(
        "test -L /etc/systemd/system-generators/systemd-gpt-auto-generator && \
        test -x /usr/lib/systemd/system-shutdown/acetate-halt",
    );
    sh("systemctl reboot");
    let stopped = (0..600).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        ok(&state, &["ct", "show", &name]).contains("state:      stopped")
    });
    assert!(stopped, "systemd went down");
    let note = Layout::new(&state)
        .rootfs(&name)
        .join("var/lib/acetate/halt");
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "reboot\n");
    ok(&state, &["ct", "start", &name]);
    assert!(!note.exists(), "a start clears the note");
    sh(&format!("{boot} >/dev/null"));
    // The customer may keep it on the minimal init instead, from its next start.
    let set = ok(&state, &["ct", "init", &name, "minimal"]);
    assert!(set.contains("boots minimal from its next start"), "{set}");
    assert!(ok(&state, &["ct", "show", &name]).contains("init:       systemd"));
    ok(&state, &["ct", "restart", &name]);
    assert!(ok(&state, &["ct", "show", &name]).contains("init:       minimal"));
    assert!(sh("cat /proc/1/cmdline").starts_with("acetate-init"));
    ok(&state, &["ct", "destroy", &name]);
    ok(&state, &["template", "delete", &tmpl]);
    assert!(!ok(&state, &["template", "list"]).contains(&tmpl));
}
