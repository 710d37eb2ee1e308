//! `POST /v1/webhooks/email/{provider}`: delivery, bounce and complaint events from the
//! `http` provider (Resend's shape), signed Svix-style (docs/api.md, "Provider webhooks").
//!
//! No API key: the signature is the authority (`mail::webhook_signature`; 401
//! `invalid_signature` otherwise, and for a timestamp more than 5 minutes away). An event
//! names its message by the provider's id (`data.email_id` = `messages.provider_id`), and in
//! one transaction:
//!
//! - `email.delivered` sets `delivered_at` (the first report wins);
//! - `email.bounced` sets `bounced_at`, `bounce_type` (`hard` for Resend's `Permanent`,
//!   else `soft`), `bounce_reason` and status `bounced`; a hard bounce suppresses the address
//!   (`suppressions`, reason `bounce`), a soft one does not;
//! - `email.complained` sets `complained_at` and status `complained`, and suppresses the
//!   address (reason `complaint`).
//!
//! Each also records the event `email.delivered` / `email.bounced` / `email.complained` for
//! the contact (journeys and buckets can use it), with the webhook's `svix-id` as its message
//! id: a webhook delivered twice changes nothing the second time. Status never goes
//! backwards (`sent` → `bounced` → `complained`), and an existing suppression keeps its
//! reason. Other event types, and events for messages this installation did not send, are
//! answered 200 and ignored, so the provider does not retry them for ever.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

use super::body;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiPath, RawBody};
use super::AppState;
use crate::mail::webhook_signature::{verify, SignatureError};

/// The providers whose webhooks are understood (both names mean Resend's shape).
const PROVIDERS: [&str; 2] = ["resend", "http"];

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/webhooks/email/{provider}",
        post(email_provider_webhook),
    )
}

/// What a webhook did.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOutcome {
    /// The event's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether hogsend acts on this type (`email.delivered`, `email.bounced`,
    /// `email.complained`).
    pub handled: bool,
    /// The message it concerns (null: no message of this installation has that provider id).
    pub message_id: Option<i64>,
    /// `bounce` or `complaint` when the address was suppressed (now or before).
    pub suppressed: Option<String>,
}

/// A provider's webhook (Resend's event shape, Svix signature).
#[utoipa::path(post, path = "/v1/webhooks/email/{provider}", tag = "email",
    params(("provider" = String, Path, description = "`resend` (or `http`)")),
    request_body(content = Object, description = "A Resend webhook event: \
        `{\"type\": \"email.bounced\", \"created_at\", \"data\": {\"email_id\", \"to\", \
        \"bounce\": {\"type\": \"Permanent\", \"message\"}}}`"),
    responses((status = 200, description = "Received (handled or ignored)", body = WebhookOutcome),
        (status = 400, description = "`malformed_json`, `invalid_request`", body = ErrorBody),
        (status = 401, description = "`invalid_signature`", body = ErrorBody),
        (status = 404, description = "`unknown_provider`", body = ErrorBody)))]
