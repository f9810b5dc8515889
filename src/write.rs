//! The write command: stdin messages → the intake step → batches dispatched to their audiences →
//! STATE echoes, released strictly in input order once every record before them is answered (and,
//! with rejected records storage, once the rejected records before them are stored).

use crate::ack::AckQueue;
use crate::apply::{apply, Outcome, Policy};
use crate::audiences::{self, AudienceStreams};
use crate::batch::{request_body, Batch, Entry, EventEntry, Ready};
use crate::catalog::ConfiguredCatalog;
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::error::ConnectorError;
use crate::input::{InputEvent, InvalidLine, Lines};
use crate::intake::{Intake, Note, Rejected};
use crate::ledger::PendingState;
use crate::mailchimp::client::{self, Client, Notice};
use crate::mailchimp::member::EmailKey;
use crate::mailchimp::model::Audience;
use crate::mapping::Mapper;
use crate::progress::{Progress, PROGRESS_EVERY};
use crate::protocol::{state_echo, Incoming, Level, Output};
use crate::rejected::{RejectedStore, Rejection};
use crate::report::{saved_states, SyncReport};
use rustc_hash::FxHashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Records wait at most this long for their batch to fill, so a slow source still sees its states.
pub const FLUSH_AFTER: Duration = Duration::from_secs(5);
/// After SIGTERM or SIGINT, requests already sent get this long to finish.
pub const STOP_GRACE: Duration = Duration::from_secs(25);

/// A batch's answer; `None` when the sync stopped before the batch was sent.
type Answer = Result<Option<Outcome>, ConnectorError>;
/// What a batch's request task hands back: the batch's contacts and events (to count the answer)
/// and its answer.
type Answered = (Vec<Entry>, Vec<EventEntry>, Answer);

/// Where the run is: reading, input ended (or failed), or stopping after a signal.
#[derive(Default)]
struct Phase {
    input_closed: bool,
    /// Bad input ends reading, but what came before it is still written and its states released.
    input_failure: Option<ConnectorError>,
    /// The signal's name and when the grace period ends.
    stopping: Option<(&'static str, Instant)>,
}

/// What ended one turn of the loop.
enum Turn {
    Continue,
    Finished,
}

pub struct Writer<'a, W: Write> {
    out: &'a mut Output<W>,
    /// The configured audience's client; its connection budget, retries and closed flag are
    /// shared by every audience's client.
    client: Arc<Client>,
    /// One client per audience of the sync, in the order of the batches' `audience`.
    audiences: Vec<Arc<Client>>,
    policy: Arc<Policy>,
    rejected: Option<RejectedStore>,
    intake: Intake,
    dispatcher: Dispatcher<Answered>,
    acks: AckQueue<PendingState>,
    report: SyncReport,
    notices: mpsc::UnboundedReceiver<Notice>,
    progress: Progress,
}

impl<'a, W: Write> Writer<'a, W> {
    /// Reads each audience the catalog's streams write to (it must exist; its merge fields drive the
    /// mapping) and prepares the pipeline. Nothing is written before every audience is read.
    pub async fn connect(
        config: &Config,
        catalog: &ConfiguredCatalog,
        out: &'a mut Output<W>,
    ) -> Result<Self, ConnectorError> {
        let (notices_tx, notices) = mpsc::unbounded_channel();
        let client = Client::new(&config.client_settings())?.with_notices(notices_tx);
        let routes = audiences::group_streams(config, catalog)?;
        let rejected = match &config.rejected_storage {
            Some(settings) => Some(RejectedStore::new(settings, catalog.sync_id(), config.max_retry_time)?),
            None => None,
        };
        let clients: Vec<Client> = routes.iter().map(|route| client.for_list(&route.list_id)).collect();
        // Every audience is read at the same time (within the connection budget), while the catalog's
        // destination objects are looked up, then planned. An object that is not an audience the key
        // can see is the error to report, even when reading it failed too.
        let (objects, read) = tokio::join!(
            audiences::check_objects_exist(&client, catalog),
            futures::future::try_join_all(
                routes.iter().zip(&clients).map(|(route, client)| read_audience(route, client)),
            )
        );
        objects?;
        let read = read?;
        let mut mappers = Vec::new();
        for (route, (audience, existing)) in routes.iter().zip(read) {
            mappers.push(plan_audience(config, route, audience, existing, out)?);
        }
        let clients: Vec<Arc<Client>> = clients.into_iter().map(Arc::new).collect();
        out.log(Level::Info, &settings_summary(config))?;
        if let Some(store) = &rejected {
            out.log(Level::Info, &format!("Rejected records are stored in {}.", store.location()))?;
        }
        let intake = Intake::new(mappers, config.batch_size);
        Ok(Self {
            out,
            client: Arc::new(client),
            audiences: clients,
            policy: Arc::new(Policy::new(config)),
            intake: if rejected.is_some() { intake.keeping_originals() } else { intake },
            rejected,
            dispatcher: Dispatcher::default(),
            acks: AckQueue::default(),
            report: SyncReport::default(),
            notices,
            progress: Progress::new(Instant::now().into_std(), PROGRESS_EVERY),
        })
    }

