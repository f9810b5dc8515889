//! Mailchimp's contact vocabulary: the subscriber hash, member statuses, what is done to a member,
//! and a member as the batch-subscribe body carries it.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize, Serializer};
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

/// A contact's merge fields as the request body carries them: `"TAG":value` entries written once,
/// when each is set, in the order set. Setting a tag again replaces its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeFields {
    /// The entries' JSON, one after another (the commas are written with the body).
    json: Vec<u8>,
    /// Each entry's end in `json` and the length of its key as written (quotes included).
    entries: Vec<(usize, usize)>,
}

impl MergeFields {
    /// Sets a tag to a text value.
    pub fn insert_text(&mut self, tag: &str, text: &str) {
        self.insert_with(tag, |out| serde_json::to_writer(out, text));
    }

    pub fn insert(&mut self, tag: &str, value: &Value) {
        self.insert_with(tag, |out| serde_json::to_writer(out, value));
    }

    fn insert_with(&mut self, tag: &str, write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>) {
        if self.json.capacity() == 0 {
            // Room for a few short fields at once, instead of growing from nothing.
            self.json.reserve(128);
        }
        let start = self.json.len();
        serde_json::to_writer(&mut self.json, tag).expect("a tag serializes");
        let key_len = self.json.len() - start;
        // The key is written first, then compared with the entries' keys as written.
        if let Some(at) = self.position(&self.json[start..]) {
            self.remove(at);
        }
        self.json.push(b':');
        write(&mut self.json).expect("a JSON value serializes");
        self.entries.push((self.json.len(), key_len));
    }

    /// Entry `at`'s bytes and its key's length.
    fn entry(&self, at: usize) -> (&[u8], usize) {
        let start = if at == 0 { 0 } else { self.entries[at - 1].0 };
        let (end, key_len) = self.entries[at];
        (&self.json[start..end], key_len)
    }

    /// The entry whose key, as written, is `key`.
    fn position(&self, key: &[u8]) -> Option<usize> {
        (0..self.entries.len()).find(|&at| {
            let (entry, key_len) = self.entry(at);
            key_len == key.len() && &entry[..key_len] == key
        })
    }

    fn remove(&mut self, at: usize) {
        let start = if at == 0 { 0 } else { self.entries[at - 1].0 };
        let end = self.entries[at].0;
        self.json.drain(start..end);
        self.entries.remove(at);
        for entry in &mut self.entries[at..] {
            entry.0 -= end - start;
        }
    }

    /// Takes a later record's merge fields: each one it has replaces the earlier one.
    pub fn extend(&mut self, later: MergeFields) {
        for at in 0..later.entries.len() {
            let (entry, key_len) = later.entry(at);
            if let Some(earlier) = self.position(&entry[..key_len]) {
                self.remove(earlier);
            }
            self.json.extend_from_slice(entry);
            self.entries.push((self.json.len(), key_len));
        }
    }

    /// Entry `at` as its tag and value.
    fn read(&self, at: usize) -> Option<(String, Value)> {
        let mut object = vec![b'{'];
        object.extend_from_slice(self.entry(at).0);
        object.push(b'}');
        let map: Map<String, Value> = serde_json::from_slice(&object).ok()?;
        map.into_iter().next()
    }

    /// Where `tag`'s entry is, found by its key as written.
    fn position_of(&self, tag: &str) -> Option<usize> {
        self.position(&serde_json::to_vec(tag).expect("a tag serializes"))
    }

    pub fn get(&self, tag: &str) -> Option<Value> {
        self.read(self.position_of(tag)?).map(|(_, value)| value)
    }

    pub fn contains_key(&self, tag: &str) -> bool {
        self.position_of(tag).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// As a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        (0..self.entries.len()).filter_map(|at| self.read(at)).collect()
    }

    /// Writes the entries as a JSON object.
    fn write_object(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for at in 0..self.entries.len() {
            if at > 0 {
                out.push(b',');
            }
            out.extend_from_slice(self.entry(at).0);
        }
        out.push(b'}');
    }
}

impl From<Map<String, Value>> for MergeFields {
    fn from(map: Map<String, Value>) -> Self {
        let mut fields = MergeFields::default();
        for (name, value) in &map {
            fields.insert(name, value);
        }
        fields
    }
}

