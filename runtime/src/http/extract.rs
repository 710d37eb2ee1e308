//! Extractors whose rejections are [`ApiError`]s: a JSON body, path and query parameters.

use super::body;
use super::error::{ApiError, ErrorCode};
use super::timeouts::{body_timed_out, BodyTimeout};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;

/// A JSON document body: `Content-Type: application/json` (or `+json`, or `text/plain` as
/// browsers' beacons send), at most the configured size, parsed but not yet validated.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<JsonBody, ApiError> {
        let content_type = content_type(&req);
        let bytes = read_body(req, state).await?;
        body::json(content_type.as_deref(), &bytes).map(JsonBody)
    }
}

/// A newline-delimited JSON body (`application/x-ndjson`), at most the configured size, as
/// bytes: each line is parsed by the route.
pub struct NdjsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for NdjsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<NdjsonBody, ApiError> {
        body::ndjson_content_type(content_type(&req).as_deref())?;
        read_body(req, state).await.map(NdjsonBody)
    }
}

/// A JSON body whatever its `Content-Type`, for the Segment-spec routes: SDKs send JSON
/// labelled `application/x-www-form-urlencoded` (rudder-sdk-node's HTTP client) or
/// nothing at all. `Content-Encoding: gzip`/`deflate` is undone by the router's layer.
pub struct AnyJsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for AnyJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<AnyJsonBody, ApiError> {
        let bytes = read_body(req, state).await?;
        body::any_json(&bytes).map(AnyJsonBody)
    }
}

/// A body of PostHog's capture API: JSON, or gzipped JSON (`?compression=gzip-js`), or a
/// form with the JSON base64-encoded in `data` (`data=<base64>`, itself gzipped when the
/// form or query says `compression=gzip-js`).
pub struct CaptureBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for CaptureBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<CaptureBody, ApiError> {
        let content_type = content_type(&req);
        let query = req.uri().query().map(str::to_owned);
        let bytes = read_body(req, state).await?;
        body::capture(content_type.as_deref(), query.as_deref(), &bytes).map(CaptureBody)
    }
}

/// The body's bytes as sent (webhooks whose signature covers the exact bytes), at most
/// `[api] max_body_bytes`, within the body timeout.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<RawBody, ApiError> {
        read_body(req, state).await.map(RawBody)
    }
}

/// The request's `Content-Type` header, when it is readable text.
fn content_type(req: &Request) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The body's bytes: at most `[api] max_body_bytes`, within the body timeout.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let deadline = req
        .extensions()
        .get::<BodyTimeout>()
        .map_or(Duration::MAX, |t| t.0);
    let read = tokio::time::timeout(deadline, Bytes::from_request(req, state))
        .await
        .map_err(|_| body_timed_out(deadline))?;
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the request body is larger than the limit (`[api] max_body_bytes`); nothing was stored",
            )
        } else {
            ApiError::new(
                ErrorCode::UnreadableBody,
                format!("could not read the request body: {rejection}"),
            )
        }
    })
}

/// Path parameters.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiPath<T>, ApiError> {
        // Every path parameter names an id (a contact key, a bucket id): no U+0000, and not
        // longer than an id may be.
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            for (name, value) in &raw {
                if let Some(problem) = crate::ingest::validate::parameter(value, true) {
                    return Err(ApiError::new(
                        ErrorCode::InvalidPath,
                        format!("invalid path segment `{name}`: {problem}"),
                    )
                    .with_details(vec![json!({"field": name, "message": problem})]));
                }
            }
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))
    }
}

/// Query parameters.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery<T>, ApiError> {
        if let Ok(Query(pairs)) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri) {
            for (name, value) in &pairs {
                if let Some(problem) = crate::ingest::validate::parameter(value, false) {
                    return Err(ApiError::bad_parameter(name, problem));
                }
            }
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::new(ErrorCode::InvalidParameter, e.body_text()))
    }
}
