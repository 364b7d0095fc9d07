//! Hostile: panics (a trap for the host).

use acetate_plugin_sdk::hook::{Decision, Event, Hook};

struct Crash;

impl Hook for Crash {
    fn handle(event: Event) -> Decision {
        let divisor = std::hint::black_box(event.tenant.container_count.saturating_sub(u32::MAX));
        if divisor == 0 {
            panic!("deliberate crash while handling {:?}", event.kind);
        }
        Decision::Allow
    }
}

acetate_plugin_sdk::export_hook!(Crash);
