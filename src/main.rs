//! The `destination-mailchimp` binary: logging to stderr, command-line parsing, exit code.

use anyhow::Context;
use clap::Parser;
use destination_mailchimp::cli::Cli;
use std::io::BufReader;
use tracing_subscriber::EnvFilter;

/// mimalloc: the connector allocates many small, short-lived values per record.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc's option setter (its C API, linked in by the `mimalloc` crate).
    fn mi_option_set(option: std::os::raw::c_int, value: std::os::raw::c_long);
}

/// `mi_option_purge_delay` in mimalloc's option list: how long freed memory is kept before it is
/// given back to the system.
const MI_OPTION_PURGE_DELAY: std::os::raw::c_int = 15;

fn main() {
    // Batches are built and freed at the pace of Mailchimp's answers (100 ms and more apart), which
    // is longer than mimalloc's default of 10 ms: memory given back between two batches would be
    // taken again (and zeroed by the kernel) for the next. Kept for a second instead; peak memory
    // is the same.
    // SAFETY: a plain option setter, called before any other thread exists.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("destination-mailchimp: {error:#}");
            1
        }
    };
    std::process::exit(code);
}

/// Starts the async runtime and runs the command; failures of the connector itself are reported on
/// stdout by the command, so only a runtime that cannot start is an error here.
fn run(cli: Cli) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime (threads or timers unavailable)")?;
    let stdin = BufReader::with_capacity(1 << 18, std::io::stdin());
    let code = runtime.block_on(destination_mailchimp::run(cli.command, stdin, std::io::stdout().lock()));
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(code)
}
