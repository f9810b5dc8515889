//! Record → Mailchimp member: the email address, merge fields matched by name and converted by type,
//! member attributes, and tags.

use crate::catalog::{ConfiguredCatalog, SyncMode};
use crate::config::{Config, MappingTarget, OnDelete};
use crate::convert::{self, ATTRIBUTES};
use crate::error::ConnectorError;
use crate::fields::{text_of, FieldValue};
use crate::mailchimp::event::{is_valid_event_name, Event};
use crate::mailchimp::member::{Action, EmailKey, GroupChoice, Member, MemberStatus};
use crate::mailchimp::model::{Category, MergeField};
use crate::protocol::{RecordData, StreamKey};
use crate::redact::excerpt;
pub use crate::rejected::Rejection;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The rejection reason of a record whose stream the configured catalog does not have.
pub const UNKNOWN_STREAM: &str = "stream not in the catalog";

/// The platform's change-data-capture field: set on a record whose row was deleted at the source.
pub const DELETED_AT_FIELD: &str = "_ab_cdc_deleted_at";

/// The rejection reason of a record of an update-only stream whose contact is not in the audience.
pub const NOT_IN_AUDIENCE: &str = "not in the audience";

/// The rejection reason of an events record that cannot become an event.
pub const INVALID_EVENT: &str = "invalid event";

/// A property value is cut to this many characters.
const EVENT_PROPERTY_CHARS: usize = 1000;

/// What became of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    Member(Member),
    /// A record of an events stream, and its event id (the stream's one-field primary key) if any.
    Event(Box<Event>, Option<String>),
    /// The record cannot become a contact, or (update-only streams) its contact is not in the audience.
    Rejected(Rejection),
    /// A deletion at the source that `on_delete: ignore` leaves alone.
    DeletionIgnored,
}

/// Where a record field's value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The merge field at this index of the audience's fields.
    Merge(usize),
    /// The group category at this index of the audience's categories.
    Group(usize),
    /// The GDPR marketing permission at this index of the mapper's permission names.
    Permission(usize),
    Attribute(&'static str),
    Ignored,
}

/// Common field names for Mailchimp's usual merge tags (used only when that tag exists).
const ALIASES: [(&str, &[&str]); 5] = [
    ("FNAME", &["first_name", "firstname", "given_name"]),
    ("LNAME", &["last_name", "lastname", "surname", "family_name"]),
    ("PHONE", &["phone", "phone_number"]),
    ("ADDRESS", &["address"]),
    ("BIRTHDAY", &["birthday", "date_of_birth", "dob"]),
];

/// A record's fields as received.
type Fields<'a> = Vec<(Cow<'a, str>, FieldValue<'a>)>;

/// Per-stream knowledge: its mode, where the email is and where each record field goes.
#[derive(Debug, Default, Clone)]
struct StreamPlan {
    mode: SyncMode,
    /// Set for an events stream.
    event: Option<EventPlan>,
    key_field: Option<String>,
    /// Record field name → target, for the catalog's fields and every field seen since.
    targets: FxHashMap<String, Target>,
}

/// How an events stream's records become events.
#[derive(Debug, Clone)]
struct EventPlan {
    /// The one event name of the stream, when the config gives it.
    fixed_name: Option<String>,
    /// The one-field primary key: records with the same value are one event.
    id_field: Option<String>,
    /// Mailchimp's `is_syncing`: automations do not start.
    quiet: bool,
}

/// Values that could not be converted for one field of one stream (reported once per sync).
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedValues {
    pub target: String,
    pub count: u64,
    pub example: String,
    pub reason: String,
}

/// Maps records of the catalog's streams to members of one audience.
#[derive(Clone)]
pub struct Mapper {
    settings: RecordSettings,
    merge_fields: Vec<MergeField>,
    categories: Vec<Category>,
    /// GDPR marketing permissions named by the mapping (their text, normalized), and whether the
    /// audience has GDPR fields at all.
    permissions: (Vec<String>, bool),
    /// Explicit record field → merge field or category, from the config.
    explicit: FxHashMap<String, Target>,
    streams: FxHashMap<StreamKey, StreamPlan>,
    /// Who is in the audience, read at the start of a sync with an update-only stream.
    existing: Option<FxHashSet<EmailKey>>,
    findings: Findings,
}

/// What the config says about records: where the email is, statuses, deletions and tags.
#[derive(Clone)]
struct RecordSettings {
    email_field: Option<String>,
    status_if_new: MemberStatus,
    status_field: Option<String>,
    on_delete: OnDelete,
    owned_tag_prefix: Option<String>,
    config_tags: Vec<String>,
    create_missing_groups: bool,
}

/// What mapping found that the user should hear about.
#[derive(Clone, Default)]
struct Findings {
    /// Values that could not be converted, per stream and field.
    dropped: BTreeMap<(String, String), DroppedValues>,
    /// Mappings of fields that were not in the catalog, found in records (to be logged).
    discovered: Vec<String>,
    /// Values of the status field that are not a status, with how often each came.
    unknown_statuses: BTreeMap<String, u64>,
}

