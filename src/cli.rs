//! Command-line interface: the protocol's commands, as the platform runs them.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "destination-mailchimp",
    version,
    about = "Airbyte-protocol destination: sync records into a Mailchimp audience"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the connector specification (one SPEC message).
    Spec,
    /// Validate the config and test the key and the audience (one CONNECTION_STATUS message).
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Describe the audience as a destination object (one DESTINATION_CATALOG message).
    Discover {
        #[arg(long)]
        config: PathBuf,
    },
    /// Read AirbyteMessages on stdin and upsert their records as contacts.
    Write {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        catalog: PathBuf,
    },
    /// For people, not the platform: read the same input as write, write nothing, and print what
    /// a sync would do to the audience.
    Preview {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        catalog: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also write the report as an HTML page to this file, for people to open in a browser.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
}
