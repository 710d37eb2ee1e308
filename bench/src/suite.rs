//! The engine suite (`hogsend-bench engine`). It creates its own database on a given server,
//! migrates the standard 20-bucket project into it, loads a deterministic synthetic dataset
//! generated inside Postgres, and measures every phase of the engine next to a per-contact
//! baseline, a read floor and hand-written set-based SQL. See BENCHMARKS.md for what each
//! figure includes.
//!
//! [`run`] is the sequence of phases; each phase is one method of [`Session`] (the open
//! bench database and the rows measured so far). The phases' work lives in the modules:
//! `project` (what is compiled), `dataset` (+ `dataset.sql`), `rows` (new events for the
//! incremental phases), `ticks` (the tick phases), `floor`, `handwritten`
//! (+ `handwritten.sql`), `baseline` (the per-contact loop, over `hogsend_compiler::eval`),
//! `http_ingest`, `measure` (statistics, RSS), `server` (database, machine), `report`
//! (table, JSON, targets).

use std::time::Instant;

use anyhow::Result;
use chrono::{DateTime, Duration, Utc};
use hogsend_compiler::ir::Bucket;
use serde_json::{json, Value};
use sqlx::{Executor, PgConnection};

use crate::baseline::{self, Baseline};
use crate::dataset::{self, DatasetInfo};
use crate::measure::{self, peak_rss_mib, reset_peak_rss, Samples};
use crate::project::{self, CompiledProject, SCHEMA};
use crate::report::{self, Report, Row};
use crate::{floor, handwritten, http_ingest, rows, server, ticks};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
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
fn database_name(contacts: u64) -> String {
    format!("hogsend_bench_{contacts}")
}

/// The scheduler interval: the default `tick_every` of `hogsend.toml`.
const INTERVAL_S: i64 = 30;

/// Measures one phase's peak RSS: resets the mark, runs `f`, reads the peak.
macro_rules! with_rss {
    ($e:expr) => {{
        reset_peak_rss();
        let value = $e;
        (value, peak_rss_mib())
    }};
}

/// Progress lines on stderr, timed from the start of the run.
struct Progress {
    verbose: bool,
    started: Instant,
}

impl Progress {
    fn say(&self, what: &str) {
        if self.verbose {
            eprintln!("[{:>7.1} s] {what}", self.started.elapsed().as_secs_f64());
        }
    }
}

/// Runs the whole benchmark: compile, open the database, then every measured phase in
/// order (each later phase starts from the state the backfill left), then tear down.
pub(crate) async fn run(options: &Options) -> Result<Report> {
    let progress = Progress {
        verbose: options.verbose,
        started: Instant::now(),
    };
    let t0 = dataset::t_end();
    progress.say("compiling the 1,000-bucket project");
    let (compile_row, standard) = compile_phase(options.runs)?;
    let mut s = Session::open(options, progress, t0).await?;
    s.rows.push(compile_row);
    s.migrate(&standard).await?;
    let data = s.load_dataset().await?;
    s.cold_backfill().await?;
    s.quiet_ticks().await?;
    let buckets = &standard.program.buckets;
    s.changed_ticks(buckets).await?;
    s.clock_ticks().await?;
    let copy_per_s = s.ingest_copy().await?;
    s.floor(buckets).await?;
    s.handwritten(buckets).await?;
    let (baseline, baseline_rss) = s.baseline(buckets).await?;
    s.dwell().await?;
    s.http_ingest(&standard, copy_per_s).await?;
    s.finish(data, baseline, baseline_rss).await
}

/// Times the compile of the generated 1,000-bucket project and compiles the standard one.
fn compile_phase(runs: usize) -> Result<(Row, CompiledProject)> {
    let ((compile, files, bytes), rss) = with_rss!(project::time_compile(1000, runs.max(5))?);
    let row = Row::new(
        "compile_1000",
        "compile 1,000 buckets (check+plan+emit, in process)",
        compile,
        rss,
    )
    .with(json!({"files": files, "bytes": bytes}));
    Ok((row, project::compile(&project::standard_source())?))
}

