//! The scheduler: `tick` every `tick_every`, never overlapping, one daemon at a time.
//!
//! Each round opens a transaction and takes `pg_try_advisory_xact_lock` on the scheduler
//! key of the schema: a second daemon on the same database finds it taken and skips the
//! round instead of queueing behind it (the SQL `tick` is itself serialized by the pass lock
//! and idempotent at equal instants, so even a queued tick would not double-fire). The next
//! round starts `tick_every` after the previous one ended, so a slow tick is never
//! overlapped. A failing tick is logged, counted and retried at the next round.

use crate::db;
use crate::metrics::Metrics;
use chrono::{DateTime, Utc};
use hogsend_schema::SchemaName;
use sqlx::{Connection, PgPool};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What the last round did, for `/readyz`.
#[derive(Debug, Clone, Default)]
pub struct TickHealth {
    /// When the last round ended and how.
    pub last_round: Option<(DateTime<Utc>, RoundResult)>,
    /// The last error, if the last round failed.
    pub last_error: Option<String>,
}

/// The outcome of one scheduler round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundResult {
    /// This daemon ticked.
    Ticked,
    /// Another daemon holds the scheduler lock.
    Skipped,
    /// The tick failed (retried next round).
    Failed,
}

/// The scheduler lock of `schema`: distinct from the pass lock `tick` takes.
pub use hogsend_schema::scheduler_lock_key;

/// One round: tick if no other daemon is ticking.
pub async fn round(
    pool: &PgPool,
    schema: &SchemaName,
    metrics: &Metrics,
) -> crate::Result<RoundResult> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let leader: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
        .bind(scheduler_lock_key(schema))
        .fetch_one(&mut *tx)
        .await?;
    if !leader {
        tx.rollback().await?;
        metrics.ticks_skipped.fetch_add(1, Ordering::Relaxed);
        return Ok(RoundResult::Skipped);
    }
    let summary = db::tick(&mut tx, schema, None).await?;
    tx.commit().await?;
    metrics.record_tick(&summary);
    let backfilled = summary["passes"]["backfill"]["buckets"]
        .as_f64()
        .unwrap_or(0.0);
    let reconciled = summary["passes"]["reconcile"]["joins"]
        .as_f64()
        .unwrap_or(0.0)
        + summary["passes"]["reconcile"]["leaves"]
            .as_f64()
            .unwrap_or(0.0);
    if backfilled > 0.0 {
        db::vacuum_state(&mut conn, schema).await?;
    } else if reconciled >= crate::realtime::ANALYZE_AFTER_CHANGES as f64 {
        db::analyze_memberships(&mut conn, schema).await?;
    }
    tracing::debug!(ms = %summary["ms"], "tick");
    Ok(RoundResult::Ticked)
}

/// Runs rounds until `shutdown` turns true. A round in progress when it does is finished
/// (or, if the database connection is cut, rolled back by Postgres) before this returns.
pub async fn run(
    pool: PgPool,
    schema: SchemaName,
    every: Duration,
    metrics: Arc<Metrics>,
    health: Arc<Mutex<TickHealth>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let started = Instant::now();
        let result = round(&pool, &schema, &metrics).await;
        let (outcome, error) = match result {
            Ok(r) => (r, None),
            Err(err) => {
                metrics.ticks_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("tick failed (retried at the next round): {err}");
                (RoundResult::Failed, Some(err.to_string()))
            }
        };
        if let Ok(mut h) = health.lock() {
            h.last_round = Some((Utc::now(), outcome));
            h.last_error = error;
        }
        tracing::trace!(elapsed = ?started.elapsed(), ?outcome, "scheduler round");
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
}
