//! Timing statistics (median, min, max of repeated runs) and the process's peak RSS per
//! phase.

use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The measuring connection's server process, when it runs on this machine and its
/// `/proc/<pid>/schedstat` is readable: its CPU time is reported next to wall time, which is
/// much less sensitive to other work on a shared machine.
static BACKEND_PID: OnceLock<i32> = OnceLock::new();

/// Registers the measuring connection's backend process (`pg_backend_pid()`). Returns
/// whether its CPU time can be read.
pub(crate) fn set_backend(pid: i32) -> bool {
    if backend_cpu_ns_of(pid).is_some() {
        let _ = BACKEND_PID.set(pid);
    }
    backend_cpu_ns().is_some()
}

fn backend_cpu_ns_of(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn backend_cpu_ns() -> Option<u64> {
    backend_cpu_ns_of(*BACKEND_PID.get()?)
}

/// One timed run: wall time, and the server process's CPU time when known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lap {
    pub wall: Duration,
    pub cpu_ms: Option<f64>,
}

/// Times a run: wall clock in this process, CPU time of the measuring connection's server
/// process.
pub(crate) struct Stopwatch {
    start: Instant,
    cpu_ns: Option<u64>,
}

impl Stopwatch {
    /// Starts timing.
    pub(crate) fn start() -> Stopwatch {
        Stopwatch {
            cpu_ns: backend_cpu_ns(),
            start: Instant::now(),
        }
    }

    /// Stops timing.
    pub(crate) fn lap(&self) -> Lap {
        let wall = self.start.elapsed();
        let cpu_ms = match (self.cpu_ns, backend_cpu_ns()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6),
            _ => None,
        };
        Lap { wall, cpu_ms }
    }
}

/// Repeated measurements of one figure, in milliseconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    ms: Vec<f64>,
    cpu_ms: Vec<f64>,
}

impl Samples {
    /// Records one run (wall time only).
    pub(crate) fn push(&mut self, elapsed: Duration) {
        self.ms.push(elapsed.as_secs_f64() * 1e3);
    }

    /// Records one run with the server's CPU time when known.
    pub(crate) fn push_lap(&mut self, lap: Lap) {
        self.push(lap.wall);
        if let Some(cpu) = lap.cpu_ms {
            self.cpu_ms.push(cpu);
        }
    }

    /// The median server CPU time, when every run recorded one.
    pub(crate) fn cpu_median(&self) -> Option<f64> {
        (!self.cpu_ms.is_empty() && self.cpu_ms.len() == self.ms.len())
            .then(|| median_of(&self.cpu_ms))
    }

    /// Records one run given in milliseconds.
    #[cfg(test)]
    pub(crate) fn push_ms(&mut self, ms: f64) {
        self.ms.push(ms);
    }

    /// Number of runs recorded.
    pub(crate) fn runs(&self) -> usize {
        self.ms.len()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (the mean of the two middle runs for an even count); 0 when empty.
    pub(crate) fn median(&self) -> f64 {
        median_of(&self.ms)
    }

    /// The fastest run; 0 when empty.
    pub(crate) fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(0.0)
    }

    /// The slowest run; 0 when empty.
    pub(crate) fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(0.0)
    }

    /// `{"median_ms", "min_ms", "max_ms", "runs", "all_ms", "server_cpu_median_ms"}`.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "median_ms": round3(self.median()),
            "min_ms": round3(self.min()),
            "max_ms": round3(self.max()),
            "runs": self.runs(),
            "all_ms": self.ms.iter().map(|m| round3(*m)).collect::<Vec<_>>(),
            "server_cpu_median_ms": self.cpu_median().map(round3),
        })
    }
}

fn median_of(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Rounds to three decimals (microseconds when the unit is milliseconds).
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Resets the process's peak-RSS mark (Linux: writing 5 to `/proc/self/clear_refs`), so the
/// next [`peak_rss_mib`] reports the peak of one phase. Returns false when the kernel does
/// not support it (then the peaks are cumulative).
pub(crate) fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The process's peak resident set size since the last reset, in MiB (Linux `VmHWM`).
pub(crate) fn peak_rss_mib() -> Option<f64> {
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
