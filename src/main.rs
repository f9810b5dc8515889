//! The `destination-mailchimp` binary: logging to stderr, command-line parsing, exit code.

use clap::Parser;
use destination_mailchimp::cli::Cli;
use std::io::BufReader;
use tracing_subscriber::EnvFilter;

/// mimalloc: the connector allocates many small, short-lived values per record.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let cli = Cli::parse();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the async runtime starts");
    let stdin = BufReader::with_capacity(1 << 16, std::io::stdin());
    let code = runtime.block_on(destination_mailchimp::run(cli.command, stdin, std::io::stdout().lock()));
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}
