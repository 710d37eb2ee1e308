//! `hogsend-bench flood`: real time under a flood of distinct contacts.
//!
//! Creates `hogsend_flood_<contacts>`, migrates the six buckets of `flood.hog`, seeds the
//! contacts with about ten events each over 30 days (triggers off, then one backfill tick),
//! and launches the daemon in this process ([`hogsend_runtime::launch`], the code `hogsend
//! serve` runs) with its scheduler on (`--tick-every`) and the real-time pass on. Then, per
//! offered rate, for `--seconds`: four keep-alive connections send `app_opened` for
//! never-seen contacts at that rate (0: as fast as the daemon answers), while a sentinel
//! signs up a new contact every 100 ms and times, from its request's return, until
//! `GET /v1/buckets/active_user/members/<key>` answers 200 (visibility). `/metrics` is
//! sampled every 250 ms for the real-time backlog. After the flood, the time until the
//! backlog is empty again.
//!
//! "Keeps up" means the backlog's oldest change never waited more than [`KEEPS_UP_AGE`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use sqlx::{Executor, PgConnection};

use crate::daemon::Client;
use crate::http_ingest::percentile;
use crate::project::SCHEMA;
use crate::server;
use hogsend_compiler::source::{SourceFile, SourceSet};

/// The flood's project.
const FLOOD_HOG: &str = include_str!("flood.hog");
/// Connections sending the flood.
const SENDERS: usize = 4;
/// A new sentinel contact every this often.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// The backlog age under which the pass is said to keep up.
pub(crate) const KEEPS_UP_AGE: Duration = Duration::from_secs(2);
/// How long the bench waits for the backlog to drain after a flood.
const DRAIN_LIMIT: Duration = Duration::from_secs(180);

/// Arguments of `hogsend-bench flood`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Postgres server URL (any database on it; the bench creates and drops its own)
    #[arg(long, value_name = "URL", env = "DATABASE_URL")]
    database_url: String,
    /// Contacts seeded before the flood (about 10 events each)
    #[arg(long, default_value_t = 20_000)]
    contacts: u64,
    /// Offered rates in events/s, comma-separated; 0 is flat out
    #[arg(long, value_delimiter = ',', default_value = "1000,3000")]
    rates: Vec<u64>,
    /// Seconds each rate is offered
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// The daemon's tick period in seconds
    #[arg(long, default_value_t = 30)]
    tick_every: u64,
    /// A sentinel not visible after this many seconds counts as not visible
    #[arg(long, default_value_t = 40)]
    probe_limit: u64,
    /// Write the JSON report here
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
    /// Keep the database afterwards
    #[arg(long)]
    keep: bool,
}

/// What one offered rate measured.
struct Phase {
    offered: u64,
    sent: usize,
    seconds: f64,
    visible_ms: Vec<f64>,
    not_visible: usize,
    max_backlog_contacts: f64,
    max_backlog_age_s: f64,
    drain_s: Option<f64>,
    ticks: f64,
    lock_wait_s: f64,
    pass_s: f64,
}

impl Phase {
    fn to_json(&self) -> Value {
        json!({
            "offered_events_per_s": self.offered,
            "achieved_events_per_s": (self.sent as f64 / self.seconds).round(),
            "probes": self.visible_ms.len() + self.not_visible,
            "visible_p50_ms": percentile(&self.visible_ms, 0.50),
            "visible_p99_ms": percentile(&self.visible_ms, 0.99),
            "visible_max_ms": self.visible_ms.last().copied().unwrap_or(0.0),
            "not_visible": self.not_visible,
            "max_backlog_contacts": self.max_backlog_contacts,
            "max_backlog_age_s": self.max_backlog_age_s,
            "drained_after_s": self.drain_s,
            "keeps_up": self.keeps_up(),
            "ticks": self.ticks,
            "pass_lock_wait_s": self.lock_wait_s,
            "pass_work_s": self.pass_s,
        })
    }

    fn keeps_up(&self) -> bool {
        self.max_backlog_age_s <= KEEPS_UP_AGE.as_secs_f64() && self.not_visible == 0
    }

