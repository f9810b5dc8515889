//! Dispatch: each batch's request waits for earlier batches that hold one of its emails (so the
//! last record of a contact always wins), then for a connection; answers come back in the order
//! the batches were dispatched.

use crate::mailchimp::budget::{ConnectionBudget, Reservation};
use crate::mailchimp::member::EmailKey;
use futures::stream::{FuturesOrdered, StreamExt};
use rustc_hash::FxHashMap;
use std::future::Future;
use std::task::{Context, Poll};
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::task::{JoinError, JoinHandle};

/// A batch's place in the connection queue, taken when the batch is dispatched.
enum Ticket {
    Held(OwnedSemaphorePermit),
    Queued(Reservation),
}

/// Requests in flight, in dispatch order, and the emails they hold.
pub struct Dispatcher<A> {
    requests: FuturesOrdered<JoinHandle<(u64, A)>>,
    /// Emails in batches not yet answered, with the batch that holds them last.
    pending_emails: FxHashMap<EmailKey, u64>,
    /// Batches not yet answered: each one's signal that it was.
    pending_batches: FxHashMap<u64, watch::Receiver<bool>>,
}

impl<A: Send + 'static> Default for Dispatcher<A> {
    fn default() -> Self {
        Self {
            requests: FuturesOrdered::new(),
            pending_emails: FxHashMap::default(),
            pending_batches: FxHashMap::default(),
        }
    }
}

impl<A: Send + 'static> Dispatcher<A> {
    /// Starts batch `seq` holding `keys`. `send` runs once the batch may go: after every earlier
    /// batch with one of its emails is answered, with the connection reserved for it now (when it
    /// waits for no earlier batch), so that batches take connections in the order they were built.
    pub fn dispatch<F, Fut>(&mut self, seq: u64, keys: &[EmailKey], budget: &ConnectionBudget, send: F)
    where
        F: FnOnce(Option<OwnedSemaphorePermit>) -> Fut + Send + 'static,
        Fut: Future<Output = A> + Send,
    {
        let (done_tx, done_rx) = watch::channel(false);
        let mut earlier: Vec<(u64, watch::Receiver<bool>)> = Vec::new();
        for key in keys {
            let Some(other_seq) = self.pending_emails.insert(*key, seq) else { continue };
            if other_seq == seq || earlier.iter().any(|(s, _)| *s == other_seq) {
                continue;
            }
            if let Some(other_done) = self.pending_batches.get(&other_seq) {
                if !*other_done.borrow() {
                    earlier.push((other_seq, other_done.clone()));
                }
            }
        }
        self.pending_batches.insert(seq, done_rx);
        let ticket = earlier.is_empty().then(|| reserve(budget));
        self.requests.push_back(tokio::spawn(async move {
            for (_, mut done) in earlier {
                let _ = done.wait_for(|answered| *answered).await;
            }
            let first = match ticket {
                Some(Ticket::Held(permit)) => Some(permit),
                Some(Ticket::Queued(queued)) => {
                    Some(queued.await.expect("the budget's semaphore is never closed"))
                }
                None => None,
            };
            let answer = send(first).await;
            let _ = done_tx.send(true);
            (seq, answer)
        }));
    }

    /// The answer of the oldest request, once it has one; `None` when none is in flight.
    pub async fn next(&mut self) -> Option<Result<(u64, A), JoinError>> {
        self.requests.next().await
    }

    /// Forgets the emails whose latest batch is `seq` (it was answered).
    pub fn answered(&mut self, seq: u64, keys: impl Iterator<Item = EmailKey>) {
        self.pending_batches.remove(&seq);
        for key in keys {
            if self.pending_emails.get(&key) == Some(&seq) {
                self.pending_emails.remove(&key);
            }
        }
    }

    /// Requests dispatched and not yet taken by `next`.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// Takes a place in the connection queue now: a free connection at once, else a queued reservation.
