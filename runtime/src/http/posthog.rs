//! PostHog: `POST /v1/webhooks/posthog` (its webhook destination: flat or nested payloads,
//! one event or an array) and its capture API (`/batch/`, `/capture/`, `/e/`, `/i/v0/e/`,
//! `/i/v1/analytics/events`), so PostHog's SDKs pointed at the daemon work unchanged: the
//! project API key may travel in the body (`api_key`, `token`) instead of a Bearer header.

use super::auth::{authorize, header_key, Auth, ClientIp, Events, Ingest};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::events::accept;
use super::extract::{CaptureBody, JsonBody};
use super::AppState;
use crate::ingest::{self, Outcome};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use std::time::Instant;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    let mut router = Router::new().route("/v1/webhooks/posthog", post(webhook));
    for path in CAPTURE_PATHS {
        router = router.route(path, post(capture));
        // With and without the trailing slash, as SDKs differ.
        let other = match path.strip_suffix('/') {
            Some(bare) => bare.to_owned(),
            None => format!("{path}/"),
        };
        router = router.route(&other, post(capture));
    }
    router
}

/// The capture API's paths.
pub const CAPTURE_PATHS: [&str; 5] = [
    "/batch/",
    "/capture/",
    "/e/",
    "/i/v0/e/",
    "/i/v1/analytics/events",
];

/// What the capture API answers (PostHog's SDKs read only the status).
#[derive(Serialize, ToSchema)]
pub(super) struct CaptureOutcome {
    /// Always 1, as PostHog answers.
    status: u8,
    /// Events accepted.
    accepted: usize,
    /// Events stored.
    stored: u64,
    /// Events not stored because their `uuid` was already known.
    duplicates: u64,
}

/// PostHog's capture API: `{"api_key", "batch": [...], "sent_at"}` as the server SDKs send
/// it, an array of events or one event; JSON, gzip (`Content-Encoding: gzip` or
/// `?compression=gzip-js`) or a form with base64 `data`. The key is a Bearer header or
/// `api_key`/`token` in the body; it needs the `ingest` scope (publishable keys welcome).
#[utoipa::path(post, path = "/batch/", tag = "posthog",
    request_body(content = PosthogEvent, description = "A batch, an array or one event"),
    responses((status = 200, description = "Stored", body = CaptureOutcome),
        (status = 400, description = "`invalid_request`, `malformed_json`, `unreadable_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn capture(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    CaptureBody(body): CaptureBody,
) -> Result<Json<CaptureOutcome>, ApiError> {
    let started = Instant::now();
    let received = Utc::now();
    let key = match header_key(&headers)? {
        Some(key) => key,
        None => ingest::capture_key(&body).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "missing API key: send `api_key` in the body or `Authorization: Bearer <key>`",
            )
        })?,
    };
    let caller = authorize::<Events>(&state, &key, client).await?;
    let parsed = ingest::parse_capture(&body, received);
    let outcome = accept(&state, &caller, parsed, received, started).await?;
    Ok(Json(CaptureOutcome {
        status: 1,
        accepted: outcome.accepted,
        stored: outcome.stored,
        duplicates: outcome.duplicates,
    }))
}

/// A PostHog event as its webhook destination sends it (flat), or nested as
/// `{"event": {...}, "person": {...}}`; the body is one or an array of 1 to 1,000.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body read by `ingest::parse_posthog`
pub(super) struct PosthogEvent {
    /// The event name (or, nested, the event object).
    #[schema(value_type = Object)]
    event: Value,
    /// The contact's user id.
    distinct_id: Option<String>,
    /// The message id.
    uuid: Option<String>,
    /// When it happened (RFC 3339).
    timestamp: Option<String>,
    /// The event's properties; `$set` patches the contact, `$anon_distinct_id` on
    /// `$identify` merges the anonymous contact.
    #[schema(value_type = Option<Object>)]
    properties: Option<Value>,
    /// `{"properties": {...}}`: the person's properties patch the contact.
    #[schema(value_type = Option<Object>)]
    person: Option<Value>,
}

/// PostHog's webhook destination.
#[utoipa::path(post, path = "/v1/webhooks/posthog", tag = "ingest",
    request_body = PosthogEvent,
    responses((status = 200, description = "Stored", body = Outcome),
        (status = 400, description = "`invalid_request`, `malformed_json`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn webhook(
    State(state): State<AppState>,
    auth: Auth<Ingest>,
    JsonBody(body): JsonBody,
) -> Result<Json<Outcome>, ApiError> {
    let started = Instant::now();
    let received = Utc::now();
    let parsed = ingest::parse_posthog(&body, received);
    let outcome = accept(&state, &auth.0, parsed, received, started).await?;
    Ok(Json(outcome))
}
