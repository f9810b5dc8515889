//! The user's configuration: validated against spec.json, then parsed into a typed `Config`.

use crate::error::ConnectorError;
use crate::mailchimp::budget::MAILCHIMP_CONNECTION_LIMIT;
pub use crate::mailchimp::client::{ApiKey, ClientSettings};
pub use crate::mailchimp::member::MemberStatus;
use crate::mailchimp::member::MAX_BATCH_MEMBERS;
use crate::spec::connection_specification;
use serde::Deserialize;
use serde_json::Value;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// The environment variable that replaces the Mailchimp base URL (tests and the offline demo).
pub const BASE_URL_ENV: &str = "MAILCHIMP_API_BASE_URL";

/// What happens when the source asks to subscribe a contact that Mailchimp holds as unsubscribed
/// or cleaned (Mailchimp refuses it: "Member In Compliance State").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResubscribePolicy {
    /// Update the contact's other fields, leave its status, and report it.
    #[default]
    Skip,
    /// Set the contact to `pending`: Mailchimp emails the person to confirm.
    Pending,
}

/// What a record deleted at the source (`_ab_cdc_deleted_at` set) does to its contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// Nothing; the record is counted and reported.
    #[default]
    Ignore,
    /// Archive the contact (Mailchimp keeps its history; a later upsert restores it).
    Archive,
    /// Set the contact's status to unsubscribed.
    Unsubscribe,
    /// Erase the contact; it can never be imported again.
    DeletePermanently,
}

impl OnDelete {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ignore => "ignore",
            Self::Archive => "archive",
            Self::Unsubscribe => "unsubscribe",
            Self::DeletePermanently => "delete_permanently",
        }
    }
}

/// Whether the sync only adds tags, or owns the tags with a prefix (and removes stale ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagMode {
    #[default]
    Add,
    Owned,
}

/// The settings' defaults, stated once; a test checks that they equal spec.json's.
pub mod defaults {
    use super::*;

    pub const BATCH_SIZE: u64 = MAX_BATCH_MEMBERS as u64;
    pub const MAX_CONCURRENT_REQUESTS: u64 = 5;
    pub const MAX_RETRY_SECONDS: u64 = 600;
    pub const STATUS_IF_NEW: MemberStatus = MemberStatus::Subscribed;

    pub(super) fn batch_size() -> u64 {
        BATCH_SIZE
    }
    pub(super) fn max_concurrent_requests() -> u64 {
        MAX_CONCURRENT_REQUESTS
    }
    pub(super) fn max_retry_seconds() -> u64 {
        MAX_RETRY_SECONDS
    }
    pub(super) fn status_if_new() -> MemberStatus {
        STATUS_IF_NEW
    }
    pub(super) fn events_start_automations() -> bool {
        true
    }
}

/// The config as the platform sends it, after spec.json has validated it (so every value has the
/// type and range the spec gives; text is trimmed in `from_value`). One field per spec.json
/// setting, which is why it is wide.
#[derive(Debug, Deserialize)]
struct RawConfig {
    api_key: String,
    list_id: String,
    #[serde(default)]
    tags: String,
    #[serde(default = "defaults::status_if_new")]
    status_if_new: MemberStatus,
    email_field: Option<String>,
    #[serde(default = "defaults::batch_size", deserialize_with = "whole_number")]
    batch_size: u64,
    #[serde(default = "defaults::max_concurrent_requests", deserialize_with = "whole_number")]
    max_concurrent_requests: u64,
    #[serde(default = "defaults::max_retry_seconds", deserialize_with = "whole_number")]
    max_retry_seconds: u64,
    #[serde(default)]
    field_mappings: Vec<RawFieldMapping>,
    #[serde(default)]
    skip_merge_validation: bool,
    #[serde(default)]
    create_missing_groups: bool,
    status_field: Option<String>,
    #[serde(default)]
    resubscribe_policy: ResubscribePolicy,
    #[serde(default)]
    on_delete: OnDelete,
    #[serde(default)]
    tag_mode: TagMode,
    owned_tag_prefix: Option<String>,
    #[serde(default)]
    object_storage_config: Option<RawStorage>,
    #[serde(default)]
    events_streams: Vec<EventsStream>,
    #[serde(default = "defaults::events_start_automations")]
    events_start_automations: bool,
}

