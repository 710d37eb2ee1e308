//! A quiet tick right after a bulk load (`hogsend-bench fresh-load`). The other suites
//! vacuum and analyze after each bulk change; a real import does not wait for that, and
//! autovacuum may be off or behind. This suite creates its own database, migrates the
//! standard 20-bucket project, turns autovacuum off for every table of the schema, loads
//! the engine suite's dataset (10 events per contact, `dataset.sql`) with no VACUUM and no
//! ANALYZE afterwards, then runs the first tick (the backfill) and the quiet ticks after
//! it, each committed at its own instant 30 s apart, exactly as the scheduler would. The
//! bench runs no VACUUM or ANALYZE at all: what the tables' statistics, visibility maps and
//! hint bits are is what the load and the engine itself left.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::Duration;
use serde_json::{json, Value};
use sqlx::{Executor, PgConnection};

use crate::measure::{self, Samples, Stopwatch};
use crate::project::{self, SCHEMA};
use crate::report::{self, Row};
use crate::{dataset, server, ticks};

/// Arguments of `hogsend-bench fresh-load`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Postgres server URL (any database on it; the bench creates and drops its own)
    #[arg(long, value_name = "URL", env = "DATABASE_URL")]
    database_url: String,
    /// Number of contacts (about 10 events each)
    #[arg(long, default_value_t = 100_000)]
    contacts: u64,
    /// Quiet ticks measured after the backfill, 30 s apart
    #[arg(long, default_value_t = 5)]
    ticks: usize,
    /// Write the JSON report here
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Keep the database afterwards
    #[arg(long)]
    keep: bool,
    /// Stop after the load and keep the database (no tick): the state a user's bulk load
    /// leaves, to EXPLAIN the backfill's statements against
    #[arg(long)]
    load_only: bool,
    /// No progress lines on stderr
    #[arg(long)]
    quiet: bool,
}

/// The quiet-tick target (BENCHMARKS.md).
const QUIET_TARGET_MS: f64 = 50.0;

/// Runs the suite and prints its report; exit code 1 when a quiet tick missed the target.
pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let report = runtime.block_on(suite(args))?;
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    print!("{}", report["text"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// Turns autovacuum off for every table of the bench schema (and their TOAST tables).
async fn autovacuum_off(conn: &mut PgConnection) -> Result<Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select format('%I.%I', n.nspname, c.relname) from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = $1 and c.relkind = 'r' order by 1",
    )
    .bind(SCHEMA)
    .fetch_all(&mut *conn)
    .await?;
    for table in &tables {
        conn.execute(
            format!(
                "alter table {table} set (autovacuum_enabled = false, toast.autovacuum_enabled = false)"
            )
            .as_str(),
        )
        .await?;
    }
    Ok(tables)
}

/// When the engine's tables were last vacuumed or analyzed (by anyone), and how many rows
/// changed since the last ANALYZE.
async fn maintenance(conn: &mut PgConnection) -> Result<Value> {
    Ok(sqlx::query_scalar(
        "select coalesce(jsonb_object_agg(relname, jsonb_build_object(
                  'rows_changed_since_analyze', n_mod_since_analyze,
                  'last_vacuum', coalesce(last_vacuum, last_autovacuum),
                  'last_analyze', coalesce(last_analyze, last_autoanalyze))), '{}')
           from pg_stat_user_tables
          where schemaname = $1
            and relname in ('contacts', 'events', 'messages', 'memberships', 'transitions',
                            'runs', 'tick_state', 'buckets')",
    )
    .bind(SCHEMA)
    .fetch_one(&mut *conn)
    .await?)
}

