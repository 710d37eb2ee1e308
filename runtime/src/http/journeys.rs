//! `/v1/journeys`: deployed journeys (and bucket reactions) with their run counts by
//! status and by step, a journey's runs (keyset pages, filtered by status), and pausing or
//! resuming enrolment (admin).

use super::auth::{Admin, Auth, Read};
use super::contacts::next_cursor;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::{page_limit, AppState};
use crate::ingest::FieldError;
use crate::queries::journeys::{self, Journey, Run, RUN_STATUSES};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/journeys", get(list))
        .route("/v1/journeys/{id}", get(one).patch(patch))
        .route("/v1/journeys/{id}/runs", get(runs))
}

fn unknown_journey(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::JourneyNotFound,
        format!("no journey `{id}` is deployed"),
    )
}

/// The `status` query parameter of run lists: one of the run statuses, or absent.
pub(super) fn status_filter(status: Option<&str>) -> Result<Option<&'static str>, ApiError> {
    match status {
        None => Ok(None),
        Some(given) => RUN_STATUSES
            .iter()
            .find(|s| **s == given)
            .map(|s| Some(*s))
            .ok_or_else(|| {
                ApiError::bad_parameter(
                    "status",
                    format!("must be one of {}", RUN_STATUSES.join(", ")),
                )
            }),
    }
}

/// Every deployed journey.
#[derive(Serialize, ToSchema)]
pub(super) struct JourneyList {
    /// By id.
    journeys: Vec<Journey>,
}

/// Every deployed journey and bucket reaction, with its run counts by status and by step.
#[utoipa::path(get, path = "/v1/journeys", operation_id = "list_journeys", tag = "journeys",
    responses((status = 200, description = "The journeys", body = JourneyList)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    _auth: Auth<Read>,
) -> Result<Json<JourneyList>, ApiError> {
    let journeys = journeys::journeys(&state.pool).await?;
    Ok(Json(JourneyList { journeys }))
}

/// One deployed journey with its run counts by status and by step.
#[utoipa::path(get, path = "/v1/journeys/{id}", operation_id = "get_journey", tag = "journeys",
    params(("id" = String, Path, description = "The journey's id (`<bucket>.<reaction>` for a reaction)")),
    responses((status = 200, description = "The journey", body = Journey),
        (status = 404, description = "`journey_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn one(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Journey>, ApiError> {
    journeys::journey(&state.pool, &id)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_journey(&id))
}

/// The body of `PATCH /v1/journeys/{id}`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body read by `parse_patch`
pub(super) struct JourneyUpdate {
    /// `false` pauses enrolment, `true` resumes it; runs in flight go on either way.
    enabled: bool,
}

/// `{"enabled": bool}` and nothing else.
fn parse_patch(body: &Value) -> Result<bool, Vec<FieldError>> {
    let problem = |field: &str, message: &str| FieldError {
        index: None,
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let Some(object) = body.as_object() else {
        return Err(vec![problem("", "expected a JSON object")]);
    };
    let mut problems = Vec::new();
    let mut enabled = None;
    for (field, value) in object {
        match (field.as_str(), value) {
            ("enabled", Value::Bool(b)) => enabled = Some(*b),
            ("enabled", _) => problems.push(problem(field, "expected true or false")),
            _ => problems.push(problem(field, "unknown field (expected `enabled`)")),
        }
    }
    match enabled {
        Some(b) if problems.is_empty() => Ok(b),
        None if problems.is_empty() => Err(vec![problem("enabled", "missing")]),
        _ => Err(problems),
    }
}

/// Pauses (`{"enabled": false}`) or resumes (`{"enabled": true}`) enrolment into a journey.
/// While paused, triggers are skipped (counted as `disabled`); runs in flight go on. A
/// journey disabled in its code (`enabled false`) stays disabled whatever this says.
#[utoipa::path(patch, path = "/v1/journeys/{id}", operation_id = "update_journey", tag = "journeys",
    params(("id" = String, Path, description = "The journey's id")),
    request_body = JourneyUpdate,
    responses((status = 200, description = "The journey after the change", body = Journey),
        (status = 400, description = "`invalid_request`, `malformed_json`", body = ErrorBody),
        (status = 404, description = "`journey_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn patch(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Journey>, ApiError> {
    let enabled = parse_patch(&body).map_err(|p| ApiError::invalid(&p))?;
    if !journeys::set_journey_enabled(&state.pool, &id, enabled).await? {
        return Err(unknown_journey(&id));
    }
    journeys::journey(&state.pool, &id)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_journey(&id))
}

/// The query of a run list: an id-keyed page and an optional status.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RunQuery {
    /// Only runs with this status: `active`, `waiting`, `completed`, `exited`, `failed`.
    pub(super) status: Option<String>,
    /// Runs with an id greater than this (default 0: from the start).
    pub(super) after: Option<i64>,
    /// Rows per page, 1 to 1000 (default 100).
    pub(super) limit: Option<i64>,
}

/// A page of a journey's runs.
#[derive(Serialize, ToSchema)]
pub(super) struct RunPage {
    /// The journey.
    journey_id: String,
    /// Its runs, by id.
    runs: Vec<Run>,
    /// The `after` of the next page; null when this page is the last.
    next: Option<i64>,
}

/// A journey's runs, oldest first (keyset pages by run id), optionally of one status.
#[utoipa::path(get, path = "/v1/journeys/{id}/runs", operation_id = "journey_runs", tag = "journeys",
    params(("id" = String, Path, description = "The journey's id"), RunQuery),
    responses((status = 200, description = "A page of runs", body = RunPage),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 404, description = "`journey_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn runs(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RunQuery>,
) -> Result<Json<RunPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let status = status_filter(query.status.as_deref())?;
    if !journeys::journey_exists(&state.pool, &id).await? {
        return Err(unknown_journey(&id));
    }
    let runs =
        journeys::journey_runs(&state.pool, &id, status, query.after.unwrap_or(0), limit).await?;
    let next = next_cursor(&runs, limit, |r| r.id);
    Ok(Json(RunPage {
        journey_id: id,
        runs,
        next,
    }))
}
