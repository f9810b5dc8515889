//! End to end: `write` through the built binary against the fake Mailchimp API, checking every
//! stdout line and the resulting audience.

mod common;
use common::*;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

/// What a sequence of records should leave in Mailchimp: applied one after another.
/// A contact's expected email spelling, merge fields and tags.
type Contact = (String, Map<String, Value>, HashSet<String>);

#[derive(Default)]
struct Expected {
    contacts: BTreeMap<String, Contact>,
}

impl Expected {
    fn apply(&mut self, email: &str, merge_fields: Map<String, Value>, tags: &[&str]) {
        let entry = self.contacts.entry(email.to_lowercase()).or_default();
        entry.0 = email.to_string();
        entry.1.extend(merge_fields);
        entry.2.extend(tags.iter().map(|t| t.to_string()));
    }
}

fn write_args(files: &Files) -> Vec<String> {
    vec!["write".into(), "--config".into(), files.config(), "--catalog".into(), files.catalog()]
}

fn run_write(files: &Files, input: &str, base_url: &str) -> Run {
    let args = write_args(files);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&args, input, Some(base_url))
}

fn batch_requests(fake: &fake_mailchimp::FakeMailchimp) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == format!("/3.0/lists/{LIST}"))
        .map(|r| r.body)
        .collect()
}

