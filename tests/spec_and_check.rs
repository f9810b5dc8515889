//! End to end: `spec` and `check` through the built binary against the fake Mailchimp API.

mod common;
use common::*;
use serde_json::{json, Value};

fn check(config_value: &Value, base_url: Option<&str>) -> (String, String) {
    let files = Files::new(config_value, &catalog(vec![]));
    let run = run(&["check", "--config", &files.config()], "", base_url);
    assert_eq!(run.code, 0, "check exits 0 whatever the outcome: {run:?}");
    assert_eq!(run.lines.len(), 1, "exactly one line: {run:?}");
    let status = &run.lines[0]["connectionStatus"];
    (status["status"].as_str().unwrap().to_string(), status["message"].as_str().unwrap().to_string())
}

#[test]
fn spec_prints_one_spec_message_equal_to_spec_json() {
    let run = run(&["spec"], "", None);
    assert_eq!(run.code, 0);
    assert_eq!(run.lines.len(), 1);
    let expected: Value = serde_json::from_str(include_str!("../spec.json")).unwrap();
    assert_eq!(run.lines[0]["spec"], expected);
    let properties = &expected["connectionSpecification"]["properties"];
    for field in [
        "api_key",
        "list_id",
        "tags",
        "status_if_new",
        "email_field",
        "batch_size",
        "max_concurrent_requests",
    ] {
        assert!(properties[field].is_object(), "{field}");
    }
}

#[test]
fn check_succeeds_and_names_the_audience() {
    let fake = fake();
    let (status, message) = check(&config(json!({})), Some(&fake.base_url()));
    assert_eq!(status, "SUCCEEDED", "{message}");
    assert!(message.contains("'Test Audience'") && message.contains(LIST), "{message}");
}

#[test]
fn check_fails_clearly_for_a_rejected_key() {
    let fake = fake();
    let (status, message) =
        check(&config(json!({"api_key": "ffffffffffffffffffffffffffffffff-us6"})), Some(&fake.base_url()));
    assert_eq!(status, "FAILED");
    assert!(message.starts_with("Mailchimp rejected the API key (401 API Key Invalid)."), "{message}");
    assert!(!message.contains("ffffffffffff"), "{message}");
}

#[test]
fn check_fails_clearly_for_an_unknown_list() {
    let fake = fake();
    let (status, message) = check(&config(json!({"list_id": "nope123"})), Some(&fake.base_url()));
    assert_eq!(status, "FAILED");
    assert!(
        message.starts_with(
            "No audience with List ID 'nope123' in this Mailchimp account (404 Resource Not Found)."
        ),
        "{message}"
    );
}

#[test]
fn check_fails_for_a_key_without_a_data_center() {
    let fake = fake();
    let (status, message) =
        check(&config(json!({"api_key": "5e8ff3a0c1d24b7e9f60a1b2c3d4e5f6"})), Some(&fake.base_url()));
    assert_eq!(status, "FAILED");
    assert!(message.starts_with("The API key has no data-center suffix (such as -us6)."), "{message}");
    assert!(fake.requests().is_empty(), "nothing is sent with a malformed key");
}

#[test]
fn check_fails_for_a_config_that_does_not_match_the_spec() {
    let fake = fake();
    let (status, message) = check(&json!({"api_key": KEY, "batch_size": 900}), Some(&fake.base_url()));
    assert_eq!(status, "FAILED");
    assert!(message.starts_with("Config validation error:"), "{message}");
    assert!(
        message.contains("\"list_id\" is a required property") && message.contains("batch_size"),
        "{message}"
    );
}

#[test]
fn check_fails_when_mailchimp_cannot_be_reached() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (status, message) = check(&config(json!({})), Some(&format!("http://127.0.0.1:{port}/3.0")));
    assert_eq!(status, "FAILED");
    assert!(message.contains("Could not reach Mailchimp at http://127.0.0.1:"), "{message}");
}

#[test]
fn check_refuses_plain_http_to_another_host() {
    let (status, message) = check(&config(json!({})), Some("http://mailchimp.internal/3.0"));
    assert_eq!(status, "FAILED");
    assert!(message.contains("use https://"), "{message}");
}

#[test]
fn a_missing_config_file_is_a_clear_failure() {
    let run = run(&["check", "--config", "/nonexistent/config.json"], "", None);
    assert_eq!(run.code, 0);
    let message = run.lines[0]["connectionStatus"]["message"].as_str().unwrap();
    assert!(message.starts_with("Could not read the config file /nonexistent/config.json"), "{message}");
}
