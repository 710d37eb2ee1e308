//! `/v1/contacts/{key}`: upsert (ingest scope), read (read scope), soft-delete (admin), and
//! the contact's buckets and events.

use super::auth::{Admin, Auth, Ingest, Read};
use super::error::{ApiError, ErrorCode};
use super::extract::{ApiPath, ApiQuery, JsonBody};
use super::{page_limit, AppState};
use crate::ingest::{self, FieldError, Item, Payload};
use crate::queries;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/contacts/{key}",
            get(get_contact).put(put_contact).delete(delete_contact),
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

async fn get_contact(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    queries::contact(&state.pool, &state.config.schema, &key)
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
            })
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

async fn put_contact(
    State(state): State<AppState>,
    _auth: Auth<Ingest>,
    ApiPath(key): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let mut item = parse_put(&body).map_err(|p| ApiError::invalid(&p))?;
    let key = key.trim().to_owned();
    if key.is_empty() || key.chars().count() > 255 {
        return Err(ApiError::bad_parameter(
            "key",
            "must be 1 to 255 characters",
        ));
    }
    item.user_id = Some(key.clone());
    let schema = &state.config.schema;
    let revived = queries::undelete_contact(&state.pool, schema, &key).await?;
    let payload = Payload {
        items: vec![item],
        ignored: 0,
    };
    let outcome = ingest::write(&state.pool, schema, &payload, Utc::now()).await?;
    state.pending.touch(outcome.keys);
    if revived {
        state.pending.touch([key.clone()]);
    }
    queries::contact(&state.pool, schema, &key)
        .await?
        .map(Json)
        .ok_or_else(|| no_contact(&key))
}

async fn delete_contact(
    State(state): State<AppState>,
    _auth: Auth<Admin>,
    ApiPath(key): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    if queries::delete_contact(&state.pool, &state.config.schema, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_contact(&key))
    }
}

async fn contact_buckets(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let schema = &state.config.schema;
    if queries::contact(&state.pool, schema, &key).await?.is_none() {
        return Err(no_contact(&key));
    }
    let buckets = queries::contact_buckets(&state.pool, schema, &key).await?;
    Ok(Json(json!({ "key": key, "buckets": buckets })))
}

#[derive(Deserialize)]
struct EventsPage {
    after: Option<i64>,
    limit: Option<i64>,
}

async fn contact_events(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    ApiPath(key): ApiPath<String>,
    ApiQuery(page): ApiQuery<EventsPage>,
) -> Result<Json<Value>, ApiError> {
    let schema = &state.config.schema;
    let limit = page_limit(page.limit)?;
    if queries::contact(&state.pool, schema, &key).await?.is_none() {
        return Err(no_contact(&key));
    }
    let events =
        queries::contact_events(&state.pool, schema, &key, page.after.unwrap_or(0), limit).await?;
    let next = next_id(&events, limit);
    Ok(Json(json!({ "key": key, "events": events, "next": next })))
}

/// The cursor for the next page: the last id of a full page, else null.
pub fn next_id(rows: &Value, limit: i64) -> Value {
    match rows.as_array() {
        Some(list) if list.len() as i64 == limit => list
            .last()
            .and_then(|r| r.get("id"))
            .cloned()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}
