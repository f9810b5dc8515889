//! What Mailchimp sends back: audiences, merge fields, batch-subscribe results and error bodies.

use super::member::MemberStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// An audience (`GET /lists/{id}`), reduced to what the connector uses.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ListInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub double_optin: bool,
    /// Whether the audience has GDPR fields (marketing permissions).
    #[serde(default)]
    pub marketing_permissions: bool,
    #[serde(default)]
    pub stats: ListStats,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ListStats {
    /// Subscribed contacts.
    #[serde(default)]
    pub member_count: u64,
    #[serde(default)]
    pub unsubscribe_count: u64,
    #[serde(default)]
    pub cleaned_count: u64,
}

/// A merge field of the audience (`GET /lists/{id}/merge-fields`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MergeField {
    pub tag: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub options: Value,
}

/// A page of merge fields. Both fields are required: an answer without them is not a page (an
/// empty page would silently map nothing).
#[derive(Debug, Clone, Deserialize)]
pub struct MergeFieldsPage {
    pub merge_fields: Vec<MergeField>,
    pub total_items: u64,
}

/// A group category of the audience (`/lists/{id}/interest-categories`) with its interests.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Category {
    pub id: String,
    pub title: String,
    /// checkboxes, dropdown, radio or hidden.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub interests: Vec<Interest>,
}

impl Category {
    /// Radio and dropdown categories hold one interest per contact.
    pub fn single_choice(&self) -> bool {
        matches!(self.kind.as_str(), "radio" | "dropdown")
    }
}

/// One interest (group) of a category.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Interest {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CategoriesPage {
    pub categories: Vec<Category>,
    pub total_items: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InterestsPage {
    pub interests: Vec<Interest>,
    pub total_items: u64,
}

/// What a sync reads about the audience before it starts.
#[derive(Debug, Clone)]
pub struct Audience {
    pub list: ListInfo,
    pub merge_fields: Vec<MergeField>,
    pub categories: Vec<Category>,
}

/// The answer to `POST /lists/{id}` (batch subscribe). A 200 may still reject some members. The
/// totals and `errors` are required: an answer without them (`{}`, or another resource's object
/// after a redirect) says nothing about the contacts sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchResponse {
    pub total_created: u64,
    pub total_updated: u64,
    pub errors: Vec<MemberError>,
    /// The members created and updated; asked for only when their tags matter (owned tags).
    #[serde(default)]
    pub new_members: Vec<MemberSummary>,
    #[serde(default)]
    pub updated_members: Vec<MemberSummary>,
}

impl BatchResponse {
    /// What is missing when the answer does not account for every one of the `sent` members:
    /// Mailchimp reports each as created, updated or refused in `errors` (API reference, "Batch
    /// subscribe or unsubscribe"). More is tolerated; fewer means contacts may not have arrived.
    pub fn unaccounted(&self, sent: usize) -> Option<String> {
        let accounted = self.total_created + self.total_updated + self.errors.len() as u64;
        (accounted < sent as u64).then(|| {
            format!(
                "it accounts for {accounted} of the {sent} contacts sent ({} created, {} updated, {} refused)",
                self.total_created,
                self.total_updated,
                self.errors.len()
            )
        })
    }
}

/// A member, reduced to what the connector reads: its address, status and tags.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct MemberSummary {
    pub email_address: String,
    pub status: MemberStatus,
    #[serde(default)]
    pub tags: Vec<TagRef>,
    /// Interest id → whether the contact is in that group.
    #[serde(default)]
    pub interests: std::collections::BTreeMap<String, bool>,
    /// The audience's GDPR marketing permissions with this contact's choice (GDPR audiences only).
    #[serde(default)]
    pub marketing_permissions: Vec<PermissionState>,
}

/// One marketing permission of a contact, as Mailchimp shows it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct PermissionState {
    pub marketing_permission_id: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct TagRef {
    #[serde(default)]
    pub name: String,
}

/// A page of `GET /lists`: the audiences the key can see.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListsPage {
    pub lists: Vec<ListInfo>,
    pub total_items: u64,
}

/// A page of `GET /lists/{id}/members` with only each contact's marketing permissions.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PermissionsPage {
    pub members: Vec<MemberPermissions>,
}

/// The audience's GDPR marketing permissions, as one contact carries them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MemberPermissions {
    #[serde(default)]
    pub marketing_permissions: Vec<PermissionState>,
}

/// A page of `GET /lists/{id}/members` with only the addresses.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AddressesPage {
    pub members: Vec<Address>,
    pub total_items: u64,
}

/// A contact's address, as a page of addresses lists it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Address {
    pub email_address: String,
}

/// A page of `GET /lists/{id}/members`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MembersPage {
    pub members: Vec<MemberSummary>,
    pub total_items: u64,
}

/// One member that Mailchimp rejected inside a 200 response.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MemberError {
    #[serde(default)]
    pub email_address: Option<String>,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub field_message: Option<String>,
}

/// An `application/problem+json` error body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub errors: Vec<ProblemFieldError>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ProblemFieldError {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub message: String,
}

/// A failed attempt at one request.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// Mailchimp (or a proxy in front of it) answered with a non-2xx status.
    Status { status: u16, problem: Option<Problem>, body_excerpt: String, retry_after: Option<Duration> },
    /// No answer: the host could not be reached, the connection broke, or the request timed out.
    Network { detail: String },
    /// A 2xx answer whose body is not what the API documents.
    Decode { detail: String },
    /// A 2xx answer that does not hold what was asked (a batch answer missing contacts).
    Unaccounted { detail: String },
    /// A redirect (3xx), which is never followed.
    Redirect { status: u16, location: String },
}

impl ApiError {
    /// A short description for retry messages: "429 with no body", "502 Bad Gateway", "timed out".
    pub fn status_text(&self) -> String {
        match self {
            ApiError::Status { status, problem: Some(p), .. } if !p.title.is_empty() => {
                format!("{status} {}", p.title)
            }
            ApiError::Status { status, body_excerpt, .. } if body_excerpt.is_empty() => {
                format!("{status} with no body")
            }
            ApiError::Status { status, .. } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("unexpected status");
                format!("{status} {reason}")
            }
            ApiError::Network { detail } => detail.clone(),
            ApiError::Decode { .. } => "an unexpected answer".into(),
            ApiError::Unaccounted { .. } => "an answer that does not account for every contact sent".into(),
            ApiError::Redirect { status, location } => format!("a redirect ({status}) to {location}"),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Status { status, problem: Some(p), .. } => {
                write!(f, "{status} {}", p.title)?;
                if !p.detail.is_empty() {
                    write!(f, ": {}", p.detail)?;
                }
                for e in &p.errors {
                    write!(f, " [{}: {}]", e.field, e.message)?;
                }
                Ok(())
            }
            ApiError::Status { status, body_excerpt, .. } if body_excerpt.is_empty() => {
                write!(f, "{status} with no body")
            }
            ApiError::Status { status, body_excerpt, .. } => write!(f, "{status}: {body_excerpt}"),
            ApiError::Network { detail } => write!(f, "network error: {detail}"),
            ApiError::Decode { detail } => write!(f, "unexpected answer: {detail}"),
            ApiError::Unaccounted { detail } => write!(f, "an incomplete answer: {detail}"),
            ApiError::Redirect { status, location } => write!(
                f,
                "a redirect ({status}) to {location}, not followed: contacts' data goes only to the configured \
                 API address"
            ),
        }
    }
}
