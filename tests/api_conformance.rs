//! The API conformance check itself: requests that Mailchimp's API document allows pass, and each
//! kind of request it does not allow fails. (Every end-to-end test runs the check on all the
//! requests its fake received: see `common::Fake`.)

mod common;

use common::conformance::violations;
use fake_mailchimp::RecordedRequest;
use serde_json::{json, Value};

fn request(method: &str, path: &str, query: &str, body: Value) -> RecordedRequest {
    RecordedRequest {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        body,
        status: 200,
        answer: Value::Null,
        fault: None,
        received_ms: 0,
        answered_ms: 0,
    }
}

fn batch(member: Value) -> RecordedRequest {
    request(
        "POST",
        "/3.0/lists/c0ffee1234",
        "exclude_fields=new_members,updated_members",
        json!({
        "update_existing": true, "members": [member]}),
    )
}

#[test]
fn what_the_connector_sends_passes() {
    let member = json!({"email_address": "ada@mail.io", "status_if_new": "subscribed", "tags": ["crm"],
        "merge_fields": {"FNAME": "Ada", "ADDRESS": {"addr1": "1 Main", "city": "A", "state": "GA", "zip": "30301"}},
        "vip": true, "language": "en", "timestamp_signup": "2024-05-06 05:08:09",
        "location": {"latitude": 33.7, "longitude": -84.4}});
    assert_eq!(violations(&batch(member)), Vec::<String>::new());
    let tags = request(
        "POST",
        "/3.0/lists/c0ffee1234/members/62eeb292278cc15f5817cb78f7790b08/tags",
        "",
        json!({"tags": [{"name": "hp:old", "status": "inactive"}], "is_syncing": true}),
    );
    assert_eq!(violations(&tags), Vec::<String>::new());
    let page = request("GET", "/3.0/lists/c0ffee1234/merge-fields", "count=1000&offset=0", Value::Null);
    assert_eq!(violations(&page), Vec::<String>::new());
}

#[test]
fn each_kind_of_request_the_document_does_not_allow_fails() {
    let cases = [
        (batch(json!({"email_address": "a@mail.io", "status": "resubscribed"})), "is not one of"),
        (
            batch(json!({"email_address": "a@mail.io", "status_if_new": "subscribed", "vip": "yes"})),
            "is not of type",
        ),
        (
            batch(json!({"email_address": "a@mail.io", "status_if_new": "subscribed", "loyalty": 3})),
            "loyalty",
        ),
        (
            batch(
                json!({"email_address": "a@mail.io", "status_if_new": "subscribed", "tags": [{"name": "x"}]}),
            ),
            "is not of type",
        ),
        (
            request("POST", "/3.0/lists/c0ffee1234", "update=1", json!({"members": []})),
            "'update' is not declared",
        ),
        (request("GET", "/3.0/lists/c0ffee1234/members", "count=all", Value::Null), "'count=all' is not a"),
        (
            request("GET", "/3.0/lists/c0ffee1234", "fields=id&exclude_fields=stats", Value::Null),
            "mutually exclusive",
        ),
        (
            request("PATCH", "/3.0/lists/c0ffee1234/members/x/actions/delete-permanent", "", Value::Null),
            "no such operation",
        ),
        (request("DELETE", "/3.0/lists/c0ffee1234/members/x", "", json!({"a": 1})), "does not take"),
    ];
    for (request, expected) in cases {
        let found = violations(&request);
        assert!(found.iter().any(|v| v.contains(expected)), "{} {}: {found:?}", request.method, request.path);
    }
}

#[test]
fn an_answer_that_is_not_the_documented_one_fails() {
    let mut page = request("GET", "/3.0/lists/c0ffee1234/members", "count=2", Value::Null);
    page.answer = json!({"members": "none", "total_items": 0});
    assert!(violations(&page).iter().any(|v| v.contains("the fake's 200 answer")), "{:?}", violations(&page));
}
