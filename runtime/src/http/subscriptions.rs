//! A contact's subscriptions and suppressions (docs/api.md#email; the lists themselves are
//! `lists.rs`): `GET`/`PUT /v1/contacts/{key}/subscriptions` (read / ingest),
//! `POST /v1/suppressions`, `DELETE /v1/suppressions/{email}` (admin).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::{Admin, Auth, Ingest, Read};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiPath, JsonBody};
use super::unsubscribe::set_subscription;
use super::AppState;
use crate::ingest::{self, FieldError};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/contacts/{key}/subscriptions",
            get(subscriptions).put(put_subscriptions),
        )
        .route("/v1/suppressions", post(suppress))
        .route("/v1/suppressions/{email}", delete(unsuppress))
}

/// A contact's state for one list.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Subscription {
    pub list_id: String,
    /// Whether a message of this list would be sent (unsubscribe-all included).
    pub subscribed: bool,
    /// `subscribed` / `unsubscribed` when the contact chose, else null (the default holds).
    pub status: Option<String>,
    /// Who made the choice (`api`, `one_click`, `unsubscribe_link`, `preferences`, …).
    pub source: Option<String>,
    pub changed_at: Option<DateTime<Utc>>,
}

/// A contact's subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Subscriptions {
    pub key: String,
    /// Unsubscribed from every non-transactional list.
    pub unsubscribed_all: bool,
    pub lists: Vec<Subscription>,
}

async fn contact_exists(state: &AppState, key: &str) -> Result<(), ApiError> {
    let found: Option<i32> =
        sqlx::query_scalar("select 1 from contacts where user_key = $1 and deleted_at is null")
            .bind(key)
            .fetch_optional(&state.pool)
            .await
            .map_err(crate::Error::from)?;
    found.map(|_| ()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::ContactNotFound,
            format!("no contact with key `{key}`"),
        )
    })
}

async fn read_subscriptions(state: &AppState, key: &str) -> Result<Subscriptions, ApiError> {
    let unsubscribed_all: bool = sqlx::query_scalar(
        "select exists (select 1 from subscriptions
                         where user_key = $1 and list_id = '*' and status = 'unsubscribed')",
    )
    .bind(key)
    .fetch_one(&state.pool)
    .await
    .map_err(crate::Error::from)?;
    let lists = sqlx::query_as(
        "select l.id as list_id,
                not $2 and coalesce(u.status = 'subscribed', l.default_subscribed) as subscribed,
                u.status, u.source, u.changed_at
           from lists l
           left join subscriptions u on u.user_key = $1 and u.list_id = l.id
          order by l.id",
    )
    .bind(key)
    .bind(unsubscribed_all)
    .fetch_all(&state.pool)
    .await
    .map_err(crate::Error::from)?;
    Ok(Subscriptions {
        key: key.to_string(),
        unsubscribed_all,
        lists,
    })
}

