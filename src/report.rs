//! The sync report: what Mailchimp made of the contacts (created, updated, refused, other effects),
//! rejections logged one by one up to a limit, the progress snapshot and the end-of-sync summary.

use crate::effects::Effects;
use crate::intake::IntakeCounts;
use crate::progress::{rate, thousands, Snapshot};
use crate::redact::mask_email;
use std::collections::BTreeMap;
use std::time::Duration;

/// Rejections logged one by one; beyond this they are only counted (in the final summary).
pub const REJECTIONS_LOGGED: u64 = 100;

/// Totals of what was sent and what Mailchimp answered.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub contacts_sent: u64,
    pub states_released: u64,
    created: u64,
    updated: u64,
    /// Records whose contact Mailchimp refused, by reason.
    refused: BTreeMap<String, u64>,
    effects: Effects,
    rejections_logged: u64,
    /// Events Mailchimp stored.
    pub events_stored: u64,
    /// How long after the connector started the first write request was sent.
    pub first_write_after: Option<Duration>,
}

impl SyncReport {
    /// Adds one batch's answer.
    pub fn answered(&mut self, created: u64, updated: u64, effects: &Effects) {
        self.created += created;
        self.updated += updated;
        self.effects.add(effects);
    }

    /// Counts `records` records refused by Mailchimp for one contact.
    pub fn refused(&mut self, reason: &str, records: u64) {
        *self.refused.entry(reason.to_string()).or_default() += records;
    }

    /// The log lines for one rejected record (its address masked) while the budget lasts.
    pub fn rejection_lines(&mut self, email: Option<&str>, reason: &str) -> Vec<String> {
        self.rejections_logged += 1;
        let mut lines = Vec::new();
        if self.rejections_logged <= REJECTIONS_LOGGED {
            let who = email.map(|e| format!(" {}", mask_email(e))).unwrap_or_default();
            lines.push(format!("Rejected record{who}: {reason}"));
            if self.rejections_logged == REJECTIONS_LOGGED {
                lines.push("Further rejections are counted in the summary at the end of the sync.".into());
            }
        }
        lines
    }

    /// Every rejection so far: the intake's and Mailchimp's, by reason.
    fn rejected(&self, intake: &IntakeCounts) -> BTreeMap<String, u64> {
        let mut all = intake.rejected.clone();
        for (reason, count) in &self.refused {
            *all.entry(reason.clone()).or_default() += count;
        }
        all
    }

    /// The figures of a progress line (the request counts come from the client).
    pub fn snapshot(&self, intake: &IntakeCounts) -> Snapshot {
        Snapshot {
            records_read: intake.records,
            contacts_sent: self.contacts_sent,
            rejected: intake.rejected.values().sum::<u64>() + self.refused.values().sum::<u64>(),
            states_saved: self.states_released,
            ..Default::default()
        }
    }

    /// The end-of-sync lines: effects first, then the one-line summary.
    pub fn summary(&self, intake: &IntakeCounts, elapsed: Duration, peak_memory: Option<u64>) -> Vec<String> {
        let mut effects = self.effects;
        effects.deletions_ignored += intake.deletions_ignored;
        let mut lines = effects.lines("were");
        let rejected = self.rejected(intake);
        let total: u64 = rejected.values().sum();
        let mut text = format!(
            "Sync finished in {:.1} s ({} records/s): {} records read; {} contacts created, {} updated; {} records \
             rejected",
            elapsed.as_secs_f64(),
            rate(intake.records, elapsed),
            thousands(intake.records),
            thousands(self.created),
            thousands(self.updated),
            thousands(total)
        );
        if total > 0 {
            let reasons: Vec<String> = rejected.iter().map(|(reason, n)| format!("{n} × {reason}")).collect();
            text.push_str(&format!(" ({})", reasons.join("; ")));
        }
        text.push('.');
        if self.events_stored + intake.events_repeated > 0 {
            text.push_str(&format!(
                " {} events posted ({} records repeated an event already posted in this sync).",
                thousands(self.events_stored),
                thousands(intake.events_repeated)
            ));
        }
        if let Some(after) = self.first_write_after {
            text.push_str(&format!(
                " First write request sent {:.2} s after the start.",
                after.as_secs_f64()
            ));
        }
        if let Some(peak) = peak_memory {
            text.push_str(&format!(" Peak memory {:.0} MB.", peak as f64 / 1e6));
        }
        lines.push(text);
        lines
    }
}

/// "no state was saved", "1 state was saved", "3 states were saved".
pub fn saved_states(count: u64) -> String {
    match count {
        0 => "no state was saved".into(),
        1 => "1 state was saved".into(),
        n => format!("{n} states were saved"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_logged_up_to_the_limit_and_all_counted_in_the_summary() {
        let mut report = SyncReport::default();
        let mut logged = 0;
        for _ in 0..REJECTIONS_LOGGED + 20 {
            logged += report.rejection_lines(Some("ada@mail.io"), "Mailchimp: bad").len();
            report.refused("Mailchimp: bad", 1);
        }
        assert_eq!(logged as u64, REJECTIONS_LOGGED + 1, "the limit is announced once");
        let first = SyncReport::default().rejection_lines(Some("ada@mail.io"), "x");
        assert_eq!(first, vec!["Rejected record a***@mail.io: x"]);
        let mut intake = IntakeCounts { records: 130, ..Default::default() };
        intake.rejected.insert("no email".into(), 10);
        intake.deletions_ignored = 2;
        report.answered(3, 4, &Effects::default());
        let lines = report.summary(&intake, Duration::from_secs(2), None);
        let last = lines.last().unwrap();
        assert!(
            last.contains("130 records read; 3 contacts created, 4 updated; 130 records rejected"),
            "{last}"
        );
        assert!(last.contains("(120 × Mailchimp: bad; 10 × no email)"), "{last}");
        assert!(lines[0].contains("2 deleted record(s) were left alone"), "{lines:?}");
    }
}
