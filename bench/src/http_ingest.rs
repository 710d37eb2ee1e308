//! HTTP ingest: `POST /v1/events` in batches of 500 against the daemon, launched in this
//! process with [`hogsend_runtime::launch`] (the code `hogsend serve` runs) on
//! `127.0.0.1:0`, with the real-time pass on and the scheduler off (the bench drives the
//! clock itself; a scheduled tick at the wall clock would jump months past the dataset).
//!
//! Four client tasks, each on its own keep-alive HTTP/1.1 connection (hyper), send the
//! batches as fast as the daemon answers; then one paced run at half that rate gives the
//! latency a daemon shows when it is not saturated. After each sustained run the bench
//! waits until the real-time pass has evaluated every touched contact (the change queue is
//! empty again) and reports how long after the last response that was.
//!
//! The events are the COPY phase's kind (1% for new keys, the dataset's names and
//! properties), each with a `message_id`, at instants inside the dataset's last 30 s.
//! Everything the phase stores is deleted afterwards, so a kept database stays reusable.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{Executor, PgConnection};

use crate::daemon::{Client, Daemon};
use crate::measure::Samples;
use crate::rows::{self, NewEvent};
use hogsend_compiler::emit::GeneratedFile;

/// Events per request (the batch size BENCHMARKS.md states).
pub(crate) const BATCH: usize = 500;
/// Concurrent client connections.
pub(crate) const WORKERS: usize = 4;
/// How long the bench waits for the real-time pass to catch up before giving up.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);

/// What the HTTP ingest phase measured.
pub(crate) struct HttpIngest {
    /// Wall time of each sustained run (first request sent to last response read).
    pub sustained: Samples,
    /// Events per sustained run.
    pub events: usize,
    /// Request latencies of every sustained run, sorted, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Time from the last response until the real-time pass had evaluated every touched
    /// contact, per sustained run.
    pub catch_up: Samples,
    /// The paced run: offered rate (events/s) and its sorted latencies.
    pub paced_rate: f64,
    pub paced: Samples,
    pub paced_latencies_ms: Vec<f64>,
    /// The daemon's real-time counters after the runs (`/metrics`).
    pub realtime: Value,
}

impl HttpIngest {
    /// Events per second of the median sustained run.
    pub(crate) fn events_per_s(&self) -> f64 {
        per_second(self.events, self.sustained.median())
    }

    /// The summary the report shows next to the timings.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "events": self.events,
            "batch": BATCH,
            "connections": WORKERS,
            "events_per_s": self.events_per_s().round() as i64,
            "p50_ms": percentile(&self.latencies_ms, 0.50),
            "p99_ms": percentile(&self.latencies_ms, 0.99),
            "max_ms": self.latencies_ms.last().copied().unwrap_or(0.0),
            "paced": {
                "offered_events_per_s": self.paced_rate.round() as i64,
                "achieved_events_per_s": per_second(self.events, self.paced.median()).round() as i64,
                "p50_ms": percentile(&self.paced_latencies_ms, 0.50),
                "p99_ms": percentile(&self.paced_latencies_ms, 0.99),
                "max_ms": self.paced_latencies_ms.last().copied().unwrap_or(0.0),
            },
            "realtime": self.realtime,
        })
    }
}

fn per_second(events: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        events as f64 / (ms / 1e3)
    } else {
        0.0
    }
}

/// The `p` quantile (0..=1) of sorted values, rounded to 0.1 ms; 0 when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    (sorted[i.min(sorted.len() - 1)] * 10.0).round() / 10.0
}

/// The body of one `POST /v1/events` request: `{"events": [...]}` with a `message_id` per
/// event (`bench-http-<run>-<index>`); anonymous keys of the dataset go as `anonymous_id`.
pub(crate) fn batch_body(events: &[NewEvent], run: usize, first: usize) -> String {
    let items: Vec<Value> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let properties: Value = serde_json::from_str(&e.properties).unwrap_or(Value::Null);
            let mut item = json!({
                "event": e.name,
                "properties": properties,
                "timestamp": e.at,
                "message_id": format!("bench-http-{run}-{}", first + i),
            });
            let id_field = if e.key.starts_with("anon-") {
                "anonymous_id"
            } else {
                "user_id"
            };
            item[id_field] = json!(e.key);
            item
        })
        .collect();
    json!({ "events": items }).to_string()
}

/// Sends `events` in batches of [`BATCH`] over [`WORKERS`] connections; `rate` (events/s)
/// paces the requests when given. Returns the wall time and the sorted latencies.
async fn send_all(
    addr: SocketAddr,
    key: &str,
    events: Arc<Vec<NewEvent>>,
    run: usize,
    rate: Option<f64>,
) -> Result<(Duration, Vec<f64>)> {
    let batches = events.len().div_ceil(BATCH);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(batches)));
    let interval = rate.map(|r| Duration::from_secs_f64(BATCH as f64 / r.max(1.0)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let mut client = Client::connect(addr, key).await?;
        let (events, next, latencies) = (events.clone(), next.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<(), anyhow::Error>(());
                }
                if let Some(interval) = interval {
                    // Batch b is due at b × interval: requests arrive evenly, not in bursts.
                    let due = started + interval * b as u32;
                    tokio::time::sleep_until(due.into()).await;
                }
                let first = b * BATCH;
                let slice = &events[first..(first + BATCH).min(events.len())];
                let body = batch_body(slice, run, first);
                let sent = Instant::now();
                let (status, text) = client.send("POST", "/v1/events", body).await?;
                let ms = sent.elapsed().as_secs_f64() * 1e3;
                if status != 202 {
                    bail!("POST /v1/events answered {status}: {text}");
                }
                latencies.lock().map_err(|_| anyhow!("poisoned"))?.push(ms);
            }
        }));
    }
    for task in tasks {
        task.await.context("client task")??;
    }
    let wall = started.elapsed();
    let mut latencies = latencies.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    latencies.sort_by(f64::total_cmp);
    Ok((wall, latencies))
}

