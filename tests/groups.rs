//! End-to-end: group categories mapped by name — a column of group names becomes the contact's
//! whole selection in its category, by Mailchimp's interest ids — through the built binary against
//! the fake Mailchimp API.

mod common;

use common::*;
use fake_mailchimp::audience::subscriber_hash;
use fake_mailchimp::FakeList;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn audience(list: &mut FakeList) {
    list.groups.add_category("Newsletter topics", "checkboxes", &["Product news", "Events", "Offers"]);
    list.groups.add_category("Membership", "radio", &["Gold", "Silver"]);
    list.put_member("carol@mail.io", "subscribed", json!({"FNAME": "Carol"}));
    let events = list.groups.interest_id("Newsletter topics", "Events").unwrap();
    let carol = list.members.get_mut(&subscriber_hash("carol@mail.io")).unwrap();
    carol.interests.insert(events, true);
}

fn write(fake: &Fake, settings: Value, records: &[Value]) -> Run {
    let files = Files::new(&config(settings), &catalog(vec![stream("users", None, "append_dedup")]));
    let mut input: Vec<String> = records.iter().map(|data| record("users", None, data.clone())).collect();
    input.push(stream_state("users", None, 1, records.len() as u64));
    run(
        &["write", "--config", &files.config(), "--catalog", &files.catalog()],
        &(input.join("\n") + "\n"),
        Some(&fake.base_url()),
    )
}

/// A contact's groups by name: (category title, group name) → chosen.
fn groups_of(fake: &Fake, email: &str) -> BTreeMap<(String, String), bool> {
    fake.with_list(LIST, |list| {
        let member =
            list.members.get(&subscriber_hash(email)).expect("the contact is in the audience").clone();
        let mut groups = BTreeMap::new();
        for category in &list.groups.categories {
            for interest in &category.interests {
                let chosen = member.interests.get(&interest.id).copied().unwrap_or(false);
                groups.insert((category.title.clone(), interest.name.clone()), chosen);
            }
        }
        groups
    })
}

fn chosen(fake: &Fake, email: &str) -> Vec<String> {
    groups_of(fake, email).into_iter().filter(|(_, on)| *on).map(|((_, name), _)| name).collect()
}

#[test]
fn a_topics_column_sets_exactly_the_named_groups_and_clears_the_rest_of_the_category() {
    let fake = fake_with(audience);
    let settings = json!({"field_mappings": [{"record_field": "topics", "group": "Newsletter topics"}]});
    let records = [
        json!({"email": "ada@mail.io", "topics": ["product NEWS", " offers "], "membership": "gold"}),
        json!({"email": "alan@mail.io", "topics": "Events, Product news"}),
        json!({"email": "carol@mail.io", "topics": null, "fname": "Caroline"}),
        json!({"email": "dora@mail.io", "topics": []}),
        json!({"email": "eve@mail.io", "topics": ["Webinars", "Events"]}),
        json!({"email": "fay@mail.io", "membership": ["Gold", "Silver"]}),
    ];
    fake.with_list(LIST, |list| list.put_member("dora@mail.io", "subscribed", json!({})));
    fake.with_list(LIST, |list| {
        let offers = list.groups.interest_id("Newsletter topics", "Offers").unwrap();
        list.members.get_mut(&subscriber_hash("dora@mail.io")).unwrap().interests.insert(offers, true);
    });
    let run = write(&fake, settings, &records);
    assert_eq!(run.code, 0, "{:?}", run.lines);
    assert_eq!(run.states()[0]["destinationStats"]["recordCount"], 6.0, "every contact landed");
    assert_eq!(chosen(&fake, "ada@mail.io"), vec!["Gold", "Offers", "Product news"]);
    assert_eq!(chosen(&fake, "alan@mail.io"), vec!["Events", "Product news"]);
    assert_eq!(chosen(&fake, "carol@mail.io"), vec!["Events"], "null leaves the groups as they were");
    assert_eq!(fake.member(LIST, "carol@mail.io").unwrap().merge_fields["FNAME"], "Caroline");
    assert!(chosen(&fake, "dora@mail.io").is_empty(), "an empty list clears the category");
    assert_eq!(chosen(&fake, "eve@mail.io"), vec!["Events"], "the unknown name is left out");
    assert!(chosen(&fake, "fay@mail.io").is_empty(), "two groups for a radio category are left out");
    run.assert_logged("field 'topics' → the group category 'Newsletter topics': 1 value(s)");
    run.assert_logged("no group called 'Webinars' in 'Newsletter topics'");
    run.assert_logged("more than one group for the radio category 'Membership'");
    run.assert_logged("field 'membership' (not in the catalog's schema) → the group category 'Membership'");
    // What reached Mailchimp uses its ids, with the category's other groups set false.
    let batch = fake.requests().into_iter().find(|r| r.method == "POST").unwrap().body;
    let ada = &batch["members"][0]["interests"];
    assert_eq!(ada.as_object().unwrap().len(), 5, "both categories, every group: {ada}");
}

#[test]
fn with_create_missing_groups_an_unknown_group_is_created_and_chosen() {
    let fake = fake_with(audience);
    let settings = json!({"create_missing_groups": true});
    let records = [
        json!({"email": "eve@mail.io", "newsletter_topics": ["Webinars", "Events"]}),
        json!({"email": "gus@mail.io", "newsletter_topics": "webinars"}),
    ];
    let run = write(&fake, settings, &records);
    assert_eq!(run.code, 0, "{:?}", run.lines);
    assert_eq!(chosen(&fake, "eve@mail.io"), vec!["Events", "Webinars"]);
    assert_eq!(chosen(&fake, "gus@mail.io"), vec!["Webinars"]);
    let created =
        fake.requests().into_iter().filter(|r| r.path.ends_with("/interests") && r.method == "POST").count();
    assert_eq!(created, 1, "created once, for both contacts");
    run.assert_logged("Groups: 1 group(s) named by records were created in their categories");
}

#[test]
fn a_mapping_to_a_group_category_the_audience_lacks_is_a_config_error() {
    let fake = fake_with(audience);
    let run = write(&fake, json!({"field_mappings": [{"record_field": "t", "group": "Hobbies"}]}), &[]);
    assert_eq!(run.code, 1);
    let error = &run.of_type("TRACE")[0]["trace"]["error"];
    assert_eq!(error["failure_type"], "config_error");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("'Hobbies'") && message.contains("Newsletter topics, Membership"), "{message}");
}
