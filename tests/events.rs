//! Events streams: one event per record on the contact, in UTC with text properties; invalid names
//! and unknown contacts rejected; each event stored exactly once through faults; states wait for
//! their events.

mod common;

use common::*;
use fake_mailchimp::{Fault, Target};
use serde_json::{json, Value};

fn audience() -> Fake {
    fake_with(|list| {
        for email in ["ada@mail.io", "bob@mail.io", "cy@mail.io", "dee@mail.io", "eve@mail.io"] {
            list.put_member(email, "subscribed", json!({}));
        }
    })
}

fn events_stream(name: &str) -> Value {
    let mut stream = stream(name, None, "append");
    stream["primary_key"] = json!([["event_id"]]);
    stream
}

fn events_config(extra: Value) -> Value {
    let mut settings = json!({"events_streams": [{"stream": "app_events"}, {"stream": "signups", "event_name": "signed_up"}],
                              "max_retry_seconds": 20});
    settings.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    config(settings)
}

fn events_of(fake: &Fake, email: &str) -> Vec<Value> {
    fake.member(LIST, email).map(|m| m.events).unwrap_or_default()
}

#[test]
fn an_events_stream_posts_one_event_per_record_in_utc_with_text_properties() {
    let fake = audience();
    let catalog = catalog(vec![events_stream("app_events"), events_stream("signups")]);
    let lines = [
        record(
            "app_events",
            None,
            json!({"email": "ada@mail.io", "event_name": "trial_started", "event_id": "e1",
            "occurred_at": "2026-11-20T10:00:00+02:00", "plan": "pro", "seats": 3, "meta": {"source": "ads"}, "gone": null}),
        ),
        record(
            "app_events",
            None,
            json!({"email": "bob@mail.io", "name": "order-shipped", "event_id": "e2"}),
        ),
        record(
            "app_events",
            None,
            json!({"email": "ada@mail.io", "event_name": "trial_started", "event_id": "e1"}),
        ),
        record(
            "app_events",
            None,
            json!({"email": "cy@mail.io", "event_name": "has space", "event_id": "e3"}),
        ),
        record(
            "app_events",
            None,
            json!({"email": "stranger@mail.io", "event_name": "trial_started", "event_id": "e4"}),
        ),
        record(
            "signups",
            None,
            json!({"email": "dee@mail.io", "event_id": "s1", "timestamp": "2026-11-21T09:30:00Z"}),
        ),
        stream_state("app_events", None, 1, 5),
    ];
    let run = write_lines(&fake.base_url(), &events_config(json!({})), &catalog, &lines);
    assert_eq!(run.code, 0, "{}\n{}", run.logs(), run.stderr);

    let ada = events_of(&fake, "ada@mail.io");
    assert_eq!(ada.len(), 1, "the repeated event id is posted once: {ada:?}");
    assert_eq!(ada[0]["name"], "trial_started");
    assert_eq!(ada[0]["occurred_at"], "2026-11-20T08:00:00+00:00", "converted to UTC");
    assert_eq!(
        ada[0]["properties"],
        json!({"plan": "pro", "seats": "3", "meta": "{\"source\":\"ads\"}", "event_id": "e1"})
    );
    assert_eq!(ada[0]["is_syncing"], false, "events may start automations by default");
    assert_eq!(events_of(&fake, "bob@mail.io")[0]["name"], "order-shipped");
    let dee = events_of(&fake, "dee@mail.io");
    assert_eq!(
        (dee[0]["name"].as_str(), dee[0]["occurred_at"].as_str()),
        (Some("signed_up"), Some("2026-11-21T09:30:00+00:00"))
    );
    assert!(events_of(&fake, "cy@mail.io").is_empty());
    assert!(fake.member(LIST, "stranger@mail.io").is_none(), "an event never adds a contact");

    let state = run.states()[0];
    assert_eq!(state["destinationStats"]["recordCount"], 3.0, "{state}");
    assert_eq!(state["destinationStats"]["rejectedRecordCount"], 2.0, "{state}");
    run.assert_logged("is not 2–30 letters, digits, underscores or dashes");
    run.assert_logged("the contact is not in the audience (an event never adds one)");
    run.assert_logged("3 events posted (1 records repeated an event already posted in this sync)");
    assert!(!run.logs().contains("stranger@mail.io"));
}