/// Waits until no change-queue entry of the contacts `events` touched is left (each went
/// through the real-time pass). Only those keys: entries an earlier phase queued for the next
/// tick (events after the last tick's instant, which only a tick at or after their instant
/// drains) are not the real-time pass's, and the bench's daemon runs no scheduler. Returns
/// how long that took.
async fn wait_for_real_time(conn: &mut PgConnection, events: &[NewEvent]) -> Result<Duration> {
    let mut keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let started = Instant::now();
    loop {
        let queued: i64 = sqlx::query_scalar(
            "select count(*) from hogsend.changed_keys where user_key = any($1::text[])",
        )
        .bind(&keys)
        .fetch_one(&mut *conn)
        .await?;
        if queued == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > CATCH_UP_LIMIT {
            bail!("the real-time pass left {queued} keys queued after {CATCH_UP_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The daemon's `hogsend_realtime_*` counters from `/metrics` (name → value).
fn realtime_counters(metrics: &str) -> Value {
    let mut out = serde_json::Map::new();
    for line in metrics.lines() {
        if !line.starts_with("hogsend_realtime_") || line.contains("_bucket{") {
            continue;
        }
        if let Some((name, value)) = line.rsplit_once(' ') {
            if let Ok(v) = value.parse::<f64>() {
                out.insert(name.to_owned(), json!(v));
            }
        }
    }
    Value::Object(out)
}

/// Runs the phase against database `url` (migrated with `files` and loaded): `runs`
/// sustained runs of `count` events, then one paced run at half the median rate.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn measure(
    conn: &mut PgConnection,
    url: &str,
    files: Vec<GeneratedFile>,
    contacts: u64,
    count: usize,
    runs: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<HttpIngest> {
    let daemon = Daemon::start(conn, url, files, |_| ()).await?;
    let (addr, key) = (daemon.addr, daemon.key.clone());
    let result = async {
        let mut sustained = Samples::default();
        let mut catch_up = Samples::default();
        let mut all = Vec::new();
        let events_of_run = |run: usize| {
            Arc::new(rows::ingest_events(
                contacts,
                count,
                from,
                to,
                100 + run as u64,
            ))
        };
        for run in 0..runs.max(1) {
            let events = events_of_run(run);
            let (wall, latencies) = send_all(addr, &key, events.clone(), run, None).await?;
            sustained.push(wall);
            all.extend(latencies);
            catch_up.push(wait_for_real_time(conn, &events).await?);
        }
        all.sort_by(f64::total_cmp);
        let rate = per_second(count, sustained.median()) / 2.0;
        let run = runs.max(1);
        let events = events_of_run(run);
        let (wall, paced_latencies_ms) =
            send_all(addr, &key, events.clone(), run, Some(rate)).await?;
        let mut paced = Samples::default();
        paced.push(wall);
        wait_for_real_time(conn, &events).await?;
        let mut client = Client::connect(addr, &key).await?;
        let (_, metrics) = client.send("GET", "/metrics", String::new()).await?;
        Ok(HttpIngest {
            sustained,
            events: count,
            latencies_ms: all,
            catch_up,
            paced_rate: rate,
            paced,
            paced_latencies_ms,
            realtime: realtime_counters(&metrics),
        })
    }
    .await;

    daemon.stop().await?;
    result
}

/// Deletes what the phase stored (its events, the contacts they created, its key), so a
/// kept database holds the generated dataset only.
pub(crate) async fn clean_up(conn: &mut PgConnection) -> Result<()> {
    conn.execute(
        "delete from hogsend.events where message_id like 'bench-http-%';
         delete from hogsend.contacts where external_id like 'new-%';
         delete from hogsend.api_keys where name = 'bench';
         vacuum analyze hogsend.events, hogsend.contacts;",
    )
    .await
    .context("cleaning up after the HTTP ingest phase")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_carry_ids_message_ids_and_properties() {
        let from = crate::dataset::t_end();
        let to = from + chrono::Duration::seconds(30);
        let events = rows::ingest_events(1000, 20, from, to, 3);
        let body: Value = serde_json::from_str(&batch_body(&events, 2, 40)).unwrap();
        let items = body["events"].as_array().unwrap();
        assert_eq!(items.len(), 20);
        for (i, (item, e)) in items.iter().zip(&events).enumerate() {
            assert_eq!(
                item["message_id"],
                json!(format!("bench-http-2-{}", 40 + i))
            );
            assert_eq!(item["event"], json!(e.name));
            let key = item["user_id"].as_str().or(item["anonymous_id"].as_str());
            assert_eq!(key, Some(e.key.as_str()));
            assert!(item["properties"].is_object());
        }
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }
}
