//! End-to-end: GDPR marketing permissions mapped by name — set per contact only where the record
//! differs from what Mailchimp holds — through the built binary against the fake Mailchimp API.

mod common;

use common::*;
use fake_mailchimp::audience::subscriber_hash;
use fake_mailchimp::{FakeList, Fault, Target};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const PERMISSIONS: [&str; 3] = ["Email", "Direct Mail", "Customized Online Advertising"];

fn gdpr_audience(list: &mut FakeList) {
    list.enable_gdpr(&PERMISSIONS);
    list.put_member("carol@mail.io", "subscribed", json!({}));
    let email = list.permission_id("Email").unwrap();
    list.members
        .get_mut(&subscriber_hash("carol@mail.io"))
        .unwrap()
        .marketing_permissions
        .insert(email, true);
}

fn files(settings: Value) -> Files {
    let mut settings = settings;
    settings["field_mappings"] = json!([{"record_field": "ok_to_email", "marketing_permission": "Email"}]);
    Files::new(&config(settings), &catalog(vec![stream("users", None, "append_dedup")]))
}

fn records() -> Vec<Value> {
    vec![
        json!({"email": "ada@mail.io", "ok_to_email": "yes", "marketing_permission_direct_mail": false}),
        json!({"email": "bob@mail.io", "ok_to_email": true, "marketing_permission_customized_online_advertising": 1}),
        json!({"email": "carol@mail.io", "ok_to_email": "no"}),
        json!({"email": "dan@mail.io", "ok_to_email": "maybe", "fname": "Dan"}),
        json!({"email": "eve@mail.io", "marketing_permission_sms": true}),
    ]
}

fn write(fake: &Fake, files: &Files, records: &[Value]) -> Run {
    let mut input: Vec<String> = Vec::new();
    for (i, data) in records.iter().enumerate() {
        input.push(record("users", None, data.clone()));
        input.push(stream_state("users", None, i as u64 + 1, 1));
    }
    run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        &(input.join("\n") + "\n"),
        Some(&fake.base_url()),
    )
}

/// Every contact's enabled permissions, by text.
fn permissions(fake: &Fake) -> BTreeMap<String, Vec<String>> {
    fake.with_list(LIST, |list| {
        let texts: BTreeMap<String, String> =
            list.marketing_permissions.clone().unwrap_or_default().into_iter().collect();
        list.members
            .values()
            .map(|m| {
                let on =
                    m.marketing_permissions.iter().filter(|(_, on)| **on).map(|(id, _)| texts[id].clone());
                (m.email_address.clone(), on.collect())
            })
            .collect()
    })
}

fn permission_calls(fake: &Fake) -> usize {
    fake.requests().iter().filter(|r| r.method == "PATCH").count()
}

#[test]
fn a_permissions_column_sets_exactly_the_mapped_permissions_and_a_second_sync_makes_no_calls() {
    let fake = fake_with(gdpr_audience);
    let files = files(json!({}));
    let run = write(&fake, &files, &records());
    assert_eq!(run.code, 0, "{:?}", run.lines);
    let expected: BTreeMap<String, Vec<String>> = [
        ("ada@mail.io", vec!["Email"]),
        ("bob@mail.io", vec!["Customized Online Advertising", "Email"]),
        ("carol@mail.io", vec![]),
        ("dan@mail.io", vec![]),
        ("eve@mail.io", vec![]),
    ]
    .into_iter()
    .map(|(e, p)| (e.to_string(), p.into_iter().map(str::to_string).collect::<Vec<_>>()))
    .map(|(e, mut p)| {
        p.sort();
        (e, p)
    })
    .collect();
    let mut got = permissions(&fake);
    got.values_mut().for_each(|p| p.sort());
    assert_eq!(got, expected);
    // Ada (Email on), Bob (Email and advertising on), Carol (Email off): Ada's direct mail was off already.
    assert_eq!(permission_calls(&fake), 3);
    run.assert_logged(
        "Marketing permissions: 3 contact(s)' permissions were changed as the source says; 1 value(s)",
    );
    run.assert_logged(
        "field 'ok_to_email' → the marketing permission 'email': 1 value(s) could not be converted",
    );
    assert_eq!(
        fake.member(LIST, "dan@mail.io").unwrap().merge_fields["FNAME"],
        "Dan",
        "the contact still synced"
    );

    let again = write(&fake, &files, &records());
    assert_eq!(again.code, 0);
    assert_eq!(permission_calls(&fake), 3, "nothing differs the second time: no permission call");
}

#[test]
fn an_audience_without_gdpr_fields_reports_the_mapping_and_makes_no_permission_call() {
    let fake = fake();
    let files = files(json!({}));
    let run = write(&fake, &files, &records());
    assert_eq!(run.code, 0, "{:?}", run.lines);
    assert_eq!(permission_calls(&fake), 0);
    run.assert_logged(
        "Fields map to the GDPR marketing permissions email, but this audience has no GDPR fields",
    );
    run.assert_logged("field 'marketing_permission_direct_mail' → the marketing permission 'direct_mail': 1 value(s) \
                       could not be converted and were not sent (the contacts were still synced); e.g. false (the \
                       audience has no GDPR marketing permissions)");
    let check = common::run(&["check", "--config", &files.config()], "", Some(&fake.base_url()));
    let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "SUCCEEDED");
    assert!(status["message"].as_str().unwrap().contains("this audience has no GDPR fields"), "{status}");
}

#[test]
fn faults_on_permission_calls_end_in_the_same_audience_and_states_as_without_them() {
    let clean = fake_with(gdpr_audience);
    let files = files(json!({"max_retry_seconds": 60}));
    let expected = write(&clean, &files, &records());
    let faulty = fake_with(gdpr_audience);
    faulty.inject(
        Target::Contacts,
        &[
            Fault::TooManyRequests { body: false, retry_after_seconds: None },
            Fault::InternalServerError,
            Fault::ResetMidResponse,
            Fault::ServiceUnavailable,
        ],
    );
    let run = write(&faulty, &files, &records());
    assert_eq!(run.code, 0, "{:?}", run.lines);
    assert_eq!(faulty.faults_remaining(), 0, "every fault was met");
    assert_eq!(permissions(&faulty), permissions(&clean));
    assert_eq!(run.states(), expected.states());
}

#[test]
fn a_state_is_released_only_after_its_contacts_permission_call_is_answered() {
    let fake = fake_with(gdpr_audience);
    // The permission call is answered 1.5 s late; the batch itself at once.
    fake.inject(Target::Contacts, &[Fault::Delay { ms: 1500 }]);
    let files = files(json!({}));
    let lines = [record("users", None, records()[0].clone()), stream_state("users", None, 1, 1)];
    let (mut child, stdin) = start_write(&files, &fake.base_url(), &lines);
    let mut stdout = lines_of(&mut child).map(|l| parse_protocol_line(&l));
    let state = stdout.by_ref().find(|m| m["type"] == "STATE");
    assert!(state.is_some(), "the state came back");
    let answered = fake.requests().iter().filter(|r| r.method == "PATCH").count();
    assert_eq!(answered, 1, "the permission call was answered before the state was released");
    drop(stdin);
    let rest: Vec<Value> = stdout.collect();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{rest:?}");
}