impl Mapper {
    /// Fails when an explicit mapping names a merge tag or a group category the audience does not have.
    pub fn new(
        config: &Config,
        catalog: &ConfiguredCatalog,
        merge_fields: &[MergeField],
        categories: &[Category],
    ) -> Result<Self, ConnectorError> {
        let mut explicit = FxHashMap::default();
        let mut permissions = Vec::new();
        for (field, target) in &config.field_mappings {
            let target = match target {
                MappingTarget::MarketingPermission(text) => {
                    Target::Permission(intern(&mut permissions, normalize(text)))
                }
                other => explicit_target(field, other, merge_fields, categories)?,
            };
            explicit.insert(field.clone(), target);
        }
        let mut mapper = Self {
            settings: RecordSettings {
                email_field: config.email_field.clone(),
                status_if_new: config.status_if_new,
                status_field: config.status_field.clone(),
                on_delete: config.on_delete,
                owned_tag_prefix: config.owned_tag_prefix.clone(),
                config_tags: config.tags.clone(),
                create_missing_groups: config.create_missing_groups,
            },
            merge_fields: merge_fields.to_vec(),
            categories: categories.to_vec(),
            permissions: (permissions, false),
            explicit,
            streams: FxHashMap::default(),
            existing: None,
            findings: Findings::default(),
        };
        for stream in &catalog.streams {
            let mut plan = StreamPlan {
                mode: stream.mode(),
                key_field: stream.single_key_field().map(str::to_string),
                ..Default::default()
            };
            if let Some(properties) = stream.stream.json_schema.get("properties").and_then(Value::as_object) {
                for name in properties.keys() {
                    plan.targets.insert(name.clone(), mapper.target_for(name));
                }
            }
            mapper.streams.insert(stream.key(), plan);
        }
        Ok(mapper)
    }

    /// The matching rules, in order: explicit mapping; member attribute; merge tag (any case);
    /// the merge field's name normalized ("First Name" → first_name); a common alias; a group
    /// category's title normalized ("Newsletter topics" → newsletter_topics).
    fn target_for(&mut self, name: &str) -> Target {
        if let Some(target) = self.explicit.get(name) {
            return *target;
        }
        let normalized = normalize(name);
        // `marketing_permission_` and the permission's text normalized: `marketing_permission_email`.
        if let Some(permission) = normalized.strip_prefix("marketing_permission_") {
            return Target::Permission(intern(&mut self.permissions.0, permission.to_string()));
        }
        if let Some(attribute) = ATTRIBUTES.iter().find(|a| a.eq_ignore_ascii_case(name)) {
            return Target::Attribute(attribute);
        }
        let taken = |i: &usize| self.explicit.values().any(|e| *e == Target::Merge(*i));
        let group_taken = |i: &usize| self.explicit.values().any(|e| *e == Target::Group(*i));
        let by = |matches: &dyn Fn(&MergeField) -> bool| {
            self.merge_fields.iter().enumerate().position(|(i, f)| !taken(&i) && matches(f))
        };
        by(&|f| f.tag.eq_ignore_ascii_case(name))
            .or_else(|| by(&|f| !f.name.is_empty() && normalize(&f.name) == normalized))
            .or_else(|| {
                let tag = ALIASES
                    .iter()
                    .find(|(_, names)| names.contains(&normalized.as_str()))
                    .map(|(tag, _)| *tag)?;
                by(&|f| f.tag == tag)
            })
            .map(Target::Merge)
            .or_else(|| {
                (0..self.categories.len())
                    .find(|i| !group_taken(i) && normalize(&self.categories[*i].title) == normalized)
                    .map(Target::Group)
            })
            .unwrap_or(Target::Ignored)
    }

    /// Who is in the audience: records of update-only streams for anyone else are rejected as not
    /// in the audience. Without it (preview), update-only streams map like upserts.
    pub fn with_existing(mut self, existing: Option<FxHashSet<EmailKey>>) -> Self {
        self.existing = existing;
        self
    }

    /// Marks the events streams among this mapper's (their email is never their primary key, which
    /// identifies the event instead).
    pub fn with_events(mut self, events: &[(StreamKey, Option<String>)], start_automations: bool) -> Self {
        for (key, fixed_name) in events {
            if let Some(plan) = self.streams.get_mut(key) {
                let id_field = plan.key_field.take();
                plan.event =
                    Some(EventPlan { fixed_name: fixed_name.clone(), id_field, quiet: !start_automations });
            }
        }
        self
    }

    /// Whether a stream of the catalog is this mapper's.
    pub fn has_stream(&self, stream: &StreamKey) -> bool {
        self.streams.contains_key(stream)
    }

