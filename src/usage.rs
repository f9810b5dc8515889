//! What the process has used so far: time since it started, and peak resident memory as the
//! kernel reports it.

use std::sync::OnceLock;
use std::time::Instant;

/// When the process started (the first call; `run` makes it at once).
pub fn process_started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

/// The peak resident set size in bytes (Linux `VmHWM`); `None` where the kernel does not say.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_plausible_peak_on_linux() {
        if cfg!(target_os = "linux") {
            let peak = super::peak_memory_bytes().expect("VmHWM is in /proc/self/status");
            assert!(peak > 1 << 20 && peak < 1 << 40, "{peak}");
        }
    }
}
