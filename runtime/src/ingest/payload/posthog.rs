//! PostHog: its webhook destination (one event or an array, each flat or nested) and its
//! capture API (`/batch/`, `/capture/`, `/e/`, `/i/v0/e/`, `/i/v1/analytics/events`), as
//! PostHog's SDKs send it. One mapping for both: `distinct_id` is the user id, `uuid` the
//! message id, `$set` (in `properties` or top level) and `person.properties` patch the
//! contact, `$set_once` sets what the contact does not have yet, `$identify` with
//! `$anon_distinct_id` and `$create_alias` merge contacts.

use crate::ingest::validate::{
    clamp, event_name, id_field, instant, normalize_email, object_field, skew_corrected, type_name,
    Errors, FieldError,
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
        if let Some(item) = event(v, Some(i), None, received, &mut errors) {
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

/// Validates a capture API body: `{"batch": [...]}` (with `api_key` and `sent_at`, as the
/// server SDKs send it), an array of events (as posthog-js sends it), or one event. The key
/// in the body is read by [`capture_key`]; `sent_at` corrects the sender's clock.
pub fn parse_capture(body: &Value, received: DateTime<Utc>) -> Result<Payload, Vec<FieldError>> {
    let mut errors = Errors::new();
    let mut payload = Payload::default();
    let (list, sent_at) = match body {
        Value::Object(object) => {
            let sent_at = instant(object.get("sent_at"), None, "sent_at", &mut errors);
            match object.get("batch").or(object.get("data")) {
                Some(list @ Value::Array(_)) => (events(list, &mut errors), sent_at),
                Some(other) => {
                    errors.add(
                        None,
                        "batch",
                        format!("expected an array, got {}", type_name(other)),
                    );
                    (vec![], sent_at)
                }
                None => (vec![body], sent_at),
            }
        }
        other => (events(other, &mut errors), None),
    };
    for (i, v) in list.into_iter().enumerate() {
        if let Some(item) = event(v, Some(i), sent_at, received, &mut errors) {
            payload.items.push(item);
        }
    }
    errors.into_result(payload)
}

/// The project API key a capture body carries: `api_key` or `token` at the top, else in
/// the first event (`api_key`, `token`, `properties.token`).
pub fn capture_key(body: &Value) -> Option<String> {
    fn key_in(v: &Value) -> Option<&str> {
        v.get("api_key")
            .or(v.get("token"))
            .or(v.get("properties").and_then(|p| p.get("token")))
            .and_then(Value::as_str)
    }
    let first = match body {
        Value::Array(list) => list.first(),
        Value::Object(o) => o
            .get("batch")
            .or(o.get("data"))
            .and_then(|b| b.as_array())
            .and_then(|l| l.first()),
        _ => None,
    };
    key_in(body)
        .or(first.and_then(key_in))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
}

/// One event, flat or nested (`event` an object: field names then carry `event.`).
fn event(
    v: &Value,
    at: Option<usize>,
    sent_at: Option<DateTime<Utc>>,
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
        event
            .get("distinct_id")
            .or(event.get("properties").and_then(|p| p.get("distinct_id"))),
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
    let contact = contact(outer, event, &properties, at, errors);
    let contact_once = set_once(outer, event, &properties);
    let link = link(name.as_deref(), &properties, at, &field, errors);
    if errors.count() > before {
        return None;
    }
    let occurred_at = match (occurred_at, sent_at) {
        (Some(t), Some(sent)) => Some(skew_corrected(t, sent, received)),
        (t, _) => clamp(t, received),
    };
    let (user_id, anonymous_id, name) = match link {
        Link::None => (user_id, None, name),
        Link::Identify(anon) => (user_id, Some(anon), name),
        // `alias(previous_id, distinct_id)`: the event's distinct_id is the previous id, its
        // `alias` the id the user is known by from now on. No event is stored.
        Link::Alias(alias) => (Some(alias), user_id, None),
    };
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
        occurred_at,
        message_id,
        email,
        contact,
        contact_once,
    })
}

/// The contact patch: `person.properties`, then the top-level `$set` (of the body and of
/// a nested event, as `posthog.set()` sends it), then `properties.$set` over it.
fn contact(
    outer: &Map<String, Value>,
    event: &Map<String, Value>,
    properties: &Map<String, Value>,
    at: Option<usize>,
    errors: &mut Errors,
) -> Map<String, Value> {
    let person = object_field(outer.get("person"), at, "person", errors);
    let mut contact = object_field(person.get("properties"), at, "person.properties", errors);
    for set in [outer.get("$set"), event.get("$set"), properties.get("$set")] {
        if let Some(Value::Object(set)) = set {
            contact.extend(set.clone());
        }
    }
    contact
}

/// `$set_once` (top level or in `properties`): set only where the contact has no value.
fn set_once(
    outer: &Map<String, Value>,
    event: &Map<String, Value>,
    properties: &Map<String, Value>,
) -> Map<String, Value> {
    let mut once = Map::new();
    for set in [
        properties.get("$set_once"),
        event.get("$set_once"),
        outer.get("$set_once"),
    ] {
        if let Some(Value::Object(set)) = set {
            for (k, v) in set {
                once.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    once
}

/// An identity link an event carries.
enum Link {
    None,
    /// `$identify` with `$anon_distinct_id`: that anonymous id merges into `distinct_id`.
    Identify(String),
    /// `$create_alias` with `properties.alias`: `distinct_id` merges into the alias.
    Alias(String),
}

fn link(
    name: Option<&str>,
    properties: &Map<String, Value>,
    at: Option<usize>,
    field: &dyn Fn(&str) -> String,
    errors: &mut Errors,
) -> Link {
    match name {
        Some("$identify") => identified_anonymous_id(
            name,
            properties,
            at,
            &field("properties.$anon_distinct_id"),
            errors,
        )
        .map_or(Link::None, Link::Identify),
        Some("$create_alias") => {
            match id_field(
                properties.get("alias"),
                true,
                at,
                &field("properties.alias"),
                errors,
            ) {
                Some(alias) => Link::Alias(alias),
                None => {
                    errors.add(
                        at,
                        &field("properties.alias"),
                        "missing: `$create_alias` needs the alias",
                    );
                    Link::None
                }
            }
        }
        _ => Link::None,
    }
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
