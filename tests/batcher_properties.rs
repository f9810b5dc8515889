//! Property tests for the batcher and the ledger: for any interleaving of records, repeated
//! emails, rejections, stream and global states, flushes and in-order answers, every state comes
//! out once, in order, only after its records were answered, with the right counts, and the
//! audience ends as if the records had been applied one after another.

use destination_mailchimp::batch::{Batch, Batcher, Ready};
use destination_mailchimp::ledger::{Ledger, PendingState};
use destination_mailchimp::mailchimp::member::{Action, Member, MemberStatus};
use destination_mailchimp::protocol::{RawState, StateScope, StreamKey};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::Instant;

const STREAMS: [&str; 2] = ["users", "leads"];

#[derive(Debug, Clone)]
enum Op {
    /// A record of `stream` for `person`; `rejected` ones never reach a batch (no email, say).
    Record {
        stream: usize,
        person: u8,
        upper: bool,
        fname: u8,
        lname: Option<u8>,
        tag: Option<u8>,
        rejected: bool,
    },
    StreamState {
        stream: usize,
    },
    GlobalState,
    /// The open batch is closed early (the 5-second timer).
    Flush,
    /// Mailchimp answers the oldest request in flight.
    Answer,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..2usize, 0..6u8, any::<bool>(), any::<u8>(), proptest::option::of(any::<u8>()),
              proptest::option::of(0..3u8), proptest::bool::weighted(0.1))
            .prop_map(|(stream, person, upper, fname, lname, tag, rejected)| Op::Record {
                stream, person, upper, fname, lname, tag, rejected
            }),
        1 => (0..2usize).prop_map(|stream| Op::StreamState { stream }),
        1 => Just(Op::GlobalState),
        1 => Just(Op::Flush),
        2 => Just(Op::Answer),
    ]
}

/// A contact as the audience holds it: email spelling, merge fields, tags.
type Contact = (String, Map<String, Value>, BTreeSet<String>);

fn apply(audience: &mut BTreeMap<String, Contact>, member: &Member) {
    let contact = audience.entry(member.email_address.to_lowercase()).or_default();
    contact.0 = member.email_address.clone();
    contact.1.extend(member.merge_fields.to_map());
    contact.2.extend(member.tags.iter().cloned());
}

/// The pipeline of the writer without the network: batches in flight are answered in order.
struct Pipeline {
    batcher: Batcher,
    ledger: Ledger,
    in_flight: VecDeque<Batch>,
    audience: BTreeMap<String, Contact>,
    released: Vec<(u64, u64, u64)>,
    batch_size: usize,
}

impl Pipeline {
    fn hand_on(&mut self) {
        while let Some(ready) = self.batcher.pop_ready() {
            match ready {
                Ready::Batch(batch) => {
                    assert!(batch.entries.len() <= self.batch_size, "a batch over batch_size");
                    let emails: HashSet<_> = batch.entries.iter().map(|e| e.member.key).collect();
                    assert_eq!(emails.len(), batch.entries.len(), "an email twice in one batch");
                    self.in_flight.push_back(batch);
                }
                Ready::State(state) => match self.in_flight.back_mut() {
                    Some(last) => last.states.push(state),
                    None => self.release(state),
                },
            }
        }
    }

    fn answer(&mut self) {
        let Some(batch) = self.in_flight.pop_front() else { return };
        for entry in &batch.entries {
            apply(&mut self.audience, &entry.member);
            for tally in &entry.tallies {
                self.ledger.settle(*tally, true);
            }
        }
        for state in batch.states {
            self.release(state);
        }
    }

    fn release(&mut self, state: PendingState) {
        let (accepted, rejected) = self.ledger.take_counts(&state);
        let state: serde_json::Value = serde_json::from_str(state.state.as_json()).unwrap();
        self.released.push((state["id"].as_u64().unwrap(), accepted, rejected));
    }
}

fn key(stream: usize) -> StreamKey {
    StreamKey { namespace: None, name: STREAMS[stream].to_string() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn states_come_out_in_order_with_their_counts_and_the_last_record_wins(
        batch_size in 1..6usize,
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        let mut pipeline = Pipeline {
            batcher: Batcher::new(batch_size),
            ledger: Ledger::default(),
            in_flight: VecDeque::new(),
            audience: BTreeMap::new(),
            released: Vec::new(),
            batch_size,
        };
        // The model: records applied one after another, and the counts each state must carry.
        let mut model = BTreeMap::new();
        let mut open_counts = [(0u64, 0u64); 2];
        let mut expected_states = Vec::new();
        let now = Instant::now();
        for (id, op) in ops.into_iter().enumerate() {
            let id = id as u64;
            match op {
                Op::Record { stream, person, upper, fname, lname, tag, rejected } => {
                    let tally = pipeline.ledger.tally_for(&key(stream));
                    if rejected {
                        pipeline.ledger.settle(tally, false);
                        open_counts[stream].1 += 1;
                        continue;
                    }
                    let email = if upper { format!("Person{person}@Mail.io") } else { format!("person{person}@mail.io") };
                    let mut merge_fields = Map::new();
                    merge_fields.insert("FNAME".into(), json!(fname));
                    if let Some(lname) = lname {
                        merge_fields.insert("LNAME".into(), json!(lname));
                    }
                    let member = Member {
                        merge_fields: merge_fields.into(),
                        tags: tag.map(|t| vec![format!("t{t}")]).unwrap_or_default(),
                        ..Member::bare(email, MemberStatus::Subscribed, Action::Upsert)
                    };
                    apply(&mut model, &member);
                    open_counts[stream].0 += 1;
                    pipeline.batcher.push_member(member, tally, now);
                }
                Op::StreamState { stream } => {
                    let (a, r) = std::mem::take(&mut open_counts[stream]);
                    expected_states.push((id, a, r));
                    let pending = pipeline.ledger.close(RawState::from_json(&json!({"id": id}).to_string()).unwrap(), &StateScope::Stream(key(stream)));
                    pipeline.batcher.push_state(pending);
                }
                Op::GlobalState => {
                    let (a, r) = open_counts.iter_mut().map(std::mem::take).fold((0, 0), |(a, r), (x, y)| (a + x, r + y));
                    expected_states.push((id, a, r));
                    pipeline.batcher.push_state(pipeline.ledger.close(RawState::from_json(&json!({"id": id}).to_string()).unwrap(), &StateScope::All));
                }
                Op::Flush => pipeline.batcher.flush(),
                Op::Answer => pipeline.answer(),
            }
            pipeline.hand_on();
            // Never a state whose records are not all answered: its counts would fall short.
            let released = pipeline.released.len();
            prop_assert_eq!(&pipeline.released[..], &expected_states[..released]);
        }
        // End of input: flush, then every request is answered.
        pipeline.batcher.flush();
        pipeline.hand_on();
        while !pipeline.in_flight.is_empty() {
            pipeline.answer();
        }
        prop_assert!(pipeline.batcher.is_idle());
        prop_assert_eq!(&pipeline.released, &expected_states);
        prop_assert_eq!(&pipeline.audience, &model);
    }
}
