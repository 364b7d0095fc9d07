//! The `acetate` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Before anything else (one thread yet): the config file's settings become the
    // environment's defaults.
    if let Err(e) = acetate::cli::config::load(&args) {
        eprintln!("acetate: error: {e}");
        std::process::exit(2);
    }
    let cli = acetate::cli::Cli::parse_from(args);
    acetate::cli::quiet_on_closed_pipe(&cli);
    acetate::cli::init_tracing(&cli);
    std::process::exit(acetate::cli::run(cli));
}
