//! `preview`: reads the same input as `write`, looks up the contacts it names in Mailchimp, and
//! reports what a sync would do, without writing anything.

use crate::batch::{Batcher, Ready};
use crate::catalog::ConfiguredCatalog;
use crate::config::{Config, MemberStatus, ResubscribePolicy};
use crate::effects::Effects;
use crate::error::ConnectorError;
use crate::input::InputEvent;
use crate::ledger::{Ledger, PendingState};
use crate::mailchimp::client::Client;
use crate::mailchimp::model::{ListInfo, MemberSummary};
use crate::mapping::{email_key, Action, EmailKey, Mapped, Mapper, Member};
use crate::progress::thousands;
use crate::protocol::Incoming;
use futures::stream::{StreamExt, TryStreamExt};
use rustc_hash::FxHashMap;
use serde::Serialize;
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

/// One step of a contact, as a sync would send it (records merged as `write` merges them).
#[derive(Debug)]
struct Step {
    action: Action,
    status: Option<MemberStatus>,
    status_if_new: MemberStatus,
    tags: Vec<String>,
    owned_tags: Option<Vec<String>>,
    deleted_at_source: bool,
    /// A required merge field of the audience this step does not fill.
    missing_required: Option<String>,
    records: u64,
}

#[derive(Debug)]
struct Contact {
    email: String,
    steps: Vec<Step>,
}

/// What Mailchimp holds for an address.
#[derive(Debug, Clone, Default)]
enum Held {
    #[default]
    Absent,
    /// Archived, with the tags it keeps: an upsert restores it, history included.
    Archived(Vec<String>),
    /// A contact with its status and tags.
    Member(String, Vec<String>),
}

/// The report, as `--json` prints it.
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
    /// "from → to" for contacts whose status would change.
    pub status_changes: BTreeMap<String, u64>,
    pub tags_added: u64,
    pub contacts_tagged: u64,
    #[serde(flatten)]
    pub effects: Effects,
    pub mapping: Vec<String>,
    pub warnings: Vec<String>,
}

/// Runs the preview: reads `input`, looks up, and prints the report (text, or JSON) to `out`.
pub async fn preview<W: Write>(
    config: &Config,
    catalog: &ConfiguredCatalog,
    mut input: mpsc::Receiver<Vec<InputEvent>>,
    json: bool,
    out: &mut W,
) -> Result<(), ConnectorError> {
    let client = Client::new(config)?;
    let (list, merge_fields) = tokio::join!(client.list(), client.merge_fields());
    let (list, merge_fields) = (list?, merge_fields?);
    let mut mapper = Mapper::new(config, catalog, &merge_fields)?;
    let required: Vec<String> = merge_fields.iter().filter(|f| f.required).map(|f| f.tag.clone()).collect();
    let mut report = Report {
        audience: list.name.clone(),
        list_id: list.id.clone(),
        mapping: mapper.plan_report().into_iter().map(|(_, line)| line).collect(),
        ..Default::default()
    };

    // Read everything, batching as `write` does, and keep one small entry per contact.
    let mut batcher = Batcher::new(config.batch_size);
    let mut ledger = Ledger::default();
    let mut contacts: FxHashMap<EmailKey, Contact> = FxHashMap::default();
    let mut progress = Ticker::new();
    let take = |batcher: &mut Batcher, contacts: &mut FxHashMap<EmailKey, Contact>| {
        while let Some(ready) = batcher.pop_ready() {
            let Ready::Batch(batch) = ready else { continue };
            for entry in batch.entries {
                let step = step_of(&entry.member, &required, entry.tallies.len() as u64);
                let contact = contacts.entry(entry.member.key).or_insert_with(|| Contact {
                    email: entry.member.email_address.clone(),
                    steps: Vec::new(),
                });
                contact.steps.push(step);
            }
        }
    };
    while let Some(events) = input.recv().await {
        for event in events {
            match event {
                InputEvent::Invalid { line, reason, excerpt } => {
                    return Err(ConnectorError::system(format!(
                        "Input line {line} is not an Airbyte message: {reason}. Line {line} begins: {excerpt}."
                    )))
                }
                InputEvent::Message(Incoming::Record(mut record)) => {
                    report.records += 1;
                    if !mapper.resolve_stream_in_place(&mut record.stream) {
                        *report.rejected_by_reason.entry("stream not in the catalog".into()).or_default() += 1;
                        continue;
                    }
                    let tally = ledger.tally_for(&record.stream);
                    match mapper.map(&record.stream, record.data) {
                        Mapped::Member(member) => batcher.push_member(member, tally, Instant::now()),
                        Mapped::Rejected(reason) => *report.rejected_by_reason.entry(reason).or_default() += 1,
                        Mapped::DeletionIgnored => report.effects.deletions_ignored += 1,
                    }
                    take(&mut batcher, &mut contacts);
                }
                InputEvent::Message(Incoming::State(_)) => {
                    report.states += 1;
                    batcher.push_state(PendingState { state: serde_json::Value::Null, tallies: Vec::new() });
                }
                InputEvent::Message(_) => {}
            }
        }
        progress.tick(|| format!("Preview: read {} records", thousands(report.records)));
    }
    batcher.flush();
    take(&mut batcher, &mut contacts);
    mapper.take_discovered();
    report.contacts = contacts.len() as u64;

    let current = look_up(&client, &list, &contacts, &mut report).await?;
    for (key, contact) in &contacts {
        simulate(config, contact, current.get(key).cloned().unwrap_or_default(), &mut report);
    }
    report.rejected = report.rejected_by_reason.values().sum();
    report.warnings = mapper.dropped_values().into_iter().chain(mapper.unknown_statuses()).collect();

    let text = if json {
        serde_json::to_string_pretty(&report).expect("the report serializes") + "\n"
    } else {
        render(&report)
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| ConnectorError::system(format!("Could not write the report: {e}")))
}

