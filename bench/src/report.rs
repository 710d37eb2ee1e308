//! The benchmark report: the measured rows, the baseline / floor / hand-written comparison
//! and the performance targets (BENCHMARKS.md), as aligned text tables and as JSON.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::baseline::Baseline;
use crate::measure::{round3, Samples};

/// The report's JSON shape version.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// One measured figure.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub key: String,
    pub label: String,
    pub samples: Samples,
    /// Peak RSS of this process during the phase, MiB.
    pub rss_mib: Option<f64>,
    pub extra: Value,
}

impl Row {
    /// A row without details.
    pub(crate) fn new(key: &str, label: &str, samples: Samples, rss_mib: Option<f64>) -> Row {
        Row {
            key: key.to_owned(),
            label: label.to_owned(),
            samples,
            rss_mib,
            extra: Value::Null,
        }
    }

    /// Adds details (shown in the JSON only).
    pub(crate) fn with(mut self, extra: Value) -> Row {
        self.extra = extra;
        self
    }
}

/// Everything the report is made of.
pub(crate) struct Inputs {
    pub contacts: u64,
    pub runs: usize,
    pub database: String,
    pub kept: bool,
    pub machine: Value,
    /// Whether the server's CPU time per run could be read (a server on this machine).
    pub server_cpu: bool,
    pub dataset: Value,
    pub rows: Vec<Row>,
    pub baseline: Baseline,
    pub baseline_rss: Option<f64>,
    pub total_s: f64,
    pub t0: DateTime<Utc>,
}

/// One performance target (BENCHMARKS.md).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub name: &'static str,
    pub goal: &'static str,
    pub value: String,
    pub met: bool,
}

/// The finished report.
pub(crate) struct Report {
    inputs: Inputs,
    targets: Vec<Target>,
}

/// The measured rows as an aligned text table (phase, median, min..max, server CPU, peak
/// RSS).
pub(crate) fn rows_text(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<58} {:>10} {:>21} {:>10} {:>9}\n",
        "phase", "median", "min..max", "server CPU", "peak RSS"
    );
    for r in rows {
        let s = &r.samples;
        out += &format!(
            "{:<58} {:>10} {:>21} {:>10} {:>9}\n",
            r.label,
            ms_text(s.median()),
            format!("{}..{}", ms_text(s.min()), ms_text(s.max())),
            s.cpu_median().map(ms_text).unwrap_or_default(),
            r.rss_mib.map(|m| format!("{m:.0} MiB")).unwrap_or_default()
        );
    }
    out
}

