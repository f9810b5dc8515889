//! The fake's data model: audiences, merge fields and members, and batch subscribe as Mailchimp
//! documents it (per-member errors inside a 200 answer, `status` vs `status_if_new`, compliance states).

use crate::groups::Groups;
use md5::{Digest, Md5};
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};

/// Mailchimp's id of a member: "the MD5 hash of the lowercase version of the list member's email
/// address" (API reference, Lists/Audiences → Members), in lowercase hex. Written here on its own,
/// not taken from the connector, so that a mistake in the connector's hash shows up in the tests.
pub fn subscriber_hash(email: &str) -> String {
    let digest = Md5::digest(email.to_lowercase().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Mailchimp's cap on members per batch-subscribe call.
pub const MAX_BATCH_MEMBERS: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FakeMergeField {
    pub merge_id: u64,
    pub tag: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub required: bool,
    pub options: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FakeMember {
    pub email_address: String,
    /// subscribed, unsubscribed, cleaned, pending, transactional or archived.
    pub status: String,
    pub merge_fields: Map<String, Value>,
    pub tags: Vec<String>,
    /// Interest id → whether the member is in that group (ids never set are false).
    pub interests: BTreeMap<String, bool>,
    /// Marketing permission id → enabled (ids never set are false).
    pub marketing_permissions: BTreeMap<String, bool>,
    /// Events posted to the contact, as posted (with `occurred_at` set when the post had none).
    pub events: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FakeList {
    pub id: String,
    pub name: String,
    pub double_optin: bool,
    pub merge_fields: Vec<FakeMergeField>,
    /// Members by subscriber hash.
    pub members: FxHashMap<String, FakeMember>,
    /// Hashes of permanently deleted addresses: they cannot be imported again.
    pub forgotten: HashSet<String>,
    /// Interest categories and their interests.
    pub groups: Groups,
    /// GDPR marketing permissions of the audience (id, text); `None` when it has no GDPR fields.
    pub marketing_permissions: Option<Vec<(String, String)>>,
}

/// A 400-class answer for a whole request: title, detail and field errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub status: u16,
    pub title: String,
    pub detail: String,
    pub errors: Vec<(String, String)>,
}

const STATUSES: [&str; 5] = ["subscribed", "unsubscribed", "cleaned", "pending", "transactional"];

impl FakeList {
    pub fn new(id: &str, name: &str) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            double_optin: false,
            merge_fields: Vec::new(),
            members: FxHashMap::default(),
            forgotten: HashSet::new(),
            groups: Groups::default(),
            marketing_permissions: None,
        }
    }

    /// Turns on GDPR fields with these permissions (their ids differ per audience, as in Mailchimp).
    pub fn enable_gdpr(&mut self, texts: &[&str]) {
        let seed = self.id.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let permissions = texts
            .iter()
            .enumerate()
            .map(|(i, text)| (format!("{:010x}", (seed + i as u64 * 104_729) % (1 << 40)), text.to_string()));
        self.marketing_permissions = Some(permissions.collect());
    }

    /// The id of the permission with this text (test assertions).
    pub fn permission_id(&self, text: &str) -> Option<String> {
        self.marketing_permissions.as_ref()?.iter().find(|(_, t)| t == text).map(|(id, _)| id.clone())
    }

    /// `PATCH /lists/{id}/members/{hash}` with `marketing_permissions`: `Ok(None)` when there is no
    /// such contact; a rejection for an audience without GDPR fields or an unknown permission id.
    pub fn patch_member(&mut self, hash: &str, body: &Value) -> Result<Option<Value>, Rejection> {
        let invalid = |message: String| {
            Rejection {
            status: 400,
            title: "Invalid Resource".into(),
            detail: "The resource submitted could not be validated. For field-specific details, see the 'errors' array.".into(),
            errors: vec![("marketing_permissions".into(), message)],
        }
        };
        let changes =
            body.get("marketing_permissions").and_then(Value::as_array).cloned().unwrap_or_default();
        let known = self.marketing_permissions.clone();
        if !changes.is_empty() && known.is_none() {
            return Err(invalid("This audience does not have marketing permissions enabled.".into()));
        }
        let Some(member) = self.members.get_mut(hash).filter(|m| m.status != "archived") else {
            return Ok(None);
        };
        for change in &changes {
            let id = change.get("marketing_permission_id").and_then(Value::as_str).unwrap_or("");
            let enabled = change.get("enabled").and_then(Value::as_bool);
            match (known.iter().flatten().any(|(k, _)| k == id), enabled) {
                (true, Some(enabled)) => {
                    member.marketing_permissions.insert(id.to_string(), enabled);
                }
                _ => return Err(invalid(format!("Invalid marketing permission '{id}'."))),
            }
        }
        let member = member.clone();
        Ok(Some(self.member_json(&member)))
    }

    /// An audience with Mailchimp's default merge fields (FNAME, LNAME, ADDRESS, PHONE) and BIRTHDAY.
    pub fn with_default_fields(id: &str, name: &str) -> Self {
        let mut list = Self::new(id, name);
        for (tag, field_name, kind) in [
            ("FNAME", "First Name", "text"),
            ("LNAME", "Last Name", "text"),
            ("ADDRESS", "Address", "address"),
            ("PHONE", "Phone Number", "phone"),
            ("BIRTHDAY", "Birthday", "birthday"),
        ] {
            list.add_merge_field(tag, field_name, kind, false, json!({}));
        }
        list
    }

    pub fn add_merge_field(&mut self, tag: &str, name: &str, kind: &str, required: bool, options: Value) {
        let merge_id = self.merge_fields.len() as u64 + 1;
        self.merge_fields.push(FakeMergeField {
            merge_id,
            tag: tag.into(),
            name: name.into(),
            kind: kind.into(),
            required,
            options,
        });
    }

    /// Puts a member straight into the audience (test setup).
    pub fn put_member(&mut self, email: &str, status: &str, merge_fields: Value) {
        let member = FakeMember {
            email_address: email.into(),
            status: status.into(),
            merge_fields: merge_fields.as_object().cloned().unwrap_or_default(),
            tags: Vec::new(),
            interests: BTreeMap::new(),
            marketing_permissions: BTreeMap::new(),
            events: Vec::new(),
        };
        self.members.insert(subscriber_hash(email), member);
    }

    /// Gives a member already in the audience these tags (test setup).
    pub fn set_tags_of(&mut self, email: &str, tags: &[&str]) {
        if let Some(member) = self.members.get_mut(&subscriber_hash(email)) {
            member.tags = tags.iter().map(|t| t.to_string()).collect();
        }
    }

    pub fn member(&self, email: &str) -> Option<&FakeMember> {
        self.members.get(&subscriber_hash(email))
    }

    /// The `GET /lists/{id}` body.
    pub fn info(&self) -> Value {
        let count = |status: &str| self.members.values().filter(|m| m.status == status).count();
        json!({"id": self.id, "web_id": 100001, "name": self.name, "double_optin": self.double_optin,
               "marketing_permissions": self.marketing_permissions.is_some(),
               "stats": {"member_count": count("subscribed"), "unsubscribe_count": count("unsubscribed"),
                         "cleaned_count": count("cleaned"), "merge_field_count": self.merge_fields.len()}})
    }

    /// A member as the API shows it.
    pub fn member_json(&self, member: &FakeMember) -> Value {
        let hash = subscriber_hash(&member.email_address);
        let mut merge_fields = Map::new();
        for field in &self.merge_fields {
            merge_fields
                .insert(field.tag.clone(), member.merge_fields.get(&field.tag).cloned().unwrap_or(json!("")));
        }
        let tags: Vec<Value> =
            member.tags.iter().enumerate().map(|(i, name)| json!({"id": 1000 + i, "name": name})).collect();
        json!({"id": hash, "email_address": member.email_address, "unique_email_id": &hash[..10],
               "email_type": "html", "status": member.status, "merge_fields": merge_fields,
               "interests": self.groups.member_interests(&member.interests),
               "marketing_permissions": self.marketing_permissions.iter().flatten().map(|(id, text)| json!({
                   "marketing_permission_id": id, "text": text,
                   "enabled": member.marketing_permissions.get(id).copied().unwrap_or(false)})).collect::<Vec<_>>(),
               "tags_count": tags.len(), "tags": tags, "list_id": self.id})
    }

    /// `POST /lists/{id}`: batch subscribe or update. `with_members` false leaves out the member
    /// objects of the answer (as a partial response without them does), which saves building them.
    pub fn batch_subscribe(
        &mut self,
        body: &Value,
        skip_merge_validation: bool,
        with_members: bool,
    ) -> Result<Value, Rejection> {
        let invalid = |field: &str, message: &str| {
            Rejection {
            status: 400,
            title: "Invalid Resource".into(),
            detail: "The resource submitted could not be validated. For field-specific details, see the 'errors' array.".into(),
            errors: vec![(field.into(), message.into())],
        }
        };
        let members = body
            .get("members")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("members", "Required fields were not provided: members"))?;
        if members.len() > MAX_BATCH_MEMBERS {
            return Err(invalid("members", "Schema describes array of at most 500 items"));
        }
        let update_existing = body.get("update_existing").and_then(Value::as_bool).unwrap_or(false);

        let mut seen = HashSet::new();
        let (mut created, mut updated, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        let (mut total_created, mut total_updated) = (0, 0);
        for item in members {
            let email = item.get("email_address").and_then(Value::as_str).unwrap_or("").to_string();
            match self.upsert(item, &email, update_existing, skip_merge_validation, &mut seen) {
                Ok((hash, true)) => {
                    total_created += 1;
                    if with_members {
                        created.push(self.member_json(&self.members[&hash]));
                    }
                }
                Ok((hash, false)) => {
                    total_updated += 1;
                    if with_members {
                        updated.push(self.member_json(&self.members[&hash]));
                    }
                }
                Err((error, code, field, field_message)) => errors.push(json!({
                    "email_address": email, "error": error, "error_code": code,
                    "field": field, "field_message": field_message})),
            }
        }
        Ok(json!({"new_members": created, "updated_members": updated, "errors": errors,
                  "total_created": total_created, "total_updated": total_updated,
                  "error_count": errors.len(), "_links": []}))
    }

    /// One member of a batch. Ok((hash, created)) or Err((error, error_code, field, field_message)).
    fn upsert(
        &mut self,
        item: &Value,
        email: &str,
        update_existing: bool,
        skip_merge_validation: bool,
        seen: &mut HashSet<String>,
    ) -> Result<(String, bool), MemberFailure> {
        let upsert = self.read_item(item, email, seen)?;
        let hash = upsert.hash.clone();
        if let Some(archived) = self.members.get_mut(&hash).filter(|m| m.status == "archived") {
            // An upsert restores an archived contact, with the history it had.
            archived.status = upsert.status.or(upsert.status_if_new).unwrap_or("subscribed").to_string();
            archived.email_address = email.to_string();
            upsert.apply_fields(archived);
            return Ok((hash, true));
        }
        match self.members.get_mut(&hash) {
            Some(_) if !update_existing => Err((
                format!("{email} is already a list member. Use PUT to insert or update list members."),
                "ERROR_CONTACT_EXISTS",
                String::new(),
                String::new(),
            )),
            Some(member) => {
                if let Some(new_status) = upsert.status {
                    if new_status == "subscribed"
                        && matches!(member.status.as_str(), "unsubscribed" | "cleaned")
                    {
                        return Err(generic(format!(
                            "{email} is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed."
                        )));
                    }
                    member.status = new_status.to_string();
                }
                upsert.apply_fields(member);
                Ok((hash, false))
            }
            None => {
                if !skip_merge_validation {
                    let missing = self
                        .merge_fields
                        .iter()
                        .find(|f| f.required && !upsert.merge_fields.contains_key(&f.tag));
                    if let Some(field) = missing {
                        let field = format!("merge_fields.{}", field.tag);
                        return Err((
                            "Your merge fields were invalid.".into(),
                            "ERROR_GENERIC",
                            field,
                            "Please enter a value".into(),
                        ));
                    }
                }
                let mut member = FakeMember {
                    email_address: email.to_string(),
                    status: upsert.status.or(upsert.status_if_new).unwrap_or("subscribed").to_string(),
                    merge_fields: Map::new(),
                    tags: Vec::new(),
                    interests: BTreeMap::new(),
                    marketing_permissions: BTreeMap::new(),
                    events: Vec::new(),
                };
                upsert.apply_fields(&mut member);
                self.members.insert(hash.clone(), member);
                Ok((hash, true))
            }
        }
    }

    /// Checks one member of a batch as Mailchimp does, before anything is changed.
    fn read_item<'a>(
        &self,
        item: &'a Value,
        email: &str,
        seen: &mut HashSet<String>,
    ) -> Result<Upsert<'a>, MemberFailure> {
        if email.is_empty() {
            return Err(generic("Required fields were not provided: email_address".into()));
        }
        if !plausible_email(email) {
            return Err(generic(format!(
                "{email} looks fake or invalid, please enter a real email address."
            )));
        }
        let hash = subscriber_hash(email);
        if !seen.insert(hash.clone()) {
            return Err(generic(format!("{email} is included more than once in this batch.")));
        }
        if self.forgotten.contains(&hash) {
            return Err(generic(format!(
                "{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list."
            )));
        }
        let status = item.get("status").and_then(Value::as_str);
        let status_if_new = item.get("status_if_new").and_then(Value::as_str);
        for s in [status, status_if_new].into_iter().flatten() {
            if !STATUSES.contains(&s) {
                return Err(generic(format!("Invalid status '{s}'.")));
            }
        }
        if status.is_none() && status_if_new.is_none() {
            return Err(generic("Either status or status_if_new must be provided.".into()));
        }
        let merge_fields = item.get("merge_fields").and_then(Value::as_object).cloned().unwrap_or_default();
        self.validate_merge_fields(&merge_fields)?;
        let interests = item.get("interests").and_then(Value::as_object).cloned().unwrap_or_default();
        let interests = self
            .groups
            .check(&interests)
            .map_err(|e| (e, "ERROR_GENERIC", "interests".to_string(), String::new()))?;
        let tags = item
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        Ok(Upsert { hash, status, status_if_new, merge_fields, interests, tags })
    }

    /// `DELETE /lists/{id}/members/{hash}`: archives; false when there is no such (active) contact.
    pub fn archive(&mut self, hash: &str) -> bool {
        match self.members.get_mut(hash).filter(|m| m.status != "archived") {
            Some(member) => {
                member.status = "archived".into();
                true
            }
            None => false,
        }
    }

    /// `POST …/actions/delete-permanent`: erases the contact, which can never be imported again.
    pub fn delete_permanently(&mut self, hash: &str) -> bool {
        let found = self.members.remove(hash).is_some();
        if found {
            self.forgotten.insert(hash.to_string());
        }
        found
    }

    /// `POST …/members/{hash}/tags`: each named tag made active or inactive. `Ok(false)` when
    /// there is no such contact.
    pub fn set_tags(&mut self, hash: &str, body: &Value) -> Result<bool, Rejection> {
        let invalid = |message: &str| {
            Rejection {
            status: 400,
            title: "Invalid Resource".into(),
            detail: "The resource submitted could not be validated. For field-specific details, see the 'errors' array.".into(),
            errors: vec![("tags".into(), message.into())],
        }
        };
        let items = body
            .get("tags")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("Required fields were not provided: tags"))?;
        let mut changes = Vec::new();
        for item in items {
            let name = item.get("name").and_then(Value::as_str).filter(|n| !n.trim().is_empty());
            let status = item.get("status").and_then(Value::as_str);
            match (name, status) {
                (Some(name), Some(status @ ("active" | "inactive"))) => {
                    changes.push((name.to_string(), status == "active"))
                }
                _ => return Err(invalid("Each tag needs a name and a status of active or inactive.")),
            }
        }
        let Some(member) = self.members.get_mut(hash).filter(|m| m.status != "archived") else {
            return Ok(false);
        };
        for (name, active) in changes {
            if active {
                add_tags(&mut member.tags, vec![name]);
            } else {
                member.tags.retain(|t| *t != name);
            }
        }
        Ok(true)
    }

    /// `POST …/members/{hash}/events`: stores the event; `Ok(false)` when there is no such contact
    /// (archived ones included). Mailchimp's rules: a name of 2–30 letters, digits, `_` or `-`, and
    /// properties whose values are strings.
    pub fn post_event(&mut self, hash: &str, body: &Value) -> Result<bool, Rejection> {
        let invalid = |field: &str, message: &str| {
            Rejection {
            status: 400,
            title: "Invalid Resource".into(),
            detail: "The resource submitted could not be validated. For field-specific details, see the 'errors' array."
                .into(),
            errors: vec![(field.into(), message.into())],
        }
        };
        let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
        let valid = (2..=30).contains(&name.chars().count())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(invalid(
                "name",
                "Event name must be 2-30 characters of letters, numbers, underscores and dashes.",
            ));
        }
        if let Some(properties) = body.get("properties") {
            if !properties.as_object().is_some_and(|p| p.values().all(Value::is_string)) {
                return Err(invalid("properties", "Properties must be an object whose values are strings."));
            }
        }
        let Some(member) = self.members.get_mut(hash).filter(|m| m.status != "archived") else {
            return Ok(false);
        };
        let mut event = body.clone();
        if event.get("occurred_at").is_none() {
            event["occurred_at"] = json!(crate::audience::now_iso());
        }
        member.events.push(event);
        Ok(true)
    }

    /// `GET …/members/{hash}/events`: the contact's events, newest first.
    pub fn events_of(&self, hash: &str) -> Option<Value> {
        let member = self.members.get(hash)?;
        let events: Vec<&Value> = member.events.iter().rev().collect();
        Some(json!({"events": events, "total_items": events.len()}))
    }

    /// `GET /lists/{id}/members`: a page of the audience's contacts (archived ones are not listed).
    pub fn members_page(&self, offset: usize, count: usize) -> Value {
        let mut active: Vec<&FakeMember> = self.members.values().filter(|m| m.status != "archived").collect();
        active.sort_by_key(|m| m.email_address.to_lowercase());
        let page: Vec<Value> = active.iter().skip(offset).take(count).map(|m| self.member_json(m)).collect();
        json!({"members": page, "list_id": self.id, "total_items": active.len()})
    }

    fn validate_merge_fields(&self, values: &Map<String, Value>) -> Result<(), MemberFailure> {
        for (tag, value) in values {
            let problem = match self.merge_fields.iter().find(|f| &f.tag == tag) {
                None => Some("This merge field does not exist in the audience.".to_string()),
                Some(field) => check_value(field, value),
            };
            if let Some(message) = problem {
                return Err((
                    "Your merge fields were invalid.".into(),
                    "ERROR_GENERIC",
                    format!("merge_fields.{tag}"),
                    message,
                ));
            }
        }
        Ok(())
    }
}

