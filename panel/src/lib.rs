//! Acetate's panel: the command line, the JSON API and (growing) the web panel over the
//! engine, with the control-plane database.

// The OpenAPI document is one large `json!` literal.
#![recursion_limit = "512"]
pub mod app;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod db;
pub mod error;
pub mod exec;
pub mod graph;
pub mod jobs;
pub mod metering;
pub mod plugins;
pub mod quota;
pub mod routes;
pub mod snapshot;
