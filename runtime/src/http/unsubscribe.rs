//! The recipient's pages, without a key: `GET /u/{token}` (a confirm page that never
//! unsubscribes by itself, so link scanners are harmless) and `POST /u/{token}` (RFC 8058
//! one-click, and the confirm page's button): unsubscribes the token's contact from the
//! token's list and answers 200. Tokens: `crate::mail::links`.

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::{ApiError, ErrorCode};
use super::extract::ApiPath;
use super::AppState;
use crate::mail::links::{LinkClaims, LinkKind};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/u/{token}", get(confirm).post(unsubscribe))
}

/// The claims of a valid unsubscribe token, else `invalid_link`.
pub(super) async fn claims(
    state: &AppState,
    kind: LinkKind,
    token: &str,
) -> Result<LinkClaims, ApiError> {
    let signer = state
        .mail
        .signer(&state.pool)
        .await
        .map_err(crate::Error::from)?;
    signer
        .verify(kind, token)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidLink, "this link is not valid"))
}

/// Text for HTML.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small, accessible page (no JavaScript, no external resources).
pub(super) fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
         button{{font-size:1rem;padding:.5rem 1rem}}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title)
    );
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(html),
    )
        .into_response()
}

/// The list's display name (its id when it has none or is no longer declared).
async fn list_name(state: &AppState, list: &str) -> Result<String, ApiError> {
    let name: Option<Option<String>> = sqlx::query_scalar("select name from lists where id = $1")
        .bind(list)
        .fetch_optional(&state.pool)
        .await
        .map_err(crate::Error::from)?;
    Ok(name.flatten().unwrap_or_else(|| list.to_string()))
}

/// The confirm page: what the link would do, and a button that does it.
async fn confirm(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, ApiError> {
    let c = claims(&state, LinkKind::Unsubscribe, &token).await?;
    let name = list_name(&state, &c.list).await?;
    Ok(page(
        "Unsubscribe",
        &format!(
            "<p>Stop receiving <strong>{}</strong> emails?</p>\
             <form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>",
            escape(&name)
        ),
    ))
}

/// Unsubscribes (one-click or the confirm page's button). Idempotent.
async fn unsubscribe(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let c = claims(&state, LinkKind::Unsubscribe, &token).await?;
    let one_click = String::from_utf8_lossy(&body).contains("List-Unsubscribe=One-Click");
    set_subscription(
        &state,
        &c.user_key,
        &c.list,
        false,
        if one_click {
            "one_click"
        } else {
            "unsubscribe_link"
        },
    )
    .await?;
    let name = list_name(&state, &c.list).await?;
    Ok(page(
        "Unsubscribed",
        &format!(
            "<p>You will no longer receive <strong>{}</strong> emails.</p>",
            escape(&name)
        ),
    ))
}

/// Records a contact's choice for a list (`*`: every non-transactional list).
pub(crate) async fn set_subscription(
    state: &AppState,
    user_key: &str,
    list: &str,
    subscribed: bool,
    source: &str,
) -> Result<(), ApiError> {
    sqlx::query(
        "insert into subscriptions (user_key, list_id, status, source) values ($1, $2, $3, $4)
         on conflict (user_key, list_id) do update
            set status = excluded.status, source = excluded.source, changed_at = now()
          where subscriptions.status <> excluded.status",
    )
    .bind(user_key)
    .bind(list)
    .bind(if subscribed {
        "subscribed"
    } else {
        "unsubscribed"
    })
    .bind(source)
    .execute(&state.pool)
    .await
    .map_err(crate::Error::from)?;
    Ok(())
}