/// A member Mailchimp refuses inside a 200 answer: (error, error_code, field, field_message).
type MemberFailure = (String, &'static str, String, String);

fn generic(error: String) -> MemberFailure {
    (error, "ERROR_GENERIC", String::new(), String::new())
}

/// One batch member, checked and ready to apply.
struct Upsert<'a> {
    hash: String,
    status: Option<&'a str>,
    status_if_new: Option<&'a str>,
    merge_fields: Map<String, Value>,
    interests: BTreeMap<String, bool>,
    tags: Vec<String>,
}

impl Upsert<'_> {
    /// Sets the member's merge fields and groups, and adds its tags.
    fn apply_fields(self, member: &mut FakeMember) {
        member.merge_fields.extend(self.merge_fields);
        member.interests.extend(self.interests);
        add_tags(&mut member.tags, self.tags);
    }
}

/// Mailchimp's per-type rules for a merge-field value; `Some(message)` when the value is refused.
fn check_value(field: &FakeMergeField, value: &Value) -> Option<String> {
    let schema_mismatch = || Some("Data did not match any of the schemas described in anyOf.".to_string());
    match (field.kind.as_str(), value) {
        ("number", Value::Number(_)) => None,
        ("number", Value::String(s)) if s.trim().parse::<f64>().is_ok() || s.is_empty() => None,
        ("number", _) => schema_mismatch(),
        ("address", Value::Object(a)) => {
            let missing: Vec<&str> = ["addr1", "city", "state", "zip"]
                .into_iter()
                .filter(|k| a.get(*k).and_then(Value::as_str).is_none_or(str::is_empty))
                .collect();
            (!missing.is_empty())
                .then(|| format!("Please enter a complete address (missing {}).", missing.join(", ")))
        }
        ("address", Value::String(s)) if s.is_empty() => None,
        ("address", _) => schema_mismatch(),
        ("birthday", Value::String(s)) => {
            let ok = s.is_empty()
                || (s.len() == 5
                    && s.as_bytes()[2] == b'/'
                    && s[..2].parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
                    && s[3..].parse::<u8>().is_ok_and(|d| (1..=31).contains(&d)));
            (!ok).then(|| "Please enter a birthday in the format MM/DD.".to_string())
        }
        ("date", Value::String(s)) => {
            let format = field.options.get("date_format").and_then(Value::as_str).unwrap_or("YYYY-MM-DD");
            let fits = s.len() == format.len()
                && s.chars().zip(format.chars()).all(|(c, f)| {
                    if "YMD".contains(f) {
                        c.is_ascii_digit()
                    } else {
                        c == f
                    }
                });
            (!s.is_empty() && !fits).then(|| format!("Please enter the date in the format {format}."))
        }
        ("radio" | "dropdown", Value::String(s)) => {
            let choices = field.options.get("choices").and_then(Value::as_array).cloned().unwrap_or_default();
            (!s.is_empty() && !choices.iter().any(|c| c.as_str() == Some(s)))
                .then(|| format!("'{s}' is not one of the choices of this field."))
        }
        // "a string representing a 5-digit ZIP code" (Mailchimp's merge-field table).
        ("zip", Value::String(s)) => {
            let five_digits = s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
            (!s.is_empty() && !five_digits).then(|| "Please enter a valid 5-digit ZIP code.".to_string())
        }
        // US format: "the form of NPA-NXX-LINE (404-555-1212)"; otherwise any text.
        ("phone", Value::String(s)) if us_phone_format(field) => {
            let digits = |part: &str, n: usize| part.len() == n && part.bytes().all(|b| b.is_ascii_digit());
            let parts: Vec<&str> = s.split('-').collect();
            let ok = s.is_empty()
                || (parts.len() == 3 && digits(parts[0], 3) && digits(parts[1], 3) && digits(parts[2], 4));
            (!ok).then(|| "Please enter a valid US phone number, such as 404-555-1212.".to_string())
        }
        ("url" | "imageurl", Value::String(s)) => {
            let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
            let ok = s.is_empty()
                || (host.is_some_and(|h| h.contains('.') || h.starts_with("localhost"))
                    && !s.contains(char::is_whitespace));
            (!ok).then(|| "Please enter a valid URL.".to_string())
        }
        (_, Value::String(_)) => None,
        ("text" | "phone", Value::Number(_)) => None,
        _ => schema_mismatch(),
    }
}

