//! What a sync does to contacts beyond creating and updating them (consent, deletions, owned tags),
//! counted per contact: write's summary and preview's report describe it in the same words.

use crate::mailchimp::member::MemberStatus;
use serde::{Deserialize, Serialize};

/// The counts, one per kind of effect. Flat on purpose (wider than most structs here): it is the
/// shape of preview's JSON report, which users script against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    /// Contacts set to unsubscribed because the status field said so.
    pub unsubscribed: u64,
    /// Contacts set to subscribed because the status field said so.
    pub subscribed: u64,
    /// Re-subscriptions Mailchimp forbids, left as they were (`resubscribe_policy: skip`).
    pub resubscribe_skipped: u64,
    /// Re-subscriptions turned into a confirmation request (`resubscribe_policy: pending`).
    pub resubscribe_pending: u64,
    /// Deletions at the source left alone (`on_delete: ignore`), counted per record.
    pub deletions_ignored: u64,
    pub deletions_unsubscribed: u64,
    pub archived: u64,
    pub deleted_permanently: u64,
    /// Archives or permanent deletions of contacts Mailchimp does not hold (404).
    pub already_gone: u64,
    /// Stale owned tags removed, and from how many contacts.
    pub tags_removed: u64,
    pub contacts_untagged: u64,
    /// Groups created because records named them (`create_missing_groups`), and those Mailchimp
    /// would not create (left out of the contacts).
    pub groups_created: u64,
    pub groups_not_created: u64,
    /// Contacts whose GDPR marketing permissions were changed, and permission values that named a
    /// permission the audience does not have (left out).
    pub permissions_changed: u64,
    pub permissions_unknown: u64,
}

impl Effects {
    pub fn add(&mut self, other: &Effects) {
        self.unsubscribed += other.unsubscribed;
        self.subscribed += other.subscribed;
        self.resubscribe_skipped += other.resubscribe_skipped;
        self.resubscribe_pending += other.resubscribe_pending;
        self.deletions_ignored += other.deletions_ignored;
        self.deletions_unsubscribed += other.deletions_unsubscribed;
        self.archived += other.archived;
        self.deleted_permanently += other.deleted_permanently;
        self.already_gone += other.already_gone;
        self.tags_removed += other.tags_removed;
        self.contacts_untagged += other.contacts_untagged;
        self.groups_created += other.groups_created;
        self.groups_not_created += other.groups_not_created;
        self.permissions_changed += other.permissions_changed;
        self.permissions_unknown += other.permissions_unknown;
    }

    /// Counts a contact whose `status` was sent and accepted (a deletion, or the status field).
    pub fn count_status(&mut self, status: Option<MemberStatus>, deleted_at_source: bool) {
        match status {
            Some(MemberStatus::Unsubscribed) if deleted_at_source => self.deletions_unsubscribed += 1,
            Some(MemberStatus::Unsubscribed) => self.unsubscribed += 1,
            Some(MemberStatus::Subscribed) => self.subscribed += 1,
            _ => {}
        }
    }

    /// Readable lines, one per kind of effect that happened; `verb` is "were" or "would be".
    pub fn lines(&self, verb: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let mut status = Vec::new();
        if self.unsubscribed > 0 {
            status.push(format!("{} contact(s) {verb} unsubscribed as the source asks", self.unsubscribed));
        }
        if self.subscribed > 0 {
            status
                .push(format!("{} contact(s) {verb} set to subscribed as the source asks", self.subscribed));
        }
        if self.resubscribe_skipped > 0 {
            status.push(format!(
                "{} re-subscription(s) blocked by Mailchimp (the contact unsubscribed or bounced) {verb} skipped: \
                 their other fields {verb} updated and their status left as it is",
                self.resubscribe_skipped
            ));
        }
        if self.resubscribe_pending > 0 {
            status.push(format!(
                "{} re-subscription(s) blocked by Mailchimp {verb} set to pending: Mailchimp emails each person \
                 to confirm",
                self.resubscribe_pending
            ));
        }
        if !status.is_empty() {
            lines.push(format!("Status changes: {}.", status.join("; ")));
        }
        lines.extend(self.deletion_line(verb));
        if self.tags_removed > 0 {
            lines.push(format!(
                "Owned tags: {} stale tag(s) {verb} removed from {} contact(s); other tags {verb} left alone.",
                self.tags_removed, self.contacts_untagged
            ));
        }
        if self.permissions_changed + self.permissions_unknown > 0 {
            lines.push(format!(
                "Marketing permissions: {} contact(s)' permissions {verb} changed as the source says; {} value(s) \
                 {verb} left out because the audience has no such permission.",
                self.permissions_changed, self.permissions_unknown
            ));
        }
        if self.groups_created + self.groups_not_created > 0 {
            lines.push(format!(
                "Groups: {} group(s) named by records {verb} created in their categories; {} {verb} not created \
                 (Mailchimp refused them) and {verb} left out.",
                self.groups_created, self.groups_not_created
            ));
        }
        lines
    }

    /// The deletions at the source, in one line (none when there were none).
    fn deletion_line(&self, verb: &str) -> Option<String> {
        let mut deletions = Vec::new();
        if self.archived > 0 {
            deletions.push(format!("{} contact(s) {verb} archived", self.archived));
        }
        if self.deletions_unsubscribed > 0 {
            deletions.push(format!("{} contact(s) {verb} unsubscribed", self.deletions_unsubscribed));
        }
        if self.deleted_permanently > 0 {
            deletions.push(format!("{} contact(s) {verb} permanently deleted", self.deleted_permanently));
        }
        if self.already_gone > 0 {
            deletions.push(format!("{} contact(s) {verb} already gone from the audience", self.already_gone));
        }
        if self.deletions_ignored > 0 {
            deletions.push(format!(
                "{} deleted record(s) {verb} left alone (on_delete is ignore)",
                self.deletions_ignored
            ));
        }
        (!deletions.is_empty()).then(|| format!("Deletions at the source: {}.", deletions.join("; ")))
    }
}
