//! Acetate's panel: the command line, and (growing) the web panel and JSON API over the
//! engine.

pub mod cli;