/// Whether a phone field has Mailchimp's US format option.
fn us_phone_format(field: &FakeMergeField) -> bool {
    field.options.get("phone_format").and_then(Value::as_str).is_some_and(|f| f.eq_ignore_ascii_case("US"))
}

fn add_tags(tags: &mut Vec<String>, new: Vec<String>) {
    for tag in new {
        if !tag.trim().is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
}

/// Mailchimp's validity heuristics, reduced: a plausible shape and not a placeholder domain.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else { return false };
    let domain = domain.to_ascii_lowercase();
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c == ',')
        && !matches!(domain.as_str(), "example.com" | "example.org" | "example.net")
}

/// Now in UTC as Mailchimp writes times (`2026-11-29T12:00:00+00:00`).
pub fn now_iso() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 → civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00", rest / 3600, rest % 3600 / 60, rest % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> FakeList {
        let mut list = FakeList::with_default_fields("l1", "Demo");
        list.put_member("gone@mail.io", "unsubscribed", json!({"FNAME": "Gone"}));
        list
    }

    #[test]
    fn creates_updates_and_reports_errors_inside_the_answer() {
        let mut list = list();
        let body = json!({"update_existing": true, "members": [
            {"email_address": "new@mail.io", "status_if_new": "subscribed", "merge_fields": {"FNAME": "New"}, "tags": ["t"]},
            {"email_address": "Gone@mail.io", "status_if_new": "subscribed", "merge_fields": {"LNAME": "Still"}},
            {"email_address": "fake@example.com", "status_if_new": "subscribed"},
            {"email_address": "NEW@mail.io", "status_if_new": "subscribed"},
            {"email_address": "x@mail.io", "status_if_new": "subscribed", "merge_fields": {"NOPE": "1"}}
        ]});
        let answer = list.batch_subscribe(&body, false, true).unwrap();
        assert_eq!(answer["total_created"], 1);
        assert_eq!(answer["total_updated"], 1);
        assert_eq!(answer["error_count"], 3);
        assert_eq!(answer["errors"][2]["field"], "merge_fields.NOPE");
        let gone = list.member("gone@mail.io").unwrap();
        assert_eq!(gone.status, "unsubscribed");
        assert_eq!(Value::Object(gone.merge_fields.clone()), json!({"FNAME": "Gone", "LNAME": "Still"}));
        assert_eq!(list.member("new@mail.io").unwrap().tags, vec!["t"]);
    }

    #[test]
    fn status_subscribed_on_an_unsubscribed_member_is_a_compliance_error() {
        let mut list = list();
        let body = json!({"update_existing": true, "members": [{"email_address": "gone@mail.io", "status": "subscribed"}]});
        let answer = list.batch_subscribe(&body, false, true).unwrap();
        assert!(answer["errors"][0]["error"].as_str().unwrap().contains("compliance state"));
        assert_eq!(list.member("gone@mail.io").unwrap().status, "unsubscribed");
    }

    #[test]
    fn archive_restores_on_upsert_and_permanent_deletion_forbids_reimport() {
        let mut list = list();
        let hash = subscriber_hash("gone@mail.io");
        assert!(list.archive(&hash));
        assert!(!list.archive(&hash), "archiving twice finds no active contact");
        assert_eq!(list.members_page(0, 10)["total_items"], 0);
        let body = json!({"update_existing": true, "members": [{"email_address": "gone@mail.io", "status_if_new": "pending"}]});
        assert_eq!(list.batch_subscribe(&body, false, true).unwrap()["total_created"], 1);
        let restored = list.member("gone@mail.io").unwrap();
        assert_eq!(
            (restored.status.as_str(), restored.merge_fields["FNAME"].as_str()),
            ("pending", Some("Gone"))
        );
        assert!(list.delete_permanently(&hash));
        let answer = list.batch_subscribe(&body, false, true).unwrap();
        assert!(answer["errors"][0]["error"].as_str().unwrap().contains("permanently deleted"));
    }

    #[test]
    fn tags_endpoint_adds_and_removes_only_the_named_tags() {
        let mut list = list();
        let hash = subscriber_hash("gone@mail.io");
        list.members.get_mut(&hash).unwrap().tags = vec!["a".into(), "b".into()];
        let body = json!({"tags": [{"name": "a", "status": "inactive"}, {"name": "c", "status": "active"}], "is_syncing": true});
        assert_eq!(list.set_tags(&hash, &body), Ok(true));
        assert_eq!(list.member("gone@mail.io").unwrap().tags, vec!["b", "c"]);
        assert_eq!(list.set_tags("nobody", &body), Ok(false));
        assert!(list.set_tags(&hash, &json!({"tags": [{"name": "a"}]})).is_err());
    }

    #[test]
    fn more_than_500_members_is_refused_whole() {
        let mut list = list();
        let members: Vec<Value> = (0..501)
            .map(|i| json!({"email_address": format!("p{i}@mail.io"), "status_if_new": "subscribed"}))
            .collect();
        let rejection = list.batch_subscribe(&json!({"members": members}), false, true).unwrap_err();
        assert_eq!(rejection.status, 400);
        assert!(list.member("p0@mail.io").is_none());
    }

    #[test]
    fn an_answer_without_member_objects_still_counts_them() {
        let mut list = list();
        let body = json!({"update_existing": true, "members": [
            {"email_address": "new@mail.io", "status_if_new": "subscribed"},
            {"email_address": "gone@mail.io", "status_if_new": "subscribed"}]});
        let answer = list.batch_subscribe(&body, false, false).unwrap();
        assert_eq!((answer["total_created"].clone(), answer["total_updated"].clone()), (json!(1), json!(1)));
        assert_eq!(answer["new_members"], json!([]));
        assert!(list.member("new@mail.io").is_some());
    }

    #[test]
    fn without_update_existing_existing_members_are_errors() {
        let mut list = list();
        let answer = list
            .batch_subscribe(
                &json!({"members": [{"email_address": "gone@mail.io", "status_if_new": "subscribed"}]}),
                false,
                true,
            )
            .unwrap();
        assert_eq!(answer["errors"][0]["error_code"], "ERROR_CONTACT_EXISTS");
    }

    #[test]
    fn merge_values_are_checked_by_type() {
        let list = list();
        let address = &list.merge_fields[2];
        assert!(check_value(
            address,
            &json!({"addr1": "1 Main", "city": "A", "state": "GA", "zip": "30301"})
        )
        .is_none());
        assert!(check_value(address, &json!({"addr1": "1 Main"})).is_some());
        let birthday = &list.merge_fields[4];
        assert!(check_value(birthday, &json!("07/04")).is_none());
        assert!(check_value(birthday, &json!("1990-07-04")).is_some());
        assert!(check_value(&list.merge_fields[0], &json!({"a": 1})).is_some());
        let field = |kind: &str, options: Value| FakeMergeField {
            merge_id: 9,
            tag: "X".into(),
            name: "X".into(),
            kind: kind.into(),
            required: false,
            options,
        };
        let zip = field("zip", json!({}));
        assert!(check_value(&zip, &json!("30301")).is_none());
        for bad in [json!("ABCDE"), json!("3030"), json!(30301), json!("30301-1234")] {
            assert!(check_value(&zip, &bad).is_some(), "{bad}");
        }
        let us = field("phone", json!({"phone_format": "US"}));
        assert!(check_value(&us, &json!("404-555-1212")).is_none());
        assert!(check_value(&us, &json!("(404) 555-1212")).is_some());
        assert!(check_value(&field("phone", json!({})), &json!("+44 20 7946 0018")).is_none());
        let url = field("imageurl", json!({}));
        assert!(check_value(&url, &json!("https://cdn.shop.io/a.png")).is_none());
        assert!(check_value(&url, &json!("cdn.shop.io/a.png")).is_some());
        assert!(check_value(&field("number", json!({})), &json!("12a")).is_some());
    }
}
