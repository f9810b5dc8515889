//! The Mailchimp client: authenticated requests, retries within a time budget, and user-facing errors.

use super::budget::{Change, ConnectionBudget};
use super::event::Event;
use super::model::{
    AddressesPage, ApiError, Audience, BatchResponse, CategoriesPage, Category, Interest, InterestsPage,
    ListInfo, ListsPage, MemberSummary, MembersPage, MergeField, MergeFieldsPage, PermissionsPage, Problem,
};
use super::outcome::{classify, Backoff, Call, Outcome};
use crate::error::{ConnectorError, FailureType};
use crate::redact::{excerpt, Secrets};
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::OwnedSemaphorePermit;

/// The user name of HTTP Basic authentication (Mailchimp accepts any; the key is the password).
const BASIC_USER: &str = "destination-mailchimp";

/// One request: which call, and what is sent.
struct Request {
    call: Call,
    method: Method,
    path: String,
    body: Option<bytes::Bytes>,
}

/// Items per page of a collection (Mailchimp's maximum).
const PAGE: usize = 1000;

/// Mailchimp cancels calls after 120 s; waiting longer is pointless.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A Mailchimp API key. It is never printed: `Debug` and `Display` show a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What the client needs to know: where Mailchimp is, which audience, the key, and its limits.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// API root without a trailing slash, e.g. `https://us6.api.mailchimp.com/3.0`.
    pub base_url: String,
    pub list_id: String,
    pub api_key: ApiKey,
    /// At most this many requests at once (Mailchimp allows 10 connections per user).
    pub max_concurrent_requests: usize,
    /// How long a failing request is retried before the failure is final.
    pub max_retry_time: Duration,
    pub skip_merge_validation: bool,
}

/// How much a notice matters to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

/// Something the user should see in the sync's log (retries, concurrency changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub level: Level,
    pub text: String,
}

/// The answer to a call on one contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// Mailchimp has no such contact (404): already archived, deleted, or never there.
    NotFound,
}

/// What became of a posted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventPosted {
    Stored,
    /// No such contact in the audience (404): the event is not stored.
    NotInAudience,
    /// Mailchimp refused the event itself (400), with its reason.
    Refused(String),
}

/// A page of a contact's events, read only to recognise one.
#[derive(Debug, Deserialize)]
struct EventsPage {
    #[serde(default)]
    events: Vec<serde_json::Value>,
}

/// A successful exchange: the decoded answer, or a 404 where that is an answer.
enum Reply<T> {
    Answer(T),
    NotFound,
}

/// The Mailchimp API for one audience. Its fields are the connection (HTTP client, URL, audience,
/// key), the retry limits, the connection budget and the counters the sync reports, all read on
/// every call; grouping them further would only add indirection. The budget, the closed flag and
/// the counters are shared with the clients of other audiences made by [`Client::for_list`]: the
/// connection limit is per Mailchimp account.
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    list_id: String,
    api_key: ApiKey,
    max_retry_time: Duration,
    backoff: Backoff,
    skip_merge_validation: bool,
    budget: Arc<ConnectionBudget>,
    notices: Option<UnboundedSender<Notice>>,
    /// Set when the sync stops: batches not yet sent are not sent; sent ones finish.
    closed: Arc<AtomicBool>,
    retries: Arc<AtomicU64>,
    /// When the first request that writes was sent.
    first_write: Arc<OnceLock<Instant>>,
}

impl Client {
    pub fn new(config: &ClientSettings) -> Result<Self, ConnectorError> {
        Ok(Self {
            http: http_client(config.max_concurrent_requests, REQUEST_TIMEOUT, CONNECT_TIMEOUT)?,
            base_url: config.base_url.clone(),
            list_id: config.list_id.clone(),
            api_key: config.api_key.clone(),
            max_retry_time: config.max_retry_time,
            backoff: Backoff::default(),
            skip_merge_validation: config.skip_merge_validation,
            budget: Arc::new(ConnectionBudget::new(config.max_concurrent_requests)),
            notices: None,
            closed: Arc::new(AtomicBool::new(false)),
            retries: Arc::new(AtomicU64::new(0)),
            first_write: Arc::default(),
        })
    }

