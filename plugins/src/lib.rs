//! Acetate's WebAssembly plugin host.
//!
//! Resellers upload components built against the WIT package in `plugins/sdk/wit/`: provisioning
//! hooks (an [`Event`] in, a [`Decision`] out) and billing rules (a [`BillingInput`] in,
//! [`InvoiceLine`]s out). [`Host`] validates a component against the worlds, compiles it once
//! (cached in memory and on disk, keyed by the component's hash and the engine's
//! compatibility hash) and runs every call in a fresh store with a memory cap, a fuel budget,
//! and caps on input, output, log and host calls. A plugin that traps, loops, exhausts its
//! memory or answers garbage yields a [`Failure`]; the host itself never fails with it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store};

mod outcome;
mod output;
mod overuse;
mod samples;
mod sandbox;
mod types;

pub use outcome::{Call, Failure, Kind, Kv, KvChanges, LoadError, LogLevel, LogLine};
pub use overuse::{FaultHit, OveruseAction, OveruseEvent, MAX_ACTIONS};
pub use samples::{sample_input, SAMPLES};
pub use sandbox::{apply as apply_kv_changes, KV_MAX_BYTES, KV_MAX_KEY, KV_MAX_KEYS, KV_MAX_VALUE};
pub use types::{
    BillingInput, ContainerSpec, ContainerUsage, Decision, Event, EventKind, InvoiceLine, Limits,
    Money, Plan, Tenant,
};

use output::{check_decision, check_lines, classify, clip, hex};
use sandbox::State;

mod bindings {
    pub mod hook {
        wasmtime::component::bindgen!({
            path: "sdk/wit",
            world: "hook-plugin",
            imports: { default: trappable },
        });
    }
    pub mod billing {
        wasmtime::component::bindgen!({
            path: "sdk/wit",
            world: "billing-rule",
            imports: { default: trappable },
            with: {
                "acetate:plugin/types": super::hook::acetate::plugin::types,
                "acetate:plugin/log": super::hook::acetate::plugin::log,
                "acetate:plugin/kv": super::hook::acetate::plugin::kv,
            },
        });
    }
    pub mod overuse {
        wasmtime::component::bindgen!({
            path: "sdk/wit",
            world: "overuse-policy",
            imports: { default: trappable },
            with: {
                "acetate:plugin/types": super::hook::acetate::plugin::types,
                "acetate:plugin/log": super::hook::acetate::plugin::log,
                "acetate:plugin/kv": super::hook::acetate::plugin::kv,
            },
        });
    }
    pub use hook::acetate::plugin::{kv, log, types};
}

/// The version of the WIT package this host implements.
pub const WIT_VERSION: &str = "1.2.0";
/// The WIT package itself, for plugin authors (served by the panel, printed by the CLI).
pub const WIT: &str = include_str!("../sdk/wit/acetate-plugin.wit");
/// The billing rule used for resellers that have none: plan prices, prorated.
pub const DEFAULT_BILLING_RULE: &[u8] = include_bytes!(concat!(
    env!("ACETATE_PLUGIN_EXAMPLES"),
    "/default_billing.wasm"
));

/// The directory holding the example plugins built for wasm32-wasip2 by this crate's build.
pub fn examples_dir() -> &'static Path {
    Path::new(env!("ACETATE_PLUGIN_EXAMPLES"))
}

/// Calls that may run at once (the pool's size); more wait for a free slot.
pub const CONCURRENT_CALLS: u32 = 64;

/// Largest component accepted.
pub const MAX_COMPONENT_BYTES: usize = 16 << 20;

/// What one call may use.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Fuel (roughly one unit per WebAssembly instruction).
    pub fuel: u64,
    /// Linear memory, in bytes, over all the component's memories.
    pub memory_bytes: usize,
    /// Size of the input, measured as its JSON.
    pub max_input_bytes: usize,
    /// Log kept per call.
    pub max_log_bytes: usize,
    /// Invoice lines a billing rule may return.
    pub max_lines: usize,
    /// Calls into the host (log, key-value) per call.
    pub max_host_calls: u32,
    /// Bytes moved through host calls (strings and values in and out) per call: the
    /// copying they cost the host is not paid for by fuel.
    pub max_host_bytes: usize,
    /// Wall-clock time a call may take, whatever it spends its time on (checked by
    /// epoch interruption every [`EPOCH_TICK`]).
    pub wall_time: Duration,
}

