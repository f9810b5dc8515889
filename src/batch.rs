//! The batcher: members deduplicated by email into batches of at most `batch_size`, with the STATE
//! messages each batch releases, and the request body of a batch. Pure logic, no I/O.

use crate::ledger::{PendingState, TallyId};
use crate::mapping::{EmailKey, Member};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::time::Instant;

/// One contact in a batch and the records it stands for (several when an email repeats).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub member: Member,
    pub tallies: Vec<TallyId>,
}

/// A request's worth of contacts, and the states to release once Mailchimp has answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub seq: u64,
    pub entries: Vec<Entry>,
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
    entries: Vec<Entry>,
    index: FxHashMap<EmailKey, usize>,
    states: Vec<PendingState>,
    opened_at: Option<Instant>,
    next_seq: u64,
    ready: VecDeque<Ready>,
}

impl Batcher {
    pub fn new(batch_size: usize) -> Self {
        let batch_size = batch_size.clamp(1, 500);
        Self {
            batch_size,
            entries: Vec::with_capacity(batch_size),
            index: FxHashMap::with_capacity_and_hasher(batch_size, Default::default()),
            states: Vec::new(),
            opened_at: None,
            next_seq: 0,
            ready: VecDeque::new(),
        }
    }

    /// Adds a record's member. A repeated email merges into the earlier entry, so the batch
    /// holds what applying the records one after another would leave: later values win,
    /// fields the later record lacks keep the earlier value, tags accumulate.
    pub fn push_member(&mut self, member: Member, tally: TallyId, now: Instant) {
        if let Some(&i) = self.index.get(&member.key) {
            let entry = &mut self.entries[i];
            merge_into(&mut entry.member, member);
            entry.tallies.push(tally);
            return;
        }
        self.opened_at.get_or_insert(now);
        self.index.insert(member.key, self.entries.len());
        self.entries.push(Entry { member, tallies: vec![tally] });
        if self.entries.len() >= self.batch_size {
            self.flush();
        }
    }

    /// Adds a state: it is released after every record received before it.
    pub fn push_state(&mut self, state: PendingState) {
        if self.entries.is_empty() {
            self.ready.push_back(Ready::State(state));
        } else {
            self.states.push(state);
        }
    }

    /// Closes the open batch, if it holds anything.
    pub fn flush(&mut self) {
        if self.entries.is_empty() {
            return;
        }
        let entries = std::mem::replace(&mut self.entries, Vec::with_capacity(self.batch_size));
        self.index.clear();
        self.opened_at = None;
        let batch = Batch { seq: self.next_seq, entries, states: std::mem::take(&mut self.states) };
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
        self.entries.is_empty() && self.ready.is_empty()
    }
}

/// The batch-subscribe request body for these entries: `update_existing` (so that a re-run
/// updates instead of failing) and the members, serialized once, straight into the buffer.
pub fn request_body(entries: &[Entry]) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + entries.len() * 200);
    body.extend_from_slice(b"{\"update_existing\":true,\"members\":[");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, &entry.member).expect("a member always serializes");
    }
    body.extend_from_slice(b"]}");
    body
}

fn merge_into(earlier: &mut Member, later: Member) {
    earlier.email_address = later.email_address;
    earlier.status_if_new = later.status_if_new;
    earlier.merge_fields.extend(later.merge_fields);
    earlier.attributes.extend(later.attributes);
    for tag in later.tags {
        if !earlier.tags.contains(&tag) {
            earlier.tags.push(tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemberStatus;
    use crate::mapping::email_key;
    use serde_json::json;

    fn member(email: &str, fname: &str) -> Member {
        Member {
            email_address: email.into(),
            status_if_new: MemberStatus::Subscribed,
            merge_fields: json!({"FNAME": fname}).as_object().unwrap().clone(),
            tags: vec![],
            attributes: Default::default(),
            key: email_key(email),
        }
    }

    fn state(n: u64) -> PendingState {
        PendingState { state: json!({"n": n}), tallies: vec![] }
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
        assert_eq!(batch.entries[0].member.merge_fields["FNAME"], "2");
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
        first.merge_fields.insert("LNAME".into(), json!("Lovelace"));
        first.tags = vec!["t1".into()];
        let mut second = member("a@x.io", "Augusta");
        second.tags = vec!["t2".into(), "t1".into()];
        merge_into(&mut first, second);
        assert_eq!(
            serde_json::Value::Object(first.merge_fields),
            json!({"FNAME": "Augusta", "LNAME": "Lovelace"})
        );
        assert_eq!(first.tags, vec!["t1", "t2"]);
    }
}