fn step_of(member: &Member, required: &[String], records: u64) -> Step {
    Step {
        action: member.action,
        status: member.status,
        status_if_new: member.status_if_new,
        tags: member.tags.clone(),
        owned_tags: member.owned_tags.clone(),
        deleted_at_source: member.deleted_at_source,
        missing_required: required.iter().find(|tag| !member.merge_fields.contains_key(*tag)).cloned(),
        records,
    }
}

/// Reads the current status and tags of the input's contacts: one lookup per contact for a small
/// input, else the audience's pages (1000 members each, with only the fields needed).
async fn look_up(
    client: &Client,
    list: &ListInfo,
    contacts: &FxHashMap<EmailKey, Contact>,
    report: &mut Report,
) -> Result<FxHashMap<EmailKey, Held>, ConnectorError> {
    let audience = list.stats.member_count + list.stats.unsubscribe_count + list.stats.cleaned_count;
    let pages = audience.div_ceil(PAGE).max(1);
    let wanted = contacts.len() as u64;
    let mut found: FxHashMap<EmailKey, Held> = FxHashMap::default();
    let mut progress = Ticker::new();
    if wanted <= pages * LOOKUPS_PER_PAGE {
        eprintln!(
            "Preview: read {} records; looking up their {} contacts one by one (the audience holds about {}).",
            thousands(report.records),
            thousands(wanted),
            thousands(audience)
        );
        report.lookup = "lookups".into();
        report.lookup_requests = wanted;
        let lookups =
            contacts.iter().map(|(key, c)| async move { client.member(&c.email).await.map(|m| (*key, m)) });
        let mut answers = futures::stream::iter(lookups).buffer_unordered(client.budget().max());
        while let Some((key, member)) = answers.try_next().await? {
            found.insert(key, member.map(held_of).unwrap_or_default());
            progress.tick(|| format!("Preview: looked up {} of {} contacts", found.len(), wanted));
        }
    } else {
        eprintln!(
            "Preview: read {} records; reading the audience's {} contacts in pages of {PAGE} to find their {} contacts.",
            thousands(report.records),
            thousands(audience),
            thousands(wanted)
        );
        report.lookup = "pages".into();
        let first = client.members_page(0, PAGE).await?;
        let total = first.total_items;
        let offsets: Vec<u64> = (1..total.div_ceil(PAGE)).map(|i| i * PAGE).collect();
        report.lookup_requests = 1 + offsets.len() as u64;
        let keep = |members: Vec<MemberSummary>, found: &mut FxHashMap<EmailKey, Held>| {
            for member in members {
                let key = email_key(&member.email_address);
                if contacts.contains_key(&key) {
                    found.insert(key, held_of(member));
                }
            }
        };
        keep(first.members, &mut found);
        let mut read = PAGE.min(total);
        let mut pages =
            futures::stream::iter(offsets.into_iter().map(|offset| client.members_page(offset, PAGE)))
                .buffer_unordered(client.budget().max());
        while let Some(page) = pages.try_next().await? {
            read += page.members.len() as u64;
            keep(page.members, &mut found);
            progress.tick(|| {
                format!("Preview: read {} of {} audience members", thousands(read), thousands(total))
            });
        }
    }
    Ok(found)
}

