//! Builds the example plugins in `examples/` for wasm32-wasip2 so that a plain `cargo build`
//! on a fresh machine has them: the bundled default billing rule is embedded in the host,
//! the others are used by tests and benchmarks.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let examples = manifest_dir.join("examples");
    for path in [
        "examples/Cargo.toml",
        "examples/Cargo.lock",
        "sdk/Cargo.toml",
        "sdk/src",
        "sdk/wit",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    for entry in std::fs::read_dir(&examples).expect("plugins/examples exists") {
        let path = entry.expect("readable plugins/examples").path();
        if path.join("Cargo.toml").is_file() {
            println!("cargo:rerun-if-changed={}", path.join("src").display());
            println!(
                "cargo:rerun-if-changed={}",
                path.join("Cargo.toml").display()
            );
        }
    }

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../target"))
        .join("wasm-plugins");
    ensure_target();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // From inside the examples' directory, so that their .cargo/config.toml applies.
    command
        .current_dir(&examples)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--target",
            TARGET,
        ])
        .arg("--manifest-path")
        .arg(examples.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings (clippy's wrapper, host flags, its target) are not the guest's.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("cannot run cargo to build the example plugins");
    assert!(
        status.success(),
        "building the example plugins for {TARGET} failed (see above)"
    );
    let out = target_dir.join(TARGET).join("release");
    assert!(
        out.join("default_billing.wasm").is_file(),
        "the example plugins were built but {} has no default_billing.wasm",
        out.display()
    );
    println!("cargo:rustc-env=ACETATE_PLUGIN_EXAMPLES={}", out.display());
}

/// The wasm32-wasip2 standard library must be installed; rustup does not add targets by itself.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = |root: &Path| root.join("lib/rustlib").join(TARGET).is_dir();
    if sysroot.as_deref().is_some_and(installed) {
        return;
    }
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        added,
        "the Rust standard library for {TARGET} is missing and `rustup target add {TARGET}` failed; \
         run scripts/setup (or that rustup command) and build again"
    );
}
