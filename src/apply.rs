//! One batch applied to Mailchimp: the batch-subscribe call, a second try for re-subscriptions
//! Mailchimp forbids, the deletions, and the removal of stale owned tags.

use crate::batch::{Entry, EventEntry};
use crate::config::{Config, ResubscribePolicy};
use crate::effects::Effects;
use crate::error::{ConnectorError, FailureType};
use crate::mailchimp::client::{Applied, Client, EventPosted};
use crate::mailchimp::member::{email_key, members_body, Action, EmailKey, Member, MemberStatus};
use crate::mailchimp::model::{BatchResponse, MemberError, MemberSummary};
use crate::redact::mask_emails_in;
use crate::rules;
use rustc_hash::FxHashMap;
use tokio::sync::OwnedSemaphorePermit;

/// Groups created during this sync: (category id, name) → the new interest's id, or `None` when
/// Mailchimp would not create it. Locked while groups are created, so that each is created once.
type CreatedGroups = tokio::sync::Mutex<FxHashMap<(String, String), Option<String>>>;

/// The settings that decide how a batch is applied, and the groups this sync created.
#[derive(Debug)]
pub struct Policy {
    pub resubscribe: ResubscribePolicy,
    pub owned_tag_prefix: Option<String>,
    /// Read each member's status and tags from the batch answer (needed for status intents and
    /// owned tags; otherwise the answer leaves the members out).
    pub read_members: bool,
    created_groups: CreatedGroups,
}

impl Policy {
    pub fn new(config: &Config) -> Self {
        Self {
            resubscribe: config.resubscribe_policy,
            owned_tag_prefix: config.owned_tag_prefix.clone(),
            read_members: config.owned_tag_prefix.is_some() || config.status_field.is_some(),
            created_groups: Default::default(),
        }
    }
}

/// What became of one batch.
#[derive(Debug, Default)]
pub struct Outcome {
    pub created: u64,
    pub updated: u64,
    /// Contacts Mailchimp refused, with its reason (addresses masked).
    pub rejected: FxHashMap<EmailKey, String>,
    /// Events not stored, by their place in the batch, with the reason (addresses masked).
    pub events_rejected: FxHashMap<usize, String>,
    pub events_stored: u64,
    pub effects: Effects,
}

/// Applies a batch whose batch-subscribe body (`request_body` of its entries) was built already;
/// `None` when the client was closed before all of it was sent (the sync is stopping, and the
/// batch's states must not be released).
pub async fn apply(
    client: &Client,
    policy: &Policy,
    entries: &[Entry],
    events: &[EventEntry],
    body: Option<Vec<u8>>,
    first: Option<OwnedSemaphorePermit>,
) -> Result<Option<Outcome>, ConnectorError> {
    let mut outcome = Outcome::default();
    // Groups the records name that their categories lack are created first (create_missing_groups);
    // the body is then built again with their ids.
    let body = match create_missing_groups(client, policy, entries, &mut outcome).await? {
        Some(members) => members_body(members.iter()),
        None => body,
    };
    match body {
        Some(body) => {
            if upsert(client, policy, entries, body, first, &mut outcome).await?.is_none() {
                return Ok(None);
            }
        }
        // The connection reserved for the batch's first request is given back: the calls on single
        // contacts below take their own (holding it would starve them with a budget of one).
        None => drop(first),
    }
    let deletions = entries.iter().map(|e| &e.member).filter(|m| m.action != Action::Upsert).map(|m| {
        let call = async move {
            match m.action {
                Action::Archive => client.archive(&m.email_address).await,
                _ => client.delete_permanently(&m.email_address).await,
            }
        };
        (m.action, call)
    });
    let Some(answers) = on_contacts(deletions).await? else { return Ok(None) };
    for (action, applied) in answers {
        rules::count_deletion(&mut outcome.effects, action, applied == Applied::Done);
    }
    if post_events(client, events, &mut outcome).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(outcome))
}

