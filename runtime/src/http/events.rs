//! `POST /v1/events`: hogsend's own ingest route (and the reference engine's body).

use super::auth::{Auth, Ingest};
use super::error::ApiError;
use super::extract::JsonBody;
use super::AppState;
use crate::ingest::{self, validate, FieldError, Outcome, Payload};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", post(post_events))
}

async fn post_events(
    State(state): State<AppState>,
    _auth: Auth<Ingest>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let started = Instant::now();
    let received = Utc::now();
    let idempotency = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    if let Some(problem) = idempotency.and_then(|k| validate::parameter(k, true)) {
        return Err(ApiError::invalid(&[FieldError {
            index: None,
            field: "Idempotency-Key".to_owned(),
            message: problem,
        }]));
    }
    let parsed = ingest::parse_events(&body, idempotency, received);
    let outcome = accept(&state, parsed, received, started).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(outcome))))
}

/// The end of every ingest route: refuses an invalid payload whole, writes a valid one
/// ([`ingest::write`]) and queues its touched contacts for the real-time pass (the
/// **queue** step), counting all of it in the metrics.
pub async fn accept(
    state: &AppState,
    parsed: Result<Payload, Vec<FieldError>>,
    received: DateTime<Utc>,
    started: Instant,
) -> Result<Outcome, ApiError> {
    let m = &state.metrics;
    let payload = parsed.map_err(|problems| {
        m.ingest_rejected.fetch_add(1, Ordering::Relaxed);
        ApiError::invalid(&problems)
    })?;
    let outcome = ingest::write(&state.pool, &state.config.schema, &payload, received).await?;
    state.pending.touch(outcome.keys.iter().cloned());
    m.ingest_requests.fetch_add(1, Ordering::Relaxed);
    m.events_ingested
        .fetch_add(outcome.stored, Ordering::Relaxed);
    m.events_duplicate
        .fetch_add(outcome.duplicates, Ordering::Relaxed);
    m.ingest_latency.observe(started.elapsed());
    Ok(outcome)
}
