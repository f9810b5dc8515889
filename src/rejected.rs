//! Rejected records kept for review: each as a JSON line (the record's data as the source sent it,
//! its stream, and why it was rejected) in an S3-compatible bucket, stored before any state after it.

use crate::config::StorageSettings;
use crate::error::ConnectorError;
use crate::fields::RecordData;
use crate::protocol::StreamKey;
use object_store::aws::AmazonS3Builder;
use object_store::path::{Path as ObjectPath, PathPart};
use object_store::{BackoffConfig, ClientOptions, ObjectStore, PutPayload, RetryConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A part is written once its lines reach this size (and before any state after them).
const PART_BYTES: usize = 8 << 20;
/// One request to the bucket gives up after this long (then it is retried).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a record was rejected: a short reason (the same for every record rejected the same way),
/// the field at fault when there is one, and a message that is safe to log (no email in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: &'static str,
    pub field: Option<String>,
    pub message: String,
}

impl Rejection {
    /// The record cannot become a contact.
    pub fn invalid(field: Option<&str>, message: impl Into<String>) -> Self {
        Rejection { reason: "invalid record", field: field.map(str::to_string), message: message.into() }
    }

    /// Mailchimp refused the contact.
    pub fn refused(message: impl Into<String>) -> Self {
        Rejection { reason: "refused by Mailchimp", field: None, message: message.into() }
    }
}

/// A record as the source sent it, kept while it may still be rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Original {
    pub stream: StreamKey,
    pub data: RecordData<'static>,
}

/// The bucket, and the rejected records not yet written to it.
pub struct RejectedStore {
    store: Arc<dyn ObjectStore>,
    /// `s3://bucket/bucket_path`, for messages.
    location: String,
    /// `bucket_path/sync folder`.
    folder: Vec<String>,
    /// The start of every file name of this run, so that attempts never overwrite each other.
    run: String,
    /// JSON lines per stream, not yet stored.
    pending: BTreeMap<StreamKey, Vec<u8>>,
    pending_bytes: usize,
    pending_records: u64,
    /// How many of the input's states came before the oldest waiting record: states after that
    /// one wait until it is stored.
    pending_since_state: u64,
    stored_records: u64,
    parts: u64,
}

impl RejectedStore {
    /// Connects to the bucket (nothing is sent yet). The sync's folder is the platform's job id
    /// (`sync_id` from the catalog, else `WORKER_JOB_ID`) when it gives one, else the start time.
    pub fn new(
        settings: &StorageSettings,
        sync_id: Option<i64>,
        max_retry_time: Duration,
    ) -> Result<Self, ConnectorError> {
        let stamp = utc_stamp();
        let job = sync_id
            .map(|id| id.to_string())
            .or_else(|| std::env::var("WORKER_JOB_ID").ok().filter(|j| !j.trim().is_empty()));
        let attempt = std::env::var("WORKER_JOB_ATTEMPT").ok().filter(|a| !a.trim().is_empty());
        let mut folder = path_pieces(&settings.bucket_path);
        folder.push(job.unwrap_or_else(|| stamp.clone()));
        Ok(Self {
            store: Arc::new(s3(settings, max_retry_time)?),
            location: location(settings),
            folder,
            run: match attempt {
                Some(attempt) => format!("rejected_{stamp}_attempt{attempt}"),
                None => format!("rejected_{stamp}"),
            },
            pending: BTreeMap::new(),
            pending_bytes: 0,
            pending_records: 0,
            pending_since_state: 0,
            stored_records: 0,
            parts: 0,
        })
    }

    /// Adds a rejected record that came after `states_before` of the input's states; it is stored
    /// by the next `store`.
    pub fn add(&mut self, original: &Original, rejection: &Rejection, states_before: u64) {
        self.pending_since_state =
            if self.has_pending() { self.pending_since_state.min(states_before) } else { states_before };
        let line = rejected_line(original, rejection);
        let buffer = self.pending.entry(original.stream.clone()).or_default();
        let before = buffer.len();
        serde_json::to_writer(&mut *buffer, &line).expect("a JSON value always serializes");
        buffer.push(b'\n');
        self.pending_bytes += buffer.len() - before;
        self.pending_records += 1;
    }

    /// Rejected records are waiting to be stored.
    pub fn has_pending(&self) -> bool {
        self.pending_records > 0
    }

    /// Whether the input's `nth` state (counting from 1) must wait for records not yet stored.
    pub fn holds_back(&self, nth: u64) -> bool {
        self.has_pending() && self.pending_since_state < nth
    }

    /// So many are waiting that they should be stored now.
    pub fn is_full(&self) -> bool {
        self.pending_bytes >= PART_BYTES
    }

    /// Rejected records stored so far.
    pub fn stored(&self) -> u64 {
        self.stored_records
    }

    /// The bucket and its path, as configured.
    pub fn bucket_location(&self) -> &str {
        &self.location
    }

    /// Where this sync's records go (its folder under the bucket path), for the log.
    pub fn location(&self) -> String {
        format!(
            "{}/{}",
            self.location.trim_end_matches('/'),
            self.folder.last().map(String::as_str).unwrap_or("")
        )
    }