/// A duration in milliseconds as the tables show it (`12.8 ms`, `1953 ms`, `10.1 s`).
pub(crate) fn ms_text(ms: f64) -> String {
    if ms >= 100_000.0 {
        format!("{:.0} s", ms / 1e3)
    } else if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

impl Report {
    /// Computes the targets from the rows.
    pub(crate) fn new(inputs: Inputs) -> Report {
        let mut report = Report {
            inputs,
            targets: Vec::new(),
        };
        report.targets = report.compute_targets();
        report
    }

    fn median(&self, key: &str) -> f64 {
        self.inputs
            .rows
            .iter()
            .find(|r| r.key == key)
            .map_or(0.0, |r| r.samples.median())
    }

    fn peak_rss(&self) -> f64 {
        self.inputs
            .rows
            .iter()
            .filter_map(|r| r.rss_mib)
            .chain(self.inputs.baseline_rss)
            .fold(0.0, f64::max)
    }

    fn baseline_cold_ms(&self) -> f64 {
        self.inputs.baseline.cold.median() * self.inputs.baseline.scale()
    }

    fn baseline_warm_ms(&self) -> f64 {
        self.inputs.baseline.warm.median() * self.inputs.baseline.scale()
    }

    fn compute_targets(&self) -> Vec<Target> {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
        let quiet = self.median("tick_nothing");
        let changed = ratio(
            self.median("tick_changed_1pct"),
            self.median("evaluate_changed_1pct"),
        );
        let hour = self.median("tick_clock_1h");
        let cold = self.median("cold_backfill");
        let vs_hand = ratio(cold, self.median("handwritten"));
        let vs_base = ratio(self.baseline_cold_ms(), cold);
        let vs_base_warm = ratio(self.baseline_warm_ms(), quiet);
        let compile = self.median("compile_1000");
        let rss = self.peak_rss();
        let http = self
            .inputs
            .rows
            .iter()
            .find(|r| r.key == "ingest_http")
            .map_or(Value::Null, |r| r.extra.clone());
        let vs_copy = http["vs_copy"].as_f64().unwrap_or(0.0);
        let paced_p99 = http["paced"]["p99_ms"].as_f64().unwrap_or(f64::INFINITY);
        vec![
            Target {
                name: "no_change_tick",
                goal: "tick with nothing changed < 50 ms",
                value: format!(
                    "{} (+30 s); {} (same instant)",
                    ms_text(quiet),
                    ms_text(self.median("tick_nothing_same_instant"))
                ),
                met: quiet < 50.0,
            },
            Target {
                name: "changed_1pct_tick",
                goal: "1%-changed tick <= 3x evaluating only those contacts",
                value: format!("{changed:.2}x"),
                met: changed <= 3.0,
            },
            Target {
                name: "clock_1h_tick",
                goal: "1-hour clock advance tick < 1 s",
                value: ms_text(hour),
                met: hour < 1000.0,
            },
            Target {
                name: "cold_vs_handwritten",
                goal: "cold backfill <= 1.5x hand-written SQL (floor + write)",
                value: format!("{vs_hand:.2}x"),
                met: vs_hand <= 1.5,
            },
            Target {
                name: "vs_baseline",
                goal: ">= 100x faster than the per-contact baseline",
                value: format!(
                    "{vs_base:.0}x cold; {vs_base_warm:.0}x per quiet sweep{}",
                    if self.inputs.baseline.sampled() {
                        " (baseline extrapolated from a sample)"
                    } else {
                        ""
                    }
                ),
                met: vs_base >= 100.0,
            },
            Target {
                name: "compile_1000",
                goal: "compile of 1,000 buckets < 1 s",
                value: ms_text(compile),
                met: compile < 1000.0,
            },
            Target {
                name: "http_ingest_vs_copy",
                goal: "POST /v1/events >= 60% of COPY throughput",
                value: format!(
                    "{:.0}% ({} events/s)",
                    vs_copy * 100.0,
                    http["events_per_s"]
                ),
                met: vs_copy >= 0.6,
            },
            Target {
                name: "http_p99_half_rate",
                goal: "HTTP p99 < 100 ms at half the rate",
                value: format!("{paced_p99:.1} ms"),
                met: paced_p99 < 100.0,
            },
            Target {
                name: "rss",
                goal: "hogsend's own RSS < 200 MB throughout",
                value: format!("{rss:.1} MiB peak"),
                met: rss < 200.0,
            },
        ]
    }

    /// Whether the references agree with the compiled backfill: the hand-written SQL found
    /// exactly the same memberships, anchors, timers and transition counts, and the
    /// per-contact loop the same members. A disagreement is a bug in one of them.
    pub(crate) fn references_agree(&self) -> bool {
        let hand = self
            .inputs
            .rows
            .iter()
            .find(|r| r.key == "handwritten")
            .is_some_and(|r| r.extra["agrees_with_compiled"] == json!(true));
        hand && self.inputs.baseline.differing == 0
    }

    /// The report as JSON (what `--out` writes).
    pub(crate) fn to_json(&self) -> Value {
        let i = &self.inputs;
        let rows: Vec<Value> = i
            .rows
            .iter()
            .map(|r| {
                let mut v = r.samples.to_json();
                v["key"] = json!(r.key);
                v["label"] = json!(r.label.trim());
                v["peak_rss_mib"] = json!(r.rss_mib.map(|m| (m * 10.0).round() / 10.0));
                if !r.extra.is_null() {
                    v["details"] = r.extra.clone();
                }
                v
            })
            .collect();
        let mut baseline = i.baseline.to_json();
        baseline["peak_rss_mib"] = json!(i.baseline_rss);
        json!({
            "format_version": FORMAT_VERSION,
            "hogsend_version": env!("CARGO_PKG_VERSION"),
            "contacts": i.contacts,
            "runs": i.runs,
            "database": i.database,
            "database_kept": i.kept,
            "t0": i.t0.to_rfc3339_opts(SecondsFormat::Secs, true),
            "machine": i.machine,
            "server_cpu_measured": i.server_cpu,
            "dataset": i.dataset,
            "phases": rows,
            "comparison": {
                "cold": {
                    "per_contact_baseline_ms": round3(self.baseline_cold_ms()),
                    "read_floor_ms": round3(self.median("floor")),
                    "handwritten_ms": round3(self.median("handwritten")),
                    "compiled_ms": round3(self.median("cold_backfill")),
                },
                "nothing_changed": {
                    "per_contact_baseline_ms": round3(self.baseline_warm_ms()),
                    "compiled_tick_ms": round3(self.median("tick_nothing")),
                },
            },
            "baseline": baseline,
            "references_agree": self.references_agree(),
            "targets": self.targets.iter().map(|t| json!({
                "name": t.name, "goal": t.goal, "value": t.value, "met": t.met,
            })).collect::<Vec<_>>(),
            "total_s": round3(i.total_s),
        })
    }

    /// The report as text tables.
    pub(crate) fn to_text(&self) -> String {
        let i = &self.inputs;
        let mut out = String::new();
        let machine = &i.machine;
        out += &format!(
            "hogsend-bench engine: {} contacts, {} events, {} runs per figure (median, min..max)\n",
            i.contacts, i.dataset["events"], i.runs
        );
        out += &format!(
            "machine: {} cores, {} GiB, {}; load average {} at the end\n\n",
            machine["cores"],
            machine["memory_gib"],
            machine["postgres"]
                .as_str()
                .unwrap_or("?")
                .split(" on ")
                .next()
                .unwrap_or("?"),
            json!(crate::server::load_average()),
        );
        out += &rows_text(&i.rows);
        if let Some(http) = i.rows.iter().find(|r| r.key == "ingest_http") {
            let d = &http.extra;
            out += &format!(
                "  HTTP: {} events/s ({:.0}% of COPY), p50 {} ms, p99 {} ms; at half rate p99 {} ms\n",
                d["events_per_s"],
                d["vs_copy"].as_f64().unwrap_or(0.0) * 100.0,
                d["p50_ms"],
                d["p99_ms"],
                d["paced"]["p99_ms"],
            );
        }

        let b = &i.baseline;
        let sampled = if b.sampled() {
            format!(
                "measured on {} of {} contacts, x{:.0}",
                b.sampled_contacts,
                b.live_contacts,
                b.scale()
            )
        } else {
            format!("all {} contacts", b.live_contacts)
        };
        let cold = self.median("cold_backfill");
        let quiet = self.median("tick_nothing");
        out += "\ncold backfill (every contact, 20 buckets)\n";
        let line = |name: &str, ms: f64, vs: f64| {
            format!(
                "  {:<52} {:>10} {:>12}\n",
                name,
                ms_text(ms),
                if vs > 0.0 {
                    format!("{:.2}x", ms / vs)
                } else {
                    String::new()
                }
            )
        };
        out += &format!("  {:<52} {:>10} {:>12}\n", "", "time", "vs compiled");
        out += &line(
            &format!("per-contact baseline ({sampled})"),
            self.baseline_cold_ms(),
            cold,
        );
        out += &line(
            "read floor (index-only counts, no write)",
            self.median("floor"),
            cold,
        );
        out += &line(
            "hand-written set-based SQL (read + write)",
            self.median("handwritten"),
            cold,
        );
        out += &line("hogsend compiled (first tick)", cold, cold);
        out += "nothing changed (one sweep / one tick)\n";
        out += &line(
            &format!("per-contact baseline ({sampled})"),
            self.baseline_warm_ms(),
            quiet,
        );
        out += &line("hogsend compiled (tick, clock +30 s)", quiet, quiet);
        out += &format!(
            "  baseline: {:.1} queries and {:.2} writes per contact (cold); {} rows differ from the compiled backfill\n",
            if b.cold_pass.contacts == 0 { 0.0 } else { b.cold_pass.queries as f64 / b.cold_pass.contacts as f64 },
            if b.cold_pass.contacts == 0 { 0.0 } else { b.cold_pass.writes as f64 / b.cold_pass.contacts as f64 },
            b.differing
        );
        if let Some(hand) = i.rows.iter().find(|r| r.key == "handwritten") {
            out += &format!(
                "  hand-written: agrees with the compiled backfill: {}\n",
                hand.extra["agrees_with_compiled"]
            );
        }

        out += &format!(
            "\ntargets (stated for 1M contacts{})\n",
            if i.contacts == 1_000_000 {
                ""
            } else {
                ", indicative at this size"
            }
        );
        for t in &self.targets {
            out += &format!(
                "  [{}] {:<56} {}\n",
                if t.met { "met" } else { "MISSED" },
                t.goal,
                t.value
            );
        }
        out += &format!("\ntotal {:.0} s\n", i.total_s);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(ms_text(2.34), "2.3 ms");
        assert_eq!(ms_text(271.828), "272 ms");
        assert_eq!(ms_text(27_182.8), "27.2 s");
        assert_eq!(ms_text(271_828.0), "272 s");
    }
}