/// Posts the batch's events, after its contacts were written (each at most once; see
/// `Client::post_event`). An event on someone not in the audience, or one Mailchimp refuses, is
/// a rejection. `None` when the sync stopped before all were sent.
async fn post_events(
    client: &Client,
    events: &[EventEntry],
    outcome: &mut Outcome,
) -> Result<Option<()>, ConnectorError> {
    let posted = futures::future::try_join_all(events.iter().map(|e| client.post_event(&e.event))).await?;
    for (at, answer) in posted.into_iter().enumerate() {
        let reason = match answer {
            None => return Ok(None),
            Some(EventPosted::Stored) => {
                outcome.events_stored += 1;
                continue;
            }
            Some(EventPosted::NotInAudience) => {
                "the contact is not in the audience (an event never adds one)".to_string()
            }
            Some(EventPosted::Refused(detail)) => {
                format!("Mailchimp refused the event: {}", mask_emails_in(&detail))
            }
        };
        outcome.events_rejected.insert(at, reason);
    }
    Ok(Some(()))
}

/// Runs calls on single contacts at once, each with what its answer is counted under; `None` when
/// the sync stopped before one of them was sent.
async fn on_contacts<T, F>(
    calls: impl Iterator<Item = (T, F)>,
) -> Result<Option<Vec<(T, Applied)>>, ConnectorError>
where
    F: std::future::Future<Output = Result<Option<Applied>, ConnectorError>>,
{
    let (labels, calls): (Vec<T>, Vec<F>) = calls.unzip();
    let answers = futures::future::try_join_all(calls).await?;
    Ok(labels.into_iter().zip(answers).map(|(label, answer)| answer.map(|a| (label, a))).collect())
}

/// Creates the groups the batch's contacts name that their categories lack (each once per sync)
/// and returns the upserts with those groups chosen; `None` when no contact names a missing group.
/// A group Mailchimp will not create (a 400: a limit, or a name it refuses) is left out and counted.
async fn create_missing_groups(
    client: &Client,
    policy: &Policy,
    entries: &[Entry],
    outcome: &mut Outcome,
) -> Result<Option<Vec<Member>>, ConnectorError> {
    let wanted =
        |m: &&Member| m.action == Action::Upsert && m.groups.as_ref().is_some_and(|g| !g.missing.is_empty());
    if !entries.iter().map(|e| &e.member).any(|m| wanted(&m)) {
        return Ok(None);
    }
    let mut created = policy.created_groups.lock().await;
    let mut members: Vec<Member> =
        entries.iter().map(|e| &e.member).filter(|m| m.action == Action::Upsert).cloned().collect();
    for member in &mut members {
        let Some(groups) = member.groups.as_mut() else { continue };
        for (category, name) in std::mem::take(&mut groups.missing) {
            let key = (category.clone(), name.to_lowercase());
            if !created.contains_key(&key) {
                let id = match client.create_interest(&category, &name).await {
                    Ok(interest) => {
                        outcome.effects.groups_created += 1;
                        Some(interest.id)
                    }
                    Err(error) if error.failure_type == FailureType::SystemError => {
                        tracing::warn!("could not create the group '{name}': {}", error.message);
                        outcome.effects.groups_not_created += 1;
                        None
                    }
                    Err(error) => return Err(error),
                };
                created.insert(key.clone(), id);
            }
            if let Some(Some(id)) = created.get(&key) {
                groups.interests.insert(id.clone(), serde_json::Value::Bool(true));
            }
        }
    }
    Ok(Some(members))
}

/// The batch's upserts: the batch-subscribe call, blocked re-subscriptions sent again, then the
/// stale owned tags removed.
async fn upsert(
    client: &Client,
    policy: &Policy,
    entries: &[Entry],
    body: Vec<u8>,
    first: Option<OwnedSemaphorePermit>,
    outcome: &mut Outcome,
) -> Result<Option<()>, ConnectorError> {
    let mut members: FxHashMap<EmailKey, MemberSummary> = FxHashMap::default();
    let sent = entries.iter().filter(|e| e.member.action == Action::Upsert).count();
    let permissions =
        entries.iter().any(|e| e.member.action == Action::Upsert && e.member.permissions.is_some());
    let Some(response) =
        client.batch_subscribe(body.into(), sent, first, policy.read_members, permissions).await?
    else {
        return Ok(None);
    };
    outcome.created += response.total_created;
    outcome.updated += response.total_updated;
    absorb(outcome, &mut members, response);
    let upserts = || entries.iter().map(|e| &e.member).filter(|m| m.action == Action::Upsert);
    let blocked: Vec<&Member> = upserts()
        .filter(|m| m.status == Some(MemberStatus::Subscribed) && is_blocked(outcome, &members, m))
        .collect();
    if !blocked.is_empty() && resubscribe(client, policy, &blocked, outcome, &mut members).await?.is_none() {
        return Ok(None);
    }
    let accepted: Vec<&Member> = upserts().filter(|m| !outcome.rejected.contains_key(&m.key)).collect();
    // Blocked re-subscriptions were counted by `resubscribe`.
    for member in accepted.iter().filter(|m| !blocked.iter().any(|b| b.key == m.key)) {
        outcome.effects.count_status(member.status, member.deleted_at_source);
    }
    if let Some(prefix) = &policy.owned_tag_prefix {
        if remove_stale_tags(client, prefix, &accepted, &members, outcome).await?.is_none() {
            return Ok(None);
        }
    }
    if permissions {
        return set_permissions(client, &accepted, &members, outcome).await;
    }
    Ok(Some(()))
}