/// A contact's member attributes (`language`, `vip`, `location`, …) in the order set; setting one
/// again replaces its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(Vec<(&'static str, Value)>);

impl Attributes {
    pub fn insert(&mut self, name: &'static str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// Takes a later record's attributes: each one it has replaces the earlier one.
    pub fn extend(&mut self, later: Attributes) {
        for (name, value) in later.0 {
            self.insert(name, value);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    /// As a JSON object.
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
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
    pub merge_fields: MergeFields,
    pub tags: Vec<String>,
    /// Member attributes such as `language`, `vip` or `location`, sent beside the merge fields.
    pub attributes: Attributes,
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

impl Member {
    /// A contact with only an email address: nothing but the action is applied.
    pub fn bare(email: String, status_if_new: MemberStatus, action: Action) -> Self {
        Self {
            key: email_key(&email),
            email_address: email,
            status: None,
            status_if_new,
            merge_fields: MergeFields::default(),
            tags: Vec::new(),
            attributes: Attributes::default(),
            groups: None,
            action,
            owned_tags: None,
            deleted_at_source: false,
            permissions: None,
        }
    }

    /// Writes the member as the batch-subscribe body carries it: the parts that are set, attributes
    /// beside the merge fields, groups as `interests`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let text =
            |out: &mut Vec<u8>, text: &str| serde_json::to_writer(&mut *out, text).expect("text serializes");
        out.extend_from_slice(b"{\"email_address\":");
        text(out, &self.email_address);
        if let Some(status) = self.status {
            out.extend_from_slice(b",\"status\":\"");
            out.extend_from_slice(status.as_str().as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"status_if_new\":\"");
        out.extend_from_slice(self.status_if_new.as_str().as_bytes());
        out.push(b'"');
        if !self.merge_fields.is_empty() {
            out.extend_from_slice(b",\"merge_fields\":");
            self.merge_fields.write_object(out);
        }
        if !self.tags.is_empty() {
            out.extend_from_slice(b",\"tags\":");
            serde_json::to_writer(&mut *out, &self.tags).expect("tags serialize");
        }
        for (name, value) in self.attributes.iter() {
            out.push(b',');
            text(out, name);
            out.push(b':');
            serde_json::to_writer(&mut *out, value).expect("a value serializes");
        }
        if let Some(groups) = &self.groups {
            out.extend_from_slice(b",\"interests\":");
            serde_json::to_writer(&mut *out, &groups.interests).expect("interests serialize");
        }
        out.push(b'}');
    }
}

/// The member as the batch-subscribe body carries it (see `Member::write_json`).
impl Serialize for Member {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut json = Vec::new();
        self.write_json(&mut json);
        let value: Value = serde_json::from_slice(&json).map_err(serde::ser::Error::custom)?;
        value.serialize(serializer)
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
        member.write_json(&mut body);
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
    fn merge_fields_are_written_once_and_a_tag_set_again_takes_the_later_value() {
        let mut fields = MergeFields::default();
        fields.insert_text("FNAME", "Ada \"the\" first");
        fields.insert("ADDRESS", &serde_json::json!({"addr1": "1 Main", "city": "FNAME"}));
        fields.insert_text("LNAME", "Lovelace");
        assert_eq!(fields.len(), 3);
        fields.insert_text("FNAME", "Augusta");
        let mut later = MergeFields::default();
        later.insert_text("LNAME", "King");
        later.insert("SCORE", &serde_json::json!(7));
        fields.extend(later);
        assert_eq!(
            Value::Object(fields.to_map()),
            serde_json::json!({"FNAME": "Augusta", "LNAME": "King", "SCORE": 7,
                               "ADDRESS": {"addr1": "1 Main", "city": "FNAME"}})
        );
        assert_eq!(fields.len(), 4);
        assert_eq!(fields.get("FNAME"), Some(serde_json::json!("Augusta")));
        assert!(!fields.contains_key("city") && fields.contains_key("SCORE"));
        let mut member = Member::bare("a@b.io".into(), MemberStatus::Subscribed, Action::Upsert);
        member.merge_fields = fields.clone();
        let body: Value = serde_json::from_slice(&members_body([&member].into_iter()).unwrap()).unwrap();
        assert_eq!(body["members"][0]["merge_fields"], Value::Object(fields.to_map()));
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
