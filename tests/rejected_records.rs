//! Rejected records storage against a real S3-compatible server (moto): exactly the rejected
//! records are stored, with their data as sent and their reasons; no state is released before the
//! rejected records ahead of it are stored; `check` reports a bucket it cannot write to.

mod common;

use common::s3::S3Server;
use common::*;
use fake_mailchimp::audience::subscriber_hash;
use serde_json::{json, Value};

fn audience() -> Fake {
    fake_with(|list| {
        list.put_member("known@mail.io", "subscribed", json!({}));
        // Permanently deleted earlier: Mailchimp refuses to import the address again.
        list.forgotten.insert(subscriber_hash("erased@mail.io"));
    })
}

fn keyed_stream(name: &str, mode: &str) -> Value {
    let mut stream = stream(name, None, mode);
    stream["primary_key"] = json!([["email"]]);
    stream
}

fn write(fake: &Fake, storage: Value, catalog: &Value, lines: &[String]) -> Run {
    let config = config(json!({"object_storage_config": storage, "max_retry_seconds": 2}));
    write_lines(&fake.base_url(), &config, catalog, lines)
}

#[test]
fn exactly_the_rejected_records_are_stored_with_their_data_and_reasons() {
    let s3 = S3Server::start();
    s3.create_bucket("rejects");
    let fake = audience();
    let mut catalog = catalog(vec![keyed_stream("users", "append_dedup"), keyed_stream("crm", "update")]);
    // The platform's job id: the sync's folder.
    for stream in catalog["streams"].as_array_mut().unwrap() {
        stream["sync_id"] = json!(4242);
    }
    let lines = [
        record("users", None, json!({"email": "ok@mail.io", "plan": "pro"})),
        record("users", None, json!({"email": "not an address", "plan": "free"})),
        record("users", None, json!({"email": "Erased@Mail.io", "plan": "pro"})),
        record("crm", None, json!({"email": "known@mail.io", "FNAME": "Kay"})),
        record("crm", None, json!({"email": "Stranger@Mail.io", "FNAME": "Sam"})),
        record("orders", None, json!({"email": "buyer@mail.io", "total": 12.5})),
        stream_state("users", None, 1, 3),
    ];
    let run = write(&fake, s3.storage_config("rejects", "mailchimp/rejected"), &catalog, &lines);
    assert_eq!(run.code, 0, "{}\n{}", run.logs(), run.stderr);
    assert_eq!(run.states().len(), 1);
    run.assert_logged("Stored 4 rejected records in s3://rejects/mailchimp/rejected/4242.");

    let objects = s3.objects("rejects");
    for (path, _) in &objects {
        assert!(path.starts_with("mailchimp/rejected/4242/"), "{path}");
        assert!(path.ends_with(".jsonl"), "{path}");
    }
    let mut stored: Vec<(String, Value, String)> = s3
        .lines("rejects")
        .into_iter()
        .map(|line| {
            let reason = line["rejected_reason"].as_str().unwrap().to_string();
            (line["stream"].as_str().unwrap().to_string(), line["data"].clone(), reason)
        })
        .collect();
    stored.sort_by_key(|(stream, data, _)| (stream.clone(), data.to_string()));
    assert_eq!(
        stored,
        [
            (
                "crm".into(),
                json!({"email": "Stranger@Mail.io", "FNAME": "Sam"}),
                "not in the audience".into()
            ),
            (
                "orders".into(),
                json!({"email": "buyer@mail.io", "total": 12.5}),
                "stream not in the catalog".into()
            ),
            (
                "users".into(),
                json!({"email": "Erased@Mail.io", "plan": "pro"}),
                "refused by Mailchimp".into()
            ),
            ("users".into(), json!({"email": "not an address", "plan": "free"}), "invalid record".into()),
        ]
    );
    let lines = s3.lines("rejects");
    let invalid = lines.iter().find(|l| l["rejected_reason"] == "invalid record").unwrap();
    assert_eq!(invalid["rejected_field"], "email");
    assert!(invalid["rejected_message"].as_str().unwrap().contains("does not hold an email address"));
    let refused = lines.iter().find(|l| l["rejected_reason"] == "refused by Mailchimp").unwrap();
    assert!(refused["rejected_message"].as_str().unwrap().contains("permanently deleted"), "{refused}");
    // Streams get their own folders: <bucket path>/<sync>/<namespace>/<stream>/.
    assert!(objects.iter().any(|(path, _)| path.contains("/_/crm/")), "{objects:?}");
    assert!(fake.member(LIST, "ok@mail.io").is_some());
    assert_no_secret(&run.raw.join("\n"), &run.stderr);
    assert!(!run.raw.join("\n").contains(common::s3::SECRET_ACCESS_KEY));
}

