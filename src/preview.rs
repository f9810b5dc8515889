//! `preview`: reads the same input as `write`, looks up the contacts it names in Mailchimp, and
//! reports what a sync would do, without writing anything.

use crate::batch::Ready;
use crate::catalog::ConfiguredCatalog;
use crate::config::Config;
use crate::effects::Effects;
use crate::error::ConnectorError;
use crate::input::InputEvent;
use crate::intake::Intake;
use crate::mailchimp::client::Client;
use crate::mailchimp::member::{email_key, Action, EmailKey, Member, MemberStatus};
use crate::mailchimp::model::{Category, ListInfo, MemberSummary};
use crate::mapping::Mapper;
use crate::progress::thousands;
use crate::rules::{Held, Rules};
use futures::stream::{StreamExt, TryStreamExt};
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::hash_map::Entry;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Mailchimp's largest page of members.
const PAGE: u64 = 1000;
/// One page of 1000 members costs about as much as this many lookups of one contact: below it,
/// contacts are looked up one by one, above it the audience is paged.
const LOOKUPS_PER_PAGE: u64 = 20;
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// One step of a contact, as a sync would send it (records merged as `write` merges them), kept
/// small: a preview of millions of records holds one per contact.
#[derive(Debug)]
struct Step {
    action: Action,
    status: Option<MemberStatus>,
    status_if_new: MemberStatus,
    deleted_at_source: bool,
    /// A required merge field of the audience (its index) this step does not fill.
    missing_required: Option<u16>,
    records: u32,
    tags: TagSet,
    owned_tags: Option<TagSet>,
    /// The groups this step chooses (interest ids, interned) and leaves; `None` for most contacts.
    groups: Option<Box<[(TagId, bool)]>>,
}

/// The input's contacts: each one's first step, the later steps of the few that have more, and
/// what Mailchimp holds for those it has.
#[derive(Debug, Default)]
struct Contacts {
    first: FxHashMap<EmailKey, Step>,
    later: FxHashMap<EmailKey, Vec<Step>>,
    held: FxHashMap<EmailKey, Held<TagId>>,
    /// The groups (interest ids, interned) of the contacts Mailchimp holds that are in any.
    held_groups: FxHashMap<EmailKey, Vec<TagId>>,
}

impl<'a> Context<'a> {
    fn new(
        config: &'a Config,
        categories: &'a [Category],
        required: &'a [String],
        names: &'a TagNames,
    ) -> Self {
        let group_labels = categories
            .iter()
            .flat_map(|c| {
                c.interests.iter().map(move |i| (i.id.as_str(), format!("{} › {}", c.title, i.name)))
            })
            .collect();
        Context {
            group_labels,
            rules: Rules {
                resubscribe: config.resubscribe_policy,
                skip_merge_validation: config.skip_merge_validation,
            },
            owned_tag_prefix: config.owned_tag_prefix.as_deref(),
            required,
            names,
        }
    }

    fn group_label(&self, interest: TagId) -> String {
        let id = self.names.name(interest);
        self.group_labels.get(id).cloned().unwrap_or_else(|| format!("group {id}"))
    }
}

impl Contacts {
    fn push(&mut self, key: EmailKey, step: Step) {
        match self.first.entry(key) {
            Entry::Occupied(_) => self.later.entry(key).or_default().push(step),
            Entry::Vacant(slot) => {
                slot.insert(step);
            }
        }
    }

    fn steps<'a>(&'a self, key: &EmailKey, first: &'a Step) -> impl Iterator<Item = &'a Step> {
        std::iter::once(first).chain(self.later.get(key).into_iter().flatten())
    }
}

type TagId = u32;
type TagSet = u32;

/// Each tag name, and each set of tags, stored once; contacts hold numbers.
#[derive(Debug, Default)]
struct TagNames {
    names: Vec<String>,
    ids: FxHashMap<String, TagId>,
    sets: Vec<Box<[TagId]>>,
    set_ids: FxHashMap<Box<[TagId]>, TagSet>,
}

