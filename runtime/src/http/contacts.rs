//! `/v1/contacts/{key}`: upsert (ingest scope), read (read scope), soft-delete (admin), and
//! the contact's buckets and events.

use super::auth::{Admin, Auth, Ingest, Read};
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiPath, ApiQuery, JsonBody, NdjsonBody};
use super::{page_limit, AppState};
use crate::import;
use crate::ingest::{self, FieldError, Item};
use crate::queries::{self, Contact, ContactMembership, StoredEvent};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/contacts/{key}",
            get(get_contact)
                .put(put_contact)
                .delete(delete_contact)
                .post(import_contacts),
        )
        .route("/v1/contacts/{key}/buckets", get(contact_buckets))
        .route("/v1/contacts/{key}/events", get(contact_events))
}

fn no_contact(key: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ContactNotFound,
        format!("no contact with key `{key}`"),
    )
}

/// A live contact.
#[utoipa::path(get, path = "/v1/contacts/{key}", tag = "contacts",
    params(("key" = String, Path, description = "The contact's key")),
    responses((status = 200, description = "The contact", body = Contact),
        (status = 404, description = "`contact_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn get_contact(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Contact>, ApiError> {
    queries::contact(&state.pool, &key)
        .await?
        .map(Json)
        .ok_or_else(|| no_contact(&key))
}

/// `{"email"?, "properties"?}`: properties merge shallowly into the stored ones and `null`
/// removes a key; the email is trimmed and lower-cased. Creates the contact (the key as its
/// external id) when there is none, and brings back a deleted one.
fn parse_put(body: &Value) -> Result<Item, Vec<FieldError>> {
    let mut problems = Vec::new();
    let mut item = Item::default();
    let Some(object) = body.as_object() else {
        return Err(vec![FieldError {
            index: None,
            field: String::new(),
            message: "expected a JSON object".into(),
        }]);
    };
    for (field, value) in object {
        let mut bad = |message: String| {
            problems.push(FieldError {
                index: None,
                field: field.clone(),
                message,
            });
        };
        match (field.as_str(), value) {
            ("email", Value::Null) => {}
            ("email", Value::String(s)) => match ingest::normalize_email(s) {
                Some(e) => item.email = Some(e),
                None => bad(format!("`{s}` is not an email address")),
            },
            ("email", _) => bad("expected a string".into()),
            ("properties", Value::Object(m)) => item.contact = m.clone(),
            ("properties", Value::Null) => {}
            ("properties", _) => bad("expected an object".into()),
            _ => bad("unknown field (expected `email` and `properties`)".into()),
        }
    }
    if problems.is_empty() {
        Ok(item)
    } else {
        Err(problems)
    }
}

/// The body of `PUT /v1/contacts/{key}`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the body read by `parse_put`
pub(super) struct ContactUpdate {
    /// Trimmed and lower-cased; `null` leaves it.
    email: Option<String>,
    /// Merged shallowly into the stored properties; a `null` value removes the key.
    #[schema(value_type = Option<Object>)]
    properties: Option<Value>,
}

/// Creates or updates a contact (the key as its external id); brings a deleted one back.
#[utoipa::path(put, path = "/v1/contacts/{key}", tag = "contacts",
    params(("key" = String, Path, description = "The contact's key (1 to 255 characters)")),
    request_body = ContactUpdate,
    responses((status = 200, description = "The contact after the update", body = Contact),
        (status = 400, description = "`invalid_request`, `invalid_parameter`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn put_contact(
    State(state): State<AppState>,
    _auth: Auth<Ingest>,
    ApiPath(key): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Contact>, ApiError> {
    let mut item = parse_put(&body).map_err(|p| ApiError::invalid(&p))?;
    let key = key.trim().to_owned();
    if key.is_empty() || key.chars().count() > 255 {
        return Err(ApiError::bad_parameter(
            "key",
            "must be 1 to 255 characters",
        ));
    }
    item.user_id = Some(key.clone());
    // The same upsert as an import's batch (`ingest::upsert_contacts`): a deleted contact
    // comes back, an id another contact absorbed (identify/alias) reaches that contact.
    let upserted = ingest::upsert(&state.pool, &[item], Utc::now()).await?;
    state.pending.touch(upserted.changed);
    let reached = upserted
        .keys
        .into_iter()
        .next()
        .unwrap_or_else(|| key.clone());
    queries::contact(&state.pool, &reached)
        .await?
        .map(Json)
        .ok_or_else(|| no_contact(&key))
}

/// Imports contacts from an NDJSON body: one object per line, read like a line of
/// `hogsend import contacts` (docs/cli.md#hogsend-import-contacts). Every line is validated
/// first; the good ones are written in batches of 5,000, each one transaction (the upsert
/// of `PUT /v1/contacts/{key}`), and the bad ones reported by line. Re-sending the same
/// body changes nothing (every row `unchanged`).
///
/// Served on `POST /v1/contacts/{key}` for the key `import` (a contact keyed `import`
/// stays readable with `GET`); any other key answers 405.
#[utoipa::path(post, path = "/v1/contacts/import", tag = "contacts",
    request_body(content = String, content_type = "application/x-ndjson",
        description = "One JSON object per line: a key (`key`, `user_id`, `external_id`, \
            `distinct_id` or `id`), `email`, `timezone`, `properties`, `lists`, \
            `subscriptions`; other fields are properties"),
    responses((status = 200, description = "What was imported, with the bad lines", body = import::Summary),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn import_contacts(
    State(state): State<AppState>,
    _auth: Auth<Ingest>,
    ApiPath(key): ApiPath<String>,
    NdjsonBody(body): NdjsonBody,
) -> Result<Json<import::Summary>, ApiError> {
    if key != "import" {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not take that method",
        ));
    }
    let pending = state.pending.clone();
    let summary = import::import(
        &state.pool,
        &body[..],
        import::Format::Ndjson,
        import::DEFAULT_BATCH_SIZE,
        |progress| {
            if let import::Progress::Committed { keys, .. } = progress {
                pending.touch(keys.iter().cloned());
            }
        },
    )
    .await
    .map_err(|e| match e {
        import::ImportError::Database(e) => ApiError::from(e),
        other => ApiError::internal(other),
    })?;
    Ok(Json(summary))
}

/// Soft-deletes a contact: it leaves every bucket at once, silently.
#[utoipa::path(delete, path = "/v1/contacts/{key}", tag = "contacts",
    params(("key" = String, Path, description = "The contact's key")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "`contact_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn delete_contact(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if queries::delete_contact(&state.pool, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_contact(&key))
    }
}

/// The buckets a contact is in now.
#[derive(Serialize, ToSchema)]
pub(super) struct ContactBuckets {
    /// The contact's key.
    key: String,
    /// Its current memberships, by bucket id.
    buckets: Vec<ContactMembership>,
}

/// The buckets a contact is in now.
#[utoipa::path(get, path = "/v1/contacts/{key}/buckets", tag = "contacts",
    params(("key" = String, Path, description = "The contact's key")),
    responses((status = 200, description = "Its memberships", body = ContactBuckets),
        (status = 404, description = "`contact_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn contact_buckets(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<ContactBuckets>, ApiError> {
    if queries::contact(&state.pool, &key).await?.is_none() {
        return Err(no_contact(&key));
    }
    let buckets = queries::contact_buckets(&state.pool, &key).await?;
    Ok(Json(ContactBuckets { key, buckets }))
}

/// The query of an id-keyed page.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct IdPage {
    /// Rows with an id greater than this (default 0: from the start).
    pub(super) after: Option<i64>,
    /// Rows per page, 1 to 1000 (default 100).
    pub(super) limit: Option<i64>,
}

/// A page of a contact's events.
#[derive(Serialize, ToSchema)]
pub(super) struct ContactEvents {
    /// The contact's key.
    key: String,
    /// Its events, oldest first.
    events: Vec<StoredEvent>,
    /// The `after` of the next page; null when this page is the last.
    next: Option<i64>,
}

/// A contact's events, oldest first (keyset pages by event id).
#[utoipa::path(get, path = "/v1/contacts/{key}/events", tag = "contacts",
    params(("key" = String, Path, description = "The contact's key"), IdPage),
    responses((status = 200, description = "A page of events", body = ContactEvents),
        (status = 400, description = "`invalid_parameter`", body = ErrorBody),
        (status = 404, description = "`contact_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("basic" = [])))]
pub(super) async fn contact_events(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(page): ApiQuery<IdPage>,
) -> Result<Json<ContactEvents>, ApiError> {
    let limit = page_limit(page.limit)?;
    if queries::contact(&state.pool, &key).await?.is_none() {
        return Err(no_contact(&key));
    }
    let events = queries::contact_events(&state.pool, &key, page.after.unwrap_or(0), limit).await?;
    let next = next_cursor(&events, limit, |e| e.id);
    Ok(Json(ContactEvents { key, events, next }))
}

/// The cursor for the next page: the last row's of a full page, else none.
pub fn next_cursor<T, C>(rows: &[T], limit: i64, cursor: impl Fn(&T) -> C) -> Option<C> {
    if rows.len() as i64 == limit {
        rows.last().map(cursor)
    } else {
        None
    }
}
