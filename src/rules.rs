//! What Mailchimp does to a contact for each action, written once: `apply` reads Mailchimp's answers
//! with these rules and `preview` simulates a sync with them. (The fake Mailchimp server has its own,
//! independent implementation: it is the check on this one.)

use crate::config::ResubscribePolicy;
use crate::effects::Effects;
use crate::mailchimp::member::{Action, MemberStatus};

/// What Mailchimp holds for an address, with the contact's tags (names, or ids standing for them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Held<T> {
    #[default]
    Absent,
    /// Archived, with the tags it keeps: an upsert restores it, history included.
    Archived(Vec<T>),
    /// A contact with its status and tags.
    Member(MemberStatus, Vec<T>),
    /// Permanently deleted: Mailchimp refuses to import the address again.
    Forgotten,
}

/// Whether Mailchimp refuses the status the source asks for: subscribing a contact who opted out or
/// whose address bounced ("Member In Compliance State").
pub fn resubscription_blocked(held: MemberStatus, asked: Option<MemberStatus>) -> bool {
    asked == Some(MemberStatus::Subscribed) && held.blocks_resubscription()
}

/// The statuses a blocked re-subscription is sent again with, in order (`None`: without a status,
/// so that the contact's other fields are still updated).
pub fn blocked_resubscription_retries(policy: ResubscribePolicy) -> &'static [Option<MemberStatus>] {
    match policy {
        ResubscribePolicy::Pending => &[Some(MemberStatus::Pending), None],
        ResubscribePolicy::Skip => &[None],
    }
}

/// Counts a blocked re-subscription that was sent again with `status` and accepted.
pub fn count_blocked_resubscription(effects: &mut Effects, status: Option<MemberStatus>) {
    match status {
        Some(_) => effects.resubscribe_pending += 1,
        None => effects.resubscribe_skipped += 1,
    }
}

/// The owned tags a contact carries that its record no longer has (owned: `is_owned`).
pub fn stale_tags<'a, T: PartialEq>(held: &'a [T], owned: &[T], is_owned: impl Fn(&T) -> bool) -> Vec<&'a T> {
    held.iter().filter(|t| is_owned(t) && !owned.contains(t)).collect()
}

/// Counts a deletion's answer: done, or the contact was not there (404).
pub fn count_deletion(effects: &mut Effects, action: Action, found: bool) {
    match (found, action) {
        (false, _) => effects.already_gone += 1,
        (true, Action::Archive) => effects.archived += 1,
        (true, _) => effects.deleted_permanently += 1,
    }
}

/// Which tags the sync owns (owned-tag mode: those with the prefix).
pub type IsOwned<'a, T> = &'a dyn Fn(&T) -> bool;

/// One step of a contact as a sync sends it, for the simulation.
#[derive(Clone)]
pub struct Step<'a, T> {
    pub action: Action,
    pub status: Option<MemberStatus>,
    pub status_if_new: MemberStatus,
    pub deleted_at_source: bool,
    /// The required merge field the step leaves empty, if any (Mailchimp refuses a new contact then).
    pub missing_required: Option<&'a str>,
    pub tags: &'a [T],
    /// Owned-tag mode: the owned tags the record carries, and which tags are owned.
    pub owned_tags: Option<(&'a [T], IsOwned<'a, T>)>,
}

/// What a step did to the contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub created: bool,
    pub updated: bool,
    /// Mailchimp's refusal, as `apply` would report it.
    pub rejected: Option<String>,
    pub effects: Effects,
    pub tags_added: u64,
}

/// Settings the simulation needs.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub resubscribe: ResubscribePolicy,
    pub skip_merge_validation: bool,
}

impl Rules {
    /// The contact after one step, as Mailchimp would leave it, and what changed.
    pub fn step<T: PartialEq + Clone>(&self, held: Held<T>, step: &Step<'_, T>) -> (Held<T>, Change) {
        let mut change = Change::default();
        let after = match (step.action, held) {
            (Action::Archive, Held::Member(_, tags)) => {
                count_deletion(&mut change.effects, Action::Archive, true);
                Held::Archived(tags)
            }
            (Action::DeletePermanently, Held::Member(..) | Held::Archived(_)) => {
                count_deletion(&mut change.effects, Action::DeletePermanently, true);
                Held::Forgotten
            }
            (Action::Archive | Action::DeletePermanently, other) => {
                count_deletion(&mut change.effects, step.action, false);
                other
            }
            (Action::Upsert, Held::Forgotten) => {
                change.rejected =
                    Some("Mailchimp: the address was permanently deleted and cannot be re-imported".into());
                Held::Forgotten
            }
            (Action::Upsert, Held::Absent)
                if step.missing_required.is_some() && !self.skip_merge_validation =>
            {
                let tag = step.missing_required.unwrap_or_default();
                change.rejected = Some(format!("Mailchimp: the required merge field {tag} has no value"));
                Held::Absent
            }
            (Action::Upsert, Held::Absent) => self.create(step, Vec::new(), &mut change),
            (Action::Upsert, Held::Archived(tags)) => self.create(step, tags, &mut change),
            (Action::Upsert, Held::Member(status, tags)) => self.update(step, status, tags, &mut change),
        };
        (after, change)
    }

    /// A new or restored contact: the status asked for, else `status_if_new`.
    fn create<T: PartialEq + Clone>(&self, step: &Step<'_, T>, tags: Vec<T>, change: &mut Change) -> Held<T> {
        change.created = true;
        change.effects.count_status(step.status, step.deleted_at_source);
        Held::Member(step.status.unwrap_or(step.status_if_new), tag(step, tags, change))
    }

