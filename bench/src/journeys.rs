//! The journey suite (`hogsend-bench journeys`): the journey engine with one run per contact
//! parked at a wait. It creates its own database on a given server, migrates the journey
//! project (`journeys.hog`), loads N contacts with their parked `onboarding` runs set-based
//! (`journey_runs.sql`, exactly the rows the engine writes: see
//! engine-tests/tests/bench_journeys.rs), and measures:
//!
//! - a quiet tick (no run due, N runs waiting);
//! - a tick at which 1% of the runs are due, its journey pass alone, and the floor: a
//!   hand-written statement that advances only the due runs ([`FLOOR_SQL`]);
//! - a tick in which min(N/10, 100,000) contacts join a bucket whose `on enter` reaction
//!   queues a message for each;
//! - `POST /v1/events` of sign-ups of new contacts at a fixed rate against an in-process
//!   daemon, each timed until its welcome message is queued ([`enrol_http`]);
//! - the bench process's peak RSS in each phase (the daemon runs in it).
//!
//! Every tick phase but the last is rolled back (see [`ticks`]): each repetition starts from
//! the loaded state.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, DurationRound, Utc};
use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};
use serde_json::{json, Value};
use sqlx::{Acquire, Executor, PgConnection};

use crate::measure::{self, peak_rss_mib, reset_peak_rss, Samples, Stopwatch};
use crate::project::{self, CompiledProject, SCHEMA};
use crate::report::{self, Row, Target};
use crate::rows::{self, NewEvent};
use crate::{dataset, enrol_http, server, ticks};

/// The journey project's text.
pub(crate) const JOURNEYS_HOG: &str = include_str!("journeys.hog");

/// The set-based load of the parked runs (statements separated by `-- ;;` lines; parameters
/// `$contacts`, `$t0`).
pub(crate) const JOURNEY_RUNS_SQL: &str = include_str!("journey_runs.sql");

/// The templates `journeys.hog` sends (category `transactional`).
const TEMPLATES: &[&str] = &["welcome", "tips", "activated_tips", "activated_nudge"];

/// The floor of "advance the due runs": what a hand-written statement that knows the journey
/// (`s2: wait 3d` → `s3: send tips` → completed) must do for exactly the runs due at `$1`:
/// find them through the due index, record both steps, queue the message (with the same
/// who-may-receive check), complete the run. The journey pass writes the same rows.
pub(crate) const FLOOR_SQL: &str = "
with due as materialized (
  select r.user_key, r.id from hogsend.runs r
   where r.status = 'waiting' and r.wake_at <= $1),
steps as (
  insert into hogsend.run_steps (user_key, run_id, step_id, kind, outcome, executed_at)
  select user_key, id, 's2', 'wait', 'elapsed', $1 from due
  union all
  select user_key, id, 's3', 'send', 'tips', $1 from due),
sent as (
  insert into hogsend.messages (journey_id, run_id, user_key, template, to_email, status,
         step_id, category, skip_reason, created_at, updated_at)
  select 'onboarding', d.id, d.user_key, 'tips', c.email,
         case when v.reason is null then 'queued' else 'skipped' end,
         's3', 'transactional', v.reason, $1, $1
    from due d
    left join hogsend.contacts c on c.user_key = d.user_key
   cross join lateral (
     select hogsend.message_skip_reason(c.email, d.user_key, 'transactional') as reason) v)
update hogsend.runs r
   set status = 'completed', step_id = 's3', arrived_at = $1, wake_at = null, ended_at = $1,
       updated_at = $1
  from due d
 where r.user_key = d.user_key and r.id = d.id";

/// A digest of what a pass at `$1` wrote (runs it moved, steps it recorded, messages it
/// queued; ids left out), to check that the floor and the journey pass agree.
const WRITTEN_DIGEST_SQL: &str = "
select md5(coalesce((select string_agg(x, '|' order by x) from (
  select (to_jsonb(r) - 'id' - 'trigger_event_id')::text as x
    from hogsend.runs r where r.updated_at = $1
  union all
  select (to_jsonb(s) - 'run_id')::text from hogsend.run_steps s where s.executed_at = $1
  union all
  select (to_jsonb(m) - 'id' - 'run_id')::text from hogsend.messages m where m.created_at = $1
) w), ''))";

