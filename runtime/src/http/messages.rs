//! `/v1/messages/{id}` (one message of the outbox) and a contact's messages
//! (`/v1/contacts/{key}/messages`, keyset pages by id).

use super::auth::{Auth, Read};
use super::contacts::{next_cursor, IdPage};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiPath, ApiQuery};
use super::{page_limit, AppState};
use crate::queries;
use crate::queries::messages::{self, Message};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/messages/{id}", get(one))
        .route("/v1/contacts/{key}/messages", get(contact_messages))
}

/// One message: its status, category, skip reason, attempts, provider id and subject.
#[utoipa::path(get, path = "/v1/messages/{id}", operation_id = "get_message", tag = "messages",
    params(("id" = i64, Path, description = "The message's id")),
    responses((status = 200, description = "The message", body = Message),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 404, description = "`message_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn one(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Message>, ApiError> {
    messages::message(&state.pool, id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::MessageNotFound,
                format!("no message has the id {id}"),
            )
        })
}

/// A page of a contact's messages.
#[derive(Serialize, ToSchema)]
pub(super) struct ContactMessages {
    /// The contact's key.
    key: String,
    /// Its messages, oldest first.
    messages: Vec<Message>,
    /// The `after` of the next page; null when this page is the last.
    next: Option<i64>,
}

/// A contact's messages, oldest first (keyset pages by message id).
#[utoipa::path(get, path = "/v1/contacts/{key}/messages", operation_id = "contact_messages", tag = "contacts",
    params(("key" = String, Path, description = "The contact's key"), IdPage),
    responses((status = 200, description = "A page of messages", body = ContactMessages),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 404, description = "`contact_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn contact_messages(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(page): ApiQuery<IdPage>,
) -> Result<Json<ContactMessages>, ApiError> {
    let limit = page_limit(page.limit)?;
    if queries::contact(&state.pool, &key).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::ContactNotFound,
            format!("no contact with key `{key}`"),
        ));
    }
    let messages =
        messages::contact_messages(&state.pool, &key, page.after.unwrap_or(0), limit).await?;
    let next = next_cursor(&messages, limit, |m| m.id);
    Ok(Json(ContactMessages {
        key,
        messages,
        next,
    }))
}
