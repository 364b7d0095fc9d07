//! What the host answers: the kind of a component, why one is refused, why a call
//! produced no answer, and the outcome of a call (its result, log, key-value writes, fuel
//! and time).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::MAX_COMPONENT_BYTES;

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Hook,
    Billing,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hook => "hook",
            Kind::Billing => "billing",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a component was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the plugin is {0} bytes; the limit is {MAX_COMPONENT_BYTES}")]
    TooLarge(usize),
    #[error("not a WebAssembly file (no \\0asm header)")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component: build it for wasm32-wasip2 \
         (cargo build --target wasm32-wasip2) against the acetate:plugin WIT package"
    )]
    CoreModule,
    #[error("invalid WebAssembly component: {0}")]
    Invalid(String),
    #[error(
        "the component exports none of acetate:plugin/hook@1, acetate:plugin/overuse@1 and \
         acetate:plugin/billing@1 (it exports: {0})"
    )]
    NoWorld(String),
    #[error("the component exports both a hook and a billing rule; upload them as two plugins")]
    BothWorlds,
    #[error("the component does not fit the acetate:plugin {kind} world: {message}")]
    Mismatch { kind: Kind, message: String },
    #[error("plugin cache: {0}")]
    Cache(#[from] std::io::Error),
}

/// Why a call produced no answer. The plugin is at fault, never the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "failure", content = "detail", rename_all = "snake_case")]
pub enum Failure {
    #[error("ran out of fuel (an endless loop or too much work)")]
    OutOfFuel,
    #[error("went over its memory limit")]
    OutOfMemory,
    #[error("made too many host calls or moved too many bytes through them")]
    TooManyHostCalls,
    #[error("ran out of time (its wall-clock bound)")]
    OutOfTime,
    #[error("trapped: {0}")]
    Trapped(String),
    #[error("answered something invalid: {0}")]
    BadOutput(String),
    #[error("the input is too large: {0}")]
    BadInput(String),
    #[error("is a {0} plugin, not the kind this call needs")]
    WrongKind(Kind),
    #[error("does not export acetate:plugin/{0}, which this call needs")]
    NotExported(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// A plugin's key-value store as the host keeps it.
pub type Kv = BTreeMap<String, Vec<u8>>;

/// Writes a call made to its store (`None` deletes). Apply them only if the call succeeded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvChanges(pub BTreeMap<String, Option<Vec<u8>>>);

impl KvChanges {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The outcome of one call.
#[derive(Debug)]
pub struct Call<T> {
    pub result: Result<T, Failure>,
    pub log: Vec<LogLine>,
    /// Empty unless the call succeeded.
    pub kv_changes: KvChanges,
    pub fuel_used: u64,
    pub elapsed: Duration,
}

impl<T> Call<T> {
    pub(crate) fn and_then<U>(self, f: impl FnOnce(T) -> Result<U, Failure>) -> Call<U> {
        let result = self.result.and_then(f);
        let kv_changes = if result.is_ok() {
            self.kv_changes
        } else {
            KvChanges::default()
        };
        Call {
            result,
            log: self.log,
            kv_changes,
            fuel_used: self.fuel_used,
            elapsed: self.elapsed,
        }
    }
}