/// Arguments of `hogsend-bench journeys`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Postgres server URL (any database on it; the bench creates and drops its own)
    #[arg(long, value_name = "URL", env = "DATABASE_URL")]
    database_url: String,
    /// Number of contacts, each with one run parked at a wait
    #[arg(long, default_value_t = 100_000)]
    contacts: u64,
    /// Measured runs per figure (each figure is the median, with min and max)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Sign-ups per second sent to `POST /v1/events`
    #[arg(long, default_value_t = 1000)]
    http_rate: u64,
    /// For how long the sign-ups are sent, in seconds
    #[arg(long, default_value_t = 10)]
    http_seconds: u64,
    /// Write the JSON report here
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Keep the database afterwards
    #[arg(long)]
    keep: bool,
    /// No progress lines on stderr
    #[arg(long)]
    quiet: bool,
}

/// Runs the journey suite and prints its report.
pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let started = Instant::now();
    let report = runtime.block_on(suite(args, started))?;
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    print!("{}", report["text"].as_str().unwrap_or_default());
    if report["floor_agrees"] != json!(true) {
        eprintln!("error: the journey pass and the floor wrote different rows (see the report)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The journey project as the project loader would read it.
pub(crate) fn source() -> SourceSet {
    SourceSet {
        files: vec![SourceFile::new("journeys/bench.hog", JOURNEYS_HOG)],
        templates: TEMPLATES
            .iter()
            .map(|id| TemplateSource {
                id: (*id).to_owned(),
                html: Some(SourceFile::new(
                    format!("templates/{id}.html"),
                    format!("---\nsubject: {id}\ncategory: transactional\n---\n<p>{id}</p>\n"),
                )),
                text: None,
            })
            .collect(),
        config: None,
    }
}

/// The statements of [`JOURNEY_RUNS_SQL`] with `$contacts` and `$t0` numbered, in order,
/// each with the names to bind.
pub(crate) fn load_statements() -> Vec<(String, Vec<&'static str>)> {
    JOURNEY_RUNS_SQL
        .split("\n-- ;;\n")
        .map(|statement| dataset::number_parameters(statement, &["$contacts", "$t0"]))
        .collect()
}

/// Loads `contacts` contacts with their parked runs (triggers off, as a bulk import), then
/// vacuums and analyzes what it wrote. Returns the load's and the vacuum's seconds.
async fn load(conn: &mut PgConnection, contacts: u64, t0: DateTime<Utc>) -> Result<(f64, f64)> {
    let start = Instant::now();
    for table in ["contacts", "events", "messages"] {
        conn.execute(format!("alter table hogsend.{table} disable trigger user").as_str())
            .await?;
    }
    for (sql, names) in load_statements() {
        let mut query = sqlx::query(&sql);
        for name in names {
            query = match name {
                "$contacts" => query.bind(contacts as i64),
                _ => query.bind(t0),
            };
        }
        query
            .execute(&mut *conn)
            .await
            .with_context(|| format!("loading the runs: {}", sql.lines().last().unwrap_or("")))?;
    }
    for table in ["contacts", "events", "messages"] {
        conn.execute(format!("alter table hogsend.{table} enable trigger user").as_str())
            .await?;
    }
    conn.execute("select hogsend.rebuild_event_summaries()")
        .await?;
    let load_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    conn.execute(
        "vacuum (analyze) hogsend.contacts, hogsend.events, hogsend.messages, hogsend.runs,
                          hogsend.run_steps",
    )
    .await?;
    Ok((load_s, start.elapsed().as_secs_f64()))
}

/// Measures one phase's peak RSS: resets the mark, runs `f`, reads the peak.
macro_rules! with_rss {
    ($e:expr) => {{
        reset_peak_rss();
        let value = $e;
        (value, peak_rss_mib())
    }};
}

/// The open bench database and what has been measured in it.
struct Session<'a> {
    args: &'a Args,
    started: Instant,
    conn: PgConnection,
    url: String,
    t0: DateTime<Utc>,
    rows: Vec<Row>,
}

impl Session<'_> {
    fn say(&self, what: &str) {
        if !self.args.quiet {
            eprintln!("[{:>7.1} s] {what}", self.started.elapsed().as_secs_f64());
        }
    }

    fn at(&self, seconds: i64) -> DateTime<Utc> {
        self.t0 + Duration::seconds(seconds)
    }
}