    /// Runs until the input ends and every batch is answered, until something fails for good, or
    /// until `stop` delivers a signal's name (a second signal stops without waiting).
    pub async fn run(
        mut self,
        mut input: mpsc::Receiver<InputEvent>,
        mut stop: mpsc::Receiver<&'static str>,
    ) -> Result<(), ConnectorError> {
        let mut phase = Phase::default();
        let outcome = loop {
            match self.turn(&mut phase, &mut input, &mut stop).await {
                Ok(Turn::Continue) => {}
                Ok(Turn::Finished) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        // Whatever ended the loop, nothing more is sent.
        self.client.close();
        while let Ok(notice) = self.notices.try_recv() {
            self.out.log(level_of(notice.level), &notice.text)?;
        }
        outcome?;
        if let Some((signal, _)) = phase.stopping {
            return Err(self.stopped(signal));
        }
        if let Some(failure) = phase.input_failure {
            return Err(failure);
        }
        let started = crate::usage::process_started();
        self.report.first_write_after =
            self.client.first_write().map(|at| at.saturating_duration_since(started));
        self.summary(started.elapsed()).await
    }

    /// One turn: hands on what is ready, then waits for whichever comes first — a signal, a
    /// notice, an answer, input, the progress timer, the end of the grace period or the flush timer.
    async fn turn(
        &mut self,
        phase: &mut Phase,
        input: &mut mpsc::Receiver<InputEvent>,
        stop: &mut mpsc::Receiver<&'static str>,
    ) -> Result<Turn, ConnectorError> {
        self.hand_on_ready(phase.stopping.is_none()).await?;
        let drained = self.acks.is_empty();
        if drained && (phase.stopping.is_some() || (phase.input_closed && self.intake.is_idle())) {
            return Ok(Turn::Finished);
        }
        let flush_at = self.intake.open_since().map(|t| Instant::from_std(t) + FLUSH_AFTER);
        let stop_deadline = phase.stopping.map(|(_, deadline)| deadline);
        // The connection budget and two more: while requests run, the next batches are already built.
        let window = self.client.budget().max() + 2;
        tokio::select! {
            biased;
            Some(signal) = stop.recv() => self.on_signal(phase, signal),
            Some(notice) = self.notices.recv() => {
                self.out.log(level_of(notice.level), &notice.text).map(|()| Turn::Continue)
            }
            Some(answer) = self.dispatcher.next(), if !self.dispatcher.is_empty() => {
                self.complete(answer).await.map(|()| Turn::Continue)
            }
            chunk = input.recv(), if !phase.input_closed && self.acks.len() < window => {
                self.on_input(phase, chunk).map(|()| Turn::Continue)
            }
            _ = tokio::time::sleep_until(Instant::from_std(self.progress.next_at())) => {
                self.log_progress().map(|()| Turn::Continue)
            }
            _ = tokio::time::sleep_until(stop_deadline.unwrap_or_else(Instant::now)), if stop_deadline.is_some() => {
                Ok(Turn::Finished)
            }
            _ = tokio::time::sleep_until(flush_at.unwrap_or_else(|| Instant::now() + FLUSH_AFTER)),
                if flush_at.is_some() && phase.stopping.is_none() => {
                self.intake.flush();
                Ok(Turn::Continue)
            }
        }
    }

    /// A first signal stops reading and sending; a second one ends the run at once.
    fn on_signal(&mut self, phase: &mut Phase, signal: &'static str) -> Result<Turn, ConnectorError> {
        if phase.stopping.is_some() {
            return Ok(Turn::Finished);
        }
        phase.stopping = Some((signal, Instant::now() + STOP_GRACE));
        phase.input_closed = true;
        self.client.close();
        self.out.log(
            Level::Warn,
            &format!(
                "Received {signal}: reading stops and no new batch is sent; waiting up to {} s for the {} requests \
                 already sent.",
                STOP_GRACE.as_secs(),
                self.dispatcher.len()
            ),
        )?;
        Ok(Turn::Continue)
    }

    /// A chunk of input, or its end.
    fn on_input(&mut self, phase: &mut Phase, chunk: Option<InputEvent>) -> Result<(), ConnectorError> {
        let invalid = match chunk {
            Some(InputEvent::Lines(lines)) => self.take_lines(&lines)?,
            Some(InputEvent::Invalid(invalid)) => Some(invalid),
            None => {
                phase.input_closed = true;
                self.intake.flush();
                None
            }
        };
        if let Some(invalid) = invalid {
            self.intake.flush();
            phase.input_failure = Some(ConnectorError::system(format!(
                "{} The records before it were written and their states released; the source or platform sent \
                 malformed data, so the sync stops here.",
                invalid.message()
            )));
            phase.input_closed = true;
        }
        Ok(())
    }

    fn log_progress(&mut self) -> Result<(), ConnectorError> {
        let budget = self.client.budget();
        let snapshot = crate::progress::Snapshot {
            requests_in_flight: budget.in_flight(),
            requests_allowed: budget.current(),
            retries: self.client.retries(),
            ..self.report.snapshot(self.intake.counts())
        };
        let line = self.progress.line(std::time::Instant::now(), snapshot);
        self.out.log(Level::Info, &line)
    }

    /// The failure reported after a stop signal: what was saved and what the next sync does.
    fn stopped(&self, signal: &str) -> ConnectorError {
        let unfinished = self.acks.len();
        let mut message = format!(
            "The sync was stopped by {signal} before its input ended. {} after their records were written; \
             the next sync resumes after the last saved state.",
            saved_states(self.report.states_released)
        );
        if unfinished > 0 {
            message.push_str(&format!(
                " {unfinished} batches were not answered in time; the next sync sends them again, which is safe."
            ));
        }
        ConnectorError::transient(message)
    }

    /// Parses and takes a chunk of input lines; a malformed line ends the input there (what came
    /// before it is still written) and is returned.
    fn take_lines(&mut self, lines: &Lines) -> Result<Option<InvalidLine>, ConnectorError> {
        let now = std::time::Instant::now();
        for message in lines.messages() {
            match message {
                Ok(message) => self.take(message, now)?,
                Err(invalid) => return Ok(Some(invalid)),
            }
        }
        Ok(None)
    }

    fn take(&mut self, message: Incoming<'_>, now: std::time::Instant) -> Result<(), ConnectorError> {
        let rejected = self.intake.take(message, now);
        for note in self.intake.take_notes() {
            match note {
                Note::Discovered(text) => self.out.log(Level::Info, &text)?,
                Note::UnknownStream(text) => self.out.log(Level::Warn, &text)?,
            }
        }
        let Some(rejected) = rejected else { return Ok(()) };
        let Rejected { rejection, original } = *rejected;
        if let (Some(store), Some(original)) = (&mut self.rejected, &original) {
            store.add(original, &rejection, self.intake.counts().states);
        }
        // Records of a stream the catalog lacks were reported once, by stream.
        if rejection.reason == crate::mapping::UNKNOWN_STREAM {
            return Ok(());
        }
        self.log_rejection(None, &rejection.message)
    }

    /// Moves finished batches into flight and places states behind the batches they wait for.
    /// When stopping (`send` false), only states at the head of the queue move on.
    async fn hand_on_ready(&mut self, send: bool) -> Result<(), ConnectorError> {
        while let Some(ready) = if send { self.intake.pop_ready() } else { self.intake.pop_ready_state() } {
            match ready {
                Ready::Batch(batch) => self.dispatch(batch),
                Ready::State(state) => {
                    if let Some(state) = self.acks.state(state) {
                        self.release(state).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts the request for a batch: it waits for earlier batches that hold one of its emails,
    /// then for a free connection.
    fn dispatch(&mut self, batch: Batch) {
        let Batch { seq, audience, entries, events, states } = batch;
        self.report.contacts_sent += entries.len() as u64;
        // Serialized here, on the pipeline thread, while earlier requests are in flight.
        let body = request_body(&entries);
        let keys = batch_keys(&entries, &events);
        let (client, policy) = (Arc::clone(&self.audiences[audience]), Arc::clone(&self.policy));
        self.dispatcher.dispatch(seq, &keys, self.client.budget(), move |first| async move {
            let answer = apply(&client, &policy, &entries, &events, body, first).await;
            (entries, events, answer)
        });
        self.acks.sent(seq, states);
    }

    /// Handles the answer to the oldest batch in flight: counts outcomes, then releases its states.
    async fn complete(
        &mut self,
        answer: Result<(u64, Answered), tokio::task::JoinError>,
    ) -> Result<(), ConnectorError> {
        let (seq, (entries, events, answer)) =
            answer.map_err(|e| ConnectorError::system(format!("A request task failed: {e}")))?;
        let outcome = match answer {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                // Not sent because the sync is stopping: nothing after it may be confirmed.
                self.acks.halt();
                self.acks.answered(seq);
                return Ok(());
            }
            Err(mut error) => {
                error.message.push_str(&format!(
                    " The sync stopped there; {} after their records were written, and the next sync resumes \
                     after the last saved state.",
                    saved_states(self.report.states_released)
                ));
                return Err(error);
            }
        };
        self.dispatcher.answered(seq, batch_keys(&entries, &events).into_iter());
        self.report.answered(outcome.created, outcome.updated, &outcome.effects);
        self.settle_events(&events, &outcome)?;
        for entry in entries.iter() {
            let reason = outcome.rejected.get(&entry.member.key).map(|r| format!("Mailchimp: {r}"));
            for tally in &entry.tallies {
                self.intake.settle(*tally, reason.is_none());
            }
            if let Some(reason) = reason {
                self.report.refused(&reason, entry.tallies.len() as u64);
                self.log_rejection(Some(&entry.member.email_address), &reason)?;
                if let Some(store) = &mut self.rejected {
                    // Every state not yet released may come after these records.
                    let (rejection, released) = (Rejection::refused(reason), self.report.states_released);
                    entry.originals.iter().for_each(|original| store.add(original, &rejection, released));
                }
            }
        }
        if self.rejected.as_ref().is_some_and(RejectedStore::is_full) {
            self.store_rejected().await?;
        }
        for state in self.acks.answered(seq) {
            self.release(state).await?;
        }
        Ok(())
    }

    /// Counts a batch's events: stored, or rejected (logged, and stored with rejected records).
    fn settle_events(&mut self, events: &[EventEntry], outcome: &Outcome) -> Result<(), ConnectorError> {
        self.report.events_stored += outcome.events_stored;
        for (at, entry) in events.iter().enumerate() {
            let reason = outcome.events_rejected.get(&at);
            self.intake.settle(entry.tally, reason.is_none());
            let Some(reason) = reason else { continue };
            self.report.refused(reason, 1);
            self.log_rejection(Some(&entry.event.email_address), reason)?;
            if let (Some(store), Some(original)) = (&mut self.rejected, &entry.original) {
                let rejection =
                    Rejection { reason: "event not stored", field: None, message: reason.clone() };
                store.add(original, &rejection, self.report.states_released);
            }
        }
        Ok(())
    }

    /// Writes the rejected records waiting to be stored; a failure ends the sync (after the
    /// store's retries) and no later state is released.
    async fn store_rejected(&mut self) -> Result<(), ConnectorError> {
        let Some(store) = &mut self.rejected else { return Ok(()) };
        if !store.has_pending() {
            return Ok(());
        }
        store.store().await.map_err(|mut error| {
            error.message.push_str(&format!(
                " The sync stopped there; {} after their records were written, and the next sync resumes \
                 after the last saved state.",
                saved_states(self.report.states_released)
            ));
            error
        })
    }

    /// Echoes a state once the rejected records before it are stored.
    async fn release(&mut self, state: PendingState) -> Result<(), ConnectorError> {
        // States are released in input order, so this is the input's next state.
        let nth = self.report.states_released + 1;
        if self.rejected.as_ref().is_some_and(|store| store.holds_back(nth)) {
            self.store_rejected().await?;
        }
        self.report.states_released += 1;
        let (accepted, rejected) = self.intake.counts_of(&state);
        self.out.send_line(&state_echo(&state.state, accepted, rejected))
    }

    /// Reports a rejected record (masked) while the per-sync log budget lasts.
    fn log_rejection(&mut self, email: Option<&str>, reason: &str) -> Result<(), ConnectorError> {
        for line in self.report.rejection_lines(email, reason) {
            self.out.log(Level::Warn, &line)?;
        }
        Ok(())
    }

    async fn summary(&mut self, elapsed: Duration) -> Result<(), ConnectorError> {
        // Rejections after the last state are stored too, before the sync reports success.
        self.store_rejected().await?;
        let warnings: Vec<String> = self
            .intake
            .mappers()
            .iter()
            .flat_map(|mapper| mapper.dropped_values().into_iter().chain(mapper.unknown_statuses()))
            .collect();
        for line in warnings {
            self.out.log(Level::Warn, &line)?;
        }
        if let Some(store) = &self.rejected {
            let stored = store.stored();
            if stored > 0 {
                let what = crate::rejected::rejected_records(stored);
                self.out.log(Level::Info, &format!("Stored {what} in {}.", store.location()))?;
            }
        }
        let peak = crate::usage::peak_memory_bytes();
        for line in self.report.summary(self.intake.counts(), elapsed, peak) {
            self.out.log(Level::Info, &line)?;
        }
        Ok(())
    }
}

/// The emails a batch touches (contacts and events): a later batch with one of them waits for it.
fn batch_keys(entries: &[Entry], events: &[EventEntry]) -> Vec<EmailKey> {
    entries.iter().map(|e| e.member.key).chain(events.iter().map(|e| e.event.key)).collect()
}

/// Reads one audience of the sync: its fields and groups, and who is in it when a stream only
/// updates.
async fn read_audience(
    route: &AudienceStreams,
    client: &Client,
) -> Result<(Audience, Option<FxHashSet<EmailKey>>), ConnectorError> {
    let existing = async {
        match route.has_update_stream() {
            true => audiences::existing_contacts(client).await.map(Some),
            false => Ok(None),
        }
    };
    let (audience, existing) = tokio::join!(client.audience(), existing);
    Ok((audience?, existing?))
}

/// Logs what the sync will do in an audience and returns the mapping of its streams.
fn plan_audience<W: Write>(
    config: &Config,
    route: &AudienceStreams,
    audience: Audience,
    existing: Option<FxHashSet<EmailKey>>,
    out: &mut Output<W>,
) -> Result<Mapper, ConnectorError> {
    let (list, merge_fields) = (&audience.list, &audience.merge_fields);
    let tags: Vec<&str> = merge_fields.iter().map(|f| f.tag.as_str()).collect();
    let streams: Vec<String> =
        route.catalog.streams.iter().map(|s| format!("{} ({})", s.key(), s.mode().as_str())).collect();
    out.log(
        Level::Info,
        &format!(
            "Writing to the Mailchimp audience '{}' (List ID {}, {} contacts; merge fields: {}) from the streams {}.",
            list.name,
            list.id,
            list.stats.member_count,
            if tags.is_empty() { "none".to_string() } else { tags.join(", ") },
            streams.join(", "),
        ),
    )?;
    if let Some(existing) = &existing {
        out.log(
            Level::Info,
            &format!(
                "Read who is in the audience '{}' for its update-only streams: {} contacts; records of anyone \
                 else are rejected as not in the audience.",
                list.name,
                existing.len()
            ),
        )?;
    }
    let mapper = Mapper::new(
        &audiences::config_for(config, route),
        &route.catalog,
        merge_fields,
        &audience.categories,
    )?
    .with_gdpr(list.marketing_permissions)
    .with_existing(existing)
    .with_events(&route.events, config.events_start_automations);
    for (complete, line) in mapper.plan_report() {
        out.log(if complete { Level::Info } else { Level::Warn }, &line)?;
    }
    if let Some(warning) = mapper.permissions_not_applicable() {
        out.log(Level::Warn, &warning)?;
    }
    Ok(mapper)
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

/// A client notice's level as a protocol LOG level.
fn level_of(level: client::Level) -> Level {
    match level {
        client::Level::Info => Level::Info,
        client::Level::Warn => Level::Warn,
    }
}
