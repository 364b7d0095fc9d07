//! Compiles `init/init.rs` into the tiny static `acetate-init` binary that becomes PID 1 of
//! every container; the engine embeds it (see `init.rs` in `src/`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("init/init.rs");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("acetate-init");
    println!("cargo:rerun-if-changed={}", src.display());
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = env::var("TARGET").unwrap();
    let base = |static_link: bool| {
        let mut cmd = Command::new(&rustc);
        cmd.arg(&src)
            .args([
                "--edition",
                "2021",
                "--crate-type",
                "bin",
                "--target",
                &target,
            ])
            .args([
                "-C",
                "opt-level=s",
                "-C",
                "panic=abort",
                "-C",
                "strip=symbols",
            ])
            .args(["-C", "codegen-units=1", "-C", "debuginfo=0"])
            .arg("-o")
            .arg(&out);
        if static_link {
            cmd.args(["-C", "target-feature=+crt-static"]);
        }
        cmd
    };
    // A static binary starts faster and maps less; fall back to a dynamic one if the host
    // has no static C library.
    let ok = base(true).status().map(|s| s.success()).unwrap_or(false)
        || base(false).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        panic!("could not compile {} with {rustc}", src.display());
    }
}
