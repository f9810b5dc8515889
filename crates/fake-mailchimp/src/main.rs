//! `fake-mailchimp`: runs the fake Mailchimp API on loopback (`serve`), prints an audience (`show`),
//! and writes synthetic source messages for load runs (`generate`).

use clap::{Parser, Subcommand};
use fake_mailchimp::{serve, FakeList, Shared};
use std::io::Write;
use std::time::Duration;

/// mimalloc, as in the connector: load runs allocate many small values.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The key and audience of the offline demo (integration_tests/sample_config.json uses them).
const DEMO_KEY: &str = "0123456789abcdef0123456789abcdef-us6";
const DEMO_LIST: &str = "a1b2c3d4e5";

#[derive(Parser)]
#[command(name = "fake-mailchimp", about = "A fake Mailchimp Marketing API for tests and the offline demo")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the fake API; prints MAILCHIMP_API_BASE_URL=… once it listens. Stops on Ctrl-C or SIGTERM.
    Serve {
        /// Address to listen on (loopback only; port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: std::net::SocketAddr,
        /// The only API key the fake accepts.
        #[arg(long, default_value = DEMO_KEY)]
        api_key: String,
        /// The audience's List ID.
        #[arg(long, default_value = DEMO_LIST)]
        list_id: String,
        /// Delay before each API answer, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Contacts that are already in the audience as unsubscribed (repeatable).
        #[arg(long = "unsubscribed")]
        unsubscribed: Vec<String>,
        /// Keep every request's body in the request log (GET /_fake/requests); off for load runs.
        #[arg(long)]
        keep_request_bodies: bool,
    },
    /// Write N RECORD messages for the demo catalog's stream `crm.customers`, with a STATE every
    /// `state_every` records, to stdout (JSON lines, as a source would send them).
    Generate {
        #[arg(long)]
        records: u64,
        /// How many different people the records are about (emails repeat beyond that).
        #[arg(long)]
        distinct: Option<u64>,
        #[arg(long, default_value_t = 10_000)]
        state_every: u64,
    },
    /// Print the members of an audience of a running fake.
    Show {
        /// The fake's MAILCHIMP_API_BASE_URL.
        #[arg(long)]
        url: String,
        #[arg(long, default_value = DEMO_LIST)]
        list_id: String,
    },
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    match Cli::parse().command {
        Command::Serve { addr, api_key, list_id, latency_ms, unsubscribed, keep_request_bodies } => {
            if !addr.ip().is_loopback() {
                eprintln!("fake-mailchimp listens on loopback addresses only (got {addr})");
                std::process::exit(2);
            }
            let mut list = FakeList::with_default_fields(&list_id, "HeroPixel Demo Audience");
            list.groups.add_category(
                "Newsletter topics",
                "checkboxes",
                &["Product news", "Events", "Offers"],
            );
            for email in &unsubscribed {
                list.put_member(email, "unsubscribed", serde_json::json!({}));
            }
            let shared = Shared::new(&api_key, vec![list]);
            *shared.latency.lock().expect("latency lock") = Duration::from_millis(latency_ms);
            shared.keep_bodies.store(keep_request_bodies, std::sync::atomic::Ordering::SeqCst);
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("MAILCHIMP_API_BASE_URL=http://{}/3.0", listener.local_addr()?);
            std::io::stdout().flush()?;
            serve(shared, listener, stop_signal()).await
        }
        Command::Show { url, list_id } => show(&url, &list_id).await,
        Command::Generate { records, distinct, state_every } => {
            generate(records, distinct.unwrap_or(records).max(1), state_every.max(1))
        }
    }
}

fn generate(records: u64, distinct: u64, state_every: u64) -> std::io::Result<()> {
    const PLANS: [&str; 3] = ["free", "pro", "team"];
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut since_state = 0u64;
    for i in 0..records {
        let person = i % distinct;
        let record = serde_json::json!({
            "type": "RECORD",
            "record": {
                "namespace": "crm",
                "stream": "customers",
                "emitted_at": 1795687418000u64 + i,
                "data": {
                    "email": format!("customer{person}@shop-{}.io", person % 97),
                    "fname": format!("First{person}"),
                    "lname": format!("Last{}", i % 1000),
                    "phone": format!("+1 555 {:04}", i % 10_000),
                    "plan": PLANS[(i % 3) as usize],
                    "tags": [format!("cohort-{}", person % 12)],
                    "updated_at": "2026-11-20T09:00:00Z",
                },
            },
        });
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
        since_state += 1;
        if since_state == state_every || i + 1 == records {
            let state = serde_json::json!({
                "type": "STATE",
                "state": {
                    "type": "STREAM",
                    "stream": {
                        "stream_descriptor": {"name": "customers", "namespace": "crm"},
                        "stream_state": {"position": i + 1},
                    },
                    "sourceStats": {"recordCount": since_state as f64},
                    "id": i + 1,
                },
            });
            serde_json::to_writer(&mut out, &state)?;
            out.write_all(b"\n")?;
            since_state = 0;
        }
    }
    out.flush()
}

async fn stop_signal() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn show(url: &str, list_id: &str) -> std::io::Result<()> {
    let root = url.trim_end_matches('/').trim_end_matches("/3.0");
    let members: Vec<serde_json::Value> = reqwest::get(format!("{root}/_fake/lists/{list_id}/members"))
        .await
        .and_then(|r| r.error_for_status())
        .map_err(std::io::Error::other)?
        .json()
        .await
        .map_err(std::io::Error::other)?;
    // The table is built first and written at once; a reader that stops early (`| head`) is fine.
    let mut table = format!("{} contacts in audience {list_id}:\n", members.len());
    table += &format!("{:<34} {:<13} {:<36} tags\n", "email_address", "status", "merge_fields");
    for m in &members {
        let fields: Vec<String> = m["merge_fields"]
            .as_object()
            .map(|f| {
                f.iter()
                    .map(|(k, v)| {
                        format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let tags: Vec<&str> =
            m["tags"].as_array().map(|t| t.iter().filter_map(|t| t.as_str()).collect()).unwrap_or_default();
        table += &format!(
            "{:<34} {:<13} {:<36} {}\n",
            m["email_address"].as_str().unwrap_or(""),
            m["status"].as_str().unwrap_or(""),
            fields.join(" "),
            tags.join(", ")
        );
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(table.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