/// Sets the GDPR marketing permissions that the contacts' records give and that differ from what
/// Mailchimp holds (read from the batch answer), one call per contact that has a change; a
/// permission the audience does not have is left out and counted.
async fn set_permissions(
    client: &Client,
    accepted: &[&Member],
    members: &FxHashMap<EmailKey, MemberSummary>,
    outcome: &mut Outcome,
) -> Result<Option<()>, ConnectorError> {
    let mut calls = Vec::new();
    for member in accepted {
        let (Some(wanted), Some(held)) = (member.permissions.as_ref(), members.get(&member.key)) else {
            continue;
        };
        let mut changes = Vec::new();
        for (name, enabled) in wanted.iter() {
            match held.marketing_permissions.iter().find(|p| crate::mapping::normalize(&p.text) == *name) {
                Some(state) if state.enabled != *enabled => {
                    changes.push((state.marketing_permission_id.clone(), *enabled))
                }
                Some(_) => {}
                None => outcome.effects.permissions_unknown += 1,
            }
        }
        if !changes.is_empty() {
            calls.push(((), async move { client.set_permissions(&member.email_address, &changes).await }));
        }
    }
    let Some(answers) = on_contacts(calls.into_iter()).await? else { return Ok(None) };
    outcome.effects.permissions_changed += answers.iter().filter(|(_, a)| *a == Applied::Done).count() as u64;
    Ok(Some(()))
}

/// Owned-tag mode: removes the owned tags each contact carries that its record no longer has.
async fn remove_stale_tags(
    client: &Client,
    prefix: &str,
    applied: &[&Member],
    members: &FxHashMap<EmailKey, MemberSummary>,
    outcome: &mut Outcome,
) -> Result<Option<()>, ConnectorError> {
    let stale: Vec<Vec<String>> = applied
        .iter()
        .map(|m| {
            let (Some(owned), Some(held)) = (m.owned_tags.as_ref(), members.get(&m.key)) else {
                return Vec::new();
            };
            let held: Vec<String> = held.tags.iter().map(|t| t.name.clone()).collect();
            rules::stale_tags(&held, owned, |t| t.starts_with(prefix)).into_iter().cloned().collect()
        })
        .collect();
    let removals = applied
        .iter()
        .zip(&stale)
        .filter(|(_, tags)| !tags.is_empty())
        .map(|(m, tags)| (tags.len() as u64, client.remove_tags(&m.email_address, tags)));
    let Some(answers) = on_contacts(removals).await? else { return Ok(None) };
    for (count, _) in answers.into_iter().filter(|(_, a)| *a == Applied::Done) {
        outcome.effects.tags_removed += count;
        outcome.effects.contacts_untagged += 1;
    }
    Ok(Some(()))
}