/// How often the engine's epoch advances: the resolution of [`Budget::wall_time`].
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

impl Default for Budget {
    fn default() -> Self {
        Budget {
            fuel: 200_000_000,
            memory_bytes: 64 << 20,
            max_input_bytes: 1 << 20,
            max_log_bytes: 64 << 10,
            max_lines: 1000,
            max_host_calls: 100_000,
            max_host_bytes: 8 << 20,
            wall_time: Duration::from_secs(2),
        }
    }
}

enum Pre {
    /// One of the reseller's hooks: provisioning events, limit hits, or both.
    Hook {
        events: Option<bindings::hook::HookPluginPre<State>>,
        overuse: Option<bindings::overuse::OverusePolicyPre<State>>,
    },
    Billing(bindings::billing::BillingRulePre<State>),
}

/// A validated, compiled component ready to run.
pub struct Plugin {
    kind: Kind,
    sha256: String,
    pre: Pre,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("kind", &self.kind)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl Plugin {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Hex SHA-256 of the component's bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Whether it decides on provisioning events (exports `hook`).
    pub fn handles_events(&self) -> bool {
        matches!(
            &self.pre,
            Pre::Hook {
                events: Some(_),
                ..
            }
        )
    }

    /// Whether it acts on limit hits (exports `overuse`, WIT 1.2.0).
    pub fn handles_overuse(&self) -> bool {
        matches!(
            &self.pre,
            Pre::Hook {
                overuse: Some(_),
                ..
            }
        )
    }

    /// What it exports, for people: "provisioning events", "limit hits",
    /// "provisioning events and limit hits", "billing".
    pub fn handles(&self) -> &'static str {
        match (self.handles_events(), self.handles_overuse()) {
            _ if self.kind == Kind::Billing => "billing",
            (true, true) => "provisioning events and limit hits",
            (false, true) => "limit hits",
            _ => "provisioning events",
        }
    }
}

/// One per process: the wasmtime engine, the linker with the host functions, and the caches.
pub struct Host {
    engine: Engine,
    linker: Linker<State>,
    cache_dir: Option<PathBuf>,
    compat: String,
    loaded: Mutex<HashMap<String, Arc<Plugin>>>,
    budget: Budget,
    slots: Slots,
}

/// A counting semaphore over the instance pool, so that a burst of calls waits instead of
/// failing for want of a slot.
struct Slots {
    free: Mutex<u32>,
    freed: std::sync::Condvar,
}

impl Slots {
    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().expect("slot lock");
        while *free == 0 {
            free = self.freed.wait(free).expect("slot lock");
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().expect("slot lock") += 1;
        self.0.freed.notify_one();
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("cache_dir", &self.cache_dir)
            .field("budget", &self.budget)
            .finish()
    }
}

/// Where a [`Host::load`] found the compiled code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Memory,
    Disk,
    Compiled,
}

