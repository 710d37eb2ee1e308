//! `hogsend bench`: the benchmark suite of issue 4. It creates its own database on a given
//! server, migrates the standard 20-bucket project into it, loads a deterministic synthetic
//! dataset generated inside Postgres, and measures every phase of the engine next to a
//! per-contact baseline, a read floor and hand-written set-based SQL. See BENCHMARKS.md for
//! what each figure includes.
//!
//! Modules: `project` (what is compiled), `dataset` (+ `dataset.sql`), `rows` (new events
//! for the incremental phases), `ticks` (the tick phases), `floor`, `handwritten`
//! (+ `handwritten.sql`), `baseline` (+ `eval`), `measure` (statistics, RSS), `server`
//! (database, machine), `report` (table, JSON, targets).

mod baseline;
mod dataset;
mod eval;
mod floor;
mod handwritten;
mod http_ingest;
mod measure;
mod project;
mod report;
mod rows;
mod server;
mod ticks;

use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use sqlx::Executor;

use measure::{peak_rss_mib, reset_peak_rss, Samples};
pub use report::Report;
use report::Row;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server (any database on it; the bench creates its own).
    pub url: String,
    pub contacts: u64,
    pub runs: usize,
    /// At most this many contacts go through the per-contact loop; more are sampled.
    pub baseline_sample: i64,
    /// Keep the database afterwards (and reuse a matching dataset at the next run).
    pub keep: bool,
    /// Progress lines on stderr.
    pub verbose: bool,
}

/// The name of the bench database for a size.
pub fn database_name(contacts: u64) -> String {
    format!("hogsend_bench_{contacts}")
}

/// The instant the dataset ends at and the cold backfill runs at.
pub fn t_end() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .expect("a valid instant")
        .with_timezone(&Utc)
}

/// The scheduler interval of CONTRACT.md's default `tick_every`.
const INTERVAL_S: i64 = 30;

fn progress(options: &Options, started: Instant, what: &str) {
    if options.verbose {
        eprintln!("[{:>7.1} s] {what}", started.elapsed().as_secs_f64());
    }
}

/// Measures one phase's peak RSS: resets the mark, runs `f`, reads the peak.
macro_rules! with_rss {
    ($e:expr) => {{
        reset_peak_rss();
        let value = $e;
        (value, peak_rss_mib())
    }};
}