/// A stream whose records are events (classic form), with the event name when it is fixed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EventsStream {
    pub stream: String,
    #[serde(default)]
    pub event_name: Option<String>,
}

/// `object_storage_config`: where rejected records are kept, as Airbyte's activation destinations
/// name it.
#[derive(Debug, Deserialize)]
#[serde(tag = "storage_type")]
enum RawStorage {
    None,
    S3 {
        s3_bucket_name: String,
        #[serde(default)]
        s3_bucket_region: String,
        #[serde(default)]
        bucket_path: String,
        s3_endpoint: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
    },
}

impl RawStorage {
    /// The bucket's settings, trimmed; `None` for the "None" choice.
    fn settings(self) -> Option<Result<StorageSettings, ConnectorError>> {
        let RawStorage::S3 {
            s3_bucket_name,
            s3_bucket_region,
            bucket_path,
            s3_endpoint,
            access_key_id,
            secret_access_key,
        } = self
        else {
            return None;
        };
        let text = |value: Option<String>| value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let Some(bucket) = text(Some(s3_bucket_name)) else {
            return Some(Err(ConnectorError::config(
                "object_storage_config: s3_bucket_name must not be empty.",
            )));
        };
        Some(Ok(StorageSettings {
            bucket,
            region: text(Some(s3_bucket_region)).unwrap_or_else(|| "us-east-1".into()),
            bucket_path: bucket_path.trim().to_string(),
            endpoint: text(s3_endpoint),
            access_key_id: text(access_key_id).map(ApiKey::new),
            secret_access_key: text(secret_access_key).map(ApiKey::new),
        }))
    }
}

/// An S3 or S3-compatible bucket for rejected records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    pub bucket: String,
    /// `us-east-1` when the form leaves it empty.
    pub region: String,
    /// Every object's path starts with it.
    pub bucket_path: String,
    /// An S3-compatible server's URL; none for AWS.
    pub endpoint: Option<String>,
    /// Without them, the usual AWS sources are used (environment, instance role).
    pub access_key_id: Option<ApiKey>,
    pub secret_access_key: Option<ApiKey>,
}

#[derive(Debug, Deserialize)]
struct RawFieldMapping {
    record_field: String,
    merge_tag: Option<String>,
    group: Option<String>,
    marketing_permission: Option<String>,
}

/// Where an explicit field mapping sends a record field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingTarget {
    /// A merge field, by its tag.
    MergeTag(String),
    /// A group category, by its title.
    Group(String),
    /// A GDPR marketing permission, by its text.
    MarketingPermission(String),
}

/// An integer setting; JSON Schema's `integer` also admits `5.0`, so a whole float is accepted too.
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    number
        .as_u64()
        .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
        .ok_or_else(|| serde::de::Error::custom(format!("{number} is not a whole number")))
}

/// A validated configuration: one field per setting (as spec.json lists them) plus what is
/// derived from them, which is why it is wide.
#[derive(Debug, Clone)]
pub struct Config {
    pub api_key: ApiKey,
    pub data_center: String,
    /// API root without a trailing slash, e.g. `https://us6.api.mailchimp.com/3.0`.
    pub base_url: String,
    pub list_id: String,
    pub tags: Vec<String>,
    pub status_if_new: MemberStatus,
    pub email_field: Option<String>,
    pub batch_size: usize,
    pub max_concurrent_requests: usize,
    pub max_retry_time: Duration,
    /// Explicit record field → merge tag or group mappings (they win over automatic matching).
    pub field_mappings: Vec<(String, MappingTarget)>,
    pub skip_merge_validation: bool,
    /// Create group names that records use and their category lacks.
    pub create_missing_groups: bool,
    /// The record field that carries the contact's intended status, if any.
    pub status_field: Option<String>,
    pub resubscribe_policy: ResubscribePolicy,
    pub on_delete: OnDelete,
    /// `tag_mode` owned: tags with this prefix belong to the sync, and stale ones are removed.
    pub owned_tag_prefix: Option<String>,
    /// Where rejected records are kept; none keeps them only in the counts and the log.
    pub rejected_storage: Option<StorageSettings>,
    /// Streams whose records are events (classic form).
    pub events_streams: Vec<EventsStream>,
    /// Events may start automations (Mailchimp's `is_syncing` false).
    pub events_start_automations: bool,
}

