use std::path::PathBuf;
use std::process::{Command, Output};

use acetate_engine::testing::{root_or_skip, shared_state_dir};

/// The state dir for CLI tests, or `None` when not root outside CI.
pub fn state_dir(test: &str) -> Option<PathBuf> {
    root_or_skip(test).then(|| shared_state_dir("cli"))
}

/// Runs `acetate --state-dir DIR ARGS...`.
pub fn acetate(state: &PathBuf, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_acetate"))
        .arg("--state-dir")
        .arg(state)
        .args(args)
        .output()
        .expect("run acetate")
}

/// Runs acetate and returns stdout, failing the test on a non-zero exit.
pub fn ok(state: &PathBuf, args: &[&str]) -> String {
    let out = acetate(state, args);
    assert!(
        out.status.success(),
        "acetate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs acetate expecting failure; returns (exit code, stderr).
pub fn fails(state: &PathBuf, args: &[&str]) -> (i32, String) {
    let out = acetate(state, args);
    assert!(!out.status.success(), "acetate {args:?} should have failed");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stderr).unwrap(),
    )
}