/// The bench database, open, and what has been measured in it so far.
struct Session<'o> {
    options: &'o Options,
    progress: Progress,
    /// A connection to the server's database named in the URL (creates and drops ours).
    admin: PgConnection,
    /// The bench database's name and URL.
    name: String,
    url: String,
    /// The connection every phase runs on.
    conn: PgConnection,
    /// Whether a kept database already holds this dataset.
    reuse: bool,
    machine: Value,
    /// Whether the server's CPU time per run can be read.
    server_cpu: bool,
    /// The instant the dataset ends at (the cold backfill's); `quiet` is one interval later.
    t0: DateTime<Utc>,
    quiet: DateTime<Utc>,
    rows: Vec<Row>,
}

impl<'o> Session<'o> {
    /// Connects, describes the machine and (re)creates the bench database unless a kept one
    /// holds this dataset already.
    async fn open(options: &'o Options, progress: Progress, t0: DateTime<Utc>) -> Result<Self> {
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
        Ok(Session {
            options,
            progress,
            admin,
            name,
            url,
            conn,
            reuse,
            machine,
            server_cpu,
            t0,
            quiet: t0 + Duration::seconds(INTERVAL_S),
            rows: Vec::new(),
        })
    }

    /// Migrates the standard project (once).
    async fn migrate(&mut self, standard: &CompiledProject) -> Result<()> {
        self.progress.say("migrating the standard project");
        let start = Instant::now();
        let schema = hogsend_schema::SchemaName::new(SCHEMA)?;
        let migrated =
            hogsend_runtime::migrate::migrate(&mut self.conn, &schema, &standard.files).await?;
        let mut migrate = Samples::default();
        migrate.push(start.elapsed());
        self.rows.push(
            Row::new(
                "migrate",
                "migrate: base schema + 20 buckets (once)",
                migrate,
                None,
            )
            .with(json!({"added": migrated.added.len()})),
        );
        Ok(())
    }

    /// Generates the dataset inside Postgres, or counts the kept one.
    async fn load_dataset(&mut self) -> Result<DatasetInfo> {
        if self.reuse {
            self.progress.say("reusing the loaded dataset");
            let mut info = dataset::counts(&mut self.conn).await?;
            info.reused = true;
            return Ok(info);
        }
        self.progress.say(&format!(
            "generating {} contacts inside Postgres",
            self.options.contacts
        ));
        dataset::load(
            &mut self.conn,
            self.options.contacts,
            self.t0,
            dataset::AfterLoad::VacuumAnalyze,
        )
        .await
    }

    /// The cold backfill, the vacuum after it, and the snapshot every later phase starts
    /// from (the compiled members the references are compared with).
    async fn cold_backfill(&mut self) -> Result<()> {
        self.progress.say("cold backfill");
        let ((cold, cold_summary), rss) =
            with_rss!(ticks::cold_backfill(&mut self.conn, self.options.runs, self.t0).await?);
        let members: i64 =
            sqlx::query_scalar("select count(*) from hogsend.memberships where active")
                .fetch_one(&mut self.conn)
                .await?;
        self.rows.push(
            Row::new(
                "cold_backfill",
                "cold backfill: first tick after migrate, committed",
                cold,
                rss,
            )
            .with(json!({"members": members, "tick": ticks::summary_passes(&cold_summary)})),
        );
        let start = Instant::now();
        hogsend_runtime::db::vacuum_state(&mut self.conn, SCHEMA).await?;
        self.conn.execute("analyze hogsend.events").await?;
        let mut vacuum = Samples::default();
        vacuum.push(start.elapsed());
        self.rows.push(Row::new(
            "vacuum_after_backfill",
            "  vacuum analyze after it (as `hogsend tick` does; once)",
            vacuum,
            None,
        ));
        handwritten::snapshot_compiled(&mut self.conn).await?;
        dataset::checkpoint(&mut self.conn).await?;
        ticks::prepare_session(&mut self.conn).await
    }

    /// Ticks with nothing changed: at the same instant, then one interval later.
    async fn quiet_ticks(&mut self) -> Result<()> {
        self.progress.say("quiet ticks");
        for (key, label, at) in [
            (
                "tick_nothing_same_instant",
                "tick, nothing changed, same instant",
                self.t0,
            ),
            (
                "tick_nothing",
                "tick, nothing changed, clock +30 s",
                self.quiet,
            ),
        ] {
            let ((t, _, s), rss) =
                with_rss!(ticks::tick_phase(&mut self.conn, self.options.runs, at, None).await?);
            self.rows
                .push(Row::new(key, label, t, rss).with(ticks::summary_passes(&s)));
        }
        Ok(())
    }

