//! The Segment spec: `/v1/track`, `/v1/identify`, `/v1/alias`, `/v1/page`, `/v1/screen`,
//! `/v1/group` (one call each) and `/v1/batch` (calls carrying their own `type`).

use crate::ingest::validate::{
    clamp, event_name, id_field, instant, normalize_email, object_field, skew_corrected, type_name,
    Errors, FieldError,
};
use crate::ingest::{Item, Payload, MAX_BATCH};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// What a batch gives every call in it: `sentAt` and `context`.
#[derive(Clone, Copy)]
struct BatchDefaults<'a> {
    sent_at: Option<DateTime<Utc>>,
    context: Option<&'a Value>,
}

/// Validates a Segment-spec payload. `kind` is the route's call type (`track`, …), `None`
/// for `/v1/batch` whose items carry their own `type`. Unknown fields are ignored (SDKs
/// send many); `page` and `screen` calls become `$pageview` / `$screen` events with the
/// page name in `properties.name`.
pub fn parse_segment(
    body: &Value,
    kind: Option<&str>,
    received: DateTime<Utc>,
) -> Result<Payload, Vec<FieldError>> {
    let mut errors = Errors::new();
    let mut payload = Payload::default();
    let Some(object) = body.as_object() else {
        errors.add(
            None,
            "",
            format!("expected a JSON object, got {}", type_name(body)),
        );
        return Err(errors.list);
    };
    let sent_at = instant(object.get("sentAt"), None, "sentAt", &mut errors);
    match kind {
        Some(kind) => {
            // A single call's own `context` is read by the call itself.
            let defaults = BatchDefaults {
                sent_at,
                context: None,
            };
            call(
                object,
                kind,
                Some(0),
                defaults,
                received,
                &mut payload,
                &mut errors,
            );
        }
        None => {
            let defaults = BatchDefaults {
                sent_at,
                context: object.get("context"),
            };
            batch(
                object.get("batch"),
                defaults,
                received,
                &mut payload,
                &mut errors,
            );
        }
    }
    errors.into_result(payload)
}

/// `{"batch": [...]}`: at most [`MAX_BATCH`] calls, each an object with a `type`.
fn batch(
    list: Option<&Value>,
    defaults: BatchDefaults<'_>,
    received: DateTime<Utc>,
    payload: &mut Payload,
    errors: &mut Errors,
) {
    let list = match list {
        Some(Value::Array(list)) if list.len() > MAX_BATCH => {
            return errors.add(
                None,
                "batch",
                format!("{} calls: at most {MAX_BATCH} per request", list.len()),
            )
        }
        Some(Value::Array(list)) => list,
        Some(other) => {
            return errors.add(
                None,
                "batch",
                format!("expected an array, got {}", type_name(other)),
            )
        }
        None => return errors.add(None, "batch", "missing: a batch is {\"batch\": [...]}"),
    };
    for (i, v) in list.iter().enumerate() {
        let Some(item) = v.as_object() else {
            errors.add(
                Some(i),
                "",
                format!("expected an object, got {}", type_name(v)),
            );
            continue;
        };
        if let Some(kind) = call_type(item, Some(i), errors) {
            call(item, kind, Some(i), defaults, received, payload, errors);
        }
    }
}

/// A batch item's `type`.
fn call_type<'a>(
    item: &'a Map<String, Value>,
    at: Option<usize>,
    errors: &mut Errors,
) -> Option<&'a str> {
    match item.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(other) => {
            errors.add(
                at,
                "type",
                format!("expected a string, got {}", type_name(other)),
            );
            None
        }
        None => {
            errors.add(
                at,
                "type",
                "missing: track, identify, alias, page, screen or group",
            );
            None
        }
    }
}

/// What one call means, by its type.
struct Meaning {
    event: Option<String>,
    merge: bool,
}