impl Config {
    /// What the Mailchimp client needs from the config.
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            base_url: self.base_url.clone(),
            list_id: self.list_id.clone(),
            api_key: self.api_key.clone(),
            max_concurrent_requests: self.max_concurrent_requests,
            max_retry_time: self.max_retry_time,
            skip_merge_validation: self.skip_merge_validation,
        }
    }
}

/// Reads, validates and parses the config file; the base URL may be replaced by `MAILCHIMP_API_BASE_URL`.
pub fn load(path: &Path) -> Result<Config, ConnectorError> {
    let value = read_json_file(path, "config")?;
    let base_url_override = std::env::var(BASE_URL_ENV).ok().filter(|v| !v.trim().is_empty());
    from_value(&value, base_url_override.as_deref())
}

/// Reads a JSON file named on the command line, with messages that say which file is wrong.
pub fn read_json_file(path: &Path, what: &str) -> Result<Value, ConnectorError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConnectorError::config(format!("Could not read the {what} file {}: {e}", path.display()))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        ConnectorError::config(format!("The {what} file {} is not valid JSON: {e}", path.display()))
    })
}

/// Validates a config value against the spec and parses it.
pub fn from_value(value: &Value, base_url_override: Option<&str>) -> Result<Config, ConnectorError> {
    validate_against_spec(value)?;
    let raw =
        RawConfig::deserialize(value).map_err(|e| ConnectorError::config(format!("Config error: {e}.")))?;
    let text = |value: Option<String>| value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let api_key =
        text(Some(raw.api_key)).ok_or_else(|| ConnectorError::config("api_key must not be empty."))?;
    let data_center = data_center_of(&api_key)?;
    let base_url = match base_url_override {
        Some(url) => checked_base_url(url)?,
        None => format!("https://{data_center}.api.mailchimp.com/3.0"),
    };
    let list_id =
        text(Some(raw.list_id)).ok_or_else(|| ConnectorError::config("list_id must not be empty."))?;
    let owned_tag_prefix = match raw.tag_mode {
        TagMode::Add => None,
        TagMode::Owned => Some(text(raw.owned_tag_prefix).ok_or_else(|| {
            ConnectorError::config(
                "tag_mode 'owned' needs an owned_tag_prefix (such as hp:): only tags starting with it are ever \
                 removed, so that tags other tools and people manage are left alone.",
            )
        })?),
    };
    let field_mappings = field_mappings(raw.field_mappings)?;
    let rejected_storage = raw.object_storage_config.and_then(RawStorage::settings).transpose()?;
    Ok(Config {
        api_key: ApiKey::new(api_key),
        data_center,
        base_url,
        list_id,
        tags: split_tags(&raw.tags),
        status_if_new: raw.status_if_new,
        email_field: text(raw.email_field),
        // The spec bounds both; the limits are Mailchimp's (500 members a call, 10 connections).
        batch_size: raw.batch_size.clamp(1, MAX_BATCH_MEMBERS as u64) as usize,
        max_concurrent_requests: raw.max_concurrent_requests.clamp(1, MAILCHIMP_CONNECTION_LIMIT as u64)
            as usize,
        max_retry_time: Duration::from_secs(raw.max_retry_seconds),
        field_mappings,
        skip_merge_validation: raw.skip_merge_validation,
        create_missing_groups: raw.create_missing_groups,
        status_field: text(raw.status_field),
        resubscribe_policy: raw.resubscribe_policy,
        on_delete: raw.on_delete,
        owned_tag_prefix,
        rejected_storage,
        events_streams: raw
            .events_streams
            .into_iter()
            .map(|e| EventsStream {
                stream: e.stream.trim().to_string(),
                event_name: e.event_name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
            })
            .filter(|e| !e.stream.is_empty())
            .collect(),
        events_start_automations: raw.events_start_automations,
    })
}

