//! Record → Mailchimp member: the email address, merge fields matched by tag, and tags.

use crate::catalog::ConfiguredCatalog;
use crate::config::{Config, MemberStatus};
use crate::mailchimp::model::MergeField;
use crate::protocol::StreamKey;
use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// MD5 of the lowercased email: Mailchimp's identity of a contact (`subscriber_hash`).
pub type EmailKey = [u8; 16];

pub fn email_key(email: &str) -> EmailKey {
    let mut hasher = Md5::new();
    if email.bytes().any(|b| b.is_ascii_uppercase()) || !email.is_ascii() {
        hasher.update(email.to_lowercase().as_bytes());
    } else {
        hasher.update(email.as_bytes());
    }
    hasher.finalize().into()
}

/// The subscriber hash as Mailchimp writes it (lowercase hex).
pub fn subscriber_hash(email: &str) -> String {
    email_key(email).iter().map(|b| format!("{b:02x}")).collect()
}

/// One contact as sent in a batch-subscribe request. `status` is never sent: existing
/// contacts keep theirs, and `status_if_new` applies only to contacts new to the audience.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub email_address: String,
    pub status_if_new: MemberStatus,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub merge_fields: Map<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip)]
    pub key: EmailKey,
}

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    Member(Member),
    /// The record cannot become a contact; the reason is safe to log (no email in it).
    Rejected(String),
}

/// Per-stream knowledge: where the email is and which record fields are merge fields.
#[derive(Debug, Default)]
struct StreamPlan {
    key_field: Option<String>,
    /// Record field name → merge tag (None: not a merge field). Filled as fields are seen.
    field_tags: HashMap<String, Option<String>>,
}

/// Maps records of the catalog's streams to members of one audience.
pub struct Mapper {
    email_field: Option<String>,
    status_if_new: MemberStatus,
    config_tags: Vec<String>,
    /// Lowercased merge tag → the tag as the audience spells it.
    merge_tags: HashMap<String, String>,
    streams: HashMap<StreamKey, StreamPlan>,
}

impl Mapper {
    pub fn new(config: &Config, catalog: &ConfiguredCatalog, merge_fields: &[MergeField]) -> Self {
        let streams = catalog
            .streams
            .iter()
            .map(|s| {
                (
                    s.key(),
                    StreamPlan { key_field: s.single_key_field().map(str::to_string), ..Default::default() },
                )
            })
            .collect();
        Self {
            email_field: config.email_field.clone(),
            status_if_new: config.status_if_new,
            config_tags: config.tags.clone(),
            merge_tags: merge_fields.iter().map(|f| (f.tag.to_ascii_lowercase(), f.tag.clone())).collect(),
            streams,
        }
    }

    /// The catalog stream a record belongs to: an exact match, else the only stream of that name.
    pub fn resolve_stream(&self, stream: &StreamKey) -> Option<StreamKey> {
        if self.streams.contains_key(stream) {
            return Some(stream.clone());
        }
        let mut same_name = self.streams.keys().filter(|k| k.name == stream.name);
        match (same_name.next(), same_name.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        }
    }

    /// Maps one record of a resolved catalog stream.
    pub fn map(&mut self, stream: &StreamKey, data: &Value) -> Mapped {
        let Some(fields) = data.as_object() else {
            return Mapped::Rejected("the record's data is not a JSON object".into());
        };
        let plan = self.streams.entry(stream.clone()).or_default();
        let (email_field, email_value) =
            match find_email(fields, self.email_field.as_deref(), plan.key_field.as_deref()) {
                Ok(found) => found,
                Err(reason) => return Mapped::Rejected(reason),
            };
        let email = match email_value {
            Value::String(s) => s.trim(),
            Value::Null => return Mapped::Rejected(format!("the email field '{email_field}' is null")),
            _ => return Mapped::Rejected(format!("the email field '{email_field}' is not a string")),
        };
        if !looks_like_email(email) {
            return Mapped::Rejected(format!(
                "the email field '{email_field}' does not hold an email address"
            ));
        }

        let mut merge_fields = Map::new();
        let mut tags = self.config_tags.clone();
        for (name, value) in fields {
            if name == email_field {
                continue;
            }
            if name == "tags" {
                add_record_tags(&mut tags, value);
                continue;
            }
            let merge_tags = &self.merge_tags;
            let tag = plan
                .field_tags
                .entry(name.clone())
                .or_insert_with(|| merge_tags.get(&name.to_ascii_lowercase()).cloned());
            if let (Some(tag), Some(value)) = (tag, merge_value(value)) {
                merge_fields.insert(tag.clone(), value);
            }
        }
        Mapped::Member(Member {
            key: email_key(email),
            email_address: email.to_string(),
            status_if_new: self.status_if_new,
            merge_fields,
            tags,
        })
    }
}

/// Finds the email: the configured field, else `email_address`/`email` (any case), else a one-field primary key.
fn find_email<'a>(
    fields: &'a Map<String, Value>,
    configured: Option<&'a str>,
    key_field: Option<&'a str>,
) -> Result<(&'a str, &'a Value), String> {
    if let Some(name) = configured {
        return fields
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| format!("the record has no '{name}' field (the configured email field)"));
    }
    for wanted in ["email_address", "email"] {
        if let Some((k, v)) = fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(wanted)) {
            return Ok((k.as_str(), v));
        }
    }
    if let Some((k, v)) = key_field.and_then(|name| fields.get_key_value(name)) {
        return Ok((k.as_str(), v));
    }
    Err("the record has no email field (email_address, email, or a one-field primary key); set email_field"
        .into())
}

