//! Faults, rate limits, permanent failures and stop signals: the built binary against a fake
//! Mailchimp that misbehaves on purpose. Through every transient fault the audience and the echoed
//! states must be exactly those of a fault-free run.

mod common;
use common::*;
use destination_mailchimp::config;
use destination_mailchimp::mailchimp::client::Client;
use destination_mailchimp::mailchimp::outcome::Backoff;
use fake_mailchimp::{FakeMailchimp, Fault, Target};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

const CONCURRENCY: usize = 4;

fn files() -> Files {
    files_with(json!({"batch_size": 40, "max_concurrent_requests": CONCURRENCY, "max_retry_seconds": 120}))
}

fn files_with(settings: Value) -> Files {
    Files::new(
        &config(settings),
        &catalog(vec![stream("users", Some("crm"), "append_dedup"), stream("leads", None, "append_dedup")]),
    )
}

/// 1,000 records over two streams, each email repeated several times (so the order of batches
/// matters), with stream and global states in between.
fn input() -> String {
    let mut lines = Vec::new();
    for i in 0..1000u64 {
        let person = (i * 7) % 230;
        let email =
            if i % 2 == 0 { format!("Person{person}@mail.io") } else { format!("person{person}@mail.io") };
        let (name, ns) = if i % 3 == 0 { ("leads", None) } else { ("users", Some("crm")) };
        let mut data =
            json!({"id": i, "email": email, "fname": format!("F{i}"), "tags": [format!("t{}", i % 4)]});
        if i % 5 == 0 {
            data["lname"] = json!(format!("L{i}"));
        }
        lines.push(record(name, ns, data));
        if i % 45 == 44 {
            lines.push(stream_state(name, ns, i, 0));
        }
        if i % 260 == 259 {
            lines.push(json!({"type": "STATE", "state": {"type": "GLOBAL", "global": {"shared_state": {"at": i}, "stream_states": []}, "id": i + 10_000}}).to_string());
        }
    }
    lines.join("\n") + "\n"
}

/// What a sync leaves behind: the audience (by lowercased email) and every echoed state.
#[derive(Debug, PartialEq)]
struct Outcome {
    members: BTreeMap<String, Value>,
    states: Vec<Value>,
}

fn sync(fake: &FakeMailchimp) -> (Run, Outcome) {
    sync_with(fake, &files())
}

fn sync_with(fake: &FakeMailchimp, files: &Files) -> (Run, Outcome) {
    let run = run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        &input(),
        Some(&fake.base_url()),
    );
    let members = fake
        .members(LIST)
        .into_iter()
        .map(|m| (m.email_address.to_lowercase(), serde_json::to_value(&m).unwrap()))
        .collect();
    let states = run.states().into_iter().cloned().collect();
    (run, Outcome { members, states })
}

/// The fault-free run every faulty run is compared with (computed once per test binary).
fn baseline() -> &'static Outcome {
    static BASELINE: OnceLock<Outcome> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let fake = fake();
        let (run, outcome) = sync(&fake);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(outcome.members.len(), 230);
        assert_eq!(outcome.states.len(), 1000 / 45 + 1000 / 260);
        outcome
    })
}

/// Runs the sync with `faults` programmed for batch requests and checks the promise: same
/// audience, same states, every fault met, never more than the allowed requests at once.
fn assert_same_as_fault_free(target: Target, faults: &[Fault]) -> Run {
    let expected = baseline();
    let fake = fake();
    fake.inject(target, faults);
    let (run, outcome) = sync(&fake);
    assert_eq!(run.code, 0, "{faults:?}: {}\n{}", run.logs(), run.stderr);
    assert_eq!(fake.faults_remaining(), 0, "every programmed fault was met");
    assert!(fake.peak_in_flight() <= CONCURRENCY, "peak {} requests in flight", fake.peak_in_flight());
    assert_eq!(outcome.states, expected.states, "{faults:?}: the echoed states differ");
    assert_eq!(outcome.members, expected.members, "{faults:?}: the audience differs");
    let faulted: Vec<_> = fake.requests().into_iter().filter_map(|r| r.fault).collect();
    assert_eq!(faulted.len(), faults.len(), "{faulted:?}");
    run
}