    /// The catalog streams of this mapper with this name.
    pub fn streams_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a StreamKey> + 'a {
        self.streams.keys().filter(move |k| k.name == name)
    }

    /// Says whether the audience has GDPR fields: without them, permission values are not sent.
    pub fn with_gdpr(mut self, gdpr: bool) -> Self {
        self.permissions.1 = gdpr;
        self
    }

    /// A warning when fields map to marketing permissions but the audience has no GDPR fields.
    pub fn permissions_not_applicable(&self) -> Option<String> {
        if self.permissions.1 || self.permissions.0.is_empty() {
            return None;
        }
        Some(format!(
            "Fields map to the GDPR marketing permissions {}, but this audience has no GDPR fields: those \
             values are not sent (turn on GDPR fields in Audience → Settings to use them).",
            self.permissions.0.join(", ")
        ))
    }

    /// Maps one record of a resolved catalog stream.
    pub fn map(&mut self, stream: &StreamKey, data: RecordData<'_>) -> Mapped {
        let RecordData::Fields(fields) = data else {
            return Mapped::Rejected(Rejection::invalid(None, "the record's data is not a JSON object"));
        };
        // The plan is lent out while the record is mapped (mapping may add fields to it).
        let mut plan = self.streams.get_mut(stream).map(std::mem::take).unwrap_or_default();
        let mapped = self.map_fields(stream, &mut plan, fields);
        match self.streams.get_mut(stream) {
            Some(slot) => *slot = plan,
            None => {
                self.streams.insert(stream.clone(), plan);
            }
        }
        mapped
    }

    /// Maps a record's fields as received: a value is read only when its field is mapped.
    fn map_fields(&mut self, stream: &StreamKey, plan: &mut StreamPlan, fields: Fields<'_>) -> Mapped {
        if let Some(event) = plan.event.clone() {
            let (at, email) = match self.take_email(&fields, plan) {
                Ok((at, _, email)) => (at, email),
                Err(rejection) => return Mapped::Rejected(rejection),
            };
            let rest = fields.into_iter().enumerate().filter(|(i, _)| *i != at);
            let rest = rest.map(|(_, (name, value))| (name.into_owned(), value.value())).collect();
            return Self::map_event(&event, email, rest);
        }
        let soft_delete = plan.mode == SyncMode::SoftDelete;
        let deleted = soft_delete
            || fields.iter().any(|(name, value)| name == DELETED_AT_FIELD && is_set(&value.value()));
        if deleted && !soft_delete && self.settings.on_delete == OnDelete::Ignore {
            return Mapped::DeletionIgnored;
        }
        let (at, email_field, email) = match self.take_email(&fields, plan) {
            Ok(found) => found,
            Err(reason) => return Mapped::Rejected(reason),
        };
        if deleted {
            return Mapped::Member(self.deletion(email, soft_delete));
        }
        let mut member = Member::bare(email, self.settings.status_if_new, Action::Upsert);
        if plan.mode == SyncMode::Update && self.existing.as_ref().is_some_and(|e| !e.contains(&member.key)) {
            return Mapped::Rejected(Rejection {
                reason: NOT_IN_AUDIENCE,
                field: Some(email_field.to_string()),
                message: "the contact is not in the audience, and this stream only updates existing contacts"
                    .into(),
            });
        }
        member.tags = self.settings.config_tags.clone();
        let mut status_at = None;
        if let Some(status_field) = self.settings.status_field.as_deref() {
            status_at = fields.iter().rposition(|(name, _)| name == status_field);
            if let Some(at) = status_at {
                self.apply_intent(&mut member, &fields[at].1.value());
            }
        }
        for (i, (name, value)) in fields.iter().enumerate() {
            if i == at
                || Some(i) == status_at
                || name == email_field
                || name.is_empty()
                || name == DELETED_AT_FIELD
            {
                continue;
            }
            if name == "tags" {
                add_record_tags(&mut member.tags, value);
                continue;
            }
            let target = self.target_in_plan(stream, plan, name);
            self.map_value(stream, &mut member, target, name, value);
        }
        if let Some(prefix) = &self.settings.owned_tag_prefix {
            member.owned_tags =
                Some(member.tags.iter().filter(|t| t.starts_with(prefix.as_str())).cloned().collect());
        }
        Mapped::Member(member)
    }

    /// An events record: the contact's email, the event's name, its time in UTC (the time it was read
    /// when the record has none), and every other field as a text property.
    fn map_event(event: &EventPlan, email: String, mut fields: Vec<(String, Value)>) -> Mapped {
        let invalid = |field: Option<&str>, message: String| {
            Mapped::Rejected(Rejection { reason: INVALID_EVENT, field: field.map(str::to_string), message })
        };
        let id = event.id_field.as_deref().and_then(|id| {
            fields
                .iter()
                .find(|(name, _)| name == id)
                .map(|(_, v)| property_text(v))
                .filter(|v| !v.is_empty())
        });
        let name = match &event.fixed_name {
            Some(name) => name.clone(),
            None => match take_first(&mut fields, &["event_name", "name", "event"]) {
                Some((_, Value::String(name))) => name.trim().to_string(),
                Some((field, _)) => {
                    return invalid(Some(&field), format!("the event name field '{field}' is not text"))
                }
                None => {
                    return invalid(None, "the record has no event name (event_name, name or event)".into())
                }
            },
        };
        if !is_valid_event_name(&name) {
            return invalid(
                Some("event_name"),
                format!(
                    "the event name '{}' is not 2–30 letters, digits, underscores or dashes",
                    excerpt(&name, 40)
                ),
            );
        }
        let occurred_at = match take_first(&mut fields, &["occurred_at", "timestamp"]) {
            Some((field, value)) => match convert::event_time(&value) {
                Ok(time) => time,
                Err(problem) => {
                    return invalid(Some(&field), format!("the event time field '{field}' is {problem}"))
                }
            },
            None => convert::event_time_now(),
        };
        let mut posted = Event::new(email, name, occurred_at, event_properties(fields));
        posted.is_syncing = event.quiet;
        Mapped::Event(Box::new(posted), id)
    }

    /// Takes the record's email out of its fields: its position, the field's name and the address;
    /// or why the record cannot become a contact.
    fn take_email<'f>(
        &self,
        fields: &'f [(Cow<'_, str>, FieldValue<'_>)],
        plan: &StreamPlan,
    ) -> Result<(usize, &'f str, String), Rejection> {
        let configured = self.settings.email_field.as_deref();
        let at = find_email(fields, configured, plan.key_field.as_deref())
            .map_err(|message| Rejection::invalid(configured, message))?;
        let (email_field, value) = (&*fields[at].0, &fields[at].1);
        let invalid = |problem: &str| {
            Rejection::invalid(Some(email_field), format!("the email field '{email_field}' {problem}"))
        };
        let email = match value.text() {
            Some(text) => text.trim().to_string(),
            None if value.is_null() => return Err(invalid("is null")),
            None => return Err(invalid("is not a string")),
        };
        if !looks_like_email(&email) {
            return Err(invalid("does not hold an email address"));
        }
        if is_reserved_domain(&email) {
            return Err(invalid(
                "holds a placeholder address (a reserved domain such as example.com, which Mailchimp refuses)",
            ));
        }
        Ok((at, email_field, email))
    }

    /// A record deleted at the source, as `on_delete` says (ignore is handled before), or a record
    /// of a soft-delete stream: archived, unless `on_delete` names another action.
    fn deletion(&self, email: String, soft_delete: bool) -> Member {
        let on_delete = match self.settings.on_delete {
            OnDelete::Ignore if soft_delete => OnDelete::Archive,
            other => other,
        };
        let mut member = match on_delete {
            OnDelete::Archive => Member::bare(email, self.settings.status_if_new, Action::Archive),
            OnDelete::DeletePermanently => {
                Member::bare(email, self.settings.status_if_new, Action::DeletePermanently)
            }
            OnDelete::Unsubscribe | OnDelete::Ignore => {
                let mut member = Member::bare(email, MemberStatus::Unsubscribed, Action::Upsert);
                member.status = Some(MemberStatus::Unsubscribed);
                member
            }
        };
        member.deleted_at_source = true;
        member
    }

    /// Where a field goes: from the stream's plan, or worked out (and reported) for a field the
    /// catalog did not list.
    fn target_in_plan(&mut self, stream: &StreamKey, plan: &mut StreamPlan, name: &str) -> Target {
        if let Some(target) = plan.targets.get(name) {
            return *target;
        }
        let target = self.target_for(name);
        if target != Target::Ignored {
            self.findings.discovered.push(format!(
                "Stream '{stream}': field '{name}' (not in the catalog's schema) → {}.",
                self.describe(target)
            ));
        }
        plan.targets.insert(name.to_string(), target);
        target
    }

    /// Converts one value for its target and puts it on the member; a value that cannot be
    /// converted is dropped and counted.
    fn map_value(
        &mut self,
        stream: &StreamKey,
        member: &mut Member,
        target: Target,
        name: &str,
        value: &FieldValue<'_>,
    ) {
        if target == Target::Ignored {
            return;
        }
        if let Target::Merge(i) = target {
            let field = &self.merge_fields[i];
            if convert::is_text_kind(&field.kind) {
                // Text is copied once, from the input line into the member.
                if let Some(text) = value.text() {
                    if let Some(text) = convert::text_value(&text) {
                        member.merge_fields.insert_text(&field.tag, text);
                    }
                    return;
                }
            }
        }
        let (value, reason) = match (target, value.value()) {
            (Target::Ignored, _) => return,
            (Target::Merge(i), value) => {
                let field = &self.merge_fields[i];
                match convert::merge_value(&field.kind, &field.options, &value) {
                    Ok(Some(v)) => {
                        member.merge_fields.insert(&field.tag, &v);
                        return;
                    }
                    Ok(None) => return,
                    Err(reason) => (value, reason),
                }
            }
            (Target::Group(i), value) => match self.group_value(member, i, &value) {
                Some(reason) => (value, reason),
                None => return,
            },
            (Target::Permission(i), value) => match self.permission_value(member, i, &value) {
                Some(reason) => (value, reason),
                None => return,
            },
            (Target::Attribute(attribute), value) => match convert::attribute_value(attribute, &value) {
                Ok(Some(v)) => {
                    member.attributes.insert(attribute, v);
                    return;
                }
                Ok(None) => return,
                Err(reason) => (value, reason),
            },
        };
        self.count_drop(stream, name, target, &value, reason);
    }

    /// A group category's value on the member; the reason when some or all of it is not sent.
    fn group_value(&self, member: &mut Member, category: usize, value: &Value) -> Option<String> {
        match crate::groups::selection(&self.categories[category], value) {
            Ok(None) => None,
            Ok(Some(selection)) => {
                let unknown = self.choose(member, category, selection);
                let title = &self.categories[category].title;
                (!unknown.is_empty())
                    .then(|| format!("no group called '{}' in '{title}'", unknown.join("', '")))
            }
            Err(reason) => Some(reason),
        }
    }

    /// A marketing permission's value on the member (null: left as it is); the reason when it is
    /// not sent.
    fn permission_value(&self, member: &mut Member, permission: usize, value: &Value) -> Option<String> {
        if value.is_null() {
            return None;
        }
        if !self.permissions.1 {
            return Some("the audience has no GDPR marketing permissions".into());
        }
        match convert::boolean(value) {
            Ok(enabled) => {
                let name = self.permissions.0[permission].clone();
                let permissions = member.permissions.get_or_insert_with(Default::default);
                permissions.retain(|(n, _)| *n != name);
                permissions.push((name, enabled));
                None
            }
            Err(reason) => Some(reason),
        }
    }

    /// Puts a category's selection on the member; returns the names the category lacks that are
    /// dropped (when the sync may create groups, they are kept on the member to be created).
    fn choose(
        &self,
        member: &mut Member,
        category: usize,
        selection: crate::groups::Selection,
    ) -> Vec<String> {
        let id = self.categories[category].id.clone();
        let mut choice = GroupChoice {
            interests: selection
                .interests
                .into_iter()
                .map(|(interest, on)| (interest, Value::Bool(on)))
                .collect(),
            categories: vec![id.clone()],
            missing: Vec::new(),
        };
        let dropped = if self.settings.create_missing_groups {
            choice.missing = selection.unknown.into_iter().map(|name| (id.clone(), name)).collect();
            Vec::new()
        } else {
            selection.unknown
        };
        match &mut member.groups {
            Some(groups) => groups.merge(choice),
            None => member.groups = Some(Box::new(choice)),
        }
        dropped
    }

    /// The status the source intends: `unsubscribed` and `subscribed` are sent as the status (an
    /// explicit change); `pending` and `transactional` apply to new contacts only; an empty value
    /// keeps `status_if_new`; anything else is counted and ignored.
    fn apply_intent(&mut self, member: &mut Member, value: &Value) {
        let text = match value {
            Value::Null => return,
            Value::String(s) if s.trim().is_empty() => return,
            Value::String(s) => s.trim().to_ascii_lowercase(),
            other => other.to_string(),
        };
        match MemberStatus::parse(&text) {
            Some(status @ (MemberStatus::Subscribed | MemberStatus::Unsubscribed)) => {
                member.status = Some(status);
                member.status_if_new = status;
            }
            Some(status) => member.status_if_new = status,
            None => *self.findings.unknown_statuses.entry(excerpt(&text, 40)).or_default() += 1,
        }
    }

    /// Status-field values that were not a status, one line (None when there were none).
    pub fn unknown_statuses(&self) -> Option<String> {
        let field = self.settings.status_field.as_deref()?;
        if self.findings.unknown_statuses.is_empty() {
            return None;
        }
        let values: Vec<String> =
            self.findings.unknown_statuses.iter().map(|(v, n)| format!("'{v}' × {n}")).collect();
        Some(format!(
            "The status field '{field}' held values that are not a status (subscribed, unsubscribed, pending, \
             transactional); those records were synced as if it were empty: {}.",
            values.join(", ")
        ))
    }

    fn count_drop(&mut self, stream: &StreamKey, field: &str, target: Target, value: &Value, reason: String) {
        let target = self.describe(target);
        let entry =
            self.findings.dropped.entry((stream.to_string(), field.to_string())).or_insert_with(|| {
                DroppedValues { target, count: 0, example: excerpt(&value.to_string(), 60), reason }
            });
        entry.count += 1;
    }

    fn describe(&self, target: Target) -> String {
        match target {
            Target::Merge(i) => self.merge_fields[i].tag.clone(),
            Target::Group(i) => format!("the group category '{}'", self.categories[i].title),
            Target::Permission(i) => format!("the marketing permission '{}'", self.permissions.0[i]),
            Target::Attribute(a) => format!("{a} (member attribute)"),
            Target::Ignored => "nothing".into(),
        }
    }

    /// One line per stream: the mapping it will use, the fields it will not send, and the
    /// audience's required merge fields it cannot fill.
    pub fn plan_report(&self) -> Vec<(bool, String)> {
        let mut keys: Vec<&StreamKey> = self.streams.keys().collect();
        keys.sort();
        keys.into_iter()
            .map(|key| {
                let plan = &self.streams[key];
                let mut names: Vec<&String> = plan.targets.keys().collect();
                names.sort();
                let mapped: Vec<String> = names
                    .iter()
                    .filter(|n| plan.targets[**n] != Target::Ignored)
                    .map(|n| format!("{n} → {}", self.describe(plan.targets[*n])))
                    .collect();
                let ignored: Vec<&str> = names
                    .iter()
                    .filter(|n| plan.targets[**n] == Target::Ignored && !self.is_special(n, plan.key_field.as_deref()))
                    .map(|n| n.as_str())
                    .collect();
                let filled: Vec<usize> = plan.targets.values().filter_map(|t| if let Target::Merge(i) = t { Some(*i) } else { None }).collect();
                let unfilled: Vec<&str> = self
                    .merge_fields
                    .iter()
                    .enumerate()
                    .filter(|(i, f)| f.required && !filled.contains(i))
                    .map(|(_, f)| f.tag.as_str())
                    .collect();
                let list = |items: &[&str]| if items.is_empty() { "none".to_string() } else { items.join(", ") };
                let mut line = format!(
                    "Stream '{key}': mapping {}; not sent: {}.",
                    if mapped.is_empty() { "no merge fields".to_string() } else { mapped.join(", ") },
                    list(&ignored)
                );
                if !unfilled.is_empty() {
                    line.push_str(&format!(
                        " The audience requires the merge fields {}, which no field of this stream fills: Mailchimp \
                         will reject new contacts without them unless skip_merge_validation is set.",
                        unfilled.join(", ")
                    ));
                }
                (unfilled.is_empty(), line)
            })
            .collect()
    }

    /// Mappings found in records for fields the catalog did not list, since the last call.
    pub fn take_discovered(&mut self) -> Vec<String> {
        std::mem::take(&mut self.findings.discovered)
    }

    /// Values dropped because they could not be converted, per stream and field.
    pub fn dropped_values(&self) -> Vec<String> {
        self.findings.dropped
            .iter()
            .map(|((stream, field), d)| {
                format!(
                    "Stream '{stream}', field '{field}' → {}: {} value(s) could not be converted and were not sent \
                     (the contacts were still synced); e.g. {} ({}).",
                    d.target, d.count, d.example, d.reason
                )
            })
            .collect()
    }
}