/// The whole suite; returns the JSON report (with its text under `text`).
async fn suite(args: &Args, started: Instant) -> Result<Value> {
    let contacts = args.contacts.max(100);
    let runs = args.runs.max(1);
    let project = project::compile(&source())?;
    let name = format!("hogsend_journeys_{contacts}");
    let mut admin = server::connect(&args.database_url).await?;
    let machine = server::describe(&mut admin).await?;
    server::recreate_database(&mut admin, &name).await?;
    let url = hogsend_runtime::db::with_database(&args.database_url, &name);
    let mut conn = server::connect(&url).await?;
    let backend: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut conn)
        .await?;
    measure::set_backend(backend);
    // The bench's instants are near the wall clock (the daemon's real-time pass runs at it):
    // the load's first tick is 10 minutes ago; the runs that are not due wake at t0 + 6 h at
    // the earliest, so no pass at the wall clock finds them due during the bench.
    let t0 = (Utc::now() - Duration::minutes(10)).duration_trunc(Duration::seconds(1))?;
    let mut s = Session {
        args,
        started,
        conn,
        url,
        t0,
        rows: Vec::new(),
    };
    let result = measure_all(&mut s, &project, contacts, runs).await;
    let Session { conn, rows, .. } = s;
    drop(conn);
    if !args.keep {
        server::drop_database(&mut admin, &name).await?;
    }
    let details = result?;
    Ok(build_report(
        contacts, runs, &name, &machine, &rows, &details, started,
    ))
}

/// What the report needs beyond the rows.
struct Details {
    load: Value,
    floor_agrees: bool,
    http: enrol_http::Enrolment,
}

