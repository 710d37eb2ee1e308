//! `/v1/buckets`: definitions with live member counts, members (keyset pages), one
//! membership, and the transition feed.

use super::auth::{Auth, Read};
use super::contacts::{next_cursor, IdPage};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiPath, ApiQuery};
use super::{page_limit, AppState};
use crate::db::Why;
use crate::queries::{self, Bucket, Member, Membership, Transition};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/buckets", get(list))
        .route("/v1/buckets/{id}", get(one))
        .route("/v1/buckets/{id}/members", get(members))
        .route("/v1/buckets/{id}/members/{key}", get(member))
        .route("/v1/buckets/{id}/members/{key}/why", get(why))
        .route("/v1/buckets/{id}/transitions", get(transitions))
}

fn unknown_bucket(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BucketNotFound,
        format!("no bucket `{id}` is deployed"),
    )
}

async fn known(state: &AppState, id: &str) -> Result<(), ApiError> {
    if queries::bucket_exists(&state.pool, id).await? {
        Ok(())
    } else {
        Err(unknown_bucket(id))
    }
}

/// Every deployed bucket.
#[derive(Serialize, ToSchema)]
pub(super) struct BucketList {
    /// By id.
    buckets: Vec<Bucket>,
}

/// Every deployed bucket with its live member count.
#[utoipa::path(get, path = "/v1/buckets", tag = "buckets",
    responses((status = 200, description = "The buckets", body = BucketList)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    _auth: Auth<Read>,
) -> Result<Json<BucketList>, ApiError> {
    let buckets = queries::buckets(&state.pool).await?;
    Ok(Json(BucketList { buckets }))
}

/// One deployed bucket.
#[utoipa::path(get, path = "/v1/buckets/{id}", tag = "buckets",
    params(("id" = String, Path, description = "The bucket's id")),
    responses((status = 200, description = "The bucket", body = Bucket),
        (status = 404, description = "`bucket_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn one(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Bucket>, ApiError> {
    queries::bucket(&state.pool, &id)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_bucket(&id))
}

/// The query of a key-ordered page.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct KeyPage {
    /// Members with a key greater than this (default: from the start).
    pub(super) after: Option<String>,
    /// Rows per page, 1 to 1000 (default 100).
    pub(super) limit: Option<i64>,
}

/// A page of a bucket's members.
#[derive(Serialize, ToSchema)]
pub(super) struct MemberPage {
    /// The bucket.
    bucket_id: String,
    /// Its active members, by key.
    members: Vec<Member>,
    /// The `after` of the next page; null when this page is the last.
    next: Option<String>,
}

/// A bucket's active members (keyset pages by key).
#[utoipa::path(get, path = "/v1/buckets/{id}/members", tag = "buckets",
    params(("id" = String, Path, description = "The bucket's id"), KeyPage),
    responses((status = 200, description = "A page of members", body = MemberPage),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 404, description = "`bucket_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn members(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<KeyPage>,
) -> Result<Json<MemberPage>, ApiError> {
    let limit = page_limit(page.limit)?;
    known(&state, &id).await?;
    let members =
        queries::members(&state.pool, &id, page.after.as_deref().unwrap_or(""), limit).await?;
    let next = next_cursor(&members, limit, |m| m.key.clone());
    Ok(Json(MemberPage {
        bucket_id: id,
        members,
        next,
    }))
}

/// A contact's active membership of a bucket.
#[utoipa::path(get, path = "/v1/buckets/{id}/members/{key}", tag = "buckets",
    params(("id" = String, Path, description = "The bucket's id"),
        ("key" = String, Path, description = "The contact's key")),
    responses((status = 200, description = "The membership", body = Membership),
        (status = 404, description = "`bucket_not_found`, `not_a_member`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn member(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath((id, key)): ApiPath<(String, String)>,
) -> Result<Json<Membership>, ApiError> {
    known(&state, &id).await?;
    queries::member(&state.pool, &id, &key)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::NotAMember,
                format!("`{key}` is not a member of `{id}`"),
            )
        })
}

/// The query of [`why`].
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct WhyQuery {
    /// The instant to explain, RFC 3339; the database clock when absent.
    at: Option<String>,
}

/// Why a contact is (or is not) a member of a bucket at an instant: the criteria tree with
/// every node's value and each atom's evidence, the next change by the clock alone, the
/// membership row, the entry policy's verdict and the dwell timers (the generated
/// `b_<id>_why` function's JSON; its fields are described in `docs/api.md`).
#[utoipa::path(get, path = "/v1/buckets/{id}/members/{key}/why", tag = "buckets",
    params(("id" = String, Path, description = "The bucket's id"),
        ("key" = String, Path, description = "The contact's key"), WhyQuery),
    responses((status = 200, description = "The explanation", body = Object),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 404, description = "`bucket_not_found`, `contact_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn why(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath((id, key)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<WhyQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let at = match query.at.as_deref() {
        None => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    ApiError::bad_parameter(
                        "at",
                        "must be an RFC 3339 timestamp, e.g. 2026-01-01T00:00:00Z",
                    )
                })?
                .with_timezone(&chrono::Utc),
        ),
    };
    let mut conn = state.pool.acquire().await.map_err(crate::Error::from)?;
    match crate::db::why(&mut conn, &state.config.schema, &id, &key, at).await? {
        Why::Explained(explanation) => Ok(Json(explanation)),
        Why::UnknownBucket => Err(unknown_bucket(&id)),
        Why::UnknownContact => Err(ApiError::new(
            ErrorCode::ContactNotFound,
            format!("no contact has the key `{key}`"),
        )),
    }
}

/// A page of a bucket's transition feed.
#[derive(Serialize, ToSchema)]
pub(super) struct TransitionPage {
    /// The bucket.
    bucket_id: String,
    /// Transitions in commit order.
    transitions: Vec<Transition>,
    /// The `after` to poll from next: the last id served, or the one given when nothing
    /// is new.
    next: i64,
    /// Whether a full page was served (more may be waiting).
    more: bool,
}

/// A bucket's transition feed: entries, leaves and dwell firings in commit order; a
/// consumer that polls from the last id it saw never misses or repeats one.
#[utoipa::path(get, path = "/v1/buckets/{id}/transitions", tag = "buckets",
    params(("id" = String, Path, description = "The bucket's id"), IdPage),
    responses((status = 200, description = "A page of the feed", body = TransitionPage),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 404, description = "`bucket_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn transitions(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(page): ApiQuery<IdPage>,
) -> Result<Json<TransitionPage>, ApiError> {
    let limit = page_limit(page.limit)?;
    known(&state, &id).await?;
    let after = page.after.unwrap_or(0);
    let transitions = queries::transitions(&state.pool, &id, after, limit).await?;
    let next = transitions.last().map_or(after, |t| t.id);
    let more = next_cursor(&transitions, limit, |t| t.id).is_some();
    Ok(Json(TransitionPage {
        bucket_id: id,
        transitions,
        next,
        more,
    }))
}
