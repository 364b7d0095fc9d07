//! What a plugin's store holds during one call: the locked-down WASI context, the memory
//! limiter, the log buffer and the key-value view.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::{kv, log};
use crate::{Budget, Kv, KvChanges, LogLevel, LogLine};

/// Keys a plugin may hold in its store.
pub const KV_MAX_KEYS: usize = 256;
/// Bytes of keys and values a plugin's store holds at most, all keys together.
pub const KV_MAX_BYTES: usize = 1 << 20;
/// Longest key.
pub const KV_MAX_KEY: usize = 128;
/// Largest value.
pub const KV_MAX_VALUE: usize = 64 << 10;

/// A clock stopped at the Unix epoch: plugins get time from their input, never from a clock.
struct Stopped;

impl HostWallClock for Stopped {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for Stopped {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) limiter: Limiter,
    pub(crate) log: Vec<LogLine>,
    log_bytes: usize,
    log_cap: usize,
    log_dropped: usize,
    kv_base: std::sync::Arc<Kv>,
    pub(crate) kv_changes: KvChanges,
    host_calls: u32,
    max_host_calls: u32,
    host_bytes: usize,
    max_host_bytes: usize,
    pub(crate) host_calls_exceeded: bool,
}

impl State {
    pub(crate) fn new(budget: &Budget, kv: std::sync::Arc<Kv>) -> State {
        let stderr = MemoryOutputPipe::new(16 << 10);
        // No preopened directories, no environment, no arguments, no sockets, a stopped
        // clock and a fixed-seed generator: the guest's standard library links, but finds
        // nothing of the host.
        let wasi = WasiCtx::builder()
            .stdout(stderr.clone())
            .stderr(stderr.clone())
            .wall_clock(Stopped)
            .monotonic_clock(Stopped)
            .secure_random(StdRng::seed_from_u64(0))
            .insecure_random(StdRng::seed_from_u64(0))
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        State {
            wasi,
            table: ResourceTable::new(),
            stderr,
            limiter: Limiter {
                memory: budget.memory_bytes,
                refused: false,
            },
            log: Vec::new(),
            log_bytes: 0,
            log_cap: budget.max_log_bytes,
            log_dropped: 0,
            kv_base: kv,
            kv_changes: KvChanges::default(),
            host_calls: 0,
            max_host_calls: budget.max_host_calls,
            host_bytes: 0,
            max_host_bytes: budget.max_host_bytes,
            host_calls_exceeded: false,
        }
    }

    /// Counts a host call; past the budget the call traps (a guest spinning on host calls
    /// would otherwise burn host time its fuel does not pay for).
    fn host_call(&mut self) -> wasmtime::Result<()> {
        self.host_calls += 1;
        if self.host_calls > self.max_host_calls {
            self.host_calls_exceeded = true;
            wasmtime::bail!("more than {} host calls", self.max_host_calls);
        }
        Ok(())
    }

    /// Counts a host call that moves `bytes` (arguments and results); past the byte
    /// budget the call traps.
    fn host_call_moving(&mut self, bytes: usize) -> wasmtime::Result<()> {
        self.host_call()?;
        self.host_bytes = self.host_bytes.saturating_add(bytes);
        if self.host_bytes > self.max_host_bytes {
            self.host_calls_exceeded = true;
            wasmtime::bail!(
                "moved more than {} bytes through host calls",
                self.max_host_bytes
            );
        }
        Ok(())
    }

    pub(crate) fn push_log(&mut self, level: LogLevel, message: &str) {
        if self.log_bytes + message.len() > self.log_cap {
            self.log_dropped += 1;
            return;
        }
        self.log_bytes += message.len();
        self.log.push(LogLine {
            level,
            message: message.to_owned(),
        });
    }

