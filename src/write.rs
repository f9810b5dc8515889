//! The write pipeline: stdin messages → members → batches → concurrent Mailchimp requests →
//! STATE echoes, released strictly in input order once every record before them is answered.

use crate::apply::{apply, Outcome, Policy};
use crate::batch::{request_body, Batch, Batcher, Entry, Ready};
use crate::catalog::ConfiguredCatalog;
use crate::config::Config;
use crate::effects::Effects;
use crate::error::ConnectorError;
use crate::input::InputEvent;
use crate::ledger::{Ledger, PendingState};
use crate::mailchimp::budget::Reservation;
use crate::mailchimp::client::{Client, Notice};
use crate::mailchimp::member::EmailKey;
use crate::mapping::{Mapped, Mapper, UNKNOWN_STREAM};
use crate::progress::{rate, thousands, Progress, Snapshot, PROGRESS_EVERY};
use crate::protocol::{state_echo, state_scope, Incoming, Level, Output, StreamKey};
use crate::redact::mask_email;
use futures::stream::{FuturesOrdered, StreamExt};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Records wait at most this long for their batch to fill, so a slow source still sees its states.
pub const FLUSH_AFTER: Duration = Duration::from_secs(5);
/// Rejections logged one by one; beyond this they are only counted (in the final summary).
const REJECTIONS_LOGGED: u64 = 100;
/// After SIGTERM or SIGINT, requests already sent get this long to finish.
pub const STOP_GRACE: Duration = Duration::from_secs(25);

/// A batch's answer; `None` when the sync stopped before the batch was sent.
type Answer = Result<Option<Outcome>, ConnectorError>;
type RequestTask = JoinHandle<Answer>;

/// A batch's place in the connection queue, taken when the batch is built.
enum Ticket {
    Held(Result<tokio::sync::OwnedSemaphorePermit, tokio::sync::AcquireError>),
    Queued(Reservation),
}

/// A batch sent to Mailchimp, waiting for its answer in the in-order queue.
struct InFlight {
    seq: u64,
    entries: Arc<Vec<Entry>>,
    /// States released when this batch (and every batch before it) is answered.
    states: Vec<PendingState>,
}

/// Totals for the end-of-sync summary.
#[derive(Default)]
struct Totals {
    records: u64,
    created: u64,
    updated: u64,
    rejected: BTreeMap<String, u64>,
    effects: Effects,
}

pub struct Writer<'a, W: Write> {
    out: &'a mut Output<W>,
    client: Arc<Client>,
    policy: Arc<Policy>,
    mapper: Mapper,
    batcher: Batcher,
    ledger: Ledger,
    requests: FuturesOrdered<RequestTask>,
    in_flight: VecDeque<InFlight>,
    /// Emails in batches not yet answered, with the batch that holds them: a later batch with the
    /// same email waits for that answer, so the last record always wins.
    pending_emails: FxHashMap<EmailKey, (u64, watch::Receiver<bool>)>,
    notices: mpsc::UnboundedReceiver<Notice>,
    window: usize,
    /// Set once a batch was not sent (the sync is stopping): no later state may be released.
    halted: bool,
    states_released: u64,
    contacts_sent: u64,
    progress: Progress,
    unknown_streams: HashSet<StreamKey>,
    totals: Totals,
    rejections_logged: u64,
}

