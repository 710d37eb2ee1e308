//! `hogsend-bench check`: generate a large realistic project and time `check` on it.
//!
//! ```text
//! cargo build --release -p hogsend -p hogsend-bench
//! target/release/hogsend-bench check --buckets 1000 --journeys 200 --files 100 --out /tmp/hs-bench
//! /usr/bin/time -v target/release/hogsend check /tmp/hs-bench   # wall time + peak RSS
//! ```
//!
//! The in-process timing covers loading the files (`hogsend_compiler::project::load`, as
//! `hogsend check` does) and checking them, best and median of `--runs`; the peak RSS is
//! the process's high-water mark (`VmHWM`) after the runs.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};

/// Arguments of `hogsend-bench check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Number of buckets to generate
    #[arg(long, default_value_t = 1000)]
    buckets: usize,
    /// Number of journeys to generate
    #[arg(long, default_value_t = 200)]
    journeys: usize,
    /// Number of .hog files to spread them over
    #[arg(long, default_value_t = 100)]
    files: usize,
    /// Where to write the project (default: a fresh directory under the system temp dir)
    #[arg(long)]
    out: Option<PathBuf>,
    /// How many times to check it
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only write the project; do not time anything
    #[arg(long)]
    generate_only: bool,
}

/// Runs the command.
pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let dir = args.out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("hogsend-bench-{}", std::process::id()))
    });
    let files = generate(args.buckets, args.journeys, args.files.max(1));
    let mut bytes = 0;
    for (path, text) in &files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a file path has a parent"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        bytes += text.len();
    }
    println!(
        "generated {} buckets and {} journeys in {} .hog files ({} KiB with templates) under {}",
        args.buckets,
        args.journeys,
        files.iter().filter(|(p, _)| p.ends_with(".hog")).count(),
        bytes / 1024,
        dir.display()
    );
    if args.generate_only {
        return Ok(ExitCode::SUCCESS);
    }
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..args.runs.max(1) {
        let start = Instant::now();
        let set = hogsend_compiler::project::load(&dir)?;
        let checked = hogsend_compiler::check(&set);
        times.push(start.elapsed());
        if checked.program.is_none() {
            anyhow::bail!(
                "the generated project does not check: {} diagnostics, first: {}",
                checked.diagnostics.len(),
                checked.diagnostics[0].message
            );
        }
    }
    times.sort();
    println!(
        "check (load + parse + check), {} runs: best {:.1} ms, median {:.1} ms",
        times.len(),
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3
    );
    match peak_rss_kib() {
        Some(kib) => println!("peak RSS: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak RSS: unavailable (no /proc/self/status)"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A project's `(relative path, text)` pairs (`.hog` files, `templates/<id>.html`,
/// `hogsend.toml`) as a [`SourceSet`], in the loader's order.
pub(crate) fn source_set(files: Vec<(String, String)>) -> SourceSet {
    let mut set = SourceSet::default();
    for (path, text) in files {
        if path.ends_with(".hog") {
            set.files.push(SourceFile::new(path, text));
        } else if let Some(id) = path
            .strip_prefix("templates/")
            .and_then(|p| p.strip_suffix(".html"))
        {
            set.templates.push(TemplateSource {
                id: id.to_owned(),
                html: Some(SourceFile::new(path.clone(), text)),
                text: None,
            });
        } else if path == SourceSet::CONFIG_PATH {
            set.config = Some(SourceFile::new(path, text));
        }
    }
    set.files.sort_by(|a, b| a.path.cmp(&b.path));
    set.templates.sort_by(|a, b| a.id.cmp(&b.id));
    set
}

/// The process's peak resident set size in KiB (Linux `VmHWM`).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

const EVENTS: &[&str] = &[
    "app_opened",
    "project.created",
    "feature.used",
    "invoice.paid",
    "payment.failed",
    "payment.succeeded",
    "report.exported",
    "teammate.invited",
    "\"$pageview\"",
    "\"Order Completed\"",
];

const TEMPLATES: usize = 12;

/// The generated project: `(relative path, text)` pairs, including templates and config.
pub(crate) fn generate(buckets: usize, journeys: usize, files: usize) -> Vec<(String, String)> {
    let mut texts = vec![String::new(); files];
    for i in 0..buckets {
        write_bucket(&mut texts[i % files], i);
    }
    for k in 0..journeys {
        write_journey(&mut texts[(buckets + k) % files], k, buckets, journeys);
    }
    let mut out: Vec<(String, String)> = texts
        .into_iter()
        .enumerate()
        .filter(|(_, t)| !t.is_empty())
        .map(|(i, t)| (format!("defs/part_{i:03}.hog"), t))
        .collect();
    for t in 0..TEMPLATES {
        out.push((
            format!("templates/t{t}.html"),
            format!("---\nsubject: Message {t}\ncategory: transactional\n---\n<p>Hello {{{{ contact.email }}}}</p>\n"),
        ));
    }
    out.push((
        "hogsend.toml".into(),
        "[project]\nname = \"bench\"\n".into(),
    ));
    out
}

fn event(n: usize) -> &'static str {
    EVENTS[n % EVENTS.len()]
}

fn write_bucket(s: &mut String, i: usize) {
    let e1 = event(i);
    let e2 = event(i / 3 + 1);
    let days = 1 + i % 30;
    let criteria = match i % 5 {
        0 => format!("did {e1} and not did {e1} within {days}d"),
        1 => format!("count {e1} within {days}d >= {}", 2 + i % 7),
        2 => format!(
            "contact.plan in [\"pro\", \"team\"] and did {e1} where (event.amount > {}) within {days}d",
            i % 100
        ),
        3 => format!(
            "any {{ did {e1} within {days}d  contact.address.country == \"DE\" }} and not did {e2} within 1d12h"
        ),
        _ => format!(
            "contact.\"signup source\" contains \"ads\" and (did {e1} or did {e2} within 2w)"
        ),
    };
    let _ = writeln!(
        s,
        "// Generated bucket {i}: a realistic mix of atoms.\nbucket b{i} {{\n  name \"Bucket {i}\"\n  description \"Generated for the check benchmark\"\n  criteria {criteria}\n  entry once per 7d\n  min_dwell 1h\n  max_dwell 30d\n  on enter {{ send t{} }}\n  on leave because max_dwell {{ emit bucket_{i}.expired }}\n  on dwell after 3d {{\n    if not did {e2} within 3d {{ send t{} }}\n  }}\n  on dwell every 7d as weekly {{ send t{} }}\n}}\n",
        i % TEMPLATES,
        (i + 1) % TEMPLATES,
        (i + 2) % TEMPLATES
    );
}

fn write_journey(s: &mut String, k: usize, buckets: usize, journeys: usize) {
    let trigger = match (k % 3, buckets) {
        (0, b) if b > 0 => format!("enter b{}", (k * 5) % b),
        (1, b) if b > 0 => format!("dwell b{}.after_3d", (k * 7) % b),
        _ => format!(
            "event user.signed_up where (event.plan == \"trial\" and event.seats >= {})",
            k % 5
        ),
    };
    let e1 = event(k + 1);
    let e2 = event(k + 2);
    let start = if k + 1 < journeys {
        format!("  start j{}\n", k + 1)
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "// Generated journey {k}.\njourney j{k} {{\n  name \"Journey {k}\"\n  trigger {trigger}\n  entry once per 30d\n  exit when did user.deleted or did subscription.started\n\n  send t{}\n  wait until did {e1} since entry, at most 3d\n  if did {e1} since entry {{\n    send t{}\n  }} else if contact.score > 10 {{\n    send t{}\n  }} else {{\n    wait 2d\n    if not did {e2} within 2d {{ send t{} }}\n  }}\n  wait until 09:00 on weekdays in contact.timezone\n{start}  emit journey_{k}.finished\n}}\n",
        k % TEMPLATES,
        (k + 3) % TEMPLATES,
        (k + 4) % TEMPLATES,
        (k + 5) % TEMPLATES
    );
}