fn held_of(member: MemberSummary) -> Held {
    let tags = member.tags.into_iter().map(|t| t.name).collect();
    match member.status.as_str() {
        "archived" => Held::Archived(tags),
        _ => Held::Member(member.status, tags),
    }
}

/// Applies a contact's steps, in order, to what Mailchimp holds, as Mailchimp would.
fn simulate(config: &Config, contact: &Contact, mut held: Held, report: &mut Report) {
    let before = match &held {
        Held::Member(status, _) => Some(status.clone()),
        _ => None,
    };
    let mut forgotten = false;
    for step in &contact.steps {
        held = match (step.action, std::mem::take(&mut held)) {
            (Action::Archive, Held::Member(_, tags)) => {
                report.effects.archived += 1;
                Held::Archived(tags)
            }
            (Action::DeletePermanently, Held::Member(..) | Held::Archived(_)) => {
                report.effects.deleted_permanently += 1;
                forgotten = true;
                Held::Absent
            }
            (Action::Archive | Action::DeletePermanently, other) => {
                report.effects.already_gone += 1;
                other
            }
            (Action::Upsert, other) if forgotten => {
                let reason = "Mailchimp: the address was permanently deleted and cannot be re-imported";
                *report.rejected_by_reason.entry(reason.into()).or_default() += step.records;
                other
            }
            (Action::Upsert, Held::Absent) => {
                if let (Some(tag), false) = (&step.missing_required, config.skip_merge_validation) {
                    let reason = format!("Mailchimp: the required merge field {tag} has no value");
                    *report.rejected_by_reason.entry(reason).or_default() += step.records;
                    Held::Absent
                } else {
                    report.created += 1;
                    count_status(step, report);
                    let status = step.status.unwrap_or(step.status_if_new).as_str().to_string();
                    Held::Member(status, tag(config, step, Vec::new(), report))
                }
            }
            (Action::Upsert, Held::Archived(tags)) => {
                report.created += 1;
                count_status(step, report);
                let status = step.status.unwrap_or(step.status_if_new).as_str().to_string();
                Held::Member(status, tag(config, step, tags, report))
            }
            (Action::Upsert, Held::Member(mut status, tags)) => {
                report.updated += 1;
                match step.status {
                    Some(MemberStatus::Subscribed)
                        if matches!(status.as_str(), "unsubscribed" | "cleaned") =>
                    {
                        match config.resubscribe_policy {
                            ResubscribePolicy::Skip => report.effects.resubscribe_skipped += 1,
                            ResubscribePolicy::Pending => {
                                report.effects.resubscribe_pending += 1;
                                status = "pending".into();
                            }
                        }
                    }
                    Some(new) => {
                        count_status(step, report);
                        status = new.as_str().to_string();
                    }
                    None => {}
                }
                Held::Member(status, tag(config, step, tags, report))
            }
        };
    }
    if let (Some(from), Held::Member(to, _)) = (&before, &held) {
        if from != to {
            *report.status_changes.entry(format!("{from} → {to}")).or_default() += 1;
        }
    }
}

/// A contact's tags after a step: the step's tags added, then (owned tags) the stale ones removed.
fn tag(config: &Config, step: &Step, mut tags: Vec<String>, report: &mut Report) -> Vec<String> {
    let added: Vec<&String> = step.tags.iter().filter(|t| !tags.contains(t)).collect();
    report.tags_added += added.len() as u64;
    report.contacts_tagged += u64::from(!added.is_empty());
    tags.extend(added.into_iter().cloned());
    if let (Some(prefix), Some(owned)) = (&config.owned_tag_prefix, &step.owned_tags) {
        let stale = |t: &String| t.starts_with(prefix.as_str()) && !owned.contains(t);
        let removed = tags.iter().filter(|t| stale(t)).count() as u64;
        if removed > 0 {
            report.effects.tags_removed += removed;
            report.effects.contacts_untagged += 1;
            tags.retain(|t| !stale(t));
        }
    }
    tags
}

fn count_status(step: &Step, report: &mut Report) {
    match step.status {
        Some(MemberStatus::Unsubscribed) if step.deleted_at_source => {
            report.effects.deletions_unsubscribed += 1
        }
        Some(MemberStatus::Unsubscribed) => report.effects.unsubscribed += 1,
        Some(MemberStatus::Subscribed) => report.effects.subscribed += 1,
        _ => {}
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
    text += &format!(
        "Tags: {} tag(s) would be added to {} contact(s).\n",
        thousands(report.tags_added),
        thousands(report.contacts_tagged)
    );
    for warning in &report.warnings {
        text += &format!("Warning: {warning}\n");
    }
    text
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