impl Mapper {
    /// Fields read for something other than a merge field: the email, tags, status, deletion mark.
    fn is_special(&self, name: &str, key_field: Option<&str>) -> bool {
        name == "tags"
            || name == DELETED_AT_FIELD
            || self.settings.email_field.as_deref() == Some(name)
            || self.settings.status_field.as_deref() == Some(name)
            || key_field == Some(name)
            || name.eq_ignore_ascii_case("email")
            || name.eq_ignore_ascii_case("email_address")
    }
}

/// The index of `name` in `names`, added when it is new.
fn intern(names: &mut Vec<String>, name: String) -> usize {
    match names.iter().position(|n| *n == name) {
        Some(i) => i,
        None => {
            names.push(name);
            names.len() - 1
        }
    }
}

/// The target of an explicit mapping; a config error when the audience lacks it.
fn explicit_target(
    field: &str,
    target: &MappingTarget,
    merge_fields: &[MergeField],
    categories: &[Category],
) -> Result<Target, ConnectorError> {
    match target {
        MappingTarget::MergeTag(tag) => {
            merge_fields.iter().position(|f| f.tag.eq_ignore_ascii_case(tag)).map(Target::Merge).ok_or_else(|| {
                let tags: Vec<&str> = merge_fields.iter().map(|f| f.tag.as_str()).collect();
                ConnectorError::config(format!(
                    "field_mappings maps '{field}' to the merge tag '{tag}', which the audience does not have \
                     (its merge tags: {}). Fix the mapping or add the field in Audience → Settings → Audience fields.",
                    tags.join(", ")
                ))
            })
        }
        MappingTarget::MarketingPermission(_) => unreachable!("permissions are interned by the mapper"),
        MappingTarget::Group(title) => categories
            .iter()
            .position(|c| c.title.trim().eq_ignore_ascii_case(title.trim()))
            .map(Target::Group)
            .ok_or_else(|| {
                let titles: Vec<&str> = categories.iter().map(|c| c.title.as_str()).collect();
                ConnectorError::config(format!(
                    "field_mappings maps '{field}' to the group category '{title}', which the audience does not \
                     have (its group categories: {}). Fix the mapping or add the category in Mailchimp.",
                    if titles.is_empty() { "none".to_string() } else { titles.join(", ") }
                ))
            }),
    }
}

