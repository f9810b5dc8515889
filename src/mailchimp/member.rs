//! Mailchimp's contact vocabulary: the subscriber hash, member statuses, what is done to a member,
//! and a member as the batch-subscribe body carries it.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Mailchimp's cap on members in one batch-subscribe call.
pub const MAX_BATCH_MEMBERS: usize = 500;

/// MD5 of the lowercased email: Mailchimp's identity of a contact (`subscriber_hash`).
pub type EmailKey = [u8; 16];

pub fn email_key(email: &str) -> EmailKey {
    let mut hasher = Md5::new();
    if !email.is_ascii() {
        hasher.update(email.to_lowercase().as_bytes());
    } else {
        // ASCII: lowercase through a small buffer instead of a new string.
        let mut chunk = [0u8; 64];
        for piece in email.as_bytes().chunks(chunk.len()) {
            let lower = &mut chunk[..piece.len()];
            lower.copy_from_slice(piece);
            lower.make_ascii_lowercase();
            hasher.update(&*lower);
        }
    }
    hasher.finalize().into()
}

/// The subscriber hash as Mailchimp writes it (lowercase hex).
pub fn subscriber_hash(email: &str) -> String {
    hex(&email_key(email))
}

/// An email key as Mailchimp's subscriber hash (lowercase hex).
pub fn hex(key: &EmailKey) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A member's status. The first four may be sent; Mailchimp also answers with `cleaned` (bounced)
/// and `archived`, and anything it adds later reads as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    #[default]
    Subscribed,
    Pending,
    Transactional,
    Unsubscribed,
    Cleaned,
    Archived,
    #[serde(other)]
    Other,
}

impl MemberStatus {
    /// A status a sync may send (`subscribed`, `pending`, `transactional`, `unsubscribed`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "subscribed" => Some(Self::Subscribed),
            "pending" => Some(Self::Pending),
            "transactional" => Some(Self::Transactional),
            "unsubscribed" => Some(Self::Unsubscribed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribed => "subscribed",
            Self::Pending => "pending",
            Self::Transactional => "transactional",
            Self::Unsubscribed => "unsubscribed",
            Self::Cleaned => "cleaned",
            Self::Archived => "archived",
            Self::Other => "other",
        }
    }

    /// A contact who opted out or whose address bounced: Mailchimp refuses to subscribe it again
    /// by API ("Member In Compliance State").
    pub fn blocks_resubscription(self) -> bool {
        matches!(self, Self::Unsubscribed | Self::Cleaned)
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is done to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Batch subscribe: create or update.
    #[default]
    Upsert,
    /// Archive (`DELETE /lists/{id}/members/{hash}`), for a deletion at the source.
    Archive,
    /// Erase (`…/actions/delete-permanent`), for a deletion at the source.
    DeletePermanently,
}

/// One contact as sent in a batch-subscribe request (one field per part of Mailchimp's member body,
/// plus what the sync needs to apply it: hence its width). `status` is sent only for an explicit change
/// the source asks for (an opt-out, a subscription, a deletion as unsubscribe); otherwise existing
/// contacts keep theirs, and `status_if_new` applies only to contacts new to the audience.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub email_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MemberStatus>,
    pub status_if_new: MemberStatus,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub merge_fields: Map<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Member attributes such as `language`, `vip` or `location`, sent beside the merge fields.
    #[serde(flatten)]
    pub attributes: Map<String, Value>,
    /// Groups: sent as `interests` (interest id → bool); boxed, as most contacts have none.
    #[serde(rename = "interests", skip_serializing_if = "Option::is_none", serialize_with = "interests_of")]
    pub groups: Option<Box<GroupChoice>>,
    #[serde(skip)]
    pub key: EmailKey,
    #[serde(skip)]
    pub action: Action,
    /// Owned-tag mode: the owned tags the record carries; any other owned tag the contact has in
    /// Mailchimp is removed after the upsert. `None` when the sync leaves the contact's tags alone.
    #[serde(skip)]
    pub owned_tags: Option<Vec<String>>,
    /// The record was a deletion at the source (for the counts).
    #[serde(skip)]
    pub deleted_at_source: bool,
    /// GDPR marketing permissions the record sets: (permission text normalized, enabled). Not in the
    /// batch body (Mailchimp takes them per member); `None` for most contacts.
    #[serde(skip)]
    pub permissions: Option<Box<Vec<(String, bool)>>>,
}

impl Member {
    /// A contact with only an email address: nothing but the action is applied.
    pub fn bare(email: String, status_if_new: MemberStatus, action: Action) -> Self {
        Self {
            key: email_key(&email),
            email_address: email,
            status: None,
            status_if_new,
            merge_fields: Map::new(),
            tags: Vec::new(),
            attributes: Map::new(),
            groups: None,
            action,
            owned_tags: None,
            deleted_at_source: false,
            permissions: None,
        }
    }
}

/// A contact's groups: its whole selection in each category a record named.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupChoice {
    /// Interest id → whether the contact is in it, for every interest of each category below.
    pub interests: Map<String, Value>,
    /// The categories (ids) whose selection this holds.
    pub categories: Vec<String>,
    /// Names a record chose that their category does not have yet: (category id, name). They are
    /// created before the contact is sent when the sync may create groups.
    pub missing: Vec<(String, String)>,
}

impl GroupChoice {
    /// Folds a later record's choice in: each category it names takes the later selection whole.
    pub fn merge(&mut self, later: GroupChoice) {
        self.missing.retain(|(category, _)| !later.categories.contains(category));
        self.missing.extend(later.missing);
        self.interests.extend(later.interests);
        for category in later.categories {
            if !self.categories.contains(&category) {
                self.categories.push(category);
            }
        }
    }
}

fn interests_of<S: serde::Serializer>(
    groups: &Option<Box<GroupChoice>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match groups {
        Some(groups) => groups.interests.serialize(serializer),
        None => serializer.serialize_none(),
    }
}

/// The batch-subscribe body (`POST /lists/{id}`) for these members; `None` when there are none.
pub fn members_body<'a>(members: impl Iterator<Item = &'a Member>) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(
        64 + members.size_hint().1.unwrap_or(MAX_BATCH_MEMBERS).min(MAX_BATCH_MEMBERS) * 200,
    );
    body.extend_from_slice(b"{\"update_existing\":true,\"members\":[");
    let mut any = false;
    for member in members {
        if any {
            body.push(b',');
        }
        any = true;
        serde_json::to_writer(&mut body, member).expect("a member always serializes");
    }
    body.extend_from_slice(b"]}");
    any.then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_md5_of_lowercased_email() {
        // Mailchimp's documented example hash of "urist.mcvankab@freddiesjokes.com".
        assert_eq!(subscriber_hash("Urist.McVankab@freddiesjokes.com"), "62eeb292278cc15f5817cb78f7790b08");
        assert_eq!(email_key("ÄDA@x.io"), email_key("äda@x.io"));
    }

    #[test]
    fn statuses_read_every_answer_and_parse_only_what_may_be_sent() {
        let read: Vec<MemberStatus> =
            serde_json::from_str(r#"["subscribed","cleaned","archived","someday"]"#).unwrap();
        assert_eq!(
            read,
            [MemberStatus::Subscribed, MemberStatus::Cleaned, MemberStatus::Archived, MemberStatus::Other]
        );
        assert_eq!(MemberStatus::parse("cleaned"), None);
        assert!(
            MemberStatus::Cleaned.blocks_resubscription() && !MemberStatus::Pending.blocks_resubscription()
        );
    }
}
