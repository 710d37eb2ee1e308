//! `POST /v1/webhooks/posthog`: PostHog's webhook destination (flat or nested payloads,
//! one event or an array).

use super::auth::{Auth, Ingest};
use super::error::ApiError;
use super::events::accept;
use super::extract::JsonBody;
use super::AppState;
use crate::ingest;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use std::time::Instant;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/webhooks/posthog", post(webhook))
}

async fn webhook(
    State(state): State<AppState>,
    _auth: Auth<Ingest>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let received = Utc::now();
    let parsed = ingest::parse_posthog(&body, received);
    let outcome = accept(&state, parsed, received, started).await?;
    Ok(Json(json!(outcome)))
}