/// A light shape check; Mailchimp judges the rest and its verdict is reported per contact.
fn looks_like_email(email: &str) -> bool {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && domain.contains('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn add_record_tags(tags: &mut Vec<String>, value: &Value) {
    let mut add = |tag: &str| {
        let tag = tag.trim();
        if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    };
    match value {
        Value::String(s) => s.split(',').for_each(&mut add),
        Value::Array(items) => items.iter().filter_map(Value::as_str).for_each(&mut add),
        _ => {}
    }
}

/// The value sent for a merge field; `None` means "do not send" (nulls never erase a value).
fn merge_value(value: &Value) -> Option<Value> {
    match value {
        Value::Null | Value::Array(_) => None,
        Value::Bool(b) => Some(Value::String(b.to_string())),
        other => Some(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapper(config: serde_json::Value, catalog: serde_json::Value) -> Mapper {
        let config = crate::config::from_value(&config, None).unwrap();
        let catalog: ConfiguredCatalog = serde_json::from_value(catalog).unwrap();
        let fields: Vec<MergeField> = serde_json::from_value(json!([
            {"tag": "FNAME", "name": "First Name", "type": "text"},
            {"tag": "LNAME", "name": "Last Name", "type": "text"},
            {"tag": "SCORE", "name": "Score", "type": "number"}
        ]))
        .unwrap();
        Mapper::new(&config, &catalog, &fields)
    }

    fn users() -> StreamKey {
        StreamKey { namespace: None, name: "users".into() }
    }

    fn default_mapper() -> Mapper {
        mapper(
            json!({"api_key": "k-us1", "list_id": "l", "tags": "crm, vip"}),
            json!({"streams": [{"stream": {"name": "users", "json_schema": {}}, "destination_sync_mode": "append_dedup", "primary_key": [["id"]]}]}),
        )
    }

    #[test]
    fn hash_is_md5_of_lowercased_email() {
        assert_eq!(
            subscriber_hash("Urist.McVankab@freddiesjokes.com"),
            subscriber_hash("urist.mcvankab@freddiesjokes.com")
        );
        assert_eq!(subscriber_hash("urist.mcvankab@freddiesjokes.com"), "62eeb292278cc15f5817cb78f7790b08");
    }

    #[test]
    fn maps_email_merge_fields_and_tags() {
        let mut m = default_mapper();
        let data = json!({"Email": "  Ada@Math.org ", "fname": "Ada", "LName": null, "score": 7, "x": 1, "tags": ["b", "vip"]});
        let Mapped::Member(member) = m.map(&users(), &data) else { panic!() };
        assert_eq!(member.email_address, "Ada@Math.org");
        assert_eq!(member.key, email_key("ada@math.org"));
        assert_eq!(Value::Object(member.merge_fields.clone()), json!({"FNAME": "Ada", "SCORE": 7}));
        assert_eq!(member.tags, vec!["crm", "vip", "b"]);
        let body = serde_json::to_value(&member).unwrap();
        assert_eq!(
            body,
            json!({"email_address": "Ada@Math.org", "status_if_new": "subscribed", "merge_fields": {"FNAME": "Ada", "SCORE": 7}, "tags": ["crm", "vip", "b"]})
        );
        assert!(body.get("status").is_none());
    }

    #[test]
    fn prefers_email_address_then_email_then_single_primary_key() {
        let mut m = default_mapper();
        let Mapped::Member(a) = m.map(&users(), &json!({"email": "x@y.io", "EMAIL_ADDRESS": "z@y.io"}))
        else {
            panic!()
        };
        assert_eq!(a.email_address, "z@y.io");
        let Mapped::Member(b) = m.map(&users(), &json!({"id": "pk@y.io"})) else { panic!() };
        assert_eq!(b.email_address, "pk@y.io");
        let Mapped::Member(c) = m.map(&users(), &json!({"email": "x@y.io", "tags": "p, q ,"})) else {
            panic!()
        };
        assert_eq!(c.tags, vec!["crm", "vip", "p", "q"]);
    }

    #[test]
    fn configured_email_field_wins() {
        let mut m = mapper(
            json!({"api_key": "k-us1", "list_id": "l", "email_field": "work"}),
            json!({"streams": [{"stream": {"name": "users"}, "destination_sync_mode": "append_dedup"}]}),
        );
        let Mapped::Member(a) = m.map(&users(), &json!({"email": "x@y.io", "work": "w@y.io"})) else {
            panic!()
        };
        assert_eq!(a.email_address, "w@y.io");
        assert!(
            matches!(m.map(&users(), &json!({"email": "x@y.io"})), Mapped::Rejected(r) if r.contains("'work'"))
        );
    }

    #[test]
    fn rejects_records_without_a_usable_email() {
        let mut m = default_mapper();
        for data in [
            json!({"name": "x"}),
            json!({"email": null}),
            json!({"email": 5}),
            json!({"email": "nope"}),
            json!({"email": "a b@c.io"}),
            json!({"email": "  "}),
            json!([1]),
        ] {
            assert!(matches!(m.map(&users(), &data), Mapped::Rejected(_)), "{data}");
        }
    }

    #[test]
    fn resolves_streams_by_exact_key_or_unique_name() {
        let m = default_mapper();
        assert_eq!(
            m.resolve_stream(&StreamKey { namespace: Some("public".into()), name: "users".into() }),
            Some(users())
        );
        assert_eq!(m.resolve_stream(&StreamKey { namespace: None, name: "orders".into() }), None);
    }
}