    fn to_text(&self) -> String {
        let rate = if self.offered == 0 {
            "flat out".to_owned()
        } else {
            self.offered.to_string()
        };
        format!(
            "| {rate} | {:.0} | {:.2} / {:.2} / {:.2} s | {} / {} | {:.0} contacts, {:.1} s | {} | {} | {:.0} | {:.1} / {:.1} s |\n",
            self.sent as f64 / self.seconds,
            percentile(&self.visible_ms, 0.50) / 1e3,
            percentile(&self.visible_ms, 0.99) / 1e3,
            self.visible_ms.last().copied().unwrap_or(0.0) / 1e3,
            self.not_visible,
            self.visible_ms.len() + self.not_visible,
            self.max_backlog_contacts,
            self.max_backlog_age_s,
            self.drain_s
                .map_or_else(|| "not drained".to_owned(), |s| format!("{s:.1} s")),
            if self.keeps_up() { "yes" } else { "no" },
            self.ticks,
            self.lock_wait_s,
            self.pass_s,
        )
    }
}

/// Runs the flood bench.
pub(crate) fn run(args: &Args) -> Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let report = runtime.block_on(flood(args))?;
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn flood(args: &Args) -> Result<Value> {
    let name = format!("hogsend_flood_{}", args.contacts);
    let mut admin = sqlx::Connection::connect(&args.database_url)
        .await
        .context("could not connect to the server")?;
    server::recreate_database(&mut admin, &name).await?;
    let url = hogsend_runtime::db::with_database(&args.database_url, &name);
    let result = flood_in(args, &url).await;
    if !args.keep {
        server::drop_database(&mut admin, &name).await?;
    }
    result
}

async fn flood_in(args: &Args, url: &str) -> Result<Value> {
    let set = SourceSet {
        files: vec![SourceFile::new("flood.hog", FLOOD_HOG)],
        templates: Vec::new(),
        config: None,
    };
    let files = crate::project::compile(&set)?.files;
    let mut conn = server::connect(url).await?;
    let schema = hogsend_schema::SchemaName::new(SCHEMA)?;
    hogsend_runtime::migrate::migrate(&mut conn, &schema, &files).await?;
    eprintln!("seeding {} contacts", args.contacts);
    seed(&mut conn, args.contacts).await?;
    let machine = server::describe(&mut conn).await?;
    let (_, ingest) = hogsend_runtime::keys::create(
        &mut conn,
        SCHEMA,
        hogsend_runtime::keys::Scope::Ingest,
        Some("flood"),
    )
    .await?;
    let (_, read) = hogsend_runtime::keys::create(
        &mut conn,
        SCHEMA,
        hogsend_runtime::keys::Scope::Read,
        Some("flood-read"),
    )
    .await?;

    let (schema_cfg, api, schedule) = Default::default();
    let settings = hogsend_runtime::config::Settings {
        schema: &schema_cfg,
        api: &api,
        schedule: &schedule,
    };
    let mut config = hogsend_runtime::RuntimeConfig::from_settings(settings, url, files, |_| None)
        .map_err(|e| anyhow!("{e}"))?;
    config.scheduler = true;
    config.tick_every = Duration::from_secs(args.tick_every.max(1));
    config.rate_limit_per_second = 0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(hogsend_runtime::launch(config, listener, async move {
        let _ = stopped.await;
    }));

    let phases = async {
        let mut c = Client::connect(addr, &read).await?;
        let started = Instant::now();
        while c.send("GET", "/healthz", String::new()).await?.0 != 200 {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the daemon did not come up");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut phases = Vec::new();
        for (i, &rate) in args.rates.iter().enumerate() {
            eprintln!("flood {i}: {rate} events/s for {} s", args.seconds);
            phases.push(phase(addr, &ingest, &read, i, rate, args).await?);
        }
        Ok(phases)
    }
    .await;
    let _ = stop.send(());
    daemon
        .await
        .context("daemon task")?
        .context("the daemon failed")?;
    let phases = phases?;

    let mut text = String::from(
        "| offered events/s | achieved | join visible p50 / p99 / max | not visible | max backlog (contacts, oldest) | drained after the flood | keeps up | ticks | pass lock wait / work |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for p in &phases {
        text.push_str(&p.to_text());
    }
    print!("{text}");
    Ok(json!({
        "contacts": args.contacts,
        "seconds": args.seconds,
        "tick_every_s": args.tick_every,
        "machine": machine,
        "phases": phases.iter().map(Phase::to_json).collect::<Vec<_>>(),
    }))
}

/// `contacts` contacts (every fifth on plan `pro`) with ten events each over 30 days,
/// stored without the change-capture triggers, then the backfill tick.
async fn seed(conn: &mut PgConnection, contacts: u64) -> Result<()> {
    let n = i64::try_from(contacts)?;
    conn.execute("set session_replication_role = replica")
        .await?;
    sqlx::query(
        "insert into contacts (external_id, properties)
         select 'c' || g, jsonb_build_object('plan', case when g % 5 = 0 then 'pro' else 'free' end)
           from generate_series(1, $1) g",
    )
    .bind(n)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into events (user_key, event, occurred_at)
         select 'c' || (1 + g % $1),
                (array['app_opened', 'app_opened', 'app_opened', 'search', 'export'])[1 + (g * 7) % 5],
                now() - (g % 2592000) * interval '1 second'
           from generate_series(1, $1 * 10) g",
    )
    .bind(n)
    .execute(&mut *conn)
    .await?;
    conn.execute(
        "set session_replication_role = origin; select rebuild_event_summaries();
         analyze contacts; analyze events; analyze event_summaries",
    )
    .await?;
    hogsend_runtime::db::tick(conn, SCHEMA, None).await?;
    conn.execute("vacuum analyze memberships").await?;
    Ok(())
}