impl<'a, W: Write> Writer<'a, W> {
    /// Reads the audience (it must exist; its merge fields drive the mapping) and prepares the pipeline.
    pub async fn connect(
        config: &Config,
        catalog: &ConfiguredCatalog,
        out: &'a mut Output<W>,
    ) -> Result<Self, ConnectorError> {
        let (notices_tx, notices) = mpsc::unbounded_channel();
        let client = Client::new(&config.client_settings())?.with_notices(notices_tx);
        let (list, merge_fields) = client.audience().await?;
        let tags: Vec<&str> = merge_fields.iter().map(|f| f.tag.as_str()).collect();
        out.log(
            Level::Info,
            &format!(
                "Writing to the Mailchimp audience '{}' (List ID {}, {} contacts; merge fields: {}). {}",
                list.name,
                list.id,
                list.stats.member_count,
                if tags.is_empty() { "none".to_string() } else { tags.join(", ") },
                settings_summary(config),
            ),
        )?;
        let mapper = Mapper::new(config, catalog, &merge_fields)?;
        for (complete, line) in mapper.plan_report() {
            out.log(if complete { Level::Info } else { Level::Warn }, &line)?;
        }
        Ok(Self {
            out,
            client: Arc::new(client),
            policy: Arc::new(Policy::new(config)),
            mapper,
            batcher: Batcher::new(config.batch_size),
            ledger: Ledger::default(),
            requests: FuturesOrdered::new(),
            in_flight: VecDeque::new(),
            pending_emails: FxHashMap::default(),
            notices,
            // Twice the connection budget: while requests run, the next batches are already built.
            window: config.max_concurrent_requests * 2,
            halted: false,
            states_released: 0,
            contacts_sent: 0,
            progress: Progress::new(Instant::now().into_std(), PROGRESS_EVERY),
            unknown_streams: HashSet::new(),
            totals: Totals::default(),
            rejections_logged: 0,
        })
    }

