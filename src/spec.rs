//! The connector specification: `spec.json` at the repository root, embedded at compile time.

use serde_json::Value;
use std::sync::OnceLock;

/// The text of `spec.json`, the one source of truth for the configuration schema.
pub const SPEC_JSON: &str = include_str!("../spec.json");

/// The parsed specification (the payload of the SPEC message).
pub fn specification() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_json::from_str(SPEC_JSON).expect("spec.json is valid JSON (checked by a unit test)")
    })
}

/// The JSON Schema that every configuration must satisfy.
pub fn connection_specification() -> &'static Value {
    &specification()["connectionSpecification"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_is_a_draft7_schema_for_the_config() {
        let schema = connection_specification();
        assert!(jsonschema::draft7::meta::is_valid(schema));
        assert_eq!(schema["properties"]["api_key"]["airbyte_secret"], true);
        let modes: Vec<&str> = crate::catalog::SyncMode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(specification()["supported_destination_sync_modes"], serde_json::json!(modes));
        let storage = &schema["properties"]["object_storage_config"]["oneOf"][1]["properties"];
        assert_eq!(storage["secret_access_key"]["airbyte_secret"], true);
    }
}
