//! The intake step, shared by `write`, `preview` and the benchmark: protocol messages in → mapped,
//! deduplicated batches (each for one of the sync's audiences) and the states they release out,
//! with the per-state record counts kept. Pure: no I/O, no clock of its own.

use crate::batch::{Batcher, EventEntry, Ready};
use crate::ledger::{Ledger, PendingState, TallyId};
use crate::mapping::{Mapped, Mapper, UNKNOWN_STREAM};
use crate::protocol::{state_scope, Incoming, StateScope, StreamKey};
use crate::rejected::{Original, Rejection};
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
    /// Events to post, by name, and records whose event id was already seen in this sync.
    pub events: BTreeMap<String, u64>,
    pub events_repeated: u64,
}

/// A record the intake step rejected: why, and the record as sent when originals are kept (boxed
/// where it is returned: most records are not rejected, and the common answer stays small).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub rejection: Rejection,
    pub original: Option<Original>,
}

/// Maps, deduplicates and batches records; places each state behind the records before it.
pub struct Intake {
    /// One per audience of the sync, in the order of the batches' `audience`.
    mappers: Vec<Mapper>,
    /// Keep each record as sent (rejected records storage).
    keep_originals: bool,
    batcher: Batcher,
    ledger: Ledger,
    unknown_streams: HashSet<StreamKey>,
    /// Event ids seen in this sync, per stream: a repeated id is one event.
    event_ids: HashSet<(StreamKey, String)>,
    counts: IntakeCounts,
    notes: Vec<Note>,
    /// The stream of the latest record and where its records go.
    current: Option<CurrentStream>,
}

/// A stream as records name it, and its audience and catalog stream (`None`: not in the catalog).
struct CurrentStream {
    received: StreamKey,
    route: Option<(usize, StreamKey)>,
}

impl Intake {
    /// One mapper per audience; a sync with one audience has one.
    pub fn new(mappers: Vec<Mapper>, batch_size: usize) -> Self {
        Self {
            mappers,
            keep_originals: false,
            batcher: Batcher::new(batch_size),
            ledger: Ledger::default(),
            unknown_streams: HashSet::new(),
            event_ids: HashSet::new(),
            counts: IntakeCounts::default(),
            notes: Vec::new(),
            current: None,
        }
    }

    /// Keeps each record as the source sent it, so that rejected records can be stored.
    pub fn keeping_originals(mut self) -> Self {
        self.keep_originals = true;
        self
    }

