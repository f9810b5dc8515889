//! The configured catalog: which streams are synced, to which audience, with which mode and key.

use crate::config::read_json_file;
use crate::error::ConnectorError;
use crate::protocol::StreamKey;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

/// What a stream's records do to the contacts of its audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SyncMode {
    /// Upsert: create or update (`append_dedup`).
    #[default]
    AppendDedup,
    /// Change existing contacts only; records of others are rejected as not in the audience.
    Update,
    /// Archive each record's contact (or the configured deletion action).
    SoftDelete,
    /// Events streams: every record is posted as an event.
    Append,
}

impl SyncMode {
    /// Every mode this destination supports, in the order discover lists them.
    pub const ALL: [SyncMode; 4] =
        [SyncMode::AppendDedup, SyncMode::Update, SyncMode::SoftDelete, SyncMode::Append];
    /// The modes of contacts streams (events streams use `Append`).
    pub const CONTACTS: [SyncMode; 3] = [SyncMode::AppendDedup, SyncMode::Update, SyncMode::SoftDelete];

    /// The protocol's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::AppendDedup => "append_dedup",
            SyncMode::Update => "update",
            SyncMode::SoftDelete => "soft_delete",
            SyncMode::Append => "append",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == name)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConfiguredCatalog {
    pub streams: Vec<ConfiguredStream>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConfiguredStream {
    pub stream: StreamDefinition,
    pub destination_sync_mode: Option<String>,
    /// The destination object chosen on a mapping screen (an audience); none in the classic form.
    #[serde(default)]
    pub destination_object_name: Option<String>,
    /// The platform's job id (platforms that support refreshes send it).
    #[serde(default)]
    pub sync_id: Option<i64>,
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

impl ConfiguredCatalog {
    /// The platform's job id, when its streams carry one.
    pub fn sync_id(&self) -> Option<i64> {
        self.streams.iter().find_map(|s| s.sync_id)
    }
}

impl ConfiguredStream {
    /// Whether the stream names an audience's events object (`audience_<List ID>_events`).
    pub fn names_events_object(&self) -> bool {
        self.destination_object_name.as_deref().is_some_and(|n| n.ends_with(crate::audiences::EVENTS_SUFFIX))
    }

    pub fn key(&self) -> StreamKey {
        StreamKey { namespace: self.stream.namespace.clone(), name: self.stream.name.clone() }
    }

    /// The stream's mode (the catalog was checked on load, so an unknown one cannot occur).
    pub fn mode(&self) -> SyncMode {
        self.destination_sync_mode.as_deref().and_then(SyncMode::parse).unwrap_or_default()
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

/// Reads the catalog file and checks that every stream uses a supported mode.
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

/// Fails, naming the stream, when a stream asks for a mode this destination does not support.
pub fn check_modes(catalog: &ConfiguredCatalog) -> Result<(), ConnectorError> {
    for stream in &catalog.streams {
        let mode = stream.destination_sync_mode.as_deref().unwrap_or("(none)");
        if SyncMode::parse(mode).is_none() {
            return Err(ConnectorError::config(format!(
                "Stream '{}' uses the destination sync mode '{mode}', but this destination supports \
                 'Incremental - Deduped' (append_dedup: create or update contacts), 'update' (existing contacts \
                 only) and 'soft_delete' (archive contacts) for contacts, and 'append' for events: a Mailchimp \
                 audience keeps one contact per email address. Change the stream's sync mode in the connection \
                 settings.",
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
    fn accepts_the_three_modes_and_finds_a_single_key_field() {
        for mode in SyncMode::ALL {
            let catalog = catalog(mode.as_str());
            check_modes(&catalog).unwrap();
            assert_eq!(catalog.streams[0].mode(), mode);
            assert_eq!(catalog.streams[0].single_key_field(), Some("email"));
        }
    }

    #[test]
    fn names_the_stream_and_the_supported_mode() {
        let error = check_modes(&catalog("overwrite")).unwrap_err();
        assert_eq!(error.failure_type, crate::error::FailureType::ConfigError);
        assert!(
            error.message.contains("'crm.users'")
                && error.message.contains("'overwrite'")
                && error.message.contains("soft_delete"),
            "{}",
            error.message
        );
    }
}
