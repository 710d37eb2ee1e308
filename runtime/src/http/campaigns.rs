//! `/v1/campaigns`: broadcasts created through the API (idempotent on the
//! `Idempotency-Key` header), their progress, cancelling and starting. Creation only writes
//! the campaign: the scheduler's next tick freezes its audience and queues its messages
//! (docs/api.md#campaigns).

use super::auth::{Admin, Auth, Read};
use super::contacts::next_cursor;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::{page_limit, AppState};
use crate::ingest::FieldError;
use crate::queries::campaigns::{self, Campaign, Change, Created, NewCampaign};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/campaigns", get(list).post(create))
        .route("/v1/campaigns/{id}", get(one))
        .route("/v1/campaigns/{id}/cancel", post(cancel))
        .route("/v1/campaigns/{id}/start", post(start))
}

fn unknown_campaign(id: &str) -> ApiError {
    ApiError::new(ErrorCode::CampaignNotFound, format!("no campaign `{id}`"))
}

/// The query of `GET /v1/campaigns`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CampaignPage {
    /// The `next` of the previous page (default: from the newest).
    after: Option<String>,
    /// Rows per page, 1 to 1000 (default 100).
    limit: Option<i64>,
}

/// A page of campaigns.
#[derive(Serialize, ToSchema)]
pub(super) struct CampaignList {
    /// Newest first.
    campaigns: Vec<Campaign>,
    /// The `after` of the next page; null when this page is the last.
    next: Option<String>,
}

/// A page's cursor: the campaign's `created_at` in microseconds since the epoch, a `.`, its
/// id.
fn cursor(c: &Campaign) -> String {
    format!("{}.{}", c.created_at.timestamp_micros(), c.id)
}

/// Reads a cursor [`cursor`] wrote.
fn parse_cursor(text: &str) -> Option<(DateTime<Utc>, String)> {
    let (micros, id) = text.split_once('.')?;
    if id.is_empty() || !micros.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.to_owned()))
}

/// The campaigns (from code and the API) with their progress, newest first, in keyset pages.
#[utoipa::path(get, path = "/v1/campaigns", operation_id = "list_campaigns", tag = "campaigns",
    params(CampaignPage),
    responses((status = 200, description = "A page of campaigns", body = CampaignList),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn list(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiQuery(page): ApiQuery<CampaignPage>,
) -> Result<Json<CampaignList>, ApiError> {
    let limit = page_limit(page.limit)?;
    let after = match page.after.as_deref() {
        None => None,
        Some(text) => Some(parse_cursor(text).ok_or_else(|| {
            ApiError::bad_parameter("after", "not a cursor of this list (pass a page's `next`)")
        })?),
    };
    let campaigns = campaigns::campaigns(&state.pool, after.as_ref(), limit).await?;
    let next = next_cursor(&campaigns, limit, cursor);
    Ok(Json(CampaignList { campaigns, next }))
}

/// One campaign with its progress: recipients, queued, sent, skipped (by reason), failed.
#[utoipa::path(get, path = "/v1/campaigns/{id}", operation_id = "get_campaign", tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, description = "The campaign", body = Campaign),
        (status = 404, description = "`campaign_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn one(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Campaign>, ApiError> {
    campaigns::campaign(&state.pool, &id)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_campaign(&id))
}

/// The body of `POST /v1/campaigns`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body read by `parse_campaign`
pub(super) struct CampaignRequest {
    /// A name for people (at most 200 characters).
    name: String,
    /// `{"bucket": "power_user"}` or `{"list": "product_updates"}`: exactly one.
    #[schema(value_type = Object)]
    audience: Value,
    /// The template to send (a deployed template id).
    template: String,
    /// When: an RFC 3339 instant (`2027-03-01T09:00:00Z`), or a wall-clock time in each
    /// recipient's zone (`2027-03-01 09:00 in contact.timezone`). Absent or past: at once.
    send_at: Option<String>,
}

/// The longest `Idempotency-Key` accepted.
const MAX_KEY_LEN: usize = 255;

