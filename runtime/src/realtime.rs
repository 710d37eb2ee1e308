//! The real-time pass: contacts touched by ingest are re-evaluated shortly after commit.
//!
//! Requests add their touched keys to a shared set and return; a background task swaps the
//! set out every `realtime_flush` (250 ms by default) and runs one `apply_keys` call for all
//! of them (chunked above [`MAX_KEYS_PER_CALL`]). Coalescing keeps the cost per flush, not
//! per request: a hot contact sending 50 events a second is evaluated 4 times, and `apply_keys`
//! (which takes the schema's pass lock) never queues behind itself.
//!
//! Guarantee: a join or leave caused by an accepted event is visible through the API within
//! `realtime_flush` plus one pass (about 0.3 s on an idle daemon), unless a tick holds the
//! pass lock, in which case right after that tick. Under a flood of distinct contacts the
//! pass falls behind (each pass is followed by a pause as long as itself, so ingest keeps
//! half of the database) and the next tick bounds the delay. A failed pass loses nothing:
//! the event triggers already queued the keys for the next tick; a successful one removes
//! them from that queue (see [`db::apply_keys_draining`]).

use crate::db;
use crate::metrics::Metrics;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The most keys passed to one `apply_keys` call.
pub const MAX_KEYS_PER_CALL: usize = 10_000;

/// The most keys waiting for a flush. Past it (a pass far behind a flood of distinct
/// contacts) new keys are left to the next tick, which has them queued anyway: memory stays
/// bounded and nothing is lost.
pub const MAX_PENDING: usize = 200_000;

/// Membership changes by real-time passes after which `memberships` is analyzed again.
pub const ANALYZE_AFTER_CHANGES: u64 = 20_000;

/// The set of keys waiting for the next flush.
#[derive(Default)]
pub struct Pending {
    keys: Mutex<HashSet<String>>,
    /// Joins and leaves made since `memberships` was last analyzed.
    changes_since_analyze: std::sync::atomic::AtomicU64,
    /// Keys not queued because the set was full (left to the next tick).
    pub dropped: std::sync::atomic::AtomicU64,
}

impl Pending {
    /// Queues keys for the next flush.
    pub fn touch(&self, keys: impl IntoIterator<Item = String>) {
        if let Ok(mut set) = self.keys.lock() {
            for key in keys {
                if set.len() < MAX_PENDING || set.contains(&key) {
                    set.insert(key);
                } else {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn take(&self) -> Vec<String> {
        match self.keys.lock() {
            Ok(mut set) => set.drain().collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// How long the last flush at shutdown may take; what it leaves is queued for the tick.
pub const FINAL_FLUSH_BUDGET: Duration = Duration::from_secs(5);

/// Runs the flush loop until `shutdown` turns true, then flushes once more (for at most
/// [`FINAL_FLUSH_BUDGET`]).
pub async fn run(
    pool: PgPool,
    schema: String,
    every: Duration,
    pending: Arc<Pending>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut wait = every;
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        let budget = if stopping {
            FINAL_FLUSH_BUDGET
        } else {
            Duration::MAX
        };
        let started = Instant::now();
        flush(&pool, &schema, &pending, &metrics, budget).await;
        // A pass that took longer than the interval (a flood of distinct contacts) is
        // followed by a pause as long as itself: the pass never takes more than half of
        // the database's time from ingest, and bigger batches evaluate faster per contact.
        wait = every.max(started.elapsed());
        if stopping {
            break;
        }
    }
}

/// Runs the real-time pass for every queued key now, in chunks, starting no chunk after
/// `budget` has passed (the keys left are evaluated by the next tick).
pub async fn flush(
    pool: &PgPool,
    schema: &str,
    pending: &Pending,
    metrics: &Metrics,
    budget: Duration,
) {
    let mut keys = pending.take();
    if keys.is_empty() {
        return;
    }
    keys.sort();
    let began = Instant::now();
    for chunk in keys.chunks(MAX_KEYS_PER_CALL) {
        if began.elapsed() > budget {
            tracing::info!(
                "real-time pass stopped at its time budget; the next tick evaluates the rest"
            );
            break;
        }
        let started = Instant::now();
        let result = async {
            let mut conn = pool.acquire().await?;
            db::apply_keys_draining(&mut conn, schema, chunk).await
        }
        .await;
        metrics.realtime_latency.observe(started.elapsed());
        match result {
            Ok(summary) => {
                let changed = membership_changes(&summary);
                let total = pending
                    .changes_since_analyze
                    .fetch_add(changed, Ordering::Relaxed)
                    + changed;
                if total >= ANALYZE_AFTER_CHANGES {
                    pending.changes_since_analyze.store(0, Ordering::Relaxed);
                    if let Ok(mut conn) = pool.acquire().await {
                        if let Err(err) = db::analyze_memberships(&mut conn, schema).await {
                            tracing::warn!("could not analyze memberships: {err}");
                        }
                    }
                }
                metrics.realtime_flushes.fetch_add(1, Ordering::Relaxed);
                metrics
                    .realtime_keys
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                metrics.record_realtime(&summary);
                tracing::debug!(keys = chunk.len(), ms = %summary["ms"], "real-time pass");
            }
            Err(err) => {
                metrics.realtime_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    keys = chunk.len(),
                    "real-time pass failed (the next tick covers these contacts): {err}"
                );
            }
        }
    }
}

/// Joins plus leaves in an `apply_keys` summary.
fn membership_changes(summary: &serde_json::Value) -> u64 {
    summary
        .get("buckets")
        .and_then(|b| b.as_object())
        .map(|buckets| {
            buckets
                .values()
                .map(|b| {
                    b.get("joins").and_then(|v| v.as_u64()).unwrap_or(0)
                        + b.get("leaves").and_then(|v| v.as_u64()).unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0)
}
