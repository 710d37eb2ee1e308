//! Ingest benchmark (not a test): sustained `POST /v1/events` in batches of 500 against a
//! `hogsend serve` daemon with the real-time pass on, into an events table already holding
//! millions of rows; then the p99 latency at half that rate; then a raw COPY of the same
//! number of events into the same table, in the same run; and the daemon's RSS.
//!
//! ```sh
//! cargo build --release
//! cargo run --release -p hogsend-runtime --features testkit --example ingest_load -- \
//!     --admin-url postgres://postgres@127.0.0.1:5432/postgres --rows 10000000
//! ```
//!
//! Bounded: every phase stops after `--seconds`; only loopback is targeted.

use hogsend_runtime::keys::{self, Scope};
use hogsend_runtime::testkit::{request, with_database};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BATCH: usize = 500;
const CONTACTS: u64 = 500_000;
const EVENTS: [&str; 10] = [
    "app_opened",
    "app_opened",
    "app_opened",
    "$pageview",
    "Order Completed",
    "payment.failed",
    "payment.succeeded",
    "trial.started",
    "support.ticket_opened",
    "user.signed_up",
];

struct Args {
    admin_url: String,
    rows: u64,
    seconds: u64,
    workers: usize,
    hogsend: String,
    project: String,
    reuse: bool,
    /// How many distinct contacts the load touches (all 500,000 by default: the worst case
    /// for the real-time pass, which evaluates each touched contact once per flush).
    active: u64,
    /// The paced phase's rate in events/s (default: half of the sustained rate).
    paced: Option<f64>,
}