impl TagNames {
    fn id(&mut self, name: &str) -> TagId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as TagId;
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    fn set(&mut self, names: &[String]) -> TagSet {
        let ids: Vec<TagId> = names.iter().map(|n| self.id(n)).collect();
        if let Some(set) = self.set_ids.get(ids.as_slice()) {
            return *set;
        }
        let set = self.sets.len() as TagSet;
        self.sets.push(ids.clone().into_boxed_slice());
        self.set_ids.insert(ids.into_boxed_slice(), set);
        set
    }

    fn tags(&self, set: TagSet) -> &[TagId] {
        &self.sets[set as usize]
    }

    fn name(&self, id: TagId) -> &str {
        &self.names[id as usize]
    }
}

/// The report, as `--json` prints it: one flat object that users script against, hence its width.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub audience: String,
    pub list_id: String,
    pub records: u64,
    pub states: u64,
    pub contacts: u64,
    /// "lookups" (one request per contact) or "pages" (the audience's members, 1000 at a time).
    pub lookup: String,
    pub lookup_requests: u64,
    pub created: u64,
    pub updated: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Up to three rejected records per reason, as excerpts with their addresses masked.
    pub rejected_examples: BTreeMap<String, Vec<String>>,
    /// Events that would be posted, by name (whether each contact is in the audience is not looked up).
    pub events: BTreeMap<String, u64>,
    /// "from → to" for contacts whose status would change.
    pub status_changes: BTreeMap<String, u64>,
    pub tags_added: u64,
    pub contacts_tagged: u64,
    /// "Category › group" → how many contacts would join it, and leave it.
    pub groups_joined: BTreeMap<String, u64>,
    pub groups_left: BTreeMap<String, u64>,
    #[serde(flatten)]
    pub effects: Effects,
    pub mapping: Vec<String>,
    pub warnings: Vec<String>,
}

/// How the report is given: text or JSON on stdout, and optionally an HTML page in a file.
#[derive(Debug, Clone, Default)]
pub struct ReportOutput {
    pub json: bool,
    pub html: Option<std::path::PathBuf>,
}

/// Examples kept per rejection reason.
const EXAMPLES_PER_REASON: usize = 3;

/// Runs the preview: reads `input`, looks up, and prints the report (text, or JSON) to `out`, and
/// writes the HTML page when asked.
pub async fn preview<W: Write>(
    config: &Config,
    catalog: &ConfiguredCatalog,
    mut input: mpsc::Receiver<InputEvent>,
    output: &ReportOutput,
    out: &mut W,
) -> Result<(), ConnectorError> {
    let routes = configured_audience_only(config, catalog)?;
    let client = Client::new(&config.client_settings())?;
    let audience = client.audience().await?;
    let (list, merge_fields) = (&audience.list, &audience.merge_fields);
    // Update-only streams need who is in the audience, as write reads it.
    let existing = match routes.iter().any(|r| r.has_update_stream()) {
        true => Some(crate::audiences::existing_contacts(&client).await?),
        false => None,
    };
    let mapper = Mapper::new(config, catalog, merge_fields, &audience.categories)?
        .with_gdpr(list.marketing_permissions)
        .with_existing(existing)
        .with_events(
            &routes.iter().flat_map(|r| r.events.clone()).collect::<Vec<_>>(),
            config.events_start_automations,
        );
    let required: Vec<String> = merge_fields.iter().filter(|f| f.required).map(|f| f.tag.clone()).collect();
    let mut report = Report {
        audience: list.name.clone(),
        list_id: list.id.clone(),
        mapping: mapper.plan_report().into_iter().map(|(_, line)| line).collect(),
        ..Default::default()
    };
    // Records are kept as sent, so that the report can show examples of rejected ones.
    let mut intake = Intake::new(vec![mapper], config.batch_size).keeping_originals();
    let mut names = TagNames::default();
    let mut contacts =
        read_input(&mut intake, &mut input, &required, &mut names, &mut report.rejected_examples).await?;
    let counts = intake.counts();
    report.records = counts.records;
    report.states = counts.states;
    report.rejected_by_reason = counts.rejected.clone();
    report.effects.deletions_ignored = counts.deletions_ignored;
    report.events = counts.events.clone();
    report.contacts = contacts.first.len() as u64;

    look_up(&client, list, &mut contacts, &mut names, &mut report).await?;
    let context = Context::new(config, &audience.categories, &required, &names);
    for (key, first) in &contacts.first {
        let held = contacts.held.get(key).cloned().unwrap_or_default();
        let groups = contacts.held_groups.get(key).cloned().unwrap_or_default();
        simulate(&context, contacts.steps(key, first), (held, groups), &mut report);
    }
    report.rejected = report.rejected_by_reason.values().sum();
    let mapper = &intake.mappers()[0];
    report.warnings = mapper.dropped_values().into_iter().chain(mapper.unknown_statuses()).collect();
    give(&report, output, out)
}

