//! Stop signals: SIGTERM and SIGINT are listened to from the first moment of every command that
//! talks to Mailchimp, so that a platform's cancel ends the run with a message instead of a kill.

use crate::error::ConnectorError;
use std::future::Future;
use tokio::sync::mpsc;

/// Delivers the name of each SIGTERM or SIGINT the process receives. The handlers are installed
/// before this returns, so no signal between now and the first poll is missed.
pub fn stop_signals() -> mpsc::Receiver<&'static str> {
    let (tx, rx) = mpsc::channel(4);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (terminate, interrupt) = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        {
            (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("cannot listen for SIGTERM and SIGINT: {e}");
                return rx;
            }
        };
        tokio::spawn(forward(terminate, interrupt, tx));
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send("SIGINT").await.is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(unix)]
async fn forward(
    mut terminate: tokio::signal::unix::Signal,
    mut interrupt: tokio::signal::unix::Signal,
    tx: mpsc::Sender<&'static str>,
) {
    loop {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        if tx.send(name).await.is_err() {
            return;
        }
    }
}

/// Runs `work` unless a stop signal comes first; then the run ends with a transient failure that
/// says what was interrupted (`what`, such as "The check") and `after`, what that means.
pub async fn unless_stopped<T>(
    stop: &mut mpsc::Receiver<&'static str>,
    what: &str,
    after: &str,
    work: impl Future<Output = Result<T, ConnectorError>>,
) -> Result<T, ConnectorError> {
    tokio::select! {
        result = work => result,
        Some(signal) = stop.recv() => {
            let message = format!("{what} was stopped by {signal} before it finished. {after}");
            Err(ConnectorError::transient(message.trim_end()))
        }
    }
}
