//! The configured catalog: which streams are synced, with which mode and primary key.

use crate::config::read_json_file;
use crate::error::ConnectorError;
use crate::protocol::StreamKey;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// The only destination sync mode this connector supports.
pub const SUPPORTED_MODE: &str = "append_dedup";

#[derive(Debug, Clone, Deserialize)]
pub struct ConfiguredCatalog {
    pub streams: Vec<ConfiguredStream>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConfiguredStream {
    pub stream: StreamDefinition,
    pub destination_sync_mode: Option<String>,
    pub primary_key: Option<Vec<Vec<String>>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamDefinition {
    pub name: String,
    pub namespace: Option<String>,
    #[serde(default)]
    pub json_schema: Value,
    pub source_defined_primary_key: Option<Vec<Vec<String>>>,
}

impl ConfiguredStream {
    pub fn key(&self) -> StreamKey {
        StreamKey { namespace: self.stream.namespace.clone(), name: self.stream.name.clone() }
    }

    /// The primary key's field when it is one top-level field (a candidate email field).
    pub fn single_key_field(&self) -> Option<&str> {
        let key = self
            .primary_key
            .as_ref()
            .filter(|k| !k.is_empty())
            .or(self.stream.source_defined_primary_key.as_ref())?;
        match key.as_slice() {
            [path] if path.len() == 1 => Some(path[0].as_str()),
            _ => None,
        }
    }
}

/// Reads the catalog file and checks that every stream uses the supported mode.
pub fn load(path: &Path) -> Result<ConfiguredCatalog, ConnectorError> {
    let value = read_json_file(path, "catalog")?;
    let catalog: ConfiguredCatalog = serde_json::from_value(value).map_err(|e| {
        ConnectorError::config(format!(
            "The catalog file {} is not a configured catalog: {e}",
            path.display()
        ))
    })?;
    check_modes(&catalog)?;
    Ok(catalog)
}

/// Fails, naming the stream, when a stream asks for a mode other than `append_dedup`.
pub fn check_modes(catalog: &ConfiguredCatalog) -> Result<(), ConnectorError> {
    for stream in &catalog.streams {
        let mode = stream.destination_sync_mode.as_deref().unwrap_or("(none)");
        if mode != SUPPORTED_MODE {
            return Err(ConnectorError::config(format!(
                "Stream '{}' uses the destination sync mode '{mode}', but this destination supports only \
                 'Incremental - Deduped' ({SUPPORTED_MODE}): a Mailchimp audience keeps one contact per email \
                 address. Change the stream's sync mode in the connection settings.",
                stream.key()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog(mode: &str) -> ConfiguredCatalog {
        serde_json::from_value(json!({"streams": [{
            "stream": {"name": "users", "namespace": "crm", "json_schema": {}, "supported_sync_modes": ["incremental"],
                        "source_defined_primary_key": [["email"]]},
            "sync_mode": "incremental", "destination_sync_mode": mode, "primary_key": null}]}))
        .unwrap()
    }

    #[test]
    fn accepts_append_dedup_and_finds_a_single_key_field() {
        let catalog = catalog("append_dedup");
        check_modes(&catalog).unwrap();
        assert_eq!(catalog.streams[0].single_key_field(), Some("email"));
    }

    #[test]
    fn names_the_stream_and_the_supported_mode() {
        let error = check_modes(&catalog("overwrite")).unwrap_err();
        assert_eq!(error.failure_type, crate::error::FailureType::ConfigError);
        assert!(
            error.message.contains("'crm.users'") && error.message.contains("append_dedup"),
            "{}",
            error.message
        );
    }
}
