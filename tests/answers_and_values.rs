//! End-to-end: answers that are not what they seem (an empty 200, redirects, errors quoting the
//! key), stopping during start-up retries, states echoed byte for byte, absurdly deep records, and
//! values Mailchimp refuses — each through the built binary against the fake Mailchimp API.

mod common;

use common::*;
use fake_mailchimp::{FakeMailchimp, Fault, Target};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn write_args(files: &Files) -> Vec<String> {
    vec!["write".into(), "--config".into(), files.config(), "--catalog".into(), files.catalog()]
}

fn write(fake: &FakeMailchimp, settings: Value, input: &[String]) -> Run {
    let files = Files::new(&config(settings), &catalog(vec![stream("users", None, "append_dedup")]));
    let args = write_args(&files);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args, &(input.join("\n") + "\n"), Some(&fake.base_url()))
}

fn three_contacts_and_a_state() -> Vec<String> {
    vec![
        record("users", None, json!({"email": "ada@mail.io", "fname": "Ada"})),
        record("users", None, json!({"email": "alan@mail.io", "fname": "Alan"})),
        record("users", None, json!({"email": "grace@mail.io", "fname": "Grace"})),
        stream_state("users", None, 1, 3),
    ]
}

fn trace_message(run: &Run) -> String {
    let traces = run.of_type("TRACE");
    assert_eq!(traces.len(), 1, "one TRACE: {:?}", run.lines);
    traces[0]["trace"]["error"]["message"].as_str().unwrap().to_string()
}

#[test]
fn an_empty_200_instead_of_a_batch_answer_is_retried_then_fails_with_no_state_released() {
    let fake = fake();
    fake.inject(Target::Batches, &vec![Fault::EmptyObject; 100]);
    let run = write(&fake, json!({"max_retry_seconds": 2}), &three_contacts_and_a_state());
    assert_eq!(run.code, 1, "{:?}", run.lines);
    assert!(run.states().is_empty(), "no state for contacts Mailchimp never reported");
    let message = trace_message(&run);
    assert!(message.starts_with("Mailchimp did not accept a batch of contacts after"), "{message}");
    assert!(message.contains("an incomplete answer") || message.contains("unexpected answer"), "{message}");
    assert!(run.logs().contains("retrying in"), "each retry is logged: {}", run.logs());
    assert!(fake.members(LIST).is_empty());
}

#[test]
fn a_302_on_a_batch_is_not_followed_but_retried_then_fails_naming_where_it_pointed() {
    let fake = fake();
    // What a proxy in front of Mailchimp might do: send the POST to the audience's own URL, which a
    // client following redirects would fetch with GET and read as an empty batch answer.
    let location = format!("{}/lists/{LIST}", fake.base_url());
    fake.inject(Target::Batches, &vec![Fault::Redirect { location: location.clone(), status: None }; 100]);
    let run = write(&fake, json!({"max_retry_seconds": 2}), &three_contacts_and_a_state());
    assert_eq!(run.code, 1, "{:?}", run.lines);
    assert!(run.states().is_empty());
    let message = trace_message(&run);
    assert!(message.contains(&format!("a redirect (302) to {location}")), "{message}");
    let list_reads = fake
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/3.0/lists/{LIST}"))
        .count();
    assert_eq!(list_reads, 1, "only the start-up read of the audience; the redirect was not followed");
    assert!(fake.members(LIST).is_empty());
}

#[test]
fn a_redirect_to_another_host_sends_it_nothing() {
    let fake = fake();
    let elsewhere = common::fake();
    let location = format!("{}/lists/{LIST}", elsewhere.base_url());
    fake.inject(
        Target::Batches,
        &vec![Fault::Redirect { location: location.clone(), status: Some(307) }; 100],
    );
    let run = write(&fake, json!({"max_retry_seconds": 1}), &three_contacts_and_a_state());
    assert_eq!(run.code, 1);
    assert!(elsewhere.requests().is_empty(), "the other host got {:?}", elsewhere.requests());
    assert!(trace_message(&run).contains(&format!("a redirect (307) to {location}")));
}