    /// A client for another audience of the same account, sharing this one's connections,
    /// connection budget, closed flag, retry counter and notices.
    pub fn for_list(&self, list_id: &str) -> Client {
        Client {
            http: self.http.clone(),
            base_url: self.base_url.clone(),
            list_id: list_id.to_string(),
            api_key: self.api_key.clone(),
            max_retry_time: self.max_retry_time,
            backoff: self.backoff,
            skip_merge_validation: self.skip_merge_validation,
            budget: Arc::clone(&self.budget),
            notices: self.notices.clone(),
            closed: Arc::clone(&self.closed),
            retries: Arc::clone(&self.retries),
            first_write: Arc::clone(&self.first_write),
        }
    }

    /// The audience this client writes to.
    pub fn list_id(&self) -> &str {
        &self.list_id
    }

    /// Replaces the request and connect timeouts (tests use short ones).
    pub fn with_timeouts(mut self, request: Duration, connect: Duration) -> Result<Self, ConnectorError> {
        self.http = http_client(self.budget.max(), request, connect)?;
        Ok(self)
    }

    /// Replaces the backoff between attempts (tests use short ones).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sends retries and concurrency changes to `notices` as well as to the diagnostic log.
    pub fn with_notices(mut self, notices: UnboundedSender<Notice>) -> Self {
        self.notices = Some(notices);
        self
    }

    /// From now on, batches that have not been sent yet are not sent (see `batch_subscribe`).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// When the first request that writes (to any audience) was sent.
    pub fn first_write(&self) -> Option<Instant> {
        self.first_write.get().copied()
    }

    /// Retries so far, over all requests.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The connection budget shared by this client's requests.
    pub fn budget(&self) -> &ConnectionBudget {
        &self.budget
    }

    /// Limits how long failed requests are retried (check uses a short budget).
    pub fn with_max_retry_time(mut self, limit: Duration) -> Self {
        self.max_retry_time = limit;
        self
    }

    /// `GET /ping`: the key is accepted and the API is reachable.
    pub async fn ping(&self) -> Result<(), ConnectorError> {
        self.call::<serde::de::IgnoredAny>(Call::Ping, Method::GET, "/ping".into(), None).await.map(|_| ())
    }

    /// `GET /lists`: every audience the key can see (all pages), with its name and contact count.
    pub async fn lists(&self) -> Result<Vec<ListInfo>, ConnectorError> {
        let path = |offset| {
            format!(
                "/lists?count={PAGE}&offset={offset}&fields=lists.id,lists.name,lists.double_optin,\
                 lists.marketing_permissions,lists.stats.member_count,lists.stats.unsubscribe_count,\
                 lists.stats.cleaned_count,total_items"
            )
        };
        self.all_pages(Call::Lists, path, |page: ListsPage| (page.lists, page.total_items)).await
    }

    /// Every item of a collection, `PAGE` at a time, until the total is read or a page comes back
    /// short. `path` gives the request for an offset.
    async fn all_pages<P: DeserializeOwned, T>(
        &self,
        call: Call,
        path: impl Fn(usize) -> String,
        items_of: impl Fn(P) -> (Vec<T>, u64),
    ) -> Result<Vec<T>, ConnectorError> {
        let mut items = Vec::new();
        loop {
            let (page, total) = items_of(self.call(call, Method::GET, path(items.len()), None).await?);
            let short = page.len() < PAGE;
            items.extend(page);
            if short || items.len() as u64 >= total {
                return Ok(items);
            }
        }
    }

    /// `GET /lists/{id}`: the audience exists and the key may read it.
    pub async fn list(&self) -> Result<ListInfo, ConnectorError> {
        let path = format!(
            "/lists/{}?fields=id,name,double_optin,marketing_permissions,stats.member_count,stats.unsubscribe_count,\
             stats.cleaned_count",
            self.list_path_id()
        );
        self.call(Call::List, Method::GET, path, None).await
    }

