//! Request bodies as the ingest routes read them: pure functions of the request's
//! `Content-Type`, query string and bytes. The extractors of `extract.rs` call them after
//! reading the body (`Content-Encoding` is undone before, by the router's layer), and so do
//! the fuzz targets, through [`super::ingest_request`].

use super::error::{ApiError, ErrorCode};
use serde_json::{json, Value};

/// `JsonBody`: `Content-Type: application/json` (or `+json`, or `text/plain` as browsers'
/// beacons send), then [`any_json`].
pub fn json(content_type: Option<&str>, bytes: &[u8]) -> Result<Value, ApiError> {
    json_content_type(content_type)?;
    any_json(bytes)
}

/// `AnyJsonBody` (the Segment routes): the body as a JSON document whatever its label,
/// refused when it is not JSON or holds U+0000 anywhere (a value or a key cannot reach
/// Postgres text or jsonb with one), naming where.
pub fn any_json(bytes: &[u8]) -> Result<Value, ApiError> {
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

/// `CaptureBody` (PostHog's capture API): JSON, or gzipped JSON (`?compression=gzip-js`, or
/// a body starting with the gzip magic bytes), or a form with the JSON base64-encoded in
/// `data` (`data=<base64>`, itself gzipped when the form or query says
/// `compression=gzip-js`).
pub fn capture(
    content_type: Option<&str>,
    query: Option<&str>,
    bytes: &[u8],
) -> Result<Value, ApiError> {
    let query_gzip = query
        .is_some_and(|q| form_value(q.as_bytes(), "compression").as_deref() == Some("gzip-js"));
    let form = mime(content_type) == "application/x-www-form-urlencoded";
    let mut bytes = bytes.to_vec();
    if form || bytes.starts_with(b"data=") {
        let gzip = query_gzip || form_value(&bytes, "compression").as_deref() == Some("gzip-js");
        let data = form_value(&bytes, "data")
            .ok_or_else(|| unreadable("a form body needs a `data` field"))?;
        bytes = base64_decode(&data)?;
        if gzip {
            bytes = gunzip(&bytes)?;
        }
    } else if query_gzip || bytes.starts_with(&[0x1f, 0x8b]) {
        bytes = gunzip(&bytes)?;
    }
    any_json(&bytes)
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

/// `+` is a space and `%XX` (two hex digits) a byte; anything else is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 2;
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

/// A media type, lower-cased, without parameters.
/// `NdjsonBody` (`POST /v1/contacts/import`): newline-delimited JSON, labelled
/// `application/x-ndjson`, `application/jsonl`, `application/json` or `text/plain`.
pub fn ndjson_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let mime = mime(content_type);
    if matches!(
        mime.as_str(),
        "application/x-ndjson" | "application/jsonl" | "application/json" | "text/plain"
    ) {
        return Ok(());
    }
    let got = if mime.is_empty() {
        "none".to_owned()
    } else {
        format!("`{mime}`")
    };
    Err(ApiError::new(
        ErrorCode::UnsupportedMediaType,
        format!("expected `Content-Type: application/x-ndjson`, got {got}"),
    ))
}

fn mime(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .to_ascii_lowercase()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// JSON routes take `application/json`, `+json` or `text/plain`.
fn json_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let mime = mime(content_type);
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
