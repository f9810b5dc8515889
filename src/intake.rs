//! The intake step, shared by `write`, `preview` and the benchmark: protocol messages in → mapped,
//! deduplicated batches and the states they release out, with the per-state record counts kept.
//! Pure: no I/O, no clock of its own.

use crate::batch::{Batcher, Ready};
use crate::ledger::{Ledger, PendingState, TallyId};
use crate::mapping::{Mapped, Mapper, UNKNOWN_STREAM};
use crate::protocol::{state_scope, Incoming, StateScope, StreamKey};
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

/// A line for the sync's log that the intake step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A field not in the catalog's schema was found in a record and mapped.
    Discovered(String),
    /// Records of a stream the catalog does not have are skipped (said once per stream).
    UnknownStream(String),
}

/// What the intake step counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntakeCounts {
    pub records: u64,
    pub states: u64,
    /// Records that could not become a contact, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Deletions at the source that `on_delete: ignore` leaves alone.
    pub deletions_ignored: u64,
}

/// Maps, deduplicates and batches records; places each state behind the records before it.
pub struct Intake {
    mapper: Mapper,
    batcher: Batcher,
    ledger: Ledger,
    unknown_streams: HashSet<StreamKey>,
    counts: IntakeCounts,
    notes: Vec<Note>,
}

impl Intake {
    pub fn new(mapper: Mapper, batch_size: usize) -> Self {
        Self {
            mapper,
            batcher: Batcher::new(batch_size),
            ledger: Ledger::default(),
            unknown_streams: HashSet::new(),
            counts: IntakeCounts::default(),
            notes: Vec::new(),
        }
    }

    /// Takes one message. Returns the reason when a record is rejected by the mapping (the caller
    /// may log it; it is counted here). `now` starts the flush timer of a new batch.
    pub fn take(&mut self, message: Incoming, now: Instant) -> Option<String> {
        match message {
            Incoming::Record(mut record) => {
                self.counts.records += 1;
                if !self.mapper.resolve_stream_in_place(&mut record.stream) {
                    let tally = self.ledger.tally_for(&record.stream);
                    self.ledger.settle(tally, false);
                    self.count_rejection(UNKNOWN_STREAM);
                    if self.unknown_streams.insert(record.stream.clone()) {
                        self.notes.push(Note::UnknownStream(format!(
                            "Skipping records of stream '{}': it is not in the configured catalog.",
                            record.stream
                        )));
                    }
                    return None;
                }
                let tally = self.ledger.tally_for(&record.stream);
                let mapped = self.mapper.map(&record.stream, record.data);
                self.notes.extend(self.mapper.take_discovered().into_iter().map(Note::Discovered));
                self.place(mapped, tally, now)
            }
            Incoming::State(state) => {
                self.counts.states += 1;
                let mut scope = state_scope(&state);
                if let StateScope::Stream(key) = &scope {
                    if let Some(resolved) = self.mapper.resolve_stream(key) {
                        scope = StateScope::Stream(resolved);
                    }
                }
                let pending = self.ledger.close(state, &scope);
                self.batcher.push_state(pending);
                None
            }
            Incoming::Ignored => None,
        }
    }

    fn place(&mut self, mapped: Mapped, tally: TallyId, now: Instant) -> Option<String> {
        match mapped {
            Mapped::Member(member) => {
                self.batcher.push_member(member, tally, now);
                None
            }
            Mapped::Rejected(reason) => {
                self.ledger.settle(tally, false);
                self.count_rejection(&reason);
                Some(reason)
            }
            Mapped::DeletionIgnored => {
                // Handled as configured: counted as written, and reported in the summary.
                self.ledger.settle(tally, true);
                self.counts.deletions_ignored += 1;
                None
            }
        }
    }

    fn count_rejection(&mut self, reason: &str) {
        match self.counts.rejected.get_mut(reason) {
            Some(count) => *count += 1,
            None => {
                self.counts.rejected.insert(reason.to_string(), 1);
            }
        }
    }

    /// Closes the open batch (the input ended, or its records waited long enough).
    pub fn flush(&mut self) {
        self.batcher.flush();
    }