    /// Takes one message. Returns the rejection when a record is rejected here (the caller may log
    /// and store it; it is counted here). `now` starts the flush timer of a new batch.
    pub fn take(&mut self, message: Incoming<'_>, now: Instant) -> Option<Box<Rejected>> {
        match message {
            Incoming::Record(record) => {
                self.counts.records += 1;
                // The stream is looked up once per run of records of the same stream.
                let current = match self.current.take() {
                    Some(current) if record.stream.is(&current.received) => current,
                    _ => {
                        let received = record.stream.to_key();
                        let route = self.route(&received).map(|(audience, resolved)| {
                            (audience, resolved.unwrap_or_else(|| received.clone()))
                        });
                        CurrentStream { received, route }
                    }
                };
                let original = self.keep_originals.then(|| Original {
                    stream: current.received.clone(),
                    data: record.data.clone().into_owned(),
                });
                let answer = match &current.route {
                    None => self.unknown_stream(&current.received, original),
                    Some((audience, stream)) => {
                        let tally = self.ledger.tally_for(stream);
                        let mapper = &mut self.mappers[*audience];
                        let mapped = mapper.map(stream, record.data);
                        self.notes.extend(mapper.take_discovered().into_iter().map(Note::Discovered));
                        self.place(*audience, stream, mapped, tally, original, now)
                    }
                };
                self.current = Some(current);
                answer
            }
            Incoming::State(state) => {
                self.counts.states += 1;
                let mut scope = state_scope(&state);
                if let StateScope::Stream(key) = &scope {
                    if let Some((_, Some(resolved))) = self.route(key) {
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

    /// A record of a stream the catalog does not have: rejected, and said once per stream.
    fn unknown_stream(&mut self, stream: &StreamKey, original: Option<Original>) -> Option<Box<Rejected>> {
        let tally = self.ledger.tally_for(stream);
        self.ledger.settle(tally, false);
        self.count_rejection(UNKNOWN_STREAM);
        if self.unknown_streams.insert(stream.clone()) {
            self.notes.push(Note::UnknownStream(format!(
                "Skipping records of stream '{stream}': it is not in the configured catalog."
            )));
        }
        let rejection = Rejection { reason: UNKNOWN_STREAM, field: None, message: UNKNOWN_STREAM.into() };
        Some(Box::new(Rejected { rejection, original }))
    }

    /// The audience of a record's stream, and the catalog's name for the stream when it differs
    /// (an exact match, else the only catalog stream of that name); `None` when the catalog has no
    /// such stream.
    fn route(&self, stream: &StreamKey) -> Option<(usize, Option<StreamKey>)> {
        if let Some(audience) = self.mappers.iter().position(|m| m.has_stream(stream)) {
            return Some((audience, None));
        }
        let mut same_name = self
            .mappers
            .iter()
            .enumerate()
            .flat_map(|(audience, m)| m.streams_named(&stream.name).map(move |key| (audience, key)));
        match (same_name.next(), same_name.next()) {
            (Some((audience, key)), None) => Some((audience, Some(key.clone()))),
            _ => None,
        }
    }

    fn place(
        &mut self,
        audience: usize,
        stream: &StreamKey,
        mapped: Mapped,
        tally: TallyId,
        original: Option<Original>,
        now: Instant,
    ) -> Option<Box<Rejected>> {
        match mapped {
            Mapped::Member(member) => {
                self.batcher.push(audience, member, tally, original, now);
                None
            }
            Mapped::Event(event, id) => {
                if let Some(id) = id {
                    if !self.event_ids.insert((stream.clone(), id)) {
                        // The same event again: it is posted once, and this record is done.
                        self.ledger.settle(tally, true);
                        self.counts.events_repeated += 1;
                        return None;
                    }
                }
                *self.counts.events.entry(event.name.clone()).or_default() += 1;
                self.batcher.push_event(audience, EventEntry { event: *event, tally, original }, now);
                None
            }
            Mapped::Rejected(rejection) => {
                self.ledger.settle(tally, false);
                self.count_rejection(&rejection.message);
                Some(Box::new(Rejected { rejection, original }))
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

    /// The mapping of each audience, for its plan and its end-of-sync warnings.
    pub fn mappers(&self) -> &[Mapper] {
        &self.mappers
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
        Intake::new(vec![Mapper::new(&config, &catalog, &fields, &[]).unwrap()], config.batch_size)
    }

    fn message(line: serde_json::Value) -> String {
        line.to_string()
    }

    fn record(stream: &str, data: serde_json::Value) -> String {
        message(json!({"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": 1}}))
    }

    /// Parses and takes one line.
    fn take(intake: &mut Intake, line: String, now: Instant) -> Option<Box<Rejected>> {
        intake.take(parse_line(line.as_bytes()).unwrap(), now)
    }

    #[test]
    fn records_become_batches_and_states_follow_their_records_with_counts() {
        let mut intake = intake();
        let now = Instant::now();
        assert_eq!(
            take(&mut intake, record("users", json!({"email": "a@mail.io", "fname": "A"})), now),
            None
        );
        assert_eq!(
            take(&mut intake, record("users", json!({"fname": "no email"})), now)
                .map(|r| r.rejection.message.contains("email")),
            Some(true)
        );
        assert_eq!(
            take(&mut intake, record("orders", json!({"email": "b@mail.io"})), now)
                .map(|r| r.rejection.reason),
            Some(UNKNOWN_STREAM)
        );
        take(
            &mut intake,
            message(json!({"type": "STATE", "state": {"type": "LEGACY", "data": {"n": 1}}})),
            now,
        );
        assert_eq!(take(&mut intake, record("users", json!({"email": "c@mail.io"})), now), None);
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

    #[test]
    fn a_record_of_another_namespace_goes_to_the_only_stream_of_its_name() {
        let mut intake = intake();
        let line = json!({"type": "RECORD", "record": {"stream": "users", "namespace": "public",
                          "data": {"email": "d@mail.io"}, "emitted_at": 1}});
        assert_eq!(take(&mut intake, message(line), Instant::now()), None);
        intake.flush();
        assert!(matches!(intake.pop_ready(), Some(Ready::Batch(b)) if b.entries.len() == 1));
    }
}
