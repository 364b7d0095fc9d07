//! `acetate plugin new` and `acetate plugin example-event`: where a plugin author starts,
//! outside Acetate's source tree. The project gets the SDK and the WIT package this binary
//! was built with (so it builds offline against exactly the contract the host checks), a
//! working plugin of the chosen kind with a unit test (run natively with the SDK's
//! `testing` helper), example inputs for `plugin run`, and
//! a README.

use std::path::{Path, PathBuf};

use acetate_plugins::{
    BillingInput, ContainerSpec, ContainerUsage, Event, EventKind, FaultHit, Limits, Money,
    OveruseEvent, Plan, Tenant,
};

const SDK_MANIFEST: &str = include_str!("../../../plugins/sdk/Cargo.toml");
const SDK_LIB: &str = include_str!("../../../plugins/sdk/src/lib.rs");
const HOOK: &str = include_str!("../../scaffold/hook.rs.txt");
const BILLING: &str = include_str!("../../scaffold/billing.rs.txt");
const OVERUSE: &str = include_str!("../../scaffold/overuse.rs.txt");

/// The kinds of plugin a project can start as.
pub const KINDS: [&str; 3] = ["hook", "billing", "overuse"];
/// The example inputs `example-event` prints.
pub const EXAMPLES: [&str; 7] = [
    "create",
    "resize",
    "suspend",
    "unsuspend",
    "destroy",
    "overuse",
    "billing",
];

/// A crate name: a lower-case letter, then letters, digits, `-` or `_` (at most 64).
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        anyhow::bail!(
            "{name:?} is not a usable plugin name: start with a lower-case letter, then use \
             lower-case letters, digits, '-' or '_' (at most 64)"
        );
    }
    Ok(())
}

fn plan() -> Plan {
    Plan {
        name: "basic".into(),
        per_container: Limits::default(),
        max_containers: 3,
        monthly_price: Money {
            amount: 900,
            currency: "EUR".into(),
        },
    }
}

fn tenant() -> Tenant {
    Tenant {
        reseller: "acme".into(),
        customer: "carol".into(),
        plan: Some(plan()),
        container_count: 1,
    }
}

fn spec(name: &str, memory: u64) -> ContainerSpec {
    ContainerSpec {
        name: name.into(),
        template: "debian-12".into(),
        limits: Limits {
            memory_bytes: memory,
            ..Limits::default()
        },
    }
}

/// An example input, as JSON, for `plugin run --event` and the panel's dry runs.
pub fn example_event(what: &str) -> anyhow::Result<String> {
    const AT: i64 = 1_795_000_000;
    let web = || spec("web", 512 << 20);
    let event = |kind, current, requested| Event {
        kind,
        at: AT,
        tenant: tenant(),
        current,
        requested,
    };
    let json = match what {
        "create" => serde_json::to_string_pretty(&event(EventKind::Create, None, Some(web()))),
        "resize" => serde_json::to_string_pretty(&event(
            EventKind::Resize,
            Some(web()),
            Some(spec("web", 1 << 30)),
        )),
        "suspend" => serde_json::to_string_pretty(&event(EventKind::Suspend, None, None)),
        "unsuspend" => serde_json::to_string_pretty(&event(EventKind::Unsuspend, None, None)),
        "destroy" => serde_json::to_string_pretty(&event(EventKind::Destroy, Some(web()), None)),
        "overuse" => serde_json::to_string_pretty(&OveruseEvent {
            at: AT,
            tenant: tenant(),
            container: web(),
            faults: vec![
                FaultHit {
                    kind: "oom-kill".into(),
                    amount: 1,
                },
                FaultHit {
                    kind: "cpu-throttled".into(),
                    amount: 12_000,
                },
            ],
            interval_seconds: 60,
        }),
        "billing" => serde_json::to_string_pretty(&BillingInput {
            period: "2026-11".into(),
            period_start: 1_793_491_200,
            period_end: 1_796_083_200,
            tenant: tenant(),
            currency: "EUR".into(),
            containers: vec![ContainerUsage {
                name: "web".into(),
                seconds_existing: 2_592_000,
                seconds_running: 2_000_000,
                cpu_millis: 7_200_000,
                memory_average_bytes: 300 << 20,
                memory_peak_bytes: 480 << 20,
                disk_average_bytes: 1 << 30,
                disk_peak_bytes: 1 << 30,
                inodes_peak: 20_000,
                processes_peak: 40,
                network_rx_bytes: 5 << 30,
                network_tx_bytes: 20 << 30,
                limits: Limits::default(),
            }],
        }),
        other => anyhow::bail!(
            "no example named {other:?}; there are: {}",
            EXAMPLES.join(", ")
        ),
    }?;
    Ok(json + "\n")
}

fn manifest(name: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
# The .wasm component. Unit tests run natively with `cargo test --lib` (a native cdylib
# cannot be linked: its exports are named after the WIT interfaces).
crate-type = ["cdylib"]
doctest = false

[dependencies]
acetate-plugin-sdk = {{ path = "acetate-plugin-sdk" }}

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true
panic = "abort"

# A project of its own, not part of an enclosing workspace.
[workspace]
"#
    )
}

