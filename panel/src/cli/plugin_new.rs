//! `acetate plugin new` and `acetate plugin example-event`: where a plugin author starts,
//! outside Acetate's source tree. The project gets the SDK and the WIT package this binary
//! was built with (so it builds offline against exactly the contract the host checks), a
//! working plugin of the chosen kind with a unit test (run natively with the SDK's
//! `testing` helper), example inputs for `plugin run`, and
//! a README.

use std::path::{Path, PathBuf};

pub use acetate_plugins::{sample_input as example_event, SAMPLES as EXAMPLES};

const SDK_MANIFEST: &str = include_str!("../../../plugins/sdk/Cargo.toml");
const SDK_LIB: &str = include_str!("../../../plugins/sdk/src/lib.rs");
const HOOK: &str = include_str!("../../scaffold/hook.rs.txt");
const BILLING: &str = include_str!("../../scaffold/billing.rs.txt");
const OVERUSE: &str = include_str!("../../scaffold/overuse.rs.txt");

/// The kinds of plugin a project can start as.
pub const KINDS: [&str; 3] = ["hook", "billing", "overuse"];

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
        let text = example_event(e).map_err(anyhow::Error::msg)?;
        files.push((format!("events/{e}.json").into(), text));
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