fn args() -> Args {
    let mut a = Args {
        admin_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
        rows: 10_000_000,
        seconds: 20,
        workers: 4,
        hogsend: "target/release/hogsend".into(),
        project: "examples/saas".into(),
        reuse: false,
        active: CONTACTS,
        paced: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--admin-url" => a.admin_url = value(),
            "--rows" => a.rows = value().parse().unwrap_or(a.rows),
            "--seconds" => a.seconds = value().parse().unwrap_or(a.seconds),
            "--workers" => a.workers = value().parse().unwrap_or(a.workers),
            "--hogsend" => a.hogsend = value(),
            "--project" => a.project = value(),
            "--reuse" => a.reuse = true,
            "--active" => a.active = value().parse().unwrap_or(a.active),
            "--paced" => a.paced = value().parse().ok(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn hogsend(a: &Args, url: &str, sub: &[&str]) {
    let out = Command::new(&a.hogsend)
        .args(sub)
        .arg(&a.project)
        .args(["--database-url", url])
        .output()
        .expect("run hogsend");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "hogsend {sub:?} failed");
}

async fn seed(conn: &mut PgConnection, rows: u64) {
    let started = Instant::now();
    // Load with triggers off and the secondary indexes rebuilt afterwards: this is the
    // history a production database already holds, not what is measured.
    let defs: Vec<String> = sqlx::query_scalar(
        "select indexdef from pg_indexes where schemaname = 'hogsend' and tablename = 'events'
            and indexname <> 'events_pkey'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("index defs");
    let names: Vec<String> = sqlx::query_scalar(
        "select indexname from pg_indexes where schemaname = 'hogsend' and tablename = 'events'
            and indexname <> 'events_pkey'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("index names");
    for n in &names {
        conn.execute(format!("drop index hogsend.\"{n}\"").as_str())
            .await
            .expect("drop index");
    }
    let sql = format!(
        "set session_replication_role = replica;
         set maintenance_work_mem = '512MB';
         insert into hogsend.contacts (external_id, email, properties)
         select 'c' || g, 'c' || g || '@example.test',
                jsonb_build_object('plan', (array['free','trial','pro','team'])[1 + g % 4],
                                   'role', case when g % 10 = 0 then 'owner' else 'member' end,
                                   'company', jsonb_build_object('employees', g % 50))
           from generate_series(1, {CONTACTS}) g;
         insert into hogsend.events (user_key, event, properties, occurred_at, received_at)
         select 'c' || (1 + (g * 7919) % {CONTACTS}),
                (array['app_opened','app_opened','app_opened','$pageview','Order Completed',
                       'payment.failed','payment.succeeded','trial.started',
                       'support.ticket_opened','user.signed_up'])[1 + g % 10],
                jsonb_build_object('path', case when g % 3 = 0 then '/pricing' else '/home' end,
                                   'total', g % 900, 'currency', 'EUR'),
                now() - (g % (60 * 86400)) * interval '1 second', now()
           from generate_series(1::bigint, {rows}) g;
         set session_replication_role = origin;
         select hogsend.rebuild_event_summaries();"
    );
    sqlx::raw_sql(&sql).execute(&mut *conn).await.expect("seed");
    for d in &defs {
        conn.execute(d.as_str()).await.expect("create index");
    }
    conn.execute("vacuum (analyze) hogsend.events")
        .await
        .expect("vacuum");
    conn.execute("vacuum (analyze) hogsend.contacts")
        .await
        .expect("vacuum");
    eprintln!(
        "seeded {CONTACTS} contacts, {rows} events in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

fn batch_body(worker: usize, n: u64, active: u64) -> String {
    let events: Vec<Value> = (0..BATCH as u64)
        .map(|i| {
            let g = n * BATCH as u64 + i;
            json!({
                "user_id": format!("c{}", 1 + (g * 104_729 + worker as u64 * 13) % active),
                "event": EVENTS[(g % 10) as usize],
                "message_id": format!("load-{}-{worker}-{n}-{i}", std::process::id()),
                "properties": {"path": if g % 3 == 0 { "/pricing" } else { "/home" }, "total": g % 900, "currency": "EUR"}
            })
        })
        .collect();
    json!({ "events": events }).to_string()
}

struct Phase {
    events: u64,
    seconds: f64,
    latencies_ms: Vec<f64>,
    errors: u64,
}

/// Sends batches from `workers` tasks for `seconds`; `rate` (requests/s, all workers) paces
/// them when set.
async fn load(
    addr: std::net::SocketAddr,
    key: &str,
    workers: usize,
    seconds: u64,
    rate: Option<f64>,
    tag: usize,
    active: u64,
) -> Phase {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (sent, errors, latencies) = (sent.clone(), errors.clone(), latencies.clone());
        let headers = vec![
            ("Authorization".to_owned(), format!("Bearer {key}")),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let interval = rate.map(|r| Duration::from_secs_f64(workers as f64 / r));
            // Stagger the paced workers so their requests arrive evenly, not in bursts.
            let mut next =
                Instant::now() + interval.unwrap_or_default() * w as u32 / workers as u32;
            while Instant::now() < deadline {
                if let Some(iv) = interval {
                    let now = Instant::now();
                    if next > now {
                        tokio::time::sleep(next - now).await;
                    }
                    next += iv;
                }
                let body = batch_body(tag * 100 + w, n, active);
                let t = Instant::now();
                let r = request(addr, "POST", "/v1/events", &headers, Some(body.as_bytes())).await;
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if r.status == 202 {
                    sent.fetch_add(BATCH as u64, Ordering::Relaxed);
                    if let Ok(mut l) = latencies.lock() {
                        l.push(ms);
                    }
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    eprintln!("HTTP {}: {}", r.status, r.body);
                }
                n += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut latencies_ms = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    latencies_ms.sort_by(f64::total_cmp);
    Phase {
        events: sent.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs_f64(),
        latencies_ms,
        errors: errors.load(Ordering::Relaxed),
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn copy_events(conn: &mut PgConnection, count: u64) -> f64 {
    let mut text = String::new();
    for g in 0..count {
        let e = EVENTS[(g % 10) as usize];
        text.push_str(&format!(
            "c{}\t{}\t{{\"path\": \"{}\", \"total\": {}, \"currency\": \"EUR\"}}\tcopy-{}-{g}\n",
            1 + (g * 104_729) % CONTACTS,
            e,
            if g % 3 == 0 { "/pricing" } else { "/home" },
            g % 900,
            std::process::id()
        ));
    }
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("copy hogsend.events (user_key, event, properties, message_id) from stdin")
        .await
        .expect("copy in");
    copy.send(text.as_bytes()).await.expect("copy send");
    copy.finish().await.expect("copy finish");
    started.elapsed().as_secs_f64()
}

static PROBE_SECONDS: AtomicU64 = AtomicU64::new(20);

fn a_seconds_for_probes() -> u64 {
    PROBE_SECONDS.load(Ordering::Relaxed)
}

#[tokio::main]
async fn main() {
    let a = args();
    PROBE_SECONDS.store(a.seconds, Ordering::Relaxed);
    let db = "hogsend_ingest_bench";
    let url = with_database(&a.admin_url, db);
    let mut admin = PgConnection::connect(&a.admin_url).await.expect("admin");
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(db)
            .fetch_one(&mut admin)
            .await
            .expect("exists");
    if !(a.reuse && exists) {
        admin
            .execute(format!("drop database if exists {db} with (force)").as_str())
            .await
            .expect("drop");
        admin
            .execute(format!("create database {db}").as_str())
            .await
            .expect("create");
        hogsend(&a, &url, &["migrate"]);
        let mut conn = PgConnection::connect(&url).await.expect("db");
        seed(&mut conn, a.rows).await;
        let t = Instant::now();
        hogsend(&a, &url, &["tick"]);
        eprintln!(
            "first tick (backfill of every bucket) {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    // Start from an empty change queue (a reused database keeps the last run's backlog,
    // which the daemon's first tick would otherwise work through during the measurement).
    let t = Instant::now();
    hogsend(&a, &url, &["tick"]);
    eprintln!("catch-up tick {:.1} s", t.elapsed().as_secs_f64());
    let mut conn = hogsend_runtime::db::connect_one(&url, &Default::default())
        .await
        .expect("db");
    let (_, key) = keys::create(&mut conn, "hogsend", Scope::Admin, Some("load"))
        .await
        .expect("key");
    let events_before: i64 = sqlx::query_scalar("select count(*) from hogsend.events")
        .fetch_one(&mut conn)
        .await
        .expect("count");

    let mut child = Command::new(&a.hogsend)
        .args([
            "serve",
            &a.project,
            "--database-url",
            &url,
            "--listen",
            "127.0.0.1:0",
        ])
        .env("HOGSEND_RATE_LIMIT_PER_SECOND", "0")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let addr: std::net::SocketAddr = loop {
        let line = lines.next().expect("serve output").expect("line");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().parse().expect("addr");
        }
    };
    std::thread::spawn(move || for _ in lines.by_ref() {});
    while request(addr, "GET", "/healthz", &[], None).await.status != 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_idle = rss_kb(pid, "VmRSS:");

    // With --paced, only the paced phase runs (no flood before it).
    let full = if a.paced.is_some() {
        Phase {
            events: 0,
            seconds: 1.0,
            latencies_ms: Vec::new(),
            errors: 0,
        }
    } else {
        load(addr, &key, a.workers, a.seconds, None, 1, a.active).await
    };
    let rate = full.events as f64 / full.seconds;
    let half_rate_requests = a.paced.unwrap_or(rate / 2.0) / BATCH as f64;
    // While the half-rate load runs, probe the real-time guarantee: every 2 s a new contact
    // signs up through the partner programme and we time until `partner_signups` lists it.
    let probe_key = key.clone();
    let probes = tokio::spawn(async move {
        let headers = vec![
            ("Authorization".to_owned(), format!("Bearer {probe_key}")),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        let mut lags = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(a_seconds_for_probes());
        let mut n = 0;
        while Instant::now() < deadline {
            n += 1;
            let who = format!("probe-{}-{n}", std::process::id());
            let body = json!({"user_id": who, "event": "user.signed_up",
                              "contact": {"signup source": "partner"}})
            .to_string();
            let t = Instant::now();
            request(addr, "POST", "/v1/events", &headers, Some(body.as_bytes())).await;
            let path = format!("/v1/buckets/partner_signups/members/{who}");
            while request(addr, "GET", &path, &headers, None).await.status != 200 {
                if t.elapsed() > Duration::from_secs(60) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            lags.push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        lags
    });
    let half = load(
        addr,
        &key,
        a.workers,
        a.seconds,
        Some(half_rate_requests),
        2,
        a.active,
    )
    .await;
    let mut lags = probes.await.unwrap_or_default();
    lags.sort_by(f64::total_cmp);
    let metrics = request(addr, "GET", "/metrics", &[], None).await.body;
    let rss_peak = rss_kb(pid, "VmHWM:");
    let rss_now = rss_kb(pid, "VmRSS:");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();

    let copy_count = full.events.max(half.events).max(BATCH as u64);
    let copy_seconds = copy_events(&mut conn, copy_count).await;
    let copy_rate = copy_count as f64 / copy_seconds;

    let realtime: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("hogsend_realtime_") && !l.contains("_bucket{"))
        .collect();
    println!("events in the table before the run: {events_before}");
    println!(
        "sustained: {} events in {:.1} s = {:.0} events/s ({} requests, {} errors; p50 {:.1} ms, p99 {:.1} ms)",
        full.events,
        full.seconds,
        rate,
        full.latencies_ms.len(),
        full.errors,
        pct(&full.latencies_ms, 0.5),
        pct(&full.latencies_ms, 0.99)
    );
    println!(
        "paced ({:.0} events/s offered): {:.0} events/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        half_rate_requests * BATCH as f64,
        half.events as f64 / half.seconds,
        pct(&half.latencies_ms, 0.5),
        pct(&half.latencies_ms, 0.99),
        half.latencies_ms.last().copied().unwrap_or(0.0)
    );
    println!(
        "raw COPY of {copy_count} events: {copy_seconds:.2} s = {copy_rate:.0} events/s; API/COPY = {:.0}%",
        100.0 * rate / copy_rate
    );
    println!(
        "daemon RSS: idle {} MB, after load {} MB, peak {} MB",
        rss_idle / 1024,
        rss_now / 1024,
        rss_peak / 1024
    );
    println!(
        "real-time probes during the paced phase: {} joins, visible after median {:.0} ms, max {:.0} ms",
        lags.len(),
        pct(&lags, 0.5),
        lags.last().copied().unwrap_or(0.0)
    );
    for l in realtime {
        println!("  {l}");
    }
}
