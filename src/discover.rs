//! The `discover` command: every audience the API key can see, described as destination objects
//! with their operations (DESTINATION_CATALOG), for platforms that show a field-mapping screen.

use crate::audiences::{events_object_name, object_name};
use crate::catalog::SyncMode;
use crate::config;
use crate::error::ConnectorError;
use crate::mailchimp::client::Client;
use crate::mailchimp::model::{Audience, Category, MergeField};
use crate::mapping::normalize;
use serde_json::{json, Map, Value};
use std::path::Path;

/// The matching key of every operation: a contact is its email address.
const MATCHING_KEY: &str = "email_address";

/// What discover describes of one audience: the audience and its GDPR marketing permissions.
struct Described {
    audience: Audience,
    permissions: Vec<String>,
}

/// Reads every audience (all pages), their merge fields, groups and GDPR marketing permissions, and
/// returns the DESTINATION_CATALOG message: three contact operations and one events operation per
/// audience.
pub async fn discover(config_path: &Path) -> Result<Value, ConnectorError> {
    let config = config::load(config_path)?;
    let client = Client::new(&config.client_settings())?;
    let lists = client.lists().await?;
    // Read at the same time; the connection budget keeps it within Mailchimp's limit.
    let audiences = futures::future::try_join_all(lists.iter().map(|list| async {
        let client = client.for_list(&list.id);
        let audience = client.audience().await?;
        let permissions =
            if list.marketing_permissions { client.permission_texts().await? } else { Vec::new() };
        Ok::<_, ConnectorError>(Described { audience, permissions })
    }))
    .await?;
    let operations: Vec<Value> =
        audiences.iter().flat_map(|described| operations(described, config.skip_merge_validation)).collect();
    Ok(json!({"type": "DESTINATION_CATALOG", "destination_catalog": {"operations": operations}}))
}

/// An audience's operations: upsert, update-only and soft delete of its contacts, named after its
/// List ID, and appending events to them.
fn operations(described: &Described, skip_merge_validation: bool) -> Vec<Value> {
    let Described { audience, permissions } = described;
    let list = &audience.list;
    let contact =
        |required| contact_schema(&audience.merge_fields, &audience.categories, permissions, required);
    let contacts = SyncMode::CONTACTS.into_iter().map(|mode| {
        let mut schema = match mode {
            SyncMode::SoftDelete => key_only_schema(),
            SyncMode::AppendDedup => contact(!skip_merge_validation),
            SyncMode::Update | SyncMode::Append => contact(false),
        };
        schema["additionalProperties"] = json!(false);
        schema["title"] = json!(list.name);
        schema["description"] = json!(format!(
            "Contacts of the Mailchimp audience '{}' (List ID {}): {}",
            list.name,
            list.id,
            match mode {
                SyncMode::AppendDedup => "each record creates or updates the contact with its email address.",
                SyncMode::Update =>
                    "each record updates the contact with its email address; records of \
                         people not in the audience are rejected, never added.",
                SyncMode::SoftDelete | SyncMode::Append =>
                    "each record's contact is archived (its history is kept).",
            }
        ));
        json!({"object_name": object_name(&list.id), "sync_mode": mode.as_str(), "json_schema": schema,
                   "matching_keys": [[MATCHING_KEY]]})
    });
    contacts.chain(std::iter::once(events_operation(&list.id, &list.name))).collect()
}

/// The events object of an audience: one event per record on the contact with its email address.
fn events_operation(list_id: &str, list_name: &str) -> Value {
    let mut properties = Map::new();
    properties.insert(MATCHING_KEY.into(), member_properties().remove(MATCHING_KEY).unwrap_or_default());
    properties.insert(
        "event_name".into(),
        json!({"type": "string", "title": "Event name",
        "description": "2–30 letters, digits, underscores or dashes, such as trial_started.",
        "pattern": "^[A-Za-z0-9_-]{2,30}$"}),
    );
    properties.insert("occurred_at".into(), json!({"type": ["null", "string"], "format": "date-time",
        "title": "Occurred at", "description": "When it happened (sent in UTC); empty: when the sync read it."}));
    properties.insert("properties".into(), json!({"type": ["null", "object"], "title": "Properties",
        "description": "The event's properties; every other field of the record is one too. Values are sent as text."}));
    let schema = json!({"type": "object", "additionalProperties": true, "required": ["event_name"],
        "properties": properties, "title": format!("{list_name}: events"),
        "description": format!("Events on contacts of the Mailchimp audience '{list_name}' (List ID {list_id}): each \
            record is posted once as an event on the contact with its email address, which can start a journey; \
            records of people not in the audience are rejected.")});
    json!({"object_name": events_object_name(list_id), "sync_mode": SyncMode::Append.as_str(),
           "json_schema": schema, "matching_keys": [[MATCHING_KEY]]})
}