#[test]
fn rate_limit_429_with_a_body_is_retried_and_changes_nothing() {
    let run = assert_same_as_fault_free(
        Target::Batches,
        &vec![Fault::TooManyRequests { body: true, retry_after_seconds: None }; 3],
    );
    let logs = run.logs();
    assert!(
        logs.contains("A batch of contacts failed (429 Too Many Requests), attempt 1; retrying in"),
        "{logs}"
    );
    assert!(
        logs.contains("Mailchimp is limiting requests (429 Too Many Requests); sending at most"),
        "{logs}"
    );
}

#[test]
fn rate_limit_429_without_a_body_and_with_retry_after_is_honoured() {
    let run = assert_same_as_fault_free(
        Target::Batches,
        &[
            Fault::TooManyRequests { body: false, retry_after_seconds: None },
            Fault::TooManyRequests { body: false, retry_after_seconds: Some(1) },
        ],
    );
    let logs = run.logs();
    assert!(logs.contains("(429 with no body)"), "{logs}");
    assert!(logs.contains("retrying in 1.0 s as Mailchimp's Retry-After asks"), "{logs}");
}

#[test]
fn forbidden_without_a_body_is_a_rate_limit_not_a_permission_error() {
    let run = assert_same_as_fault_free(Target::Batches, &vec![Fault::ForbiddenWithoutBody; 2]);
    assert!(run.logs().contains("(403 with no body)"), "{}", run.logs());
}

#[test]
fn server_errors_and_an_html_bad_gateway_are_retried() {
    let run = assert_same_as_fault_free(
        Target::Batches,
        &[Fault::InternalServerError, Fault::BadGatewayHtml, Fault::ServiceUnavailable],
    );
    let logs = run.logs();
    assert!(logs.contains("(500 Internal Server Error)") && logs.contains("(502 Bad Gateway)"), "{logs}");
    assert!(!logs.contains("<html>"), "the HTML page is not pasted into the log: {logs}");
}

#[test]
fn a_connection_reset_after_mailchimp_applied_the_batch_is_retried_safely() {
    let run = assert_same_as_fault_free(Target::Batches, &vec![Fault::ResetMidResponse; 2]);
    assert!(run.logs().contains("the connection failed"), "{}", run.logs());
}

#[test]
fn a_slow_answer_delays_states_but_not_their_order() {
    assert_same_as_fault_free(Target::Batches, &[Fault::Delay { ms: 1500 }, Fault::Delay { ms: 300 }]);
}

#[test]
fn faults_while_reading_the_audience_are_retried_too() {
    // The first requests of a sync read the audience and its merge fields.
    assert_same_as_fault_free(
        Target::Any,
        &[Fault::ServiceUnavailable, Fault::TooManyRequests { body: true, retry_after_seconds: None }],
    );
}

#[test]
fn when_other_apps_use_most_connections_the_connector_backs_off_instead_of_fighting() {
    let expected = baseline();
    let fake = fake();
    // Other apps of the account hold 8 of the 10 connections: only 2 are left for this sync.
    fake.set_connection_limit(2);
    fake.set_latency(Duration::from_millis(20));
    // Smaller batches, more of them at once: the outcome must still be the fault-free one.
    let (run, outcome) =
        sync_with(&fake, &files_with(json!({"batch_size": 10, "max_concurrent_requests": 8})));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(&outcome, expected);
    let batches: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "POST").collect();
    let limited = batches.iter().filter(|r| r.status == 429).count();
    // Measured here: about 1 in 6 refused while probing for room; with the allowance held at 8
    // (no decrease on 429), about 1 in 2 of the requests were refused in the same set-up.
    assert!(
        limited * 3 < batches.len(),
        "{limited} of {} batch requests got 429: the connector did not lower its concurrency",
        batches.len()
    );
    assert!(run.logs().contains("sending at most 2 at a time"), "{}", run.logs());
    assert!(fake.peak_in_flight() <= 8, "peak {} requests in flight", fake.peak_in_flight());
}