    /// Ticks after 1% and 0.1% of the contacts got new events, and the evaluation of only
    /// those contacts.
    async fn changed_ticks(&mut self, buckets: &[Bucket]) -> Result<()> {
        let bucket_ids: Vec<String> = buckets.iter().map(|b| b.id.to_string()).collect();
        for (key, label, share, seed) in
            [("1pct", "1%", 0.01, 11_u64), ("0_1pct", "0.1%", 0.001, 12)]
        {
            self.progress
                .say(&format!("ticks after {key} of contacts changed"));
            let picked = rows::sample_contacts(self.options.contacts, share, seed);
            let keys: Vec<String> = picked.iter().map(|i| rows::contact_key(*i)).collect();
            let batch = rows::events_for_keys(&keys, (1, 4), self.t0, self.quiet, seed);
            let ((t, copy, s), rss) = with_rss!(
                ticks::tick_phase(&mut self.conn, self.options.runs, self.quiet, Some(&batch))
                    .await?
            );
            self.rows.push(
                Row::new(
                    &format!("tick_changed_{key}"),
                    &format!("tick after {label} of contacts got new events (+30 s)"),
                    t,
                    rss,
                )
                .with(json!({"contacts": keys.len(), "events": batch.rows,
                             "tick": ticks::summary_passes(&s)})),
            );
            self.rows.push(Row::new(
                &format!("copy_changed_{key}"),
                &format!("  COPY of those {} events (before the tick)", batch.rows),
                copy,
                None,
            ));
            let (eval, rss) = with_rss!(
                ticks::evaluate_only(
                    &mut self.conn,
                    self.options.runs,
                    self.quiet,
                    &batch,
                    &keys,
                    &bucket_ids
                )
                .await?
            );
            self.rows.push(Row::new(
                &format!("evaluate_changed_{key}"),
                &format!(
                    "  evaluate only those {} contacts (20 matchers)",
                    keys.len()
                ),
                eval,
                rss,
            ));
        }
        Ok(())
    }

