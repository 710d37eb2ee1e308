//! Timing statistics (median, min, max of repeated runs) and the process's peak RSS per
//! phase.

use serde_json::{json, Value};
use std::time::Duration;

/// Repeated measurements of one figure, in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    ms: Vec<f64>,
}

impl Samples {
    /// Records one run.
    pub fn push(&mut self, elapsed: Duration) {
        self.ms.push(elapsed.as_secs_f64() * 1e3);
    }

    /// Records one run given in milliseconds.
    #[cfg(test)]
    pub fn push_ms(&mut self, ms: f64) {
        self.ms.push(ms);
    }

    /// Number of runs recorded.
    pub fn runs(&self) -> usize {
        self.ms.len()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (the mean of the two middle runs for an even count); 0 when empty.
    pub fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The fastest run; 0 when empty.
    pub fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(0.0)
    }

    /// The slowest run; 0 when empty.
    pub fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(0.0)
    }

    /// `{"median_ms", "min_ms", "max_ms", "runs", "all_ms"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "median_ms": round3(self.median()),
            "min_ms": round3(self.min()),
            "max_ms": round3(self.max()),
            "runs": self.runs(),
            "all_ms": self.ms.iter().map(|m| round3(*m)).collect::<Vec<_>>(),
        })
    }
}

/// Rounds to three decimals (microseconds when the unit is milliseconds).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Resets the process's peak-RSS mark (Linux: writing 5 to `/proc/self/clear_refs`), so the
/// next [`peak_rss_mib`] reports the peak of one phase. Returns false when the kernel does
/// not support it (then the peaks are cumulative).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak resident set size since the last reset, in MiB (Linux `VmHWM`).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let mut s = Samples::default();
        for ms in [5.0, 1.0, 3.0] {
            s.push_ms(ms);
        }
        assert_eq!((s.median(), s.min(), s.max()), (3.0, 1.0, 5.0));
        s.push_ms(4.0);
        assert_eq!(s.median(), 3.5);
        assert_eq!(Samples::default().median(), 0.0);
    }
}