    /// An existing contact: a status is changed only when asked for, and a blocked re-subscription
    /// goes as the policy says.
    fn update<T: PartialEq + Clone>(
        &self,
        step: &Step<'_, T>,
        mut status: MemberStatus,
        tags: Vec<T>,
        change: &mut Change,
    ) -> Held<T> {
        change.updated = true;
        if resubscription_blocked(status, step.status) {
            let retry = blocked_resubscription_retries(self.resubscribe)[0];
            count_blocked_resubscription(&mut change.effects, retry);
            status = retry.unwrap_or(status);
        } else if let Some(asked) = step.status {
            change.effects.count_status(step.status, step.deleted_at_source);
            status = asked;
        }
        Held::Member(status, tag(step, tags, change))
    }
}

/// A contact's tags after an upsert: the record's tags added (a batch subscribe never removes a
/// tag), then in owned-tag mode the stale owned ones removed.
fn tag<T: PartialEq + Clone>(step: &Step<'_, T>, mut tags: Vec<T>, change: &mut Change) -> Vec<T> {
    let before = tags.len();
    for tag in step.tags {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    change.tags_added = (tags.len() - before) as u64;
    if let Some((owned, is_owned)) = step.owned_tags {
        let stale: Vec<T> = stale_tags(&tags, owned, is_owned).into_iter().cloned().collect();
        if !stale.is_empty() {
            change.effects.tags_removed += stale.len() as u64;
            change.effects.contacts_untagged += 1;
            tags.retain(|t| !stale.contains(t));
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert<'a>(status: Option<MemberStatus>, tags: &'a [&'a str]) -> Step<'a, &'a str> {
        Step {
            action: Action::Upsert,
            status,
            status_if_new: MemberStatus::Subscribed,
            deleted_at_source: false,
            missing_required: None,
            tags,
            owned_tags: None,
        }
    }

    const SKIP: Rules = Rules { resubscribe: ResubscribePolicy::Skip, skip_merge_validation: false };
    const PENDING: Rules = Rules { resubscribe: ResubscribePolicy::Pending, skip_merge_validation: false };

    #[test]
    fn an_unsubscribed_contact_is_never_subscribed_again() {
        let held = Held::Member(MemberStatus::Unsubscribed, vec![]);
        let (after, change) = SKIP.step(held.clone(), &upsert(Some(MemberStatus::Subscribed), &["t"]));
        assert_eq!(after, Held::Member(MemberStatus::Unsubscribed, vec!["t"]));
        assert_eq!(change.effects.resubscribe_skipped, 1);
        let (after, change) = PENDING.step(held, &upsert(Some(MemberStatus::Subscribed), &[]));
        assert_eq!(after, Held::Member(MemberStatus::Pending, vec![]));
        assert_eq!(change.effects.resubscribe_pending, 1);
        let cleaned = Held::Member(MemberStatus::Cleaned, vec![]);
        assert_eq!(SKIP.step(cleaned.clone(), &upsert(None, &[])).0, cleaned, "no status asked: kept");
    }

    #[test]
    fn archive_restore_and_permanent_deletion() {
        let member = Held::Member(MemberStatus::Subscribed, vec!["a"]);
        let archive = Step { action: Action::Archive, ..upsert(None, &[]) };
        let (archived, change) = SKIP.step(member, &archive);
        assert_eq!((archived.clone(), change.effects.archived), (Held::Archived(vec!["a"]), 1));
        let (restored, change) = SKIP.step(archived, &upsert(None, &["b"]));
        assert!(change.created, "an upsert restores an archived contact");
        assert_eq!(restored, Held::Member(MemberStatus::Subscribed, vec!["a", "b"]));
        let erase = Step { action: Action::DeletePermanently, ..upsert(None, &[]) };
        let (gone, _) = SKIP.step(restored, &erase);
        assert_eq!(gone, Held::Forgotten);
        assert!(SKIP.step(gone, &upsert(None, &[])).1.rejected.is_some(), "never imported again");
        assert_eq!(SKIP.step(Held::<&str>::Absent, &archive).1.effects.already_gone, 1);
    }

    #[test]
    fn required_fields_and_owned_tags() {
        let missing = Step { missing_required: Some("PLAN"), ..upsert(None, &[]) };
        assert!(SKIP.step(Held::Absent, &missing).1.rejected.unwrap().contains("PLAN"));
        let lenient = Rules { skip_merge_validation: true, ..SKIP };
        assert!(lenient.step(Held::Absent, &missing).1.created);
        assert!(SKIP.step(Held::Member(MemberStatus::Subscribed, vec![]), &missing).1.updated);

        let is_owned = |t: &&str| t.starts_with("hp:");
        let step = Step {
            owned_tags: Some((&["hp:2025"][..], &is_owned as &dyn Fn(&&str) -> bool)),
            ..upsert(None, &["hp:2025"])
        };
        let held = Held::Member(MemberStatus::Subscribed, vec!["hp:gold", "vip", "HP:x"]);
        let (after, change) = SKIP.step(held, &step);
        assert_eq!(after, Held::Member(MemberStatus::Subscribed, vec!["vip", "HP:x", "hp:2025"]));
        assert_eq!((change.effects.tags_removed, change.tags_added), (1, 1));
    }
}