/// Preview covers the configured audience: fails when a stream names another one; else its streams.
fn configured_audience_only(
    config: &Config,
    catalog: &ConfiguredCatalog,
) -> Result<Vec<crate::audiences::AudienceStreams>, ConnectorError> {
    let routes = crate::audiences::group_streams(config, catalog)?;
    if let Some(other) = routes.iter().find(|r| r.list_id != config.list_id) {
        return Err(ConnectorError::config(format!(
            "The catalog sends streams to the audience {}, but preview covers the configured audience (List ID \
             {}) only: preview with a catalog whose streams have no destination object, or set list_id to \
             that audience.",
            crate::audiences::object_name(&other.list_id),
            config.list_id
        )));
    }
    Ok(routes)
}

/// Writes the HTML page when asked, then prints the report as text or JSON.
fn give<W: Write>(report: &Report, output: &ReportOutput, out: &mut W) -> Result<(), ConnectorError> {
    if let Some(path) = &output.html {
        std::fs::write(path, crate::report_html::page(report)).map_err(|e| {
            ConnectorError::config(format!("Could not write the HTML report to {}: {e}", path.display()))
        })?;
    }
    let text = if output.json {
        serde_json::to_string_pretty(report).expect("the report serializes") + "\n"
    } else {
        render(report)
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| ConnectorError::system(format!("Could not write the report: {e}")))
}

/// Reads the whole input through the intake step, as `write` would batch it, keeping one small
/// entry per contact.
async fn read_input(
    intake: &mut Intake,
    input: &mut mpsc::Receiver<InputEvent>,
    required: &[String],
    names: &mut TagNames,
    examples: &mut BTreeMap<String, Vec<String>>,
) -> Result<Contacts, ConnectorError> {
    let mut contacts = Contacts::default();
    let mut progress = Ticker::new();
    let mut take = |intake: &mut Intake, contacts: &mut Contacts| {
        while let Some(ready) = intake.pop_ready() {
            let Ready::Batch(batch) = ready else { continue };
            for entry in batch.entries {
                let step = step_of(&entry.member, required, entry.tallies.len() as u32, names);
                contacts.push(entry.member.key, step);
            }
        }
    };
    while let Some(event) = input.recv().await {
        let lines = match event {
            InputEvent::Invalid(invalid) => return Err(ConnectorError::system(invalid.message())),
            InputEvent::Lines(lines) => lines,
        };
        for message in lines.messages() {
            let message = message.map_err(|invalid| ConnectorError::system(invalid.message()))?;
            if let Some(rejected) = intake.take(message, Instant::now()) {
                keep_example(examples, &rejected);
            }
            take(intake, &mut contacts);
        }
        progress.tick(|| format!("Preview: read {} records", thousands(intake.counts().records)));
    }
    intake.flush();
    take(intake, &mut contacts);
    intake.take_notes();
    Ok(contacts)
}

