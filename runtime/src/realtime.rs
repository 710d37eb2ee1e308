//! The real-time pass: contacts touched by ingest are re-evaluated shortly after commit.
//!
//! Requests add their touched keys to a shared queue and return; a background task runs
//! one `apply_changes` call every `realtime_flush` (250 ms by default) over the keys queued
//! since (the newest [`MAX_KEYS_PER_CALL`] first). Coalescing keeps the cost per pass, not
//! per request: a hot contact sending 50 events a second is evaluated 4 times, and
//! `apply_changes` (which takes the schema's pass lock) never queues behind itself.
//!
//! Guarantee: a join or leave caused by an accepted event is visible through the API
//! after the first pass that starts after the request returned: within `realtime_flush`
//! plus one pass, plus the rest of a tick if one holds the pass lock. No tick takes a change
//! away from the pass: a pass or tick drains only the queued changes it sees whose events
//! lie at or before its instant (`changed_keys.ready_at`), and the pass evaluates at the
//! database's clock once it holds the lock, so it drains whatever committed while it
//! waited. Under a flood of distinct contacts the pass can fall behind: each pass is
//! followed by a pause as long as its own work (not its wait for the lock; ingest keeps
//! half of the database), the newest keys go first, the oldest beyond [`MAX_PENDING`] are
//! left to the next tick. How far behind it is shows in `/metrics`
//! (`hogsend_realtime_backlog_contacts`, `hogsend_realtime_backlog_age_seconds`) and fails
//! `/readyz` past `realtime_max_backlog_age_ms`. A failed pass loses nothing: the event
//! triggers already queued the keys for the next tick; a successful one removes them from
//! that queue and evaluates each bucket only for the contacts whose changes it can see (see
//! [`db::apply_changes`]).

use crate::db;
use crate::metrics::{Backlog, Metrics};
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

/// Keys in the order they were last touched, and in the order they were first touched
/// since a pass last took them (for the backlog's age).
#[derive(Default)]
struct Queue {
    seq: u64,
    /// Key → (seq of its last touch, seq of its first touch).
    by_key: HashMap<String, (u64, u64)>,
    /// Seq of the last touch → key.
    by_seq: BTreeMap<u64, String>,
    /// Seq of the first touch → when.
    first_touched: BTreeMap<u64, Instant>,
}

impl Queue {
    /// Forgets `key`, whose entry was `(last, first)`.
    fn forget(&mut self, last: u64, first: u64) {
        self.by_seq.remove(&last);
        self.first_touched.remove(&first);
    }
}

/// The keys waiting for the real-time pass, most recently touched first out.
#[derive(Default)]
pub struct Pending {
    queue: Mutex<Queue>,
    /// Joins and leaves made since `memberships` was last analyzed.
    changes_since_analyze: AtomicU64,
    /// Keys given up to the next tick because the queue was full.
    pub dropped: AtomicU64,
    /// The pass in progress: how many keys it took and the first touch of the oldest.
    in_flight: Mutex<Option<(usize, Instant)>>,
}

