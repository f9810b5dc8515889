//! Input the platform should never send: each case ends with its documented outcome (a TRACE
//! system_error after the committed states, a counted rejection, or a clean run), never a panic or
//! a hang.

mod common;
use common::*;
use serde_json::{json, Value};

fn files() -> Files {
    Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]))
}

fn write_bytes(files: &Files, input: Vec<u8>, base_url: &str) -> Run {
    run_bytes(&["write", "--config", &files.config(), "--catalog", &files.catalog()], input, Some(base_url))
}

/// A committed record and its state, then `bad` as line 3, then a record that must not be written.
fn input_with_bad_third_line(bad: &[u8]) -> Vec<u8> {
    let mut input = Vec::new();
    input.extend(record("users", None, json!({"email": "first@mail.io"})).as_bytes());
    input.push(b'\n');
    input.extend(stream_state("users", None, 1, 1).as_bytes());
    input.push(b'\n');
    input.extend(bad);
    input.push(b'\n');
    input.extend(record("users", None, json!({"email": "after@mail.io"})).as_bytes());
    input.push(b'\n');
    input.extend(stream_state("users", None, 2, 1).as_bytes());
    input.push(b'\n');
    input
}

fn assert_fails_at_line_3(bad: &[u8], reason: &str) -> String {
    let fake = fake();
    let run = write_bytes(&files(), input_with_bad_third_line(bad), &fake.base_url());
    assert_eq!(run.code, 1, "{reason}: {}", run.stderr);
    let states = run.states();
    assert_eq!(states.len(), 1, "{reason}: the committed state is released, no later one");
    assert_eq!(states[0]["id"], 1);
    let traces = run.of_type("TRACE");
    assert_eq!(traces.len(), 1, "{reason}");
    let error = &traces[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "system_error");
    let message = error["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("Input line 3 is not an Airbyte message: "), "{message}");
    assert!(message.contains(reason), "{message}");
    assert!(fake.member(LIST, "first@mail.io").is_some());
    assert!(fake.member(LIST, "after@mail.io").is_none(), "nothing after the bad line is written");
    message
}

#[test]
fn lines_that_are_not_airbyte_messages_fail_with_the_line_number_and_a_masked_excerpt() {
    let cases: [(&[u8], &str); 7] = [
        (b"hello from carol@mail.io", "it is not valid JSON"),
        (b"[1, 2, 3]", "it is not a JSON object"),
        (br#"{"record": {"stream": "users"}}"#, "it has no \"type\""),
        (br#"{"type": "RECORD"}"#, "a RECORD message has no \"record\""),
        (br#"{"type": "RECORD", "record": {"data": {}}}"#, "a RECORD message has no \"stream\""),
        (br#"{"type": "STATE", "state": 7}"#, "a STATE message has no \"state\" object"),
        (br#"{"type": "BANANA"}"#, "its type \"BANANA\" is not an Airbyte message type"),
    ];
    for (bad, reason) in cases {
        let message = assert_fails_at_line_3(bad, reason);
        assert!(!message.contains("carol"), "emails are masked in the excerpt: {message}");
    }
}

#[test]
fn invalid_utf8_fails_like_any_malformed_line() {
    let mut bad = record("users", None, json!({"email": "x@mail.io", "fname": "AB"})).into_bytes();
    let at = bad.windows(2).position(|w| w == b"AB").unwrap();
    bad[at] = 0xff;
    bad[at + 1] = 0xfe;
    let message = assert_fails_at_line_3(&bad, "it is not valid UTF-8 (invalid bytes after byte ");
    assert!(
        message.contains('\u{fffd}'),
        "the excerpt shows the bad bytes as replacement characters: {message}"
    );
}

#[test]
fn a_line_beyond_the_size_limit_is_reported_not_buffered() {
    let mut bad =
        br#"{"type":"RECORD","record":{"stream":"users","data":{"email":"big@mail.io","notes":""#.to_vec();
    bad.resize(33 << 20, b'x');
    bad.extend(br#""}}}"#);
    assert_fails_at_line_3(&bad, "it is longer than 32 MiB");
}

#[test]
fn a_10_mb_record_is_written_with_its_text_cut_to_mailchimps_limit() {
    let fake = fake();
    let huge = "é".repeat(5 << 20);
    let input = [
        record("users", None, json!({"email": "huge@mail.io", "fname": huge, "notes": huge})),
        record("users", None, json!({"email": "small@mail.io", "fname": "Ada"})),
        stream_state("users", None, 1, 2),
    ]
    .join("\n");
    assert!(input.len() > 20 << 20);
    let run = write_bytes(&files(), input.into_bytes(), &fake.base_url());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.states()[0]["destinationStats"], json!({"recordCount": 2.0, "rejectedRecordCount": 0.0}));
    let member = fake.member(LIST, "huge@mail.io").expect("the big record is written");
    let fname = member.merge_fields["FNAME"].as_str().unwrap();
    assert!(fname.len() <= 255 && fname.len() >= 254 && fname.chars().all(|c| c == 'é'), "{}", fname.len());
}

#[test]
fn records_whose_data_is_not_an_object_are_rejected_and_counted() {
    let fake = fake();
    let input = [
        record("users", None, json!(["a@mail.io"])),
        record("users", None, json!(null)),
        record("users", None, json!("b@mail.io")),
        record("users", None, json!({"email": "c@mail.io"})),
        stream_state("users", None, 1, 4),
    ]
    .join("\n");
    let run = write_bytes(&files(), input.into_bytes(), &fake.base_url());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.states()[0]["destinationStats"], json!({"recordCount": 1.0, "rejectedRecordCount": 3.0}));
    assert_eq!(fake.members(LIST).len(), 1);
    assert!(run.logs().contains("3 records rejected"), "{}", run.logs());
}

#[test]
fn blank_lines_and_messages_a_destination_ignores_are_skipped() {
    let fake = fake();
    let input = [
        String::new(),
        r#"{"type":"LOG","log":{"level":"INFO","message":"source says hi"}}"#.into(),
        "   ".into(),
        r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1.0,"stream_status":{"stream_descriptor":{"name":"users"},"status":"STARTED"}}}"#.into(),
        record("users", None, json!({"email": "a@mail.io"})),
        stream_state("users", None, 1, 1),
        String::new(),
    ]
    .join("\r\n");
    let run = write_bytes(&files(), input.into_bytes(), &fake.base_url());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.states().len(), 1);
}

#[test]
fn a_missing_or_malformed_catalog_or_config_fails_before_reading_input() {
    let fake = fake();
    let files = files();
    std::fs::write(files.path("broken.json"), "{\"streams\": [").unwrap();
    std::fs::write(files.path("not_a_catalog.json"), "{\"streams\": 3}").unwrap();
    let cases: [(String, String, &str); 4] = [
        (
            files.config(),
            "/nonexistent/catalog.json".into(),
            "Could not read the catalog file /nonexistent/catalog.json",
        ),
        (files.config(), files.path("broken.json"), "is not valid JSON"),
        (files.config(), files.path("not_a_catalog.json"), "is not a configured catalog"),
        (files.path("broken.json"), files.catalog(), "The config file"),
    ];
    for (config, catalog, expected) in cases {
        let run = run(
            &["write", "--config", &config, "--catalog", &catalog],
            &record("users", None, json!({"email": "a@mail.io"})),
            Some(&fake.base_url()),
        );
        assert_eq!(run.code, 1);
        let traces = run.of_type("TRACE");
        assert_eq!(traces.len(), 1, "{expected}");
        let error: &Value = &traces[0]["trace"]["error"];
        assert_eq!(error["failure_type"], "config_error");
        assert!(error["message"].as_str().unwrap().contains(expected), "{error}");
    }
    assert!(fake.members(LIST).is_empty());
}
