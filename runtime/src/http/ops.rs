//! Operations: `/healthz` (the process answers), `/readyz` (database reachable, schema
//! migrated, scheduler ticking, real-time pass keeping up) and `/metrics` (Prometheus
//! text). No key needed.

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::AppState;
use crate::scheduler::RoundResult;
use crate::{migrate, queries};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// `/healthz`'s answer.
#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `/readyz`'s answer when ready.
#[derive(Serialize, ToSchema)]
pub(super) struct Ready {
    /// Always `ready`.
    status: &'static str,
    /// When the last tick (by any daemon) ran; null without a scheduler or before the first.
    last_tick_at: Option<DateTime<Utc>>,
}

/// The database answers, the schema is migrated, ticks run and the real-time pass keeps up.
///
/// Ticks are checked with a scheduler; the real-time pass keeps up while the oldest change
/// waiting for it is younger than `realtime_max_backlog_age_ms`.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Ready),
        (status = 503, description = "`not_ready`: `details` lists the failed checks", body = ErrorBody)))]
pub(super) async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let mut problems: Vec<Value> = Vec::new();
    let database = tokio::time::timeout(Duration::from_secs(2), async {
        let mut conn = state.pool.acquire().await?;
        migrate::base_version(&mut conn).await
    })
    .await;
    let supported = migrate::supported_version();
    match database {
        Err(_) => problems.push(json!({"check": "database", "message": "no answer within 2 s"})),
        Ok(Err(e)) => {
            problems.push(json!({"check": "database", "message": format!("unreachable: {e}")}));
        }
        Ok(Ok(v)) if v < supported => problems.push(json!({"check": "migrated",
            "message": format!("base schema at version {v}, expected {supported}")})),
        Ok(Ok(_)) => {}
    }
    let mut last_tick = None;
    if state.config.scheduler && problems.is_empty() {
        let every = state.config.tick_every;
        // Allow three intervals (and at least a minute) between ticks by any daemon.
        let allowed = (every * 3).max(Duration::from_secs(60));
        let health = state.health.lock().map(|h| h.clone()).unwrap_or_default();
        if let Some((_, RoundResult::Failed)) = health.last_round {
            problems.push(json!({"check": "scheduler",
                "message": format!("the last tick failed: {}", health.last_error.unwrap_or_default())}));
        }
        last_tick = queries::last_tick_at(&state.pool).await.ok().flatten();
        let stale = match last_tick {
            Some(t) => (Utc::now() - t).to_std().unwrap_or_default() > allowed,
            None => state.started.elapsed() > allowed,
        };
        if stale {
            problems.push(json!({"check": "scheduler",
                "message": format!("no tick in the last {} s", allowed.as_secs())}));
        }
    }
    let backlog = state.pending.backlog();
    if let (Some(bound), Some(age)) = (state.config.realtime_max_backlog_age, backlog.oldest_age) {
        if age > bound {
            problems.push(json!({"check": "realtime",
                "message": format!(
                    "the real-time pass is behind: the oldest change of {} waiting contacts is {:.1} s old (bound {:.1} s)",
                    backlog.contacts, age.as_secs_f64(), bound.as_secs_f64())}));
        }
    }
    if problems.is_empty() {
        Ok(Json(Ready {
            status: "ready",
            last_tick_at: last_tick,
        }))
    } else {
        Err(ApiError::new(ErrorCode::NotReady, "not ready").with_details(problems))
    }
}

/// The journey and message gauges, read at scrape time; a failed read leaves its series
/// empty (the scrape still answers).
async fn journey_gauges(state: &AppState) -> crate::metrics::JourneyGauges {
    let pool = &state.pool;
    crate::metrics::JourneyGauges {
        runs: queries::journeys::run_counts(pool)
            .await
            .unwrap_or_default(),
        skipped: queries::journeys::skip_counts(pool)
            .await
            .unwrap_or_default(),
        messages: queries::messages::status_counts(pool)
            .await
            .unwrap_or_default(),
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "text/plain")))]
pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let members = queries::member_counts(&state.pool)
        .await
        .unwrap_or_default();
    let mut text = state.metrics.render(&members, &state.pending.backlog());
    text.push_str(&journey_gauges(&state).await.render());
    text.push_str(&format!(
        "# HELP hogsend_realtime_dropped_total Touched contacts left to the next tick because the real-time queue was full.\n# TYPE hogsend_realtime_dropped_total counter\nhogsend_realtime_dropped_total {}\n",
        state.pending.dropped.load(std::sync::atomic::Ordering::Relaxed)
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