fn readme(kind: &str, name: &str) -> String {
    let lib = name.replace('-', "_");
    let example = match kind {
        "hook" => "create",
        "billing" => "billing",
        _ => "overuse",
    };
    format!(
        r#"# {name}

An Acetate {kind} plugin (WIT package `acetate:plugin@{wit}`; the SDK this panel was
built with, and the WIT inside it, are in `acetate-plugin-sdk/`).

    rustup target add wasm32-wasip2       # once
    cargo test --lib                       # the unit tests, natively
    cargo build --release --target wasm32-wasip2
    acetate plugin check target/wasm32-wasip2/release/{lib}.wasm
    acetate plugin run target/wasm32-wasip2/release/{lib}.wasm --event @events/{example}.json

`acetate plugin example-event NAME` prints the other inputs ({examples}). Upload the
`.wasm` on the panel's Plugins page (or `POST /api/v1/plugins?name={name}`), dry-run it on
a recorded or typed event there, then switch it on.

The host gives a plugin a log (64 KiB per call) and a small key-value store (256 keys,
64 KiB per value, 1 MiB in all) and nothing else: no files, network, clock or randomness.
A call has 64 MiB of memory, 200 M instructions of fuel and 2 s.
"#,
        wit = acetate_plugins::WIT_VERSION,
        examples = EXAMPLES.join(", "),
    )
}

/// The SDK's manifest as a dependency of the project (its own `[workspace]` table, which
/// keeps it apart in Acetate's tree, would make two workspace roots here).
fn sdk_manifest() -> String {
    SDK_MANIFEST
        .lines()
        .filter(|l| l.trim() != "[workspace]" && !l.starts_with("# Its own workspace"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Writes a new plugin project of `kind` named `name` into `dir` (default `./NAME`), which
/// must not exist; returns the directory.
pub fn scaffold(kind: &str, name: &str, dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    let source = match kind {
        "hook" => HOOK,
        "billing" => BILLING,
        "overuse" => OVERUSE,
        other => anyhow::bail!("no plugin kind {other:?}; there are: {}", KINDS.join(", ")),
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        anyhow::bail!(
            "{} exists already: give another name or --dir",
            dir.display()
        );
    }
    let examples: &[&str] = match kind {
        "hook" => &["create", "resize", "destroy"],
        "billing" => &["billing"],
        _ => &["overuse"],
    };
    let mut files: Vec<(PathBuf, String)> = vec![
        ("Cargo.toml".into(), manifest(name)),
        ("README.md".into(), readme(kind, name)),
        ("src/lib.rs".into(), source.into()),
        (
            ".cargo/config.toml".into(),
            "# A small stack makes every call cheaper (the host resets what a call touched).\n\
             [target.wasm32-wasip2]\nrustflags = [\"-C\", \"link-arg=-zstack-size=131072\"]\n"
                .into(),
        ),
        (".gitignore".into(), "/target\n".into()),
        (
            "acetate-plugin-sdk/wit/acetate-plugin.wit".into(),
            acetate_plugins::WIT.into(),
        ),
        ("acetate-plugin-sdk/Cargo.toml".into(), sdk_manifest()),
        ("acetate-plugin-sdk/src/lib.rs".into(), SDK_LIB.into()),
    ];
    for e in examples {
        files.push((format!("events/{e}.json").into(), example_event(e)?));
    }
    let made = write_all(&dir, &files);
    if made.is_err() {
        // Nothing half-made is left behind.
        let _ = std::fs::remove_dir_all(&dir);
    }
    made.map(|()| dir)
}

fn write_all(dir: &Path, files: &[(PathBuf, String)]) -> anyhow::Result<()> {
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_valid_input() {
        for e in EXAMPLES {
            let text = example_event(e).unwrap();
            let ok = match e {
                "overuse" => serde_json::from_str::<OveruseEvent>(&text).is_ok(),
                "billing" => serde_json::from_str::<BillingInput>(&text).is_ok(),
                _ => serde_json::from_str::<Event>(&text).is_ok(),
            };
            assert!(ok, "{e}: {text}");
        }
        assert!(example_event("reboot").is_err());
    }

    #[test]
    fn bad_names_kinds_and_existing_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(scaffold("hook", "Demo", Some(dir.path().join("a"))).is_err());
        assert!(scaffold("firewall", "demo", Some(dir.path().join("b"))).is_err());
        let err = scaffold("hook", "demo", Some(dir.path().to_path_buf())).unwrap_err();
        assert!(err.to_string().contains("exists already"), "{err}");
        let made = scaffold("overuse", "demo", Some(dir.path().join("c"))).unwrap();
        assert!(made.join("acetate-plugin-sdk/src/lib.rs").is_file());
        assert!(made.join("events/overuse.json").is_file());
        assert!(!dir.path().join("a").exists() && !dir.path().join("b").exists());
    }
}