/// Keeps a rejected record as an example of its reason (the first few only), its addresses masked.
fn keep_example(examples: &mut BTreeMap<String, Vec<String>>, rejected: &crate::intake::Rejected) {
    let Some(original) = &rejected.original else { return };
    let kept = examples.entry(rejected.rejection.message.clone()).or_default();
    if kept.len() < EXAMPLES_PER_REASON {
        let data = crate::rejected::data_value(&original.data).to_string();
        kept.push(crate::redact::excerpt(&data, 160));
    }
}

fn step_of(member: &Member, required: &[String], records: u32, names: &mut TagNames) -> Step {
    Step {
        action: member.action,
        status: member.status,
        status_if_new: member.status_if_new,
        deleted_at_source: member.deleted_at_source,
        missing_required: required
            .iter()
            .position(|tag| !member.merge_fields.contains_key(tag))
            .map(|i| i as u16),
        records,
        tags: names.set(&member.tags),
        owned_tags: member.owned_tags.as_ref().map(|owned| names.set(owned)),
        groups: member.groups.as_ref().map(|groups| {
            groups.interests.iter().map(|(id, on)| (names.id(id), on.as_bool() == Some(true))).collect()
        }),
    }
}

/// Reads the current status and tags of the input's contacts: one lookup per contact for a small
/// input, else the audience's pages (1000 members each, with only the fields needed).
async fn look_up(
    client: &Client,
    list: &ListInfo,
    contacts: &mut Contacts,
    names: &mut TagNames,
    report: &mut Report,
) -> Result<(), ConnectorError> {
    let audience = list.stats.member_count + list.stats.unsubscribe_count + list.stats.cleaned_count;
    let pages = audience.div_ceil(PAGE).max(1);
    let wanted = contacts.first.len() as u64;
    if wanted <= pages * LOOKUPS_PER_PAGE {
        eprintln!(
            "Preview: read {} records; looking up their {} contacts one by one (the audience holds about {}).",
            thousands(report.records),
            thousands(wanted),
            thousands(audience)
        );
        report.lookup = "lookups".into();
        report.lookup_requests = wanted;
        look_up_one_by_one(client, contacts, names).await
    } else {
        eprintln!(
            "Preview: read {} records; reading the audience's {} contacts in pages of {PAGE} to find their {} contacts.",
            thousands(report.records),
            thousands(audience),
            thousands(wanted)
        );
        report.lookup = "pages".into();
        report.lookup_requests = look_up_in_pages(client, contacts, names).await?;
        Ok(())
    }
}

/// One lookup per contact, as many at once as the connection budget allows.
async fn look_up_one_by_one(
    client: &Client,
    contacts: &mut Contacts,
    names: &mut TagNames,
) -> Result<(), ConnectorError> {
    let wanted = contacts.first.len();
    let mut progress = Ticker::new();
    let keys: Vec<EmailKey> = contacts.first.keys().copied().collect();
    let lookups = keys.iter().map(|key| async move { client.member(key).await.map(|m| (*key, m)) });
    let mut answers = futures::stream::iter(lookups).buffer_unordered(client.budget().max());
    let mut done = 0;
    while let Some((key, member)) = answers.try_next().await? {
        if let Some(member) = member {
            contacts.held_groups.insert(key, held_groups_of(&member, names));
            contacts.held.insert(key, held_of(member, names));
        }
        done += 1;
        progress.tick(|| format!("Preview: looked up {done} of {wanted} contacts"));
    }
    Ok(())
}