    /// Writes every waiting line, one part per stream; returns once the bucket has them all. A part
    /// that fails (after the client's retries) stays waiting and the failure is returned.
    pub async fn store(&mut self) -> Result<(), ConnectorError> {
        while let Some((stream, lines)) = self.pending.pop_first() {
            self.parts += 1;
            let path = self.part_path(&stream);
            let records = lines.iter().filter(|b| **b == b'\n').count() as u64;
            let size = lines.len();
            // Shared, not copied: the part is kept only in case the write fails.
            let lines = bytes::Bytes::from(lines);
            if let Err(error) = self.store.put(&path, PutPayload::from(lines.clone())).await {
                self.pending.insert(stream, lines.to_vec());
                return Err(storage_error(
                    &format!(
                        "Could not store {} in {}",
                        rejected_records(self.pending_records),
                        self.location()
                    ),
                    &error,
                ));
            }
            self.pending_bytes -= size;
            self.pending_records -= records;
            self.stored_records += records;
        }
        Ok(())
    }

    /// `check`: writes a small object under the bucket path, then deletes it (a key that may write
    /// but not delete still passes).
    pub async fn check(&self) -> Result<(), ConnectorError> {
        let mut pieces = self.folder.clone();
        pieces.pop();
        pieces.push(format!("_destination_mailchimp_check_{}.txt", utc_stamp()));
        let path = object_path(&pieces);
        self.store
            .put(&path, PutPayload::from_static(b"destination-mailchimp can write rejected records here\n"))
            .await
            .map_err(|e| {
                storage_error(
                    &format!("Could not write to the rejected records bucket {}", self.location),
                    &e,
                )
            })?;
        if let Err(error) = self.store.delete(&path).await {
            tracing::debug!("the check object could not be deleted: {error}");
        }
        Ok(())
    }

    fn part_path(&self, stream: &StreamKey) -> ObjectPath {
        let mut pieces = self.folder.clone();
        pieces.push(stream.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "_".into()));
        pieces.push(stream.name.clone());
        pieces.push(format!("{}_part{:05}.jsonl", self.run, self.parts));
        object_path(&pieces)
    }
}

/// "1 rejected record", "2 rejected records".
pub fn rejected_records(count: u64) -> String {
    match count {
        1 => "1 rejected record".into(),
        n => format!("{n} rejected records"),
    }
}

/// One stored line: the stream, the record's data as the source sent it, and why it was rejected.
pub fn rejected_line(original: &Original, rejection: &Rejection) -> Value {
    json!({
        "stream": original.stream.name,
        "namespace": original.stream.namespace,
        "data": data_value(&original.data),
        "rejected_reason": rejection.reason,
        "rejected_field": rejection.field,
        "rejected_message": rejection.message,
    })
}

/// A record's data as JSON, as the source sent it.
pub fn data_value(data: &RecordData) -> Value {
    data.to_value()
}

fn s3(settings: &StorageSettings, max_retry_time: Duration) -> Result<impl ObjectStore, ConnectorError> {
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&settings.bucket)
        .with_region(&settings.region)
        .with_retry(RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 10,
            // The client signs once per request; AWS accepts a signature for 5 minutes.
            retry_timeout: max_retry_time.min(Duration::from_secs(240)),
        })
        .with_client_options(ClientOptions::new().with_timeout(REQUEST_TIMEOUT).with_allow_http(true));
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
    }
    if let (Some(id), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
        builder = builder.with_access_key_id(id.expose()).with_secret_access_key(secret.expose());
    }
    builder.build().map_err(|e| {
        ConnectorError::config(format!("The rejected records storage settings are not usable: {e}"))
    })
}

fn location(settings: &StorageSettings) -> String {
    let path = path_pieces(&settings.bucket_path).join("/");
    format!("s3://{}/{path}", settings.bucket)
}

fn path_pieces(path: &str) -> Vec<String> {
    path.split('/').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect()
}

fn object_path(pieces: &[String]) -> ObjectPath {
    ObjectPath::from_iter(pieces.iter().map(|p| PathPart::from(p.as_str())))
}

/// A failure of the bucket: config error when the bucket or the credentials are wrong, else a
/// passing failure (the client has already retried it).
fn storage_error(what: &str, error: &object_store::Error) -> ConnectorError {
    let text = error.to_string();
    let lower = text.to_ascii_lowercase();
    let wrong_settings =
        matches!(
            error,
            object_store::Error::NotFound { .. }
                | object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || ["nosuchbucket", "accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch", "403", "404"]
            .iter()
            .any(|needle| lower.contains(needle));
    let message = format!(
        "{what}: {}. Check object_storage_config (bucket name, region, endpoint and credentials with write access \
         to the bucket path).",
        crate::redact::excerpt(&text, 400)
    );
    if wrong_settings {
        ConnectorError::config(message)
    } else {
        ConnectorError::transient(message)
    }
}

/// Now in UTC as `20261129T110302Z`, for folder and file names that sort by time.
fn utc_stamp() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = crate::convert::civil_from_days(days as i64);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_keeps_the_data_as_sent_and_says_why() {
        let original = Original {
            stream: StreamKey { namespace: Some("crm".into()), name: "users".into() },
            data: RecordData::from(json!({"Email": " Ann@Mail.io ", "n": 1})),
        };
        let line =
            rejected_line(&original, &Rejection::invalid(Some("Email"), "the email field 'Email' is bad"));
        assert_eq!(
            line,
            json!({"stream": "users", "namespace": "crm", "data": {"Email": " Ann@Mail.io ", "n": 1},
                   "rejected_reason": "invalid record", "rejected_field": "Email",
                   "rejected_message": "the email field 'Email' is bad"})
        );
    }
}
