//! Mailchimp's contact vocabulary: the subscriber hash, member statuses, what is done to a member,
//! and a member as the batch-subscribe body carries it.

use md5::{Digest, Md5};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

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

/// A merge tag, shared by every contact that has a value for it (not copied per contact).
pub type MergeTag = Arc<str>;

/// Named values in the order they were set; setting a name again replaces its value. Merge fields
/// are named by their tag, member attributes by their (static) name.
#[derive(Debug, Clone, PartialEq)]
pub struct Values<K>(Vec<(K, Value)>);

impl<K> Default for Values<K> {
    fn default() -> Self {
        Values(Vec::new())
    }
}

impl<K: AsRef<str>> Values<K> {
    pub fn insert(&mut self, name: K, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k.as_ref() == name.as_ref()) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k.as_ref() == name).map(|(_, v)| v)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Takes a later record's values: each one it has replaces the earlier one.
    pub fn extend(&mut self, later: Values<K>) {
        for (name, value) in later.0 {
            self.insert(name, value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// As a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }
}

impl From<Map<String, Value>> for Values<MergeTag> {
    fn from(map: Map<String, Value>) -> Self {
        Values(map.into_iter().map(|(k, v)| (MergeTag::from(k), v)).collect())
    }
}

impl<K: AsRef<str>> Serialize for Values<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name.as_ref(), value)?;
        }
        map.end()
    }
}

/// One contact as sent in a batch-subscribe request (one field per part of Mailchimp's member body,
/// plus what the sync needs to apply it: hence its width). `status` is sent only for an explicit change
/// the source asks for (an opt-out, a subscription, a deletion as unsubscribe); otherwise existing
/// contacts keep theirs, and `status_if_new` applies only to contacts new to the audience.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub email_address: String,
    pub status: Option<MemberStatus>,
    pub status_if_new: MemberStatus,
    pub merge_fields: Values<MergeTag>,
    pub tags: Vec<String>,
    /// Member attributes such as `language`, `vip` or `location`, sent beside the merge fields.
    pub attributes: Values<&'static str>,
    /// Groups: sent as `interests` (interest id → bool); boxed, as most contacts have none.
    pub groups: Option<Box<GroupChoice>>,
    /// Not sent: what the sync needs to apply the contact.
    pub key: EmailKey,
    pub action: Action,
    /// Owned-tag mode: the owned tags the record carries; any other owned tag the contact has in
    /// Mailchimp is removed after the upsert. `None` when the sync leaves the contact's tags alone.
    pub owned_tags: Option<Vec<String>>,
    /// The record was a deletion at the source (for the counts).
    pub deleted_at_source: bool,
    /// GDPR marketing permissions the record sets: (permission text normalized, enabled). Not in the
    /// batch body (Mailchimp takes them per member); `None` for most contacts.
    pub permissions: Option<Box<Vec<(String, bool)>>>,
}

/// The member as the batch-subscribe body carries it: the parts that are set, attributes beside
/// the merge fields, groups as `interests`.
impl Serialize for Member {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("email_address", &self.email_address)?;
        if let Some(status) = self.status {
            map.serialize_entry("status", &status)?;
        }
        map.serialize_entry("status_if_new", &self.status_if_new)?;
        if !self.merge_fields.is_empty() {
            map.serialize_entry("merge_fields", &self.merge_fields)?;
        }
        if !self.tags.is_empty() {
            map.serialize_entry("tags", &self.tags)?;
        }
        for (name, value) in self.attributes.iter() {
            map.serialize_entry(name, value)?;
        }
        if let Some(groups) = &self.groups {
            map.serialize_entry("interests", &groups.interests)?;
        }
        map.end()
    }
}

impl Member {
    /// A contact with only an email address: nothing but the action is applied.
    pub fn bare(email: String, status_if_new: MemberStatus, action: Action) -> Self {
        Self {
            key: email_key(&email),
            email_address: email,
            status: None,
            status_if_new,
            merge_fields: Values::default(),
            tags: Vec::new(),
            attributes: Values::default(),
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
