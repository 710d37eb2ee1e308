//! The Segment HTTP tracking API (`/v1/track`, `/v1/identify`, `/v1/alias`, `/v1/page`,
//! `/v1/screen`, `/v1/group`, `/v1/batch`, `/v1/import`), so a stock Segment or RudderStack
//! SDK pointed at the daemon works unchanged (basic auth with the key as user name). The
//! body is read as JSON whatever its `Content-Type` (gzip or deflate `Content-Encoding`
//! undone), and error bodies also carry Segment's top-level `code` and `message`, which
//! SDKs read to tell a permanent 4xx from a retryable failure.

use super::auth::{Auth, Events};
use super::error::{ApiError, ErrorCode, ErrorObject};
use super::events::accept;
use super::extract::AnyJsonBody;
use super::AppState;
use crate::ingest;
use crate::keys::Caller;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use std::time::Instant;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/batch", post(batch))
        .route("/v1/import", post(import))
        .route("/v1/track", post(track))
        .route("/v1/identify", post(identify))
        .route("/v1/alias", post(alias))
        .route("/v1/page", post(page))
        .route("/v1/screen", post(screen))
        .route("/v1/group", post(group))
        .layer(axum::middleware::map_response(segment_error_shape))
}

/// Copies `error.code` and `error.message` to the top level of an error body.
async fn segment_error_shape(response: Response) -> Response {
    if response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let shaped = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut object)) => {
            if let Some(Value::Object(error)) = object.get("error").cloned() {
                for field in ["code", "message"] {
                    if let Some(v) = error.get(field) {
                        object.insert(field.to_owned(), v.clone());
                    }
                }
            }
            serde_json::to_vec(&object).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(shaped))
}

/// What a Segment-spec route answers.
#[derive(Serialize, ToSchema)]
pub(super) struct SegmentOutcome {
    /// Always true (Segment SDKs read it).
    success: bool,
    /// Calls accepted (including duplicates and ignored `group` calls).
    accepted: usize,
    /// Events stored.
    stored: u64,
    /// Events not stored because their `messageId` was already known.
    duplicates: u64,
}

/// An error on a Segment-spec route: the one error shape plus Segment's top-level `code`
/// and `message`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes what `segment_error_shape` sends
pub(super) struct SegmentErrorBody {
    /// What went wrong.
    error: ErrorObject,
    /// `error.code`, for Segment and RudderStack SDKs.
    code: ErrorCode,
    /// `error.message`.
    message: String,
}

/// A Segment-spec call. Unknown fields are ignored.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the body read by `ingest::parse_segment`
pub(super) struct SegmentCall {
    /// `track`, `identify`, `alias`, `page`, `screen` or `group` (in a batch).
    r#type: Option<String>,
    /// The user id (a string or a number).
    #[schema(value_type = Option<String>)]
    user_id: Option<Value>,
    /// The anonymous id.
    #[schema(value_type = Option<String>)]
    anonymous_id: Option<Value>,
    /// `track`: the event name.
    event: Option<String>,
    /// `page`/`screen`: the page name, kept as `properties.name`.
    name: Option<String>,
    /// The event's properties.
    #[schema(value_type = Option<Object>)]
    properties: Option<Value>,
    /// `identify`: the contact's traits (a shallow patch; `email` sets its email).
    #[schema(value_type = Option<Object>)]
    traits: Option<Value>,
    /// `alias`: the anonymous id merged into `userId`.
    previous_id: Option<String>,
    /// `context.traits` patch the contact too.
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    /// When it happened (RFC 3339), corrected by `sentAt`.
    timestamp: Option<String>,
    /// Used when `timestamp` is absent.
    original_timestamp: Option<String>,
    /// When the SDK sent it: the difference to the receive time corrects its clock.
    sent_at: Option<String>,
    /// The idempotency key.
    message_id: Option<String>,
}

/// `/v1/batch`: up to 1,000 calls, each with its `type`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // describes the body read by `ingest::parse_segment`
pub(super) struct SegmentBatch {
    /// The calls.
    batch: Vec<SegmentCall>,
    /// When the SDK sent the batch.
    sent_at: Option<String>,
    /// A context for every call without its own.
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
}

async fn call(
    state: AppState,
    caller: Caller,
    body: Value,
    kind: Option<&'static str>,
) -> Result<Json<SegmentOutcome>, ApiError> {
    let started = Instant::now();
    let received = Utc::now();
    let parsed = ingest::parse_segment(&body, kind, received);
    let outcome = accept(&state, &caller, parsed, received, started).await?;
    Ok(Json(SegmentOutcome {
        success: true,
        accepted: outcome.accepted,
        stored: outcome.stored,
        duplicates: outcome.duplicates,
    }))
}

/// Generates the handler of one Segment-spec route with its OpenAPI description.
macro_rules! segment_route {
    ($name:ident, $path:literal, $kind:expr, $body:ty, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "segment", description = $doc,
            request_body = $body,
            responses((status = 200, description = "Stored", body = SegmentOutcome),
                (status = 400, description = "`invalid_request`, `malformed_json`", body = SegmentErrorBody),
                (status = 401, description = "`unauthorized`", body = SegmentErrorBody)),
            security(("bearer" = []), ("basic" = [])))]
        pub(super) async fn $name(
            State(state): State<AppState>,
            auth: Auth<Events>,
            AnyJsonBody(body): AnyJsonBody,
        ) -> Result<Json<SegmentOutcome>, ApiError> {
            call(state, auth.0, body, $kind).await
        }
    };
}

segment_route!(
    batch,
    "/v1/batch",
    None,
    SegmentBatch,
    "Up to 1,000 Segment calls."
);
segment_route!(
    import,
    "/v1/import",
    None,
    SegmentBatch,
    "The same as `/v1/batch`."
);
segment_route!(
    track,
    "/v1/track",
    Some("track"),
    SegmentCall,
    "A `track` call: one event."
);
segment_route!(
    identify,
    "/v1/identify",
    Some("identify"),
    SegmentCall,
    "An `identify` call: traits patch the contact; with both ids, the anonymous contact is merged."
);
segment_route!(
    alias,
    "/v1/alias",
    Some("alias"),
    SegmentCall,
    "An `alias` call: `previousId`'s contact is merged into `userId`'s."
);
segment_route!(
    page,
    "/v1/page",
    Some("page"),
    SegmentCall,
    "A `page` call: a `$pageview` event."
);
segment_route!(
    screen,
    "/v1/screen",
    Some("screen"),
    SegmentCall,
    "A `screen` call: a `$screen` event."
);
segment_route!(
    group,
    "/v1/group",
    Some("group"),
    SegmentCall,
    "A `group` call: accepted and ignored."
);