/// Explicit mappings: each names a merge tag or a group, not both; empty entries are skipped.
fn field_mappings(raw: Vec<RawFieldMapping>) -> Result<Vec<(String, MappingTarget)>, ConnectorError> {
    let text = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let mut mappings = Vec::new();
    for mapping in raw {
        let field = mapping.record_field.trim().to_string();
        let targets: Vec<MappingTarget> = [
            text(mapping.merge_tag).map(MappingTarget::MergeTag),
            text(mapping.group).map(MappingTarget::Group),
            text(mapping.marketing_permission).map(MappingTarget::MarketingPermission),
        ]
        .into_iter()
        .flatten()
        .collect();
        let target = match <[MappingTarget; 1]>::try_from(targets) {
            Ok([target]) => target,
            Err(targets) if targets.is_empty() => continue,
            Err(_) => {
                return Err(ConnectorError::config(format!(
                "field_mappings gives '{field}' more than one of merge_tag, group and marketing_permission; \
                     give each entry one of them."
            )))
            }
        };
        if !field.is_empty() {
            mappings.push((field, target));
        }
    }
    Ok(mappings)
}

/// Splits a comma-separated tag list: trimmed, empty pieces dropped, repeats removed.
pub fn split_tags(text: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    tags
}

const KEY_SHAPE: &str =
    "A Mailchimp API key looks like 0123456789abcdef0123456789abcdef-us6: copy the whole key \
     from Profile → Extras → API keys, including the data-center suffix after the dash";

/// Why a key fails the spec's pattern, in words (without the key).
fn key_shape_problem(key: &str) -> String {
    match data_center_of(key.trim()) {
        Err(error) => error.message.trim_end_matches('.').to_string(),
        Ok(_) => format!(
            "The API key does not look like a Mailchimp API key (hexadecimal characters, a dash and the data \
             center). {KEY_SHAPE}"
        ),
    }
}

fn data_center_of(api_key: &str) -> Result<String, ConnectorError> {
    match api_key.rsplit_once('-') {
        Some((head, dc))
            if !head.is_empty() && !dc.is_empty() && dc.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Ok(dc.to_ascii_lowercase())
        }
        _ => Err(ConnectorError::config(format!(
            "The API key has no data-center suffix (such as -us6). {KEY_SHAPE}."
        ))),
    }
}

