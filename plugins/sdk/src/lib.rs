//! Write Acetate plugins in a few lines of Rust.
//!
//! A provisioning hook:
//!
//! ```ignore
//! use acetate_plugin_sdk::hook::{Decision, Event, Hook};
//!
//! struct NoTest;
//!
//! impl Hook for NoTest {
//!     fn handle(event: Event) -> Decision {
//!         match &event.requested {
//!             Some(spec) if spec.name.starts_with("test") => Decision::Deny("no test boxes".into()),
//!             _ => Decision::Allow,
//!         }
//!     }
//! }
//!
//! acetate_plugin_sdk::export_hook!(NoTest);
//! ```
//!
//! A billing rule implements [`billing::Rule`] and is exported with [`export_billing!`].
//! An overuse policy (WIT 1.2.0: what to do when a customer's container runs into its
//! limits) implements [`overuse::Policy`] and is exported with [`export_overuse!`]; a
//! plugin that is both a hook and an overuse policy implements both traits and is exported
//! with [`export_hook_and_overuse!`] (the types are the same in [`hook`] and [`overuse`]).
//! Build with `cargo build --release --target wasm32-wasip2` and upload the `.wasm` file.
//! A small stack makes every call cheaper (the host resets the memory a call touched), so
//! add to your project's `.cargo/config.toml`:
//!
//! ```toml
//! [target.wasm32-wasip2]
//! rustflags = ["-C", "link-arg=-zstack-size=131072"]
//! ```
//! Money is always an integer count of minor units; [`money`] has the arithmetic helpers.

// The generated code names the crate by its public path, from inside as from outside.
extern crate self as acetate_plugin_sdk;

#[doc(hidden)]
pub mod bindings {
    pub mod hook_world {
        wit_bindgen::generate!({
            path: "wit",
            world: "hook-plugin",
            pub_export_macro: true,
            export_macro_name: "export_hook",
            default_bindings_module: "acetate_plugin_sdk::bindings::hook_world",
            runtime_path: "acetate_plugin_sdk::bindings::rt",
            generate_all,
        });
    }
    pub mod overuse_world {
        wit_bindgen::generate!({
            path: "wit",
            world: "overuse-policy",
            pub_export_macro: true,
            export_macro_name: "export_overuse",
            default_bindings_module: "acetate_plugin_sdk::bindings::overuse_world",
            runtime_path: "acetate_plugin_sdk::bindings::rt",
            // The same Rust types as a hook's, so that one plugin can be both.
            with: {
                "acetate:plugin/types@1.2.0": crate::bindings::hook_world::acetate::plugin::types,
                "acetate:plugin/log@1.2.0": crate::bindings::hook_world::acetate::plugin::log,
                "acetate:plugin/kv@1.2.0": crate::bindings::hook_world::acetate::plugin::kv,
            },
        });
    }
    pub mod billing_world {
        wit_bindgen::generate!({
            path: "wit",
            world: "billing-rule",
            pub_export_macro: true,
            export_macro_name: "export_billing",
            default_bindings_module: "acetate_plugin_sdk::bindings::billing_world",
            runtime_path: "acetate_plugin_sdk::bindings::rt",
            generate_all,
        });
    }
    pub use wit_bindgen::rt;
}

#[doc(inline)]
pub use bindings::billing_world::export_billing;
#[doc(inline)]
pub use bindings::hook_world::export_hook;
#[doc(inline)]
pub use bindings::overuse_world::export_overuse;

/// Provisioning hooks: an [`hook::Event`] in, a [`hook::Decision`] out.
pub mod hook {
    pub use crate::bindings::hook_world::acetate::plugin::types::{
        ContainerSpec, Decision, Event, EventKind, Limits, Money, Plan, Tenant,
    };
    /// Implement this and export it with [`crate::export_hook!`].
    pub use crate::bindings::hook_world::exports::acetate::plugin::hook::Guest as Hook;
}

/// Overuse policies (WIT 1.2.0): a container's limit hits in, actions out (tell the
/// customer, change its limits within the plan for a while, suspend the account).
pub mod overuse {
    pub use crate::bindings::hook_world::acetate::plugin::types::{
        Adjustment, ContainerSpec, Fault, Limits, OveruseAction, OveruseEvent, Plan, Tenant,
    };
    /// Implement this and export it with [`crate::export_overuse!`].
    pub use crate::bindings::overuse_world::exports::acetate::plugin::overuse::Guest as Policy;