/// Every page of the audience's members, keeping the input's contacts; returns the pages read.
async fn look_up_in_pages(
    client: &Client,
    contacts: &mut Contacts,
    names: &mut TagNames,
) -> Result<u64, ConnectorError> {
    let mut progress = Ticker::new();
    let first = client.members_page(0, PAGE).await?;
    let total = first.total_items;
    let offsets: Vec<u64> = (1..total.div_ceil(PAGE)).map(|i| i * PAGE).collect();
    let requests = 1 + offsets.len() as u64;
    let mut keep = |members: Vec<MemberSummary>| {
        for member in members {
            let key = email_key(&member.email_address);
            if contacts.first.contains_key(&key) {
                contacts.held_groups.insert(key, held_groups_of(&member, names));
                contacts.held.insert(key, held_of(member, names));
            }
        }
    };
    keep(first.members);
    let mut read = PAGE.min(total);
    let mut pages =
        futures::stream::iter(offsets.into_iter().map(|offset| client.members_page(offset, PAGE)))
            .buffer_unordered(client.budget().max());
    while let Some(page) = pages.try_next().await? {
        read += page.members.len() as u64;
        keep(page.members);
        progress
            .tick(|| format!("Preview: read {} of {} audience members", thousands(read), thousands(total)));
    }
    Ok(requests)
}

fn held_groups_of(member: &MemberSummary, names: &mut TagNames) -> Vec<TagId> {
    member.interests.iter().filter(|(_, on)| **on).map(|(id, _)| names.id(id)).collect()
}

fn held_of(member: MemberSummary, names: &mut TagNames) -> Held<TagId> {
    let tags = member.tags.iter().map(|t| names.id(&t.name)).collect();
    match member.status {
        MemberStatus::Archived => Held::Archived(tags),
        status => Held::Member(status, tags),
    }
}

/// What the simulation reads besides the contact.
struct Context<'a> {
    /// Interest id → "Category › group".
    group_labels: FxHashMap<&'a str, String>,
    rules: Rules,
    owned_tag_prefix: Option<&'a str>,
    required: &'a [String],
    names: &'a TagNames,
}

/// Applies a contact's steps, in order, to what Mailchimp holds, with Mailchimp's rules.
fn simulate<'a>(
    context: &Context,
    steps: impl Iterator<Item = &'a Step>,
    (mut held, mut groups): (Held<TagId>, Vec<TagId>),
    report: &mut Report,
) {
    let before = match &held {
        Held::Member(status, _) => Some(*status),
        _ => None,
    };
    let groups_before = groups.to_vec();
    let is_owned =
        |id: &TagId| context.owned_tag_prefix.is_some_and(|p| context.names.name(*id).starts_with(p));
    for step in steps {
        let rule_step = crate::rules::Step {
            action: step.action,
            status: step.status,
            status_if_new: step.status_if_new,
            deleted_at_source: step.deleted_at_source,
            missing_required: step.missing_required.map(|i| context.required[usize::from(i)].as_str()),
            tags: context.names.tags(step.tags),
            owned_tags: match (context.owned_tag_prefix, step.owned_tags) {
                (Some(_), Some(owned)) => {
                    Some((context.names.tags(owned), &is_owned as &dyn Fn(&TagId) -> bool))
                }
                _ => None,
            },
        };
        let (after, change) = context.rules.step(std::mem::take(&mut held), &rule_step);
        held = after;
        report.created += u64::from(change.created);
        report.updated += u64::from(change.updated);
        if let Some(reason) = &change.rejected {
            *report.rejected_by_reason.entry(reason.clone()).or_default() += u64::from(step.records);
        }
        report.effects.add(&change.effects);
        report.tags_added += change.tags_added;
        report.contacts_tagged += u64::from(change.tags_added > 0);
        choose_groups(&mut groups, step, &change, &held);
    }
    count_group_changes(context, &groups_before, &groups, report);
    if let (Some(from), Held::Member(to, _)) = (before, &held) {
        if from != *to {
            *report.status_changes.entry(format!("{from} → {to}")).or_default() += 1;
        }
    }
}

