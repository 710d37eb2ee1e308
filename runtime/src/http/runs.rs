//! `/v1/runs/{id}`: one run with its history and its messages, cancelling a run (admin),
//! and a contact's runs (`/v1/contacts/{key}/journeys`).

use super::auth::{Admin, Auth, Read};
use super::contacts::next_cursor;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiPath, ApiQuery};
use super::journeys::{status_filter, RunQuery};
use super::{page_limit, AppState};
use crate::queries;
use crate::queries::journeys::{self, Cancel, Run, RunStep};
use crate::queries::messages::{self, Message};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/runs/{id}", get(one))
        .route("/v1/runs/{id}/cancel", post(cancel))
        .route("/v1/contacts/{key}/journeys", get(contact_runs))
}

fn unknown_run(id: i64) -> ApiError {
    ApiError::new(ErrorCode::RunNotFound, format!("no run has the id {id}"))
}

/// A run with what it did.
#[derive(Serialize, ToSchema)]
pub(super) struct RunHistory {
    /// The run.
    run: Run,
    /// The steps it executed, in order (by instant; the steps of one pass share it).
    steps: Vec<RunStep>,
    /// The messages its `send` steps created, by id.
    messages: Vec<Message>,
}

/// One run: where it is, the steps it executed with their instants, its messages.
#[utoipa::path(get, path = "/v1/runs/{id}", operation_id = "get_run", tag = "journeys",
    params(("id" = i64, Path, description = "The run's id")),
    responses((status = 200, description = "The run and its history", body = RunHistory),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 404, description = "`run_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn one(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RunHistory>, ApiError> {
    let run = journeys::run(&state.pool, id)
        .await?
        .ok_or_else(|| unknown_run(id))?;
    let steps = journeys::run_steps(&state.pool, id, &run.key).await?;
    let messages = messages::run_messages(&state.pool, id).await?;
    Ok(Json(RunHistory {
        run,
        steps,
        messages,
    }))
}

/// Ends an `active` or `waiting` run: `exited` with `exit_reason` `cancelled`, `ended_at`
/// now. It waits for a pass in progress (it takes the same lock), so it never races one.
/// Messages the run already queued stay queued.
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", operation_id = "cancel_run", tag = "journeys",
    params(("id" = i64, Path, description = "The run's id")),
    responses((status = 200, description = "The run, now ended", body = Run),
        (status = 400, description = "`invalid_path`", body = ErrorBody),
        (status = 404, description = "`run_not_found`", body = ErrorBody),
        (status = 409, description = "`run_ended`: the run had already ended", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Run>, ApiError> {
    match journeys::cancel_run(&state.pool, &state.config.schema, id).await? {
        Cancel::Cancelled(run) => Ok(Json(*run)),
        Cancel::AlreadyEnded(status) => Err(ApiError::new(
            ErrorCode::RunEnded,
            format!("run {id} has already ended ({status})"),
        )),
        Cancel::Unknown => Err(unknown_run(id)),
    }
}

/// A page of a contact's runs.
#[derive(Serialize, ToSchema)]
pub(super) struct ContactRuns {
    /// The contact's key.
    key: String,
    /// Its runs of every journey, by id.
    runs: Vec<Run>,
    /// The `after` of the next page; null when this page is the last.
    next: Option<i64>,
}

/// A contact's runs of every journey, oldest first (keyset pages by run id), optionally of
/// one status.
#[utoipa::path(get, path = "/v1/contacts/{key}/journeys", operation_id = "contact_journeys", tag = "contacts",
    params(("key" = String, Path, description = "The contact's key"), RunQuery),
    responses((status = 200, description = "A page of runs", body = ContactRuns),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 404, description = "`contact_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn contact_runs(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> Result<Json<ContactRuns>, ApiError> {
    let limit = page_limit(query.limit)?;
    let status = status_filter(query.status.as_deref())?;
    if queries::contact(&state.pool, &key).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::ContactNotFound,
            format!("no contact with key `{key}`"),
        ));
    }
    let runs =
        journeys::contact_runs(&state.pool, &key, status, query.after.unwrap_or(0), limit).await?;
    let next = next_cursor(&runs, limit, |r| r.id);
    Ok(Json(ContactRuns { key, runs, next }))
}
