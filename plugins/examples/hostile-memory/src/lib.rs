//! Hostile: allocates until something gives. The host's memory cap must stop it.

use acetate_plugin_sdk::hook::{Decision, Event, Hook};

struct Hog;

impl Hook for Hog {
    fn handle(_event: Event) -> Decision {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
            if hoard.len() == usize::MAX {
                return Decision::Allow;
            }
        }
    }
}

acetate_plugin_sdk::export_hook!(Hog);