/// The value of the metric line `name` in a `/metrics` text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// One offered rate: the flood, the sentinel, the backlog samples, then the drain.
async fn phase(
    addr: SocketAddr,
    ingest: &str,
    read: &str,
    index: usize,
    rate: u64,
    args: &Args,
) -> Result<Phase> {
    let seconds = Duration::from_secs(args.seconds.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut metrics = Client::connect(addr, read).await?;
    let before = metrics.send("GET", "/metrics", String::new()).await?.1;

    // The flood: requests of `batch` new contacts, due evenly over time when paced.
    let batch = if rate == 0 {
        500
    } else {
        (rate / 20).clamp(1, 500) as usize
    };
    let interval =
        (rate > 0).then(|| Duration::from_secs_f64(batch as f64 / rate as f64 * SENDERS as f64));
    let started = Instant::now();
    let mut senders = Vec::new();
    for w in 0..SENDERS {
        let mut client = Client::connect(addr, ingest).await?;
        let (stop, sent) = (stop.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            let mut n = 0usize;
            while started.elapsed() < seconds && !stop.load(Ordering::Relaxed) {
                if let Some(interval) = interval {
                    // Sender w's request n is due at (n + w / SENDERS) intervals.
                    let due = started
                        + interval.mul_f64(n as f64 + w as f64 / SENDERS as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let events: Vec<Value> = (0..batch)
                    .map(|i| json!({"user_id": format!("f{index}-{w}-{n}-{i}"), "event": "app_opened"}))
                    .collect();
                let body = json!({ "events": events }).to_string();
                let (status, text) = client.send("POST", "/v1/events", body).await?;
                if status != 202 {
                    bail!("POST /v1/events answered {status}: {text}");
                }
                sent.fetch_add(batch, Ordering::Relaxed);
                n += 1;
            }
            Ok::<(), anyhow::Error>(())
        }));
    }

    // The sentinel: a new contact every PROBE_EVERY, timed until the API lists it.
    let limit = Duration::from_secs(args.probe_limit.max(1));
    let visible = Arc::new(Mutex::new(Vec::<Option<Duration>>::new()));
    let mut probes = Vec::new();
    let mut k = 0usize;
    let mut max_contacts: f64 = 0.0;
    let mut max_age: f64 = 0.0;
    let mut next_sample = Instant::now();
    while started.elapsed() < seconds {
        let (ingest, read, visible) = (ingest.to_owned(), read.to_owned(), visible.clone());
        let key = format!("probe{index}-{k}");
        probes.push(tokio::spawn(async move {
            let result = probe(addr, &ingest, &read, &key, limit).await;
            if let Ok(mut v) = visible.lock() {
                v.push(result.ok().flatten());
            }
        }));
        k += 1;
        if Instant::now() >= next_sample {
            let text = metrics.send("GET", "/metrics", String::new()).await?.1;
            max_contacts = max_contacts.max(metric(&text, "hogsend_realtime_backlog_contacts"));
            max_age = max_age.max(metric(&text, "hogsend_realtime_backlog_age_seconds"));
            next_sample = Instant::now() + Duration::from_millis(250);
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.context("sender")??;
    }
    let flood_end = Instant::now();
    let wall = started.elapsed().as_secs_f64();

    // The drain: until nothing waits for the pass.
    let mut drain_s = None;
    while flood_end.elapsed() < DRAIN_LIMIT {
        let text = metrics.send("GET", "/metrics", String::new()).await?.1;
        let contacts = metric(&text, "hogsend_realtime_backlog_contacts");
        max_contacts = max_contacts.max(contacts);
        max_age = max_age.max(metric(&text, "hogsend_realtime_backlog_age_seconds"));
        if contacts == 0.0 {
            drain_s = Some(flood_end.elapsed().as_secs_f64());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in probes {
        p.await.context("probe")?;
    }
    let after = metrics.send("GET", "/metrics", String::new()).await?.1;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let results = visible.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    let mut visible_ms: Vec<f64> = results
        .iter()
        .flatten()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    visible_ms.sort_by(f64::total_cmp);
    Ok(Phase {
        offered: rate,
        sent: sent.load(Ordering::Relaxed),
        seconds: wall,
        not_visible: results.iter().filter(|r| r.is_none()).count(),
        visible_ms,
        max_backlog_contacts: max_contacts,
        max_backlog_age_s: max_age,
        drain_s,
        ticks: delta("hogsend_ticks_total{result=\"ok\"}"),
        lock_wait_s: delta("hogsend_realtime_lock_wait_seconds_sum"),
        pass_s: delta("hogsend_realtime_pass_seconds_sum"),
    })
}

/// Signs up `key` and polls until the API lists it in `active_user`: the time from the
/// ingest request's return, or `None` past `limit`.
async fn probe(
    addr: SocketAddr,
    ingest: &str,
    read: &str,
    key: &str,
    limit: Duration,
) -> Result<Option<Duration>> {
    let mut writer = Client::connect(addr, ingest).await?;
    let body = json!({"events": [{"user_id": key, "event": "app_opened"}]}).to_string();
    let (status, text) = writer.send("POST", "/v1/events", body).await?;
    if status != 202 {
        bail!("the probe's POST answered {status}: {text}");
    }
    let returned = Instant::now();
    drop(writer);
    let mut reader = Client::connect(addr, read).await?;
    let path = format!("/v1/buckets/active_user/members/{key}");
    while returned.elapsed() < limit {
        if reader.send("GET", &path, String::new()).await?.0 == 200 {
            return Ok(Some(returned.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flood_project_compiles_to_six_buckets() {
        let set = SourceSet {
            files: vec![SourceFile::new("flood.hog", FLOOD_HOG)],
            templates: Vec::new(),
            config: None,
        };
        let project = crate::project::compile(&set).expect("compiles");
        assert_eq!(project.program.buckets.len(), 6);
    }

    #[test]
    fn metric_lines_are_read_by_exact_name() {
        let text = "hogsend_realtime_backlog_contacts 12\nhogsend_realtime_backlog_contacts_x 3\nhogsend_ticks_total{result=\"ok\"} 4\n";
        assert_eq!(metric(text, "hogsend_realtime_backlog_contacts"), 12.0);
        assert_eq!(metric(text, "hogsend_ticks_total{result=\"ok\"}"), 4.0);
        assert_eq!(metric(text, "missing"), 0.0);
    }
}