    /// The audience, its merge fields and its groups, read at the same time (a sync starts sooner).
    pub async fn audience(&self) -> Result<Audience, ConnectorError> {
        let (list, merge_fields, categories) =
            tokio::join!(self.list(), self.merge_fields(), self.categories());
        Ok(Audience { list: list?, merge_fields: merge_fields?, categories: categories? })
    }

    /// Every group category of the audience with its interests (all pages; each category's
    /// interests read at the same time).
    pub async fn categories(&self) -> Result<Vec<Category>, ConnectorError> {
        let list = self.list_path_id();
        let path = |offset| {
            format!(
                "/lists/{list}/interest-categories?count={PAGE}&offset={offset}&fields=categories.id,\
                 categories.title,categories.type,total_items"
            )
        };
        let mut categories = self
            .all_pages(Call::Groups, path, |page: CategoriesPage| (page.categories, page.total_items))
            .await?;
        let ids: Vec<String> = categories.iter().map(|c| c.id.clone()).collect();
        let interests = futures::future::try_join_all(ids.iter().map(|id| self.interests(id))).await?;
        for (category, interests) in categories.iter_mut().zip(interests) {
            category.interests = interests;
        }
        Ok(categories)
    }

    async fn interests(&self, category_id: &str) -> Result<Vec<Interest>, ConnectorError> {
        let (list, category) = (self.list_path_id(), path_segment(category_id));
        let path = |offset| {
            format!(
                "/lists/{list}/interest-categories/{category}/interests?count={PAGE}&offset={offset}\
                 &fields=interests.id,interests.name,total_items"
            )
        };
        self.all_pages(Call::Groups, path, |page: InterestsPage| (page.interests, page.total_items)).await
    }

    /// `POST …/interest-categories/{id}/interests`: creates an interest (group) in a category.
    pub async fn create_interest(&self, category_id: &str, name: &str) -> Result<Interest, ConnectorError> {
        let path = format!(
            "/lists/{}/interest-categories/{}/interests",
            self.list_path_id(),
            path_segment(category_id)
        );
        let body =
            serde_json::to_vec(&serde_json::json!({"name": name})).expect("a JSON value always serializes");
        self.call(Call::CreateInterest, Method::POST, path, Some(body.into())).await
    }

    /// Every merge field of the audience, paging past Mailchimp's default page size.
    pub async fn merge_fields(&self) -> Result<Vec<MergeField>, ConnectorError> {
        let list = self.list_path_id();
        let path = |offset| format!("/lists/{list}/merge-fields?count={PAGE}&offset={offset}");
        self.all_pages(Call::MergeFields, path, |page: MergeFieldsPage| (page.merge_fields, page.total_items))
            .await
    }

    /// `POST /lists/{id}` with a prepared JSON body (members plus `update_existing: true`).
    /// `None` when the client was closed before the batch could be sent.
    /// `first`, when given, is the connection the first attempt uses (reserved in input order).
    /// `with_members`: the answer lists each member's address, status and tags (status intents and
    /// owned tags need them) and, with `with_permissions`, its marketing permissions.
    /// The answer must account for all `members` sent (created, updated or refused); one that does
    /// not is retried like a failure, never taken as success.
    pub async fn batch_subscribe(
        &self,
        body: bytes::Bytes,
        members: usize,
        first: Option<OwnedSemaphorePermit>,
        with_members: bool,
        with_permissions: bool,
    ) -> Result<Option<BatchResponse>, ConnectorError> {
        // Only what is read is asked for (Mailchimp's partial responses): this saves transfer and
        // parsing on both sides. If `fields` were ignored, the full answer still decodes.
        let mut path = if with_members || with_permissions {
            let mut fields = String::from("total_created,total_updated,errors");
            for group in ["new_members", "updated_members"] {
                fields.push_str(&format!(",{group}.email_address,{group}.status,{group}.tags"));
                if with_permissions {
                    fields.push_str(&format!(",{group}.marketing_permissions"));
                }
            }
            format!("/lists/{}?fields={fields}", self.list_path_id())
        } else {
            format!("/lists/{}?exclude_fields=new_members,updated_members", self.list_path_id())
        };
        if self.skip_merge_validation {
            path.push_str("&skip_merge_validation=true");
        }
        let check = move |answer: &BatchResponse| answer.unaccounted(members);
        let request = Request { call: Call::BatchSubscribe, method: Method::POST, path, body: Some(body) };
        let reply = self.call_unless_closed(request, first, &check).await?;
        Ok(reply.and_then(Reply::answer))
    }

