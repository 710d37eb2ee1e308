//! `hogsend bench --database-url URL --contacts N [--runs K] [--out results.json] [--keep]`:
//! the benchmark suite (issue 4). Creates its own database `hogsend_bench_<N>` on that server,
//! measures every phase and prints a table; `--out` writes the JSON report. Exit code 1 when
//! the compiled backfill disagrees with its references (hand-written SQL, per-contact loop).
//! See `src/bench/` and BENCHMARKS.md.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::bench::{self, Options};
use crate::output::{Format, Output};

/// Arguments of `hogsend bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Postgres server URL (any database on it; the bench creates and drops its own)
    #[arg(long, value_name = "URL", env = "DATABASE_URL")]
    database_url: String,
    /// Number of contacts (about 10 events each)
    #[arg(long, default_value_t = 100_000)]
    contacts: u64,
    /// Measured runs per figure (each figure is the median, with min and max)
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Write the JSON report here
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Keep the database afterwards; a later run with --keep at the same size reuses its data
    #[arg(long)]
    keep: bool,
    /// Run the per-contact baseline over all contacts up to this many, else over an evenly
    /// spaced sample of this many and extrapolate
    #[arg(long, default_value_t = 1000, value_name = "N")]
    baseline_sample: i64,
    /// No progress lines on stderr
    #[arg(long)]
    quiet: bool,
}

/// Runs the command.
pub fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let options = Options {
        url: args.database_url,
        contacts: args.contacts.max(100),
        runs: args.runs.max(1),
        baseline_sample: args.baseline_sample.max(1),
        keep: args.keep,
        verbose: !args.quiet,
    };
    let report = crate::database::runtime()?.block_on(bench::run(&options))?;
    let json = report.to_json();
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    match out.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&json)?),
        Format::Human => print!("{}", report.to_text()),
    }
    if !report.references_agree() {
        eprintln!(
            "{} the compiled backfill disagrees with the hand-written SQL or the per-contact baseline (see the report)",
            out.severity_prefix(true)
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
