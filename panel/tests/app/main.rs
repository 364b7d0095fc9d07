//! The panel's rules, tested in-process without root: the real HTTP router, services,
//! database and plugin host over the in-memory engine (`spawn_app`). What needs a kernel
//! is proven by `tests/e2e/`.

mod access;
mod audit;
mod billing;
mod capacity;
mod copies;
mod domains;
mod forwards;
mod hooks;
mod layers;
mod metrics;
mod navigation;
mod openapi;
mod operations;
mod oversight;
mod overuse;
mod plans;
mod plugin_versions;
mod schemathesis;
mod scope;
mod support;
mod totp;
