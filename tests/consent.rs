//! End to end: status intents, blocked re-subscriptions, deletions at the source and owned tags,
//! through the built binary against the fake Mailchimp API.

mod common;
use common::*;
use fake_mailchimp::{FakeMailchimp, RecordedRequest};
use serde_json::{json, Value};

fn write(fake: &FakeMailchimp, extra: Value, records: &[Value]) -> Run {
    let files = Files::new(&config(extra), &catalog(vec![stream("users", None, "append_dedup")]));
    let mut input: Vec<String> = records.iter().map(|data| record("users", None, data.clone())).collect();
    input.push(stream_state("users", None, 1, records.len() as u64));
    let run = run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        &(input.join("\n") + "\n"),
        Some(&fake.base_url()),
    );
    assert_eq!(run.code, 0, "{:?}\n{}", run.lines, run.stderr);
    run
}

/// The one STATE echoed, as (recordCount, rejectedRecordCount).
fn state_counts(run: &Run) -> (f64, f64) {
    let states = run.states();
    assert_eq!(states.len(), 1, "{:?}", run.lines);
    let stats = &states[0]["destinationStats"];
    (stats["recordCount"].as_f64().unwrap(), stats["rejectedRecordCount"].as_f64().unwrap())
}

fn batch_members(fake: &FakeMailchimp) -> Vec<Value> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == format!("/3.0/lists/{LIST}"))
        .flat_map(|r| r.body["members"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Requests other than batch subscribe and the reads of the audience a sync starts with.
fn per_contact_requests(fake: &FakeMailchimp) -> Vec<RecordedRequest> {
    fake.requests().into_iter().filter(|r| r.path.contains("/members/")).collect()
}

fn status_of(fake: &FakeMailchimp, email: &str) -> String {
    fake.member(LIST, email).map(|m| m.status).unwrap_or_else(|| "absent".into())
}

fn set_tags(fake: &FakeMailchimp, email: &str, tags: &[&str]) {
    fake.with_list(LIST, |list| list.set_tags_of(email, tags));
}

#[test]
fn without_the_new_settings_nothing_changes() {
    let fake = fake_with(|list| {
        list.put_member("left@mail.io", "unsubscribed", json!({}));
        list.put_member("kept@mail.io", "subscribed", json!({}));
    });
    set_tags(&fake, "kept@mail.io", &["hp:old", "vip"]);
    let run = write(
        &fake,
        json!({}),
        &[
            json!({"id": 1, "email": "left@mail.io", "status": "subscribed", "fname": "Left"}),
            json!({"id": 2, "email": "kept@mail.io", "_ab_cdc_deleted_at": "2026-11-20T10:00:00Z"}),
            json!({"id": 3, "email": "new@mail.io", "status": "unsubscribed", "tags": ["hp:new"]}),
        ],
    );
    assert!(batch_members(&fake).iter().all(|m| m.get("status").is_none()), "no status is ever sent");
    assert!(per_contact_requests(&fake).is_empty(), "nothing archived, deleted or untagged");
    assert_eq!(status_of(&fake, "left@mail.io"), "unsubscribed");
    assert_eq!(fake.member(LIST, "left@mail.io").unwrap().merge_fields["FNAME"], "Left");
    assert_eq!(status_of(&fake, "kept@mail.io"), "subscribed");
    assert_eq!(fake.member(LIST, "kept@mail.io").unwrap().tags, vec!["hp:old", "vip"]);
    assert_eq!(status_of(&fake, "new@mail.io"), "subscribed");
    assert_eq!(state_counts(&run), (3.0, 0.0));
    let logs = run.logs();
    assert!(logs.contains("1 deleted record(s) were left alone (on_delete is ignore)"), "{logs}");
    assert!(!logs.contains("Status changes"), "{logs}");
}

#[test]
fn an_opt_out_in_the_source_unsubscribes_the_contact() {
    let fake = fake_with(|list| {
        list.put_member("ada@mail.io", "subscribed", json!({"FNAME": "Ada"}));
        list.put_member("grace@mail.io", "pending", json!({}));
    });
    let run = write(
        &fake,
        json!({"status_field": "consent", "status_if_new": "pending"}),
        &[
            json!({"id": 1, "email": "ada@mail.io", "consent": " Unsubscribed "}),
            json!({"id": 2, "email": "new.out@mail.io", "consent": "unsubscribed"}),
            json!({"id": 3, "email": "grace@mail.io", "consent": "SUBSCRIBED"}),
            json!({"id": 4, "email": "new.in@mail.io", "consent": ""}),
            json!({"id": 5, "email": "odd@mail.io", "consent": "maybe later"}),
            json!({"id": 6, "email": "receipts@mail.io", "consent": "transactional"}),
        ],
    );
    assert_eq!(status_of(&fake, "ada@mail.io"), "unsubscribed");
    assert_eq!(fake.member(LIST, "ada@mail.io").unwrap().merge_fields["FNAME"], "Ada");
    assert_eq!(status_of(&fake, "new.out@mail.io"), "unsubscribed");
    assert_eq!(status_of(&fake, "grace@mail.io"), "subscribed");
    assert_eq!(status_of(&fake, "new.in@mail.io"), "pending", "an empty value falls back to status_if_new");
    assert_eq!(status_of(&fake, "odd@mail.io"), "pending");
    assert_eq!(status_of(&fake, "receipts@mail.io"), "transactional");
    assert_eq!(state_counts(&run), (6.0, 0.0));
    let logs = run.logs();
    assert!(logs.contains("Statuses come from the field 'consent'"), "{logs}");
    assert!(
        logs.contains("Status changes: 2 contact(s) were unsubscribed as the source asks; 1 contact(s) were set to subscribed"),
        "{logs}"
    );
    assert!(logs.contains("'maybe later' × 1"), "{logs}");
    // The status field is not sent as a merge field or anything else.
    assert!(batch_members(&fake).iter().all(|m| !m.to_string().contains("consent")));
}

#[test]
fn a_blocked_resubscription_is_skipped_by_default_and_reported() {
    let fake = fake_with(|list| {
        list.put_member("left@mail.io", "unsubscribed", json!({"FNAME": "Old"}));
        list.put_member("bounced@mail.io", "cleaned", json!({}));
    });
    let run = write(
        &fake,
        json!({"status_field": "consent"}),
        &[
            json!({"id": 1, "email": "left@mail.io", "consent": "subscribed", "fname": "New"}),
            json!({"id": 2, "email": "bounced@mail.io", "consent": "subscribed", "fname": "B"}),
            json!({"id": 3, "email": "fresh@mail.io", "consent": "subscribed"}),
        ],
    );
    let left = fake.member(LIST, "left@mail.io").unwrap();
    assert_eq!((left.status.as_str(), &left.merge_fields["FNAME"]), ("unsubscribed", &json!("New")));
    let bounced = fake.member(LIST, "bounced@mail.io").unwrap();
    assert_eq!((bounced.status.as_str(), &bounced.merge_fields["FNAME"]), ("cleaned", &json!("B")));
    assert_eq!(status_of(&fake, "fresh@mail.io"), "subscribed");
    assert_eq!(state_counts(&run), (3.0, 0.0));
    let logs = run.logs();
    assert!(logs.contains("2 re-subscription(s) blocked by Mailchimp"), "{logs}");
    assert!(logs.contains("were skipped"), "{logs}");
    assert!(logs.contains("1 contacts created, 2 updated"), "{logs}");
    // The second try for the two sends no status at all.
    let resent: Vec<Value> =
        batch_members(&fake).into_iter().filter(|m| m["email_address"] == "left@mail.io").collect();
    assert_eq!(resent.len(), 2);
    assert_eq!(resent[0]["status"], "subscribed");
    assert!(resent[1].get("status").is_none());
}

#[test]
fn a_blocked_resubscription_becomes_pending_with_that_policy() {
    let fake = fake_with(|list| list.put_member("left@mail.io", "unsubscribed", json!({})));
    let run = write(
        &fake,
        json!({"status_field": "consent", "resubscribe_policy": "pending"}),
        &[json!({"id": 1, "email": "left@mail.io", "consent": "subscribed", "fname": "Back"})],
    );
    let left = fake.member(LIST, "left@mail.io").unwrap();
    assert_eq!((left.status.as_str(), &left.merge_fields["FNAME"]), ("pending", &json!("Back")));
    assert_eq!(state_counts(&run), (1.0, 0.0));
    run.assert_logged("1 re-subscription(s) blocked by Mailchimp were set to pending");
}

#[test]
fn archive_applies_in_input_order_and_a_missing_contact_is_already_gone() {
    let fake = fake_with(|list| {
        list.put_member("leaver@mail.io", "subscribed", json!({}));
        list.put_member("back@mail.io", "subscribed", json!({}));
    });
    let deleted =
        |id: u64, email: &str| json!({"id": id, "email": email, "_ab_cdc_deleted_at": "2026-11-20"});
    let run = write(
        &fake,
        json!({"on_delete": "archive"}),
        &[
            deleted(1, "leaver@mail.io"),
            deleted(2, "never@mail.io"),
            json!({"id": 3, "email": "late@mail.io", "fname": "Late"}),
            deleted(4, "late@mail.io"),
            deleted(5, "back@mail.io"),
            json!({"id": 6, "email": "back@mail.io", "fname": "Back"}),
        ],
    );
    assert_eq!(status_of(&fake, "leaver@mail.io"), "archived");
    assert_eq!(status_of(&fake, "never@mail.io"), "absent");
    assert_eq!(status_of(&fake, "late@mail.io"), "archived", "the upsert, then the archive");
    assert_eq!(status_of(&fake, "back@mail.io"), "subscribed", "the archive, then the upsert restores");
    assert_eq!(fake.member(LIST, "back@mail.io").unwrap().merge_fields["FNAME"], "Back");
    assert_eq!(state_counts(&run), (6.0, 0.0));
    run.assert_logged("3 contact(s) were archived; 1 contact(s) were already gone");
}

#[test]
fn unsubscribe_on_delete_unsubscribes_and_permanent_deletion_is_never_undone() {
    let fake = fake_with(|list| {
        list.put_member("quit@mail.io", "subscribed", json!({"FNAME": "Q"}));
        list.put_member("erase@mail.io", "subscribed", json!({}));
    });
    let run = write(
        &fake,
        json!({"on_delete": "unsubscribe"}),
        &[json!({"id": 1, "email": "quit@mail.io", "fname": null, "_ab_cdc_deleted_at": 1795687418000u64})],
    );
    assert_eq!(status_of(&fake, "quit@mail.io"), "unsubscribed");
    assert_eq!(fake.member(LIST, "quit@mail.io").unwrap().merge_fields["FNAME"], "Q");
    run.assert_logged("Deletions at the source: 1 contact(s) were unsubscribed.");

    let erase = json!({"id": 2, "email": "erase@mail.io", "_ab_cdc_deleted_at": "2026-11-20"});
    let run = write(&fake, json!({"on_delete": "delete_permanently"}), &[erase]);
    assert_eq!(status_of(&fake, "erase@mail.io"), "absent");
    run.assert_logged("1 contact(s) were permanently deleted");

    // The address can never come back through the API: reported, not retried.
    let before = fake.requests().len();
    let run = write(&fake, json!({}), &[json!({"id": 2, "email": "erase@mail.io"})]);
    assert_eq!(state_counts(&run), (0.0, 1.0));
    run.assert_logged("was permanently deleted and cannot be re-imported");
    let batches = fake.requests()[before..].iter().filter(|r| r.method == "POST").count();
    assert_eq!(batches, 1, "a forgotten address is not sent again");
    assert_eq!(status_of(&fake, "erase@mail.io"), "absent");
}

#[test]
fn owned_tag_mode_removes_exactly_the_stale_prefixed_tags() {
    let fake = fake_with(|list| {
        list.put_member("ada@mail.io", "subscribed", json!({}));
        list.put_member("grace@mail.io", "subscribed", json!({}));
    });
    set_tags(&fake, "ada@mail.io", &["hp:gold", "hp:2025", "vip", "newsletter"]);
    set_tags(&fake, "grace@mail.io", &["hp:2025", "other"]);
    let run = write(
        &fake,
        json!({"tag_mode": "owned", "owned_tag_prefix": "hp:", "tags": "hp:synced, crm"}),
        &[
            json!({"id": 1, "email": "ada@mail.io", "tags": ["hp:2025", "hp:new"]}),
            json!({"id": 2, "email": "grace@mail.io", "tags": "hp:a"}),
            json!({"id": 3, "email": "grace@mail.io", "tags": "hp:2025"}),
            json!({"id": 4, "email": "new@mail.io", "tags": ["hp:x"]}),
        ],
    );
    let tags = |email: &str| {
        let mut tags = fake.member(LIST, email).unwrap().tags;
        tags.sort();
        tags
    };
    assert_eq!(tags("ada@mail.io"), vec!["crm", "hp:2025", "hp:new", "hp:synced", "newsletter", "vip"]);
    assert_eq!(tags("grace@mail.io"), vec!["crm", "hp:2025", "hp:synced", "other"], "the later record wins");
    assert_eq!(tags("new@mail.io"), vec!["crm", "hp:synced", "hp:x"]);
    let removals = per_contact_requests(&fake);
    assert_eq!(removals.len(), 1, "only ada had stale owned tags");
    assert_eq!(
        removals[0].body,
        json!({"tags": [{"name": "hp:gold", "status": "inactive"}], "is_syncing": true})
    );
    assert_eq!(state_counts(&run), (4.0, 0.0));
    run.assert_logged("Owned tags: 1 stale tag(s) were removed from 1 contact(s)");
}

#[test]
fn archives_and_tag_removals_are_retried_like_batches() {
    use fake_mailchimp::{Fault, Target};
    let setup = |list: &mut fake_mailchimp::FakeList| {
        for email in ["a@mail.io", "b@mail.io", "c@mail.io"] {
            list.put_member(email, "subscribed", json!({}));
            list.set_tags_of(email, &["hp:old", "keep"]);
        }
    };
    let settings = json!({"on_delete": "archive", "tag_mode": "owned", "owned_tag_prefix": "hp:"});
    let records = [
        json!({"id": 1, "email": "a@mail.io", "tags": ["hp:new"]}),
        json!({"id": 2, "email": "b@mail.io", "_ab_cdc_deleted_at": "2026-11-20"}),
        json!({"id": 3, "email": "c@mail.io", "tags": []}),
    ];
    let calm = fake_with(setup);
    write(&calm, settings.clone(), &records);

    let faulty = fake_with(setup);
    faulty.inject(
        Target::Contacts,
        &[
            Fault::TooManyRequests { body: false, retry_after_seconds: None },
            Fault::InternalServerError,
            Fault::ResetMidResponse,
            Fault::ForbiddenWithoutBody,
        ],
    );
    let run = write(&faulty, settings, &records);
    assert_eq!(faulty.faults_remaining(), 0, "every fault was met");
    assert_eq!(state_counts(&run), (3.0, 0.0));
    assert_eq!(faulty.members(LIST), calm.members(LIST), "the same audience as without faults");
    run.assert_logged("attempt 1; retrying");
    let tags = |email: &str| {
        let mut tags = faulty.member(LIST, email).unwrap().tags;
        tags.sort();
        tags
    };
    assert_eq!(tags("a@mail.io"), vec!["hp:new", "keep"]);
    assert_eq!(tags("c@mail.io"), vec!["keep"]);
    assert_eq!(status_of(&faulty, "b@mail.io"), "archived");
}