impl Host {
    /// A host caching compiled components in `cache_dir` (created if missing), or only in
    /// memory when `None`.
    pub fn new(cache_dir: Option<&Path>, budget: Budget) -> Result<Host, LoadError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        config.max_wasm_stack(512 << 10);
        // Instances come from a pool: no mmap and munmap per call (which also serializes
        // threads on the address-space lock), memories reset by madvise.
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(CONCURRENT_CALLS)
            .total_core_instances(CONCURRENT_CALLS * 8)
            .total_memories(CONCURRENT_CALLS * 2)
            .total_tables(CONCURRENT_CALLS * 8)
            .max_memory_size(budget.memory_bytes)
            .linear_memory_keep_resident(256 << 10)
            .table_keep_resident(64 << 10);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        // The wall clock of every call: one thread per host advances the epoch; it ends
        // with the engine.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            })
            .map_err(LoadError::Cache)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        bindings::hook::HookPlugin::add_to_linker::<_, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        if let Some(dir) = cache_dir {
            std::fs::create_dir_all(dir)?;
        }
        let compat = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        };
        Ok(Host {
            engine,
            linker,
            cache_dir: cache_dir.map(Path::to_path_buf),
            compat,
            loaded: Mutex::new(HashMap::new()),
            budget,
            slots: Slots {
                free: Mutex::new(CONCURRENT_CALLS),
                freed: std::sync::Condvar::new(),
            },
        })
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Validates and compiles a component, or takes it from the caches.
    pub fn load(&self, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        self.load_traced(bytes).map(|(plugin, _)| plugin)
    }

    /// [`Host::load`], saying which cache served it.
    pub fn load_traced(&self, bytes: &[u8]) -> Result<(Arc<Plugin>, Source), LoadError> {
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(LoadError::TooLarge(bytes.len()));
        }
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err(LoadError::NotWasm);
        }
        if bytes[4..8] == [1, 0, 0, 0] {
            return Err(LoadError::CoreModule);
        }
        let sha256 = hex(&Sha256::digest(bytes));
        if let Some(plugin) = self.loaded.lock().expect("plugin cache lock").get(&sha256) {
            return Ok((plugin.clone(), Source::Memory));
        }
        let cached = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{sha256}-{}.cwasm", self.compat)));
        let (component, source) = match cached.as_deref().filter(|p| p.is_file()) {
            // SAFETY: the file was written by `Component::serialize` of an engine with the
            // same compatibility hash (it is in the name), into the panel's own state
            // directory, which only root can write.
            Some(path) => match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(component) => (component, Source::Disk),
                Err(_) => (self.compile(bytes)?, Source::Compiled),
            },
            None => (self.compile(bytes)?, Source::Compiled),
        };
        let plugin = Arc::new(self.link(component.clone(), sha256.clone())?);
        if source == Source::Compiled {
            if let Some(path) = &cached {
                let code = component
                    .serialize()
                    .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, code)?;
                std::fs::rename(&tmp, path)?;
            }
        }
        self.loaded
            .lock()
            .expect("plugin cache lock")
            .insert(sha256, plugin.clone());
        Ok((plugin, source))
    }

    fn compile(&self, bytes: &[u8]) -> Result<Component, LoadError> {
        Component::new(&self.engine, bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))
    }

    fn link(&self, component: Component, sha256: String) -> Result<Plugin, LoadError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let has = |prefix: &str| exports.iter().any(|e| e.starts_with(prefix));
        let (events, overuse) = (
            has("acetate:plugin/hook@1."),
            has("acetate:plugin/overuse@1."),
        );
        let kind = match (events || overuse, has("acetate:plugin/billing@1.")) {
            (true, true) => return Err(LoadError::BothWorlds),
            (true, false) => Kind::Hook,
            (false, true) => Kind::Billing,
            (false, false) => {
                let list = if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                };
                return Err(LoadError::NoWorld(list));
            }
        };
        let mismatch = |e: wasmtime::Error| LoadError::Mismatch {
            kind,
            message: format!("{e:#}"),
        };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(mismatch)?;
        let pre = match kind {
            Kind::Hook => Pre::Hook {
                events: events
                    .then(|| bindings::hook::HookPluginPre::new(instance_pre.clone()))
                    .transpose()
                    .map_err(mismatch)?,
                overuse: overuse
                    .then(|| bindings::overuse::OverusePolicyPre::new(instance_pre))
                    .transpose()
                    .map_err(mismatch)?,
            },
            Kind::Billing => Pre::Billing(
                bindings::billing::BillingRulePre::new(instance_pre).map_err(mismatch)?,
            ),
        };
        Ok(Plugin { kind, sha256, pre })
    }

    /// Runs a provisioning hook on an event. `kv` is the plugin's store before the call.
    pub fn hook(&self, plugin: &Plugin, event: &Event, kv: Arc<Kv>) -> Call<Decision> {
        let Pre::Hook { events, .. } = &plugin.pre else {
            return self.refused(Failure::WrongKind(plugin.kind));
        };
        let Some(pre) = events else {
            return self.refused(Failure::NotExported("hook".into()));
        };
        if let Err(failure) = self.check_input(event) {
            return self.refused(failure);
        }
        let input = bindings::types::Event::from(event);
        self.run(kv, |store| {
            let instance = pre.instantiate(&mut *store)?;
            instance
                .acetate_plugin_hook()
                .call_handle(&mut *store, &input)
        })
        .and_then(|decision| check_decision(decision.into()))
    }

    /// Runs an overuse policy on a container's limit hits. `kv` is the plugin's store
    /// before the call.
    pub fn overuse(
        &self,
        plugin: &Plugin,
        event: &OveruseEvent,
        kv: Arc<Kv>,
    ) -> Call<Vec<OveruseAction>> {
        let Pre::Hook { overuse, .. } = &plugin.pre else {
            return self.refused(Failure::WrongKind(plugin.kind));
        };
        let Some(pre) = overuse else {
            return self.refused(Failure::NotExported("overuse".into()));
        };
        if let Err(failure) = self.check_input(event) {
            return self.refused(failure);
        }
        let input = bindings::types::OveruseEvent::from(event);
        self.run(kv, |store| {
            let instance = pre.instantiate(&mut *store)?;
            instance
                .acetate_plugin_overuse()
                .call_handle(&mut *store, &input)
        })
        .and_then(|actions| overuse::check_actions(actions.into_iter().map(Into::into).collect()))
    }

    /// Runs a billing rule on a customer's usage.
    pub fn billing(
        &self,
        plugin: &Plugin,
        input: &BillingInput,
        kv: Arc<Kv>,
    ) -> Call<Vec<InvoiceLine>> {
        let Pre::Billing(pre) = &plugin.pre else {
            return self.refused(Failure::WrongKind(plugin.kind));
        };
        if let Err(failure) = self.check_input(input) {
            return self.refused(failure);
        }
        let wit_input = bindings::types::BillingInput::from(input);
        let max_lines = self.budget.max_lines;
        self.run(kv, |store| {
            let instance = pre.instantiate(&mut *store)?;
            instance
                .acetate_plugin_billing()
                .call_rate(&mut *store, &wit_input)
        })
        .and_then(|answer| match answer {
            Ok(lines) => check_lines(
                lines.into_iter().map(Into::into).collect(),
                &input.currency,
                max_lines,
            ),
            Err(message) => Err(Failure::BadOutput(format!(
                "the rule refused to rate: {}",
                clip(&message, 500)
            ))),
        })
    }

    fn check_input<T: Serialize>(&self, input: &T) -> Result<(), Failure> {
        let size = serde_json::to_vec(input)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > self.budget.max_input_bytes {
            return Err(Failure::BadInput(format!(
                "{size} bytes, over {}",
                self.budget.max_input_bytes
            )));
        }
        Ok(())
    }

    fn refused<T>(&self, failure: Failure) -> Call<T> {
        Call {
            result: Err(failure),
            log: Vec::new(),
            kv_changes: KvChanges::default(),
            fuel_used: 0,
            elapsed: Duration::ZERO,
        }
    }

    fn run<T>(
        &self,
        kv: Arc<Kv>,
        call: impl FnOnce(&mut Store<State>) -> wasmtime::Result<T>,
    ) -> Call<T> {
        let started = Instant::now();
        let _slot = self.slots.acquire();
        let mut store = Store::new(&self.engine, State::new(&self.budget, kv));
        store.limiter(|state| &mut state.limiter);
        store.set_fuel(self.budget.fuel).expect("fuel is enabled");
        let ticks = self.budget.wall_time.as_millis() / EPOCH_TICK.as_millis();
        store.set_epoch_deadline(ticks.max(1) as u64);
        store.epoch_deadline_trap();
        let outcome = call(&mut store);
        let fuel_used = self.budget.fuel - store.get_fuel().unwrap_or(0);
        let state = store.data_mut();
        let result = outcome.map_err(|e| classify(e, state));
        let log = state.take_log();
        let kv_changes = if result.is_ok() {
            std::mem::take(&mut state.kv_changes)
        } else {
            KvChanges::default()
        };
        Call {
            result,
            log,
            kv_changes,
            fuel_used,
            elapsed: started.elapsed(),
        }
    }
}

/// The bundled example plugins by name (`naming_policy`, `hostile_loop`, ...), for tests,
/// benchmarks and the CLI's documentation.
pub fn example(name: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(examples_dir().join(format!("{name}.wasm")))
}

impl Host {
    /// A component already loaded by this process, by its hex SHA-256 (no bytes needed).
    pub fn cached(&self, sha256: &str) -> Option<Arc<Plugin>> {
        self.loaded
            .lock()
            .expect("plugin cache lock")
            .get(sha256)
            .cloned()
    }
}