fn reserve(budget: &ConnectionBudget) -> Ticket {
    let mut queued = budget.reserve();
    let mut context = Context::from_waker(futures::task::noop_waker_ref());
    match queued.as_mut().poll(&mut context) {
        Poll::Ready(permit) => Ticket::Held(permit.expect("the budget's semaphore is never closed")),
        Poll::Pending => Ticket::Queued(queued),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailchimp::member::email_key;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::time::Instant;

    /// Each request's batch number, start and end in milliseconds.
    type Log = Arc<Mutex<Vec<(u64, u128, u128)>>>;

    /// Dispatches a batch whose request takes `took` and records when it started and ended.
    fn batch(
        dispatcher: &mut Dispatcher<()>,
        budget: &ConnectionBudget,
        log: &Log,
        seq: u64,
        emails: &[&str],
        took: Duration,
    ) {
        let keys: Vec<EmailKey> = emails.iter().map(|e| email_key(e)).collect();
        let (log, zero) = (Arc::clone(log), Instant::now());
        dispatcher.dispatch(seq, &keys, budget, move |permit| async move {
            let started = zero.elapsed().as_millis();
            tokio::time::sleep(took).await;
            drop(permit);
            log.lock().unwrap().push((seq, started, zero.elapsed().as_millis()));
        });
    }

    async fn drain(dispatcher: &mut Dispatcher<()>) -> Vec<u64> {
        let mut order = Vec::new();
        while let Some(answer) = dispatcher.next().await {
            let (seq, ()) = answer.unwrap();
            order.push(seq);
        }
        order
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_with_an_email_in_flight_waits_for_that_answer() {
        let budget = ConnectionBudget::new(5);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut dispatcher = Dispatcher::default();
        let ms = Duration::from_millis;
        batch(&mut dispatcher, &budget, &log, 0, &["a@mail.io", "b@mail.io"], ms(100));
        batch(&mut dispatcher, &budget, &log, 1, &["c@mail.io"], ms(10));
        batch(&mut dispatcher, &budget, &log, 2, &["A@mail.io"], ms(10));
        assert_eq!(drain(&mut dispatcher).await, vec![0, 1, 2], "answers in dispatch order");
        let mut log = log.lock().unwrap().clone();
        log.sort();
        assert_eq!(log, vec![(0, 0, 100), (1, 0, 10), (2, 100, 110)], "batch 2 waited for batch 0 only");
    }

    #[tokio::test(start_paused = true)]
    async fn batches_take_connections_in_the_order_they_were_dispatched() {
        let budget = ConnectionBudget::new(1);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut dispatcher = Dispatcher::default();
        for seq in 0..4 {
            let email = format!("p{seq}@mail.io");
            batch(&mut dispatcher, &budget, &log, seq, &[email.as_str()], Duration::from_millis(50));
        }
        assert_eq!(drain(&mut dispatcher).await, vec![0, 1, 2, 3]);
        let log = log.lock().unwrap().clone();
        let starts: Vec<(u64, u128)> = log.iter().map(|(seq, start, _)| (*seq, *start)).collect();
        assert_eq!(
            starts,
            vec![(0, 0), (1, 50), (2, 100), (3, 150)],
            "one connection, first come first served"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_answered_email_no_longer_holds_back_later_batches() {
        let budget = ConnectionBudget::new(2);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut dispatcher = Dispatcher::default();
        batch(&mut dispatcher, &budget, &log, 0, &["a@mail.io"], Duration::from_millis(30));
        assert_eq!(drain(&mut dispatcher).await, vec![0]);
        dispatcher.answered(0, [email_key("a@mail.io")].into_iter());
        assert!(dispatcher.pending_emails.is_empty());
        let zero = Instant::now();
        batch(&mut dispatcher, &budget, &log, 1, &["a@mail.io"], Duration::from_millis(5));
        assert_eq!(drain(&mut dispatcher).await, vec![1]);
        assert_eq!(zero.elapsed(), Duration::from_millis(5));
    }
}
