//! Data activation: every audience as destination objects in discover, and write honouring each
//! stream's destination object and mode (append_dedup, update, soft_delete).

mod common;

use common::*;
use fake_mailchimp::FakeList;
use serde_json::{json, Value};

const SECOND: &str = "beef567890";
const THIRD: &str = "d00d112233";

/// Three audiences: the configured one (with a required merge field), a second and a third.
fn three_audiences() -> Fake {
    let mut first = FakeList::with_default_fields(LIST, "Test Audience");
    first.add_merge_field("COMPANY", "Company", "text", true, json!({}));
    first.put_member("known@mail.io", "subscribed", json!({"FNAME": "Known"}));
    first.put_member("gone@mail.io", "subscribed", json!({}));
    let mut second = FakeList::with_default_fields(SECOND, "Customers EU");
    second.put_member("eu@mail.io", "subscribed", json!({}));
    second.enable_gdpr(&["Email", "Direct Mail"]);
    let third = FakeList::new(THIRD, "Partners");
    Fake::start(vec![first, second, third])
}

fn discover(fake: &Fake, config_extra: Value) -> Value {
    let files = Files::new(&config(config_extra), &catalog(vec![]));
    let run = run(&["discover", "--config", &files.config()], "", Some(&fake.base_url()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.lines.len(), 1, "{:?}", run.raw);
    run.lines[0].clone()
}

fn operations(message: &Value) -> Vec<Value> {
    message["destination_catalog"]["operations"].as_array().unwrap().clone()
}

fn operation<'a>(operations: &'a [Value], object: &str, mode: &str) -> &'a Value {
    operations
        .iter()
        .find(|o| o["object_name"] == object && o["sync_mode"] == mode)
        .unwrap_or_else(|| panic!("no {mode} operation for {object}"))
}