    /// The next batch or state, in input order.
    pub fn pop_ready(&mut self) -> Option<Ready> {
        self.batcher.pop_ready()
    }

    /// The next ready item if it is a state (a stopping sync sends no more batches).
    pub fn pop_ready_state(&mut self) -> Option<Ready> {
        self.batcher.pop_ready_state()
    }

    /// Nothing open and nothing ready.
    pub fn is_idle(&self) -> bool {
        self.batcher.is_idle()
    }

    /// When the open batch got its first record.
    pub fn open_since(&self) -> Option<Instant> {
        self.batcher.open_since()
    }

    /// Counts a record's outcome once Mailchimp has answered for it.
    pub fn settle(&mut self, tally: TallyId, accepted: bool) {
        self.ledger.settle(tally, accepted);
    }

    /// Accepted and rejected records of a state about to be released.
    pub fn counts_of(&mut self, state: &PendingState) -> (u64, u64) {
        self.ledger.take_counts(state)
    }

    /// Log lines produced since the last call.
    pub fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    pub fn counts(&self) -> &IntakeCounts {
        &self.counts
    }

    /// The mapping, for its plan and its end-of-sync warnings.
    pub fn mapper(&self) -> &Mapper {
        &self.mapper
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ConfiguredCatalog;
    use crate::mailchimp::model::MergeField;
    use crate::protocol::parse_line;
    use serde_json::json;

    fn intake() -> Intake {
        let config = crate::config::from_value(
            &json!({"api_key": "0123456789abcdef0123456789abcdef-us6", "list_id": "l1", "batch_size": 3}),
            None,
        )
        .unwrap();
        let catalog: ConfiguredCatalog = serde_json::from_value(json!({"streams": [{
            "stream": {"name": "users", "json_schema": {"properties": {"email": {}, "fname": {}}},
                       "supported_sync_modes": ["incremental"]},
            "sync_mode": "incremental", "destination_sync_mode": "append_dedup"}]}))
        .unwrap();
        let fields: Vec<MergeField> =
            serde_json::from_value(json!([{"tag": "FNAME", "name": "First Name", "type": "text"}])).unwrap();
        Intake::new(Mapper::new(&config, &catalog, &fields, &[]).unwrap(), config.batch_size)
    }

    fn message(line: serde_json::Value) -> Incoming {
        parse_line(line.to_string().as_bytes()).unwrap()
    }

    fn record(stream: &str, data: serde_json::Value) -> Incoming {
        message(json!({"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": 1}}))
    }

    #[test]
    fn records_become_batches_and_states_follow_their_records_with_counts() {
        let mut intake = intake();
        let now = Instant::now();
        assert_eq!(intake.take(record("users", json!({"email": "a@mail.io", "fname": "A"})), now), None);
        assert_eq!(
            intake.take(record("users", json!({"fname": "no email"})), now).map(|r| r.contains("email")),
            Some(true)
        );
        assert_eq!(intake.take(record("orders", json!({"email": "b@mail.io"})), now), None);
        intake.take(message(json!({"type": "STATE", "state": {"type": "LEGACY", "data": {"n": 1}}})), now);
        assert_eq!(intake.take(record("users", json!({"email": "c@mail.io"})), now), None);
        assert!(intake.pop_ready().is_none(), "the batch of 3 is not full yet");
        intake.flush();
        let Some(Ready::Batch(first)) = intake.pop_ready() else { panic!("a batch") };
        assert_eq!(first.entries.len(), 2);
        assert_eq!(first.states.len(), 1);
        for entry in &first.entries {
            for tally in &entry.tallies {
                intake.settle(*tally, true);
            }
        }
        assert_eq!(
            intake.counts_of(&first.states[0]),
            (1, 2),
            "one written, one rejected, one unknown stream"
        );
        let counts = intake.counts();
        assert_eq!((counts.records, counts.states, counts.rejected.values().sum::<u64>()), (4, 1, 2));
        assert_eq!(counts.rejected.get(UNKNOWN_STREAM), Some(&1));
        let notes = intake.take_notes();
        assert!(
            matches!(notes.as_slice(), [Note::UnknownStream(text)] if text.contains("orders")),
            "{notes:?}"
        );
    }
}