async fn suite(args: &Args) -> Result<Value> {
    let started = Instant::now();
    let say = |what: &str| {
        if !args.quiet {
            eprintln!("[{:>7.1} s] {what}", started.elapsed().as_secs_f64());
        }
    };
    let contacts = args.contacts.max(100);
    let name = format!("hogsend_fresh_{contacts}");
    let mut admin = server::connect(&args.database_url).await?;
    let machine = server::describe(&mut admin).await?;
    server::recreate_database(&mut admin, &name).await?;
    let url = hogsend_runtime::db::with_database(&args.database_url, &name);
    let mut conn = server::connect(&url).await?;
    let backend: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    measure::set_backend(backend);
    let result = async {
        let standard = project::compile(&project::standard_source())?;
        let schema = hogsend_schema::SchemaName::new(SCHEMA)?;
        hogsend_runtime::migrate::migrate(&mut conn, &schema, &standard.files).await?;
        let tables = autovacuum_off(&mut conn).await?;
        say(&format!(
            "loading {contacts} contacts, no VACUUM or ANALYZE afterwards"
        ));
        let t0 = dataset::t_end();
        let data = dataset::load(&mut conn, contacts, t0, dataset::AfterLoad::Nothing).await?;
        let mut rows = Vec::new();
        if args.load_only {
            let maintenance = maintenance(&mut conn).await?;
            return Ok::<_, anyhow::Error>((data, rows, maintenance, tables.len()));
        }
        say("first tick (the backfill), committed");
        let watch = Stopwatch::start();
        let first = hogsend_runtime::db::tick(&mut conn, SCHEMA, Some(t0)).await?;
        let mut backfill = Samples::default();
        backfill.push_lap(watch.lap());
        rows.push(
            Row::new(
                "backfill",
                "first tick after the load (the backfill), committed",
                backfill,
                None,
            )
            .with(ticks::summary_passes(&first)),
        );
        for k in 1..=args.ticks.max(1) {
            say(&format!("quiet tick {k}"));
            let at = t0 + Duration::seconds(30 * k as i64);
            let watch = Stopwatch::start();
            let summary = hogsend_runtime::db::tick(&mut conn, SCHEMA, Some(at)).await?;
            let mut quiet = Samples::default();
            quiet.push_lap(watch.lap());
            rows.push(
                Row::new(
                    &format!("quiet_{k}"),
                    &format!("quiet tick {k} after the load (+{} s), committed", 30 * k),
                    quiet,
                    None,
                )
                .with(ticks::summary_passes(&summary)),
            );
        }
        let maintenance = maintenance(&mut conn).await?;
        Ok::<_, anyhow::Error>((data, rows, maintenance, tables.len()))
    }
    .await;
    drop(conn);
    if !args.keep && !args.load_only {
        server::drop_database(&mut admin, &name).await?;
    }
    let (data, rows, maintenance, tables) = result?;
    let worst = rows
        .iter()
        .filter(|r| r.key.starts_with("quiet_"))
        .map(|r| r.samples.max())
        .fold(0.0, f64::max);
    let mut text = format!(
        "hogsend-bench fresh-load: {contacts} contacts, {} events loaded with no VACUUM or ANALYZE, autovacuum off on {tables} tables\n\
         machine: {} cores, {} GiB; load average {} at the end\n\n",
        data.events,
        machine["cores"],
        machine["memory_gib"],
        json!(server::load_average()),
    );
    text += &report::rows_text(&rows);
    text += &format!(
        "\nslowest quiet tick: {} (target < {QUIET_TARGET_MS} ms: {})\n",
        report::ms_text(worst),
        if worst < QUIET_TARGET_MS {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(json!({
        "suite": "fresh-load",
        "contacts": contacts,
        "database": name,
        "machine": machine,
        "dataset": data.to_json(),
        "autovacuum_off_tables": tables,
        "rows": rows.iter().map(|r| json!({
            "key": r.key, "label": r.label, "timing": r.samples.to_json(), "details": r.extra,
        })).collect::<Vec<_>>(),
        "maintenance_at_the_end": maintenance,
        "slowest_quiet_tick_ms": worst,
        "target_met": worst < QUIET_TARGET_MS,
        "total_s": started.elapsed().as_secs_f64(),
        "text": text,
    }))
}
