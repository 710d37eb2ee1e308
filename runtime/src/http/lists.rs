//! `/v1/lists`: the declared lists with their counts, a list's members (the contacts who
//! would receive its mail, keyset pages) and bulk subscribe/unsubscribe
//! (docs/api.md#lists).
//!
//! **The counts** (one rule, the one journeys and campaigns apply when they create a
//! message: `message_skip_reason`): `subscribers` are the live contacts subscribed to the
//! list, explicitly or by its `default subscribed`, who unsubscribed neither from it nor
//! from everything; `members` are those of them who would receive its mail now (an email
//! address that is not suppressed) — exactly the contacts `…/members` pages through.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::{Auth, Ingest, Read};
use super::buckets::KeyPage;
use super::contacts::next_cursor;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::{page_limit, AppState};
use crate::ingest::FieldError;

/// The most keys one subscribe or unsubscribe request may name.
pub const MAX_KEYS: usize = 10_000;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/lists", get(lists))
        .route("/v1/lists/{id}/members", get(list_members))
        .route("/v1/lists/{id}/subscribe", post(subscribe_many))
        .route("/v1/lists/{id}/unsubscribe", post(unsubscribe_many))
}

/// A declared list.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct List {
    /// The list id (a template's `category`).
    pub id: String,
    /// Its display name.
    pub name: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// `default subscribed` (true) or `default unsubscribed` (opt-in).
    pub default_subscribed: bool,
    /// Rows of contacts who chose to subscribe (`subscriptions.status = 'subscribed'`).
    pub subscribed: i64,
    /// Rows of contacts who unsubscribed from it.
    pub unsubscribed: i64,
    /// Live contacts subscribed to it, explicitly or by its default, and unsubscribed
    /// neither from it nor from everything.
    pub subscribers: i64,
    /// The subscribers who would receive its mail now: with an email address that is not
    /// suppressed (the contacts of `GET /v1/lists/{id}/members`).
    pub members: i64,
}

/// The lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct Lists {
    /// By id.
    pub lists: Vec<List>,
}

/// Every declared list with its counts.
#[utoipa::path(get, path = "/v1/lists", tag = "email",
    responses((status = 200, description = "The lists, by id", body = Lists)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn lists(
    State(state): State<AppState>,
    _auth: Auth<Read>,
) -> Result<Json<Lists>, ApiError> {
    let lists = sqlx::query_as(
        "with live as (
           select c.user_key, c.email,
                  exists (select 1 from subscriptions a
                           where a.user_key = c.user_key and a.list_id = '*'
                             and a.status = 'unsubscribed') as all_off
             from contacts c
            where c.deleted_at is null)
         select l.id, l.name, l.description, l.default_subscribed,
                (select count(*) from subscriptions x
                  where x.list_id = l.id and x.status = 'subscribed') as subscribed,
                (select count(*) from subscriptions x
                  where x.list_id = l.id and x.status = 'unsubscribed') as unsubscribed,
                count(v.user_key) filter (
                  where not v.all_off and coalesce(u.status = 'subscribed', l.default_subscribed))
                  as subscribers,
                count(v.user_key) filter (
                  where message_skip_reason(v.email, v.user_key, l.id) is null) as members
           from lists l
           left join live v on true
           left join subscriptions u on u.user_key = v.user_key and u.list_id = l.id
          group by l.id
          order by l.id",
    )
    .fetch_all(&state.pool)
    .await
    .map_err(crate::Error::from)?;
    Ok(Json(Lists { lists }))
}

fn unknown_list(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ListNotFound,
        format!("no list `{id}` is declared"),
    )
}

async fn known(state: &AppState, id: &str) -> Result<(), ApiError> {
    let found: Option<i32> = sqlx::query_scalar("select 1 from lists where id = $1")
        .bind(id)
        .fetch_optional(&state.pool)
        .await
        .map_err(crate::Error::from)?;
    found.map(|_| ()).ok_or_else(|| unknown_list(id))
}

/// A contact who would receive the list's mail.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ListMember {
    /// The contact's key.
    pub key: String,
    /// Where its mail goes.
    pub email: String,
    /// `subscribed` when the contact chose the list; null when its default holds.
    pub status: Option<String>,
}

/// A page of a list's members.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListMemberPage {
    /// The list.
    pub list_id: String,
    /// The contacts who would receive its mail now, by key.
    pub members: Vec<ListMember>,
    /// The `after` of the next page; null when this page is the last.
    pub next: Option<String>,
}

/// The contacts who would receive the list's mail now (keyset pages by key): live, with an
/// email address that is not suppressed, subscribed explicitly or by the list's default,
/// unsubscribed neither from it nor from everything.
#[utoipa::path(get, path = "/v1/lists/{id}/members", tag = "email",
    params(("id" = String, Path, description = "The list's id"), KeyPage),
    responses((status = 200, description = "A page of members", body = ListMemberPage),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 404, description = "`list_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn list_members(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<KeyPage>,
) -> Result<Json<ListMemberPage>, ApiError> {
    let limit = page_limit(page.limit)?;
    known(&state, &id).await?;
    let members: Vec<ListMember> = sqlx::query_as(
        "select c.user_key as key, c.email, u.status
           from contacts c
           left join subscriptions u on u.user_key = c.user_key and u.list_id = $1
          where c.deleted_at is null and c.user_key > $2
            and message_skip_reason(c.email, c.user_key, $1) is null
          order by c.user_key
          limit $3",
    )
    .bind(&id)
    .bind(page.after.as_deref().unwrap_or(""))
    .bind(limit)
    .fetch_all(&state.pool)
    .await
    .map_err(crate::Error::from)?;
    let next = next_cursor(&members, limit, |m| m.key.clone());
    Ok(Json(ListMemberPage {
        list_id: id,
        members,
        next,
    }))
}

