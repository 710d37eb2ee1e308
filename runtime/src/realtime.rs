//! The real-time pass: contacts touched by ingest are re-evaluated shortly after commit.
//!
//! Requests add their touched keys to a shared queue and return; a background task runs
//! one `apply_changes` call every `realtime_flush` (250 ms by default) over the keys queued
//! since (the newest [`MAX_KEYS_PER_CALL`] first). Coalescing keeps the cost per pass, not
//! per request: a hot contact sending 50 events a second is evaluated 4 times, and
//! `apply_changes` (which takes the schema's pass lock) never queues behind itself.
//!
//! Guarantee: a join or leave caused by an accepted event is visible through the API within
//! `realtime_flush` plus one pass (measured on a 12.5M-event database at 1,000–3,000
//! events/s: a median of 0.26–0.32 s, at most 0.41 s), unless a tick holds the pass lock,
//! in which case right after that tick. Under a flood of distinct contacts the
//! pass falls behind: each pass is followed by a pause as long as itself (ingest keeps half
//! of the database), the newest keys go first, the oldest beyond [`MAX_PENDING`] are left
//! to the next tick, which bounds the delay. A failed pass loses nothing:
//! the event triggers already queued the keys for the next tick; a successful one removes
//! them from that queue and evaluates each bucket only for the contacts whose changes it can
//! see (see [`db::apply_changes`]).

use crate::db;
use crate::metrics::Metrics;
use hogsend_schema::SchemaName;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The most keys passed to one `apply_keys` call. A pass evaluates the most recently touched
/// keys first, at most this many; a backlog is worked through pass after pass.
pub const MAX_KEYS_PER_CALL: usize = 5_000;

/// The most keys waiting for a pass. Past it (a pass far behind a flood of distinct
/// contacts) the keys touched longest ago are left to the next tick, which has them queued
/// anyway: memory stays bounded, nothing is lost, and fresh events keep their real-time pass.
pub const MAX_PENDING: usize = 200_000;

/// Membership changes by real-time passes after which `memberships` is analyzed again.
pub const ANALYZE_AFTER_CHANGES: u64 = 20_000;

/// Keys in the order they were last touched.
#[derive(Default)]
struct Queue {
    seq: u64,
    by_key: HashMap<String, u64>,
    by_seq: BTreeMap<u64, String>,
}

/// The keys waiting for the real-time pass, most recently touched first out.
#[derive(Default)]
pub struct Pending {
    queue: Mutex<Queue>,
    /// Joins and leaves made since `memberships` was last analyzed.
    changes_since_analyze: AtomicU64,
    /// Keys given up to the next tick because the queue was full.
    pub dropped: AtomicU64,
}

impl Pending {
    /// Queues keys for a pass (a key already queued moves to the front).
    pub fn touch(&self, keys: impl IntoIterator<Item = String>) {
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        for key in keys {
            q.seq += 1;
            let seq = q.seq;
            if let Some(old) = q.by_key.insert(key.clone(), seq) {
                q.by_seq.remove(&old);
            }
            q.by_seq.insert(seq, key);
            while q.by_key.len() > MAX_PENDING {
                let Some((_, oldest)) = q.by_seq.pop_first() else {
                    break;
                };
                q.by_key.remove(&oldest);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// How many keys are waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().map(|q| q.by_key.len()).unwrap_or(0)
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes up to `n` keys, the most recently touched first.
    fn take_newest(&self, n: usize) -> Vec<String> {
        let Ok(mut q) = self.queue.lock() else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(n.min(q.by_key.len()));
        while out.len() < n {
            let Some((_, key)) = q.by_seq.pop_last() else {
                break;
            };
            q.by_key.remove(&key);
            out.push(key);
        }
        out
    }
}

/// How long the last flush at shutdown may take; what it leaves is queued for the tick.
pub const FINAL_FLUSH_BUDGET: Duration = Duration::from_secs(5);

/// Runs passes until `shutdown` turns true, then flushes once more (for at most
/// [`FINAL_FLUSH_BUDGET`]). Every `every`, one pass takes the newest keys; while more than
/// a pass's worth remains, the next pass follows after a pause as long as the last pass
/// took, so a backlogged real-time pass never takes more than half of the database's time
/// from ingest.
pub async fn run(
    pool: PgPool,
    schema: SchemaName,
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
        if stopping {
            flush(&pool, &schema, &pending, &metrics, FINAL_FLUSH_BUDGET).await;
            break;
        }
        let started = Instant::now();
        pass(&pool, &schema, &pending, &metrics).await;
        // Behind by more than a pass: pause as long as the pass took, so ingest keeps half
        // of the database. Otherwise the usual interval.
        wait = if pending.len() > MAX_KEYS_PER_CALL {
            started.elapsed().max(Duration::from_millis(10))
        } else {
            every
        };
    }
}

/// Runs passes over every queued key now, newest first, starting none after `budget` has
/// passed (the keys left are evaluated by the next tick).
pub async fn flush(
    pool: &PgPool,
    schema: &str,
    pending: &Pending,
    metrics: &Metrics,
    budget: Duration,
) {
    let began = Instant::now();
    while !pending.is_empty() {
        if began.elapsed() > budget {
            tracing::info!(
                left = pending.len(),
                "real-time flush stopped at its time budget; the next tick evaluates the rest"
            );
            break;
        }
        pass(pool, schema, pending, metrics).await;
    }
}

/// One `apply_keys` call over the most recently touched keys (at most
/// [`MAX_KEYS_PER_CALL`]).
async fn pass(pool: &PgPool, schema: &str, pending: &Pending, metrics: &Metrics) {
    let mut chunk = pending.take_newest(MAX_KEYS_PER_CALL);
    if chunk.is_empty() {
        return;
    }
    chunk.sort();
    let started = Instant::now();
    let result = async {
        let mut conn = pool.acquire().await?;
        db::apply_changes(&mut conn, schema, &chunk, None).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_and_bounded() {
        let p = Pending::default();
        p.touch(["a".to_owned(), "b".to_owned(), "c".to_owned()]);
        p.touch(["a".to_owned()]);
        assert_eq!(p.take_newest(2), vec!["a", "c"]);
        assert_eq!(p.take_newest(5), vec!["b"]);
        assert!(p.is_empty());
        p.touch((0..MAX_PENDING + 3).map(|i| format!("k{i}")));
        assert_eq!(p.len(), MAX_PENDING);
        assert_eq!(p.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(p.take_newest(1), vec![format!("k{}", MAX_PENDING + 2)]);
    }
}