fn checked_base_url(url: &str) -> Result<String, ConnectorError> {
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| ConnectorError::config(format!("{BASE_URL_ENV} is not a valid URL ({e}).")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => {
            return Err(ConnectorError::config(format!(
                "{BASE_URL_ENV} uses plain http:// for a host that is not this machine; \
                 use https:// so that the API key is never sent unencrypted."
            )))
        }
        other => {
            return Err(ConnectorError::config(format!(
                "{BASE_URL_ENV} must be an https:// URL (got {other}://)."
            )))
        }
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks the config against the spec. Messages name the field; a secret's value is never shown.
fn validate_against_spec(value: &Value) -> Result<(), ConnectorError> {
    let validator = jsonschema::draft7::new(connection_specification()).map_err(|e| {
        ConnectorError::system(format!("The connector's own spec.json is not a valid schema: {e}"))
    })?;
    let problems: Vec<String> = validator
        .iter_errors(value)
        .map(|error| {
            let path = error.instance_path.as_str().trim_start_matches('/').replace('/', ".");
            if path.is_empty() {
                if matches!(error.kind, jsonschema::error::ValidationErrorKind::Required { .. }) {
                    error.to_string()
                } else {
                    "the config must be a JSON object".to_string()
                }
            } else if path == "api_key" || path.starts_with("api_key.") {
                // Never the key itself: the spec's pattern in words.
                match (&error.kind, value.get("api_key").and_then(Value::as_str)) {
                    (jsonschema::error::ValidationErrorKind::Pattern { .. }, Some(key)) => {
                        key_shape_problem(key)
                    }
                    _ => "api_key must be a non-empty string".to_string(),
                }
            } else {
                format!("{path}: {error}")
            }
        })
        .collect();
    match problems.as_slice() {
        [] => Ok(()),
        // A malformed key alone: its own message, as check shows it.
        [only] if only.starts_with("The API key") => Err(ConnectorError::config(format!("{only}."))),
        _ => Err(ConnectorError::config(format!("Config validation error: {}.", problems.join("; ")))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({"api_key": "0123456789abcdef0123456789abcdef-us6", "list_id": "a1b2c3d4e5"})
    }

    #[test]
    fn parses_defaults_and_data_center() {
        let config = from_value(&good(), None).unwrap();
        assert_eq!(config.data_center, "us6");
        assert_eq!(config.base_url, "https://us6.api.mailchimp.com/3.0");
        assert_eq!(config.batch_size, 500);
        assert_eq!(config.max_concurrent_requests, 5);
        assert_eq!(config.status_if_new, MemberStatus::Subscribed);
        assert!(config.tags.is_empty());
        assert_eq!(config.email_field, None);
        assert_eq!(config.status_field, None);
        assert_eq!(config.resubscribe_policy, ResubscribePolicy::Skip);
        assert_eq!(config.on_delete, OnDelete::Ignore);
        assert_eq!(config.owned_tag_prefix, None);
    }

    #[test]
    fn defaults_and_limits_equal_spec_json() {
        let spec = connection_specification();
        let property = |name: &str| spec["properties"][name].clone();
        assert_eq!(property("batch_size")["default"], json!(defaults::BATCH_SIZE));
        assert_eq!(property("batch_size")["maximum"], json!(MAX_BATCH_MEMBERS));
        assert_eq!(property("max_concurrent_requests")["default"], json!(defaults::MAX_CONCURRENT_REQUESTS));
        assert_eq!(property("max_concurrent_requests")["maximum"], json!(MAILCHIMP_CONNECTION_LIMIT));
        assert_eq!(property("max_retry_seconds")["default"], json!(defaults::MAX_RETRY_SECONDS));
        assert_eq!(property("status_if_new")["default"], json!(defaults::STATUS_IF_NEW.as_str()));
        assert_eq!(property("resubscribe_policy")["default"], json!("skip"));
        assert_eq!(property("on_delete")["default"], json!("ignore"));
        assert_eq!(property("tag_mode")["default"], json!("add"));
        assert_eq!(property("skip_merge_validation")["default"], json!(false));
        assert_eq!(property("create_missing_groups")["default"], json!(false));
        let parsed = from_value(&good(), None).unwrap();
        assert_eq!(parsed.resubscribe_policy, ResubscribePolicy::default());
        assert_eq!(parsed.on_delete, OnDelete::default());
        assert_eq!(parsed.owned_tag_prefix, None, "tag_mode add");
        assert!(!parsed.create_missing_groups);
        let choices = |name: &str| property(name)["enum"].as_array().unwrap().len();
        assert_eq!(choices("resubscribe_policy"), 2);
        assert_eq!(choices("on_delete"), 4);
        assert_eq!(choices("tag_mode"), 2);
        for on_delete in property("on_delete")["enum"].as_array().unwrap() {
            let parsed: OnDelete = serde_json::from_value(on_delete.clone()).unwrap();
            assert_eq!(json!(parsed.as_str()), *on_delete);
        }
        let mut whole = good();
        whole["batch_size"] = json!(20.0);
        assert_eq!(from_value(&whole, None).unwrap().batch_size, 20);
    }

    #[test]
    fn consent_settings_parse_and_owned_tags_need_a_prefix() {
        let mut value = good();
        value["status_field"] = json!(" consent ");
        value["resubscribe_policy"] = json!("pending");
        value["on_delete"] = json!("delete_permanently");
        value["tag_mode"] = json!("owned");
        value["owned_tag_prefix"] = json!("hp:");
        let config = from_value(&value, None).unwrap();
        assert_eq!(config.status_field.as_deref(), Some("consent"));
        assert_eq!(config.resubscribe_policy, ResubscribePolicy::Pending);
        assert_eq!(config.on_delete, OnDelete::DeletePermanently);
        assert_eq!(config.owned_tag_prefix.as_deref(), Some("hp:"));

        value["owned_tag_prefix"] = json!("  ");
        let error = from_value(&value, None).unwrap_err();
        assert!(error.message.contains("owned_tag_prefix"), "{}", error.message);
        value["on_delete"] = json!("erase");
        assert!(from_value(&value, None)
            .unwrap_err()
            .message
            .starts_with("Config validation error: on_delete"));
    }

    #[test]
    fn tags_are_split_trimmed_and_deduplicated() {
        assert_eq!(split_tags(" a, b ,,a, c d ,"), vec!["a", "b", "c d"]);
        assert!(split_tags(" , ").is_empty());
    }

    #[test]
    fn a_key_without_data_center_is_a_config_error_showing_the_shape() {
        for key in ["deadbeefcafe", "abc-", "-us6", "abc-us 6"] {
            let mut config = good();
            config["api_key"] = json!(key);
            let error = from_value(&config, None).unwrap_err();
            assert_eq!(error.failure_type, crate::error::FailureType::ConfigError);
            assert!(error.message.contains("0123456789abcdef0123456789abcdef-us6"), "{}", error.message);
            assert!(!error.message.contains(key) || key.len() < 6, "key echoed: {}", error.message);
        }
    }

    #[test]
    fn a_key_of_the_wrong_shape_fails_the_spec_pattern_with_the_shape_in_words() {
        for (key, says) in [
            ("abc123", "no data-center suffix"),
            ("abc123-us6", "does not look like a Mailchimp API key"),
            ("0123456789abcdef0123456789abcdef-us6-extra", "does not look like a Mailchimp API key"),
        ] {
            let mut config = good();
            config["api_key"] = json!(key);
            let message = from_value(&config, None).unwrap_err().message;
            assert!(message.starts_with("The API key") && message.contains(says), "{key}: {message}");
            assert!(!message.contains(key), "key echoed: {message}");
        }
        for key in [" 0123456789abcdef0123456789abcdef-us6 ", "0123456789ABCDEF0123456789ABCDEF-us21"] {
            let mut config = good();
            config["api_key"] = json!(key);
            assert!(from_value(&config, None).is_ok(), "{key}");
        }
    }

    #[test]
    fn rejected_records_storage_is_none_or_an_s3_bucket_with_trimmed_settings() {
        assert_eq!(from_value(&good(), None).unwrap().rejected_storage, None);
        let mut config = good();
        config["object_storage_config"] = json!({"storage_type": "None"});
        assert_eq!(from_value(&config, None).unwrap().rejected_storage, None);
        config["object_storage_config"] = json!({"storage_type": "S3", "s3_bucket_name": " b ", "bucket_path": " p/q ",
                                                 "s3_bucket_region": "", "access_key_id": "", "s3_endpoint": "http://minio:9000"});
        let storage = from_value(&config, None).unwrap().rejected_storage.unwrap();
        assert_eq!(
            (storage.bucket.as_str(), storage.region.as_str(), storage.bucket_path.as_str()),
            ("b", "us-east-1", "p/q")
        );
        assert_eq!((storage.endpoint.as_deref(), storage.access_key_id), (Some("http://minio:9000"), None));
        config["object_storage_config"]["s3_bucket_name"] = json!("  ");
        let message = from_value(&config, None).unwrap_err().message;
        assert!(message.contains("s3_bucket_name"), "{message}");
    }

    #[test]
    fn schema_errors_name_the_field_and_never_the_secret() {
        let mut config = good();
        config["batch_size"] = json!(900);
        let message = from_value(&config, None).unwrap_err().message;
        assert!(message.starts_with("Config validation error: batch_size:"), "{message}");

        let message = from_value(&json!({"list_id": "x"}), None).unwrap_err().message;
        assert!(message.contains("\"api_key\" is a required property"), "{message}");

        let message =
            from_value(&json!({"api_key": 12345678901u64, "list_id": "x"}), None).unwrap_err().message;
        assert!(message.contains("api_key must be a non-empty string") && !message.contains("12345678901"));

        let message = from_value(&json!(["secret-us6"]), None).unwrap_err().message;
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn base_url_override_allows_http_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:8080/3.0/",
            "http://localhost:1/3.0",
            "http://[::1]:9/3.0",
            "https://mc.internal/3.0",
        ] {
            assert!(from_value(&good(), Some(ok)).is_ok(), "{ok}");
        }
        assert_eq!(
            from_value(&good(), Some("http://127.0.0.1:8080/3.0/")).unwrap().base_url,
            "http://127.0.0.1:8080/3.0"
        );
        for bad in ["http://10.0.0.1/3.0", "http://example.org/3.0", "ftp://127.0.0.1/", "not a url"] {
            let error = from_value(&good(), Some(bad)).unwrap_err();
            assert_eq!(error.failure_type, crate::error::FailureType::ConfigError, "{bad}");
        }
    }

    #[test]
    fn api_key_is_redacted_in_debug_and_display() {
        let config = from_value(&good(), None).unwrap();
        let shown = format!("{config:?} {}", config.api_key);
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
    }
}