#[test]
fn each_event_is_stored_exactly_once_through_faults() {
    let fake = audience();
    fake.inject(
        Target::Events,
        &[
            Fault::TooManyRequests { body: true, retry_after_seconds: None },
            Fault::InternalServerError,
            Fault::ResetBeforeRead,
            Fault::ResetMidResponse,
            Fault::ServiceUnavailable,
        ],
    );
    let catalog = catalog(vec![events_stream("app_events")]);
    let lines: Vec<String> = ["ada", "bob", "cy", "dee", "eve"]
        .iter()
        .enumerate()
        .map(|(i, who)| {
            record(
                "app_events",
                None,
                json!({"email": format!("{who}@mail.io"), "event_name": "visited", "event_id": i}),
            )
        })
        .chain([stream_state("app_events", None, 1, 5)])
        .collect();
    let run = write_lines(
        &fake.base_url(),
        &events_config(json!({"max_concurrent_requests": 1})),
        &catalog,
        &lines,
    );
    assert_eq!(run.code, 0, "{}\n{}", run.logs(), run.stderr);
    let log: Vec<String> = fake
        .requests()
        .iter()
        .map(|r| format!("{} {} {} {:?}", r.method, r.path, r.status, r.fault))
        .collect();
    for who in ["ada", "bob", "cy", "dee", "eve"] {
        assert_eq!(
            events_of(&fake, &format!("{who}@mail.io")).len(),
            1,
            "{who}: {:?}\n{}",
            events_of(&fake, &format!("{who}@mail.io")),
            log.join("\n")
        );
    }
    assert_eq!(fake.faults_remaining(), 0, "every fault was met");
    // A 429 is retried at once; after the others the contact's events were read first.
    let reads = fake.requests().iter().filter(|r| r.method == "GET" && r.path.ends_with("/events")).count();
    assert_eq!(reads, 4, "one read after each failure Mailchimp may have carried out");
    assert_eq!(run.states()[0]["destinationStats"]["recordCount"], 5.0);
}

#[test]
fn a_state_waits_for_the_events_before_it() {
    let fake = audience();
    let catalog = catalog(vec![events_stream("app_events"), stream("users", None, "append_dedup")]);
    let lines = [
        record("users", None, json!({"email": "new@mail.io"})),
        stream_state("users", None, 1, 1),
        record("app_events", None, json!({"email": "ada@mail.io", "event_name": "visited", "event_id": "x"})),
        stream_state("app_events", None, 2, 1),
    ];
    // The event fails for good (retries end after a second): its state must not be released.
    fake.inject(Target::Events, &vec![Fault::ServiceUnavailable; 50]);
    // One record per batch, so that the first state waits only for the contact before it.
    let settings = json!({"max_retry_seconds": 1, "batch_size": 1});
    let run = write_lines(&fake.base_url(), &events_config(settings), &catalog, &lines);
    assert_eq!(run.code, 1, "{}", run.logs());
    let ids: Vec<&Value> = run.states().iter().map(|s| &s["id"]).collect();
    assert_eq!(ids, [&json!(1)], "only the state before the event is released");
    let traces = run.of_type("TRACE");
    let message = traces.last().unwrap()["trace"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("event") && message.contains("1 state was saved"), "{message}");
}

#[test]
fn discover_lists_each_audiences_events_and_preview_counts_them() {
    let fake = audience();
    let files = Files::new(&events_config(json!({})), &catalog(vec![events_stream("app_events")]));
    let run = run(&["discover", "--config", &files.config()], "", Some(&fake.base_url()));
    let operations = run.lines[0]["destination_catalog"]["operations"].as_array().unwrap().clone();
    let events = operations.iter().find(|o| o["object_name"] == format!("audience_{LIST}_events")).unwrap();
    assert_eq!(events["sync_mode"], "append");
    assert_eq!(events["json_schema"]["required"], json!(["event_name"]));

    let input = [
        record("app_events", None, json!({"email": "ada@mail.io", "event_name": "visited", "event_id": 1})),
        record("app_events", None, json!({"email": "bob@mail.io", "event_name": "visited", "event_id": 2})),
        record("app_events", None, json!({"email": "bob@mail.io", "event_name": "x", "event_id": 3})),
    ]
    .join("\n");
    let (config, catalog) = (files.config(), files.catalog());
    let (code, stdout, stderr) = run_for_people(
        &["preview", "--config", &config, "--catalog", &catalog, "--json"],
        &input,
        &fake.base_url(),
    );
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["events"], json!({"visited": 2}));
    assert_eq!(report["rejected"], 1);
    assert!(fake.requests().iter().all(|r| r.method == "GET"), "preview posts nothing");
}

#[test]
fn an_events_stream_must_append_and_a_contacts_stream_must_not() {
    let fake = audience();
    for (catalog, says) in [
        (catalog(vec![stream("app_events", None, "append_dedup")]), "is an events stream"),
        (catalog(vec![stream("users", None, "append")]), "only for events streams"),
    ] {
        let run = write_lines(&fake.base_url(), &events_config(json!({})), &catalog, &[]);
        assert_eq!(run.code, 1);
        let message = run.of_type("TRACE")[0]["trace"]["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(says), "{message}");
    }
    assert!(fake.requests().is_empty(), "nothing was read or written");
}