/// Contacts set to subscribed whom Mailchimp holds as unsubscribed or cleaned: it refuses them
/// ("Member In Compliance State") or, as some report, leaves the status unchanged. They are sent
/// again as the policy says: as pending (a confirmation email), else without a status, so that
/// their other fields are still updated.
async fn resubscribe(
    client: &Client,
    policy: &Policy,
    blocked: &[&Member],
    outcome: &mut Outcome,
    members: &mut FxHashMap<EmailKey, MemberSummary>,
) -> Result<Option<()>, ConnectorError> {
    let mut waiting: Vec<Member> = blocked.iter().map(|m| (*m).clone()).collect();
    // Refused contacts were not counted as updated by the first answer; the others were.
    let refused: Vec<EmailKey> =
        waiting.iter().map(|m| m.key).filter(|k| outcome.rejected.contains_key(k)).collect();
    for status in rules::blocked_resubscription_retries(policy.resubscribe) {
        for member in &mut waiting {
            member.status = *status;
            outcome.rejected.remove(&member.key);
        }
        let Some(body) = members_body(waiting.iter()) else { break };
        let sent = waiting.len();
        let Some(response) =
            client.batch_subscribe(body.into(), sent, None, policy.read_members, false).await?
        else {
            return Ok(None);
        };
        // Its totals are not added: the first answer counted these contacts already, except the
        // refused ones, counted at the end.
        absorb(outcome, members, response);
        let mut still_blocked = Vec::new();
        for member in waiting {
            if status.is_some() && is_blocked(outcome, members, &member) {
                still_blocked.push(member);
            } else if !outcome.rejected.contains_key(&member.key) {
                rules::count_blocked_resubscription(&mut outcome.effects, *status);
            }
        }
        waiting = still_blocked;
    }
    outcome.updated += refused.iter().filter(|k| !outcome.rejected.contains_key(*k)).count() as u64;
    Ok(Some(()))
}

/// Whether a status change the source asked for was blocked: Mailchimp refused it for compliance,
/// or answered with the contact still in a status that blocks re-subscription.
fn is_blocked(outcome: &Outcome, members: &FxHashMap<EmailKey, MemberSummary>, member: &Member) -> bool {
    let refused = outcome
        .rejected
        .get(&member.key)
        .is_some_and(|r| r.to_ascii_lowercase().contains("compliance state"));
    let unchanged = members.get(&member.key).is_some_and(|m| m.status.blocks_resubscription());
    refused || (unchanged && !outcome.rejected.contains_key(&member.key))
}

/// Reads an answer's refused members (with their reasons) and the members it returns.
fn absorb(outcome: &mut Outcome, members: &mut FxHashMap<EmailKey, MemberSummary>, response: BatchResponse) {
    for error in &response.errors {
        let email = error.email_address.as_deref().unwrap_or("");
        outcome.rejected.insert(email_key(email), reason(error));
    }
    for mut member in response.new_members.into_iter().chain(response.updated_members) {
        let key = email_key(&member.email_address);
        outcome.rejected.remove(&key);
        // A second answer (a blocked re-subscription sent again) does not repeat the permissions.
        if let Some(earlier) = members.get_mut(&key) {
            if member.marketing_permissions.is_empty() {
                member.marketing_permissions = std::mem::take(&mut earlier.marketing_permissions);
            }
        }
        members.insert(key, member);
    }
}

/// Mailchimp's reason for refusing one member, without the address (masked if quoted otherwise).
fn reason(error: &MemberError) -> String {
    let email = error.email_address.as_deref().unwrap_or("");
    let mut reason =
        if email.is_empty() { error.error.clone() } else { error.error.replace(email, "the address") };
    if let (Some(field), Some(message)) = (&error.field, &error.field_message) {
        if !field.is_empty() {
            reason = format!("{reason} ({field}: {message})");
        }
    }
    mask_emails_in(&reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compliance_refusals_and_unchanged_statuses_count_as_blocked() {
        let member = Member {
            email_address: "a@x.io".into(),
            status: Some(MemberStatus::Subscribed),
            status_if_new: MemberStatus::Subscribed,
            merge_fields: Default::default(),
            tags: vec![],
            attributes: Default::default(),
            key: email_key("a@x.io"),
            action: Action::Upsert,
            owned_tags: None,
            deleted_at_source: false,
            groups: None,
            permissions: None,
        };
        let mut outcome = Outcome::default();
        let mut members = FxHashMap::default();
        outcome.rejected.insert(member.key, "the address is in a compliance state due to unsubscribe".into());
        assert!(is_blocked(&outcome, &members, &member));
        outcome.rejected.clear();
        assert!(!is_blocked(&outcome, &members, &member));
        members.insert(member.key, MemberSummary { status: MemberStatus::Cleaned, ..Default::default() });
        assert!(is_blocked(&outcome, &members, &member));
    }
}
