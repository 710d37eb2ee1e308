//! `hogsend-bench`: the benchmarks, kept out of the product binary.
//!
//! - `hogsend-bench engine --database-url URL --contacts N [--runs K] [--out results.json]
//!   [--keep]`: the engine suite. Creates its own database `hogsend_bench_<N>` on that
//!   server, measures every phase and prints a table; `--out` writes the JSON report. Exit
//!   code 1 when the compiled backfill disagrees with its references (hand-written SQL,
//!   per-contact loop). See [`suite`] and BENCHMARKS.md.
//! - `hogsend-bench check`: generates a large project and times `check` on it
//!   ([`check_bench`]).
//! - `hogsend-bench flood --database-url URL [--contacts N] [--rates 1000,3000,0]
//!   [--seconds S]`: the daemon under a flood of distinct contacts, with a visibility probe
//!   and the real-time backlog ([`flood`]).
//! - `hogsend-bench import --database-url URL [--contacts N] [--batch-size B]`: times
//!   `hogsend import contacts` on a generated CSV (first import, re-import) next to a plain
//!   COPY of the same contacts ([`import_bench`]).
//! - `hogsend-bench journeys --database-url URL [--contacts N] [--runs K] [--http-rate R]
//!   [--http-seconds S] [--out results.json]`: the journey engine with one run per contact
//!   parked at a wait: quiet tick, due runs next to a hand-written floor, a bucket entry
//!   enrolling an `on enter` reaction, sign-ups through `POST /v1/events` until their
//!   message is queued ([`journeys`]).
//! - `hogsend-bench fresh-load --database-url URL [--contacts N] [--ticks K]`: the backfill
//!   and the first quiet ticks right after a bulk load, with autovacuum off and no VACUUM or
//!   ANALYZE ([`fresh_load`]).
//! - `hogsend-bench email --database-url URL --provider log|http|smtp [--contacts N]
//!   [--smtp HOST:PORT]`: the delivery worker sending N queued messages with rendering, and
//!   the peak RSS ([`email`]).
//!
//! `bench` and `bench-check` are accepted as aliases of the two (their names when they were
//! subcommands of `hogsend`). An `Err` is printed as `error: …` with exit code 2.

mod baseline;
mod check_bench;
mod daemon;
mod dataset;
mod email;
mod enrol_http;
mod flood;
mod floor;
mod fresh_load;
mod handwritten;
mod http_ingest;
mod import_bench;
mod journeys;
mod measure;
mod project;
mod report;
mod rows;
mod server;
mod suite;
mod ticks;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

/// Benchmarks of hogsend (development tool; not part of the product binary).
#[derive(Debug, Parser)]
#[command(name = "hogsend-bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmark the engine on a synthetic dataset, next to a per-contact baseline
    #[command(alias = "bench")]
    Engine(EngineArgs),
    /// Generate a large project and time `check` on it
    #[command(alias = "bench-check")]
    Check(check_bench::Args),
    /// Flood the daemon with events of distinct contacts and time join visibility
    Flood(flood::Args),
    /// Time `hogsend import contacts` on a generated CSV, next to a plain COPY
    Import(import_bench::Args),
    /// Benchmark the journey engine: one run per contact parked at a wait
    Journeys(journeys::Args),
    /// Time the quiet ticks right after a bulk load, with no VACUUM or ANALYZE
    FreshLoad(fresh_load::Args),
    /// Time the delivery worker sending queued messages through a provider
    Email(email::Args),
}

/// How the engine report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum Format {
    /// A table for people.
    #[default]
    Human,
    /// The JSON report on stdout.
    Json,
}

/// Arguments of `hogsend-bench engine`.
#[derive(Debug, clap::Args)]
struct EngineArgs {
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
    /// Output format of the report
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Engine(args) => engine(args),
        Command::Check(args) => check_bench::run(&args),
        Command::Flood(args) => flood::run(&args),
        Command::Import(args) => import_bench::run(&args),
        Command::Journeys(args) => journeys::run(&args),
        Command::FreshLoad(args) => fresh_load::run(&args),
        Command::Email(args) => email::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the engine suite.
fn engine(args: EngineArgs) -> Result<ExitCode> {
    let options = suite::Options {
        url: args.database_url,
        contacts: args.contacts.max(100),
        runs: args.runs.max(1),
        baseline_sample: args.baseline_sample.max(1),
        keep: args.keep,
        verbose: !args.quiet,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let report = runtime.block_on(suite::run(&options))?;
    let json = report.to_json();
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&json)?),
        Format::Human => print!("{}", report.to_text()),
    }
    if !report.references_agree() {
        eprintln!(
            "error: the compiled backfill disagrees with the hand-written SQL or the per-contact baseline (see the report)"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