impl Pending {
    /// Queues keys for a pass (a key already queued moves to the front).
    pub fn touch(&self, keys: impl IntoIterator<Item = String>) {
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        let now = Instant::now();
        for key in keys {
            q.seq += 1;
            let seq = q.seq;
            let first = match q.by_key.get(&key) {
                Some(&(last, first)) => {
                    q.by_seq.remove(&last);
                    first
                }
                None => {
                    q.first_touched.insert(seq, now);
                    seq
                }
            };
            q.by_key.insert(key.clone(), (seq, first));
            q.by_seq.insert(seq, key);
            while q.by_key.len() > MAX_PENDING {
                let Some((_, oldest)) = q.by_seq.pop_first() else {
                    break;
                };
                if let Some((_, first)) = q.by_key.remove(&oldest) {
                    q.first_touched.remove(&first);
                }
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// What waits for the real-time pass: the contacts queued plus those of the pass in
    /// progress, and how long the oldest change among them has waited (since the first touch
    /// of its key after a pass last took it; `None` when nothing waits).
    pub fn backlog(&self) -> Backlog {
        let (queued, oldest) = self.queue.lock().map_or((0, None), |q| {
            (
                q.by_key.len(),
                q.first_touched.first_key_value().map(|(_, at)| *at),
            )
        });
        let in_flight = self.in_flight.lock().map_or(None, |f| *f);
        let oldest = match (oldest, in_flight.map(|f| f.1)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Backlog {
            contacts: queued + in_flight.map_or(0, |f| f.0),
            oldest_age: oldest.map(|at| at.elapsed()),
        }
    }

    /// Records the pass in progress (`None` when it ends).
    fn set_in_flight(&self, pass: Option<(usize, Instant)>) {
        if let Ok(mut f) = self.in_flight.lock() {
            *f = pass;
        }
    }

    /// How many keys are waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.by_key.len())
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes up to `n` keys, the most recently touched first, with the first touch of the
    /// oldest of them.
    fn take_newest(&self, n: usize) -> (Vec<String>, Option<Instant>) {
        let Ok(mut q) = self.queue.lock() else {
            return (Vec::new(), None);
        };
        let mut out = Vec::with_capacity(n.min(q.by_key.len()));
        let mut oldest: Option<Instant> = None;
        while out.len() < n {
            let Some((last, key)) = q.by_seq.last_key_value().map(|(s, k)| (*s, k.clone())) else {
                break;
            };
            if let Some((_, first)) = q.by_key.remove(&key) {
                if let Some(at) = q.first_touched.get(&first) {
                    oldest = Some(oldest.map_or(*at, |o| o.min(*at)));
                }
                q.forget(last, first);
            } else {
                q.by_seq.remove(&last);
            }
            out.push(key);
        }
        (out, oldest)
    }
}

/// How long the last flush at shutdown may take; what it leaves is queued for the tick.
pub const FINAL_FLUSH_BUDGET: Duration = Duration::from_secs(5);

/// Runs passes until `shutdown` turns true, then flushes once more (for at most
/// [`FINAL_FLUSH_BUDGET`]). Every `every`, one pass takes the newest keys; while more than
/// a pass's worth remains, the next pass follows after a pause as long as the last pass
/// worked, so a backlogged real-time pass never takes more than half of the database's time
/// from ingest. Time spent waiting for the pass lock (a tick holding it) is not work: it
/// costs the database nothing, and pausing for it too would make the pass fall further
/// behind after every long tick.
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
        let timing = pass(&pool, &schema, &pending, &metrics).await;
        // Behind by more than a pass: pause as long as the pass worked, so ingest keeps half
        // of the database. Otherwise the usual interval.
        wait = if pending.len() > MAX_KEYS_PER_CALL {
            timing.work.max(Duration::from_millis(10))
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

/// Where a pass's time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassTiming {
    /// Waiting for the pass lock (reported by the database: a tick or a merge held it).
    pub wait: Duration,
    /// Everything else: the pass's own work, connection and round trip included.
    pub work: Duration,
}

impl PassTiming {
    /// Splits a pass's `elapsed` time by the lock wait its summary reports (`wait_ms`).
    fn split(elapsed: Duration, summary: Option<&serde_json::Value>) -> PassTiming {
        let wait = summary
            .and_then(|s| s.get("wait_ms"))
            .and_then(serde_json::Value::as_f64)
            .filter(|ms| *ms > 0.0)
            .map_or(Duration::ZERO, |ms| {
                Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(elapsed)
            })
            .min(elapsed);
        PassTiming {
            wait,
            work: elapsed - wait,
        }
    }
}

/// One `apply_changes` call over the most recently touched keys (at most
/// [`MAX_KEYS_PER_CALL`]), at the database's clock once it holds the pass lock.
async fn pass(pool: &PgPool, schema: &str, pending: &Pending, metrics: &Metrics) -> PassTiming {
    let (mut chunk, oldest) = pending.take_newest(MAX_KEYS_PER_CALL);
    if chunk.is_empty() {
        return PassTiming::default();
    }
    chunk.sort();
    pending.set_in_flight(oldest.map(|at| (chunk.len(), at)));
    let started = Instant::now();
    let result = async {
        let mut conn = pool.acquire().await?;
        db::apply_changes(&mut conn, schema, &chunk, None).await
    }
    .await;
    pending.set_in_flight(None);
    let timing = PassTiming::split(started.elapsed(), result.as_ref().ok());
    metrics.realtime_latency.observe(timing.work);
    metrics.realtime_lock_wait.observe(timing.wait);
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
            tracing::debug!(keys = chunk.len(), ms = %summary["ms"], wait_ms = %summary["wait_ms"], "real-time pass");
        }
        Err(err) => {
            metrics.realtime_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                keys = chunk.len(),
                "real-time pass failed (the next tick covers these contacts): {err}"
            );
        }
    }
    timing
}

/// Joins plus leaves in an `apply_keys` summary.
fn membership_changes(summary: &serde_json::Value) -> u64 {
    summary
        .get("buckets")
        .and_then(|b| b.as_object())
        .map_or(0, |buckets| {
            buckets
                .values()
                .map(|b| {
                    b.get("joins")
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0)
                        + b.get("leaves")
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0)
                })
                .sum()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_and_bounded() {
        let p = Pending::default();
        p.touch(["a".to_owned(), "b".to_owned(), "c".to_owned()]);
        p.touch(["a".to_owned()]);
        assert_eq!(p.take_newest(2).0, vec!["a", "c"]);
        assert_eq!(p.take_newest(5).0, vec!["b"]);
        assert!(p.is_empty());
        p.touch((0..MAX_PENDING + 3).map(|i| format!("k{i}")));
        assert_eq!(p.len(), MAX_PENDING);
        assert_eq!(p.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(p.take_newest(1).0, vec![format!("k{}", MAX_PENDING + 2)]);
    }

    #[test]
    fn the_backlog_is_the_oldest_first_touch_not_evaluated() {
        let p = Pending::default();
        assert_eq!(p.backlog().oldest_age, None);
        p.touch(["old".to_owned()]);
        std::thread::sleep(Duration::from_millis(20));
        p.touch(["new".to_owned(), "old".to_owned()]);
        // Touching "old" again does not make its first change younger.
        let age = p.backlog().oldest_age.expect("waiting");
        assert!(age >= Duration::from_millis(20), "{age:?}");
        // "old" was touched last: taken first; while its pass runs it is still backlog.
        let (taken, oldest) = p.take_newest(1);
        assert_eq!(taken, vec!["old"]);
        p.set_in_flight(oldest.map(|at| (1, at)));
        assert_eq!(p.backlog().contacts, 2);
        assert!(p.backlog().oldest_age.expect("waiting") >= age);
        p.set_in_flight(None);
        assert_eq!(p.backlog().contacts, 1);
        assert!(p.backlog().oldest_age.expect("waiting") < age);
        assert_eq!(p.take_newest(1).0, vec!["new"]);
        assert_eq!(p.backlog(), Backlog::default());
        // Keys dropped for the tick leave the backlog's age too.
        p.touch((0..MAX_PENDING + 1).map(|i| format!("k{i}")));
        assert_eq!(p.len(), MAX_PENDING);
        let q = p.queue.lock().unwrap();
        assert_eq!(q.first_touched.len(), MAX_PENDING);
        assert_eq!(q.by_seq.len(), MAX_PENDING);
    }

    #[test]
    fn a_pass_backs_off_for_its_work_not_its_wait() {
        let summary = serde_json::json!({"ms": 900.0, "wait_ms": 700.0});
        let t = PassTiming::split(Duration::from_millis(1000), Some(&summary));
        assert_eq!(t.wait, Duration::from_millis(700));
        assert_eq!(t.work, Duration::from_millis(300));
        // A failed pass, or a wait beyond the elapsed time, never underflows.
        let t = PassTiming::split(Duration::from_millis(5), None);
        assert_eq!((t.wait, t.work), (Duration::ZERO, Duration::from_millis(5)));
        let odd = serde_json::json!({"wait_ms": 1e300});
        let t = PassTiming::split(Duration::from_millis(5), Some(&odd));
        assert_eq!((t.wait, t.work), (Duration::from_millis(5), Duration::ZERO));
    }
}
