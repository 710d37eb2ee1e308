//! `POST /v1/webhooks/posthog`: PostHog's webhook destination (flat or nested payloads,
//! one event or an array).

use super::auth::{Auth, Ingest};
use super::error::{ApiError, ErrorBody};
use super::events::accept;
use super::extract::JsonBody;
use super::AppState;
use crate::ingest::{self, Outcome};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::Value;
use std::time::Instant;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/webhooks/posthog", post(webhook))
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
    _auth: Auth<Ingest>,
    JsonBody(body): JsonBody,
) -> Result<Json<Outcome>, ApiError> {
    let started = Instant::now();
    let received = Utc::now();
    let parsed = ingest::parse_posthog(&body, received);
    let outcome = accept(&state, parsed, received, started).await?;
    Ok(Json(outcome))
}
