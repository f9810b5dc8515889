//! End to end: `preview` reads the same input as `write`, writes nothing, and predicts exactly what a
//! following `write` against the same audience does.

mod common;
use common::*;
use destination_mailchimp::effects::Effects;
use fake_mailchimp::{FakeList, FakeMailchimp};
use serde_json::{json, Value};

const SAMPLE: &str = "integration_tests/messages.jsonl";

/// The demo's audience: one contact who unsubscribed.
fn demo_audience(list: &mut FakeList) {
    list.put_member("opted.out@brightmail.io", "unsubscribed", json!({}));
}

fn sample_catalog() -> Value {
    serde_json::from_str(&std::fs::read_to_string("integration_tests/configured_catalog.json").unwrap())
        .unwrap()
}

/// Runs `preview` to the end: (exit code, stdout, stderr). The key must appear in neither.
fn preview(fake: &FakeMailchimp, files: &Files, input: &str, json: bool) -> (i32, String, String) {
    let (config, catalog) = (files.config(), files.catalog());
    let mut args = vec!["preview", "--config", &config, "--catalog", &catalog];
    if json {
        args.push("--json");
    }
    run_for_people(&args, input, &fake.base_url())
}

fn preview_json(fake: &FakeMailchimp, files: &Files, input: &str) -> Value {
    let (code, stdout, stderr) = preview(fake, files, input, true);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn write(fake: &FakeMailchimp, files: &Files, input: &str) -> Run {
    let run = run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        input,
        Some(&fake.base_url()),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// Checks that the preview's counts are what `write` then reported and did.
fn assert_preview_matches_write(fake: &FakeMailchimp, files: &Files, input: &str) -> Value {
    let before = fake.requests().len();
    let report = preview_json(fake, files, input);
    let during: Vec<_> = fake.requests()[before..].to_vec();
    assert!(!during.is_empty());
    assert!(
        during.iter().all(|r| r.method == "GET"),
        "preview sent a write request: {:?}",
        during.iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>()
    );

    let groups_before = groups_by_label(fake);
    let run = write(fake, files, input);
    let (joined, left) = group_changes(&groups_before, &groups_by_label(fake));
    assert_eq!(report["groups_joined"], joined, "groups joined: preview vs the audience after write");
    assert_eq!(report["groups_left"], left, "groups left: preview vs the audience after write");
    let logs = run.logs();
    let summary = logs.lines().find(|l| l.starts_with("Sync finished")).unwrap().to_string();
    let expected = format!(
        "{} records read; {} contacts created, {} updated; {} records rejected",
        report["records"], report["created"], report["updated"], report["rejected"]
    );
    assert!(summary.contains(&expected), "preview: {expected}\nwrite: {summary}");
    let rejected: f64 =
        run.states().iter().map(|s| s["destinationStats"]["rejectedRecordCount"].as_f64().unwrap()).sum();
    assert_eq!(rejected, report["rejected"].as_f64().unwrap());

    let effects: Effects = serde_json::from_value(report.clone()).unwrap();
    let predicted = effects.lines("were");
    let reported: Vec<&str> = logs
        .lines()
        .filter(|l| {
            ["Status changes:", "Deletions at the source:", "Owned tags:"].iter().any(|p| l.starts_with(p))
        })
        .collect();
    assert_eq!(reported, predicted, "\n{logs}");
    report
}

/// Each contact's groups, as "Category › group" labels (the way preview names them).
fn groups_by_label(fake: &FakeMailchimp) -> std::collections::BTreeMap<String, Vec<String>> {
    fake.with_list(LIST, |list| {
        let labels: std::collections::HashMap<&str, String> = list
            .groups
            .categories
            .iter()
            .flat_map(|c| {
                c.interests.iter().map(move |i| (i.id.as_str(), format!("{} › {}", c.title, i.name)))
            })
            .collect();
        list.members
            .values()
            .filter(|m| m.status != "archived")
            .map(|m| {
                let on = m.interests.iter().filter(|(_, on)| **on).map(|(id, _)| labels[id.as_str()].clone());
                (m.email_address.to_lowercase(), on.collect())
            })
            .collect()
    })
}

/// Per group: how many contacts joined it and how many left it between two snapshots.
fn group_changes(
    before: &std::collections::BTreeMap<String, Vec<String>>,
    after: &std::collections::BTreeMap<String, Vec<String>>,
) -> (Value, Value) {
    let (mut joined, mut left) = (serde_json::Map::new(), serde_json::Map::new());
    let none = Vec::new();
    let bump = |map: &mut serde_json::Map<String, Value>, label: &String| {
        let count = map.get(label).and_then(Value::as_u64).unwrap_or(0) + 1;
        map.insert(label.clone(), json!(count));
    };
    for (email, groups) in after {
        let was = before.get(email).unwrap_or(&none);
        groups.iter().filter(|g| !was.contains(g)).for_each(|g| bump(&mut joined, g));
        was.iter().filter(|g| !groups.contains(g)).for_each(|g| bump(&mut left, g));
    }
    (Value::Object(joined), Value::Object(left))
}

#[test]
fn preview_of_groups_matches_the_write_that_follows() {
    let fake = fake_with(|list| {
        list.groups.add_category("Newsletter topics", "checkboxes", &["Product news", "Events", "Offers"]);
        list.put_member("carol@mail.io", "subscribed", json!({}));
        let events = list.groups.interest_id("Newsletter topics", "Events").unwrap();
        list.members
            .get_mut(&fake_mailchimp::audience::subscriber_hash("carol@mail.io"))
            .unwrap()
            .interests
            .insert(events, true);
    });
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let input = [
        record("users", None, json!({"email": "carol@mail.io", "newsletter_topics": "Offers"})),
        record(
            "users",
            None,
            json!({"email": "ada@mail.io", "newsletter_topics": ["Events", "product news"]}),
        ),
        record("users", None, json!({"email": "ada@mail.io", "newsletter_topics": ["Events"]})),
        record("users", None, json!({"email": "bob@mail.io", "newsletter_topics": null})),
    ]
    .join("\n");
    let (_, text, _) = preview(&fake, &files, &input, false);
    assert!(
        text.contains("Groups: 1 would join Newsletter topics › Events; 1 would join Newsletter topics › Offers; 1 would leave Newsletter topics › Events."),
        "{text}"
    );
    let report = assert_preview_matches_write(&fake, &files, &input);
    assert_eq!(
        report["groups_joined"],
        json!({"Newsletter topics › Events": 1, "Newsletter topics › Offers": 1})
    );
    assert_eq!(report["groups_left"], json!({"Newsletter topics › Events": 1}));
}

#[test]
fn preview_of_the_sample_matches_the_write_that_follows() {
    let fake = fake_with(demo_audience);
    let files = Files::new(&config(json!({"tags": "warehouse-sync, 2026-customers"})), &sample_catalog());
    let input = std::fs::read_to_string(SAMPLE).unwrap();
    let report = assert_preview_matches_write(&fake, &files, &input);
    assert_eq!((report["created"].as_u64(), report["updated"].as_u64()), (Some(4), Some(1)));
    assert_eq!(report["deletions_ignored"], 1);
    assert_eq!(report["lookup"], "lookups");
}

#[test]
fn preview_with_consent_settings_matches_the_write_that_follows() {
    let fake = fake_with(|list| {
        demo_audience(list);
        list.put_member("grace.hopper@navy-mail.org", "subscribed", json!({}));
    });
    fake.with_list(LIST, |list| list.set_tags_of("grace.hopper@navy-mail.org", &["plan:free", "vip"]));
    let files = Files::new(
        &config(json!({"tags": "plan:current", "status_field": "marketing_status", "on_delete": "archive",
                       "tag_mode": "owned", "owned_tag_prefix": "plan:"})),
        &sample_catalog(),
    );
    let input = std::fs::read_to_string(SAMPLE).unwrap();
    let report = assert_preview_matches_write(&fake, &files, &input);
    assert_eq!(report["unsubscribed"], 1, "grace opts out");
    assert_eq!(report["resubscribe_skipped"], 1, "opted.out stays unsubscribed");
    assert_eq!(report["archived"], 1, "alan is deleted at the source");
    assert_eq!(report["tags_removed"], 1, "grace's plan:free");
    assert_eq!(report["status_changes"], json!({"subscribed → unsubscribed": 1}));
    assert_eq!(fake.member(LIST, "opted.out@brightmail.io").unwrap().status, "unsubscribed");
    assert_eq!(fake.member(LIST, "alan.turing@bletchley.dev").unwrap().status, "archived");

    // The same input again: everything is in place, so nothing but updates is left to do.
    let again = assert_preview_matches_write(&fake, &files, &input);
    assert_eq!(again["tags_removed"], 0);
    assert_eq!(again["status_changes"], json!({}));
}

#[test]
fn a_large_audience_is_paged_instead_of_looked_up_one_by_one() {
    let fake = fake_with(|list| {
        for i in 0..2500 {
            let status = if i % 10 == 0 { "unsubscribed" } else { "subscribed" };
            list.put_member(&format!("member{i}@shop.io"), status, json!({}));
        }
    });
    let files = Files::new(
        &config(json!({"status_field": "consent", "batch_size": 50})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let mut input: Vec<String> = (0..200)
        .map(|i| {
            let consent = if i % 3 == 0 { "subscribed" } else { "" };
            record(
                "users",
                None,
                json!({"id": i, "email": format!("member{}@shop.io", i * 13), "consent": consent}),
            )
        })
        .collect();
    input.push(stream_state("users", None, 1, 200));
    let report = assert_preview_matches_write(&fake, &files, &(input.join("\n") + "\n"));
    assert_eq!(report["lookup"], "pages");
    let (_, _, stderr) = preview(&fake, &files, &(input.join("\n") + "\n"), true);
    assert!(stderr.contains("contacts in pages of 1000 to find their 200 contacts"), "{stderr}");
    assert_eq!(report["lookup_requests"], 3);
    assert!(report["resubscribe_skipped"].as_u64().unwrap() > 0);
    assert!(report["created"].as_u64().unwrap() > 0 && report["updated"].as_u64().unwrap() > 0);
}

#[test]
fn the_readable_report_names_each_kind_of_change() {
    let fake = fake_with(demo_audience);
    let files = Files::new(
        &config(json!({"status_field": "marketing_status", "on_delete": "archive"})),
        &sample_catalog(),
    );
    let input = std::fs::read_to_string(SAMPLE).unwrap();
    let (code, text, stderr) = preview(&fake, &files, &input, false);
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "Nothing was written.",
        "Read 9 records and 3 states: 5 distinct contacts",
        "Stream 'crm.customers': mapping fname → FNAME, lname → LNAME, phone → PHONE; not sent: newsletter_topics, plan, updated_at.",
        "Contacts: 4 would be created, 1 updated.",
        "Rejected records: 2.",
        "1 × the email field 'email' is null",
        "1 contact(s) would be unsubscribed as the source asks",
        "1 re-subscription(s) blocked by Mailchimp (the contact unsubscribed or bounced) would be skipped",
        "Deletions at the source: 1 contact(s) would be archived.",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
    assert!(fake.member(LIST, "ada.lovelace@brightmail.io").is_none());
}

#[test]
fn bad_input_or_config_fails_with_a_message_and_writes_nothing() {
    let fake = fake_with(demo_audience);
    let files = Files::new(&config(json!({})), &sample_catalog());
    let (code, stdout, stderr) = preview(&fake, &files, "{\"type\":\"RECORD\",\n", false);
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(stderr.contains("preview failed: Input line 1 is not an Airbyte message"), "{stderr}");

    let files = Files::new(&config(json!({"tag_mode": "owned"})), &sample_catalog());
    let (code, _, stderr) = preview(&fake, &files, "", false);
    assert_eq!(code, 1);
    assert!(stderr.contains("owned_tag_prefix"), "{stderr}");
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn preview_matches_write_when_records_of_one_contact_span_batches() {
    let fake = fake_with(|list| {
        list.add_merge_field("PLAN", "Plan", "text", true, json!({}));
        for (email, status) in
            [("a@shop.io", "subscribed"), ("b@shop.io", "unsubscribed"), ("c@shop.io", "cleaned")]
        {
            list.put_member(email, status, json!({"PLAN": "free"}));
        }
    });
    fake.with_list(LIST, |list| list.set_tags_of("a@shop.io", &["hp:old", "keep"]));
    let files = Files::new(
        &config(json!({"batch_size": 2, "status_field": "consent", "resubscribe_policy": "pending",
                       "on_delete": "archive", "tag_mode": "owned", "owned_tag_prefix": "hp:"})),
        &catalog(vec![stream("users", None, "append_dedup")]),
    );
    let deleted = "2026-11-20T00:00:00Z";
    let records = [
        json!({"id": 1, "email": "a@shop.io", "consent": "unsubscribed", "tags": ["hp:new"]}),
        json!({"id": 2, "email": "new@shop.io", "plan": "pro", "tags": "hp:x"}),
        json!({"id": 3, "email": "b@shop.io", "consent": "subscribed"}),
        json!({"id": 4, "email": "A@shop.io", "consent": "subscribed", "tags": ["hp:newer"]}),
        json!({"id": 5, "email": "noplan@shop.io"}),
        json!({"id": 6, "email": "c@shop.io", "consent": "subscribed", "_ab_cdc_deleted_at": null}),
        json!({"id": 7, "email": "new@shop.io", "_ab_cdc_deleted_at": deleted}),
        json!({"id": 8, "email": "gone@shop.io", "_ab_cdc_deleted_at": deleted}),
        json!({"id": 9, "email": "new@shop.io", "plan": "team"}),
        json!({"id": 10, "email": "b@shop.io", "consent": "unsubscribed"}),
    ];
    let mut input: Vec<String> = records.iter().map(|r| record("users", None, r.clone())).collect();
    input.push(stream_state("users", None, 1, records.len() as u64));
    let report = assert_preview_matches_write(&fake, &files, &(input.join("\n") + "\n"));
    assert_eq!(
        report["rejected_by_reason"],
        json!({"Mailchimp: the required merge field PLAN has no value": 1})
    );
    assert_eq!(report["resubscribe_pending"], 3, "a (unsubscribed by its first record), b and c");
    assert_eq!(report["archived"], 1);
    assert_eq!(report["already_gone"], 1);
    assert_eq!(
        fake.member(LIST, "a@shop.io").unwrap().status,
        "pending",
        "set to pending, never subscribed by force"
    );
    let mut tags = fake.member(LIST, "a@shop.io").unwrap().tags;
    tags.sort();
    assert_eq!(tags, vec!["hp:newer", "keep"]);
    assert_eq!(fake.member(LIST, "b@shop.io").unwrap().status, "unsubscribed");
    assert_eq!(fake.member(LIST, "new@shop.io").unwrap().status, "subscribed", "restored after the archive");
    assert!(
        fake.member(LIST, "new@shop.io").unwrap().tags.is_empty(),
        "hp:x, kept while archived, was stale"
    );
    assert!(
        fake.member(LIST, "new@shop.io").unwrap().tags.is_empty(),
        "hp:x, kept while archived, was stale"
    );
}

mod agreement {
    use super::*;
    use proptest::prelude::*;

    const EMAILS: [&str; 5] = ["p0@shop.io", "p1@shop.io", "P2@shop.io", "p3@shop.io", "p4@shop.io"];
    const STATUSES: [&str; 6] = ["absent", "subscribed", "unsubscribed", "cleaned", "pending", "archived"];
    const CONSENT: [Option<&str>; 5] =
        [None, Some("subscribed"), Some("unsubscribed"), Some("pending"), Some("")];
    const TAGS: [&str; 3] = ["hp:a", "hp:b", "x"];
    const ON_DELETE: [&str; 4] = ["ignore", "archive", "unsubscribe", "delete_permanently"];

    /// A record: which email, its consent value, which tags (bit set), deleted or not.
    type Rec = (usize, usize, u8, bool);

    /// The tags whose bits are set.
    fn chosen(bits: u8) -> Vec<&'static str> {
        TAGS.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, t)| *t).collect()
    }

    fn records() -> impl Strategy<Value = Vec<Rec>> {
        prop::collection::vec((0..EMAILS.len(), 0..CONSENT.len(), 0u8..8, prop::bool::weighted(0.2)), 1..14)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        /// For any audience, settings and input over a few contacts, `write` does what `preview` said.
        #[test]
        fn preview_and_write_agree(
            audience in prop::collection::vec((0..STATUSES.len(), 0u8..8), EMAILS.len()),
            records in records(),
            batch_size in 1u64..4,
            on_delete in 0..ON_DELETE.len(),
            pending in any::<bool>(),
        ) {
            let fake = fake_with(|list| {
                for (email, (status, tags)) in EMAILS.iter().zip(&audience) {
                    if STATUSES[*status] == "absent" {
                        continue;
                    }
                    list.put_member(email, STATUSES[*status], json!({}));
                    list.set_tags_of(email, &chosen(*tags));
                }
            });
            let files = Files::new(
                &config(json!({"batch_size": batch_size, "status_field": "consent", "on_delete": ON_DELETE[on_delete],
                               "resubscribe_policy": if pending { "pending" } else { "skip" },
                               "tag_mode": "owned", "owned_tag_prefix": "hp:"})),
                &catalog(vec![stream("users", None, "append_dedup")]),
            );
            let mut input: Vec<String> = records
                .iter()
                .enumerate()
                .map(|(i, (email, consent, tags, deleted))| {
                    let mut data = json!({"id": i, "email": EMAILS[*email]});
                    if let Some(consent) = CONSENT[*consent] {
                        data["consent"] = json!(consent);
                    }
                    data["tags"] = json!(chosen(*tags));
                    if *deleted {
                        data["_ab_cdc_deleted_at"] = json!("2026-11-20T00:00:00Z");
                    }
                    record("users", None, data)
                })
                .collect();
            input.push(stream_state("users", None, 1, records.len() as u64));
            assert_preview_matches_write(&fake, &files, &(input.join("\n") + "\n"));
        }
    }
}

#[test]
fn the_html_report_has_the_numbers_of_the_json_report_and_masked_examples() {
    let fake = Fake::start(vec![{
        let mut list = FakeList::with_default_fields(LIST, "Spring <Launch> & Co");
        demo_audience(&mut list);
        list
    }]);
    let files = Files::new(&config(json!({})), &catalog(vec![stream("users", None, "append_dedup")]));
    let input = [
        record("users", None, json!({"email": "ada@math.org", "first_name": "Ada"})),
        record("users", None, json!({"email": "not an address", "note": "see bob@corp.io"})),
        record("users", None, json!({"first_name": "No email"})),
    ]
    .join("\n");
    let html_path = files.path("report.html");
    let (config, catalog) = (files.config(), files.catalog());
    let args = ["preview", "--config", &config, "--catalog", &catalog, "--json", "--html", &html_path];
    let (code, stdout, stderr) = run_for_people(&args, &input, &fake.base_url());
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let html = std::fs::read_to_string(&html_path).unwrap();
    for key in ["records", "contacts", "created", "updated", "rejected"] {
        let marked = format!("<span data-count=\"{key}\">{}</span>", report[key]);
        assert!(html.contains(&marked), "{marked} missing from the page");
    }
    assert_eq!(report["rejected"], 2);
    assert!(html.contains("Spring &lt;Launch&gt; &amp; Co"), "the audience's name is escaped");
    let examples = report["rejected_examples"].as_object().unwrap();
    assert_eq!(examples.values().map(|v| v.as_array().unwrap().len()).sum::<usize>(), 2, "{examples:?}");
    assert!(
        !html.contains("bob@corp.io") && html.contains("b***@corp.io"),
        "addresses in examples are masked"
    );
    assert!(!html.contains("<script"), "the page runs no script");
}
