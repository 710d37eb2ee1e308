//! PostHog's webhook destination: one event or an array, each flat or nested.

use crate::ingest::validate::{
    clamp, event_name, id_field, instant, normalize_email, object_field, type_name, Errors,
    FieldError,
};
use crate::ingest::{Item, Payload, MAX_BATCH};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Validates a PostHog webhook payload: the flat form (`event` is the name, with
/// `distinct_id`, `uuid`, `timestamp`, `properties`, `person.properties`), the nested form
/// of PostHog's default webhook body (`{"event": {...}, "person": {...}}`), or an array of
/// either. `distinct_id` is the contact's user id; `person.properties` and `$set` patch the
/// contact; a `$identify` with `$anon_distinct_id` merges the anonymous contact.
pub fn parse_posthog(body: &Value, received: DateTime<Utc>) -> Result<Payload, Vec<FieldError>> {
    let mut errors = Errors::new();
    let mut payload = Payload::default();
    for (i, v) in events(body, &mut errors).into_iter().enumerate() {
        if let Some(item) = event(v, Some(i), received, &mut errors) {
            payload.items.push(item);
        }
    }
    errors.into_result(payload)
}

/// The events of the body: the array's elements (1 to [`MAX_BATCH`]), or the body itself.
fn events<'a>(body: &'a Value, errors: &mut Errors) -> Vec<&'a Value> {
    match body {
        Value::Array(list) if list.is_empty() => {
            errors.add(None, "", "must not be empty");
            vec![]
        }
        Value::Array(list) if list.len() > MAX_BATCH => {
            errors.add(
                None,
                "",
                format!("{} events: at most {MAX_BATCH} per request", list.len()),
            );
            vec![]
        }
        Value::Array(list) => list.iter().collect(),
        other => vec![other],
    }
}

/// One event, flat or nested (`event` an object: field names then carry `event.`).
fn event(
    v: &Value,
    at: Option<usize>,
    received: DateTime<Utc>,
    errors: &mut Errors,
) -> Option<Item> {
    let before = errors.count();
    let Some(outer) = v.as_object() else {
        errors.add(at, "", format!("expected an object, got {}", type_name(v)));
        return None;
    };
    let (event, prefix) = match outer.get("event") {
        Some(Value::Object(inner)) => (inner, "event."),
        _ => (outer, ""),
    };
    let field = |name: &str| format!("{prefix}{name}");
    let name = event_name(event.get("event"), at, &field("event"), errors);
    let user_id = id_field(
        event.get("distinct_id"),
        true,
        at,
        &field("distinct_id"),
        errors,
    );
    if user_id.is_none() {
        errors.add(
            at,
            &field("distinct_id"),
            "missing: every event needs a distinct_id",
        );
    }
    let message_id = id_field(event.get("uuid"), false, at, &field("uuid"), errors);
    let occurred_at = instant(event.get("timestamp"), at, &field("timestamp"), errors);
    let properties = object_field(event.get("properties"), at, &field("properties"), errors);
    let contact = contact(outer, &properties, at, errors);
    let anonymous_id = identified_anonymous_id(
        name.as_deref(),
        &properties,
        at,
        &field("properties.$anon_distinct_id"),
        errors,
    );
    if errors.count() > before {
        return None;
    }
    let email = contact
        .get("email")
        .and_then(Value::as_str)
        .and_then(normalize_email);
    Some(Item {
        user_id,
        merge: anonymous_id.is_some(),
        anonymous_id,
        event: name,
        properties,
        occurred_at: clamp(occurred_at, received),
        message_id,
        email,
        contact,
    })
}

/// The contact patch: `person.properties`, then `properties.$set` over it.
fn contact(
    outer: &Map<String, Value>,
    properties: &Map<String, Value>,
    at: Option<usize>,
    errors: &mut Errors,
) -> Map<String, Value> {
    let person = object_field(outer.get("person"), at, "person", errors);
    let mut contact = object_field(person.get("properties"), at, "person.properties", errors);
    if let Some(Value::Object(set)) = properties.get("$set") {
        contact.extend(set.clone());
    }
    contact
}

/// The anonymous id a `$identify` folds into the user: `properties.$anon_distinct_id`.
/// Anything but a non-empty string is ignored (PostHog sends it only on `$identify`); a
/// string is an id like any other (length).
fn identified_anonymous_id(
    name: Option<&str>,
    properties: &Map<String, Value>,
    at: Option<usize>,
    field: &str,
    errors: &mut Errors,
) -> Option<String> {
    match (name, properties.get("$anon_distinct_id")) {
        (Some("$identify"), Some(v @ Value::String(_))) => {
            id_field(Some(v), true, at, field, errors)
        }
        _ => None,
    }
}