/// Lowercase, with every run of non-alphanumerics turned into one `_`: "First Name" → `first_name`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// Where the record's email is: the configured field, else `email_address` or `email` (any case),
/// else a one-field primary key. A repeated name: the last one wins, as in a JSON object.
fn find_email(
    fields: &[(Cow<'_, str>, FieldValue<'_>)],
    configured: Option<&str>,
    key_field: Option<&str>,
) -> Result<usize, String> {
    let named = |name: &str| fields.iter().rposition(|(k, _)| k == name);
    if let Some(name) = configured {
        return named(name)
            .ok_or_else(|| format!("the record has no '{name}' field (the configured email field)"));
    }
    for wanted in ["email_address", "email"] {
        if let Some(at) = fields.iter().position(|(k, _)| k.eq_ignore_ascii_case(wanted)) {
            return Ok(at);
        }
    }
    if let Some(at) = key_field.and_then(named) {
        return Ok(at);
    }
    Err("the record has no email field (email_address, email, or a one-field primary key); set email_field"
        .into())
}

/// The fields left after the email, name and time were taken, as an event's text properties (a
/// `properties` object gives its entries; nulls and the platform's `_ab_…` fields are left out).
fn event_properties(fields: Vec<(String, Value)>) -> serde_json::Map<String, Value> {
    let mut properties = serde_json::Map::new();
    for (name, value) in fields {
        if name.is_empty() || name.starts_with("_ab_") || value.is_null() {
            continue;
        }
        match (name.as_str(), value) {
            ("properties", Value::Object(inner)) => {
                for (key, value) in inner.into_iter().filter(|(_, v)| !v.is_null()) {
                    properties.insert(key, Value::String(property_text(&value)));
                }
            }
            (_, value) => {
                properties.insert(name, Value::String(property_text(&value)));
            }
        }
    }
    properties
}