/// Runs the whole benchmark.
pub async fn run(options: &Options) -> Result<Report> {
    let started = Instant::now();
    let t0 = t_end();
    let quiet = t0 + Duration::seconds(INTERVAL_S);
    let mut rows: Vec<Row> = Vec::new();

    progress(options, started, "compiling the 1,000-bucket project");
    let ((compile, files, bytes), rss) =
        with_rss!(project::time_compile(1000, options.runs.max(5))?);
    rows.push(
        Row::new(
            "compile_1000",
            "compile 1,000 buckets (check+plan+emit, in process)",
            compile,
            rss,
        )
        .with(json!({"files": files, "bytes": bytes})),
    );
    let standard = project::compile(&project::standard_source())?;
    let buckets = &standard.program.buckets;
    let bucket_ids: Vec<String> = buckets.iter().map(|b| b.id.clone()).collect();

    let name = database_name(options.contacts);
    let mut admin = server::connect(&options.url).await?;
    let machine = server::describe(&mut admin).await?;
    let url = hogsend_runtime::db::with_database(&options.url, &name);
    let reuse = options.keep && server::database_exists(&mut admin, &name).await? && {
        let mut conn = server::connect(&url).await?;
        dataset::already_loaded(&mut conn, options.contacts, t0).await?
    };
    if !reuse {
        server::recreate_database(&mut admin, &name).await?;
    }
    let mut conn = server::connect(&url).await?;
    let backend: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    let server_cpu = measure::set_backend(backend);

    progress(options, started, "migrating the standard project");
    let start = Instant::now();
    let schema = hogsend_schema::SchemaName::new(ticks::SCHEMA)?;
    let migrated = hogsend_runtime::migrate::migrate(&mut conn, &schema, &standard.files).await?;
    let mut migrate = Samples::default();
    migrate.push(start.elapsed());
    rows.push(
        Row::new(
            "migrate",
            "migrate: base schema + 20 buckets (once)",
            migrate,
            None,
        )
        .with(json!({"added": migrated.added.len()})),
    );

    let data = if reuse {
        progress(options, started, "reusing the loaded dataset");
        let mut info = dataset::counts(&mut conn).await?;
        info.reused = true;
        info
    } else {
        progress(
            options,
            started,
            &format!("generating {} contacts inside Postgres", options.contacts),
        );
        dataset::load(&mut conn, options.contacts, t0).await?
    };

    progress(options, started, "cold backfill");
    let ((cold, cold_summary), rss) =
        with_rss!(ticks::cold_backfill(&mut conn, options.runs, t0).await?);
    let members: i64 = sqlx::query_scalar("select count(*) from hogsend.memberships where active")
        .fetch_one(&mut conn)
        .await?;
    rows.push(
        Row::new(
            "cold_backfill",
            "cold backfill: first tick after migrate, committed",
            cold,
            rss,
        )
        .with(json!({"members": members, "tick": ticks::summary_passes(&cold_summary)})),
    );
    let start = Instant::now();
    hogsend_runtime::db::vacuum_state(&mut conn, ticks::SCHEMA).await?;
    conn.execute("analyze hogsend.events").await?;
    let mut vacuum = Samples::default();
    vacuum.push(start.elapsed());
    rows.push(Row::new(
        "vacuum_after_backfill",
        "  vacuum analyze after it (as `hogsend tick` does; once)",
        vacuum,
        None,
    ));
    handwritten::snapshot_compiled(&mut conn).await?;
    dataset::checkpoint(&mut conn).await?;
    ticks::prepare_session(&mut conn).await?;

    progress(options, started, "quiet ticks");
    let ((t, _, s), rss) = with_rss!(ticks::tick_phase(&mut conn, options.runs, t0, None).await?);
    rows.push(
        Row::new(
            "tick_nothing_same_instant",
            "tick, nothing changed, same instant",
            t,
            rss,
        )
        .with(ticks::summary_passes(&s)),
    );
    let ((t, _, s), rss) =
        with_rss!(ticks::tick_phase(&mut conn, options.runs, quiet, None).await?);
    rows.push(
        Row::new("tick_nothing", "tick, nothing changed, clock +30 s", t, rss)
            .with(ticks::summary_passes(&s)),
    );

    for (key, share, seed) in [("1pct", 0.01, 11_u64), ("0_1pct", 0.001, 12)] {
        progress(
            options,
            started,
            &format!("ticks after {key} of contacts changed"),
        );
        let picked = rows::sample_contacts(options.contacts, share, seed);
        let keys: Vec<String> = picked.iter().map(|i| rows::contact_key(*i)).collect();
        let batch = rows::events_for_keys(&keys, (1, 4), t0, quiet, seed);
        let label = if key == "1pct" { "1%" } else { "0.1%" };
        let ((t, copy, s), rss) =
            with_rss!(ticks::tick_phase(&mut conn, options.runs, quiet, Some(&batch)).await?);
        rows.push(Row::new(&format!("tick_changed_{key}"), &format!("tick after {label} of contacts got new events (+30 s)"), t, rss)
            .with(json!({"contacts": keys.len(), "events": batch.rows, "tick": ticks::summary_passes(&s)})));
        rows.push(Row::new(
            &format!("copy_changed_{key}"),
            &format!("  COPY of those {} events (before the tick)", batch.rows),
            copy,
            None,
        ));
        let (eval, rss) = with_rss!(
            ticks::evaluate_only(&mut conn, options.runs, quiet, &batch, &keys, &bucket_ids)
                .await?
        );
        rows.push(Row::new(
            &format!("evaluate_changed_{key}"),
            &format!(
                "  evaluate only those {} contacts (20 matchers)",
                keys.len()
            ),
            eval,
            rss,
        ));
    }

    progress(options, started, "clock ticks");
    for (key, label, after) in [
        (
            "tick_clock_1h",
            "tick, no new events, clock +1 hour",
            Duration::hours(1),
        ),
        (
            "tick_clock_1d",
            "tick, no new events, clock +1 day",
            Duration::days(1),
        ),
    ] {
        let ((t, _, s), rss) =
            with_rss!(ticks::tick_phase(&mut conn, options.runs, t0 + after, None).await?);
        rows.push(Row::new(key, label, t, rss).with(ticks::summary_passes(&s)));
    }

    progress(options, started, "ingest");
    let ingest_n = (options.contacts as usize / 10).max(1000);
    let batch = rows::ingest_batch(options.contacts, ingest_n, t0, quiet, 13);
    let ((t, copy, s), rss) =
        with_rss!(ticks::tick_phase(&mut conn, options.runs, quiet, Some(&batch)).await?);
    let per_s = |ms: f64| {
        if ms > 0.0 {
            batch.rows as f64 / (ms / 1e3)
        } else {
            0.0
        }
    };
    rows.push(
        Row::new(
            "ingest_copy",
            &format!("ingest: COPY {} events (1% for new keys)", batch.rows),
            copy.clone(),
            rss,
        )
        .with(json!({"events": batch.rows, "events_per_s": per_s(copy.median())})),
    );
    rows.push(Row::new("ingest_tick", "  tick after that COPY (+30 s)", t.clone(), None)
        .with(json!({"events_per_s_copy_plus_tick": per_s(copy.median() + t.median()), "tick": ticks::summary_passes(&s)})));

    progress(options, started, "read floor");
    let (floor, rss) = with_rss!(floor::measure(&mut conn, buckets, options.runs, t0).await?);
    rows.push(Row::new(
        "floor",
        "read floor: 20 buckets' relevant data, counted",
        floor,
        rss,
    ));

    progress(options, started, "hand-written set-based SQL");
    let ((hand, check), rss) =
        with_rss!(handwritten::measure(&mut conn, buckets, options.runs, t0).await?);
    rows.push(
        Row::new(
            "handwritten",
            "hand-written set-based SQL: 20 buckets, read + write",
            hand,
            rss,
        )
        .with(check.to_json()),
    );

    progress(options, started, "per-contact baseline");
    let (base, rss) = with_rss!(
        baseline::measure(
            &mut conn,
            buckets,
            options.runs.min(3),
            options.baseline_sample,
            t0
        )
        .await?
    );

    progress(options, started, "dwell");
    let (dwell_members, due, all_members) = ticks::setup_dwell(&mut conn, quiet).await?;
    let ((t, _, s), dwell_rss) =
        with_rss!(ticks::tick_phase(&mut conn, options.runs, quiet, None).await?);
    rows.push(Row::new("dwell", &format!("tick with {dwell_members} dwell members, {due} due (+30 s)"), t, dwell_rss)
        .with(json!({"members_in_bucket": dwell_members, "due": due, "active_memberships": all_members,
                     "dwell_pass_ms": ticks::summary_number(&s, &["passes", "dwell", "ms"]),
                     "dwell_fires": ticks::summary_number(&s, &["passes", "dwell", "fires"]),
                     "tick": ticks::summary_passes(&s)})));

    progress(options, started, "HTTP ingest against an in-process daemon");
    let (http, http_rss) = with_rss!(
        http_ingest::measure(
            &mut conn,
            &url,
            standard.files.clone(),
            options.contacts,
            (options.contacts as usize / 2).clamp(1000, 100_000),
            options.runs,
            t0,
            quiet,
        )
        .await?
    );
    let copy_per_s = per_s(copy.median());
    rows.push(
        Row::new(
            "ingest_http",
            &format!(
                "ingest: POST /v1/events, {} events in batches of {}",
                http.events,
                http_ingest::BATCH
            ),
            http.sustained.clone(),
            http_rss,
        )
        .with({
            let mut details = http.to_json();
            details["vs_copy"] = json!(if copy_per_s > 0.0 {
                http.events_per_s() / copy_per_s
            } else {
                0.0
            });
            details
        }),
    );
    rows.push(Row::new(
        "ingest_http_realtime",
        "  until the real-time pass evaluated every touched contact",
        http.catch_up.clone(),
        None,
    ));
    rows.push(
        Row::new(
            "ingest_http_paced",
            &format!(
                "  the same at half that rate ({:.0} events/s offered)",
                http.paced_rate
            ),
            http.paced.clone(),
            None,
        )
        .with(json!({
            "p50_ms": http_ingest::percentile(&http.paced_latencies_ms, 0.5),
            "p99_ms": http_ingest::percentile(&http.paced_latencies_ms, 0.99),
        })),
    );
    if options.keep {
        http_ingest::clean_up(&mut conn).await?;
    }

    drop(conn);
    if !options.keep {
        server::drop_database(&mut admin, &name).await?;
    }
    progress(options, started, "done");

    Ok(Report::new(report::Inputs {
        contacts: options.contacts,
        runs: options.runs,
        database: name,
        kept: options.keep,
        machine,
        server_cpu,
        dataset: data.to_json(),
        rows,
        baseline: base,
        baseline_rss: rss,
        total_s: started.elapsed().as_secs_f64(),
        t0,
    }))
}

/// The report's JSON shape version.
pub const FORMAT_VERSION: u32 = 1;

/// Used by the report for the "machine was busy" note.
pub fn now_load() -> Value {
    json!(server::load_average())
}
