//! The outcome table: every answer of every call, classified in one place (retry, an answer, or a
//! failure of a given type), and the backoff between attempts.

use super::model::ApiError;
use crate::error::FailureType;
use std::time::Duration;

/// Which call was made, so that an outcome (and an error message) can depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Ping,
    Lists,
    List,
    MergeFields,
    Groups,
    CreateInterest,
    BatchSubscribe,
    Archive,
    DeletePermanently,
    RemoveTags,
    Permissions,
    Member,
    Members,
    /// Posting an event on a contact.
    Event,
    /// Reading a contact's events (to tell whether a post whose answer was lost was stored).
    Events,
}

impl Call {
    /// Calls that change the audience: a permanent failure of one ends the sync.
    pub fn writes(self) -> bool {
        // Creating a group is left out: a group Mailchimp refuses is left out of the contacts,
        // and the sync goes on.
        matches!(
            self,
            Call::BatchSubscribe
                | Call::Archive
                | Call::DeletePermanently
                | Call::RemoveTags
                | Call::Permissions
                | Call::Event
        )
    }

    /// Calls on one contact, where a 404 is an answer (no such contact), not a failure.
    fn on_one_contact(self) -> bool {
        matches!(
            self,
            Call::Archive
                | Call::DeletePermanently
                | Call::RemoveTags
                | Call::Permissions
                | Call::Member
                | Call::Event
                | Call::Events
        )
    }
}

/// What to do with a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A passing condition: try again after `after` if Mailchimp said how long, else after a
    /// backoff. `overload`: Mailchimp is limiting requests, so fewer are sent at once.
    Retry { after: Option<Duration>, overload: bool },
    /// A 404 on one contact: Mailchimp has no such contact (already archived, deleted, or never
    /// there). That is an answer, not a failure.
    NotFound,
    /// Trying again cannot help: the user (config error) or the data or the connector (system
    /// error) must change.
    Fail(FailureType),
}

/// Classifies a failed attempt. Every request this connector sends is an idempotent upsert, an
/// archive, a tag change, a permanent deletion (404 once done) or a read, so retrying is safe.
pub fn classify(call: Call, error: &ApiError) -> Outcome {
    let retry = |after: &Option<Duration>, overload| Outcome::Retry { after: *after, overload };
    match error {
        // No answer, or one that is not what the API documents (an HTML page or `{}` with a 200, a
        // batch answer that leaves contacts out, a redirect from a proxy): passing, until it is not.
        ApiError::Network { .. }
        | ApiError::Decode { .. }
        | ApiError::Unaccounted { .. }
        | ApiError::Redirect { .. } => Outcome::Retry { after: None, overload: false },
        ApiError::Status { status, problem, retry_after, .. } => match status {
            429 => retry(retry_after, true),
            // At very high volume Mailchimp answers 403 with no JSON body: a rate limit, not a permission.
            403 if problem.is_none() => retry(retry_after, true),
            408 | 500..=599 => retry(retry_after, false),
            404 if call.on_one_contact() => Outcome::NotFound,
            // The key (401), its permissions (403) or the List ID (404): the user must fix the config.
            401 | 403 | 404 => Outcome::Fail(FailureType::ConfigError),
            _ => Outcome::Fail(FailureType::SystemError),
        },
    }
}

/// Exponential backoff with full jitter: a random wait in [0, min(cap, base·2^attempt)].
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_millis(500), cap: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (1 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(self.cap);
        ceiling.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailchimp::model::Problem;

    fn status(status: u16, json_body: bool) -> ApiError {
        ApiError::Status {
            status,
            problem: json_body.then(|| Problem { title: "T".into(), ..Default::default() }),
            body_excerpt: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn outcome_table() {
        let retry = Outcome::Retry { after: None, overload: false };
        let overload = Outcome::Retry { after: None, overload: true };
        let config = Outcome::Fail(FailureType::ConfigError);
        let system = Outcome::Fail(FailureType::SystemError);
        let network = |detail: &str| ApiError::Network { detail: detail.into() };
        let all = [
            Call::Ping,
            Call::Lists,
            Call::List,
            Call::MergeFields,
            Call::Groups,
            Call::CreateInterest,
            Call::BatchSubscribe,
            Call::Archive,
            Call::DeletePermanently,
            Call::RemoveTags,
            Call::Permissions,
            Call::Member,
            Call::Members,
            Call::Event,
            Call::Events,
        ];
        let on_contact = [
            Call::Archive,
            Call::DeletePermanently,
            Call::RemoveTags,
            Call::Permissions,
            Call::Member,
            Call::Event,
            Call::Events,
        ];
        for call in all {
            let not_found = if on_contact.contains(&call) { Outcome::NotFound } else { config };
            let table = [
                (status(429, true), overload),
                (status(429, false), overload),
                (status(403, false), overload),
                (status(408, false), retry),
                (status(500, true), retry),
                (status(502, false), retry),
                (status(503, false), retry),
                (status(504, false), retry),
                (network("could not connect: Connection refused"), retry),
                (network("the connection failed: connection reset"), retry),
                (network("the request timed out"), retry),
                (status(401, true), config),
                (status(403, true), config),
                (status(404, true), not_found),
                (status(404, false), not_found),
                (status(400, true), system),
                (status(405, false), system),
                (status(422, true), system),
                (ApiError::Decode { detail: "x".into() }, retry),
                (ApiError::Unaccounted { detail: "x".into() }, retry),
                (ApiError::Redirect { status: 302, location: "http://elsewhere/".into() }, retry),
            ];
            for (error, expected) in table {
                assert_eq!(classify(call, &error), expected, "{call:?}: {error}");
            }
        }
    }

    #[test]
    fn retry_after_is_honoured() {
        let error = ApiError::Status {
            status: 429,
            problem: None,
            body_excerpt: String::new(),
            retry_after: Some(Duration::from_secs(3)),
        };
        let expected = Outcome::Retry { after: Some(Duration::from_secs(3)), overload: true };
        assert_eq!(classify(Call::BatchSubscribe, &error), expected);
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let backoff = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        for _ in 0..200 {
            assert!(backoff.delay(1) <= Duration::from_millis(100));
            assert!(backoff.delay(3) <= Duration::from_millis(400));
            assert!(backoff.delay(30) <= Duration::from_secs(1));
        }
    }
}
