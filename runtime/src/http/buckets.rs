//! `/v1/buckets`: definitions with live member counts, members (keyset pages), one
//! membership, and the transition feed.

use super::auth::{Auth, Read};
use super::contacts::next_id;
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiPath, ApiQuery};
use super::{page_limit, AppState};
use crate::queries;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/buckets", get(list))
        .route("/v1/buckets/{id}", get(one))
        .route("/v1/buckets/{id}/members", get(members))
        .route("/v1/buckets/{id}/members/{key}", get(member))
        .route("/v1/buckets/{id}/transitions", get(transitions))
}

fn unknown_bucket(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BucketNotFound,
        format!("no bucket `{id}` is deployed"),
    )
}

async fn known(state: &AppState, id: &str) -> Result<(), ApiError> {
    if queries::bucket_exists(&state.pool, &state.config.schema, id).await? {
        Ok(())
    } else {
        Err(unknown_bucket(id))
    }
}

async fn list(State(state): State<AppState>, _auth: Auth<Read>) -> Result<Json<Value>, ApiError> {
    let buckets = queries::buckets(&state.pool, &state.config.schema).await?;
    Ok(Json(json!({ "buckets": buckets })))
}

async fn one(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    queries::bucket(&state.pool, &state.config.schema, &id)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_bucket(&id))
}

#[derive(Deserialize)]
struct MembersPage {
    after: Option<String>,
    limit: Option<i64>,
}

async fn members(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<MembersPage>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(page.limit)?;
    known(&state, &id).await?;
    let rows = queries::members(
        &state.pool,
        &state.config.schema,
        &id,
        page.after.as_deref().unwrap_or(""),
        limit,
    )
    .await?;
    let next = match rows.as_array() {
        Some(list) if list.len() as i64 == limit => list
            .last()
            .and_then(|r| r.get("key"))
            .cloned()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Ok(Json(
        json!({ "bucket_id": id, "members": rows, "next": next }),
    ))
}

async fn member(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath((id, key)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    known(&state, &id).await?;
    queries::member(&state.pool, &state.config.schema, &id, &key)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotAMember,
                format!("`{key}` is not a member of `{id}`"),
            )
        })
}

#[derive(Deserialize)]
struct FeedPage {
    after: Option<i64>,
    limit: Option<i64>,
}

async fn transitions(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<FeedPage>,
) -> Result<Json<Value>, ApiError> {
    let limit = page_limit(page.limit)?;
    known(&state, &id).await?;
    let after = page.after.unwrap_or(0);
    let rows = queries::transitions(&state.pool, &state.config.schema, &id, after, limit).await?;
    // The cursor to poll from next: the last id served, or the one given when nothing new.
    let cursor = rows
        .as_array()
        .and_then(|l| l.last())
        .and_then(|r| r.get("id"))
        .cloned()
        .unwrap_or(json!(after));
    let more = !next_id(&rows, limit).is_null();
    Ok(Json(
        json!({ "bucket_id": id, "transitions": rows, "next": cursor, "more": more }),
    ))
}