#[test]
fn discover_lists_every_audience_with_its_contacts_and_events_operations_named_by_list_id() {
    let fake = three_audiences();
    let message = discover(&fake, json!({}));
    let schema: Value = serde_json::from_str(include_str!("data/airbyte_protocol.json")).unwrap();
    let validator = jsonschema::draft7::options().build(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&message).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    let operations = operations(&message);
    let pairs: Vec<(String, String)> = operations
        .iter()
        .map(|o| (o["object_name"].as_str().unwrap().into(), o["sync_mode"].as_str().unwrap().into()))
        .collect();
    let mut expected = Vec::new();
    for id in [LIST, SECOND, THIRD] {
        for mode in ["append_dedup", "update", "soft_delete"] {
            expected.push((format!("audience_{id}"), mode.to_string()));
        }
        expected.push((format!("audience_{id}_events"), "append".to_string()));
    }
    assert_eq!(pairs, expected);
    for op in &operations {
        assert_eq!(op["matching_keys"], json!([["email_address"]]));
        // Events take any other field as a property.
        assert_eq!(op["json_schema"]["additionalProperties"], op["sync_mode"] == "append");
        assert!(!op["json_schema"]["required"].as_array().unwrap().contains(&json!("email_address")));
    }
    let object = format!("audience_{LIST}");
    let upsert = operation(&operations, &object, "append_dedup");
    assert_eq!(upsert["json_schema"]["title"], "Test Audience");
    assert_eq!(upsert["json_schema"]["required"], json!(["COMPANY"]), "required merge fields, for upserts");
    assert_eq!(upsert["json_schema"]["properties"]["FNAME"]["type"], json!(["null", "string"]));
    let update = operation(&operations, &object, "update");
    assert_eq!(
        update["json_schema"]["required"],
        json!([]),
        "an update never needs the required merge fields"
    );
    assert!(update["json_schema"]["properties"]["COMPANY"].is_object());
    let delete = operation(&operations, &object, "soft_delete");
    let keys: Vec<&String> = delete["json_schema"]["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["email_address"], "a soft delete needs the matching key only");
    // Nothing was written by discover.
    assert!(fake.requests().iter().all(|r| r.method == "GET"));

    // GDPR marketing permissions, read from one contact of the audience, as fields of its contacts.
    let gdpr = operation(&operations, &format!("audience_{SECOND}"), "update");
    let permission = &gdpr["json_schema"]["properties"]["marketing_permission_direct_mail"];
    assert_eq!(permission["type"], json!(["null", "boolean"]), "{gdpr}");
    assert!(gdpr["json_schema"]["properties"]["marketing_permission_email"].is_object());
    assert!(upsert["json_schema"]["properties"].get("marketing_permission_email").is_none());

    let relaxed = operations_of(&discover(&fake, json!({"skip_merge_validation": true})));
    assert_eq!(operation(&relaxed, &object, "append_dedup")["json_schema"]["required"], json!([]));
}

fn operations_of(message: &Value) -> Vec<Value> {
    operations(message)
}

#[test]
fn renaming_an_audience_keeps_every_object_name() {
    let fake = three_audiences();
    let names = |message: &Value| -> Vec<Value> {
        operations(message).iter().map(|o| o["object_name"].clone()).collect()
    };
    let before = discover(&fake, json!({}));
    fake.with_list(SECOND, |list| list.name = "Customers Europe (renamed)".into());
    let after = discover(&fake, json!({}));
    assert_eq!(names(&before), names(&after));
    let renamed = operation(&operations(&after), &format!("audience_{SECOND}"), "append_dedup").clone();
    assert_eq!(
        renamed["json_schema"]["title"], "Customers Europe (renamed)",
        "the name is shown, not keyed on"
    );
}

/// A catalog stream with a destination object and mode, keyed by its email field.
fn object_stream(name: &str, object: Option<&str>, mode: &str) -> Value {
    let mut stream = stream(name, None, mode);
    stream["destination_object_name"] = json!(object);
    stream["primary_key"] = json!([["email_address"]]);
    stream
}

fn write(fake: &Fake, catalog: &Value, lines: &[String]) -> Run {
    write_lines(&fake.base_url(), &config(json!({"skip_merge_validation": true})), catalog, lines)
}

#[test]
fn two_streams_naming_two_audiences_put_each_contact_in_its_audience() {
    let fake = three_audiences();
    let catalog = catalog(vec![
        object_stream("users", Some(&format!("audience_{LIST}")), "append_dedup"),
        object_stream("partners", Some(&format!("audience_{THIRD}")), "append_dedup"),
        object_stream("fallback", None, "append_dedup"),
    ]);
    let lines = [
        record("users", None, json!({"email_address": "u1@mail.io", "FNAME": "Una"})),
        record("partners", None, json!({"email_address": "p1@mail.io", "FNAME": "Pat"})),
        record("users", None, json!({"email_address": "u2@mail.io"})),
        record("partners", None, json!({"email_address": "p2@mail.io"})),
        record("fallback", None, json!({"email_address": "f1@mail.io"})),
        stream_state("partners", None, 1, 2),
    ];
    let run = write(&fake, &catalog, &lines);
    assert_eq!(run.code, 0, "{}\n{}", run.logs(), run.stderr);
    let emails = |list: &str| -> Vec<String> {
        let mut emails: Vec<String> = fake.members(list).into_iter().map(|m| m.email_address).collect();
        emails.sort();
        emails
    };
    assert_eq!(emails(LIST), ["f1@mail.io", "gone@mail.io", "known@mail.io", "u1@mail.io", "u2@mail.io"]);
    assert_eq!(emails(THIRD), ["p1@mail.io", "p2@mail.io"]);
    assert_eq!(emails(SECOND), ["eu@mail.io"], "an audience no stream names is left alone");
    // Partners have no FNAME merge field: the field is not sent there, and nothing is refused.
    assert_eq!(run.states().len(), 1);
    assert_eq!(run.states()[0]["destinationStats"]["recordCount"], 2.0);
    run.assert_logged("Writing to the Mailchimp audience 'Partners'");
    run.assert_logged("partners (append_dedup)");
}

#[test]
fn update_changes_existing_contacts_and_rejects_everyone_else() {
    let fake = three_audiences();
    let catalog = catalog(vec![object_stream("crm", Some(&format!("audience_{LIST}")), "update")]);
    let lines = [
        record("crm", None, json!({"email_address": "Known@Mail.io", "FNAME": "Renamed"})),
        record("crm", None, json!({"email_address": "stranger@mail.io", "FNAME": "New"})),
        stream_state("crm", None, 1, 2),
    ];
    let run = write(&fake, &catalog, &lines);
    assert_eq!(run.code, 0, "{}\n{}", run.logs(), run.stderr);
    assert_eq!(fake.member(LIST, "known@mail.io").unwrap().merge_fields["FNAME"], "Renamed");
    assert!(fake.member(LIST, "stranger@mail.io").is_none(), "update never creates a contact");
    let state = run.states()[0];
    assert_eq!(state["destinationStats"]["recordCount"], 1.0);
    assert_eq!(state["destinationStats"]["rejectedRecordCount"], 1.0, "{state}");
    run.assert_logged("not in the audience");
    run.assert_logged("Read who is in the audience 'Test Audience' for its update-only streams: 2 contacts");
    assert!(!run.logs().contains("stranger@mail.io"), "addresses are masked in the log");
}

#[test]
fn soft_delete_archives_and_a_contact_already_gone_counts_as_done() {
    let fake = three_audiences();
    let catalog = catalog(vec![object_stream("churned", Some(&format!("audience_{LIST}")), "soft_delete")]);
    let lines = [
        record("churned", None, json!({"email_address": "gone@mail.io"})),
        record("churned", None, json!({"email_address": "never-there@mail.io"})),
        stream_state("churned", None, 1, 2),
    ];
    let run = write(&fake, &catalog, &lines);
    assert_eq!(run.code, 0, "{}\n{}", run.logs(), run.stderr);
    assert_eq!(fake.member(LIST, "gone@mail.io").unwrap().status, "archived");
    assert!(fake.member(LIST, "never-there@mail.io").is_none(), "a soft delete never creates a contact");
    assert_eq!(fake.member(LIST, "known@mail.io").unwrap().status, "subscribed");
    let state = run.states()[0];
    assert_eq!(state["destinationStats"]["recordCount"], 2.0, "{state}");
}

#[test]
fn an_unknown_object_fails_before_any_write_naming_it() {
    let fake = three_audiences();
    for object in ["audience_nosuchlist", "Newsletter"] {
        let catalog = catalog(vec![
            object_stream("users", Some(&format!("audience_{LIST}")), "append_dedup"),
            object_stream("crm", Some(object), "append_dedup"),
        ]);
        let lines = [
            record("users", None, json!({"email_address": "u1@mail.io"})),
            stream_state("users", None, 1, 1),
        ];
        let run = write(&fake, &catalog, &lines);
        assert_eq!(run.code, 1);
        let traces = run.of_type("TRACE");
        let error = &traces.last().expect("a TRACE error")["trace"]["error"];
        assert_eq!(error["failure_type"], "config_error");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(object) && message.contains("'crm'"), "{message}");
        assert!(run.states().is_empty());
    }
    assert!(fake.requests().iter().all(|r| r.method == "GET"), "nothing was written");
    assert!(fake.member(LIST, "u1@mail.io").is_none());
}