/// One call: ids, context traits, the meaning of its type, its time; pushed to `payload`
/// when it has no problem (`group` only counts as ignored).
fn call(
    item: &Map<String, Value>,
    kind: &str,
    at: Option<usize>,
    defaults: BatchDefaults<'_>,
    received: DateTime<Utc>,
    payload: &mut Payload,
    errors: &mut Errors,
) {
    let before = errors.count();
    let user_id = id_field(item.get("userId"), true, at, "userId", errors);
    let mut anonymous_id = id_field(item.get("anonymousId"), true, at, "anonymousId", errors);
    let context = context(item, defaults, at, errors);
    let mut contact = object_field(context.get("traits"), at, "context.traits", errors);
    let mut properties = object_field(item.get("properties"), at, "properties", errors);
    let meaning = match kind {
        "track" => Meaning {
            event: event_name(item.get("event"), at, "event", errors),
            merge: false,
        },
        "page" | "screen" => page(item, kind, &mut properties),
        "identify" => {
            contact.extend(object_field(item.get("traits"), at, "traits", errors));
            Meaning {
                event: None,
                merge: true,
            }
        }
        "alias" => {
            anonymous_id = alias(item, user_id.is_some(), at, errors);
            Meaning {
                event: None,
                merge: true,
            }
        }
        "group" => {
            if errors.count() == before {
                payload.ignored += 1;
            }
            return;
        }
        other => {
            errors.add(
                at,
                "type",
                format!("unknown call type `{other}`: expected track, identify, alias, page, screen or group"),
            );
            return;
        }
    };
    if user_id.is_none() && anonymous_id.is_none() && kind != "alias" {
        errors.add(at, "userId", "missing: give userId or anonymousId");
    }
    let occurred_at = event_time(item, defaults, at, received, errors);
    let message_id = id_field(item.get("messageId"), true, at, "messageId", errors);
    if errors.count() > before {
        return;
    }
    let email = contact
        .get("email")
        .and_then(Value::as_str)
        .and_then(normalize_email);
    payload.items.push(Item {
        user_id,
        anonymous_id,
        merge: meaning.merge,
        event: meaning.event,
        properties,
        occurred_at,
        message_id,
        email,
        contact,
        contact_once: Map::new(),
    });
}

/// The call's `context`, else the batch's.
fn context(
    item: &Map<String, Value>,
    defaults: BatchDefaults<'_>,
    at: Option<usize>,
    errors: &mut Errors,
) -> Map<String, Value> {
    match item.get("context").or(defaults.context) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(other) => {
            errors.add(
                at,
                "context",
                format!("expected an object, got {}", type_name(other)),
            );
            Map::new()
        }
    }
}

/// `page` / `screen`: a `$pageview` / `$screen` event, with the call's `name` and
/// `category` in the properties unless they already have them.
fn page(item: &Map<String, Value>, kind: &str, properties: &mut Map<String, Value>) -> Meaning {
    for field in ["name", "category"] {
        if let Some(v @ Value::String(_)) = item.get(field) {
            properties
                .entry(field.to_owned())
                .or_insert_with(|| v.clone());
        }
    }
    let event = if kind == "page" {
        "$pageview"
    } else {
        "$screen"
    };
    Meaning {
        event: Some(event.to_owned()),
        merge: false,
    }
}

/// `alias`: `previousId` is the anonymous side of the merge; both ids are required.
fn alias(
    item: &Map<String, Value>,
    has_user_id: bool,
    at: Option<usize>,
    errors: &mut Errors,
) -> Option<String> {
    let previous = id_field(item.get("previousId"), true, at, "previousId", errors);
    if previous.is_none() {
        errors.add(
            at,
            "previousId",
            "missing: alias needs previousId and userId",
        );
    }
    if !has_user_id {
        errors.add(at, "userId", "missing: alias needs previousId and userId");
    }
    previous
}

/// `timestamp` (else `originalTimestamp`) shifted by how far the sender's `sentAt` is from
/// our receive time (its clock may be off), then clamped to 1970 and the receive time.
fn event_time(
    item: &Map<String, Value>,
    defaults: BatchDefaults<'_>,
    at: Option<usize>,
    received: DateTime<Utc>,
    errors: &mut Errors,
) -> Option<DateTime<Utc>> {
    let timestamp = instant(item.get("timestamp"), at, "timestamp", errors).or(instant(
        item.get("originalTimestamp"),
        at,
        "originalTimestamp",
        errors,
    ));
    let sent_at = instant(item.get("sentAt"), at, "sentAt", errors).or(defaults.sent_at);
    match (timestamp, sent_at) {
        (Some(t), Some(sent)) => Some(skew_corrected(t, sent, received)),
        (t, _) => clamp(t, received),
    }
}
