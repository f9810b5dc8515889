//! The batcher: members deduplicated by email into batches of at most `batch_size`, with the STATE
//! messages each batch releases, and the request body of a batch. Pure logic, no I/O.

use crate::ledger::{PendingState, TallyId};
use crate::mailchimp::event::Event;
use crate::mailchimp::member::{members_body, Action, EmailKey, Member, MAX_BATCH_MEMBERS};
use crate::rejected::Original;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::time::Instant;

/// One contact in a batch and the records it stands for (several when an email repeats).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub member: Member,
    pub tallies: Vec<TallyId>,
    /// The records as the source sent them, when rejected records are stored (else empty).
    pub originals: Vec<Original>,
}

/// One event to post, the record it stands for and, when rejected records are stored, the record
/// as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct EventEntry {
    pub event: Event,
    pub tally: TallyId,
    pub original: Option<Original>,
}

/// A request's worth of contacts (and events on contacts), and the states to release once
/// Mailchimp has answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub seq: u64,
    /// Which of the sync's audiences the batch goes to.
    pub audience: usize,
    pub entries: Vec<Entry>,
    /// Posted after the batch's contacts are written, so that a contact created here exists.
    pub events: Vec<EventEntry>,
    pub states: Vec<PendingState>,
}

/// What the batcher hands on, in input order.
#[derive(Debug, Clone, PartialEq)]
pub enum Ready {
    Batch(Batch),
    /// A state that arrived while no batch was open: it waits only for batches already handed on.
    State(PendingState),
}

pub struct Batcher {
    batch_size: usize,
    /// The audience of the open batch.
    audience: usize,
    entries: Vec<Entry>,
    events: Vec<EventEntry>,
    index: FxHashMap<EmailKey, usize>,
    states: Vec<PendingState>,
    opened_at: Option<Instant>,
    next_seq: u64,
    ready: VecDeque<Ready>,
}

impl Batcher {
    pub fn new(batch_size: usize) -> Self {
        let batch_size = batch_size.clamp(1, MAX_BATCH_MEMBERS);
        Self {
            batch_size,
            audience: 0,
            entries: Vec::with_capacity(batch_size),
            events: Vec::new(),
            index: FxHashMap::with_capacity_and_hasher(batch_size, Default::default()),
            states: Vec::new(),
            opened_at: None,
            next_seq: 0,
            ready: VecDeque::new(),
        }
    }

    /// Adds a record's member. A repeated email merges into the earlier entry, so the batch
    /// holds what applying the records one after another would leave: later values win,
    /// fields the later record lacks keep the earlier value, tags accumulate. When the two cannot
    /// be merged (an archive after an upsert, a status change after another), the open batch is
    /// closed first, so that the two are applied one after the other, in input order.
    pub fn push_member(&mut self, member: Member, tally: TallyId, now: Instant) {
        self.push(0, member, tally, None, now);
    }

    /// Like `push_member`, for a sync with several audiences and with the record as it was sent
    /// (kept when rejected records are stored). A member of another audience than the open
    /// batch's closes it first: a batch goes to one audience.
    pub fn push(
        &mut self,
        audience: usize,
        member: Member,
        tally: TallyId,
        original: Option<Original>,
        now: Instant,
    ) {
        if audience != self.audience {
            self.flush();
            self.audience = audience;
        }
        if let Some(&i) = self.index.get(&member.key) {
            if mergeable(&self.entries[i].member, &member) {
                let entry = &mut self.entries[i];
                merge_into(&mut entry.member, member);
                entry.tallies.push(tally);
                entry.originals.extend(original);
                return;
            }
            self.flush();
        }
        self.opened_at.get_or_insert(now);
        self.index.insert(member.key, self.entries.len());
        self.entries.push(Entry { member, tallies: vec![tally], originals: original.into_iter().collect() });
        if self.entries.len() + self.events.len() >= self.batch_size {
            self.flush();
        }
    }

    /// Adds an event (events are not merged: each record is one event). It counts toward the batch's
    /// size like a contact.
    pub fn push_event(&mut self, audience: usize, event: EventEntry, now: Instant) {
        if audience != self.audience {
            self.flush();
            self.audience = audience;
        }
        self.opened_at.get_or_insert(now);
        self.events.push(event);
        if self.entries.len() + self.events.len() >= self.batch_size {
            self.flush();
        }
    }

