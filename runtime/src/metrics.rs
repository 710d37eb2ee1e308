//! Process metrics in the Prometheus text format (`GET /metrics`).
//!
//! Counters and histograms are plain atomics: no registry crate, no allocation on the hot
//! path. Member counts per bucket are read from the database at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A cumulative histogram of durations.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// What waits for the real-time pass (see `realtime::Pending::backlog`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Contacts waiting, the pass in progress's included.
    pub contacts: usize,
    /// How long the oldest change among them has waited; `None` when none waits.
    pub oldest_age: Option<Duration>,
}

/// The passes a tick reports durations for.
pub const PASSES: [&str; 4] = ["total", "backfill", "reconcile", "dwell"];

/// Everything the daemon counts (each field is the Prometheus series of the same name,
/// prefixed `hogsend_`; see [`Metrics::render`]).
#[derive(Default)]
#[allow(missing_docs)]
pub struct Metrics {
    pub events_ingested: AtomicU64,
    pub events_duplicate: AtomicU64,
    pub ingest_requests: AtomicU64,
    pub ingest_rejected: AtomicU64,
    pub ingest_latency: Histogram,
    pub ticks_ok: AtomicU64,
    pub ticks_failed: AtomicU64,
    pub ticks_skipped: AtomicU64,
    /// Sum of milliseconds and count per pass, in [`PASSES`] order.
    tick_pass_ms: Mutex<[(f64, u64); 4]>,
    pub transitions_entered: AtomicU64,
    pub transitions_left: AtomicU64,
    pub transitions_dwell: AtomicU64,
    pub realtime_flushes: AtomicU64,
    pub realtime_failures: AtomicU64,
    pub realtime_keys: AtomicU64,
    /// Real-time passes' own work: the call's duration less its wait for the pass lock.
    pub realtime_latency: Histogram,
    /// Real-time passes' wait for the pass lock (a tick or a merge holding it).
    pub realtime_lock_wait: Histogram,
    pub rate_limited: AtomicU64,
    /// Messages the delivery worker sent, skipped, failed, or put back for a retry.
    pub email_sent: AtomicU64,
    pub email_skipped: AtomicU64,
    pub email_failed: AtomicU64,
    pub email_retries: AtomicU64,
    /// Queued → sent, per message sent.
    pub email_latency: Histogram,
    /// The delivery worker's provider (`log`, `smtp`, `http`): the `provider` label of the
    /// delivery series. Set once when the daemon starts; `log` when unset.
    pub email_provider: std::sync::OnceLock<&'static str>,
    /// Provider webhooks applied (a webhook delivered twice counts once).
    pub email_delivered: AtomicU64,
    pub email_bounced_hard: AtomicU64,
    pub email_bounced_soft: AtomicU64,
    pub email_complained: AtomicU64,
}