#[test]
fn no_state_is_released_before_the_rejected_records_ahead_of_it_are_stored() {
    let s3 = S3Server::start();
    // The bucket does not exist: storing fails, so the state after the rejection must not be released.
    let fake = audience();
    let catalog = catalog(vec![keyed_stream("users", "append_dedup")]);
    let lines = [
        record("users", None, json!({"email": "first@mail.io"})),
        stream_state("users", None, 1, 1),
        record("users", None, json!({"email": "second@mail.io"})),
        record("users", None, json!({"email": "broken"})),
        stream_state("users", None, 2, 2),
        record("users", None, json!({"email": "third@mail.io"})),
        stream_state("users", None, 3, 1),
    ];
    let run = write(&fake, s3.storage_config("missing-bucket", "rejected"), &catalog, &lines);
    assert_eq!(run.code, 1, "{}", run.logs());
    let ids: Vec<&Value> = run.states().iter().map(|s| &s["id"]).collect();
    assert_eq!(ids, [&json!(1)], "only the state before the rejection is released");
    let traces = run.of_type("TRACE");
    let error = &traces.last().expect("a TRACE error")["trace"]["error"];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("Could not store 1 rejected record in s3://missing-bucket/rejected"),
        "{message}"
    );
    assert!(message.contains("1 state was saved"), "{message}");
    assert_eq!(error["failure_type"], "config_error");

    // A server that does not answer: retried for max_retry_seconds, then the same refusal.
    drop(s3);
    let gone = json!({"storage_type": "S3", "s3_bucket_name": "b", "bucket_path": "p",
                      "s3_endpoint": "http://127.0.0.1:9", "access_key_id": "a", "secret_access_key": "s"});
    let run = write(&fake, gone, &catalog, &lines);
    assert_eq!(run.code, 1, "{}", run.logs());
    let ids: Vec<&Value> = run.states().iter().map(|s| &s["id"]).collect();
    assert_eq!(ids, [&json!(1)]);
    let traces = run.of_type("TRACE");
    let message = traces.last().unwrap()["trace"]["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("Could not store 1 rejected record"), "{message}");
}

#[test]
fn check_reports_a_bucket_it_cannot_write_to() {
    let s3 = S3Server::start();
    s3.create_bucket("writable");
    let fake = audience();
    let check = |storage: Value| {
        let files = Files::new(&config(json!({"object_storage_config": storage})), &catalog(vec![]));
        let run = run(&["check", "--config", &files.config()], "", Some(&fake.base_url()));
        assert_eq!(run.code, 0);
        run.lines[0]["connectionStatus"].clone()
    };
    let ok = check(s3.storage_config("writable", "rejected"));
    assert_eq!(ok["status"], "SUCCEEDED", "{ok}");
    assert!(ok["message"]
        .as_str()
        .unwrap()
        .contains("Rejected records can be written to s3://writable/rejected"));
    assert!(s3.objects("writable").is_empty(), "the check leaves nothing behind");

    let failed = check(s3.storage_config("no-such-bucket", "rejected"));
    assert_eq!(failed["status"], "FAILED");
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("s3://no-such-bucket/rejected") && message.contains("object_storage_config"),
        "{message}"
    );

    let none = check(json!({"storage_type": "None"}));
    assert_eq!(none["status"], "SUCCEEDED");
}
