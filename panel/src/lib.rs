//! Acetate's panel: the command line, the web panel and the JSON API over the engine,
//! with the control-plane database. Layers point one way (see `panel/ARCHITECTURE.md`):
//! the edges (`cli`, `http`, `ssh`, `front`) call `service`, which alone combines `db`, the engine (through
//! `runtime`) and the plugin host; `domain` holds the pure rules all of them share.

// The OpenAPI document is one large `json!` literal.
#![recursion_limit = "512"]

pub mod app;
pub mod cli;
pub mod db;
pub mod domain;
pub mod error;
pub mod front;
pub mod http;
pub mod runtime;
pub mod service;
pub mod ssh;
