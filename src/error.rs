//! Typed errors of the connector: each one knows its Airbyte failure type and the message a user acts on.

use serde::Serialize;

/// How the platform should treat a failure (the protocol's `failure_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureType {
    /// The user must change the configuration (key, list, settings); the platform stops retrying.
    ConfigError,
    /// A bug or an unexpected answer; the platform may retry.
    SystemError,
    /// A passing problem (rate limits, outages); the platform retries from the last state.
    TransientError,
}

/// A failure that ends a command. `message` is written for the user; `internal` carries the
/// technical detail for logs and the TRACE message's `internal_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    pub failure_type: FailureType,
    pub message: String,
    pub internal: Option<String>,
}

impl ConnectorError {
    pub fn config(message: impl Into<String>) -> Self {
        Self { failure_type: FailureType::ConfigError, message: message.into(), internal: None }
    }

    pub fn system(message: impl Into<String>) -> Self {
        Self { failure_type: FailureType::SystemError, message: message.into(), internal: None }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self { failure_type: FailureType::TransientError, message: message.into(), internal: None }
    }

    /// Masks email addresses in the message and the detail (Mailchimp's own error texts can quote them).
    pub fn masked(mut self) -> Self {
        self.message = crate::redact::mask_emails_in(&self.message);
        self.internal = self.internal.map(|internal| crate::redact::mask_emails_in(&internal));
        self
    }

    /// Removes every form of the API key from the message and the detail.
    pub fn scrubbed(mut self, secrets: &crate::redact::Secrets) -> Self {
        self.message = secrets.scrub(&self.message);
        self.internal = self.internal.map(|internal| secrets.scrub(&internal));
        self
    }

    /// Attaches technical detail that is shown in logs, not as the headline.
    pub fn with_internal(mut self, internal: impl Into<String>) -> Self {
        self.internal = Some(internal.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_covers_the_message_and_the_detail() {
        let error = ConnectorError::system("Mailchimp rejected (400: ada@mail.io looks fake)")
            .with_internal("POST failed: ada@mail.io")
            .masked();
        assert_eq!(error.message, "Mailchimp rejected (400: a***@mail.io looks fake)");
        assert_eq!(error.internal.as_deref(), Some("POST failed: a***@mail.io"));
    }
}
