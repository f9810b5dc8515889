//! Progress a user can watch during a long sync: a LOG line every 30 seconds, and the overall rate.

use std::time::{Duration, Instant};

/// How often a progress line is logged while a sync runs.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Counts at one moment of the sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub records_read: u64,
    pub contacts_sent: u64,
    pub rejected: u64,
    pub states_saved: u64,
    pub requests_in_flight: usize,
    pub requests_allowed: usize,
    pub retries: u64,
}

/// Decides when the next progress line is due and computes the rate since the previous one.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    last: Instant,
    last_records: u64,
    every: Duration,
}

impl Progress {
    pub fn new(now: Instant, every: Duration) -> Self {
        Self { started: now, last: now, last_records: 0, every }
    }

    /// When the next line is due.
    pub fn next_at(&self) -> Instant {
        self.last + self.every
    }

    /// The progress line for `now`; the next one is due `every` later.
    pub fn line(&mut self, now: Instant, counts: Snapshot) -> String {
        let window = now.saturating_duration_since(self.last).as_secs_f64().max(1e-3);
        let rate = (counts.records_read - self.last_records) as f64 / window;
        self.last = now;
        self.last_records = counts.records_read;
        format!(
            "Progress after {}: {} records read, {} contacts sent, {} rejected, {} states saved; {} of {} \
             allowed requests in flight, {} retries so far; {} records/s over the last {:.0} s.",
            elapsed(now.saturating_duration_since(self.started)),
            thousands(counts.records_read),
            thousands(counts.contacts_sent),
            thousands(counts.rejected),
            thousands(counts.states_saved),
            counts.requests_in_flight,
            counts.requests_allowed,
            thousands(counts.retries),
            thousands(rate.round() as u64),
            window
        )
    }
}

/// Records per second over a whole run.
pub fn rate(records: u64, elapsed: Duration) -> String {
    thousands((records as f64 / elapsed.as_secs_f64().max(1e-3)).round() as u64)
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn a_line_reports_the_rate_since_the_previous_line() {
        let start = Instant::now();
        let mut progress = Progress::new(start, Duration::from_secs(30));
        assert_eq!(progress.next_at(), start + Duration::from_secs(30));
        let counts = Snapshot {
            records_read: 60_000,
            contacts_sent: 59_000,
            rejected: 12,
            states_saved: 5,
            requests_in_flight: 4,
            requests_allowed: 5,
            retries: 2,
        };
        let line = progress.line(start + Duration::from_secs(30), counts);
        assert_eq!(
            line,
            "Progress after 30 s: 60,000 records read, 59,000 contacts sent, 12 rejected, 5 states saved; \
             4 of 5 allowed requests in flight, 2 retries so far; 2,000 records/s over the last 30 s."
        );
        let later = Snapshot { records_read: 90_000, ..counts };
        let line = progress.line(start + Duration::from_secs(90), later);
        assert!(line.starts_with("Progress after 1 min 30 s: 90,000 records read"), "{line}");
        assert!(line.ends_with("500 records/s over the last 60 s."), "{line}");
    }
}
