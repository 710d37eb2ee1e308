//! The hogsend runtime: applies compiled projects to Postgres and runs them as a daemon.
//!
//! This crate never parses `.hog`: it receives generated SQL from the compiler and calls the
//! generated functions through [`db`], the one module that knows their names.
//!
//! ```text
//!   launch(config, listener, shutdown)
//!     ├─ migrate (base schema + compiled project, one transaction)
//!     ├─ scheduler   tick every tick_every; leader lock, no overlap      scheduler.rs
//!     ├─ realtime    apply_keys for touched contacts every ~250 ms      realtime.rs
//!     └─ HTTP API    ingest, contacts, buckets, ops                     http/
//!                      └─ ingest.rs: validation + set-based write; queries.rs: reads
//! ```

pub mod config;
pub mod db;
pub mod error;
#[cfg(feature = "testkit")]
pub mod fake_resend;
#[cfg(feature = "testkit")]
pub mod fuzzing;
pub mod http;
pub mod import;
pub mod ingest;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod migrate;
pub mod pgcluster;
pub mod queries;
pub mod realtime;
pub mod scheduler;
pub mod server;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::RuntimeConfig;
pub use error::{Error, Result};

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Runs the daemon on `listener` until `shutdown` resolves: migrates, starts the scheduler
/// and the real-time pass, serves the API. On shutdown it stops accepting connections,
/// drains the requests in flight for at most `shutdown_grace` (then closes what is left),
/// lets a running tick finish, runs a last real-time pass and returns.
pub async fn launch(
    config: RuntimeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let schema = config.schema.clone();
    let pool = db::connect(config.database_url.expose(), &schema, config.pool_size).await?;
    {
        let mut conn = pool.acquire().await?;
        let report = migrate::migrate(&mut conn, &schema, &config.generated).await?;
        tracing::info!(
            schema = %schema,
            base = report.base_to,
            added = ?report.added,
            changed = ?report.changed,
            removed = ?report.removed,
            "migrated"
        );
    }
    let config = Arc::new(config);
    let state = http::AppState {
        pool: pool.clone(),
        config: config.clone(),
        metrics: Arc::new(metrics::Metrics::default()),
        pending: Arc::new(realtime::Pending::default()),
        limiter: Arc::new(http::auth::RateLimiter::new(
            config.rate_limit_per_second,
            config.rate_limit_burst,
        )),
        ip_limiter: Arc::new(http::auth::RateLimiter::new(
            config.ip_rate_limit_per_second,
            config.ip_rate_limit_burst,
        )),
        health: Arc::new(Mutex::new(scheduler::TickHealth::default())),
        started: Instant::now(),
        mail: Arc::new(mail::MailState::new(config.mail.clone())),
    };
    let (stop_ticks, ticks_stopped) = watch::channel(false);
    let (stop_realtime, realtime_stopped) = watch::channel(false);
    let scheduler = config.scheduler.then(|| {
        tokio::spawn(scheduler::run(
            pool.clone(),
            schema.clone(),
            config.tick_every,
            state.metrics.clone(),
            state.health.clone(),
            ticks_stopped,
        ))
    });
    let realtime = tokio::spawn(realtime::run(
        pool.clone(),
        schema.clone(),
        config.realtime_flush,
        state.pending.clone(),
        state.metrics.clone(),
        realtime_stopped,
    ));
    let (stop_delivery, delivery_stopped) = watch::channel(false);
    let _ = state.metrics.email_provider.set(config.mail.provider_name);
    let delivery = if config.mail.worker {
        match mail::deliver::Worker::new(
            pool.clone(),
            schema.as_str(),
            state.mail.clone(),
            state.metrics.clone(),
        ) {
            Ok(worker) => Some(tokio::spawn(worker.run(delivery_stopped))),
            Err(e) => return Err(Error::Config(format!("email provider: {e}"))),
        }
    } else {
        None
    };
    let addr = listener.local_addr()?;
    tracing::info!(%addr, tick_every = ?config.tick_every, realtime_flush = ?config.realtime_flush, "listening");
    let app = http::router(state);
    let limits = server::ServerLimits {
        header_timeout: config.header_timeout,
        grace: config.shutdown_grace,
    };
    let signalled = Arc::new(OnceLock::new());
    let served = server::serve(listener, app, limits, {
        let signalled = signalled.clone();
        async move {
            shutdown.await;
            let _ = signalled.set(Instant::now());
            // No new tick starts from here on; a running one finishes within the grace.
            let _ = stop_ticks.send(true);
        }
    })
    .await;
    // What is left of the grace period bounds the running tick, the last real-time pass and
    // the pool's close; past it they are dropped (their transactions roll back).
    let deadline = signalled.get().copied().unwrap_or_else(Instant::now) + config.shutdown_grace;
    let left = || deadline.saturating_duration_since(Instant::now());
    let _ = stop_realtime.send(true);
    let _ = stop_delivery.send(true);
    if let Some(handle) = delivery {
        finish_within(handle, left(), "email delivery").await;
    }
    if let Some(handle) = scheduler {
        finish_within(handle, left(), "the running tick").await;
    }
    finish_within(realtime, left(), "the last real-time pass").await;
    if tokio::time::timeout(left().max(Duration::from_millis(100)), pool.close())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: database connections still busy were dropped");
    }
    tracing::info!("stopped");
    served.map_err(Error::Io)
}

/// Awaits a background task for at most `limit`, else aborts it.
async fn finish_within(handle: tokio::task::JoinHandle<()>, limit: Duration, what: &str) {
    let abort = handle.abort_handle();
    if tokio::time::timeout(limit, handle).await.is_err() {
        tracing::warn!("grace period over: {what} was stopped (its transaction rolls back)");
        abort.abort();
    }
}