#[test]
fn a_whole_request_rejected_as_invalid_fails_as_a_system_error_with_mailchimps_details() {
    let fake = fake();
    fake.inject(Target::Batches, &[Fault::InvalidResource]);
    // One request at a time, so that the first batch of the input is the one rejected.
    let (run, _) = sync_with(&fake, &files_with(json!({"batch_size": 40, "max_concurrent_requests": 1})));
    assert_eq!(run.code, 1);
    let traces = run.of_type("TRACE");
    assert_eq!(traces.len(), 1, "one TRACE error");
    let error = &traces[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "system_error");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("400 Invalid Resource: The resource submitted could not be validated"),
        "{message}"
    );
    assert!(message.contains("[members: Schema describes array, object found instead]"), "{message}");
    assert!(message.contains("The sync stopped there; no state was saved"), "{message}");
    // The first batch failed, so no state may have been echoed, whatever later batches did.
    assert!(run.states().is_empty());
}

#[test]
fn a_permanent_failure_after_some_batches_keeps_exactly_their_states() {
    let expected = baseline();
    let fake = fake();
    // Concurrency 1 so that "the sixth batch" is a well-defined point in the input.
    let files = Files::new(
        &config(json!({"batch_size": 40, "max_concurrent_requests": 1})),
        &catalog(vec![stream("users", Some("crm"), "append_dedup"), stream("leads", None, "append_dedup")]),
    );
    fake.inject(
        Target::Batches,
        &[
            Fault::Delay { ms: 0 },
            Fault::Delay { ms: 0 },
            Fault::Delay { ms: 0 },
            Fault::Delay { ms: 0 },
            Fault::Delay { ms: 0 },
            Fault::InvalidResource,
        ],
    );
    let run = run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        &input(),
        Some(&fake.base_url()),
    );
    assert_eq!(run.code, 1);
    // Five batches of 40 contacts were committed; the states they cover, and only those, came back.
    let states = run.states();
    assert!(!states.is_empty());
    assert!(states.len() < expected.states.len());
    assert_eq!(states, expected.states[..states.len()].iter().collect::<Vec<_>>());
    let traces = run.of_type("TRACE");
    assert_eq!(traces.len(), 1);
    let message = traces[0]["trace"]["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("{} states were saved", states.len())), "{message}");
    let batches = fake.requests().into_iter().filter(|r| r.method == "POST").count();
    assert_eq!(batches, 6, "nothing is sent after the failure");
}