    /// `DELETE /lists/{id}/members/{hash}`: archives the contact. `None` when the client was closed.
    pub async fn archive(&self, email: &str) -> Result<Option<Applied>, ConnectorError> {
        self.on_contact(Call::Archive, Method::DELETE, email, "", None).await
    }

    /// `POST …/members/{hash}/actions/delete-permanent`: erases the contact for good.
    pub async fn delete_permanently(&self, email: &str) -> Result<Option<Applied>, ConnectorError> {
        self.on_contact(Call::DeletePermanently, Method::POST, email, "/actions/delete-permanent", None).await
    }

    /// `POST …/members/{hash}/tags` marking these tags inactive, as a sync (`is_syncing`), so that
    /// tag-based automations do not start.
    pub async fn remove_tags(&self, email: &str, tags: &[String]) -> Result<Option<Applied>, ConnectorError> {
        let tags: Vec<serde_json::Value> =
            tags.iter().map(|t| serde_json::json!({"name": t, "status": "inactive"})).collect();
        let body = serde_json::to_vec(&serde_json::json!({"tags": tags, "is_syncing": true}))
            .expect("a JSON value always serializes");
        self.on_contact(Call::RemoveTags, Method::POST, email, "/tags", Some(body.into())).await
    }

    /// `PATCH …/members/{hash}` setting these marketing permissions (id, enabled). `None` when the
    /// client was closed.
    pub async fn set_permissions(
        &self,
        email: &str,
        permissions: &[(String, bool)],
    ) -> Result<Option<Applied>, ConnectorError> {
        let permissions: Vec<serde_json::Value> = permissions
            .iter()
            .map(|(id, enabled)| serde_json::json!({"marketing_permission_id": id, "enabled": enabled}))
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({"marketing_permissions": permissions}))
            .expect("a JSON value always serializes");
        self.on_contact(Call::Permissions, Method::PATCH, email, "", Some(body.into())).await
    }

    /// `GET …/members/{hash}` with only the address, status and tags; `None` when there is no such contact.
    pub async fn member(
        &self,
        key: &super::member::EmailKey,
    ) -> Result<Option<MemberSummary>, ConnectorError> {
        let path = self.member_path(&super::member::hex(key), "?fields=email_address,status,tags,interests");
        Ok(self.call_reply(Call::Member, Method::GET, path, None).await?.answer())
    }

    /// One page of the audience's contacts (address, status and tags only), `count` ≤ 1000.
    pub async fn members_page(&self, offset: u64, count: u64) -> Result<MembersPage, ConnectorError> {
        let path = format!(
            "/lists/{}/members?count={count}&offset={offset}&fields=total_items,members.email_address,\
             members.status,members.tags,members.interests",
            self.list_path_id()
        );
        self.call(Call::Members, Method::GET, path, None).await
    }

    /// The texts of the audience's GDPR marketing permissions. Mailchimp shows them only on
    /// contacts, so one contact is read; empty when the audience has no contact yet.
    pub async fn permission_texts(&self) -> Result<Vec<String>, ConnectorError> {
        let path =
            format!("/lists/{}/members?count=1&fields=members.marketing_permissions", self.list_path_id());
        let page: PermissionsPage = self.call(Call::Members, Method::GET, path, None).await?;
        Ok(page
            .members
            .into_iter()
            .flat_map(|m| m.marketing_permissions)
            .map(|p| p.text)
            .filter(|t| !t.is_empty())
            .collect())
    }

    /// One page of the audience's contacts, their addresses only, `count` ≤ 1000.
    pub async fn addresses_page(&self, offset: u64, count: u64) -> Result<AddressesPage, ConnectorError> {
        let path = format!(
            "/lists/{}/members?count={count}&offset={offset}&fields=total_items,members.email_address",
            self.list_path_id()
        );
        self.call(Call::Members, Method::GET, path, None).await
    }

    /// `POST …/members/{hash}/events`, at most once. A failure that Mailchimp cannot have carried out
    /// (429, a redirect, a rate-limiting 403) is retried; after any other (a 5xx, a broken
    /// connection, a timeout) the contact's events are read first, and the post is retried only when
    /// the event is not among them. `None` when the client was closed before the first attempt.
    pub async fn post_event(&self, event: &Event) -> Result<Option<EventPosted>, ConnectorError> {
        let path = self.member_path(&super::member::hex(&event.key), "/events");
        let body = bytes::Bytes::from(event.body());
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let slot = self.budget.acquire().await;
            if attempt == 0 && self.closed.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let error = match self.attempt(&Method::POST, &path, Some(body.clone())).await {
                Ok(_) => {
                    drop(slot);
                    self.succeeded();
                    return Ok(Some(EventPosted::Stored));
                }
                Err(error) => error,
            };
            attempt += 1;
            if let ApiError::Status { status: 400, problem, body_excerpt, .. } = &error {
                let detail =
                    problem.as_ref().map(|p| p.detail.clone()).unwrap_or_else(|| body_excerpt.clone());
                return Ok(Some(EventPosted::Refused(detail)));
            }
            let (after, overload) = match classify(Call::Event, &error) {
                Outcome::NotFound => return Ok(Some(EventPosted::NotInAudience)),
                Outcome::Fail(failure_type) => {
                    return Err(self.fail(Call::Event, self.describe(Call::Event, &error, failure_type)))
                }
                Outcome::Retry { after, overload } => (after, overload),
            };
            if overload {
                self.overloaded(&slot, &error);
            }
            drop(slot);
            let surely_not_stored = overload || matches!(error, ApiError::Redirect { .. });
            if !surely_not_stored && self.event_is_stored(event).await? {
                return Ok(Some(EventPosted::Stored));
            }
            self.wait_to_retry(Call::Event, &error, after, started, attempt).await?;
        }
    }

    /// Whether the contact's events (the newest 1,000) hold this one.
    async fn event_is_stored(&self, event: &Event) -> Result<bool, ConnectorError> {
        let path = self.member_path(
            &super::member::hex(&event.key),
            "/events?count=1000&fields=events.name,events.occurred_at,events.properties",
        );
        let listed: Reply<EventsPage> = self.call_reply(Call::Events, Method::GET, path, None).await?;
        Ok(match listed {
            Reply::Answer(page) => page.events.iter().any(|listed| event.is_listed_as(listed)),
            Reply::NotFound => false,
        })
    }

    async fn on_contact(
        &self,
        call: Call,
        method: Method,
        email: &str,
        suffix: &str,
        body: Option<bytes::Bytes>,
    ) -> Result<Option<Applied>, ConnectorError> {
        let path = self.member_path(&super::member::subscriber_hash(email), suffix);
        let reply: Option<Reply<serde::de::IgnoredAny>> =
            self.call_unless_closed(Request { call, method, path, body }, None, &|_| None).await?;
        Ok(reply.map(|r| match r {
            Reply::Answer(_) => Applied::Done,
            Reply::NotFound => Applied::NotFound,
        }))
    }

    /// `/lists/{id}/members/{hash}` followed by `suffix`.
    fn member_path(&self, hash: &str, suffix: &str) -> String {
        format!("/lists/{}/members/{hash}{suffix}", self.list_path_id())
    }

    fn list_path_id(&self) -> String {
        path_segment(&self.list_id)
    }

    /// Sends a request, retrying transient failures with backoff until the retry budget is spent.
    async fn call<T: DeserializeOwned>(
        &self,
        call: Call,
        method: Method,
        path: String,
        body: Option<bytes::Bytes>,
    ) -> Result<T, ConnectorError> {
        self.call_reply(call, method, path, body).await?.answer().ok_or_else(|| {
            ConnectorError::system(format!("{} found nothing (404).", capitalized(call_name(call))))
        })
    }

    /// Like `call`, but a 404 on one contact is an answer (`Reply::NotFound`).
    async fn call_reply<T: DeserializeOwned>(
        &self,
        call: Call,
        method: Method,
        path: String,
        body: Option<bytes::Bytes>,
    ) -> Result<Reply<T>, ConnectorError> {
        self.call_unless_closed(Request { call, method, path, body }, None, &|_| None)
            .await?
            .ok_or_else(|| ConnectorError::system(format!("{} was cancelled.", capitalized(call_name(call)))))
    }

    /// Like `call`, but gives `None` without sending if the client is closed before the first attempt.
    /// `check` says what is missing from an answer that decodes but does not hold what was asked.
    async fn call_unless_closed<T: DeserializeOwned>(
        &self,
        request: Request,
        mut first: Option<OwnedSemaphorePermit>,
        check: &(dyn Fn(&T) -> Option<String> + Sync),
    ) -> Result<Option<Reply<T>>, ConnectorError> {
        let Request { call, method, path, body } = request;
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            let slot = match first.take() {
                Some(permit) => self.budget.slot(permit),
                None => self.budget.acquire().await,
            };
            if attempt == 0 && self.closed.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let error = match self.exchange::<T>(&method, &path, body.clone(), check).await {
                Ok(value) => {
                    drop(slot);
                    self.succeeded();
                    return Ok(Some(Reply::Answer(value)));
                }
                Err(error) => error,
            };
            attempt += 1;
            let (after, overload) = match classify(call, &error) {
                Outcome::NotFound => return Ok(Some(Reply::NotFound)),
                Outcome::Fail(failure_type) => {
                    return Err(self.fail(call, self.describe(call, &error, failure_type)))
                }
                Outcome::Retry { after, overload } => (after, overload),
            };
            if overload {
                self.overloaded(&slot, &error);
            }
            drop(slot);
            self.wait_to_retry(call, &error, after, started, attempt).await?;
        }
    }

    /// Waits before another attempt (as long as Mailchimp's Retry-After says, else a backoff) and
    /// says so in the log; fails instead when the wait would pass the retry time.
    async fn wait_to_retry(
        &self,
        call: Call,
        error: &ApiError,
        after: Option<Duration>,
        started: Instant,
        attempt: u32,
    ) -> Result<(), ConnectorError> {
        let wait = after.unwrap_or_else(|| self.backoff.delay(attempt));
        if started.elapsed() + wait > self.max_retry_time {
            return Err(self.fail(call, self.gave_up(call, error, started.elapsed(), attempt)));
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.notify(
            Level::Warn,
            format!(
                "{} failed ({}), attempt {attempt}; retrying in {:.1} s{}.",
                capitalized(call_name(call)),
                error.status_text(),
                wait.as_secs_f64(),
                if after.is_some() { " as Mailchimp's Retry-After asks" } else { "" }
            ),
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// One exchange and its decoded answer; a 2xx whose body is not a `T` is a `Decode` error.
    async fn exchange<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        body: Option<bytes::Bytes>,
        check: &(dyn Fn(&T) -> Option<String> + Sync),
    ) -> Result<T, ApiError> {
        let bytes = self.attempt(method, path, body).await?;
        // 204 No Content (archive, tags) carries no body.
        let json: &[u8] = if bytes.trim_ascii().is_empty() { b"null" } else { &bytes };
        let answer = serde_json::from_slice(json).map_err(|e| ApiError::Decode {
            detail: format!("{e} in {}", excerpt(&String::from_utf8_lossy(&bytes), 200)),
        })?;
        match check(&answer) {
            Some(detail) => Err(ApiError::Unaccounted { detail }),
            None => Ok(answer),
        }
    }

    /// A call failed for good: its message is masked, and a failed write closes the client (the sync
    /// ends there, so batches waiting for a connection must not be sent).
    fn fail(&self, call: Call, failure: ConnectorError) -> ConnectorError {
        if call.writes() {
            self.close();
        }
        failure.masked().scrubbed(&self.secrets())
    }

    /// The forms in which a server's text could quote this client's key.
    fn secrets(&self) -> Secrets {
        Secrets::of_key(self.api_key.expose(), BASIC_USER)
    }

    /// A request succeeded: the budget may rise again.
    fn succeeded(&self) {
        if let Some(Change::Raised { to }) = self.budget.succeeded() {
            tracing::debug!("concurrency raised to {to}");
            if to == self.budget.max() {
                self.notify(Level::Info, format!("Requests succeed again; back to {to} requests at a time."));
            }
        }
    }

    /// Mailchimp is limiting requests: fewer are sent at once for a while.
    fn overloaded(&self, slot: &super::budget::Slot<'_>, error: &ApiError) {
        if let Some(Change::Lowered { to }) = self.budget.overloaded(slot) {
            self.notify(
                Level::Warn,
                format!(
                    "Mailchimp is limiting requests ({}); sending at most {to} at a time for now, rising again \
                     as requests succeed.",
                    error.status_text()
                ),
            );
        }
    }

    fn notify(&self, level: Level, text: String) {
        let text = self.secrets().scrub(&crate::redact::mask_emails_in(&text));
        tracing::warn!("{text}");
        if let Some(notices) = &self.notices {
            let _ = notices.send(Notice { level, text });
        }
    }

    /// One HTTP exchange; any non-2xx status becomes an `ApiError`.
    async fn attempt(
        &self,
        method: &Method,
        path: &str,
        body: Option<bytes::Bytes>,
    ) -> Result<bytes::Bytes, ApiError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .basic_auth(BASIC_USER, Some(self.api_key.expose()));
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        if method != Method::GET {
            self.first_write.get_or_init(Instant::now);
        }
        let response = request.send().await.map_err(network_error)?;
        let status = response.status();
        if status.is_redirection() {
            // Never followed: contacts' data and the key go only to the configured API address.
            let location =
                response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("nowhere");
            return Err(ApiError::Redirect { status: status.as_u16(), location: excerpt(location, 200) });
        }
        let retry_after =
            response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let bytes = response.bytes().await.map_err(network_error)?;
        if status.is_success() {
            return Ok(bytes);
        }
        let problem = if is_json { serde_json::from_slice::<Problem>(&bytes).ok() } else { None };
        Err(ApiError::Status {
            status: status.as_u16(),
            problem,
            body_excerpt: excerpt(String::from_utf8_lossy(&bytes).trim(), 200),
            retry_after,
        })
    }

    /// The message a user reads when a call fails for good; the outcome table chose its type.
    fn describe(&self, call: Call, error: &ApiError, failure_type: FailureType) -> ConnectorError {
        let internal = format!("{} failed: {error}", call_name(call));
        let status = match error {
            ApiError::Status { status, .. } => *status,
            ApiError::Network { detail } => {
                let message = format!("Could not reach Mailchimp at {}: {detail}.", self.base_url);
                return ConnectorError::transient(message).with_internal(internal);
            }
            ApiError::Decode { .. } | ApiError::Unaccounted { .. } | ApiError::Redirect { .. } => {
                let message = format!("Mailchimp sent an unexpected answer to {}: {error}.", call_name(call));
                return ConnectorError { failure_type, message, internal: Some(internal) };
            }
        };
        let title = match error {
            ApiError::Status { problem: Some(p), .. } if !p.title.is_empty() => p.title.clone(),
            _ => {
                StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("").to_string()
            }
        };
        let message = match status {
            401 => format!(
                "Mailchimp rejected the API key (401 {title}). Copy the key again from Profile → Extras → API keys \
                 and check that its suffix (such as -us6) is your account's data center."
            ),
            403 => format!(
                "Mailchimp refused access (403 {title}). The user who created this API key needs a role that may \
                 manage the audience's contacts, and the account must be active."
            ),
            404 if matches!(call, Call::List | Call::MergeFields | Call::Groups | Call::BatchSubscribe | Call::Members) => format!(
                "No audience with List ID '{}' in this Mailchimp account (404 {title}). Copy the Audience ID from \
                 Audience → Settings → Audience name and defaults; it is not the number in the web address.",
                self.list_id
            ),
            _ => format!("Mailchimp rejected {} ({error}).", call_name(call)),
        };
        ConnectorError { failure_type, message, internal: Some(internal) }
    }

    fn gave_up(&self, call: Call, error: &ApiError, waited: Duration, attempts: u32) -> ConnectorError {
        let internal = format!("{} failed: {error}", call_name(call));
        let message = match error {
            ApiError::Network { detail } => format!(
                "Could not reach Mailchimp at {} ({detail}; {attempts} attempts over {:.0} s). Check this machine's \
                 network and proxy settings, or status.mailchimp.com; the sync can be retried.",
                self.base_url,
                waited.as_secs_f64()
            ),
            other => format!(
                "Mailchimp did not accept {} after {attempts} attempts over {:.0} s (last answer: {other}). The sync \
                 can be retried; if this keeps happening, lower max_concurrent_requests or check status.mailchimp.com.",
                call_name(call),
                waited.as_secs_f64()
            ),
        };
        ConnectorError::transient(message).with_internal(internal)
    }
}