    /// Runs until the input ends and every batch is answered, until something fails for good, or
    /// until `stop` delivers a signal's name (a second signal stops without waiting).
    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<Vec<InputEvent>>,
        mut stop: mpsc::Receiver<&'static str>,
    ) -> Result<(), ConnectorError> {
        let started = Instant::now();
        let mut input_open = true;
        // Bad input ends reading, but what came before it is still written and its states released.
        let mut input_failure: Option<ConnectorError> = None;
        let mut stopping: Option<(&'static str, Instant)> = None;
        let outcome = loop {
            if let Err(error) = self.hand_on_ready(stopping.is_none()) {
                break Err(error);
            }
            let drained = self.in_flight.is_empty();
            if drained && (stopping.is_some() || (!input_open && self.batcher.is_idle())) {
                break Ok(());
            }
            let flush_at = self.batcher.open_since().map(|t| Instant::from_std(t) + FLUSH_AFTER);
            let stop_deadline = stopping.map(|(_, deadline)| deadline);
            let result = tokio::select! {
                biased;
                Some(signal) = stop.recv() => {
                    if stopping.is_some() {
                        break Ok(());
                    }
                    stopping = Some((signal, Instant::now() + STOP_GRACE));
                    input_open = false;
                    self.client.close();
                    self.out.log(
                        Level::Warn,
                        &format!(
                            "Received {signal}: reading stops and no new batch is sent; waiting up to {} s for the \
                             {} requests already sent.",
                            STOP_GRACE.as_secs(),
                            self.requests.len()
                        ),
                    )
                }
                Some(notice) = self.notices.recv() => self.out.log(level_of(notice.level), &notice.text),
                Some(answer) = self.requests.next(), if !self.requests.is_empty() => self.complete(answer),
                chunk = input.recv(), if input_open && self.in_flight.len() < self.window => {
                    match chunk.map(|events| self.take_chunk(events)) {
                        Some(Ok(None)) => Ok(()),
                        Some(Ok(Some(failure))) => {
                            input_failure = Some(failure);
                            input_open = false;
                            Ok(())
                        }
                        Some(Err(error)) => Err(error),
                        None => {
                            input_open = false;
                            self.batcher.flush();
                            Ok(())
                        }
                    }
                }
                _ = tokio::time::sleep_until(Instant::from_std(self.progress.next_at())) => {
                    let line = self.progress.line(std::time::Instant::now(), self.snapshot());
                    self.out.log(Level::Info, &line)
                }
                _ = tokio::time::sleep_until(stop_deadline.unwrap_or_else(Instant::now)), if stop_deadline.is_some() => {
                    break Ok(());
                }
                _ = tokio::time::sleep_until(flush_at.unwrap_or_else(|| Instant::now() + FLUSH_AFTER)), if flush_at.is_some() && stopping.is_none() => {
                    self.batcher.flush();
                    Ok(())
                }
            };
            if let Err(error) = result {
                break Err(error);
            }
        };
        // Whatever ended the loop, nothing more is sent.
        self.client.close();
        while let Ok(notice) = self.notices.try_recv() {
            self.out.log(level_of(notice.level), &notice.text)?;
        }
        outcome?;
        if let Some((signal, _)) = stopping {
            return Err(self.stopped(signal));
        }
        if let Some(failure) = input_failure {
            return Err(failure);
        }
        self.summary(started.elapsed())
    }

    fn snapshot(&self) -> Snapshot {
        let budget = self.client.budget();
        Snapshot {
            records_read: self.totals.records,
            contacts_sent: self.contacts_sent,
            rejected: self.totals.rejected.values().sum(),
            states_saved: self.states_released,
            requests_in_flight: budget.in_flight(),
            requests_allowed: budget.current(),
            retries: self.client.retries(),
        }
    }

    /// The failure reported after a stop signal: what was saved and what the next sync does.
    fn stopped(&self, signal: &str) -> ConnectorError {
        let unfinished = self.in_flight.len();
        let mut message = format!(
            "The sync was stopped by {signal} before its input ended. {} after their records were written; \
             the next sync resumes after the last saved state.",
            saved_states(self.states_released)
        );
        if unfinished > 0 {
            message.push_str(&format!(
                " {unfinished} batches were not answered in time; the next sync sends them again, which is safe."
            ));
        }
        ConnectorError::transient(message)
    }

    /// Handles a chunk of input. A malformed line ends the input: what came before it is still
    /// written, and the failure to report at the end is returned.
    fn take_chunk(&mut self, events: Vec<InputEvent>) -> Result<Option<ConnectorError>, ConnectorError> {
        for event in events {
            match event {
                InputEvent::Message(message) => self.handle(message)?,
                InputEvent::Invalid { line, reason, excerpt } => {
                    self.batcher.flush();
                    return Ok(Some(ConnectorError::system(format!(
                        "{} The records before it were written and their states released; the source or \
                         platform sent malformed data, so the sync stops here.",
                        crate::input::invalid_line(line, &reason, &excerpt)
                    ))));
                }
            }
        }
        Ok(None)
    }

    fn handle(&mut self, message: Incoming) -> Result<(), ConnectorError> {
        match message {
            Incoming::Record(mut record) => {
                self.totals.records += 1;
                if !self.mapper.resolve_stream_in_place(&mut record.stream) {
                    let tally = self.ledger.tally_for(&record.stream);
                    self.ledger.settle(tally, false);
                    self.count_rejection(UNKNOWN_STREAM);
                    if self.unknown_streams.insert(record.stream.clone()) {
                        let text = format!(
                            "Skipping records of stream '{}': it is not in the configured catalog.",
                            record.stream
                        );
                        self.out.log(Level::Warn, &text)?;
                    }
                    return Ok(());
                }
                let tally = self.ledger.tally_for(&record.stream);
                let mapped = self.mapper.map(&record.stream, record.data);
                for line in self.mapper.take_discovered() {
                    self.out.log(Level::Info, &line)?;
                }
                match mapped {
                    Mapped::Member(member) => {
                        self.batcher.push_member(member, tally, std::time::Instant::now())
                    }
                    Mapped::Rejected(reason) => {
                        self.ledger.settle(tally, false);
                        self.reject(None, &reason)?;
                    }
                    Mapped::DeletionIgnored => {
                        // Handled as configured: counted as written, and reported in the summary.
                        self.ledger.settle(tally, true);
                        self.totals.effects.deletions_ignored += 1;
                    }
                }
            }
            Incoming::State(state) => {
                let mut scope = state_scope(&state);
                if let crate::protocol::StateScope::Stream(key) = &scope {
                    if let Some(resolved) = self.mapper.resolve_stream(key) {
                        scope = crate::protocol::StateScope::Stream(resolved);
                    }
                }
                let pending = self.ledger.close(state, &scope);
                self.batcher.push_state(pending);
            }
            Incoming::Ignored => {}
        }
        Ok(())
    }

    /// Moves finished batches into flight and places states behind the batches they wait for.
    /// When stopping (`send` false), only states at the head of the queue move on.
    fn hand_on_ready(&mut self, send: bool) -> Result<(), ConnectorError> {
        while let Some(ready) = if send { self.batcher.pop_ready() } else { self.batcher.pop_ready_state() } {
            match ready {
                Ready::Batch(batch) => self.dispatch(batch),
                Ready::State(state) => match self.in_flight.back_mut() {
                    Some(last) => last.states.push(state),
                    None => self.release(state)?,
                },
            }
        }
        Ok(())
    }

    /// Starts the request for a batch. It waits for earlier batches that hold one of its emails,
    /// then for a free connection.
    fn dispatch(&mut self, batch: Batch) {
        let Batch { seq, entries, states } = batch;
        self.contacts_sent += entries.len() as u64;
        // Serialized here, on the pipeline thread, while earlier requests are in flight.
        let body = request_body(&entries);
        let entries = Arc::new(entries);

        let (done_tx, done_rx) = watch::channel(false);
        let mut earlier: Vec<(u64, watch::Receiver<bool>)> = Vec::new();
        for entry in entries.iter() {
            if let Some((other_seq, other_done)) = self.pending_emails.get(&entry.member.key) {
                if !*other_done.borrow() && !earlier.iter().any(|(s, _)| s == other_seq) {
                    earlier.push((*other_seq, other_done.clone()));
                }
            }
            self.pending_emails.insert(entry.member.key, (seq, done_rx.clone()));
        }

        // A batch that waits for no earlier one takes its place in the connection queue now, so
        // that batches are sent in the order they were built (and their states come back sooner).
        let ticket = earlier.is_empty().then(|| {
            let mut queued = self.client.budget().reserve();
            let mut context = std::task::Context::from_waker(futures::task::noop_waker_ref());
            match std::future::Future::poll(queued.as_mut(), &mut context) {
                std::task::Poll::Ready(permit) => Ticket::Held(permit),
                std::task::Poll::Pending => Ticket::Queued(queued),
            }
        });
        let client = Arc::clone(&self.client);
        let policy = Arc::clone(&self.policy);
        let batch_entries = Arc::clone(&entries);
        self.requests.push_back(tokio::spawn(async move {
            for (_, mut done) in earlier {
                let _ = done.wait_for(|answered| *answered).await;
            }
            let first = match ticket {
                Some(Ticket::Held(permit)) => Some(permit),
                Some(Ticket::Queued(queued)) => Some(queued.await),
                None => None,
            }
            .map(|permit| permit.expect("the budget's semaphore is never closed"));
            let answer = apply(&client, &policy, &batch_entries, body, first).await;
            let _ = done_tx.send(true);
            answer
        }));
        self.in_flight.push_back(InFlight { seq, entries, states });
    }

    /// Handles the answer to the oldest batch in flight: counts outcomes, then releases its states.
    fn complete(&mut self, answer: Result<Answer, tokio::task::JoinError>) -> Result<(), ConnectorError> {
        let batch = self.in_flight.pop_front().expect("every request has its batch in the queue");
        let answer = answer.map_err(|e| ConnectorError::system(format!("A request task failed: {e}")))?;
        let outcome = match answer {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                // Not sent because the sync is stopping: nothing after it may be confirmed.
                self.halted = true;
                return Ok(());
            }
            Err(mut error) => {
                error.message.push_str(&format!(
                    " The sync stopped there; {} after their records were written, and the next sync resumes \
                     after the last saved state.",
                    saved_states(self.states_released)
                ));
                return Err(error);
            }
        };
        if self.halted {
            return Ok(());
        }
        for entry in batch.entries.iter() {
            if self.pending_emails.get(&entry.member.key).is_some_and(|(seq, _)| *seq == batch.seq) {
                self.pending_emails.remove(&entry.member.key);
            }
        }
        self.totals.created += outcome.created;
        self.totals.updated += outcome.updated;
        self.totals.effects.add(&outcome.effects);
        let rejected = outcome.rejected;
        for entry in batch.entries.iter() {
            let reason = rejected.get(&entry.member.key);
            for tally in &entry.tallies {
                self.ledger.settle(*tally, reason.is_none());
            }
            if let Some(reason) = reason {
                for _ in 1..entry.tallies.len() {
                    self.count_rejection(&format!("Mailchimp: {reason}"));
                }
                self.reject(Some(&entry.member.email_address), &format!("Mailchimp: {reason}"))?;
            }
        }
        for state in batch.states {
            self.release(state)?;
        }
        Ok(())
    }

    fn release(&mut self, state: PendingState) -> Result<(), ConnectorError> {
        if self.halted {
            return Ok(());
        }
        self.states_released += 1;
        let (accepted, rejected) = self.ledger.take_counts(&state);
        self.out.send(&state_echo(state.state, accepted, rejected))
    }

    fn count_rejection(&mut self, reason: &str) {
        *self.totals.rejected.entry(reason.to_string()).or_default() += 1;
    }

    /// Counts a rejected record and reports it (masked) while the per-sync log budget lasts.
    fn reject(&mut self, email: Option<&str>, reason: &str) -> Result<(), ConnectorError> {
        self.count_rejection(reason);
        self.rejections_logged += 1;
        if self.rejections_logged <= REJECTIONS_LOGGED {
            let who = email.map(|e| format!(" {}", mask_email(e))).unwrap_or_default();
            self.out.log(Level::Warn, &format!("Rejected record{who}: {reason}"))?;
            if self.rejections_logged == REJECTIONS_LOGGED {
                self.out.log(
                    Level::Warn,
                    "Further rejections are counted in the summary at the end of the sync.",
                )?;
            }
        }
        Ok(())
    }

    fn summary(&mut self, elapsed: Duration) -> Result<(), ConnectorError> {
        for line in self.mapper.dropped_values().into_iter().chain(self.mapper.unknown_statuses()) {
            self.out.log(Level::Warn, &line)?;
        }
        for line in self.totals.effects.lines("were") {
            self.out.log(Level::Info, &line)?;
        }
        let rejected: u64 = self.totals.rejected.values().sum();
        let mut text = format!(
            "Sync finished in {:.1} s ({} records/s): {} records read; {} contacts created, {} updated; {} records \
             rejected",
            elapsed.as_secs_f64(),
            rate(self.totals.records, elapsed),
            thousands(self.totals.records),
            thousands(self.totals.created),
            thousands(self.totals.updated),
            thousands(rejected)
        );
        if rejected > 0 {
            let reasons: Vec<String> =
                self.totals.rejected.iter().map(|(reason, n)| format!("{n} × {reason}")).collect();
            text.push_str(&format!(" ({})", reasons.join("; ")));
        }
        text.push('.');
        if let Some(peak) = crate::usage::peak_memory_bytes() {
            text.push_str(&format!(" Peak memory {:.0} MB.", peak as f64 / 1e6));
        }
        self.out.log(Level::Info, &text)
    }
}

