//! The `acetate` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() {
    let cli = acetate::cli::Cli::parse();
    acetate::cli::init_tracing(&cli);
    std::process::exit(acetate::cli::run(cli));
}