#[test]
fn field_mappings_apply_to_the_configured_audience_only() {
    let fake = three_audiences();
    let catalog = catalog(vec![
        object_stream("users", None, "append_dedup"),
        object_stream("partners", Some(&format!("audience_{THIRD}")), "append_dedup"),
    ]);
    // FNAME exists in the configured audience only: the partners' audience matches by name.
    let settings = json!({"skip_merge_validation": true,
                          "field_mappings": [{"record_field": "handle", "merge_tag": "FNAME"}]});
    let lines = [
        record("users", None, json!({"email_address": "u1@mail.io", "handle": "Una"})),
        record("partners", None, json!({"email_address": "p1@mail.io", "handle": "Pat"})),
    ];
    let run = write_lines(&fake.base_url(), &config(settings), &catalog, &lines);
    assert_eq!(run.code, 0, "{}\n{}", run.logs(), run.stderr);
    assert_eq!(fake.member(LIST, "u1@mail.io").unwrap().merge_fields["FNAME"], "Una");
    assert!(fake.member(THIRD, "p1@mail.io").unwrap().merge_fields.is_empty());
}

#[test]
fn preview_of_an_update_stream_counts_strangers_as_rejected_not_created() {
    let fake = three_audiences();
    let catalog = catalog(vec![object_stream("crm", None, "update")]);
    let files = Files::new(&config(json!({"skip_merge_validation": true})), &catalog);
    let lines = [
        record("crm", None, json!({"email_address": "known@mail.io", "FNAME": "Renamed"})),
        record("crm", None, json!({"email_address": "stranger@mail.io"})),
    ];
    let (code, stdout, stderr) = run_for_people(
        &["preview", "--config", &files.config(), "--catalog", &files.catalog(), "--json"],
        &lines.join("\n"),
        &fake.base_url(),
    );
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!((report["created"].as_u64(), report["updated"].as_u64()), (Some(0), Some(1)), "{report}");
    assert_eq!(report["rejected"], 1);
    let reasons = report["rejected_by_reason"].as_object().unwrap();
    assert!(reasons.keys().any(|r| r.contains("not in the audience")), "{reasons:?}");
    assert!(fake.requests().iter().all(|r| r.method == "GET"), "preview writes nothing");
}
