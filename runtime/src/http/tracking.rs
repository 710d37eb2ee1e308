//! Open and click tracking, without a key (docs/api.md#open-and-click-tracking):
//! `GET /o/{token}` answers a 1×1 GIF and `GET /c/{token}` redirects to the link's target;
//! both record the engagement. Tokens: `crate::mail::links` (message id and target signed,
//! so a tampered token is a 404, never an open redirect); tracked HTML: `crate::mail::tracking`.
//!
//! Recording, per hit: the message's `opened_at` / `clicked_at` is set when still empty (a
//! click sets `opened_at` too: the reader saw the message, images blocked or not) — what the
//! language's `opened T` / `clicked T` read, queued for the real-time pass by the messages
//! trigger — then the events `email.opened` (once per message) and `email.clicked` (once
//! per message and link) are written through the normal ingest path, idempotent on their
//! message ids, and the contact is handed to the real-time pass. A failure to record is
//! logged and the reader still gets the image or the redirect.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::extract::ApiPath;
use super::page::PageError;
use super::AppState;
use crate::ingest::{Item, Payload};
use crate::mail::links::LinkKind;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/o/{token}", get(open))
        .route("/c/{token}", get(click))
}

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Headers that keep every hit reaching the daemon (no cache, no proxy cache).
const NO_CACHE: [(header::HeaderName, &str); 3] = [
    (
        header::CACHE_CONTROL,
        "no-store, no-cache, must-revalidate, private, max-age=0",
    ),
    (header::PRAGMA, "no-cache"),
    (header::EXPIRES, "0"),
];

/// What a hit was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engagement {
    Open,
    Click,
}

/// `GET /o/{token}`: the open-tracking pixel; records the message's open.
#[utoipa::path(get, path = "/o/{token}", operation_id = "open_pixel", tag = "pages",
    params(("token" = String, Path, description = "The signed open token of a message's tracking pixel")),
    responses(
        (status = 200, description = "A transparent 1×1 GIF, not cacheable; the message's first open is recorded", content_type = "image/gif"),
        (status = 404, description = "An HTML page: the link is not valid", body = String, content_type = "text/html")))]
pub(super) async fn open(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, PageError> {
    let signer = state.mail.signer(&state.pool).await?;
    let claims = signer
        .verify_tracking(LinkKind::Open, &token)
        .ok_or(PageError::InvalidLink)?;
    if let Err(e) = record(&state, Engagement::Open, claims.message_id, "").await {
        tracing::warn!(message = claims.message_id, error = %e, "recording an open failed");
    }
    Ok((
        StatusCode::OK,
        NO_CACHE,
        [(header::CONTENT_TYPE, "image/gif")],
        PIXEL,
    )
        .into_response())
}

/// `GET /c/{token}`: records the click and redirects to the signed target.
#[utoipa::path(get, path = "/c/{token}", operation_id = "click_redirect", tag = "pages",
    params(("token" = String, Path, description = "The signed click token of a tracked link (message id and target)")),
    responses(
        (status = 302, description = "Redirect to the link's target (`Location`, `Referrer-Policy: no-referrer`, not cacheable); the click is recorded"),
        (status = 404, description = "An HTML page: the link is not valid or its target is not http(s)", body = String, content_type = "text/html")))]
pub(super) async fn click(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, PageError> {
    let signer = state.mail.signer(&state.pool).await?;
    let claims = signer
        .verify_tracking(LinkKind::Click, &token)
        .ok_or(PageError::InvalidLink)?;
    let lower = claims.target.to_ascii_lowercase();
    let location = header::HeaderValue::from_str(&claims.target)
        .ok()
        .filter(|_| lower.starts_with("http://") || lower.starts_with("https://"))
        .ok_or(PageError::InvalidLink)?;
    if let Err(e) = record(&state, Engagement::Click, claims.message_id, &claims.target).await {
        tracing::warn!(message = claims.message_id, error = %e, "recording a click failed");
    }
    Ok((
        StatusCode::FOUND,
        NO_CACHE,
        [
            (header::LOCATION, location),
            (
                header::REFERRER_POLICY,
                header::HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response())
}

/// The message a hit is about, after its instants were set.
#[derive(Debug, sqlx::FromRow)]
struct Engaged {
    user_key: String,
    template: String,
    journey_id: Option<String>,
    campaign_id: Option<String>,
}

/// Records one hit (see the module's comment). A message that no longer exists records
/// nothing.
async fn record(
    state: &AppState,
    what: Engagement,
    message_id: i64,
    target: &str,
) -> Result<(), crate::Error> {
    let now = Utc::now();
    let engaged: Option<Engaged> = sqlx::query_as(
        "update messages
            set opened_at = coalesce(opened_at, $2),
                clicked_at = case when $3 then coalesce(clicked_at, $2) else clicked_at end
          where id = $1
          returning user_key, template, journey_id, campaign_id",
    )
    .bind(message_id)
    .bind(now)
    .bind(what == Engagement::Click)
    .fetch_optional(&state.pool)
    .await?;
    let Some(m) = engaged else {
        return Ok(());
    };
    let mut properties = Map::new();
    properties.insert("message".into(), json!(message_id));
    properties.insert("template".into(), json!(m.template));
    if let Some(j) = &m.journey_id {
        properties.insert("journey".into(), json!(j));
    }
    if let Some(c) = &m.campaign_id {
        properties.insert("campaign".into(), json!(c));
    }
    let event = |name: &str, properties: Map<String, Value>, idempotency: String| Item {
        user_id: Some(m.user_key.clone()),
        event: Some(name.into()),
        properties,
        occurred_at: Some(now),
        message_id: Some(idempotency),
        ..Item::default()
    };
    let mut items = vec![event(
        "email.opened",
        properties.clone(),
        format!("email.opened:{message_id}"),
    )];
    if what == Engagement::Click {
        let mut clicked = properties;
        clicked.insert("url".into(), json!(target));
        let digest = Sha256::digest(target.as_bytes());
        let link: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        items.push(event(
            "email.clicked",
            clicked,
            format!("email.clicked:{message_id}:{link}"),
        ));
    }
    let payload = Payload {
        items,
        ..Payload::default()
    };
    let outcome = crate::ingest::write(&state.pool, &payload, now).await?;
    let mut keys = outcome.keys;
    keys.push(m.user_key);
    state.pending.touch(keys);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pixel_is_a_gif() {
        assert!(PIXEL.starts_with(b"GIF89a"));
        assert_eq!(PIXEL.last(), Some(&0x3b));
    }
}
