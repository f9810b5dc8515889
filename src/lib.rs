//! destination-mailchimp: an Airbyte-protocol destination that upserts records into a Mailchimp
//! audience as contacts.
//!
//! # Layout
//! - [`cli`]: the commands (`spec`, `check`, `discover`, `write`, and `preview` for people);
//!   [`run`] dispatches them. [`check`], [`discover`], [`preview`] and [`write`](mod@write) are one each.
//! - What the platform hands over: [`config`] (validated against [`spec`], then typed), [`catalog`]
//!   (streams, modes and their [`audiences`]), [`protocol`] messages with [`fields`] (a record's
//!   data), read by [`input`] on its own thread.
//! - [`intake`]: message → [`mapping`] (with [`convert`]) → [`batch`], counts in [`ledger`]; shared
//!   by write, preview and the benchmark.
//! - [`write`](mod@write): [`dispatch`] (per-email waits, connections in order) → [`apply`] (one batch) →
//!   [`ack`] (states in input order), with [`report`], [`effects`], [`progress`] and [`rejected`]
//!   (rejected records stored before the states after them).
//! - [`rules`]: what Mailchimp does to a contact, shared by apply and preview; [`report_html`]: the
//!   preview's report as a page for people.
//! - [`mailchimp`]: a leaf owning Mailchimp's vocabulary, the client, the outcome table and the
//!   connection budget.
//! - [`signals`]: SIGTERM and SIGINT from the first moment.
//! - [`error`]: failures with their Airbyte failure type; [`redact`]: no emails or keys in logs;
//!   [`usage`]: peak memory for the summary.

pub mod ack;
pub mod apply;
pub mod audiences;
pub mod batch;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod convert;
pub mod discover;
pub mod dispatch;
pub mod effects;
pub mod error;
pub mod fields;
pub mod groups;
pub mod input;
pub mod intake;
pub mod ledger;
pub mod mailchimp;
pub mod mapping;
pub mod preview;
pub mod progress;
pub mod protocol;
pub mod redact;
pub mod rejected;
pub mod report;
pub mod report_html;
pub mod rules;
pub mod scan;
pub mod signals;
pub mod spec;
pub mod usage;
pub mod write;

use cli::Command;
use error::ConnectorError;
use protocol::{connection_status, spec_message, trace_error, Output};
use std::io::{BufReader, Read, Write};

/// How many parsed messages may wait between the stdin reader and the pipeline.
const INPUT_QUEUE: usize = 1024;

/// Runs one command; returns the process exit code. Every failure is reported on `stdout` as the
/// protocol expects (a FAILED status for check, a TRACE error for write).
pub async fn run<R, W>(command: Command, stdin: BufReader<R>, stdout: W) -> i32
where
    R: Read + Send + 'static,
    W: Write,
{
    crate::usage::process_started();
    // Listening from the start: a signal that comes while the audience is read still ends the run
    // with a message instead of killing the process.
    let mut stop = signals::stop_signals();
    if let Command::Preview { config, catalog, json, html } = &command {
        let output = preview::ReportOutput { json: *json, html: html.clone() };
        return match preview(config, catalog, output, stdin, stdout, &mut stop).await {
            Ok(()) => 0,
            Err(error) => {
                tracing::debug!("{}", error.internal.as_deref().unwrap_or(&error.message));
                eprintln!("destination-mailchimp preview failed: {}", error.message);
                1
            }
        };
    }
    let mut out = Output::new(stdout);
    let result = match command {
        Command::Spec => out.send(&spec_message(spec::specification())),
        Command::Check { config } => {
            let checked = signals::unless_stopped(&mut stop, "The check", "", check::check(&config)).await;
            let status = match checked {
                Ok(message) => connection_status(true, &message),
                Err(error) => {
                    tracing::warn!("check failed: {}", error.internal.as_deref().unwrap_or(&error.message));
                    connection_status(false, &error.message)
                }
            };
            out.send(&status)
        }
        Command::Discover { config } => {
            signals::unless_stopped(&mut stop, "Discover", "", discover::discover(&config))
                .await
                .and_then(|message| out.send(&message))
        }
        Command::Write { config, catalog } => write(&config, &catalog, stdin, &mut out, stop).await,
        Command::Preview { .. } => unreachable!("preview is handled above"),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            tracing::error!("{}", error.internal.as_deref().unwrap_or(&error.message));
            let _ = out.send(&trace_error(&error));
            1
        }
    }
}

async fn write<R, W>(
    config: &std::path::Path,
    catalog: &std::path::Path,
    stdin: BufReader<R>,
    out: &mut Output<W>,
    mut stop: tokio::sync::mpsc::Receiver<&'static str>,
) -> Result<(), ConnectorError>
where
    R: Read + Send + 'static,
    W: Write,
{
    let config = config::load(config)?;
    let catalog = catalog::load(catalog)?;
    let after =
        "No record was written and no state was saved; the next sync starts from the last saved state.";
    // Input is read while the audiences are: the first batch is ready as soon as they are.
    let input = input::spawn_reader(stdin, INPUT_QUEUE);
    let connect = write::Writer::connect(&config, &catalog, out);
    let writer = signals::unless_stopped(&mut stop, "The sync", after, connect).await?;
    writer.run(input, stop).await
}

async fn preview<R, W>(
    config: &std::path::Path,
    catalog: &std::path::Path,
    output: preview::ReportOutput,
    stdin: BufReader<R>,
    mut stdout: W,
    stop: &mut tokio::sync::mpsc::Receiver<&'static str>,
) -> Result<(), ConnectorError>
where
    R: Read + Send + 'static,
    W: Write,
{
    let config = config::load(config)?;
    let catalog = catalog::load(catalog)?;
    let input = input::spawn_reader(stdin, INPUT_QUEUE);
    let work = preview::preview(&config, &catalog, input, &output, &mut stdout);
    signals::unless_stopped(stop, "The preview", "Nothing was written.", work).await
}