    /// Adds a state: it is released after every record received before it.
    pub fn push_state(&mut self, state: PendingState) {
        if self.is_empty() {
            self.ready.push_back(Ready::State(state));
        } else {
            self.states.push(state);
        }
    }

    /// Closes the open batch, if it holds anything.
    pub fn flush(&mut self) {
        if self.is_empty() {
            return;
        }
        let entries = std::mem::replace(&mut self.entries, Vec::with_capacity(self.batch_size));
        self.index.clear();
        self.opened_at = None;
        let batch = Batch {
            seq: self.next_seq,
            audience: self.audience,
            entries,
            events: std::mem::take(&mut self.events),
            states: std::mem::take(&mut self.states),
        };
        self.next_seq += 1;
        self.ready.push_back(Ready::Batch(batch));
    }

    pub fn pop_ready(&mut self) -> Option<Ready> {
        self.ready.pop_front()
    }

    /// The next ready item if it is a state (a stopping sync sends no more batches, but a state
    /// that waits only for batches already sent may still be released).
    pub fn pop_ready_state(&mut self) -> Option<Ready> {
        match self.ready.front() {
            Some(Ready::State(_)) => self.ready.pop_front(),
            _ => None,
        }
    }

    /// When the oldest record of the open batch arrived (None when no batch is open).
    pub fn open_since(&self) -> Option<Instant> {
        self.opened_at
    }

    /// True when nothing is open and nothing waits to be handed on.
    pub fn is_idle(&self) -> bool {
        self.is_empty() && self.ready.is_empty()
    }

    /// No batch is open.
    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.events.is_empty()
    }
}

/// The batch-subscribe request body for the upserts among these entries (None when there are
/// none): `update_existing` (so that a re-run updates instead of failing) and the members,
/// serialized once, straight into the buffer.
pub fn request_body(entries: &[Entry]) -> Option<Vec<u8>> {
    members_body(entries.iter().map(|e| &e.member).filter(|m| m.action == Action::Upsert))
}

