//! The fake's fault program: the next requests fail the way Mailchimp (or the network) can fail.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One way a request can go wrong, as documented for Mailchimp and the CDN in front of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// 429; with `body` a problem+json "Too Many Requests", without it an empty body (high volume).
    TooManyRequests {
        #[serde(default)]
        body: bool,
        #[serde(default)]
        retry_after_seconds: Option<u64>,
    },
    /// 403 with no body: what Mailchimp sends instead of 429 at exceptionally high volume.
    ForbiddenWithoutBody,
    /// 500 problem+json "Internal Server Error".
    InternalServerError,
    /// 502 with an HTML page: the CDN closed a request that took too long.
    BadGatewayHtml,
    /// 503 with no body.
    ServiceUnavailable,
    /// 400 "Invalid Resource" for the whole request, with an `errors[]` entry: permanent.
    InvalidResource,
    /// The request is carried out, then the connection breaks halfway through the answer.
    ResetMidResponse,
    /// The connection breaks before the request was read: nothing is carried out, and the client
    /// sees the connection break as it reads the answer.
    ResetBeforeRead,
    /// The request is carried out, but only answered after this many extra milliseconds.
    Delay { ms: u64 },
    /// A redirect (302 unless `status` says otherwise) to `location`, as a misconfigured proxy or a
    /// moved host answers; nothing is carried out.
    Redirect {
        location: String,
        #[serde(default)]
        status: Option<u16>,
    },
    /// 200 with the body `{}`: an answer that is not the one the API documents; nothing is carried out.
    EmptyObject,
    /// 500 problem+json whose detail quotes the request's API key and its Basic token, as a
    /// careless server's error text can.
    EchoKey,
}

impl Fault {
    /// A short name for the request log.
    pub fn label(&self) -> String {
        match self {
            Fault::TooManyRequests { body, retry_after_seconds } => format!(
                "429{}{}",
                if *body { "" } else { " without body" },
                retry_after_seconds.map(|s| format!(" Retry-After {s}")).unwrap_or_default()
            ),
            Fault::ForbiddenWithoutBody => "403 without body".into(),
            Fault::InternalServerError => "500".into(),
            Fault::BadGatewayHtml => "502 HTML".into(),
            Fault::ServiceUnavailable => "503".into(),
            Fault::InvalidResource => "400 Invalid Resource".into(),
            Fault::ResetMidResponse => "reset mid-response".into(),
            Fault::ResetBeforeRead => "reset before the request was read".into(),
            Fault::Delay { ms } => format!("delay {ms} ms"),
            Fault::Redirect { location, status } => format!("{} to {location}", status.unwrap_or(302)),
            Fault::EmptyObject => "200 {}".into(),
            Fault::EchoKey => "500 quoting the key".into(),
        }
    }

    /// Whether Mailchimp still carries out the request (the fault is in the answer, not the work).
    pub fn applies_request(&self) -> bool {
        matches!(self, Fault::ResetMidResponse | Fault::Delay { .. })
    }
}

/// Which requests a programmed fault may hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Any API request (ping, audience, merge fields, batches).
    #[default]
    Any,
    /// Only batch-subscribe requests (`POST /lists/{id}`).
    Batches,
    /// Only requests on one contact (`…/members/{hash}…`: archive, delete, tags, lookups).
    Contacts,
    /// Only posted events (`POST …/members/{hash}/events`).
    Events,
}

/// What a request is, for the fault program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Batch,
    Contact,
    Event,
    Other,
}

/// Faults waiting for the next requests, taken in order.
#[derive(Debug, Default)]
pub struct FaultProgram {
    queue: VecDeque<(Target, Fault)>,
}

impl FaultProgram {
    pub fn push(&mut self, target: Target, fault: Fault) {
        self.queue.push_back((target, fault));
    }

    /// The fault for this request, if the next one in the program may hit it.
    pub fn take(&mut self, kind: RequestKind) -> Option<Fault> {
        let (target, _) = self.queue.front()?;
        let hits = match target {
            Target::Any => true,
            Target::Batches => kind == RequestKind::Batch,
            Target::Contacts => kind == RequestKind::Contact,
            Target::Events => kind == RequestKind::Event,
        };
        hits.then(|| self.queue.pop_front().map(|(_, fault)| fault)).flatten()
    }

    pub fn remaining(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_faults_wait_for_a_batch_request() {
        let mut program = FaultProgram::default();
        program.push(Target::Batches, Fault::InternalServerError);
        program.push(Target::Any, Fault::ServiceUnavailable);
        program.push(Target::Contacts, Fault::ForbiddenWithoutBody);
        assert_eq!(program.take(RequestKind::Other), None);
        assert_eq!(program.take(RequestKind::Batch), Some(Fault::InternalServerError));
        assert_eq!(program.take(RequestKind::Contact), Some(Fault::ServiceUnavailable));
        assert_eq!(program.take(RequestKind::Batch), None);
        assert_eq!(program.take(RequestKind::Contact), Some(Fault::ForbiddenWithoutBody));
        assert_eq!(program.remaining(), 0);
    }

    #[test]
    fn faults_read_from_json() {
        let fault: Fault =
            serde_json::from_str(r#"{"kind":"too_many_requests","retry_after_seconds":1}"#).unwrap();
        assert_eq!(fault, Fault::TooManyRequests { body: false, retry_after_seconds: Some(1) });
    }
}
