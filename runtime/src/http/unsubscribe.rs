//! The recipient's pages, without a key: `GET /u/{token}` (a confirm page that never
//! unsubscribes by itself, so link scanners are harmless) and `POST /u/{token}` (RFC 8058
//! one-click, and the confirm page's button): unsubscribes the token's contact from the
//! token's list and answers 200. Tokens: `crate::mail::links`.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::ApiPath;
use super::page::{escape, page, PageError};
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

/// The list's display name (its id when it has none or is no longer declared).
async fn list_name(state: &AppState, list: &str) -> Result<String, sqlx::Error> {
    let name: Option<Option<String>> = sqlx::query_scalar("select name from lists where id = $1")
        .bind(list)
        .fetch_optional(&state.pool)
        .await?;
    Ok(name.flatten().unwrap_or_else(|| list.to_string()))
}

/// `GET /u/{token}`: the unsubscribe confirm page, which unsubscribes nobody by itself.
///
/// What the link would do, and a button that does it, so link scanners are harmless. A
/// link that does not verify gets an HTML 404 page (a person opened it).
#[utoipa::path(get, path = "/u/{token}", operation_id = "unsubscribe_page", tag = "pages",
    params(("token" = String, Path, description = "The signed unsubscribe token of the message's `List-Unsubscribe` link")),
    responses(
        (status = 200, description = "The confirm page: the list's name and a button that posts the unsubscribe; it unsubscribes nobody by itself", body = String, content_type = "text/html"),
        (status = 404, description = "An HTML page: the link is not valid", body = String, content_type = "text/html")))]
pub(super) async fn confirm(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, PageError> {
    let signer = state.mail.signer(&state.pool).await?;
    let c = signer
        .verify(LinkKind::Unsubscribe, &token)
        .ok_or(PageError::InvalidLink)?;
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

/// `POST /u/{token}`: unsubscribes the token's contact from the token's list.
///
/// RFC 8058 one-click (mail clients post `List-Unsubscribe=One-Click`) or the confirm
/// page's button. Idempotent.
#[utoipa::path(post, path = "/u/{token}", operation_id = "unsubscribe", tag = "pages",
    params(("token" = String, Path, description = "The signed unsubscribe token")),
    request_body(content = Option<String>, content_type = "application/x-www-form-urlencoded",
        description = "`List-Unsubscribe=One-Click` (RFC 8058, sent by mail clients), or the confirm page's empty form"),
    responses(
        (status = 200, description = "Unsubscribed from the token's list (again: no change); an HTML page", body = String, content_type = "text/html"),
        (status = 404, description = "`invalid_link`: the token does not verify", body = ErrorBody)))]
pub(super) async fn unsubscribe(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let c = claims(&state, LinkKind::Unsubscribe, &token).await?;
    let one_click = String::from_utf8_lossy(&body).contains("List-Unsubscribe=One-Click");
    set_subscription(
        &state.pool,
        &c.user_key,
        &c.list,
        false,
        if one_click {
            "one_click"
        } else {
            "unsubscribe_link"
        },
    )
    .await
    .map_err(crate::Error::from)?;
    let name = list_name(&state, &c.list)
        .await
        .map_err(crate::Error::from)?;
    Ok(page(
        "Unsubscribed",
        &format!(
            "<p>You will no longer receive <strong>{}</strong> emails.</p>",
            escape(&name)
        ),
    ))
}

/// Records a contact's choice for a list (`*`: every non-transactional list), on a pool or
/// inside a caller's transaction. A choice equal to the recorded one changes nothing (its
/// `changed_at` and `source` stay).
pub(crate) async fn set_subscription<'c>(
    db: impl sqlx::PgExecutor<'c>,
    user_key: &str,
    list: &str,
    subscribed: bool,
    source: &str,
) -> Result<(), sqlx::Error> {
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
    .execute(db)
    .await?;
    Ok(())
}