/// A contact's groups after a step Mailchimp carried out: the step's choices; none once erased.
fn choose_groups(groups: &mut Vec<TagId>, step: &Step, change: &crate::rules::Change, held: &Held<TagId>) {
    if matches!(held, Held::Forgotten | Held::Absent) {
        groups.clear();
    }
    let (Some(choices), true) = (&step.groups, change.created || change.updated) else { return };
    for (interest, on) in choices.iter() {
        groups.retain(|g| g != interest);
        if *on {
            groups.push(*interest);
        }
    }
}

/// Counts, per group, the contact joining or leaving it between the start and the end.
fn count_group_changes(context: &Context, before: &[TagId], after: &[TagId], report: &mut Report) {
    for interest in after.iter().filter(|g| !before.contains(g)) {
        *report.groups_joined.entry(context.group_label(*interest)).or_default() += 1;
    }
    for interest in before.iter().filter(|g| !after.contains(g)) {
        *report.groups_left.entry(context.group_label(*interest)).or_default() += 1;
    }
}

/// The report for people.
pub fn render(report: &Report) -> String {
    let mut text = format!(
        "Preview of a sync into the Mailchimp audience '{}' (List ID {}). Nothing was written.\n",
        report.audience, report.list_id
    );
    text += &format!(
        "Read {} records and {} states: {} distinct contacts. Current statuses and tags came from {}.\n",
        thousands(report.records),
        thousands(report.states),
        thousands(report.contacts),
        match report.lookup.as_str() {
            "lookups" => format!("{} lookups, one per contact", thousands(report.lookup_requests)),
            _ => format!("{} pages of the audience's members", thousands(report.lookup_requests)),
        }
    );
    text += "\nField mapping:\n";
    for line in &report.mapping {
        text += &format!("  {line}\n");
    }
    text += &format!(
        "\nContacts: {} would be created, {} updated.\n",
        thousands(report.created),
        thousands(report.updated)
    );
    text += &format!("Rejected records: {}.\n", thousands(report.rejected));
    for (reason, count) in &report.rejected_by_reason {
        text += &format!("  {count} × {reason}\n");
    }
    if !report.status_changes.is_empty() {
        let changes: Vec<String> = report.status_changes.iter().map(|(c, n)| format!("{n} × {c}")).collect();
        text += &format!("Statuses: {}.\n", changes.join(", "));
    }
    for line in report.effects.lines("would be") {
        text += &format!("{line}\n");
    }
    let changes: Vec<String> = report
        .groups_joined
        .iter()
        .map(|(group, n)| format!("{n} would join {group}"))
        .chain(report.groups_left.iter().map(|(group, n)| format!("{n} would leave {group}")))
        .collect();
    if !changes.is_empty() {
        text += &format!("Groups: {}.\n", changes.join("; "));
    }
    text += &format!(
        "Tags: {} tag(s) would be added to {} contact(s).\n",
        thousands(report.tags_added),
        thousands(report.contacts_tagged)
    );
    if let Some(line) = events_line(report) {
        text += &format!("{line}\n");
    }
    for warning in &report.warnings {
        text += &format!("Warning: {warning}\n");
    }
    text
}

/// The events that would be posted, by name, in one line (none when there are none).
pub fn events_line(report: &Report) -> Option<String> {
    if report.events.is_empty() {
        return None;
    }
    let total: u64 = report.events.values().sum();
    let names: Vec<String> = report.events.iter().map(|(name, n)| format!("{n} × {name}")).collect();
    Some(format!("Events: {} would be posted ({}).", thousands(total), names.join(", ")))
}

/// A progress line on stderr at most once a second, so that a long read shows it is moving.
struct Ticker {
    next: Instant,
}

impl Ticker {
    fn new() -> Self {
        Self { next: Instant::now() + PROGRESS_EVERY }
    }

    fn tick(&mut self, line: impl FnOnce() -> String) {
        if Instant::now() >= self.next {
            eprintln!("{}", line());
            self.next = Instant::now() + PROGRESS_EVERY;
        }
    }
}
