//! Extractors whose rejections are [`ApiError`]s: a JSON body, path and query parameters.

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
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let json_like =
            mime == "application/json" || mime.ends_with("+json") || mime == "text/plain";
        if !json_like {
            let got = if mime.is_empty() {
                "none".to_owned()
            } else {
                format!("`{mime}`")
            };
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!("expected `Content-Type: application/json`, got {got}"),
            ));
        }
        let deadline = req
            .extensions()
            .get::<BodyTimeout>()
            .map_or(Duration::MAX, |t| t.0);
        let read = tokio::time::timeout(deadline, Bytes::from_request(req, state))
            .await
            .map_err(|_| body_timed_out(deadline))?;
        let bytes = read.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the request body is larger than the limit (`[api] max_body_bytes`); nothing was stored",
                )
            } else {
                ApiError::new(ErrorCode::UnreadableBody, format!("could not read the request body: {rejection}"),
                )
            }
        })?;
        let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            )
            .with_details(vec![
                json!({"line": e.line(), "column": e.column(), "message": e.to_string()}),
            ])
        })?;
        // U+0000 anywhere (a value or a key) cannot reach Postgres text or jsonb: refused
        // here, once for every route, naming where it is.
        let nul = crate::ingest::validate::nul_bytes(&body);
        if !nul.is_empty() {
            return Err(ApiError::invalid(&nul));
        }
        Ok(JsonBody(body))
    }
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
