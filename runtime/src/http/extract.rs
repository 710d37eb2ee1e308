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
        json_content_type(&req)?;
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(JsonBody)
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
        parse_json(&bytes).map(AnyJsonBody)
    }
}

/// A body of PostHog's capture API: JSON, or gzipped JSON (`?compression=gzip-js`), or a
/// form with the JSON base64-encoded in `data` (`data=<base64>`, itself gzipped when the
/// form or query says `compression=gzip-js`).
pub struct CaptureBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for CaptureBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<CaptureBody, ApiError> {
        let query_gzip = req
            .uri()
            .query()
            .is_some_and(|q| form_value(q.as_bytes(), "compression").as_deref() == Some("gzip-js"));
        let form = mime(&req) == "application/x-www-form-urlencoded";
        let bytes = read_body(req, state).await?;
        let mut bytes = bytes.to_vec();
        if form || bytes.starts_with(b"data=") {
            let gzip =
                query_gzip || form_value(&bytes, "compression").as_deref() == Some("gzip-js");
            let data = form_value(&bytes, "data")
                .ok_or_else(|| unreadable("a form body needs a `data` field"))?;
            bytes = base64_decode(&data)?;
            if gzip {
                bytes = gunzip(&bytes)?;
            }
        } else if query_gzip || bytes.starts_with(&[0x1f, 0x8b]) {
            bytes = gunzip(&bytes)?;
        }
        parse_json(&bytes).map(CaptureBody)
    }
}

fn unreadable(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::UnreadableBody, message)
}

/// The value of `name` in a URL-encoded form or query string.
fn form_value(form: &[u8], name: &str) -> Option<String> {
    form.split(|b| *b == b'&').find_map(|pair| {
        let text = std::str::from_utf8(pair).ok()?;
        let (k, v) = text.split_once('=').unwrap_or((text, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// `+` is a space and `%XX` a byte; an invalid escape is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(text.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard or URL-safe base64, padded or not (PostHog's SDKs differ).
fn base64_decode(text: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    let text = text.trim().trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
        .map_err(|e| unreadable(format!("`data` is not base64: {e}")))
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, ApiError> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| unreadable(format!("the body is not gzip: {e}")))?;
    Ok(out)
}

/// The request's media type, lower-cased, without parameters.
fn mime(req: &Request) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// JSON routes take `application/json`, `+json` or `text/plain`.
fn json_content_type(req: &Request) -> Result<(), ApiError> {
    let mime = mime(req);
    if mime == "application/json" || mime.ends_with("+json") || mime == "text/plain" {
        return Ok(());
    }
    let got = if mime.is_empty() {
        "none".to_owned()
    } else {
        format!("`{mime}`")
    };
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!("expected `Content-Type: application/json`, got {got}"),
    ))
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
            unreadable(format!("could not read the request body: {rejection}"))
        }
    })
}

/// The body as a JSON document, refused when it is not JSON or holds U+0000 anywhere (a
/// value or a key cannot reach Postgres text or jsonb with one): refused here, once for
/// every route, naming where it is.
fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    let body: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {e}"),
        )
        .with_details(vec![
            json!({"line": e.line(), "column": e.column(), "message": e.to_string()}),
        ])
    })?;
    let nul = crate::ingest::validate::nul_bytes(&body);
    if !nul.is_empty() {
        return Err(ApiError::invalid(&nul));
    }
    Ok(body)
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
