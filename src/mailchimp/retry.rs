//! One classification of request outcomes (retry or fail) and the backoff between attempts.

use super::model::ApiError;
use std::time::Duration;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A passing condition: try again after `after` if Mailchimp said how long, else after a backoff.
    Retry { after: Option<Duration> },
    /// Trying again cannot help; the user or the data must change.
    Fail,
}

/// Classifies a failed attempt. Every request this connector sends is an idempotent upsert or a
/// read, so retrying is always safe.
pub fn classify(error: &ApiError) -> Verdict {
    match error {
        ApiError::Network { .. } => Verdict::Retry { after: None },
        ApiError::Decode { .. } => Verdict::Fail,
        ApiError::Status { status, problem, retry_after, .. } => match status {
            429 => Verdict::Retry { after: *retry_after },
            // At very high volume Mailchimp answers 403 with no JSON body: a rate limit, not a permission.
            403 if problem.is_none() => Verdict::Retry { after: *retry_after },
            408 | 500..=599 => Verdict::Retry { after: *retry_after },
            _ => Verdict::Fail,
        },
    }
}

/// Mailchimp saying "too many requests": a 429, or a 403 with no JSON body at very high volume.
/// The connector answers it by sending fewer requests at once.
pub fn is_overload(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::Status { status: 429, .. } | ApiError::Status { status: 403, problem: None, .. }
    )
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
    fn classification_table() {
        let retry = Verdict::Retry { after: None };
        let table = [
            (status(429, true), retry),
            (status(429, false), retry),
            (status(403, false), retry),
            (status(408, false), retry),
            (status(500, true), retry),
            (status(502, false), retry),
            (status(503, false), retry),
            (status(504, false), retry),
            (ApiError::Network { detail: "could not connect: Connection refused".into() }, retry),
            (ApiError::Network { detail: "the connection failed: connection reset".into() }, retry),
            (ApiError::Network { detail: "the request timed out".into() }, retry),
            (status(401, true), Verdict::Fail),
            (status(403, true), Verdict::Fail),
            (status(404, true), Verdict::Fail),
            (status(400, true), Verdict::Fail),
            (ApiError::Decode { detail: "x".into() }, Verdict::Fail),
        ];
        for (error, expected) in table {
            assert_eq!(classify(&error), expected, "{error}");
        }
        assert!(is_overload(&status(429, true)) && is_overload(&status(403, false)));
        assert!(!is_overload(&status(403, true)) && !is_overload(&status(500, false)));
    }

    #[test]
    fn retry_after_is_honoured() {
        let error = ApiError::Status {
            status: 429,
            problem: None,
            body_excerpt: String::new(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(classify(&error), Verdict::Retry { after: Some(Duration::from_secs(3)) });
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