    /// Finishes the log: the guest's stderr (panic messages) and a note on what was dropped.
    pub(crate) fn take_log(&mut self) -> Vec<LogLine> {
        let stderr = self.stderr.contents();
        if !stderr.is_empty() {
            let text = String::from_utf8_lossy(&stderr).into_owned();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                self.push_log(LogLevel::Warn, line);
            }
        }
        let mut log = std::mem::take(&mut self.log);
        if self.log_dropped > 0 {
            log.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "{} log lines dropped (over {} bytes in one call)",
                    self.log_dropped, self.log_cap
                ),
            });
        }
        log
    }

    fn kv_value(&self, key: &str) -> Option<&Vec<u8>> {
        match self.kv_changes.0.get(key) {
            Some(change) => change.as_ref(),
            None => self.kv_base.get(key),
        }
    }

    /// Bytes of keys and values in the store if `key` were set to `value_len` bytes.
    fn kv_bytes_with(&self, key: &str, value_len: usize) -> usize {
        let mut bytes: usize = self
            .kv_base
            .iter()
            .filter(|(k, _)| !self.kv_changes.0.contains_key(*k))
            .map(|(k, v)| k.len() + v.len())
            .sum();
        for (k, change) in &self.kv_changes.0 {
            if let (Some(v), true) = (change, k != key) {
                bytes += k.len() + v.len();
            }
        }
        if !self.kv_changes.0.contains_key(key) {
            bytes -= self.kv_base.get(key).map_or(0, |v| key.len() + v.len());
        }
        bytes + key.len() + value_len
    }

    fn kv_len_with(&self, key: &str) -> usize {
        let mut keys = self.kv_base.len();
        for (k, change) in &self.kv_changes.0 {
            match (self.kv_base.contains_key(k), change.is_some()) {
                (true, false) => keys -= 1,
                (false, true) => keys += 1,
                _ => {}
            }
        }
        if self.kv_value(key).is_none() {
            keys += 1;
        }
        keys
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps a plugin's linear memory and remembers whether it hit the cap.
pub(crate) struct Limiter {
    memory: usize,
    pub(crate) refused: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.memory;
        self.refused |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl crate::bindings::types::Host for State {}

impl log::Host for State {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.host_call_moving(message.len())?;
        let level = match level {
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        self.push_log(level, &message);
        Ok(())
    }
}

impl kv::Host for State {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let value = self.kv_value(&key).cloned();
        self.host_call_moving(key.len() + value.as_ref().map_or(0, Vec::len))?;
        Ok(value)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        self.host_call_moving(key.len() + value.len())?;
        if key.is_empty() || key.len() > KV_MAX_KEY {
            return Ok(Err(format!("keys are 1 to {KV_MAX_KEY} bytes")));
        }
        if value.len() > KV_MAX_VALUE {
            return Ok(Err(format!("values are at most {KV_MAX_VALUE} bytes")));
        }
        if self.kv_len_with(&key) > KV_MAX_KEYS {
            return Ok(Err(format!("the store is full ({KV_MAX_KEYS} keys)")));
        }
        if self.kv_bytes_with(&key, value.len()) > KV_MAX_BYTES {
            return Ok(Err(format!(
                "the store is full ({KV_MAX_BYTES} bytes of keys and values)"
            )));
        }
        self.kv_changes.0.insert(key, Some(value));
        Ok(Ok(()))
    }

    fn keys(&mut self) -> wasmtime::Result<Vec<String>> {
        self.host_call()?;
        let mut keys: Vec<String> = self
            .kv_base
            .keys()
            .filter(|k| !matches!(self.kv_changes.0.get(*k), Some(None)))
            .cloned()
            .collect();
        for (k, change) in &self.kv_changes.0 {
            if change.is_some() && !self.kv_base.contains_key(k) {
                keys.push(k.clone());
            }
        }
        keys.sort();
        Ok(keys)
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.host_call_moving(key.len())?;
        if self.kv_base.contains_key(&key) {
            self.kv_changes.0.insert(key, None);
        } else {
            self.kv_changes.0.remove(&key);
        }
        Ok(())
    }
}

/// Applies a call's changes to a store snapshot.
pub fn apply(kv: &mut BTreeMap<String, Vec<u8>>, changes: &KvChanges) {
    for (key, change) in &changes.0 {
        match change {
            Some(value) => {
                kv.insert(key.clone(), value.clone());
            }
            None => {
                kv.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bindings::kv::Host as _;
    use crate::bindings::log::Host as _;

    fn state(kv: Kv, budget: Budget) -> State {
        State::new(&budget, Arc::new(kv))
    }

    #[test]
    fn the_store_refuses_what_is_over_its_limits() {
        let mut full = Kv::new();
        for i in 0..KV_MAX_KEYS {
            full.insert(format!("k{i}"), vec![1]);
        }
        let mut s = state(full, Budget::default());
        assert!(
            s.set("k0".into(), vec![2]).unwrap().is_ok(),
            "replacing a key is fine when full"
        );
        assert!(s
            .set("new".into(), vec![1])
            .unwrap()
            .unwrap_err()
            .contains("full"));
        s.delete("k1".into()).unwrap();
        assert!(
            s.set("new".into(), vec![1]).unwrap().is_ok(),
            "a deleted key makes room"
        );
        assert!(s.set(String::new(), vec![]).unwrap().is_err());
        assert!(s.set("x".repeat(KV_MAX_KEY + 1), vec![]).unwrap().is_err());
        assert!(s
            .set("big".into(), vec![0; KV_MAX_VALUE + 1])
            .unwrap()
            .unwrap_err()
            .contains("values"));
        assert_eq!(s.get("k1".into()).unwrap(), None);
        assert_eq!(s.get("new".into()).unwrap(), Some(vec![1]));
        // All keys together hold at most KV_MAX_BYTES: 16 values of 64 KiB (with their
        // keys) do not fit; replacing one by a smaller value makes room.
        let mut s2 = state(Kv::new(), Budget::default());
        let value = vec![0u8; KV_MAX_VALUE];
        let mut stored = 0;
        while s2.set(format!("v{stored}"), value.clone()).unwrap().is_ok() {
            stored += 1;
        }
        assert_eq!(stored, KV_MAX_BYTES / KV_MAX_VALUE - 1);
        assert!(s2.set("more".into(), vec![0; 16]).unwrap().is_ok());
        assert!(s2
            .set(format!("v{stored}"), value.clone())
            .unwrap()
            .unwrap_err()
            .contains("bytes"));
        assert!(s2.set("v0".into(), vec![1]).unwrap().is_ok());
        assert!(s2.set(format!("v{stored}"), value).unwrap().is_ok());
        let keys = s.keys().unwrap();
        assert_eq!(keys.len(), KV_MAX_KEYS);
        assert!(keys.contains(&"new".to_string()) && !keys.contains(&"k1".to_string()));
    }

    #[test]
    fn host_calls_past_the_budget_trap() {
        let mut s = state(
            Kv::new(),
            Budget {
                max_host_calls: 3,
                ..Budget::default()
            },
        );
        for _ in 0..3 {
            s.log(log::Level::Info, "x".into()).unwrap();
        }
        assert!(s.get("k".into()).is_err());
        assert!(s.host_calls_exceeded);
    }
}
