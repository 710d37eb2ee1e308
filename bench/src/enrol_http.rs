//! Event-triggered enrolment through the API: sign-ups of new contacts (`user.signed_up`,
//! which triggers the `onboarding` journey of `journeys.hog`) sent to `POST /v1/events` of an
//! in-process daemon ([`Daemon`]) at a fixed rate, in requests of [`PER_REQUEST`] events spread
//! evenly over time on [`WORKERS`] keep-alive connections. Each event is timed from the moment
//! its request was sent until its welcome message is visible in `messages` (queued by the
//! daemon's real-time pass, which enrols the run and executes its `send` at once), seen by a
//! poller on its own connection every [`POLL`]; the figure includes up to one poll interval.
//! The daemon's delivery worker is off, so the messages stay queued and the figure is the
//! engine's alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use hogsend_compiler::emit::GeneratedFile;
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::daemon::{Client, Daemon};
use crate::http_ingest::percentile;
use crate::server;

/// Events per request.
pub(crate) const PER_REQUEST: usize = 10;
/// Concurrent client connections.
pub(crate) const WORKERS: usize = 4;
/// How often the poller looks for new messages.
pub(crate) const POLL: Duration = Duration::from_millis(5);
/// How long after the last request the poller waits for the last messages.
const GRACE: Duration = Duration::from_secs(60);

/// What the phase measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Enrolment {
    pub events: usize,
    /// Offered events per second.
    pub rate: u64,
    /// From the first request sent to the last response read, in seconds.
    pub wall_s: f64,
    /// Per event, sorted: request sent → its message visible, ms.
    pub latencies_ms: Vec<f64>,
    /// Per request, sorted: the HTTP round trip, ms.
    pub http_ms: Vec<f64>,
    /// Events whose message did not appear within the grace period.
    pub missing: usize,
}

impl Enrolment {
    /// The 99th percentile of event → message queued, ms.
    pub(crate) fn p99_ms(&self) -> f64 {
        percentile(&self.latencies_ms, 0.99)
    }

    /// The figures, for the JSON report.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "events": self.events,
            "offered_events_per_s": self.rate,
            "achieved_events_per_s": if self.wall_s > 0.0 { self.events as f64 / self.wall_s } else { 0.0 },
            "events_per_request": PER_REQUEST,
            "connections": WORKERS,
            "poll_ms": POLL.as_millis() as u64,
            "queued_p50_ms": percentile(&self.latencies_ms, 0.50),
            "queued_p99_ms": self.p99_ms(),
            "queued_max_ms": self.latencies_ms.last().copied().unwrap_or(0.0),
            "http_p50_ms": percentile(&self.http_ms, 0.50),
            "http_p99_ms": percentile(&self.http_ms, 0.99),
            "missing": self.missing,
        })
    }

    /// One line for the text report.
    pub(crate) fn summary_line(&self) -> String {
        format!(
            "sign-up -> welcome queued: p50 {} ms, p99 {} ms, max {:.1} ms ({} missing); HTTP p99 {} ms",
            percentile(&self.latencies_ms, 0.50),
            self.p99_ms(),
            self.latencies_ms.last().copied().unwrap_or(0.0),
            self.missing,
            percentile(&self.http_ms, 0.99),
        )
    }
}

/// The request body of batch `b` of `total` events: contacts `jnew-<i>`, timestamped now.
pub(crate) fn batch_body(b: usize, total: usize) -> String {
    let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let first = b * PER_REQUEST;
    let events: Vec<Value> = (first..(first + PER_REQUEST).min(total))
        .map(|i| {
            json!({
                "event": "user.signed_up",
                "user_id": format!("jnew-{i}"),
                "timestamp": at,
                "message_id": format!("bench-jhttp-{i}"),
            })
        })
        .collect();
    json!({ "events": events }).to_string()
}

/// The event index of a contact key `jnew-<i>` below `total`.
pub(crate) fn event_index(key: &str, total: usize) -> Option<usize> {
    key.strip_prefix("jnew-")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|i| *i < total)
}

/// Per event, the time from its request being sent until its message was seen, sorted;
/// and how many were never seen.
pub(crate) fn latencies(
    sent: &[Option<Instant>],
    seen: &[Option<Instant>],
    per_request: usize,
) -> (Vec<f64>, usize) {
    let mut out = Vec::with_capacity(seen.len());
    let mut missing = 0;
    for (i, seen) in seen.iter().enumerate() {
        match (sent.get(i / per_request).copied().flatten(), seen) {
            (Some(sent), Some(seen)) => {
                out.push(seen.saturating_duration_since(sent).as_secs_f64() * 1e3);
            }
            _ => missing += 1,
        }
    }
    out.sort_by(f64::total_cmp);
    (out, missing)
}