#[test]
fn retries_stop_at_the_retry_budget_with_a_transient_error() {
    let fake = fake();
    fake.inject(Target::Batches, &vec![Fault::InternalServerError; 50]);
    let files = Files::new(
        &config(json!({"max_retry_seconds": 2})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let input = [record("users", None, json!({"email": "a@mail.io"})), stream_state("users", None, 1, 1)];
    let run = run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        &input.join("\n"),
        Some(&fake.base_url()),
    );
    assert_eq!(run.code, 1);
    assert!(run.states().is_empty());
    let error = &run.of_type("TRACE")[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "transient_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("Mailchimp did not accept a batch of contacts after"), "{message}");
    assert!(message.contains("last answer: 500 Internal Server Error"), "{message}");
}

fn run_logs_mention(lines: &[Value], text: &str) -> bool {
    lines.iter().any(|m| m["type"] == "LOG" && m["log"]["message"].as_str().unwrap_or("").contains(text))
}

/// The client on its own: a request that outlives the request timeout is retried.
#[test]
fn a_request_timeout_is_retried() {
    let fake = fake();
    fake.inject(Target::Any, &[Fault::Delay { ms: 3000 }]);
    let config = config::from_value(&config(json!({})), Some(&fake.base_url())).unwrap();
    let client = Client::new(&config.client_settings())
        .unwrap()
        .with_timeouts(Duration::from_millis(500), Duration::from_millis(500))
        .unwrap()
        .with_backoff(Backoff { base: Duration::from_millis(10), cap: Duration::from_millis(10) });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let list = runtime.block_on(client.list()).expect("the second attempt answers in time");
    assert_eq!(list.id, LIST);
    assert_eq!(fake.faults_remaining(), 0);
}

#[test]
fn sigterm_finishes_the_requests_in_flight_releases_their_states_and_fails_transiently() {
    let fake = fake();
    fake.set_latency(Duration::from_millis(1500));
    let files = Files::new(
        &config(json!({"batch_size": 5, "max_concurrent_requests": 2})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let mut input = Vec::new();
    for i in 0..30u64 {
        input.push(record("users", None, json!({"email": format!("p{i}@mail.io")})));
        if i % 5 == 4 {
            input.push(stream_state("users", None, i / 5 + 1, 5));
        }
    }
    let (mut child, stdin) = start_write(&files, &fake.base_url(), &input);
    // Wait (liveness bound only) until two batches are being answered, then stop the sync.
    let waited = std::time::Instant::now();
    // The start-up reads: the audience, its merge fields and its group categories (it has none).
    let audience_read = || fake.requests().iter().filter(|r| r.method == "GET").count() == 3;
    while !audience_read() || fake.in_flight() < 2 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the batches never reached the fake");
        std::thread::sleep(Duration::from_millis(5));
    }
    sigterm(&child);
    let lines: Vec<Value> = lines_of(&mut child).map(|l| parse_protocol_line(&l)).collect();
    let code = child.wait().unwrap().code();
    drop(stdin);
    assert_eq!(code, Some(1));

    let answered = fake.requests().into_iter().filter(|r| r.method == "POST" && r.status == 200).count();
    assert!((2..6).contains(&answered), "{answered} batches answered");
    let states: Vec<&Value> = lines.iter().filter(|m| m["type"] == "STATE").collect();
    assert_eq!(states.len(), answered, "one state per answered batch, none for unsent ones");
    for (i, state) in states.iter().enumerate() {
        assert_eq!(state["state"]["id"], i as u64 + 1);
    }
    assert_eq!(fake.members(LIST).len(), answered * 5);
    let traces: Vec<&Value> = lines.iter().filter(|m| m["type"] == "TRACE").collect();
    assert_eq!(traces.len(), 1);
    let error = &traces[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "transient_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("The sync was stopped by SIGTERM"), "{message}");
    assert!(message.contains(&format!("{answered} states were saved")), "{message}");
    assert!(run_logs_mention(&lines, "Received SIGTERM"), "the stop is logged");
}

#[test]
fn sigterm_while_the_audience_is_read_still_ends_with_a_trace() {
    let fake = fake();
    fake.set_latency(Duration::from_millis(3000));
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let (mut child, stdin) = start_write(&files, &fake.base_url(), &[]);
    let waited = std::time::Instant::now();
    while fake.in_flight() == 0 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the connector never asked for the audience");
        std::thread::sleep(Duration::from_millis(5));
    }
    sigterm(&child);
    drop(stdin);
    let lines: Vec<Value> = lines_of(&mut child).map(|l| parse_protocol_line(&l)).collect();
    assert_eq!(child.wait().unwrap().code(), Some(1), "not killed by the signal: {lines:?}");
    let traces: Vec<&Value> = lines.iter().filter(|m| m["type"] == "TRACE").collect();
    assert_eq!(traces.len(), 1);
    assert!(traces[0]["trace"]["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("The sync was stopped by SIGTERM"));
    assert!(lines.iter().all(|m| m["type"] != "STATE"));
}