/// Reads `POST /v1/campaigns`' body; every problem is reported.
fn parse_campaign(body: &Value) -> Result<NewCampaign, Vec<FieldError>> {
    let problem = |field: &str, message: &str| FieldError {
        index: None,
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let Some(object) = body.as_object() else {
        return Err(vec![problem("", "expected a JSON object")]);
    };
    let mut problems = Vec::new();
    let mut out = NewCampaign {
        name: String::new(),
        audience_kind: "bucket",
        audience_id: String::new(),
        template: String::new(),
        send_at: None,
        send_at_local: None,
        idempotency_key: None,
    };
    let (mut name, mut audience, mut template) = (false, false, false);
    for (field, value) in object {
        match (field.as_str(), value) {
            ("name", Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 200 => {
                out.name = s.clone();
                name = true;
            }
            ("name", _) => problems.push(problem(
                field,
                "expected a non-empty string of at most 200 characters",
            )),
            ("template", Value::String(s)) if is_id(s) => {
                out.template = s.clone();
                template = true;
            }
            ("template", _) => problems.push(problem(field, "expected a template id")),
            ("audience", Value::Object(a)) => match (a.len(), a.iter().next()) {
                (1, Some((kind, Value::String(id))))
                    if (kind == "bucket" || kind == "list") && is_id(id) =>
                {
                    out.audience_kind = if kind == "list" { "list" } else { "bucket" };
                    out.audience_id = id.clone();
                    audience = true;
                }
                _ => problems.push(problem(
                    field,
                    "expected {\"bucket\": ID} or {\"list\": ID}",
                )),
            },
            ("audience", _) => problems.push(problem(
                field,
                "expected {\"bucket\": ID} or {\"list\": ID}",
            )),
            ("send_at", Value::Null) => {}
            ("send_at", Value::String(s)) => match parse_send_at(s) {
                Some(SendAt::Instant(at)) => out.send_at = Some(at),
                Some(SendAt::Local(local, zone)) => out.send_at_local = Some((local, zone)),
                None => problems.push(problem(
                    field,
                    "expected an RFC 3339 instant (2027-03-01T09:00:00Z) or a local time \
                     (2027-03-01 09:00 in contact.timezone)",
                )),
            },
            ("send_at", _) => problems.push(problem(field, "expected a string")),
            _ => problems.push(problem(
                field,
                "unknown field (expected `name`, `audience`, `template`, `send_at`)",
            )),
        }
    }
    for (has, field) in [
        (name, "name"),
        (audience, "audience"),
        (template, "template"),
    ] {
        if !has && !object.contains_key(field) {
            problems.push(problem(field, "missing"));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// An id as the language writes them: `[a-z][a-z0-9_]*`, at most 48 characters.
fn is_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 48
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A parsed `send_at`.
#[derive(Debug, PartialEq)]
enum SendAt {
    Instant(DateTime<Utc>),
    /// `YYYY-MM-DD HH:MM:SS` and the contact property path of the zone.
    Local(String, Vec<String>),
}

/// `2027-03-01T09:00:00Z` or `2027-03-01 09:00[:SS] in contact.PROPERTY[.KEY…]`.
fn parse_send_at(s: &str) -> Option<SendAt> {
    if let Some((local, zone)) = s.split_once(" in contact.") {
        let local = local.trim();
        let at = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M"))
            .ok()?;
        let path: Vec<String> = zone.trim().split('.').map(str::to_owned).collect();
        if path.iter().any(|p| p.is_empty() || p.len() > 64) {
            return None;
        }
        return Some(SendAt::Local(
            at.format("%Y-%m-%d %H:%M:%S").to_string(),
            path,
        ));
    }
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| SendAt::Instant(t.with_timezone(&Utc)))
}

/// Creates a campaign to a bucket's members or a list's subscribers. It returns at once:
/// the scheduler's next tick (at or after `send_at`) freezes the audience and queues the
/// messages. With an `Idempotency-Key`, a replay returns the campaign created the first
/// time (200 instead of 201); the same key with a different body is refused (409).
#[utoipa::path(post, path = "/v1/campaigns", operation_id = "create_campaign", tag = "campaigns",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the campaign the first request created (at most 255 characters)")),
    request_body = CampaignRequest,
    responses((status = 201, description = "The campaign, created", body = Campaign),
        (status = 200, description = "The campaign an earlier request with this key created", body = Campaign),
        (status = 400, description = "`invalid_request` (also for an unknown bucket, list or template), `malformed_json`, `invalid_parameter`", body = ErrorBody),
        (status = 409, description = "`idempotency_key_reused`: the key was used for a different campaign", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn create(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= MAX_KEY_LEN => Some(k.trim().to_owned()),
            _ => {
                return Err(ApiError::bad_parameter(
                    "Idempotency-Key",
                    "must be 1 to 255 visible ASCII characters",
                ))
            }
        },
    };
    let mut new = parse_campaign(&body).map_err(|p| ApiError::invalid(&p))?;
    new.idempotency_key = key;
    let found = campaigns::references(
        &state.pool,
        new.audience_kind,
        &new.audience_id,
        &new.template,
    )
    .await?;
    let mut problems = Vec::new();
    if found.no_audience {
        problems.push(FieldError {
            index: None,
            field: "audience".into(),
            message: format!("no {} `{}` is deployed", new.audience_kind, new.audience_id),
        });
    }
    if found.no_template {
        problems.push(FieldError {
            index: None,
            field: "template".into(),
            message: format!("no template `{}` is deployed", new.template),
        });
    }
    // As `hogsend check` refuses it (E0314): a broadcast must not bypass unsubscribes.
    if found.transactional && new.audience_kind == "bucket" {
        problems.push(FieldError {
            index: None,
            field: "template".into(),
            message: format!(
                "`{}` is transactional: a campaign to a bucket may not send it (it would reach \
                 members who unsubscribed); send it to a list, or use a template of a list",
                new.template
            ),
        });
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(&problems));
    }
    let (status, id) = match campaigns::create(&state.pool, &new).await? {
        Created::New(id) => (StatusCode::CREATED, id),
        Created::Replay(id, true) => (StatusCode::OK, id),
        Created::Replay(id, false) => {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                format!("this Idempotency-Key created campaign `{id}`, with a different body"),
            ))
        }
    };
    let campaign = campaigns::campaign(&state.pool, &id)
        .await?
        .ok_or_else(|| unknown_campaign(&id))?;
    Ok((status, Json(campaign)))
}

/// Cancels a `scheduled` or `sending` campaign: its messages not yet delivered become
/// `cancelled`; those already sent stay sent.
#[utoipa::path(post, path = "/v1/campaigns/{id}/cancel", operation_id = "cancel_campaign", tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, description = "The campaign, now cancelled", body = Campaign),
        (status = 404, description = "`campaign_not_found`", body = ErrorBody),
        (status = 409, description = "`campaign_finished`: it is already sent, cancelled or failed", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Campaign>, ApiError> {
    let change = campaigns::cancel(&state.pool, &id).await?;
    changed(&state, &id, change).await
}

/// Starts a held campaign now: a code campaign with no `send_at`, or whose `send_at` was
/// already past when it was deployed. The scheduler's next tick sends it.
#[utoipa::path(post, path = "/v1/campaigns/{id}/start", operation_id = "start_campaign", tag = "campaigns",
    params(("id" = String, Path, description = "The campaign's id")),
    responses((status = 200, description = "The campaign, due now", body = Campaign),
        (status = 404, description = "`campaign_not_found`", body = ErrorBody),
        (status = 409, description = "`campaign_finished`: it has already started or ended", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn start(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Campaign>, ApiError> {
    let change = campaigns::start(&state.pool, &id).await?;
    changed(&state, &id, change).await
}

async fn changed(state: &AppState, id: &str, change: Change) -> Result<Json<Campaign>, ApiError> {
    match change {
        Change::Done => campaigns::campaign(&state.pool, id)
            .await?
            .map(Json)
            .ok_or_else(|| unknown_campaign(id)),
        Change::Unknown => Err(unknown_campaign(id)),
        Change::Refused(status) => Err(ApiError::new(
            ErrorCode::CampaignFinished,
            format!("campaign `{id}` is {status}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn send_at_takes_an_instant_or_a_local_time() {
        assert_eq!(
            parse_send_at("2027-03-01T09:00:00+01:00"),
            Some(SendAt::Instant("2027-03-01T08:00:00Z".parse().unwrap()))
        );
        assert_eq!(
            parse_send_at("2027-03-01 09:00 in contact.timezone"),
            Some(SendAt::Local(
                "2027-03-01 09:00:00".into(),
                vec!["timezone".into()]
            ))
        );
        assert_eq!(parse_send_at("2027-03-01 09:00"), None);
        assert_eq!(parse_send_at("2027-02-30T09:00:00Z"), None);
        assert_eq!(parse_send_at("2027-03-01 09:00 in contact."), None);
    }

    #[test]
    fn a_body_with_problems_names_each() {
        let problems = parse_campaign(&json!({
            "name": "", "audience": {"bucket": "a", "list": "b"}, "send_at": 3, "x": 1
        }))
        .unwrap_err();
        // Problems follow the body's key order, which depends on serde_json's map (sorted,
        // or insertion-ordered when a dependency turns on `preserve_order`): compare as sets.
        let mut fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["audience", "name", "send_at", "template", "x"]);
        let ok = parse_campaign(&json!({
            "name": "Launch", "audience": {"list": "news"}, "template": "launch"
        }))
        .unwrap();
        assert_eq!(
            (ok.audience_kind, ok.audience_id.as_str()),
            ("list", "news")
        );
    }
}

#[cfg(test)]
mod cursor_tests {
    use super::parse_cursor;

    #[test]
    fn a_cursor_is_micros_dot_id() {
        let (at, id) = parse_cursor("1700000000123456.spring_launch").expect("a cursor");
        assert_eq!(at.timestamp_micros(), 1_700_000_000_123_456);
        assert_eq!(id, "spring_launch");
        let (_, uuid) = parse_cursor("1.0b6c3f9e-1d2a-4c55-9a7e-2f1b1a0e4c11").expect("a uuid id");
        assert_eq!(uuid, "0b6c3f9e-1d2a-4c55-9a7e-2f1b1a0e4c11");
        for bad in [
            "",
            "12",
            "12.",
            ".x",
            "x.y",
            "1e3.x",
            "99999999999999999999.x",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
