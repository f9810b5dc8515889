//! Property test of the intake step with values Mailchimp refuses and nulls: for any records of a
//! few contacts, merging duplicates into batches leaves the audience exactly as sending each record
//! on its own, one after another, would — with Mailchimp refusing a whole member that carries a
//! value it does not take, as it does.

use destination_mailchimp::batch::Ready;
use destination_mailchimp::catalog::ConfiguredCatalog;
use destination_mailchimp::config;
use destination_mailchimp::intake::Intake;
use destination_mailchimp::mailchimp::member::Member;
use destination_mailchimp::mailchimp::model::MergeField;
use destination_mailchimp::mapping::{Mapped, Mapper};
use destination_mailchimp::protocol::{parse_line, Incoming, StreamKey};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// A value a record may carry for a field: absent, null, one Mailchimp takes, one it refuses.
#[derive(Debug, Clone)]
enum Field {
    Absent,
    Null,
    Valid(u8),
    Refused,
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![Just(Field::Absent), Just(Field::Null), (0..3u8).prop_map(Field::Valid), Just(Field::Refused)]
}

#[derive(Debug, Clone)]
struct Rec {
    person: u8,
    fname: Field,
    zip: Field,
    phone: Field,
}

fn records() -> impl Strategy<Value = Vec<Rec>> {
    proptest::collection::vec(
        (0..3u8, field(), field(), field()).prop_map(|(person, fname, zip, phone)| Rec {
            person,
            fname,
            zip,
            phone,
        }),
        1..14,
    )
}

fn line(rec: &Rec) -> String {
    let mut data = Map::new();
    data.insert("email".into(), json!(format!("person{}@mail.io", rec.person)));
    let mut put = |name: &str, value: &Field, valid: &dyn Fn(u8) -> Value, refused: Value| match value {
        Field::Absent => {}
        Field::Null => {
            data.insert(name.into(), Value::Null);
        }
        Field::Valid(n) => {
            data.insert(name.into(), valid(*n));
        }
        Field::Refused => {
            data.insert(name.into(), refused);
        }
    };
    put("fname", &rec.fname, &|n| json!(format!("Name{n}")), json!({"not": "text"}));
    put("zip", &rec.zip, &|n| json!(format!("3030{n}")), json!("ABCDE"));
    put("phone", &rec.phone, &|n| json!(format!("(404) 555-121{n}")), json!("555-1212"));
    json!({"type": "RECORD", "record": {"stream": "users", "data": data, "emitted_at": 1}}).to_string()
}

fn mapper() -> Mapper {
    let config = config::from_value(
        &json!({"api_key": "0123456789abcdef0123456789abcdef-us6", "list_id": "l1", "tags": "crm"}),
        None,
    )
    .unwrap();
    let catalog: ConfiguredCatalog = serde_json::from_value(json!({"streams": [{
        "stream": {"name": "users", "json_schema": {"properties": {"email": {}, "fname": {}, "zip": {}, "phone": {}}},
                   "supported_sync_modes": ["incremental"]},
        "sync_mode": "incremental", "destination_sync_mode": "append_dedup"}]}))
    .unwrap();
    let fields: Vec<MergeField> = serde_json::from_value(json!([
        {"tag": "FNAME", "name": "First Name", "type": "text"},
        {"tag": "ZIP", "name": "Zip", "type": "zip"},
        {"tag": "PHONE", "name": "Phone", "type": "phone", "options": {"phone_format": "US"}},
    ]))
    .unwrap();
    Mapper::new(&config, &catalog, &fields, &[]).unwrap()
}

type Audience = BTreeMap<String, (Map<String, Value>, BTreeSet<String>)>;

/// Mailchimp's side, modelled independently of the connector: a member carrying a ZIP that is not 5
/// digits or a US phone not in NPA-NXX-LINE form is refused whole; otherwise its fields are set.
fn upsert(audience: &mut Audience, member: &Member) {
    let (zip, phone) = (member.merge_fields.get("ZIP"), member.merge_fields.get("PHONE"));
    let zip_ok = zip
        .as_ref()
        .and_then(Value::as_str)
        .is_none_or(|z| z.len() == 5 && z.bytes().all(|b| b.is_ascii_digit()));
    let phone_ok = phone.as_ref().and_then(Value::as_str).is_none_or(|p| {
        let parts: Vec<&str> = p.split('-').collect();
        parts.len() == 3 && [3, 3, 4].iter().zip(&parts).all(|(n, part)| part.len() == *n)
    });
    if !(zip_ok && phone_ok) {
        return;
    }
    let contact = audience.entry(member.email_address.to_lowercase()).or_default();
    contact.0.extend(member.merge_fields.to_map());
    contact.1.extend(member.tags.iter().cloned());
}

fn member_of(mapper: &mut Mapper, line: &str) -> Member {
    let Ok(Incoming::Record(record)) = parse_line(line.as_bytes()) else { panic!("a record") };
    let stream = StreamKey { namespace: None, name: "users".into() };
    match mapper.map(&stream, record.data) {
        Mapped::Member(member) => member,
        other => panic!("every record has an email: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn merging_with_refused_values_and_nulls_equals_applying_in_order(recs in records(), batch_size in 1..5usize) {
        let lines: Vec<String> = recs.iter().map(line).collect();

        let mut one_by_one = Audience::new();
        let mut mapper_alone = mapper();
        for line in &lines {
            upsert(&mut one_by_one, &member_of(&mut mapper_alone, line));
        }

        let mut merged = Audience::new();
        let mut intake = Intake::new(vec![mapper()], batch_size);
        let mut apply_ready = |intake: &mut Intake| {
            while let Some(ready) = intake.pop_ready() {
                if let Ready::Batch(batch) = ready {
                    for entry in &batch.entries {
                        upsert(&mut merged, &entry.member);
                    }
                }
            }
        };
        for line in &lines {
            let rejected = intake.take(parse_line(line.as_bytes()).unwrap(), Instant::now());
            prop_assert!(rejected.is_none());
            apply_ready(&mut intake);
        }
        intake.flush();
        apply_ready(&mut intake);

        prop_assert_eq!(&merged, &one_by_one);
        // Every contact of the input is in the audience: no refused value cost anyone their contact.
        let people: BTreeSet<u8> = recs.iter().map(|r| r.person).collect();
        prop_assert_eq!(merged.len(), people.len());
    }
}