/// Whether a later record's member can be folded into an earlier one of the same email with the
/// same result as applying both in turn.
fn mergeable(earlier: &Member, later: &Member) -> bool {
    earlier.action == later.action
        && match (earlier.status, later.status) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

fn merge_into(earlier: &mut Member, later: Member) {
    earlier.email_address = later.email_address;
    earlier.status_if_new = later.status_if_new;
    earlier.status = later.status.or(earlier.status);
    earlier.deleted_at_source |= later.deleted_at_source;
    earlier.merge_fields.extend(later.merge_fields);
    earlier.attributes.extend(later.attributes);
    if let Some(later) = later.permissions {
        // The later record's value wins for each permission it names.
        let earlier = earlier.permissions.get_or_insert_with(Default::default);
        earlier.retain(|(name, _)| !later.iter().any(|(n, _)| n == name));
        earlier.extend(*later);
    }
    match (&mut earlier.groups, later.groups) {
        (Some(earlier), Some(later)) => earlier.merge(*later),
        (slot @ None, later) => *slot = later,
        (_, None) => {}
    }
    if let Some(owned) = later.owned_tags {
        // The later record's owned tags replace the earlier one's (the earlier ones would be
        // removed when the later record is applied).
        if let Some(before) = &earlier.owned_tags {
            earlier.tags.retain(|t| !before.contains(t) || owned.contains(t));
        }
        earlier.owned_tags = Some(owned);
    }
    for tag in later.tags {
        if !earlier.tags.contains(&tag) {
            earlier.tags.push(tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailchimp::member::{email_key, MemberStatus};
    use serde_json::json;

    fn member(email: &str, fname: &str) -> Member {
        Member {
            email_address: email.into(),
            status_if_new: MemberStatus::Subscribed,
            merge_fields: json!({"FNAME": fname}).as_object().unwrap().clone().into(),
            tags: vec![],
            attributes: Default::default(),
            key: email_key(email),
            status: None,
            action: Action::Upsert,
            owned_tags: None,
            deleted_at_source: false,
            groups: None,
            permissions: None,
        }
    }

    fn state(n: u64) -> PendingState {
        PendingState {
            state: crate::protocol::RawState::from_json(&format!(r#"{{"n":{n}}}"#)).unwrap(),
            tallies: vec![],
        }
    }

    fn drain(batcher: &mut Batcher) -> Vec<Ready> {
        std::iter::from_fn(|| batcher.pop_ready()).collect()
    }

    #[test]
    fn fills_batches_and_never_repeats_an_email_in_one() {
        let mut b = Batcher::new(2);
        let now = Instant::now();
        b.push_member(member("a@x.io", "1"), 0, now);
        b.push_member(member("A@X.io", "2"), 0, now);
        assert!(drain(&mut b).is_empty());
        b.push_member(member("b@x.io", "3"), 0, now);
        let ready = drain(&mut b);
        let [Ready::Batch(batch)] = ready.as_slice() else { panic!("{ready:?}") };
        assert_eq!(batch.entries.len(), 2);
        assert_eq!(batch.entries[0].member.email_address, "A@X.io");
        assert_eq!(batch.entries[0].member.merge_fields.get("FNAME"), Some(json!("2")));
        assert_eq!(batch.entries[0].tallies, vec![0, 0]);
    }

    #[test]
    fn states_follow_the_records_before_them() {
        let mut b = Batcher::new(10);
        let now = Instant::now();
        b.push_state(state(0));
        b.push_member(member("a@x.io", "1"), 0, now);
        b.push_state(state(1));
        b.push_member(member("b@x.io", "1"), 0, now);
        b.flush();
        b.push_state(state(2));
        let ready = drain(&mut b);
        assert_eq!(ready.len(), 3);
        assert_eq!(ready[0], Ready::State(state(0)));
        let Ready::Batch(batch) = &ready[1] else { panic!() };
        assert_eq!(batch.states, vec![state(1)]);
        assert_eq!(ready[2], Ready::State(state(2)));
        assert!(b.is_idle());
    }

    #[test]
    fn merging_keeps_earlier_fields_the_later_record_lacks() {
        let mut first = member("a@x.io", "Ada");
        first.merge_fields.insert("LNAME", &json!("Lovelace"));
        first.tags = vec!["t1".into()];
        let mut second = member("a@x.io", "Augusta");
        second.tags = vec!["t2".into(), "t1".into()];
        merge_into(&mut first, second);
        assert_eq!(
            serde_json::Value::Object(first.merge_fields.to_map()),
            json!({"FNAME": "Augusta", "LNAME": "Lovelace"})
        );
        assert_eq!(first.tags, vec!["t1", "t2"]);
    }

    #[test]
    fn later_owned_tags_replace_earlier_ones_and_others_accumulate() {
        let mut first = member("a@x.io", "Ada");
        first.tags = vec!["crm".into(), "hp:gold".into(), "hp:2025".into()];
        first.owned_tags = Some(vec!["hp:gold".into(), "hp:2025".into()]);
        let mut second = member("a@x.io", "Ada");
        second.tags = vec!["web".into(), "hp:2025".into()];
        second.owned_tags = Some(vec!["hp:2025".into()]);
        merge_into(&mut first, second);
        assert_eq!(first.tags, vec!["crm", "hp:2025", "web"]);
        assert_eq!(first.owned_tags, Some(vec!["hp:2025".to_string()]));
    }

    #[test]
    fn an_archive_after_an_upsert_of_the_same_email_goes_in_a_later_batch() {
        let mut b = Batcher::new(10);
        let now = Instant::now();
        b.push_member(member("a@x.io", "1"), 0, now);
        b.push_member(member("b@x.io", "1"), 0, now);
        let mut archive = member("A@x.io", "");
        archive.action = Action::Archive;
        b.push_member(archive, 0, now);
        let mut unsubscribe = member("b@x.io", "");
        unsubscribe.status = Some(MemberStatus::Unsubscribed);
        b.push_member(unsubscribe, 0, now);
        let mut resubscribe = member("b@x.io", "");
        resubscribe.status = Some(MemberStatus::Subscribed);
        b.push_member(resubscribe, 0, now);
        b.flush();
        let sizes: Vec<(usize, Vec<Action>)> = drain(&mut b)
            .into_iter()
            .map(|r| match r {
                Ready::Batch(batch) => {
                    (batch.entries.len(), batch.entries.iter().map(|e| e.member.action).collect())
                }
                Ready::State(_) => panic!(),
            })
            .collect();
        assert_eq!(
            sizes,
            vec![
                (2, vec![Action::Upsert, Action::Upsert]),
                (2, vec![Action::Archive, Action::Upsert]),
                (1, vec![Action::Upsert])
            ]
        );
    }
}
