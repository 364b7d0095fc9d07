//! A hook built against acetate:plugin@1.0.0 (the frozen copy in `wit/compat/1.0.0`):
//! refuses names starting with `legacy-no`, counts its calls in the store, logs.

wit_bindgen::generate!({
    path: "../../wit/compat/1.0.0",
    world: "hook-plugin",
});

use acetate::plugin::types::{Decision, Event};
use acetate::plugin::{kv, log};

struct Legacy;

impl exports::acetate::plugin::hook::Guest for Legacy {
    fn handle(event: Event) -> Decision {
        let calls = kv::get("calls")
            .and_then(|v| v.first().copied())
            .unwrap_or(0);
        let _ = kv::set("calls", &[calls.wrapping_add(1)]);
        log::log(log::Level::Info, "built against acetate:plugin@1.0.0");
        match event.requested {
            Some(spec) if spec.name.starts_with("legacy-no") => {
                Decision::Deny("not with that name".into())
            }
            _ => Decision::Allow,
        }
    }
}

export!(Legacy);
