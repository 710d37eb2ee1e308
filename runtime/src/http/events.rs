//! `POST /v1/events`: hogsend's own ingest route (with the alias field names of docs/api.md).

use super::auth::{Auth, Events};
use super::error::{ApiError, ErrorBody};
use super::extract::JsonBody;
use super::AppState;
use crate::ingest::{self, validate, FieldError, Outcome, Payload};
use crate::keys::Caller;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::Instant;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/events", post(post_events))
}

/// One event of `POST /v1/events` (the alias names `userId`, `anonymousId`,
/// `name`, `eventProperties`, `idempotencyKey`, `messageId`, `contactProperties` are
/// accepted too; unknown fields are refused).
#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)] // describes the body read by `ingest::parse_events`
pub(super) struct EventIn {
    /// The contact's user id (1 to 255 characters); this or `anonymous_id` is required.
    user_id: Option<String>,
    /// The anonymous id (1 to 255 characters).
    anonymous_id: Option<String>,
    /// The event name (1 to 200 characters, not starting with `bucket:` or `hogsend:`).
    event: String,
    /// The event's properties.
    #[schema(value_type = Option<Object>)]
    properties: Option<Value>,
    /// When it happened (RFC 3339; later than now is clamped to now). Default: now.
    #[schema(format = DateTime)]
    timestamp: Option<String>,
    /// The idempotency key: an event whose message id is known is not stored again.
    message_id: Option<String>,
    /// The contact's email (trimmed, lower-cased).
    email: Option<String>,
    /// A shallow patch of the contact's properties; a `null` value removes the key.
    #[schema(value_type = Option<Object>)]
    contact: Option<Value>,
}

/// Up to 1,000 events, written all or none.
#[derive(serde::Deserialize, ToSchema)]
#[allow(dead_code)] // describes the body read by `ingest::parse_events`
pub(super) struct EventBatch {
    /// 1 to 1,000 events.
    events: Vec<EventIn>,
}

/// The body of `POST /v1/events`: one event or a batch.
#[derive(serde::Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes the body read by `ingest::parse_events`
pub(super) enum EventsBody {
    /// One event.
    One(Box<EventIn>),
    /// A batch.
    Batch(EventBatch),
}

/// Stores events (all or none) and updates their contacts.
#[utoipa::path(post, path = "/v1/events", tag = "ingest",
    params(("Idempotency-Key" = Option<String>, Header,
        description = "The message id of a single event; `<key>:<index>` of a batch item without its own")),
    request_body = EventsBody,
    responses((status = 202, description = "Stored (replays counted as duplicates)", body = Outcome),
        (status = 400, description = "`invalid_request`, `malformed_json`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn post_events(
    State(state): State<AppState>,
    auth: Auth<Events>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Outcome>), ApiError> {
    let started = Instant::now();
    let received = Utc::now();
    let idempotency =
        idempotency_key(headers.get("idempotency-key").and_then(|v| v.to_str().ok()))?;
    let parsed = ingest::parse_events(&body, idempotency, received);
    let outcome = accept(&state, &auth.0, parsed, received, started).await?;
    Ok((StatusCode::ACCEPTED, Json(outcome)))
}

/// The `Idempotency-Key` header's value: trimmed, absent when empty, refused (400) when it
/// could not be a message id.
pub fn idempotency_key(header: Option<&str>) -> Result<Option<&str>, ApiError> {
    let key = header.map(str::trim).filter(|v| !v.is_empty());
    if let Some(problem) = key.and_then(|k| validate::parameter(k, true)) {
        return Err(ApiError::invalid(&[FieldError {
            index: None,
            field: "Idempotency-Key".to_owned(),
            message: problem,
        }]));
    }
    Ok(key)
}

/// The end of every ingest route: refuses an invalid payload whole, restricts what a
/// publishable key's request may change ([`Payload::restrict_to_publishable`]), writes it
/// ([`ingest::write`]) and queues its touched contacts for the real-time pass (the
/// **queue** step), counting all of it in the metrics.
pub async fn accept(
    state: &AppState,
    caller: &Caller,
    parsed: Result<Payload, Vec<FieldError>>,
    received: DateTime<Utc>,
    started: Instant,
) -> Result<Outcome, ApiError> {
    let m = &state.metrics;
    let mut payload = parsed.map_err(|problems| {
        m.ingest_rejected.fetch_add(1, Ordering::Relaxed);
        ApiError::invalid(&problems)
    })?;
    if caller.publishable {
        payload.restrict_to_publishable();
    }
    let outcome = ingest::write(&state.pool, &payload, received).await?;
    state.pending.touch(outcome.keys.iter().cloned());
    m.ingest_requests.fetch_add(1, Ordering::Relaxed);
    m.events_ingested
        .fetch_add(outcome.stored, Ordering::Relaxed);
    m.events_duplicate
        .fetch_add(outcome.duplicates, Ordering::Relaxed);
    m.ingest_latency.observe(started.elapsed());
    Ok(outcome)
}