#[test]
fn a_server_error_quoting_the_key_prints_no_key_anywhere() {
    let fake = fake();
    fake.inject(Target::Batches, &vec![Fault::EchoKey; 100]);
    // `run` fails if the key, its secret part or the Basic token appears on stdout or stderr.
    let run = write(&fake, json!({"max_retry_seconds": 1}), &three_contacts_and_a_state());
    assert_eq!(run.code, 1);
    let message = trace_message(&run);
    assert!(message.contains("Request with key [redacted] (header: Basic [redacted])"), "{message}");

    let check_fake = common::fake();
    check_fake.inject(Target::Any, &vec![Fault::EchoKey; 100]);
    let files = Files::new(&config(json!({})), &catalog(vec![]));
    let check = run_check(&files, &check_fake);
    let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(status["message"].as_str().unwrap().contains("[redacted]"), "{status}");
}

fn run_check(files: &Files, fake: &FakeMailchimp) -> Run {
    run(&["check", "--config", &files.config()], "", Some(&fake.base_url()))
}

#[test]
fn sigterm_while_start_up_reads_are_being_retried_ends_the_sync_at_once_with_a_trace() {
    let fake = fake();
    fake.inject(Target::Any, &vec![Fault::ServiceUnavailable; 10_000]);
    let files = Files::new(
        &config(json!({"max_retry_seconds": 600})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let (mut child, stdin) = start_write(&files, &fake.base_url(), &[]);
    let waited = Instant::now();
    while fake.requests().iter().filter(|r| r.status == 503).count() < 3 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the connector never retried the audience read");
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Instant::now();
    sigterm(&child);
    let lines: Vec<Value> = lines_of(&mut child).map(|l| parse_protocol_line(&l)).collect();
    let code = child.wait().unwrap().code();
    drop(stdin);
    assert!(signalled.elapsed() < Duration::from_secs(5), "took {:?} after SIGTERM", signalled.elapsed());
    assert_eq!(code, Some(1), "ended by the connector, not by the signal: {lines:?}");
    let traces: Vec<&Value> = lines.iter().filter(|m| m["type"] == "TRACE").collect();
    assert_eq!(traces.len(), 1, "{lines:?}");
    let error = &traces[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "transient_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("The sync was stopped by SIGTERM before it finished."), "{message}");
    assert!(message.contains("no state was saved"), "{message}");
}

#[test]
fn states_come_back_byte_for_byte_apart_from_destination_stats() {
    let fake = fake();
    let state = r#"{"type":"STREAM","stream":{"stream_descriptor":{"name":"users"},"stream_state":{"cursor":123456789012345678901234567890,"updated_at":1732600000.123456789,"note":"caf\u00e9 \ud83d\ude00"}},"sourceStats":{"recordCount":1.0},"id":42}"#;
    let input = vec![
        record("users", None, json!({"email": "ada@mail.io"})),
        format!(r#"{{"type":"STATE","state":{state}}}"#),
    ];
    let run = write(&fake, json!({}), &input);
    assert_eq!(run.code, 0, "{:?}", run.lines);
    let echoes: Vec<&String> = run.raw.iter().filter(|l| l.starts_with(r#"{"type":"STATE""#)).collect();
    let expected = format!(
        r#"{{"type":"STATE","state":{},"destinationStats":{{"recordCount":1.0,"rejectedRecordCount":0.0}}}}}}"#,
        &state[..state.len() - 1]
    );
    assert_eq!(echoes, vec![&expected]);
}

#[test]
fn a_record_with_a_field_nested_a_thousand_levels_deep_still_syncs() {
    let fake = fake();
    let deep = format!("{}\"bottom\"{}", "[".repeat(1000), "]".repeat(1000));
    let line = format!(
        r#"{{"type":"RECORD","record":{{"stream":"users","data":{{"email":"deep@mail.io","fname":"Deep","history":{deep}}},"emitted_at":1}}}}"#
    );
    let run = write(&fake, json!({}), &[line, stream_state("users", None, 1, 1)]);
    assert_eq!(run.code, 0, "{:?}", run.lines);
    assert_eq!(run.states().len(), 1);
    assert_eq!(run.states()[0]["destinationStats"]["recordCount"], 1.0);
    let member = fake.member(LIST, "deep@mail.io").expect("the contact landed");
    assert_eq!(member.merge_fields["FNAME"], "Deep");
}

fn fake_with_typed_fields() -> Fake {
    fake_with(|list| {
        list.add_merge_field("ZIP", "Zip code", "zip", false, json!({}));
        list.add_merge_field("MOBILE", "Mobile", "phone", false, json!({"phone_format": "US"}));
        list.add_merge_field("SITE", "Website", "url", false, json!({}));
    })
}

#[test]
fn a_zip_mailchimp_would_refuse_is_dropped_and_reported_while_the_contact_lands() {
    let fake = fake_with_typed_fields();
    let input = vec![
        record(
            "users",
            None,
            json!({"email": "ada@mail.io", "fname": "Ada", "zip": "ABCDE", "site": "ada.dev"}),
        ),
        record(
            "users",
            None,
            json!({"email": "alan@mail.io", "zip": "02134-1234", "mobile": "+1 (404) 555-1212",
                                     "site": "https://alan.dev"}),
        ),
        record("users", None, json!({"email": "grace@mail.io", "zip": 2134, "mobile": "555-1212"})),
        stream_state("users", None, 1, 3),
    ];
    let run = write(&fake, json!({}), &input);
    assert_eq!(run.code, 0, "{:?}", run.lines);
    assert_eq!(run.states()[0]["destinationStats"]["rejectedRecordCount"], 0.0, "every contact synced");
    let ada = fake.member(LIST, "ada@mail.io").expect("ada landed");
    assert_eq!(ada.merge_fields.get("FNAME"), Some(&json!("Ada")));
    assert!(!ada.merge_fields.contains_key("ZIP") && !ada.merge_fields.contains_key("SITE"), "{ada:?}");
    let alan = fake.member(LIST, "alan@mail.io").unwrap();
    assert_eq!(alan.merge_fields["ZIP"], "02134");
    assert_eq!(alan.merge_fields["MOBILE"], "404-555-1212");
    assert_eq!(alan.merge_fields["SITE"], "https://alan.dev");
    let grace = fake.member(LIST, "grace@mail.io").unwrap();
    assert_eq!(grace.merge_fields["ZIP"], "02134");
    assert!(!grace.merge_fields.contains_key("MOBILE"));
    run.assert_logged("Stream 'users', field 'zip' → ZIP: 1 value(s) could not be converted");
    run.assert_logged("e.g. \"ABCDE\" (not a 5-digit US ZIP code)");
    run.assert_logged("field 'mobile' → MOBILE: 1 value(s)");
    run.assert_logged("field 'site' → SITE: 1 value(s)");
}

#[test]
fn a_refused_value_of_an_earlier_record_never_survives_into_the_merged_contact() {
    let fake = fake_with_typed_fields();
    // One batch holds both records of the contact; applied one after another, the first would be
    // refused whole by Mailchimp (before this fix) and the second would create the contact.
    let input = vec![
        record("users", None, json!({"email": "ada@mail.io", "fname": "Ada", "zip": "ABCDE"})),
        record("users", None, json!({"email": "ada@mail.io", "fname": "Augusta", "zip": null})),
        stream_state("users", None, 1, 2),
    ];
    let run = write(&fake, json!({}), &input);
    assert_eq!(run.code, 0);
    assert_eq!(run.states()[0]["destinationStats"]["recordCount"], 2.0);
    let ada = fake.member(LIST, "ada@mail.io").expect("the contact landed");
    assert_eq!(ada.merge_fields.get("FNAME"), Some(&json!("Augusta")));
    assert!(!ada.merge_fields.contains_key("ZIP"));
    let batches: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(batches.len(), 1, "both records in one request");
}

#[test]
fn an_offset_timestamp_arrives_in_utc() {
    let fake = fake();
    let input = vec![
        record(
            "users",
            None,
            json!({"email": "ada@mail.io", "timestamp_signup": "2024-05-06T07:08:09+02:00",
                                     "timestamp_opt": "2024-12-31T23:30:00-05:00"}),
        ),
        stream_state("users", None, 1, 1),
    ];
    let run = write(&fake, json!({}), &input);
    assert_eq!(run.code, 0);
    let bodies: Vec<Value> =
        fake.requests().into_iter().filter(|r| r.method == "POST").map(|r| r.body).collect();
    let member = &bodies[0]["members"][0];
    assert_eq!(member["timestamp_signup"], "2024-05-06 05:08:09");
    assert_eq!(member["timestamp_opt"], "2025-01-01 04:30:00");
}