    /// Ticks with no new events after the clock moved an hour, then a day.
    async fn clock_ticks(&mut self) -> Result<()> {
        self.progress.say("clock ticks");
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
            let at = self.t0 + after;
            let ((t, _, s), rss) =
                with_rss!(ticks::tick_phase(&mut self.conn, self.options.runs, at, None).await?);
            self.rows
                .push(Row::new(key, label, t, rss).with(ticks::summary_passes(&s)));
        }
        Ok(())
    }

    /// A COPY of a batch of events (1% for new keys) and the tick after it. Returns the
    /// COPY's events per second (what the HTTP phase is compared with).
    async fn ingest_copy(&mut self) -> Result<f64> {
        self.progress.say("ingest");
        let ingest_n = (self.options.contacts as usize / 10).max(1000);
        let batch = rows::ingest_batch(self.options.contacts, ingest_n, self.t0, self.quiet, 13);
        let ((t, copy, s), rss) = with_rss!(
            ticks::tick_phase(&mut self.conn, self.options.runs, self.quiet, Some(&batch)).await?
        );
        let per_s = |ms: f64| {
            if ms > 0.0 {
                batch.rows as f64 / (ms / 1e3)
            } else {
                0.0
            }
        };
        self.rows.push(
            Row::new(
                "ingest_copy",
                &format!("ingest: COPY {} events (1% for new keys)", batch.rows),
                copy.clone(),
                rss,
            )
            .with(json!({"events": batch.rows, "events_per_s": per_s(copy.median())})),
        );
        self.rows.push(
            Row::new(
                "ingest_tick",
                "  tick after that COPY (+30 s)",
                t.clone(),
                None,
            )
            .with(json!({
                "events_per_s_copy_plus_tick": per_s(copy.median() + t.median()),
                "tick": ticks::summary_passes(&s),
            })),
        );
        Ok(per_s(copy.median()))
    }

    /// The read floor: every bucket's relevant data, counted.
    async fn floor(&mut self, buckets: &[Bucket]) -> Result<()> {
        self.progress.say("read floor");
        let (floor, rss) =
            with_rss!(floor::measure(&mut self.conn, buckets, self.options.runs, self.t0).await?);
        self.rows.push(Row::new(
            "floor",
            "read floor: 20 buckets' relevant data, counted",
            floor,
            rss,
        ));
        Ok(())
    }

    /// The hand-written set-based SQL, checked against the compiled backfill.
    async fn handwritten(&mut self, buckets: &[Bucket]) -> Result<()> {
        self.progress.say("hand-written set-based SQL");
        let ((hand, check), rss) = with_rss!(
            handwritten::measure(&mut self.conn, buckets, self.options.runs, self.t0).await?
        );
        self.rows.push(
            Row::new(
                "handwritten",
                "hand-written set-based SQL: 20 buckets, read + write",
                hand,
                rss,
            )
            .with(check.to_json()),
        );
        Ok(())
    }

    /// The per-contact baseline (its own section of the report) and its peak RSS.
    async fn baseline(&mut self, buckets: &[Bucket]) -> Result<(Baseline, Option<f64>)> {
        self.progress.say("per-contact baseline");
        Ok(with_rss!(
            baseline::measure(
                &mut self.conn,
                buckets,
                self.options.runs.min(3),
                self.options.baseline_sample,
                self.t0
            )
            .await?
        ))
    }

    /// A tick with dwell members, some of them due.
    async fn dwell(&mut self) -> Result<()> {
        self.progress.say("dwell");
        let (dwell_members, due, all_members) =
            ticks::setup_dwell(&mut self.conn, self.quiet).await?;
        let ((t, _, s), rss) = with_rss!(
            ticks::tick_phase(&mut self.conn, self.options.runs, self.quiet, None).await?
        );
        self.rows.push(
            Row::new(
                "dwell",
                &format!("tick with {dwell_members} dwell members, {due} due (+30 s)"),
                t,
                rss,
            )
            .with(json!({
                "members_in_bucket": dwell_members, "due": due, "active_memberships": all_members,
                "dwell_pass_ms": ticks::summary_number(&s, &["passes", "dwell", "ms"]),
                "dwell_fires": ticks::summary_number(&s, &["passes", "dwell", "fires"]),
                "tick": ticks::summary_passes(&s),
            })),
        );
        Ok(())
    }

    /// `POST /v1/events` against an in-process daemon: sustained, until the real-time pass
    /// caught up, and paced at half that rate.
    async fn http_ingest(&mut self, standard: &CompiledProject, copy_per_s: f64) -> Result<()> {
        self.progress
            .say("HTTP ingest against an in-process daemon");
        let (http, rss) = with_rss!(
            http_ingest::measure(
                &mut self.conn,
                &self.url,
                standard.files.clone(),
                self.options.contacts,
                (self.options.contacts as usize / 2).clamp(1000, 100_000),
                self.options.runs,
                self.t0,
                self.quiet,
            )
            .await?
        );
        let mut details = http.to_json();
        details["vs_copy"] = json!(if copy_per_s > 0.0 {
            http.events_per_s() / copy_per_s
        } else {
            0.0
        });
        self.rows.push(
            Row::new(
                "ingest_http",
                &format!(
                    "ingest: POST /v1/events, {} events in batches of {}",
                    http.events,
                    http_ingest::BATCH
                ),
                http.sustained.clone(),
                rss,
            )
            .with(details),
        );
        self.rows.push(Row::new(
            "ingest_http_realtime",
            "  until the real-time pass evaluated every touched contact",
            http.catch_up.clone(),
            None,
        ));
        self.rows.push(
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
        if self.options.keep {
            http_ingest::clean_up(&mut self.conn).await?;
        }
        Ok(())
    }

    /// Closes the bench database (dropping it unless kept) and assembles the report.
    async fn finish(
        self,
        data: DatasetInfo,
        baseline: Baseline,
        baseline_rss: Option<f64>,
    ) -> Result<Report> {
        let Session {
            options,
            progress,
            mut admin,
            name,
            conn,
            machine,
            server_cpu,
            t0,
            rows,
            ..
        } = self;
        drop(conn);
        if !options.keep {
            server::drop_database(&mut admin, &name).await?;
        }
        progress.say("done");
        Ok(Report::new(report::Inputs {
            contacts: options.contacts,
            runs: options.runs,
            database: name,
            kept: options.keep,
            machine,
            server_cpu,
            dataset: data.to_json(),
            rows,
            baseline,
            baseline_rss,
            total_s: progress.started.elapsed().as_secs_f64(),
            t0,
        }))
    }
}