impl<T> Reply<T> {
    /// The decoded answer; `None` for a 404 (an answer only for calls on one contact).
    fn answer(self) -> Option<T> {
        match self {
            Reply::Answer(value) => Some(value),
            Reply::NotFound => None,
        }
    }
}

/// An id as a path segment: only the characters Mailchimp's ids use.
fn path_segment(id: &str) -> String {
    id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

fn call_name(call: Call) -> &'static str {
    match call {
        Call::Ping => "the ping request",
        Call::Lists => "the request for the account's audiences",
        Call::List => "the request for the audience",
        Call::MergeFields => "the request for the audience's merge fields",
        Call::Groups => "the request for the audience's groups",
        Call::CreateInterest => "creating a group",
        Call::BatchSubscribe => "a batch of contacts",
        Call::Archive => "archiving a contact",
        Call::DeletePermanently => "permanently deleting a contact",
        Call::RemoveTags => "removing a contact's tags",
        Call::Permissions => "setting a contact's marketing permissions",
        Call::Member => "reading a contact",
        Call::Members => "reading the audience's contacts",
        Call::Event => "posting an event",
        Call::Events => "reading a contact's events",
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn http_client(
    connections: usize,
    request: Duration,
    connect: Duration,
) -> Result<reqwest::Client, ConnectorError> {
    reqwest::Client::builder()
        .user_agent(concat!("destination-mailchimp/", env!("CARGO_PKG_VERSION")))
        .timeout(request)
        .connect_timeout(connect)
        .pool_max_idle_per_host(connections)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ConnectorError::system(format!("Could not set up the HTTP client: {e}")))
}

/// `Retry-After` as seconds or as an HTTP date; a date in the past means "now".
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Describes a transport failure with its root cause ("Connection refused"), never the key.
fn network_error(error: reqwest::Error) -> ApiError {
    if error.is_timeout() {
        return ApiError::Network { detail: "the request timed out".into() };
    }
    let mut root: &dyn std::error::Error = &error;
    while let Some(cause) = root.source() {
        root = cause;
    }
    let stage = if error.is_connect() { "could not connect" } else { "the connection failed" };
    ApiError::Network { detail: format!("{stage}: {root}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30), "{wait:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }
}