    /// The kinds of fault the host reports today (a later 1.x may add more).
    pub mod kind {
        pub const OOM_KILL: &str = "oom-kill";
        pub const MEMORY_LIMIT: &str = "memory-limit";
        pub const PROCESS_LIMIT: &str = "process-limit";
        pub const CPU_THROTTLED: &str = "cpu-throttled";
        pub const DISK_FULL: &str = "disk-full";
        pub const INODES_FULL: &str = "inodes-full";
        pub const NETWORK_DROPPED: &str = "network-dropped";
        pub const IO_THROTTLED: &str = "io-throttled";
    }
}

/// Exports a type that implements both [`hook::Hook`] and [`overuse::Policy`]: one plugin
/// that decides on provisioning events and acts on limit hits (it can, say, refuse a resize
/// that would undo its own throttle).
#[macro_export]
macro_rules! export_hook_and_overuse {
    ($ty:ident) => {
        $crate::export_hook!($ty);
        $crate::export_overuse!($ty);
    };
}

/// Billing rules: a customer's usage for a period in, invoice lines out.
pub mod billing {
    pub use crate::bindings::billing_world::acetate::plugin::types::{
        BillingInput, ContainerUsage, InvoiceLine, Limits, Money, Plan, Tenant,
    };
    /// Implement this and export it with [`crate::export_billing!`].
    pub use crate::bindings::billing_world::exports::acetate::plugin::billing::Guest as Rule;
}

/// Log lines shown to the plugin's owner in the panel (at most 64 KiB per call). In a
/// native unit test they go to [`testing`].
pub mod log {
    #[cfg(target_arch = "wasm32")]
    use crate::bindings::hook_world::acetate::plugin::log::log;
    pub use crate::bindings::hook_world::acetate::plugin::log::Level;
    #[cfg(not(target_arch = "wasm32"))]
    use crate::testing::log;

    pub fn debug(message: &str) {
        log(Level::Debug, message);
    }
    pub fn info(message: &str) {
        log(Level::Info, message);
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message);
    }
    pub fn error(message: &str) {
        log(Level::Error, message);
    }
}

/// The plugin's private key-value store (at most 256 keys of 64 KiB, 1 MiB in all). Writes persist only
/// if the call that made them succeeds. `keys` needs a host of WIT 1.1.0 or later. In a
/// native unit test the store is [`testing`]'s, in memory.
pub mod kv {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::hook_world::acetate::plugin::kv::{delete, get, keys, set};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::{delete, get, keys, set};

    /// Reads a counter stored by [`add`] (0 when absent or not a counter).
    pub fn counter(key: &str) -> u64 {
        get(key)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0)
    }

    /// Adds to a counter and returns its new value.
    pub fn add(key: &str, delta: u64) -> Result<u64, String> {
        let value = counter(key).saturating_add(delta);
        set(key, &value.to_le_bytes())?;
        Ok(value)
    }
}

/// Unit tests of a plugin on the build machine (not in wasm): call your `Hook::handle`,
/// `Policy::handle` or `Rule::rate` directly; [`log`](crate::log) and [`kv`](crate::kv)
/// then work on this thread's memory, with the host's limits, and this module shows what
/// the call left:
///
/// ```ignore
/// acetate_plugin_sdk::testing::reset();
/// let decision = <MyHook as Hook>::handle(event);
/// assert!(acetate_plugin_sdk::testing::logs().iter().any(|l| l.contains("refused")));
/// assert_eq!(acetate_plugin_sdk::kv::counter("creates/carol"), 1);
/// ```
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use crate::log::Level;

    const MAX_KEYS: usize = 256;
    const MAX_KEY: usize = 128;
    const MAX_VALUE: usize = 64 << 10;
    const MAX_BYTES: usize = 1 << 20;

    thread_local! {
        static STORE: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
        static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    /// Empties this thread's store and log (each test thread starts empty anyway).
    pub fn reset() {
        STORE.with(|s| s.borrow_mut().clear());
        LOG.with(|l| l.borrow_mut().clear());
    }

    /// The log lines so far, as "info: message".
    pub fn logs() -> Vec<String> {
        LOG.with(|l| l.borrow().clone())
    }

    /// The store as it is.
    pub fn store() -> BTreeMap<String, Vec<u8>> {
        STORE.with(|s| s.borrow().clone())
    }

    pub(crate) fn log(level: Level, message: &str) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        LOG.with(|l| l.borrow_mut().push(format!("{level}: {message}")));
    }

    pub fn get(key: &str) -> Option<Vec<u8>> {
        STORE.with(|s| s.borrow().get(key).cloned())
    }

    /// Refused as the host refuses: keys over 128 bytes, values over 64 KiB, more than
    /// 256 keys or 1 MiB in all.
    pub fn set(key: &str, value: &[u8]) -> Result<(), String> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(format!("keys are 1 to {MAX_KEY} bytes"));
        }
        if value.len() > MAX_VALUE {
            return Err(format!("values are at most {MAX_VALUE} bytes"));
        }
        STORE.with(|s| {
            let mut s = s.borrow_mut();
            let total: usize = s
                .iter()
                .filter(|(k, _)| k.as_str() != key)
                .map(|(k, v)| k.len() + v.len())
                .sum();
            if !s.contains_key(key) && s.len() >= MAX_KEYS {
                return Err(format!("the store is full ({MAX_KEYS} keys)"));
            }
            if total + key.len() + value.len() > MAX_BYTES {
                return Err(format!(
                    "the store is full ({MAX_BYTES} bytes of keys and values)"
                ));
            }
            s.insert(key.to_string(), value.to_vec());
            Ok(())
        })
    }

    pub fn delete(key: &str) {
        STORE.with(|s| s.borrow_mut().remove(key));
    }

    pub fn keys() -> Vec<String> {
        STORE.with(|s| s.borrow().keys().cloned().collect())
    }
}

