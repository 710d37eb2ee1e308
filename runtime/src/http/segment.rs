//! The Segment HTTP tracking API (`/v1/track`, `/v1/identify`, `/v1/alias`, `/v1/page`,
//! `/v1/screen`, `/v1/group`, `/v1/batch`, `/v1/import`), so a stock Segment or RudderStack
//! SDK pointed at the daemon works unchanged (basic auth with the key as user name).

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
    let mut router = Router::new()
        .route("/v1/batch", post(batch))
        .route("/v1/import", post(batch));
    for kind in ["track", "identify", "alias", "page", "screen", "group"] {
        router = router.route(
            &format!("/v1/{kind}"),
            post(
                move |State(state): State<AppState>, auth: Auth<Ingest>, body: JsonBody| {
                    single(state, auth, body, kind)
                },
            ),
        );
    }
    router
}

async fn single(
    state: AppState,
    _auth: Auth<Ingest>,
    JsonBody(body): JsonBody,
    kind: &'static str,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let received = Utc::now();
    let parsed = ingest::parse_segment(&body, Some(kind), received);
    let outcome = accept(&state, parsed, received, started).await?;
    Ok(Json(json!({"success": true, "accepted": outcome.accepted,
                   "stored": outcome.stored, "duplicates": outcome.duplicates})))
}

async fn batch(
    State(state): State<AppState>,
    _auth: Auth<Ingest>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let received = Utc::now();
    let parsed = ingest::parse_segment(&body, None, received);
    let outcome = accept(&state, parsed, received, started).await?;
    Ok(Json(json!({"success": true, "accepted": outcome.accepted,
                   "stored": outcome.stored, "duplicates": outcome.duplicates})))
}