fn num(v: &serde_json::Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

impl Metrics {
    /// Counts a successful tick from its JSON summary.
    pub fn record_tick(&self, summary: &serde_json::Value) {
        self.ticks_ok.fetch_add(1, Ordering::Relaxed);
        let ms = [
            num(summary, &["ms"]),
            num(summary, &["passes", "backfill", "ms"]),
            num(summary, &["passes", "reconcile", "ms"]),
            num(summary, &["passes", "dwell", "ms"]),
        ];
        if let Ok(mut passes) = self.tick_pass_ms.lock() {
            for (slot, ms) in passes.iter_mut().zip(ms) {
                slot.0 += ms;
                slot.1 += 1;
            }
        }
        let joins = num(summary, &["passes", "backfill", "joins"])
            + num(summary, &["passes", "reconcile", "joins"]);
        let leaves = num(summary, &["passes", "backfill", "leaves"])
            + num(summary, &["passes", "reconcile", "leaves"]);
        self.transitions_entered
            .fetch_add(joins as u64, Ordering::Relaxed);
        self.transitions_left
            .fetch_add(leaves as u64, Ordering::Relaxed);
        self.transitions_dwell.fetch_add(
            num(summary, &["passes", "dwell", "fires"]) as u64,
            Ordering::Relaxed,
        );
    }

    /// Counts the transitions of a real-time pass from its JSON summary.
    pub fn record_realtime(&self, summary: &serde_json::Value) {
        if let Some(buckets) = summary.get("buckets").and_then(|b| b.as_object()) {
            for b in buckets.values() {
                self.transitions_entered
                    .fetch_add(num(b, &["joins"]) as u64, Ordering::Relaxed);
                self.transitions_left
                    .fetch_add(num(b, &["leaves"]) as u64, Ordering::Relaxed);
            }
        }
    }

    /// The metrics as Prometheus text; `members` are the live member counts per bucket,
    /// `backlog` the real-time pass's.
    pub fn render(&self, members: &[(String, i64)], backlog: &Backlog) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            &mut out,
            "hogsend_events_ingested_total",
            "Events stored through the API.",
            load(&self.events_ingested),
        );
        counter(
            &mut out,
            "hogsend_events_duplicate_total",
            "Events not stored because their message id was already known.",
            load(&self.events_duplicate),
        );
        counter(
            &mut out,
            "hogsend_ingest_requests_total",
            "Ingest requests accepted.",
            load(&self.ingest_requests),
        );
        counter(
            &mut out,
            "hogsend_ingest_rejected_total",
            "Ingest requests rejected as invalid (4xx).",
            load(&self.ingest_rejected),
        );
        counter(
            &mut out,
            "hogsend_rate_limited_total",
            "Requests refused by the per-key rate limit.",
            load(&self.rate_limited),
        );
        let _ = writeln!(
            out,
            "# HELP hogsend_ingest_duration_seconds Latency of accepted ingest requests.\n# TYPE hogsend_ingest_duration_seconds histogram"
        );
        self.ingest_latency
            .render(&mut out, "hogsend_ingest_duration_seconds", "");
        let _ = writeln!(
            out,
            "# HELP hogsend_ticks_total Ticks by result (skipped: another daemon holds the scheduler lock).\n# TYPE hogsend_ticks_total counter"
        );
        for (result, c) in [
            ("ok", &self.ticks_ok),
            ("failed", &self.ticks_failed),
            ("skipped", &self.ticks_skipped),
        ] {
            let _ = writeln!(
                out,
                "hogsend_ticks_total{{result=\"{result}\"}} {}",
                load(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hogsend_tick_pass_seconds Time spent per tick pass (sum and count of successful ticks).\n# TYPE hogsend_tick_pass_seconds summary"
        );
        if let Ok(passes) = self.tick_pass_ms.lock() {
            for (pass, (ms, count)) in PASSES.iter().zip(passes.iter()) {
                let _ = writeln!(
                    out,
                    "hogsend_tick_pass_seconds_sum{{pass=\"{pass}\"}} {}\nhogsend_tick_pass_seconds_count{{pass=\"{pass}\"}} {count}",
                    ms / 1000.0
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP hogsend_transitions_total Transitions made by this daemon's ticks and real-time passes.\n# TYPE hogsend_transitions_total counter"
        );
        for (kind, c) in [
            ("entered", &self.transitions_entered),
            ("left", &self.transitions_left),
            ("dwell", &self.transitions_dwell),
        ] {
            let _ = writeln!(
                out,
                "hogsend_transitions_total{{kind=\"{kind}\"}} {}",
                load(c)
            );
        }
        counter(
            &mut out,
            "hogsend_realtime_flushes_total",
            "Real-time passes run.",
            load(&self.realtime_flushes),
        );
        counter(
            &mut out,
            "hogsend_realtime_failures_total",
            "Real-time passes that failed (their contacts wait for the next tick).",
            load(&self.realtime_failures),
        );
        counter(
            &mut out,
            "hogsend_realtime_keys_total",
            "Contacts re-evaluated by real-time passes.",
            load(&self.realtime_keys),
        );
        let _ = writeln!(
            out,
            "# HELP hogsend_realtime_pass_seconds Duration of real-time passes, not counting their wait for the pass lock.\n# TYPE hogsend_realtime_pass_seconds histogram"
        );
        self.realtime_latency
            .render(&mut out, "hogsend_realtime_pass_seconds", "");
        let _ = writeln!(
            out,
            "# HELP hogsend_realtime_lock_wait_seconds Time real-time passes waited for the pass lock (held by a tick or a merge).\n# TYPE hogsend_realtime_lock_wait_seconds histogram"
        );
        self.realtime_lock_wait
            .render(&mut out, "hogsend_realtime_lock_wait_seconds", "");
        let _ = writeln!(
            out,
            "# HELP hogsend_realtime_backlog_contacts Contacts touched by ingest waiting for the real-time pass.\n# TYPE hogsend_realtime_backlog_contacts gauge\nhogsend_realtime_backlog_contacts {}",
            backlog.contacts
        );
        let _ = writeln!(
            out,
            "# HELP hogsend_realtime_backlog_age_seconds How long the oldest change waiting for the real-time pass has waited (0 when none waits).\n# TYPE hogsend_realtime_backlog_age_seconds gauge\nhogsend_realtime_backlog_age_seconds {}",
            backlog.oldest_age.unwrap_or_default().as_secs_f64()
        );
        let provider = self.email_provider.get().copied().unwrap_or("log");
        let _ = writeln!(
            out,
            "# HELP hogsend_email_messages_total Messages delivered by this daemon's worker, by outcome (retry: a transient failure, tried again later) and provider.\n# TYPE hogsend_email_messages_total counter"
        );
        for (outcome, c) in [
            ("sent", &self.email_sent),
            ("skipped", &self.email_skipped),
            ("failed", &self.email_failed),
            ("retry", &self.email_retries),
        ] {
            let _ = writeln!(
                out,
                "hogsend_email_messages_total{{outcome=\"{outcome}\",provider=\"{provider}\"}} {}",
                load(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hogsend_email_delivery_seconds Time from a message's creation (queued) to its acceptance by the provider, by provider.\n# TYPE hogsend_email_delivery_seconds histogram"
        );
        self.email_latency.render(
            &mut out,
            "hogsend_email_delivery_seconds",
            &format!("provider=\"{}\"", label(provider)),
        );
        let _ = writeln!(
            out,
            "# HELP hogsend_email_provider_events_total Provider webhooks applied by this daemon, by event (a webhook delivered twice counts once).\n# TYPE hogsend_email_provider_events_total counter"
        );
        for (event, c) in [
            ("delivered", &self.email_delivered),
            ("bounced_hard", &self.email_bounced_hard),
            ("bounced_soft", &self.email_bounced_soft),
            ("complained", &self.email_complained),
        ] {
            let _ = writeln!(
                out,
                "hogsend_email_provider_events_total{{event=\"{event}\"}} {}",
                load(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hogsend_bucket_members Active members per bucket.\n# TYPE hogsend_bucket_members gauge"
        );
        for (bucket, n) in members {
            let _ = writeln!(out, "hogsend_bucket_members{{bucket=\"{bucket}\"}} {n}");
        }
        out
    }
}

/// What `/metrics` reads from the database at scrape time about journeys and messages
/// (cheap grouped counts).
#[derive(Debug, Default)]
pub struct JourneyGauges {
    /// Runs per (journey, status).
    pub runs: Vec<(String, String, i64)>,
    /// Enrolments skipped per (journey, reason), since the journey was first deployed.
    pub skipped: Vec<(String, String, i64)>,
    /// Messages per status.
    pub messages: Vec<(String, i64)>,
}

/// A label value escaped for the Prometheus text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl JourneyGauges {
    /// The gauges as Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP hogsend_journey_runs Journey runs by journey and status.\n# TYPE hogsend_journey_runs gauge"
        );
        for (journey, status, n) in &self.runs {
            let _ = writeln!(
                out,
                "hogsend_journey_runs{{journey=\"{}\",status=\"{}\"}} {n}",
                label(journey),
                label(status)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hogsend_journey_enrolments_skipped_total Enrolments skipped by a guard, by journey and reason.\n# TYPE hogsend_journey_enrolments_skipped_total counter"
        );
        for (journey, reason, n) in &self.skipped {
            let _ = writeln!(
                out,
                "hogsend_journey_enrolments_skipped_total{{journey=\"{}\",reason=\"{}\"}} {n}",
                label(journey),
                label(reason)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hogsend_messages Messages in the outbox by status.\n# TYPE hogsend_messages gauge"
        );
        for (status, n) in &self.messages {
            let _ = writeln!(out, "hogsend_messages{{status=\"{}\"}} {n}", label(status));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_histograms_and_ticks() {
        let m = Metrics::default();
        m.ingest_latency.observe(Duration::from_millis(3));
        m.record_tick(&serde_json::json!({
            "ms": 12.5, "passes": {"backfill": {"ms": 0, "joins": 2, "leaves": 0},
                                   "reconcile": {"ms": 10, "joins": 1, "leaves": 1},
                                   "dwell": {"ms": 1, "fires": 3}}}));
        let backlog = Backlog {
            contacts: 12,
            oldest_age: Some(Duration::from_millis(1500)),
        };
        let text = m.render(&[("power_user".into(), 7)], &backlog);
        assert!(
            text.contains("hogsend_realtime_backlog_contacts 12\n"),
            "{text}"
        );
        assert!(
            text.contains("hogsend_realtime_backlog_age_seconds 1.5\n"),
            "{text}"
        );
        assert!(text.contains("hogsend_ingest_duration_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("hogsend_ingest_duration_seconds_bucket{le=\"0.001\"} 0"));
        assert!(text.contains("hogsend_ticks_total{result=\"ok\"} 1"));
        assert!(text.contains("hogsend_transitions_total{kind=\"entered\"} 3"));
        assert!(text.contains("hogsend_transitions_total{kind=\"dwell\"} 3"));
        assert!(text.contains("hogsend_tick_pass_seconds_sum{pass=\"total\"} 0.0125"));
        assert!(text.contains("hogsend_bucket_members{bucket=\"power_user\"} 7"));
        m.email_bounced_hard.fetch_add(2, Ordering::Relaxed);
        let text = m.render(&[], &backlog);
        assert!(text.contains("# TYPE hogsend_email_provider_events_total counter"));
        assert!(text.contains("hogsend_email_provider_events_total{event=\"bounced_hard\"} 2"));
        assert!(text.contains("hogsend_email_provider_events_total{event=\"complained\"} 0"));
        m.email_provider.set("smtp").unwrap();
        m.email_retries.fetch_add(4, Ordering::Relaxed);
        m.email_latency.observe(Duration::from_millis(40));
        let text = m.render(&[], &backlog);
        assert!(
            text.contains("hogsend_email_messages_total{outcome=\"retry\",provider=\"smtp\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("hogsend_email_messages_total{outcome=\"sent\",provider=\"smtp\"} 0\n")
        );
        assert!(text
            .contains("hogsend_email_delivery_seconds_bucket{provider=\"smtp\",le=\"0.05\"} 1\n"));
        assert!(text.contains("hogsend_email_delivery_seconds_count{provider=\"smtp\"} 1\n"));
    }

    #[test]
    fn renders_journey_gauges_with_escaped_labels() {
        let g = JourneyGauges {
            runs: vec![("onboarding".into(), "waiting".into(), 4)],
            skipped: vec![("onboarding".into(), "entry_once".into(), 2)],
            messages: vec![("queued".into(), 9), ("a\"b".into(), 1)],
        };
        let text = g.render();
        assert!(text.contains("# TYPE hogsend_journey_runs gauge"));
        assert!(text.contains("hogsend_journey_runs{journey=\"onboarding\",status=\"waiting\"} 4"));
        assert!(text.contains(
            "hogsend_journey_enrolments_skipped_total{journey=\"onboarding\",reason=\"entry_once\"} 2"
        ));
        assert!(text.contains("hogsend_messages{status=\"queued\"} 9"));
        assert!(text.contains("hogsend_messages{status=\"a\\\"b\"} 1"));
    }
}
