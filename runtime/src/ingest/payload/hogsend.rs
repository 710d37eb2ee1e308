//! `POST /v1/events`: hogsend's own body (one event, or `{"events": [...]}`), with the
//! alias field names of docs/api.md#post-v1events accepted beside the canonical ones.

use crate::ingest::validate::{
    clamp, email_field, event_name, id_field, instant, object_field, type_name, Errors, FieldError,
};
use crate::ingest::{Item, Payload, MAX_BATCH};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The fields of a `/v1/events` item: canonical names and their aliases (docs/api.md),
/// each with the canonical name it stands for.
const EVENT_FIELDS: [(&str, &str); 15] = [
    ("user_id", "user_id"),
    ("userId", "user_id"),
    ("anonymous_id", "anonymous_id"),
    ("anonymousId", "anonymous_id"),
    ("event", "event"),
    ("name", "event"),
    ("properties", "properties"),
    ("eventProperties", "properties"),
    ("timestamp", "timestamp"),
    ("message_id", "message_id"),
    ("idempotencyKey", "message_id"),
    ("email", "email"),
    ("contact", "contact"),
    ("contactProperties", "contact"),
    ("messageId", "message_id"),
];

/// Validates a `/v1/events` body: one event, or `{"events": [...]}` with 1 to 1,000. The
/// `Idempotency-Key` header is the message id of a single event, and `<header>:<index>` of
/// a batch item without its own.
pub fn parse_events(
    body: &Value,
    idempotency_key: Option<&str>,
    received: DateTime<Utc>,
) -> Result<Payload, Vec<FieldError>> {
    let mut errors = Errors::new();
    let mut items = Vec::new();
    let Some(object) = body.as_object() else {
        errors.add(
            None,
            "",
            format!("expected a JSON object, got {}", type_name(body)),
        );
        return Err(errors.list);
    };
    if let Some(events) = object.get("events") {
        batch(
            object,
            events,
            idempotency_key,
            received,
            &mut items,
            &mut errors,
        );
    } else if let Some(item) = event_item(
        body,
        Some(0),
        idempotency_key.map(str::to_owned),
        received,
        &mut errors,
    ) {
        items.push(item);
    }
    errors.into_result(Payload {
        items,
        ignored: 0,
        publishable: false,
    })
}

/// `{"events": [...]}`: nothing else beside the list, 1 to [`MAX_BATCH`] events.
fn batch(
    object: &Map<String, Value>,
    events: &Value,
    idempotency_key: Option<&str>,
    received: DateTime<Utc>,
    items: &mut Vec<Item>,
    errors: &mut Errors,
) {
    for key in object.keys().filter(|k| *k != "events") {
        errors.add(
            None,
            key,
            "unknown field (a batch is {\"events\": [...]} only)",
        );
    }
    match events {
        Value::Array(list) if list.is_empty() => errors.add(None, "events", "must not be empty"),
        Value::Array(list) if list.len() > MAX_BATCH => errors.add(
            None,
            "events",
            format!("{} events: at most {MAX_BATCH} per request", list.len()),
        ),
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                let fallback = idempotency_key.map(|k| format!("{k}:{i}"));
                if let Some(item) = event_item(v, Some(i), fallback, received, errors) {
                    items.push(item);
                }
            }
        }
        other => errors.add(
            None,
            "events",
            format!("expected an array, got {}", type_name(other)),
        ),
    }
}

/// The item's fields by canonical name, each with the name the request used; unknown and
/// doubly given fields are problems.
fn canonical_fields<'a>(
    object: &'a Map<String, Value>,
    at: Option<usize>,
    errors: &mut Errors,
) -> BTreeMap<&'static str, (&'a str, &'a Value)> {
    let mut fields: BTreeMap<&'static str, (&'a str, &'a Value)> = BTreeMap::new();
    for (key, value) in object {
        match EVENT_FIELDS.iter().find(|(name, _)| name == key) {
            None => errors.add(at, key, "unknown field"),
            Some((_, canonical)) => {
                if let Some((other, _)) = fields.get(canonical) {
                    errors.add(
                        at,
                        key,
                        format!("`{key}` and `{other}` are the same field; give one"),
                    );
                } else {
                    fields.insert(canonical, (key.as_str(), value));
                }
            }
        }
    }
    fields
}

fn event_item(
    v: &Value,
    at: Option<usize>,
    fallback_id: Option<String>,
    received: DateTime<Utc>,
    errors: &mut Errors,
) -> Option<Item> {
    let before = errors.count();
    let Some(object) = v.as_object() else {
        errors.add(
            at,
            "",
            format!("expected an event object, got {}", type_name(v)),
        );
        return None;
    };
    let fields = canonical_fields(object, at, errors);
    let get = |name: &str| fields.get(name).map(|(_, v)| *v);
    let label = |name: &'static str| fields.get(name).map_or(name, |(k, _)| k);
    let user_id = id_field(get("user_id"), false, at, label("user_id"), errors);
    let anonymous_id = id_field(
        get("anonymous_id"),
        false,
        at,
        label("anonymous_id"),
        errors,
    );
    if user_id.is_none()
        && anonymous_id.is_none()
        && get("user_id").is_none_or(Value::is_null)
        && get("anonymous_id").is_none_or(Value::is_null)
    {
        errors.add(at, "user_id", "missing: give user_id or anonymous_id");
    }
    let event = event_name(get("event"), at, label("event"), errors);
    let properties = object_field(get("properties"), at, label("properties"), errors);
    let contact = object_field(get("contact"), at, label("contact"), errors);
    let occurred_at = instant(get("timestamp"), at, "timestamp", errors);
    let message_id =
        id_field(get("message_id"), false, at, label("message_id"), errors).or(fallback_id);
    let email = email_field(get("email"), at, "email", errors);
    if errors.count() > before {
        return None;
    }
    Some(Item {
        user_id,
        anonymous_id,
        merge: false,
        event,
        properties,
        occurred_at: clamp(occurred_at, received),
        message_id,
        email,
        contact,
        contact_once: Map::new(),
    })
}
