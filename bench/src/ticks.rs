//! The tick phases: the cold backfill, then incremental ticks after nothing, after new
//! events, after the clock moved, the dwell pass, and ingest — each repeated on the same
//! state.
//!
//! Repeatability: the cold backfill resets the engine's state tables before each run (see
//! [`dataset::reset_state`]) and commits, so the last run leaves the backfilled state every
//! later phase starts from. Every later repetition runs in a transaction that is rolled back
//! (COPY, tick, everything), followed by a VACUUM of the tables it touched, so each one sees
//! exactly the post-backfill state. Timings of rolled-back ticks therefore exclude the COMMIT
//! (one WAL flush, well under a millisecond on this machine). Each such phase first runs one
//! unmeasured warm-up repetition; the figures are the median, min and max of the rest.

use anyhow::Result;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use sqlx::{Acquire, Executor, PgConnection};

use crate::dataset;
use crate::measure::{Lap, Samples, Stopwatch};
use crate::project::SCHEMA;
use crate::rows::{copy_events, EventRows};

/// The result of one repetition of a rolled-back tick.
pub(crate) struct TickRun {
    pub tick: Lap,
    pub copy: Option<Lap>,
    pub summary: Value,
}

/// Creates the session's work tables outside any measured transaction (a long-running daemon
/// keeps them for the life of its connection; `hogsend tick` pays a few milliseconds more).
pub(crate) async fn prepare_session(conn: &mut PgConnection) -> Result<()> {
    conn.execute("select hogsend._work_tables()").await?;
    Ok(())
}

/// The cold backfill: reset the state, then the first tick after `migrate`, committed;
/// `runs` times. Returns the timings and the last tick's summary.
pub(crate) async fn cold_backfill(
    conn: &mut PgConnection,
    runs: usize,
    now: DateTime<Utc>,
) -> Result<(Samples, Value)> {
    let mut samples = Samples::default();
    let mut summary = Value::Null;
    for _ in 0..runs.max(1) {
        dataset::reset_state(conn).await?;
        dataset::checkpoint(conn).await?;
        let watch = Stopwatch::start();
        summary = hogsend_runtime::db::tick(conn, SCHEMA, Some(now)).await?;
        samples.push_lap(watch.lap());
    }
    Ok((samples, summary))
}

/// One tick at `now` inside a transaction that is rolled back, after COPYing `rows` (when
/// given) in the same transaction.
pub(crate) async fn rolled_back_tick(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    rows: Option<&EventRows>,
) -> Result<TickRun> {
    let mut tx = conn.begin().await?;
    let copy = match rows {
        Some(rows) => {
            let watch = Stopwatch::start();
            copy_events(&mut tx, rows).await?;
            Some(watch.lap())
        }
        None => None,
    };
    let watch = Stopwatch::start();
    let summary = hogsend_runtime::db::tick(&mut tx, SCHEMA, Some(now)).await?;
    let tick = watch.lap();
    tx.rollback().await?;
    dataset::vacuum_after_rollback(conn).await?;
    Ok(TickRun {
        tick,
        copy,
        summary,
    })
}

/// A rolled-back tick phase: one warm-up, then `runs` measured repetitions. Returns the tick
/// timings, the COPY timings (empty without rows) and the last summary.
pub(crate) async fn tick_phase(
    conn: &mut PgConnection,
    runs: usize,
    now: DateTime<Utc>,
    rows: Option<&EventRows>,
) -> Result<(Samples, Samples, Value)> {
    rolled_back_tick(conn, now, rows).await?;
    let mut ticks = Samples::default();
    let mut copies = Samples::default();
    let mut summary = Value::Null;
    for _ in 0..runs.max(1) {
        let run = rolled_back_tick(conn, now, rows).await?;
        ticks.push_lap(run.tick);
        if let Some(copy) = run.copy {
            copies.push_lap(copy);
        }
        summary = run.summary;
    }
    Ok((ticks, copies, summary))
}

