//! The connection budget: how many requests may be in flight, lowered on 429 and raised again
//! slowly after successes (additive increase, multiplicative decrease). Waiting requests get
//! their turn first come, first served.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// A place in the queue for a connection, taken now and awaited later.
pub type Reservation = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// Mailchimp allows 10 simultaneous connections per user; the budget never exceeds it.
pub const MAILCHIMP_CONNECTION_LIMIT: usize = 10;
/// Successes needed per extra request, per request allowed: at 4 allowed, 8 successes raise it to 5.
const SUCCESSES_PER_STEP: f64 = 2.0;

#[derive(Debug)]
struct Inner {
    /// The current allowance; whole requests are `floor(limit)`, never below one.
    limit: f64,
    /// Permits still to be withdrawn after a decrease: held ones are forgotten as they come back.
    debt: usize,
    in_flight: usize,
    /// Bumped at each decrease, so that one burst of 429s halves the allowance only once.
    epoch: u64,
}

/// Shared by every request of a client.
#[derive(Debug)]
pub struct ConnectionBudget {
    max: usize,
    inner: Mutex<Inner>,
    permits: Arc<Semaphore>,
}

/// A change of the allowance worth telling the user about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Lowered { to: usize },
    Raised { to: usize },
}

/// One request's place in the budget; dropping it frees the place.
pub struct Slot<'a> {
    budget: &'a ConnectionBudget,
    permit: Option<OwnedSemaphorePermit>,
    epoch: u64,
}

impl ConnectionBudget {
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, MAILCHIMP_CONNECTION_LIMIT);
        Self {
            max,
            inner: Mutex::new(Inner { limit: max as f64, debt: 0, in_flight: 0, epoch: 0 }),
            permits: Arc::new(Semaphore::new(max)),
        }
    }

    /// Waits until a request may start; waiting requests are served in the order they asked.
    pub async fn acquire(&self) -> Slot<'_> {
        let permit =
            self.permits.clone().acquire_owned().await.expect("the budget's semaphore is never closed");
        self.slot(permit)
    }

    /// A place in the queue: the order of reservations is the order of service once each has been
    /// polled (the writer polls it once as it builds the batch).
    pub fn reserve(&self) -> Reservation {
        Box::pin(self.permits.clone().acquire_owned())
    }

    /// Turns a permit obtained from a reservation into a slot.
    pub fn slot(&self, permit: OwnedSemaphorePermit) -> Slot<'_> {
        let mut inner = self.lock();
        inner.in_flight += 1;
        Slot { budget: self, permit: Some(permit), epoch: inner.epoch }
    }

    /// Mailchimp said too many requests: halve the allowance, once per burst.
    pub fn overloaded(&self, slot: &Slot<'_>) -> Option<Change> {
        let mut inner = self.lock();
        if slot.epoch != inner.epoch {
            return None;
        }
        let before = allowed(inner.limit);
        inner.limit = (inner.limit / 2.0).max(1.0);
        inner.epoch += 1;
        let after = allowed(inner.limit);
        if after >= before {
            return None;
        }
        // Permits in existence (free or held) are always `allowed(limit)` once the debt is paid.
        let withdraw = before - after;
        let forgotten = self.permits.forget_permits(withdraw);
        inner.debt += withdraw - forgotten;
        Some(Change::Lowered { to: after })
    }

    /// A request succeeded: grow the allowance by one request per `SUCCESSES_PER_STEP` allowances' worth
    /// of successes, so that probing for room costs few 429s.
    pub fn succeeded(&self) -> Option<Change> {
        let mut inner = self.lock();
        let before = allowed(inner.limit);
        inner.limit = (inner.limit + 1.0 / (SUCCESSES_PER_STEP * inner.limit)).min(self.max as f64);
        let after = allowed(inner.limit);
        if after <= before {
            return None;
        }
        let mut add = after - before;
        let repaid = add.min(inner.debt);
        inner.debt -= repaid;
        add -= repaid;
        self.permits.add_permits(add);
        Some(Change::Raised { to: after })
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Requests that may be in flight now.
    pub fn current(&self) -> usize {
        allowed(self.lock().limit)
    }

    pub fn max(&self) -> usize {
        self.max
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut inner = self.budget.lock();
        inner.in_flight -= 1;
        if let Some(permit) = self.permit.take() {
            if inner.debt > 0 {
                // The allowance was lowered while this request ran: its permit is withdrawn.
                inner.debt -= 1;
                permit.forget();
            }
        }
    }
}

fn allowed(limit: f64) -> usize {
    (limit.floor() as usize).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn never_more_than_ten() {
        assert_eq!(ConnectionBudget::new(50).max(), 10);
        assert_eq!(ConnectionBudget::new(0).current(), 1);
    }

    #[tokio::test]
    async fn one_burst_of_429s_halves_once_and_successes_win_it_back_slowly() {
        let budget = ConnectionBudget::new(8);
        let slots: Vec<Slot<'_>> = futures::future::join_all((0..8).map(|_| budget.acquire())).await;
        assert_eq!(budget.overloaded(&slots[0]), Some(Change::Lowered { to: 4 }));
        for slot in &slots[1..] {
            assert_eq!(budget.overloaded(slot), None, "the same burst lowers only once");
        }
        drop(slots);
        let slot = budget.acquire().await;
        assert_eq!(budget.overloaded(&slot), Some(Change::Lowered { to: 2 }));
        drop(slot);
        let mut successes = 0;
        while budget.current() < 8 {
            budget.succeeded();
            successes += 1;
        }
        // 2 → 8 by additive steps of 1/(2·limit): about 2·(2+3+…+7) successes.
        assert!((50..=70).contains(&successes), "{successes} successes to recover");
        budget.succeeded();
        assert_eq!(budget.current(), 8);
    }

    #[tokio::test]
    async fn a_lowered_allowance_holds_even_for_requests_already_running() {
        let budget = ConnectionBudget::new(8);
        let slots: Vec<Slot<'_>> = futures::future::join_all((0..8).map(|_| budget.acquire())).await;
        budget.overloaded(&slots[0]);
        drop(slots);
        // Four permits were withdrawn as the eight requests finished: only four can start now.
        assert_eq!(budget.permits.available_permits(), 4);
        assert_eq!(budget.in_flight(), 0);
        for _ in 0..200 {
            budget.succeeded();
        }
        assert_eq!(budget.permits.available_permits(), 8, "raised back to the maximum");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holds_no_more_requests_than_allowed() {
        let budget = Arc::new(ConnectionBudget::new(3));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (budget, running, peak) = (budget.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    let _slot = budget.acquire().await;
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }
}