/// Runs the phase against database `url` (migrated with `files`): `rate` sign-ups per
/// second for `seconds` seconds.
pub(crate) async fn measure(
    conn: &mut PgConnection,
    url: &str,
    files: Vec<GeneratedFile>,
    rate: u64,
    seconds: u64,
) -> Result<Enrolment> {
    let daemon = Daemon::start(conn, url, files, |config| config.mail.worker = false).await?;
    let result = send_and_watch(&daemon, url, rate.max(1), seconds.max(1)).await;
    daemon.stop().await?;
    result
}

async fn send_and_watch(daemon: &Daemon, url: &str, rate: u64, seconds: u64) -> Result<Enrolment> {
    let total = (rate * seconds) as usize;
    let batches = total.div_ceil(PER_REQUEST);
    let interval = Duration::from_secs_f64(PER_REQUEST as f64 / rate as f64);
    let sent = Arc::new(Mutex::new(vec![None::<Instant>; batches]));
    let http = Arc::new(Mutex::new(Vec::with_capacity(batches)));
    let seen = Arc::new(Mutex::new(vec![None::<Instant>; total]));

    let mut poll_conn = server::connect(url).await?;
    let deadline = Instant::now() + Duration::from_secs(seconds) + GRACE;
    let poller = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut last_id = 0_i64;
            let mut found = 0;
            while found < total && Instant::now() < deadline {
                // A margin below the last id seen: a pass that committed out of id order
                // (none should: passes hold the pass lock) is still found.
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "select id, user_key from hogsend.messages
                      where id > $1 and journey_id = 'onboarding' and user_key like 'jnew-%'
                      order by id",
                )
                .bind(last_id - 1000)
                .fetch_all(&mut poll_conn)
                .await?;
                let now = Instant::now();
                {
                    let mut seen = seen.lock().map_err(|_| anyhow!("poisoned"))?;
                    for (id, key) in rows {
                        last_id = last_id.max(id);
                        if let Some(i) = event_index(&key, total) {
                            if seen[i].is_none() {
                                seen[i] = Some(now);
                                found += 1;
                            }
                        }
                    }
                }
                tokio::time::sleep(POLL).await;
            }
            Ok::<(), anyhow::Error>(())
        })
    };

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let mut client = Client::connect(daemon.addr, &daemon.key).await?;
        let (next, sent, http) = (next.clone(), sent.clone(), http.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= batches {
                    return Ok::<(), anyhow::Error>(());
                }
                tokio::time::sleep_until((started + interval * b as u32).into()).await;
                let body = batch_body(b, total);
                let at = Instant::now();
                sent.lock().map_err(|_| anyhow!("poisoned"))?[b] = Some(at);
                let (status, text) = client.send("POST", "/v1/events", body).await?;
                if status != 202 {
                    bail!("POST /v1/events answered {status}: {text}");
                }
                http.lock()
                    .map_err(|_| anyhow!("poisoned"))?
                    .push(at.elapsed().as_secs_f64() * 1e3);
            }
        }));
    }
    for task in tasks {
        task.await.context("client task")??;
    }
    let wall_s = started.elapsed().as_secs_f64();
    poller.await.context("poller task")??;

    let sent = sent.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    let seen = seen.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    let (latencies_ms, missing) = latencies(&sent, &seen, PER_REQUEST);
    let mut http_ms = http.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    http_ms.sort_by(f64::total_cmp);
    Ok(Enrolment {
        events: total,
        rate,
        wall_s,
        latencies_ms,
        http_ms,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_new_contacts_and_stop_at_the_total() {
        let body: Value = serde_json::from_str(&batch_body(2, 25)).unwrap();
        let events = body["events"].as_array().unwrap();
        assert_eq!(events.len(), 5);
        assert_eq!(events[0]["user_id"], json!("jnew-20"));
        assert_eq!(events[4]["message_id"], json!("bench-jhttp-24"));
        assert_eq!(event_index("jnew-24", 25), Some(24));
        assert_eq!(event_index("jnew-25", 25), None);
        assert_eq!(event_index("j24", 25), None);
    }

    #[test]
    fn latencies_count_from_the_request_of_each_event() {
        let t = Instant::now();
        let ms = |n: u64| Some(t + Duration::from_millis(n));
        let sent = vec![ms(0), ms(100)];
        let seen = vec![ms(30), ms(10), ms(150), None];
        let (latencies, missing) = latencies(&sent, &seen, 2);
        assert_eq!(missing, 1);
        let rounded: Vec<f64> = latencies.iter().map(|l| l.round()).collect();
        assert_eq!(rounded, vec![10.0, 30.0, 50.0]);
    }
}