/// Takes the first of these fields that the record has with a value (its name is cleared).
fn take_first(fields: &mut [(String, Value)], names: &[&str]) -> Option<(String, Value)> {
    let at = names.iter().find_map(|wanted| {
        fields.iter().position(|(name, value)| name.eq_ignore_ascii_case(wanted) && !value.is_null())
    })?;
    Some((std::mem::take(&mut fields[at].0), std::mem::take(&mut fields[at].1)))
}

/// An event property's text: text as it is, numbers and booleans written out, nested values as JSON,
/// cut to `EVENT_PROPERTY_CHARS` characters.
fn property_text(value: &Value) -> String {
    let text = match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(EVENT_PROPERTY_CHARS) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text,
    }
}

/// A light shape check; Mailchimp judges the rest and its verdict is reported per contact.
/// Whether a field value counts as set (`_ab_cdc_deleted_at`: anything but null or "").
fn is_set(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}

/// Domains reserved for examples and tests (RFC 2606, RFC 6761): no one can receive mail there,
/// and Mailchimp refuses them.
pub fn is_reserved_domain(email: &str) -> bool {
    const RESERVED: [&str; 7] =
        ["example.com", "example.net", "example.org", "example", "invalid", "test", "localhost"];
    let Some((_, domain)) = email.rsplit_once('@') else { return false };
    let domain = domain.trim_end_matches('.').as_bytes();
    // The domain itself or any subdomain of it, in any case, without allocating.
    RESERVED.iter().any(|reserved| {
        let reserved = reserved.as_bytes();
        let Some(start) = domain.len().checked_sub(reserved.len()) else { return false };
        domain[start..].eq_ignore_ascii_case(reserved) && (start == 0 || domain[start - 1] == b'.')
    })
}