#[test]
fn a_large_sync_leaves_deduplicated_contacts_and_echoes_every_state_once_in_order() {
    let fake = fake();
    // Answers overtake each other, so a later batch could land first if the connector let it.
    fake.set_latency(Duration::from_millis(5));
    fake.set_latency_jitter(Duration::from_millis(60));
    let files = Files::new(
        &config(json!({"tags": "warehouse, sync ,", "batch_size": 100, "max_concurrent_requests": 5})),
        &catalog(vec![stream("users", Some("crm"), "append_dedup"), stream("leads", None, "append_dedup")]),
    );

    let mut input = Vec::new();
    let mut expected = Expected::default();
    // Independent model of the counts each state must carry: records since the state that last covered them.
    let mut open: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut expected_states: Vec<(Value, u64, u64)> = Vec::new();
    let mut state_id = 100;
    for i in 0..1300u64 {
        let person = (i * 7) % 300;
        let email = match i % 4 {
            0 => format!("Person{person}@Mail{}.io", person % 3),
            _ => format!("person{person}@mail{}.io", person % 3),
        };
        let (name, ns) = if i % 3 == 0 { ("leads", None) } else { ("users", Some("crm")) };
        let mut data = json!({"id": i, "email": email, "fname": format!("F{i}"), "updated_at": i});
        let mut accepted = true;
        if i % 101 == 0 {
            data = json!({"id": i, "fname": "nobody"});
            accepted = false;
        } else if i % 103 == 0 {
            // Passes the connector's shape check; Mailchimp refuses it inside its 200 answer.
            data["email"] = json!(format!("bad{i},x@mail.io"));
            accepted = false;
        } else {
            if i % 2 == 0 {
                data["lname"] = json!(format!("L{i}"));
            }
            data["tags"] = json!([format!("t{}", i % 5)]);
            let mut fields = Map::new();
            fields.insert("FNAME".into(), json!(format!("F{i}")));
            if i % 2 == 0 {
                fields.insert("LNAME".into(), json!(format!("L{i}")));
            }
            let tag = format!("t{}", i % 5);
            expected.apply(&email, fields, &["warehouse", "sync", &tag]);
        }
        let counts = open.entry(name).or_default();
        if accepted {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        input.push(record(name, ns, data));

        state_id += 1;
        if i % 97 == 96 {
            let counts = open.remove(name).unwrap_or_default();
            let line = stream_state(name, ns, state_id, counts.0 + counts.1);
            expected_states.push((
                serde_json::from_str::<Value>(&line).unwrap()["state"].clone(),
                counts.0,
                counts.1,
            ));
            input.push(line);
        } else if i % 250 == 249 || i % 400 == 399 {
            let (a, r) = open.drain().fold((0, 0), |(a, r), (_, (x, y))| (a + x, r + y));
            let state = if i % 250 == 249 {
                json!({"type": "GLOBAL", "global": {"shared_state": {"lsn": i}, "stream_states": []}, "sourceStats": {"recordCount": (a + r) as f64}, "id": state_id})
            } else {
                json!({"type": "LEGACY", "data": {"cursor": i}, "sourceStats": {"recordCount": (a + r) as f64}, "id": state_id})
            };
            expected_states.push((state.clone(), a, r));
            input.push(json!({"type": "STATE", "state": state}).to_string());
        }
    }
    input.push(r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":1.0,"stream_status":{"stream_descriptor":{"name":"users","namespace":"crm"},"status":"COMPLETE"}}}"#.into());

    let run = run_write(&files, &(input.join("\n") + "\n"), &fake.base_url());
    assert_eq!(run.code, 0, "{}", run.stderr);

    // Every state exactly once, in order, every field kept, with the right counts as floats.
    let states = run.states();
    assert_eq!(states.len(), expected_states.len());
    for (got, (sent, accepted, rejected)) in states.iter().zip(&expected_states) {
        let mut without_stats = (*got).clone();
        let stats = without_stats.as_object_mut().unwrap().remove("destinationStats").unwrap();
        assert_eq!(&without_stats, sent);
        assert!(stats["recordCount"].is_f64() && stats["rejectedRecordCount"].is_f64());
        assert_eq!(
            (stats["recordCount"].as_f64().unwrap(), stats["rejectedRecordCount"].as_f64().unwrap()),
            (*accepted as f64, *rejected as f64),
            "state {}",
            sent["id"]
        );
    }

    // Exactly the deduplicated contacts, with the values of applying the records in order.
    let members = fake.members(LIST);
    assert_eq!(members.len(), expected.contacts.len());
    for member in &members {
        let (_, fields, tags) = &expected.contacts[&member.email_address.to_lowercase()];
        assert_eq!(&member.merge_fields, fields, "{}", member.email_address);
        assert_eq!(member.tags.iter().cloned().collect::<HashSet<_>>(), *tags);
        assert_eq!(member.status, "subscribed");
    }

    // No request over 500 members, no email twice in a request, never a `status`.
    let requests = batch_requests(&fake);
    assert!(requests.len() >= 10);
    for body in &requests {
        assert_eq!(body["update_existing"], true);
        let batch = body["members"].as_array().unwrap();
        assert!(batch.len() <= 100);
        let emails: HashSet<String> =
            batch.iter().map(|m| m["email_address"].as_str().unwrap().to_lowercase()).collect();
        assert_eq!(emails.len(), batch.len(), "an email repeated within one request");
        assert!(batch.iter().all(|m| m.get("status").is_none() && m["status_if_new"] == "subscribed"));
    }
    assert!(fake.peak_in_flight() <= 5, "peak {}", fake.peak_in_flight());
    let logs = run.logs();
    assert!(logs.contains("Sync finished in"), "{logs}");
    assert!(logs.contains("records rejected"), "{logs}");
    let summary = logs.lines().find(|l| l.starts_with("Sync finished")).unwrap();
    let first_write: f64 = summary
        .split("First write request sent ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or_else(|| panic!("the time to the first write: {summary}"));
    assert!((0.0..30.0).contains(&first_write), "{summary}");
    assert!(!logs.contains("bad1") && logs.contains("b***@mail.io"), "rejected emails are masked: {logs}");
}

#[test]
fn states_are_echoed_only_after_mailchimp_answered_every_record_before_them() {
    let fake = fake();
    fake.set_latency(Duration::from_millis(250));
    let files = Files::new(
        &config(json!({"batch_size": 10, "max_concurrent_requests": 3})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let mut input = String::new();
    let mut emails_before_state: HashMap<u64, Vec<String>> = HashMap::new();
    let mut seen = Vec::new();
    for i in 0..90u64 {
        let email = format!("reader{i}@news.io");
        input += &(record("users", None, json!({"email": email, "fname": "R"})) + "\n");
        seen.push(email);
        if i % 7 == 6 {
            emails_before_state.insert(i, seen.clone());
            input += &(stream_state("users", None, i, 7) + "\n");
        }
    }
    let args = write_args(&files);
    let mut child = spawn(&args.iter().map(String::as_str).collect::<Vec<_>>(), Some(&fake.base_url()));
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut checked = 0;
    for line in lines_of(&mut child) {
        let message = parse_protocol_line(&line);
        if message["type"] == "STATE" {
            let id = message["state"]["id"].as_u64().unwrap();
            let present: HashSet<String> = fake.members(LIST).into_iter().map(|m| m.email_address).collect();
            for email in &emails_before_state[&id] {
                assert!(
                    present.contains(email),
                    "state {id} was echoed before Mailchimp answered for {email}"
                );
            }
            checked += 1;
        }
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(checked, emails_before_state.len());
}

#[test]
fn a_later_batch_with_the_same_email_waits_for_the_earlier_one() {
    let fake = fake();
    // The first batch is answered slowly; the second would overtake it if it were sent at once.
    fake.delay_next_batches(&[Duration::from_millis(600)]);
    let files = Files::new(
        &config(json!({"batch_size": 2, "max_concurrent_requests": 4})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let input = [
        record("users", None, json!({"email": "same@mail.io", "fname": "First"})),
        record("users", None, json!({"email": "other@mail.io", "fname": "O"})),
        record("users", None, json!({"email": "Same@mail.io", "fname": "Last"})),
        record("users", None, json!({"email": "third@mail.io", "fname": "T"})),
    ]
    .join("\n");
    let run = run_write(&files, &input, &fake.base_url());
    assert_eq!(run.code, 0);
    assert_eq!(fake.member(LIST, "same@mail.io").unwrap().merge_fields["FNAME"], "Last");
    let posts: Vec<_> = fake.requests().into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 2);
    assert!(
        posts[1].received_ms >= posts[0].answered_ms,
        "the second batch was sent before the first was answered"
    );
}

#[test]
fn an_unsubscribed_contact_stays_unsubscribed() {
    let fake = fake_with(|list| list.put_member("left@mail.io", "unsubscribed", json!({"FNAME": "Old"})));
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let input = [
        record("users", None, json!({"email": "LEFT@mail.io", "fname": "New"})),
        record("users", None, json!({"email": "new@mail.io"})),
    ]
    .join("\n");
    let run = run_write(&files, &input, &fake.base_url());
    assert_eq!(run.code, 0);
    let left = fake.member(LIST, "left@mail.io").unwrap();
    assert_eq!(left.status, "unsubscribed");
    assert_eq!(left.merge_fields["FNAME"], "New");
    assert_eq!(fake.member(LIST, "new@mail.io").unwrap().status, "subscribed");
    for body in batch_requests(&fake) {
        assert!(body["members"].as_array().unwrap().iter().all(|m| m.get("status").is_none()));
    }
}

#[test]
fn status_if_new_applies_only_to_new_contacts() {
    let fake = fake_with(|list| list.put_member("old@mail.io", "subscribed", json!({})));
    let files = Files::new(
        &config(json!({"status_if_new": "pending"})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let input = [
        record("users", None, json!({"email": "old@mail.io"})),
        record("users", None, json!({"email": "fresh@mail.io"})),
    ]
    .join("\n");
    assert_eq!(run_write(&files, &input, &fake.base_url()).code, 0);
    assert_eq!(fake.member(LIST, "old@mail.io").unwrap().status, "subscribed");
    assert_eq!(fake.member(LIST, "fresh@mail.io").unwrap().status, "pending");
}

#[test]
fn a_stream_in_another_mode_fails_before_reading_input() {
    let fake = fake();
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", Some("crm"), "overwrite")]));
    let run =
        run_write(&files, &record("users", Some("crm"), json!({"email": "a@mail.io"})), &fake.base_url());
    assert_ne!(run.code, 0);
    let traces = run.of_type("TRACE");
    assert_eq!(traces.len(), 1);
    let error = &traces[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("Stream 'crm.users' uses the destination sync mode 'overwrite'"));
    assert!(error["message"].as_str().unwrap().contains("append_dedup"));
    assert!(fake.requests().is_empty());
}

#[test]
fn a_rejected_key_fails_the_sync_as_a_config_error_without_states() {
    let fake = fake();
    let files = Files::new(
        &config(json!({"api_key": "0000000000000000000000000000dead-us6"})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let input =
        [record("users", None, json!({"email": "a@mail.io"})), stream_state("users", None, 1, 1)].join("\n");
    let run = run_write(&files, &input, &fake.base_url());
    assert_eq!(run.code, 1);
    assert!(run.states().is_empty());
    let traces = run.of_type("TRACE");
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0]["trace"]["error"]["failure_type"], "config_error");
    assert!(traces[0]["trace"]["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Mailchimp rejected the API key (401 API Key Invalid)."));
}

#[test]
fn a_permanent_failure_mid_sync_keeps_committed_states_and_emits_no_later_one() {
    let fake = fake();
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let first = [record("users", None, json!({"email": "first@mail.io"})), stream_state("users", None, 1, 1)];
    let (mut child, mut stdin) = start_write(&files, &fake.base_url(), &first);
    let mut lines = lines_of(&mut child);
    let mut out = Vec::new();
    for line in lines.by_ref() {
        let message = parse_protocol_line(&line);
        let is_state = message["type"] == "STATE";
        out.push(message);
        if is_state {
            break;
        }
    }
    fake.remove_list(LIST);
    writeln!(
        stdin,
        "{}\n{}",
        record("users", None, json!({"email": "second@mail.io"})),
        stream_state("users", None, 2, 1)
    )
    .unwrap();
    drop(stdin);
    out.extend(lines.map(|l| parse_protocol_line(&l)));
    assert_eq!(child.wait().unwrap().code(), Some(1));
    let states: Vec<&Value> = out.iter().filter(|m| m["type"] == "STATE").collect();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0]["state"]["id"], 1);
    let traces: Vec<&Value> = out.iter().filter(|m| m["type"] == "TRACE").collect();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0]["trace"]["error"]["failure_type"], "config_error");
    assert!(traces[0]["trace"]["error"]["message"].as_str().unwrap().contains("No audience with List ID"));
}

#[test]
fn records_without_email_and_unknown_streams_are_rejected_and_counted() {
    let fake = fake();
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let input = [
        record("users", None, json!({"email": "ok@mail.io"})),
        record("users", None, json!({"name": "no email"})),
        record("users", None, json!("not an object")),
        record("orders", None, json!({"email": "o@mail.io"})),
        record("orders", None, json!({"email": "p@mail.io"})),
        json!({"type": "STATE", "state": {"type": "GLOBAL", "global": {"stream_states": []}, "id": 9}})
            .to_string(),
    ]
    .join("\n");
    let run = run_write(&files, &input, &fake.base_url());
    assert_eq!(run.code, 0);
    let states = run.states();
    assert_eq!(states[0]["destinationStats"], json!({"recordCount": 1.0, "rejectedRecordCount": 4.0}));
    let logs = run.logs();
    assert_eq!(logs.matches("Skipping records of stream 'orders'").count(), 1, "{logs}");
    assert!(logs.contains("the record has no email field"), "{logs}");
    assert_eq!(fake.members(LIST).len(), 1);
}

#[test]
fn a_line_that_is_not_a_message_fails_after_releasing_committed_states() {
    let fake = fake();
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let input = [
        record("users", None, json!({"email": "a@mail.io"})),
        stream_state("users", None, 1, 1),
        record("users", None, json!({"email": "b@mail.io"})),
        "this is not json, reach carol@mail.io".to_string(),
        record("users", None, json!({"email": "c@mail.io"})),
        stream_state("users", None, 2, 2),
    ]
    .join("\n");
    let run = run_write(&files, &input, &fake.base_url());
    assert_eq!(run.code, 1);
    assert_eq!(run.states().len(), 1);
    let traces = run.of_type("TRACE");
    assert_eq!(traces.len(), 1);
    let message = traces[0]["trace"]["error"]["message"].as_str().unwrap();
    assert_eq!(traces[0]["trace"]["error"]["failure_type"], "system_error");
    assert!(message.starts_with("Input line 4 is not an Airbyte message"), "{message}");
    assert!(message.contains("c***@mail.io") && !message.contains("carol"), "{message}");
    assert!(fake.member(LIST, "b@mail.io").is_some(), "records before the bad line are still written");
    assert!(fake.member(LIST, "c@mail.io").is_none());
}

#[test]
fn empty_input_and_a_sync_without_states_finish_cleanly() {
    let fake = fake();
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let run = run_write(&files, "", &fake.base_url());
    assert_eq!(run.code, 0);
    assert!(run.states().is_empty());
    assert!(!run.logs().contains("First write request"), "nothing was written: {}", run.logs());
    let run = run_write(&files, &record("users", None, json!({"email": "solo@mail.io"})), &fake.base_url());
    assert_eq!(run.code, 0);
    assert!(fake.member(LIST, "solo@mail.io").is_some(), "records after the last state are still written");
}

#[test]
fn a_slow_source_gets_its_states_back_without_closing_input() {
    let fake = fake();
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let first = [record("users", None, json!({"email": "slow@mail.io"})), stream_state("users", None, 1, 1)];
    let (mut child, stdin) = start_write(&files, &fake.base_url(), &first);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut lines = lines_of(&mut child);
    std::thread::spawn(move || {
        for line in lines.by_ref() {
            let _ = tx.send(line);
        }
    });
    // Liveness, not timing: the state must come back while stdin is still open (generous bound).
    let state = loop {
        let line =
            rx.recv_timeout(Duration::from_secs(60)).expect("a state while the source is still sending");
        let message = parse_protocol_line(&line);
        if message["type"] == "STATE" {
            break message;
        }
    };
    assert_eq!(state["state"]["id"], 1);
    assert!(fake.member(LIST, "slow@mail.io").is_some());
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
