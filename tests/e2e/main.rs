//! Black-box tests of the `acetate` binary: they run it as a user or a script would, on a
//! test state dir, and check what it prints, its exit codes and what it leaves behind.

mod access;
mod api;
mod browser;
mod cli;
mod copies;
mod domains;
mod engines;
mod hardening;
mod inits;
mod limits;
mod network;
mod operations;
mod plugins;
mod support;
mod web;
