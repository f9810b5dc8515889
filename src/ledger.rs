//! Record counts per STATE: which records a state covers, and how many were accepted or rejected.

use crate::protocol::{RawState, StateScope, StreamKey};
use rustc_hash::FxHashMap;

/// Identifies the records of one stream between two of its states.
pub type TallyId = u64;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    accepted: u64,
    rejected: u64,
}

/// A received STATE waiting for its records, with the tallies whose counts it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingState {
    pub state: RawState,
    pub tallies: Vec<TallyId>,
}

/// Keeps one open tally per stream; a STATE closes the tallies it covers (its stream's, or all).
#[derive(Debug, Default)]
pub struct Ledger {
    next_id: TallyId,
    open: FxHashMap<StreamKey, TallyId>,
    tallies: FxHashMap<TallyId, Tally>,
}

impl Ledger {
    /// The tally that a new record of `stream` counts towards.
    pub fn tally_for(&mut self, stream: &StreamKey) -> TallyId {
        if let Some(id) = self.open.get(stream) {
            return *id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.open.insert(stream.clone(), id);
        self.tallies.insert(id, Tally::default());
        id
    }

    /// Counts one record's outcome, once it is known.
    pub fn settle(&mut self, id: TallyId, accepted: bool) {
        let tally = self.tallies.entry(id).or_default();
        if accepted {
            tally.accepted += 1;
        } else {
            tally.rejected += 1;
        }
    }

    /// Closes the tallies a received state covers; later records start new ones.
    pub fn close(&mut self, state: RawState, scope: &StateScope) -> PendingState {
        let tallies = match scope {
            StateScope::Stream(stream) => self.open.remove(stream).into_iter().collect(),
            StateScope::All => self.open.drain().map(|(_, id)| id).collect(),
        };
        PendingState { state, tallies }
    }

    /// Accepted and rejected counts of a state whose records are all settled; forgets its tallies.
    pub fn take_counts(&mut self, pending: &PendingState) -> (u64, u64) {
        pending
            .tallies
            .iter()
            .filter_map(|id| self.tallies.remove(id))
            .fold((0, 0), |(a, r), t| (a + t.accepted, r + t.rejected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> StreamKey {
        StreamKey { namespace: None, name: name.into() }
    }

    #[test]
    fn stream_states_count_their_stream_and_global_states_count_all() {
        let mut ledger = Ledger::default();
        let (a, b) = (key("a"), key("b"));
        for _ in 0..3 {
            let t = ledger.tally_for(&a);
            ledger.settle(t, true);
        }
        let t = ledger.tally_for(&b);
        ledger.settle(t, false);
        let state_a = ledger.close(RawState::from_json("{}").unwrap(), &StateScope::Stream(a.clone()));
        assert_eq!(ledger.take_counts(&state_a), (3, 0));
        let t = ledger.tally_for(&a);
        ledger.settle(t, true);
        let global = ledger.close(RawState::from_json("{}").unwrap(), &StateScope::All);
        assert_eq!(ledger.take_counts(&global), (1, 1));
        let empty = ledger.close(RawState::from_json("{}").unwrap(), &StateScope::All);
        assert_eq!(ledger.take_counts(&empty), (0, 0));
    }
}
