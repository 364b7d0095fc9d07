//! Hostile: looks for the host's files, environment, clock and randomness, and reports what
//! it found in its refusal. In Acetate's sandbox it must find nothing.

use acetate_plugin_sdk::hook::{Decision, Event, Hook};

struct Snoop;

impl Hook for Snoop {
    fn handle(_event: Event) -> Decision {
        let mut found = Vec::new();
        for path in ["/etc/passwd", "/", ".", "/proc/self/environ"] {
            if std::fs::read_dir(path).is_ok() || std::fs::read(path).is_ok() {
                found.push(format!("file {path}"));
            }
        }
        let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
        if !vars.is_empty() {
            found.push(format!("env {}", vars.join(",")));
        }
        let args: Vec<String> = std::env::args().collect();
        if !args.is_empty() {
            found.push(format!("args {}", args.join(" ")));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now != 0 {
            found.push(format!("clock {now}"));
        }
        // HashMap keys come from the host's random source: the host must make it a constant,
        // so the same input always gets the same answer.
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new().hash_one(1u8);
        let found = if found.is_empty() {
            "nothing".to_string()
        } else {
            found.join("; ")
        };
        Decision::Deny(format!("{found} (hash seed {seed:x})"))
    }
}

acetate_plugin_sdk::export_hook!(Snoop);