pub(super) async fn email_provider_webhook(
    State(state): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    headers: HeaderMap,
    RawBody(bytes): RawBody,
) -> Result<Json<WebhookOutcome>, ApiError> {
    if !PROVIDERS.contains(&provider.as_str()) {
        return Err(ApiError::new(
            ErrorCode::UnknownProvider,
            format!("no webhooks for provider `{provider}` (expected `resend`)"),
        ));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let svix_id = header("svix-id");
    verify(
        &state.mail.settings.webhook_secrets,
        svix_id,
        header("svix-timestamp"),
        header("svix-signature"),
        &bytes,
        Utc::now().timestamp(),
    )
    .map_err(|e| {
        let message = match e {
            SignatureError::NoSecret => format!(
                "{e}: set the variable `[email] webhook_secret_env` names \
                 (HOGSEND_EMAIL_WEBHOOK_SECRET by default) to the endpoint's `whsec_…` secret"
            ),
            other => other.to_string(),
        };
        ApiError::new(ErrorCode::InvalidSignature, message)
    })?;
    let event = body::any_json(&bytes)?;
    let Some(kind) = event.get("type").and_then(Value::as_str) else {
        return Err(ApiError::invalid(&[crate::ingest::FieldError {
            index: None,
            field: "type".into(),
            message: "expected the event type, e.g. `email.bounced`".into(),
        }]));
    };
    let mut outcome = WebhookOutcome {
        kind: kind.to_string(),
        handled: matches!(
            kind,
            "email.delivered" | "email.bounced" | "email.complained"
        ),
        message_id: None,
        suppressed: None,
    };
    let provider_id = event
        .pointer("/data/email_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty());
    let (true, Some(provider_id)) = (outcome.handled, provider_id) else {
        return Ok(Json(outcome));
    };
    let at = event
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .filter(|t| *t <= Utc::now())
        .unwrap_or_else(Utc::now);
    let bounce_type = match event.pointer("/data/bounce/type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("permanent") || t.eq_ignore_ascii_case("hard") => "hard",
        _ => "soft",
    };
    let bounce_reason = event
        .pointer("/data/bounce/message")
        .and_then(Value::as_str)
        .map(|m| m.chars().take(1000).collect::<String>());
    let dedup_key = format!("webhook:{provider}:{}", svix_id.unwrap_or_default());
    let recorded = record(
        &state,
        kind,
        provider_id,
        at,
        bounce_type,
        bounce_reason.as_deref(),
        &dedup_key,
    )
    .await
    .map_err(crate::Error::from)?;
    if let Some((id, user_key, suppressed, fresh)) = recorded {
        outcome.message_id = Some(id);
        outcome.suppressed = suppressed;
        if fresh {
            let metrics = &state.metrics;
            match (kind, bounce_type) {
                ("email.delivered", _) => &metrics.email_delivered,
                ("email.bounced", "hard") => &metrics.email_bounced_hard,
                ("email.bounced", _) => &metrics.email_bounced_soft,
                _ => &metrics.email_complained,
            }
            .fetch_add(1, Ordering::Relaxed);
            state.pending.touch([user_key]);
        }
    }
    Ok(Json(outcome))
}

/// Applies one event in a transaction: (message id, contact, suppression reason, whether
/// this webhook was new), or `None` when no message has the provider id.
async fn record(
    state: &AppState,
    kind: &str,
    provider_id: &str,
    at: DateTime<Utc>,
    bounce_type: &str,
    bounce_reason: Option<&str>,
    dedup_key: &str,
) -> Result<Option<(i64, String, Option<String>, bool)>, sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    let found: Option<(i64, String, Option<String>, String)> = sqlx::query_as(
        "select id, user_key, to_email, template from messages
          where provider_id = $1 order by id limit 1 for update",
    )
    .bind(provider_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, user_key, to_email, template)) = found else {
        return Ok(None);
    };
    let properties = json!({
        "message_id": id,
        "template": template,
        "provider_id": provider_id,
        "bounce_type": (kind == "email.bounced").then_some(bounce_type),
    });
    let fresh = sqlx::query(
        "insert into events (user_key, event, properties, occurred_at, message_id)
         values ($1, $2, jsonb_strip_nulls($3), $4, $5)
         on conflict (message_id) where message_id is not null do nothing",
    )
    .bind(&user_key)
    .bind(kind)
    .bind(&properties)
    .bind(at)
    .bind(dedup_key)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let suppress = match kind {
        "email.delivered" => {
            sqlx::query(
                "update messages set delivered_at = coalesce(delivered_at, $2), updated_at = now()
                  where id = $1",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            None
        }
        "email.bounced" => {
            sqlx::query(
                "update messages
                    set status = case when status = 'sent' then 'bounced' else status end,
                        bounced_at = coalesce(bounced_at, $2),
                        bounce_type = case when bounce_type = 'hard' then 'hard' else $3 end,
                        bounce_reason = coalesce($4, bounce_reason),
                        updated_at = now()
                  where id = $1",
            )
            .bind(id)
            .bind(at)
            .bind(bounce_type)
            .bind(bounce_reason)
            .execute(&mut *tx)
            .await?;
            (bounce_type == "hard").then_some("bounce")
        }
        _ => {
            sqlx::query(
                "update messages
                    set status = case when status in ('sent', 'bounced') then 'complained'
                                      else status end,
                        complained_at = coalesce(complained_at, $2),
                        updated_at = now()
                  where id = $1",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            Some("complaint")
        }
    };
    let mut suppressed = None;
    if let (Some(reason), Some(email)) = (suppress, to_email.as_deref()) {
        suppressed = sqlx::query_scalar(
            "with new as (
               insert into suppressions (email, reason)
               select lower(btrim($1)), $2 where btrim($1) <> ''
               on conflict (email) do nothing
               returning reason)
             select reason from new
             union all
             select reason from suppressions where email = lower(btrim($1))
             limit 1",
        )
        .bind(email)
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Some((id, user_key, suppressed, fresh)))
}
