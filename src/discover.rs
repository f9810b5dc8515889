//! The `discover` command: the audience described as a destination object (DESTINATION_CATALOG),
//! for platforms that show a field-mapping screen.

use crate::catalog::SUPPORTED_MODE;
use crate::config;
use crate::error::ConnectorError;
use crate::mailchimp::client::Client;
use crate::mailchimp::model::{Category, MergeField};
use crate::mapping::normalize;
use serde_json::{json, Map, Value};
use std::path::Path;

/// Reads the audience, its merge fields and its groups, and returns the DESTINATION_CATALOG message.
pub async fn discover(config_path: &Path) -> Result<Value, ConnectorError> {
    let config = config::load(config_path)?;
    let client = Client::new(&config.client_settings())?;
    let audience = client.audience().await?;
    Ok(json!({"type": "DESTINATION_CATALOG", "destination_catalog": {"operations": [{
        "object_name": audience.list.name,
        "sync_mode": SUPPORTED_MODE,
        "json_schema": contact_schema(&audience.merge_fields, &audience.categories),
        "matching_keys": [["email_address"]],
    }]}}))
}

/// The JSON schema of a contact: member fields, attributes, one property per merge tag, and one per
/// group category (named as a record field that maps to it automatically).
pub fn contact_schema(merge_fields: &[MergeField], categories: &[Category]) -> Value {
    let mut properties = member_properties();
    let mut required = vec![json!("email_address")];
    for field in merge_fields {
        if field.required {
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
    json!({"type": "object", "additionalProperties": true, "required": required, "properties": properties})
}

/// The member's own fields and attributes.
fn member_properties() -> Map<String, Value> {
    let mut properties = Map::new();
    properties.insert(
        "email_address".into(),
        json!({"type": "string", "format": "email", "title": "Email address"}),
    );
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
