//! Hostile: never returns. The host must stop it when its fuel runs out.

use acetate_plugin_sdk::hook::{Decision, Event, Hook};

struct Spin;

impl Hook for Spin {
    fn handle(event: Event) -> Decision {
        let mut n = event.at as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

acetate_plugin_sdk::export_hook!(Spin);
