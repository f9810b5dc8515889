//! End to end: how record fields become merge fields and member attributes, and `discover`.

mod common;
use common::*;
use serde_json::{json, Value};

fn audience() -> Fake {
    fake_with(|list| {
        list.add_merge_field("SIGNUP", "Signup Date", "date", false, json!({"date_format": "DD/MM/YYYY"}));
        list.add_merge_field("PLAN", "Plan", "dropdown", false, json!({"choices": ["Pro", "Free"]}));
        list.add_merge_field("NICK", "Nickname", "text", false, json!({}));
        list.put_member("keep@mail.io", "subscribed", json!({"FNAME": "Kept", "LNAME": "Also kept"}));
        list.groups.add_category("Newsletter topics", "checkboxes", &["Product news", "Events"]);
        list.groups.add_category("Region", "dropdown", &["EMEA", "Americas"]);
    })
}

#[test]
fn fields_land_in_merge_fields_by_name_type_and_explicit_mapping() {
    let fake = audience();
    let files = Files::new(
        &config(json!({"field_mappings": [{"record_field": "handle", "merge_tag": "NICK"}]})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let address =
        json!({"addr1": "1 Main St", "city": "Atlanta", "state": "GA", "zip": "30301", "country": "US"});
    let input = [
        record("users", None, json!({"email": "a@mail.io", "fname": "A", "address": address, "birthday": "1990-07-04", "signup": "1990-07-04", "plan": "pro"})),
        record("users", None, json!({"email": "b@mail.io", "FNAME": "B", "Address": {"addr1": "2 Side St"}, "plan": "Gold", "vip": true, "language": "fr"})),
        record("users", None, json!({"email": "c@mail.io", "First Name": "C", "last_name": "Cee", "dob": "12/31", "nickname": "auto", "handle": "explicit"})),
        record("users", None, json!({"email": "d@mail.io", "given_name": "D", "nickname": "only auto"})),
        record("users", None, json!({"email": "keep@mail.io", "fname": null, "lname": "", "phone": "+1 555 0100"})),
    ]
    .join("\n");
    let run = run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        &input,
        Some(&fake.base_url()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let member = |email: &str| fake.member(LIST, email).unwrap().merge_fields;

    let a = member("a@mail.io");
    assert_eq!(a["FNAME"], "A");
    assert_eq!(a["ADDRESS"], address);
    assert_eq!(a["BIRTHDAY"], "07/04");
    assert_eq!(a["SIGNUP"], "04/07/1990");
    assert_eq!(a["PLAN"], "Pro");

    let b = member("b@mail.io");
    assert_eq!(b["FNAME"], "B");
    assert!(b.get("ADDRESS").is_none() && b.get("PLAN").is_none(), "{b:?}");

    let c = member("c@mail.io");
    assert_eq!(
        (c["FNAME"].as_str(), c["LNAME"].as_str(), c["BIRTHDAY"].as_str()),
        (Some("C"), Some("Cee"), Some("12/31"))
    );
    assert_eq!(c["NICK"], "explicit", "the explicit mapping wins over the automatic one");
    let d = member("d@mail.io");
    assert_eq!(d["FNAME"], "D");
    assert!(d.get("NICK").is_none(), "a tag mapped explicitly is filled only by its mapped field: {d:?}");

    let kept = member("keep@mail.io");
    assert_eq!(
        (kept["FNAME"].as_str(), kept["LNAME"].as_str()),
        (Some("Kept"), Some("Also kept")),
        "nulls and empty values never erase"
    );
    assert_eq!(kept["PHONE"], "+1 555 0100");

    let requests: Vec<Value> =
        fake.requests().into_iter().filter(|r| r.method == "POST").map(|r| r.body).collect();
    let b_sent = requests[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email_address"] == "b@mail.io")
        .unwrap()
        .clone();
    assert_eq!((b_sent["vip"].as_bool(), b_sent["language"].as_str()), (Some(true), Some("fr")));

    // No contact was rejected by Mailchimp; the unconvertible values were dropped and reported.
    let logs = run.logs();
    assert!(!logs.contains("Rejected record"), "{logs}");
    assert!(
        logs.contains("field 'Address' → ADDRESS: 1 value(s) could not be converted")
            && logs.contains("incomplete address (missing city, state, zip)"),
        "{logs}"
    );
    assert!(
        logs.contains("field 'plan' → PLAN: 1 value(s)")
            && logs.contains("not one of the field's choices (Pro, Free)"),
        "{logs}"
    );
    assert!(logs.contains("Stream 'users': mapping"), "{logs}");
    let state_free = run.states().is_empty();
    assert!(state_free);
}

#[test]
fn an_explicit_mapping_to_a_missing_tag_fails_as_a_config_error() {
    let fake = audience();
    let files = Files::new(
        &config(json!({"field_mappings": [{"record_field": "x", "merge_tag": "NOPE"}]})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let run = run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        "",
        Some(&fake.base_url()),
    );
    assert_eq!(run.code, 1);
    let error = &run.of_type("TRACE")[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    assert!(error["message"].as_str().unwrap().contains("merge tag 'NOPE'"));
}

#[test]
fn required_merge_fields_a_stream_cannot_fill_are_reported_up_front() {
    let fake = fake_with(|list| list.add_merge_field("COMPANY", "Company", "text", true, json!({})));
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let run = run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        &record("users", None, json!({"email": "x@mail.io"})),
        Some(&fake.base_url()),
    );
    assert_eq!(run.code, 0);
    assert!(run.logs().contains("requires the merge fields COMPANY"), "{}", run.logs());

    let files = Files::new(
        &config(json!({"skip_merge_validation": true})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let run2 = run_cmd(&files, &record("users", None, json!({"email": "y@mail.io"})), &fake.base_url());
    assert_eq!(run2.code, 0);
    assert!(fake.member(LIST, "y@mail.io").is_some(), "skip_merge_validation lets the contact in");
    assert!(fake.requests().iter().any(|r| r.query.split('&').any(|p| p == "skip_merge_validation=true")));
}

fn run_cmd(files: &Files, input: &str, url: &str) -> Run {
    run(&["write", "--config", &files.config(), "--catalog", &files.catalog()], input, Some(url))
}

#[test]
fn discover_describes_the_audience_and_validates_against_the_protocol_schema() {
    let fake = audience();
    let files = Files::new(&config(json!({})), &catalog(vec![]));
    let run = run(&["discover", "--config", &files.config()], "", Some(&fake.base_url()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.lines.len(), 1);
    let message = &run.lines[0];
    // The Airbyte protocol's own schema (airbyte_protocol.yaml rendered as JSON), kept in the repo.
    let schema: Value = serde_json::from_str(include_str!("data/airbyte_protocol.json")).unwrap();
    let validator = jsonschema::draft7::options().build(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(message).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let operation = &message["destination_catalog"]["operations"][0];
    assert_eq!(operation["sync_mode"], "append_dedup");
    assert_eq!(operation["matching_keys"], json!([["email_address"]]));
    let properties = &operation["json_schema"]["properties"];
    assert_eq!(properties["FNAME"]["type"], json!(["null", "string"]));
    assert_eq!(properties["ADDRESS"]["type"], json!(["null", "object"]));
    assert_eq!(properties["SIGNUP"]["format"], "date");
    assert_eq!(properties["PLAN"]["enum"], json!(["Pro", "Free", null]));
    assert_eq!(properties["email_address"]["type"], "string");
    let topics = &properties["newsletter_topics"];
    assert_eq!(topics["title"], "Newsletter topics");
    assert_eq!(topics["items"]["enum"], json!(["Product news", "Events"]));
    assert_eq!(properties["region"]["x-mailchimp-type"], "group category (dropdown)");
    assert!(properties["region"]["description"].as_str().unwrap().contains("(one group)"));
}