/// The settings that decide what happens to existing contacts, in words.
fn settings_summary(config: &Config) -> String {
    let status = match &config.status_field {
        None => format!(
            "New contacts get status '{}'; existing contacts keep theirs.",
            config.status_if_new.as_str()
        ),
        Some(field) => format!(
            "Statuses come from the field '{field}' (new contacts without one get '{}'); re-subscriptions \
             Mailchimp forbids are {}.",
            config.status_if_new.as_str(),
            match config.resubscribe_policy {
                crate::config::ResubscribePolicy::Skip => "skipped",
                crate::config::ResubscribePolicy::Pending => "set to pending (a confirmation email)",
            }
        ),
    };
    let tags = match &config.owned_tag_prefix {
        None => "Tags are only added.".to_string(),
        Some(prefix) => {
            format!("Tags starting with '{prefix}' are owned by this sync: stale ones are removed.")
        }
    };
    format!("{status} Records deleted at the source: {}. {tags}", config.on_delete.as_str())
}

fn saved_states(count: u64) -> String {
    match count {
        0 => "no state was saved".into(),
        1 => "1 state was saved".into(),
        n => format!("{n} states were saved"),
    }
}

/// A client notice's level as a protocol LOG level.
fn level_of(level: crate::mailchimp::client::Level) -> Level {
    match level {
        crate::mailchimp::client::Level::Info => Level::Info,
        crate::mailchimp::client::Level::Warn => Level::Warn,
    }
}
