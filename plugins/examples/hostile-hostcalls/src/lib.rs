//! Hostile: spends almost no fuel of its own but makes the host copy huge strings, call
//! after call. The host's byte budget on host calls and the wall-clock bound must stop it.

use acetate_plugin_sdk::hook::{Decision, Event, Hook};
use acetate_plugin_sdk::log;

struct Flood;

impl Hook for Flood {
    fn handle(_event: Event) -> Decision {
        let big = "x".repeat(4 << 20);
        for _ in 0..100_000 {
            log::info(&big);
        }
        Decision::Allow
    }
}

acetate_plugin_sdk::export_hook!(Flood);
