//! Ordered acknowledgement: a state is released only once every batch sent before it has been
//! answered, in input order (the shape of Vector's `OrderedFinalizer`), whatever order answers
//! come back in.

use std::collections::VecDeque;

/// A batch sent and not yet released, with the states that wait for it.
#[derive(Debug)]
struct Waiting<S> {
    batch: u64,
    answered: bool,
    states: Vec<S>,
}

/// Batches in the order they were sent, each holding the states that follow it.
#[derive(Debug)]
pub struct AckQueue<S> {
    waiting: VecDeque<Waiting<S>>,
    /// Set once a batch will never be answered (the sync is stopping): nothing after it is released.
    halted: bool,
}

impl<S> Default for AckQueue<S> {
    fn default() -> Self {
        Self { waiting: VecDeque::new(), halted: false }
    }
}

impl<S> AckQueue<S> {
    /// A batch was sent; `states` are released once it and every batch before it are answered.
    pub fn sent(&mut self, batch: u64, states: Vec<S>) {
        self.waiting.push_back(Waiting { batch, answered: false, states });
    }

    /// A state that follows every batch sent so far: released now (returned) when none is waiting.
    pub fn state(&mut self, state: S) -> Option<S> {
        match self.waiting.back_mut() {
            Some(last) => {
                last.states.push(state);
                None
            }
            None if self.halted => None,
            None => Some(state),
        }
    }

    /// A batch was answered: returns the states now released, in order.
    pub fn answered(&mut self, batch: u64) -> Vec<S> {
        if let Some(waiting) = self.waiting.iter_mut().find(|w| w.batch == batch) {
            waiting.answered = true;
        }
        let mut released = Vec::new();
        while self.waiting.front().is_some_and(|w| w.answered) {
            let done = self.waiting.pop_front().expect("checked above");
            if !self.halted {
                released.extend(done.states);
            }
        }
        released
    }

    /// A batch will never be answered: no state after it may be released.
    pub fn halt(&mut self) {
        self.halted = true;
    }

    /// Batches sent and not yet released.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_waits_for_every_batch_before_it() {
        let mut acks = AckQueue::default();
        assert_eq!(acks.state("s0"), Some("s0"), "nothing in flight: released at once");
        acks.sent(0, vec!["s1"]);
        acks.sent(1, vec![]);
        assert_eq!(acks.state("s2"), None);
        acks.sent(2, vec!["s3"]);
        assert!(acks.answered(1).is_empty(), "batch 0 is still unanswered");
        assert!(acks.answered(2).is_empty());
        assert_eq!(acks.answered(0), vec!["s1", "s2", "s3"]);
        assert!(acks.is_empty());
        assert_eq!(acks.state("s4"), Some("s4"));
    }

    #[test]
    fn answers_in_any_order_release_states_in_input_order() {
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
            let mut acks = AckQueue::default();
            for batch in 0..3u64 {
                acks.sent(batch, vec![batch]);
            }
            let released: Vec<u64> = order.iter().flat_map(|b| acks.answered(*b)).collect();
            assert_eq!(released, vec![0, 1, 2], "answered in {order:?}");
        }
    }

    #[test]
    fn after_a_halt_nothing_more_is_released() {
        let mut acks = AckQueue::default();
        acks.sent(0, vec!["s1"]);
        acks.sent(1, vec!["s2"]);
        assert_eq!(acks.answered(0), vec!["s1"]);
        acks.halt();
        assert!(acks.answered(1).is_empty());
        assert_eq!(acks.state("s3"), None);
    }
}
