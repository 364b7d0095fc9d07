//! The `acetate` binary: parses the command line and hands over to the library.

use clap::Parser;

/// mimalloc, not glibc's malloc: the front door allocates and frees per request (headers,
/// buffers), and glibc's malloc and free took 7-8 % of its CPU in `perf` (with its
/// consolidation of freed chunks), mimalloc's thread-local free lists a fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