async fn measure_all(
    s: &mut Session<'_>,
    project: &CompiledProject,
    contacts: u64,
    runs: usize,
) -> Result<Details> {
    s.say("migrating the journey project");
    let schema = hogsend_schema::SchemaName::new(SCHEMA)?;
    hogsend_runtime::migrate::migrate(&mut s.conn, &schema, &project.files).await?;

    s.say(&format!("loading {contacts} contacts with parked runs"));
    let (load_s, vacuum_s) = load(&mut s.conn, contacts, s.t0).await?;
    dataset::checkpoint(&mut s.conn).await?;
    let (waiting, due): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where wake_at <= $1)
           from hogsend.runs where status = 'waiting'",
    )
    .bind(s.at(60))
    .fetch_one(&mut s.conn)
    .await?;

    s.say("first tick (backfill of the bucket), committed");
    let watch = Stopwatch::start();
    let first = hogsend_runtime::db::tick(&mut s.conn, SCHEMA, Some(s.t0)).await?;
    let mut first_tick = Samples::default();
    first_tick.push_lap(watch.lap());
    hogsend_runtime::db::vacuum_state(&mut s.conn, SCHEMA).await?;
    ticks::prepare_session(&mut s.conn).await?;
    s.conn
        .execute("select hogsend._journey_work_tables()")
        .await?;
    s.rows.push(
        Row::new(
            "first_tick",
            "first tick after the load (backfill), committed",
            first_tick,
            None,
        )
        .with(ticks::summary_passes(&first)),
    );

    s.say("quiet ticks");
    let quiet_at = s.at(30);
    let ((t, _, summary), rss) =
        with_rss!(ticks::tick_phase(&mut s.conn, runs, quiet_at, None).await?);
    s.rows.push(
        Row::new(
            "quiet_tick",
            &format!("quiet tick: {waiting} runs waiting, none due (+30 s)"),
            t,
            rss,
        )
        .with(json!({"journeys": summary["journeys"], "tick": ticks::summary_passes(&summary)})),
    );

    s.say("ticks with 1% of the runs due");
    let due_at = s.at(60);
    let ((t, _, summary), rss) =
        with_rss!(ticks::tick_phase(&mut s.conn, runs, due_at, None).await?);
    s.rows.push(
        Row::new(
            "due_tick",
            &format!("tick with {due} of {waiting} runs due (+60 s)"),
            t,
            rss,
        )
        .with(json!({"journeys": summary["journeys"], "tick": ticks::summary_passes(&summary)})),
    );
    let (pass, pass_digest) = journey_pass(&mut s.conn, runs, due_at, s.t0).await?;
    s.rows.push(Row::new(
        "due_journey_pass",
        "  its journey pass alone (the tick's settings)",
        pass,
        None,
    ));
    let (floor, floor_digest) = floor(&mut s.conn, runs, due_at).await?;
    let floor_agrees = floor_digest == pass_digest;
    s.rows.push(
        Row::new(
            "due_floor",
            "  floor: hand-written SQL advancing only the due runs",
            floor,
            None,
        )
        .with(json!({"same_rows_as_the_journey_pass": floor_agrees})),
    );

    let joining = (contacts / 10).clamp(1, 100_000);
    s.say(&format!(
        "a tick in which {joining} contacts join the bucket"
    ));
    let keys: Vec<String> = (1..=joining).map(|i| format!("j{i}")).collect();
    let batch = rows::EventRows::from_events(
        &keys
            .iter()
            .map(|key| NewEvent {
                key: key.clone(),
                name: "project_created",
                properties: "{}".to_owned(),
                at: rfc3339(s.at(10)),
            })
            .collect::<Vec<_>>(),
    );
    let ((t, copy, summary), rss) =
        with_rss!(ticks::tick_phase(&mut s.conn, runs, quiet_at, Some(&batch)).await?);
    s.rows.push(
        Row::new(
            "enter_tick",
            &format!("tick: {joining} join, `on enter` enrols and sends (+30 s)"),
            t,
            rss,
        )
        .with(json!({"joining": joining, "journeys": summary["journeys"],
                     "tick": ticks::summary_passes(&summary)})),
    );
    s.rows.push(Row::new(
        "enter_copy",
        &format!("  COPY of those {joining} events (before the tick)"),
        copy,
        None,
    ));

    s.say("a committed tick at the wall clock (advances the due runs)");
    let watch = Stopwatch::start();
    let caught_up = hogsend_runtime::db::tick(&mut s.conn, SCHEMA, None).await?;
    let mut clock_tick = Samples::default();
    clock_tick.push_lap(watch.lap());
    s.rows.push(
        Row::new(
            "clock_tick",
            "tick at the wall clock, committed (the due runs move)",
            clock_tick,
            None,
        )
        .with(json!({"journeys": caught_up["journeys"]})),
    );
    s.conn.execute("vacuum (analyze) hogsend.runs").await?;

    s.say(&format!(
        "POST /v1/events: {} sign-ups/s for {} s",
        s.args.http_rate, s.args.http_seconds
    ));
    let (http, rss) = with_rss!(
        enrol_http::measure(
            &mut s.conn,
            &s.url,
            project.files.clone(),
            s.args.http_rate,
            s.args.http_seconds,
        )
        .await?
    );
    let mut sending = Samples::default();
    sending.push(std::time::Duration::from_secs_f64(http.wall_s));
    s.rows.push(
        Row::new(
            "enrol_http",
            &format!(
                "POST /v1/events: {} sign-ups at {}/s, until each queued",
                http.events, s.args.http_rate
            ),
            sending,
            rss,
        )
        .with(http.to_json()),
    );
    Ok(Details {
        load: json!({"contacts": contacts, "runs_waiting": waiting, "due_at_plus_60s": due,
                     "load_s": load_s, "vacuum_analyze_s": vacuum_s}),
        floor_agrees,
        http,
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The tick's journey pass alone at `now` (previous tick `t0`), with the tick's planner
/// settings, rolled back: one warm-up, then `runs` measured. Returns the timings and the
/// digest of what it wrote.
async fn journey_pass(
    conn: &mut PgConnection,
    runs: usize,
    now: DateTime<Utc>,
    t0: DateTime<Utc>,
) -> Result<(Samples, String)> {
    let mut samples = Samples::default();
    let mut digest = String::new();
    for run in 0..=runs {
        let mut tx = conn.begin().await?;
        ticks::apply_tick_settings(&mut tx).await?;
        let watch = Stopwatch::start();
        sqlx::query(
            "select hogsend._journey_pass($1, null, interval '24 hours', 'UTC',
                    (select coalesce(max(id), 0) from hogsend.transitions), $2)",
        )
        .bind(now)
        .bind(t0)
        .execute(&mut *tx)
        .await?;
        let lap = watch.lap();
        digest = sqlx::query_scalar(WRITTEN_DIGEST_SQL)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        dataset::vacuum_after_rollback(conn).await?;
        if run > 0 {
            samples.push_lap(lap);
        }
    }
    Ok((samples, digest))
}

/// [`FLOOR_SQL`] at `now`, rolled back: one warm-up, then `runs` measured. Returns the
/// timings and the digest of what it wrote.
async fn floor(
    conn: &mut PgConnection,
    runs: usize,
    now: DateTime<Utc>,
) -> Result<(Samples, String)> {
    let mut samples = Samples::default();
    let mut digest = String::new();
    for run in 0..=runs {
        let mut tx = conn.begin().await?;
        ticks::apply_tick_settings(&mut tx).await?;
        let watch = Stopwatch::start();
        sqlx::query(FLOOR_SQL).bind(now).execute(&mut *tx).await?;
        let lap = watch.lap();
        digest = sqlx::query_scalar(WRITTEN_DIGEST_SQL)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        dataset::vacuum_after_rollback(conn).await?;
        if run > 0 {
            samples.push_lap(lap);
        }
    }
    Ok((samples, digest))
}

/// The median of the row `key`; 0 when absent.
fn median(rows: &[Row], key: &str) -> f64 {
    rows.iter()
        .find(|r| r.key == key)
        .map_or(0.0, |r| r.samples.median())
}

/// The targets (BENCHMARKS.md, "Journeys").
fn targets(rows: &[Row], http: &enrol_http::Enrolment) -> Vec<Target> {
    let pass = median(rows, "due_journey_pass");
    let floor = median(rows, "due_floor");
    let ratio = if floor > 0.0 { pass / floor } else { 0.0 };
    let quiet = median(rows, "quiet_tick");
    let enter = median(rows, "enter_tick");
    let p99 = http.p99_ms();
    let rss = rows.iter().filter_map(|r| r.rss_mib).fold(0.0, f64::max);
    vec![
        Target {
            name: "due_pass_vs_floor",
            goal: "journey pass with 1% due <= 3x the floor",
            value: format!(
                "{ratio:.2}x ({} vs {})",
                report::ms_text(pass),
                report::ms_text(floor)
            ),
            met: ratio <= 3.0,
        },
        Target {
            name: "enter_tick",
            goal: "tick enrolling the joins of 100k contacts < 5 s",
            value: report::ms_text(enter),
            met: enter < 5000.0,
        },
        Target {
            name: "quiet_tick",
            goal: "quiet tick with every run waiting < 50 ms",
            value: report::ms_text(quiet),
            met: quiet < 50.0,
        },
        Target {
            name: "enrol_http_p99",
            goal: "POST /v1/events -> message queued, p99 < 1 s",
            value: format!("{p99:.1} ms"),
            met: p99 < 1000.0 && http.missing == 0,
        },
        Target {
            name: "rss",
            goal: "bench process (daemon included) peak RSS < 200 MB",
            value: format!("{rss:.0} MiB"),
            met: rss < 200.0 / 1.048_576,
        },
    ]
}

fn build_report(
    contacts: u64,
    runs: usize,
    database: &str,
    machine: &Value,
    rows: &[Row],
    details: &Details,
    started: Instant,
) -> Value {
    let targets = targets(rows, &details.http);
    let mut text = format!(
        "hogsend-bench journeys: {contacts} contacts, one run each parked at a wait; {runs} runs per figure (median, min..max)\n\
         machine: {} cores, {} GiB; load average {} at the end\n\n",
        machine["cores"],
        machine["memory_gib"],
        json!(server::load_average()),
    );
    text += &report::rows_text(rows);
    text += &format!("  {}\n\n", details.http.summary_line());
    text += "target                                                     value\n";
    for t in &targets {
        text += &format!(
            "{:<58} {}  {}\n",
            t.goal,
            t.value,
            if t.met { "met" } else { "MISSED" }
        );
    }
    json!({
        "suite": "journeys",
        "contacts": contacts,
        "runs": runs,
        "database": database,
        "machine": machine,
        "load": details.load,
        "rows": rows.iter().map(|r| json!({
            "key": r.key, "label": r.label, "timing": r.samples.to_json(),
            "peak_rss_mib": r.rss_mib, "details": r.extra,
        })).collect::<Vec<_>>(),
        "floor_agrees": details.floor_agrees,
        "targets": targets.iter().map(|t| json!({
            "name": t.name, "goal": t.goal, "value": t.value, "met": t.met,
        })).collect::<Vec<_>>(),
        "total_s": started.elapsed().as_secs_f64(),
        "text": text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journey_project_compiles() {
        let project = project::compile(&source()).expect("compiles");
        assert_eq!(project.program.buckets.len(), 1);
    }

    #[test]
    fn the_load_binds_contacts_and_the_instant() {
        let statements = load_statements();
        assert_eq!(statements.len(), 7);
        let (first, names) = &statements[0];
        let contacts = 1 + names.iter().position(|n| *n == "$contacts").unwrap();
        let t0 = 1 + names.iter().position(|n| *n == "$t0").unwrap();
        assert!(first.contains(&format!("generate_series(1, ${contacts})")));
        assert!(first.contains(&format!("${t0} - interval '3 days'")));
        assert!(statements
            .iter()
            .all(|(sql, _)| !sql.contains("$t0") && !sql.contains("$contacts")));
    }
}