/// Integer money arithmetic: no floats, explicit rounding.
pub mod money {
    /// `amount * numerator / denominator`, rounded half away from zero; saturates instead of
    /// overflowing. A zero denominator gives 0.
    pub fn scale(amount: i64, numerator: u64, denominator: u64) -> i64 {
        if denominator == 0 {
            return 0;
        }
        let product = i128::from(amount) * i128::from(numerator);
        let d = i128::from(denominator);
        let half = d / 2;
        let rounded = if product >= 0 {
            (product + half) / d
        } else {
            (product - half) / d
        };
        i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
    }

    /// Price of `quantity_millis` thousandths of a unit at `unit_price` per unit.
    pub fn price(unit_price: i64, quantity_millis: u64) -> i64 {
        scale(unit_price, quantity_millis, 1000)
    }

    /// A price over tiers: `tiers` is a list of (units up to, price per unit) in thousandths
    /// of a unit, the last tier open-ended (`u64::MAX`).
    pub fn tiered(quantity_millis: u64, tiers: &[(u64, i64)]) -> i64 {
        let mut total: i64 = 0;
        let mut floor = 0u64;
        for &(upto, unit_price) in tiers {
            if quantity_millis <= floor {
                break;
            }
            let in_tier = quantity_millis.min(upto) - floor;
            total = total.saturating_add(price(unit_price, in_tier));
            floor = upto;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::money::*;

    #[test]
    fn the_native_store_and_log_work_like_the_hosts() {
        crate::testing::reset();
        assert_eq!(crate::kv::add("n", 2), Ok(2));
        assert_eq!(crate::kv::add("n", 3), Ok(5));
        crate::log::info("hello");
        assert_eq!(crate::testing::logs(), vec!["info: hello".to_string()]);
        assert!(crate::kv::set("big", &vec![0; 70_000]).is_err());
        for i in 0..255 {
            crate::kv::set(&format!("k{i}"), b"v").unwrap();
        }
        assert!(crate::kv::set("one-too-many", b"v").is_err());
        crate::kv::delete("n");
        assert_eq!(crate::kv::counter("n"), 0);
        assert_eq!(crate::kv::keys().len(), 255);
    }

    #[test]
    fn scale_rounds_half_away_from_zero() {
        assert_eq!(scale(100, 1, 3), 33);
        assert_eq!(scale(100, 2, 3), 67);
        assert_eq!(scale(-100, 2, 3), -67);
        assert_eq!(scale(5, 1, 2), 3);
        assert_eq!(scale(1, 1, 0), 0);
        assert_eq!(scale(i64::MAX, 3, 1), i64::MAX);
    }

    #[test]
    fn tiers_price_each_slice_at_its_rate() {
        // First 10 units at 100, next 90 at 50, the rest at 10.
        let tiers = [(10_000, 100), (100_000, 50), (u64::MAX, 10)];
        assert_eq!(tiered(5_000, &tiers), 500);
        assert_eq!(tiered(10_000, &tiers), 1000);
        assert_eq!(tiered(20_000, &tiers), 1000 + 500);
        assert_eq!(tiered(200_000, &tiers), 1000 + 4500 + 1000);
        assert_eq!(tiered(0, &tiers), 0);
    }
}