/// The body of `POST /v1/lists/{id}/subscribe` and `…/unsubscribe`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body read by `parse_keys`
pub(super) struct KeysRequest {
    /// Contact keys, 1 to 10,000.
    keys: Vec<String>,
}

/// What a bulk subscribe or unsubscribe did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkSubscription {
    /// The list.
    pub list_id: String,
    /// `subscribed` or `unsubscribed`: the state the known contacts are in now.
    pub status: String,
    /// Contacts whose state changed.
    pub changed: i64,
    /// Contacts already in that state.
    pub unchanged: i64,
    /// Keys with no live contact (nothing was written for them), in request order.
    pub unknown: Vec<String>,
}

fn parse_keys(body: &Value) -> Result<Vec<String>, ApiError> {
    let problem = |field: &str, message: String| {
        ApiError::invalid(&[FieldError {
            index: None,
            field: field.into(),
            message,
        }])
    };
    let Some(object) = body.as_object() else {
        return Err(problem("", "expected an object `{\"keys\": [...]}`".into()));
    };
    if let Some(other) = object.keys().find(|k| *k != "keys") {
        return Err(problem(other, "unknown field (expected `keys`)".into()));
    }
    let Some(list) = object.get("keys").and_then(Value::as_array) else {
        return Err(problem("keys", "expected an array of contact keys".into()));
    };
    if list.is_empty() || list.len() > MAX_KEYS {
        return Err(problem(
            "keys",
            format!("expected 1 to {MAX_KEYS} keys, got {}", list.len()),
        ));
    }
    let mut keys = Vec::with_capacity(list.len());
    let mut problems = Vec::new();
    for (i, k) in list.iter().enumerate() {
        match k.as_str() {
            Some(s) if !s.is_empty() && !s.contains('\0') => keys.push(s.to_owned()),
            _ => problems.push(FieldError {
                index: Some(i),
                field: "keys".into(),
                message: "expected a non-empty string".into(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(ApiError::invalid(&problems))
    }
}

async fn set_many(
    state: &AppState,
    id: String,
    body: &Value,
    subscribed: bool,
) -> Result<Json<BulkSubscription>, ApiError> {
    let keys = parse_keys(body)?;
    known(state, &id).await?;
    let status = if subscribed {
        "subscribed"
    } else {
        "unsubscribed"
    };
    // One statement: atomic, and only rows that change are written.
    let (live, changed, unknown): (i64, i64, Vec<String>) = sqlx::query_as(
        "with k as (select k, min(n) as n from unnest($1::text[]) with ordinality as t(k, n)
                     group by k),
              live as (select c.user_key from contacts c join k on c.user_key = k.k
                        where c.deleted_at is null),
              up as (insert into subscriptions (user_key, list_id, status, source)
                     select user_key, $2, $3, 'api' from live
                     on conflict (user_key, list_id) do update
                        set status = excluded.status, source = excluded.source,
                            changed_at = now()
                      where subscriptions.status <> excluded.status
                     returning 1)
         select (select count(*) from live), (select count(*) from up),
                array(select k.k from k where not exists
                        (select 1 from live where live.user_key = k.k) order by k.n)",
    )
    .bind(&keys)
    .bind(&id)
    .bind(status)
    .fetch_one(&state.pool)
    .await
    .map_err(crate::Error::from)?;
    Ok(Json(BulkSubscription {
        list_id: id,
        status: status.into(),
        changed,
        unchanged: live - changed,
        unknown,
    }))
}

/// Subscribes the named contacts to the list (source `api`), in one statement; keys with no
/// live contact are reported and skipped.
#[utoipa::path(post, path = "/v1/lists/{id}/subscribe", tag = "email",
    params(("id" = String, Path, description = "The list's id")),
    request_body = KeysRequest,
    responses((status = 200, description = "What changed", body = BulkSubscription),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 404, description = "`list_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn subscribe_many(
    State(state): State<AppState>,
    _auth: Auth<Ingest>,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<BulkSubscription>, ApiError> {
    set_many(&state, id, &body, true).await
}

/// Unsubscribes the named contacts from the list (source `api`), in one statement; keys with
/// no live contact are reported and skipped.
#[utoipa::path(post, path = "/v1/lists/{id}/unsubscribe", tag = "email",
    params(("id" = String, Path, description = "The list's id")),
    request_body = KeysRequest,
    responses((status = 200, description = "What changed", body = BulkSubscription),
        (status = 400, description = "`invalid_request`", body = ErrorBody),
        (status = 404, description = "`list_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn unsubscribe_many(
    State(state): State<AppState>,
    _auth: Auth<Ingest>,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<BulkSubscription>, ApiError> {
    set_many(&state, id, &body, false).await
}
