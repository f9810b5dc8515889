//! CPU benchmark of the connector's own work per record, without the network: parse the stdin
//! line → the intake step `write` uses (map, deduplicate into batches) → serialize the request bodies. Realistic
//! records: about 300 bytes, 8 fields, 5% repeated emails, and a STATE every 1,000 records (with the
//! state echoes built). Run with `cargo bench --bench pipeline`.

use destination_mailchimp::batch::{request_body, Ready};
use destination_mailchimp::catalog::ConfiguredCatalog;
use destination_mailchimp::config;
use destination_mailchimp::intake::Intake;
use destination_mailchimp::mailchimp::model::MergeField;
use destination_mailchimp::mapping::Mapper;
use destination_mailchimp::protocol::{parse_line, state_echo, Incoming};
use serde_json::json;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: u64 = 200_000;
const ROUNDS: usize = 7;

/// States come every this many records, with a cursor beyond f64 precision (echoed as received).
const STATE_EVERY: u64 = 1000;

fn input() -> Vec<Vec<u8>> {
    let plans = ["free", "pro", "team", "enterprise"];
    let mut lines: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| {
            // 5% of the records repeat an email seen shortly before (an update of the same person).
            let person = if i % 20 == 19 { i - 7 } else { i };
            json!({"type": "RECORD", "record": {"namespace": "crm", "stream": "customers", "emitted_at": 1795687418000u64 + i,
                "data": {
                    "id": i,
                    "email": format!("Customer.{person}@shop-{}.example.io", person % 97),
                    "fname": format!("Firstname{}", person % 5000),
                    "lname": format!("Lastname-{}", person % 7919),
                    "phone": format!("+1 415 555 {:04}", person % 10_000),
                    "plan": plans[(i % 4) as usize],
                    "tags": [format!("cohort-{}", person % 12), "newsletter"],
                    "updated_at": format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + i % 28, i % 24, i % 60),
                }}})
            .to_string()
            .into_bytes()
        })
        .collect();
    for n in (1..=RECORDS / STATE_EVERY).rev() {
        let state = format!(
            r#"{{"type":"STATE","state":{{"type":"STREAM","stream":{{"stream_descriptor":{{"name":"customers","namespace":"crm"}},"stream_state":{{"cursor":1234567890123456789012345{n:05}}}}},"sourceStats":{{"recordCount":{STATE_EVERY}.0}}}}}}"#
        );
        lines.insert((n * STATE_EVERY) as usize, state.into_bytes());
    }
    lines
}

fn merge_fields() -> Vec<MergeField> {
    [
        ("FNAME", "First Name", "text"),
        ("LNAME", "Last Name", "text"),
        ("PHONE", "Phone Number", "phone"),
        ("PLAN", "Plan", "text"),
        ("ADDRESS", "Address", "address"),
        ("BIRTHDAY", "Birthday", "birthday"),
    ]
    .into_iter()
    .map(|(tag, name, kind)| MergeField {
        tag: tag.into(),
        name: name.into(),
        kind: kind.into(),
        required: false,
        options: json!({}),
    })
    .collect()
}

/// How far down the pipeline a pass goes (each stage includes the ones before it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Parse,
    Intake,
    Serialize,
}

impl Stage {
    const ALL: [Stage; 3] = [Stage::Parse, Stage::Intake, Stage::Serialize];

    fn name(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Intake => "+ intake (map, dedupe, batch)",
            Stage::Serialize => "+ serialize request bodies (all)",
        }
    }
}

/// One pass over the input up to `stage`, through the same intake step as `write` and `preview`;
/// returns the request-body bytes and batches produced (so that nothing is optimised away).
fn pass(lines: &[Vec<u8>], mapper: &Mapper, stage: Stage) -> (usize, usize) {
    let mut intake = Intake::new(vec![mapper.clone()], 500);
    let (mut bytes, mut batches) = (0usize, 0usize);
    let mut seen = 0usize;
    let now = std::time::Instant::now();
    let mut drain = |intake: &mut Intake| {
        while let Some(ready) = intake.pop_ready() {
            if let Ready::Batch(batch) = ready {
                if stage == Stage::Serialize {
                    bytes += request_body(&batch.entries).map_or(0, |b| b.len());
                    bytes += batch.states.iter().map(|s| state_echo(&s.state, 1, 0).len()).sum::<usize>();
                }
                batches += 1;
            }
        }
    };
    for line in lines {
        let message = parse_line(line).expect("the input is records and states");
        if stage == Stage::Parse {
            seen += matches!(message, Incoming::Record(_)) as usize;
            continue;
        }
        if let Some(reason) = intake.take(message, now) {
            panic!("unexpected rejection: {}", reason.rejection.message);
        }
        drain(&mut intake);
    }
    intake.flush();
    drain(&mut intake);
    (bytes + seen, batches)
}

fn main() {
    let config = config::from_value(
        &json!({"api_key": "0123456789abcdef0123456789abcdef-us6", "list_id": "a1b2c3d4e5", "tags": "warehouse"}),
        None,
    )
    .expect("a valid config");
    let catalog: ConfiguredCatalog =
        serde_json::from_str(include_str!("../integration_tests/configured_catalog.json"))
            .expect("the sample catalog");
    let mapper = Mapper::new(&config, &catalog, &merge_fields(), &[]).expect("a mapping");
    let lines = input();
    let average = lines.iter().map(Vec::len).sum::<usize>() as f64 / lines.len() as f64;

    println!(
        "pipeline CPU benchmark: parse → intake (map, dedupe, batch) → serialize, one thread, no network"
    );
    println!(
        "{RECORDS} records (lines of {average:.0} bytes on average), 5% repeated emails, a STATE every {STATE_EVERY} records; median of {ROUNDS} rounds per stage"
    );
    println!("{:<34} {:>10} {:>14}", "stage", "µs/record", "records/s");
    for stage in Stage::ALL {
        let mut times: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(pass(&lines, &mapper, stage));
                started.elapsed()
            })
            .collect();
        times.sort();
        let median = times[ROUNDS / 2];
        println!(
            "{:<34} {:>10.2} {:>14.0}",
            stage.name(),
            median.as_secs_f64() * 1e6 / RECORDS as f64,
            RECORDS as f64 / median.as_secs_f64()
        );
    }
}