/// A contact's state for every list.
#[utoipa::path(get, path = "/v1/contacts/{key}/subscriptions", tag = "email",
    params(("key" = String, Path, description = "The contact's key")),
    responses((status = 200, description = "The contact's subscriptions", body = Subscriptions),
        (status = 404, description = "`contact_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn subscriptions(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Subscriptions>, ApiError> {
    contact_exists(&state, &key).await?;
    Ok(Json(read_subscriptions(&state, &key).await?))
}

/// Sets a contact's subscriptions; lists not named keep their state.
#[utoipa::path(put, path = "/v1/contacts/{key}/subscriptions", tag = "email",
    params(("key" = String, Path, description = "The contact's key")),
    request_body(content = Object, description = "`{\"<list id>\": bool, \"*\": bool}`"),
    responses((status = 200, description = "The contact's subscriptions after the change", body = Subscriptions),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 404, description = "`contact_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn put_subscriptions(
    State(state): State<AppState>,
    _auth: Auth<Ingest>,
    ApiPath(key): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Subscriptions>, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid(&[FieldError {
            index: None,
            field: String::new(),
            message: "expected an object of list ids to true or false".into(),
        }]));
    };
    contact_exists(&state, &key).await?;
    let declared: Vec<String> = sqlx::query_scalar("select id from lists")
        .fetch_all(&state.pool)
        .await
        .map_err(crate::Error::from)?;
    let mut problems = Vec::new();
    let mut changes = Vec::new();
    for (list, value) in object {
        match value.as_bool() {
            _ if list != "*" && !declared.contains(list) => problems.push(FieldError {
                index: None,
                field: list.clone(),
                message: "not a declared list".into(),
            }),
            Some(b) => changes.push((list.clone(), b)),
            None => problems.push(FieldError {
                index: None,
                field: list.clone(),
                message: "expected true or false".into(),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(&problems));
    }
    // Every change of the request in one transaction: all of them or none.
    let mut tx = state.pool.begin().await.map_err(crate::Error::from)?;
    for (list, subscribed) in changes {
        if list == "*" && subscribed {
            sqlx::query("delete from subscriptions where user_key = $1 and list_id = '*'")
                .bind(&key)
                .execute(&mut *tx)
                .await
                .map_err(crate::Error::from)?;
        } else {
            set_subscription(&mut *tx, &key, &list, subscribed, "api")
                .await
                .map_err(crate::Error::from)?;
        }
    }
    tx.commit().await.map_err(crate::Error::from)?;
    Ok(Json(read_subscriptions(&state, &key).await?))
}

/// A suppressed address.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Suppression {
    pub email: String,
    /// `bounce`, `complaint` or `manual`.
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// The body of `POST /v1/suppressions`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body read by `suppress`
pub(super) struct SuppressionRequest {
    email: String,
    /// `manual` (default), `bounce` or `complaint`.
    reason: Option<String>,
}

/// Suppresses an address: it gets no mail at all, transactional included. Idempotent.
#[utoipa::path(post, path = "/v1/suppressions", tag = "email",
    request_body = SuppressionRequest,
    responses((status = 200, description = "The suppression", body = Suppression),
        (status = 400, description = "`invalid_request`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn suppress(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    JsonBody(body): JsonBody,
) -> Result<Json<Suppression>, ApiError> {
    let field = |field: &str, message: &str| FieldError {
        index: None,
        field: field.into(),
        message: message.into(),
    };
    let mut problems = Vec::new();
    let email = match body
        .get("email")
        .and_then(Value::as_str)
        .map(ingest::normalize_email)
    {
        Some(Some(e)) => Some(e),
        _ => {
            problems.push(field("email", "expected an email address"));
            None
        }
    };
    let reason = match body.get("reason") {
        None | Some(Value::Null) => "manual",
        Some(Value::String(r)) if matches!(r.as_str(), "manual" | "bounce" | "complaint") => {
            r.as_str()
        }
        Some(_) => {
            problems.push(field(
                "reason",
                "expected `manual`, `bounce` or `complaint`",
            ));
            "manual"
        }
    };
    if let Some(other) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "email" && *k != "reason"))
    {
        problems.push(field(
            other,
            "unknown field (expected `email` and `reason`)",
        ));
    }
    let Some(email) = email.filter(|_| problems.is_empty()) else {
        return Err(ApiError::invalid(&problems));
    };
    let row = sqlx::query_as(
        "insert into suppressions (email, reason) values ($1, $2)
         on conflict (email) do update set reason = excluded.reason
         returning email, reason, created_at",
    )
    .bind(&email)
    .bind(reason)
    .fetch_one(&state.pool)
    .await
    .map_err(crate::Error::from)?;
    Ok(Json(row))
}

/// Lifts a suppression.
#[utoipa::path(delete, path = "/v1/suppressions/{email}", tag = "email",
    params(("email" = String, Path, description = "The address")),
    responses((status = 204, description = "Lifted"),
        (status = 404, description = "`not_suppressed`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn unsuppress(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(email): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    let email = email.trim().to_lowercase();
    let done = sqlx::query("delete from suppressions where email = $1")
        .bind(&email)
        .execute(&state.pool)
        .await
        .map_err(crate::Error::from)?;
    if done.rows_affected() == 0 {
        return Err(ApiError::new(
            ErrorCode::NotSuppressed,
            format!("`{email}` is not suppressed"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