/// The schema of a soft delete: the matching key only.
fn key_only_schema() -> Value {
    let mut properties = Map::new();
    properties.insert(MATCHING_KEY.into(), member_properties().remove(MATCHING_KEY).unwrap_or_default());
    json!({"type": "object", "required": [], "properties": properties})
}

/// The JSON schema of a contact: member fields, attributes, one property per merge tag, one per
/// group category and one per GDPR marketing permission (each named as a record field that maps to
/// it automatically). The matching key is not `required` (a mapping screen picks it on its own); the
/// audience's required merge fields are, when `merge_fields_required`.
pub fn contact_schema(
    merge_fields: &[MergeField],
    categories: &[Category],
    permissions: &[String],
    merge_fields_required: bool,
) -> Value {
    let mut properties = member_properties();
    let mut required = Vec::new();
    for field in merge_fields {
        if field.required && merge_fields_required {
            required.push(json!(field.tag));
        }
        properties.insert(field.tag.clone(), merge_field_schema(field));
    }
    for category in categories {
        let names: Vec<&str> = category.interests.iter().map(|i| i.name.as_str()).collect();
        let choice = if category.single_choice() { "one group" } else { "any of its groups" };
        properties.insert(
            normalize(&category.title),
            json!({"type": ["null", "array", "string"], "items": {"type": "string", "enum": names},
                   "title": category.title, "x-mailchimp-type": format!("group category ({})", category.kind),
                   "description": format!("The contact's whole selection in the group category '{}' ({choice}): a list \
                       of group names or a comma-separated string; empty clears it, null leaves it.", category.title)}),
        );
    }
    for text in permissions {
        properties.insert(
            format!("marketing_permission_{}", normalize(text)),
            json!({"type": ["null", "boolean"], "title": format!("Marketing permission: {text}"),
                   "x-mailchimp-type": "GDPR marketing permission",
                   "description": format!("Whether the contact gives the GDPR marketing permission '{text}': true \
                       gives it, false withdraws it, null leaves it.")}),
        );
    }
    json!({"type": "object", "additionalProperties": true, "required": required, "properties": properties})
}

/// The member's own fields and attributes.
fn member_properties() -> Map<String, Value> {
    let mut properties = Map::new();
    properties
        .insert(MATCHING_KEY.into(), json!({"type": "string", "format": "email", "title": "Email address"}));
    properties.insert(
        "tags".into(),
        json!({"type": ["null", "array"], "items": {"type": "string"}, "title": "Tags"}),
    );
    properties.insert("language".into(), json!({"type": ["null", "string"], "title": "Language code"}));
    properties.insert("vip".into(), json!({"type": ["null", "boolean"], "title": "VIP"}));
    properties.insert(
        "email_type".into(),
        json!({"type": ["null", "string"], "enum": ["html", "text", null], "title": "Email type"}),
    );
    for name in ["ip_signup", "ip_opt"] {
        properties.insert(name.into(), json!({"type": ["null", "string"], "title": name}));
    }
    for name in ["timestamp_signup", "timestamp_opt"] {
        properties
            .insert(name.into(), json!({"type": ["null", "string"], "format": "date-time", "title": name}));
    }
    properties.insert(
        "location".into(),
        json!({"type": ["null", "object"], "properties": {"latitude": {"type": "number"}, "longitude": {"type": "number"}}}),
    );
    properties
}

/// A merge field's property, typed as Mailchimp types it.
fn merge_field_schema(field: &MergeField) -> Value {
    let mut schema = match field.kind.as_str() {
        "number" => json!({"type": ["null", "number"]}),
        "address" => {
            json!({"type": ["null", "object"], "required": ["addr1", "city", "state", "zip"], "properties": {
            "addr1": {"type": "string"}, "addr2": {"type": "string"}, "city": {"type": "string"},
            "state": {"type": "string"}, "zip": {"type": "string"}, "country": {"type": "string"}}})
        }
        "date" => json!({"type": ["null", "string"], "format": "date"}),
        "birthday" => {
            json!({"type": ["null", "string"], "description": "A date (YYYY-MM-DD) or MM/DD; the year is not kept."})
        }
        "radio" | "dropdown" => {
            let mut choices =
                field.options.get("choices").and_then(Value::as_array).cloned().unwrap_or_default();
            choices.push(Value::Null);
            json!({"type": ["null", "string"], "enum": choices})
        }
        _ => json!({"type": ["null", "string"]}),
    };
    schema["title"] = json!(if field.name.is_empty() { &field.tag } else { &field.name });
    schema["x-mailchimp-type"] = json!(field.kind);
    schema
}