/// The reference for "a tick after 1% changed": evaluating only the changed contacts'
/// criteria. After COPYing the same rows (rolled back like the tick), `keys` are put in the
/// candidate table and every bucket's generated candidate matcher (`b_<id>_match`, the
/// statement a tick runs for its candidates) is run once at `now`, with the tick's planner
/// settings. No candidate discovery, no diff, no writes.
pub(crate) async fn evaluate_only(
    conn: &mut PgConnection,
    runs: usize,
    now: DateTime<Utc>,
    rows: &EventRows,
    keys: &[String],
    bucket_ids: &[String],
) -> Result<Samples> {
    let at = now.to_rfc3339_opts(SecondsFormat::Micros, true);
    // Bucket ids are checked identifiers ([a-z][a-z0-9_]*); `at` is our own instant.
    let batch: String = bucket_ids
        .iter()
        .map(|id| {
            format!("delete from _hs_match; select hogsend.b_{id}_match('{at}'::timestamptz);\n")
        })
        .collect();
    let mut samples = Samples::default();
    for run in 0..=runs.max(1) {
        let mut tx = conn.begin().await?;
        apply_tick_settings(&mut tx).await?;
        copy_events(&mut tx, rows).await?;
        tx.execute("delete from _hs_cand").await?;
        sqlx::query(
            "insert into _hs_cand (user_key) select distinct k from unnest($1::text[]) as k",
        )
        .bind(keys)
        .execute(&mut *tx)
        .await?;
        tx.execute("analyze _hs_cand").await?;
        let watch = Stopwatch::start();
        sqlx::raw_sql(&batch).execute(&mut *tx).await?;
        let elapsed = watch.lap();
        tx.rollback().await?;
        dataset::vacuum_after_rollback(conn).await?;
        if run > 0 {
            samples.push_lap(elapsed);
        }
    }
    Ok(samples)
}

/// Applies the settings a tick runs its statements with (the generated `tick` function's SET
/// clauses: jit, random_page_cost, work_mem) to the current transaction only.
pub(crate) async fn apply_tick_settings(conn: &mut PgConnection) -> Result<()> {
    conn.execute(
        "select set_config(split_part(c, '=', 1), substr(c, strpos(c, '=') + 1), true)
           from pg_proc as p, unnest(p.proconfig) as c
          where p.oid = 'hogsend.tick(timestamptz)'::regprocedure",
    )
    .await?;
    Ok(())
}

/// Sets up the dwell benchmark on the `everyone` bucket (one active member per contact with a
/// country, two dwell timers each): every member's clock is moved so that its next timer
/// (`every 7d`) falls uniformly within 7 days around `now`, about 1% of them at or before
/// `now` (the member's key hash decides), the rest after it. Committed. Returns (active
/// members of `everyone`, members due at `now`, active members of all buckets).
pub(crate) async fn setup_dwell(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> Result<(i64, i64, i64)> {
    sqlx::query(
        "with s as (
           select user_key,
                  $1::timestamptz
                    + ((abs(hashtext(user_key)) % 100000) / 100000.0 - 0.01)::float8
                      * interval '7 days' as due
             from hogsend.memberships
            where bucket_id = 'everyone' and active)
         update hogsend.memberships m
            set next_check_at = s.due, dwell_anchor = s.due - interval '7 days'
           from s
          where m.bucket_id = 'everyone' and m.user_key = s.user_key",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?;
    conn.execute("vacuum (analyze) hogsend.memberships").await?;
    dataset::checkpoint(conn).await?;
    let (members, due, all): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where bucket_id = 'everyone'),
                count(*) filter (where bucket_id = 'everyone' and next_check_at <= $1),
                count(*)
           from hogsend.memberships where active",
    )
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok((members, due, all))
}

/// A number from a tick summary (`["passes", "dwell", "ms"]`); 0 when absent.
pub(crate) fn summary_number(summary: &Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(summary, |v, k| v.get(k))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

/// The per-pass totals of a tick summary and the tables it analyzed, for the report.
pub(crate) fn summary_passes(summary: &Value) -> Value {
    json!({
        "server_ms": summary_number(summary, &["ms"]),
        "passes": summary.get("passes").cloned().unwrap_or(Value::Null),
        "analyzed": summary.get("analyzed").cloned().unwrap_or(Value::Null),
    })
}