fn looks_like_email(email: &str) -> bool {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && domain.contains('.')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn add_record_tags(tags: &mut Vec<String>, value: &FieldValue<'_>) {
    let mut add = |tag: &str| {
        let tag = tag.trim();
        if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    };
    if let Some(text) = value.text() {
        return text.split(',').for_each(&mut add);
    }
    // A list: its items that are text; anything else is skipped.
    if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(value.get()) {
        items.into_iter().filter_map(|item| text_of(item.get())).for_each(|text| add(&text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailchimp::member::email_key;
    use serde_json::json;

    fn mapper(config: serde_json::Value, catalog: serde_json::Value) -> Mapper {
        let config = crate::config::from_value(&config, None).unwrap();
        let catalog: ConfiguredCatalog = serde_json::from_value(catalog).unwrap();
        let fields: Vec<MergeField> = serde_json::from_value(json!([
            {"tag": "FNAME", "name": "First Name", "type": "text"},
            {"tag": "LNAME", "name": "Last Name", "type": "text"},
            {"tag": "SCORE", "name": "Score", "type": "number"}
        ]))
        .unwrap();
        Mapper::new(&config, &catalog, &fields, &[]).unwrap()
    }

    fn users() -> StreamKey {
        StreamKey { namespace: None, name: "users".into() }
    }

    fn default_mapper() -> Mapper {
        mapper(
            json!({"api_key": "0123456789abcdef0123456789abcdef-us1", "list_id": "l", "tags": "crm, vip"}),
            json!({"streams": [{"stream": {"name": "users", "json_schema": {}}, "destination_sync_mode": "append_dedup", "primary_key": [["id"]]}]}),
        )
    }

    #[test]
    fn status_intents_deletions_and_placeholder_domains() {
        let catalog = json!({"streams": [{"stream": {"name": "users", "json_schema": {}}, "destination_sync_mode": "append_dedup"}]});
        let mut m = mapper(
            json!({"api_key": "0123456789abcdef0123456789abcdef-us1", "list_id": "l", "status_field": "consent", "on_delete": "archive",
                   "tag_mode": "owned", "owned_tag_prefix": "hp:", "tags": "hp:all, crm"}),
            catalog.clone(),
        );
        let map = |m: &mut Mapper, data: Value| match m.map(&users(), data.into()) {
            Mapped::Member(member) => member,
            other => panic!("{other:?}"),
        };
        let out = map(&mut m, json!({"email": "a@b.io", "consent": " UNSUBSCRIBED", "tags": ["hp:x", "y"]}));
        assert_eq!(
            (out.status, out.status_if_new),
            (Some(MemberStatus::Unsubscribed), MemberStatus::Unsubscribed)
        );
        assert_eq!(out.owned_tags, Some(vec!["hp:all".to_string(), "hp:x".to_string()]));
        assert!(!serde_json::to_string(&out).unwrap().contains("consent"));
        let pending = map(&mut m, json!({"email": "a@b.io", "consent": "pending"}));
        assert_eq!((pending.status, pending.status_if_new), (None, MemberStatus::Pending));
        let odd = map(&mut m, json!({"email": "a@b.io", "consent": 3}));
        assert_eq!((odd.status, odd.status_if_new), (None, MemberStatus::Subscribed));
        assert!(m.unknown_statuses().unwrap().contains("'3' × 1"));
        let deleted =
            map(&mut m, json!({"email": "a@b.io", "_ab_cdc_deleted_at": "2026-01-01", "fname": "x"}));
        assert_eq!((deleted.action, deleted.merge_fields.len(), deleted.tags.len()), (Action::Archive, 0, 0));
        let not_deleted = map(&mut m, json!({"email": "a@b.io", "_ab_cdc_deleted_at": null}));
        assert_eq!(not_deleted.action, Action::Upsert);

        let mut ignoring =
            mapper(json!({"api_key": "0123456789abcdef0123456789abcdef-us1", "list_id": "l"}), catalog);
        assert_eq!(ignoring.map(&users(), json!({"_ab_cdc_deleted_at": 1}).into()), Mapped::DeletionIgnored);
        for placeholder in ["x@example.com", "x@mail.EXAMPLE.org", "x@shop.test", "x@host.invalid"] {
            assert!(
                matches!(ignoring.map(&users(), json!({"email": placeholder}).into()), Mapped::Rejected(r) if r.message.contains("placeholder")),
                "{placeholder}"
            );
        }
        assert!(matches!(
            ignoring.map(&users(), json!({"email": "x@examples.com"}).into()),
            Mapped::Member(_)
        ));
    }

    #[test]
    fn maps_email_merge_fields_and_tags() {
        let mut m = default_mapper();
        let data = json!({"Email": "  Ada@Math.org ", "fname": "Ada", "LName": null, "score": 7, "x": 1, "tags": ["b", "vip"]});
        let Mapped::Member(member) = m.map(&users(), data.clone().into()) else { panic!() };
        assert_eq!(member.email_address, "Ada@Math.org");
        assert_eq!(member.key, email_key("ada@math.org"));
        assert_eq!(Value::Object(member.merge_fields.to_map()), json!({"FNAME": "Ada", "SCORE": 7}));
        assert_eq!(member.tags, vec!["crm", "vip", "b"]);
        let body = serde_json::to_value(&member).unwrap();
        assert_eq!(
            body,
            json!({"email_address": "Ada@Math.org", "status_if_new": "subscribed", "merge_fields": {"FNAME": "Ada", "SCORE": 7}, "tags": ["crm", "vip", "b"]})
        );
        assert!(body.get("status").is_none());
    }

    #[test]
    fn prefers_email_address_then_email_then_single_primary_key() {
        let mut m = default_mapper();
        let Mapped::Member(a) = m.map(&users(), json!({"email": "x@y.io", "EMAIL_ADDRESS": "z@y.io"}).into())
        else {
            panic!()
        };
        assert_eq!(a.email_address, "z@y.io");
        let Mapped::Member(b) = m.map(&users(), json!({"id": "pk@y.io"}).into()) else { panic!() };
        assert_eq!(b.email_address, "pk@y.io");
        let Mapped::Member(c) = m.map(&users(), json!({"email": "x@y.io", "tags": "p, q ,"}).into()) else {
            panic!()
        };
        assert_eq!(c.tags, vec!["crm", "vip", "p", "q"]);
    }

    #[test]
    fn configured_email_field_wins() {
        let mut m = mapper(
            json!({"api_key": "0123456789abcdef0123456789abcdef-us1", "list_id": "l", "email_field": "work"}),
            json!({"streams": [{"stream": {"name": "users"}, "destination_sync_mode": "append_dedup"}]}),
        );
        let Mapped::Member(a) = m.map(&users(), json!({"email": "x@y.io", "work": "w@y.io"}).into()) else {
            panic!()
        };
        assert_eq!(a.email_address, "w@y.io");
        assert!(
            matches!(m.map(&users(), json!({"email": "x@y.io"}).into()), Mapped::Rejected(r) if r.message.contains("'work'"))
        );
    }

    #[test]
    fn rejects_records_without_a_usable_email() {
        let mut m = default_mapper();
        for data in [
            json!({"name": "x"}),
            json!({"email": null}),
            json!({"email": 5}),
            json!({"email": "nope"}),
            json!({"email": "a b@c.io"}),
            json!({"email": "  "}),
            json!([1]),
        ] {
            assert!(matches!(m.map(&users(), data.clone().into()), Mapped::Rejected(_)), "{data}");
        }
    }

    #[test]
    fn matches_by_tag_display_name_alias_and_explicit_mapping() {
        let config = crate::config::from_value(
            &json!({"api_key": "0123456789abcdef0123456789abcdef-us1", "list_id": "l", "field_mappings": [{"record_field": "nick", "merge_tag": "fname"}]}),
            None,
        )
        .unwrap();
        let catalog: ConfiguredCatalog = serde_json::from_value(json!({"streams": [{"stream": {"name": "users", "json_schema": {"properties": {"email": {}, "Last Name": {}, "dob": {}, "first_name": {}, "vip": {}, "plan": {}}}}, "destination_sync_mode": "append_dedup"}]})).unwrap();
        let fields: Vec<MergeField> = serde_json::from_value(json!([
            {"tag": "FNAME", "name": "First Name", "type": "text"},
            {"tag": "LNAME", "name": "Last Name", "type": "text"},
            {"tag": "BIRTHDAY", "name": "Birthday", "type": "birthday", "options": {"date_format": "MM/DD"}},
            {"tag": "MMERGE9", "name": "Plan", "type": "dropdown", "required": true, "options": {"choices": ["Pro", "Free"]}}
        ]))
        .unwrap();
        let mut m = Mapper::new(&config, &catalog, &fields, &[]).unwrap();
        let data = json!({"email": "a@b.io", "nick": "Ada", "first_name": "Augusta", "Last Name": "King", "dob": "1815-12-10", "vip": "yes", "plan": "pro", "shoe": 9});
        let Mapped::Member(member) = m.map(&users(), data.clone().into()) else { panic!() };
        assert_eq!(
            Value::Object(member.merge_fields.to_map()),
            json!({"FNAME": "Ada", "LNAME": "King", "BIRTHDAY": "12/10", "MMERGE9": "Pro"})
        );
        assert_eq!(Value::Object(member.attributes.to_map()), json!({"vip": true}));
        let report = m.plan_report();
        assert!(report[0].0, "{report:?}");
        assert!(
            report[0].1.contains("Last Name → LNAME") && report[0].1.contains("not sent: first_name"),
            "{report:?}"
        );
        assert_eq!(
            m.take_discovered(),
            vec!["Stream 'users': field 'nick' (not in the catalog's schema) → FNAME.".to_string()]
        );

        let bad = json!({"email": "b@b.io", "dob": "someday", "plan": "Gold"});
        assert!(matches!(m.map(&users(), bad.clone().into()), Mapped::Member(_)));
        let dropped = m.dropped_values();
        assert_eq!(dropped.len(), 2);
        assert!(dropped[0].contains("field 'dob' → BIRTHDAY: 1 value(s)"), "{dropped:?}");

        let unknown = crate::config::from_value(&json!({"api_key": "0123456789abcdef0123456789abcdef-us1", "list_id": "l", "field_mappings": [{"record_field": "x", "merge_tag": "NOPE"}]}), None).unwrap();
        let error = Mapper::new(&unknown, &catalog, &fields, &[]).err().unwrap();
        assert!(
            error.message.contains("'NOPE'") && error.message.contains("FNAME, LNAME"),
            "{}",
            error.message
        );
    }
}
