//! Ingest: the payload families the API accepts → validated [`Item`]s → one set-based
//! transaction.
//!
//! Validation is all-or-nothing: every item is checked before anything is written, and a
//! request with any bad item is refused whole with one [`FieldError`] per problem (item
//! index and field). The write is a handful of statements per request, whatever its size:
//! merges (identify/alias, rare), one anonymous-id resolution, one contact insert, one
//! contact patch, one event insert (known message ids are skipped first, so replays store
//! nothing; a concurrent replay is caught by the unique index and retried).

use crate::db::schema_ident;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgPool;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The most items one request may carry.
pub const MAX_BATCH: usize = 1000;
const MAX_ID_CHARS: usize = 255;
const MAX_EVENT_CHARS: usize = 200;
/// Event-name prefixes only hogsend itself may use.
pub const RESERVED_PREFIXES: [&str; 2] = ["bucket:", "hogsend:"];

/// One problem with a request: the item (`None` for the request as a whole), the field and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The item's position in the request (`None`: the request as a whole).
    pub index: Option<usize>,
    /// The field as the request named it.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// One validated thing to write: an event, a contact update, an identity link, or several.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    /// The user id (external id), if given.
    pub user_id: Option<String>,
    /// The anonymous id, if given.
    pub anonymous_id: Option<String>,
    /// Fold the anonymous id's contact into the user id's (identify, alias).
    pub merge: bool,
    /// The event to store, if any (identify and alias store none).
    pub event: Option<String>,
    /// The event's properties.
    pub properties: Map<String, Value>,
    /// When it happened: already skew-corrected and clamped to the receive time.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The idempotency key of the event.
    pub message_id: Option<String>,
    /// Lower-cased and trimmed.
    pub email: Option<String>,
    /// A shallow patch of the contact's properties; `null` removes a key.
    pub contact: Map<String, Value>,
}

/// A validated request.
#[derive(Debug, Default)]
pub struct Payload {
    /// The items, in request order.
    pub items: Vec<Item>,
    /// Items of a kind hogsend accepts and ignores (Segment `group`).
    pub ignored: usize,
}

/// What a write did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Items accepted (including duplicates and ignored ones).
    pub accepted: usize,
    /// Events stored.
    pub stored: u64,
    /// Events not stored because their message id was already known.
    pub duplicates: u64,
    /// Contact keys whose data changed: the real-time pass re-evaluates them.
    #[serde(skip)]
    pub keys: Vec<String>,
}

struct Errors {
    list: Vec<FieldError>,
}

impl Errors {
    fn new() -> Errors {
        Errors { list: Vec::new() }
    }
    fn add(&mut self, index: Option<usize>, field: &str, message: impl Into<String>) {
        self.list.push(FieldError {
            index,
            field: field.to_owned(),
            message: message.into(),
        });
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An id: a non-empty string (numbers too when `numbers_ok`, as Segment SDKs send them).
fn id_field(
    v: Option<&Value>,
    numbers_ok: bool,
    at: Option<usize>,
    field: &str,
    errors: &mut Errors,
) -> Option<String> {
    let text = match v? {
        Value::Null => return None,
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) if numbers_ok => n.to_string(),
        other => {
            errors.add(
                at,
                field,
                format!("expected a string, got {}", type_name(other)),
            );
            return None;
        }
    };
    if text.is_empty() {
        if numbers_ok {
            return None;
        }
        errors.add(at, field, "must not be empty");
        return None;
    }
    if text.chars().count() > MAX_ID_CHARS {
        errors.add(at, field, format!("longer than {MAX_ID_CHARS} characters"));
        return None;
    }
    Some(text)
}

fn event_name(
    v: Option<&Value>,
    at: Option<usize>,
    field: &str,
    errors: &mut Errors,
) -> Option<String> {
    match v {
        None | Some(Value::Null) => {
            errors.add(at, field, "missing: every event needs a name");
            None
        }
        Some(Value::String(s)) => {
            let name = s.trim();
            if name.is_empty() {
                errors.add(at, field, "must not be empty");
                None
            } else if name.chars().count() > MAX_EVENT_CHARS {
                errors.add(
                    at,
                    field,
                    format!("longer than {MAX_EVENT_CHARS} characters"),
                );
                None
            } else if RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
                errors.add(
                    at,
                    field,
                    format!(
                        "`{name}` is reserved: names starting with `bucket:` or `hogsend:` are made by hogsend itself"
                    ),
                );
                None
            } else {
                Some(name.to_owned())
            }
        }
        Some(other) => {
            errors.add(
                at,
                field,
                format!("expected a string, got {}", type_name(other)),
            );
            None
        }
    }
}

fn object_field(
    v: Option<&Value>,
    at: Option<usize>,
    field: &str,
    errors: &mut Errors,
) -> Map<String, Value> {
    match v {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            errors.add(
                at,
                field,
                format!("expected an object, got {}", type_name(other)),
            );
            Map::new()
        }
    }
}

fn instant(
    v: Option<&Value>,
    at: Option<usize>,
    field: &str,
    errors: &mut Errors,
) -> Option<DateTime<Utc>> {
    match v? {
        Value::Null => None,
        Value::String(s) => match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                errors.add(
                    at,
                    field,
                    format!("not an RFC 3339 timestamp ({e}); e.g. 2026-01-31T09:00:00Z"),
                );
                None
            }
        },
        other => {
            errors.add(
                at,
                field,
                format!(
                    "expected an RFC 3339 timestamp string, got {}",
                    type_name(other)
                ),
            );
            None
        }
    }
}

/// `email`: trimmed, lower-cased, roughly `local@domain`.
fn email_field(
    v: Option<&Value>,
    at: Option<usize>,
    field: &str,
    errors: &mut Errors,
) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => {
            let email = normalize_email(s);
            if email.is_none() {
                errors.add(at, field, format!("`{s}` is not an email address"));
            }
            email
        }
        other => {
            errors.add(
                at,
                field,
                format!("expected a string, got {}", type_name(other)),
            );
            None
        }
    }
}

/// Trims and lower-cases an email address; `None` when it does not look like one.
pub fn normalize_email(text: &str) -> Option<String> {
    let email = text.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 320
        && !email.chars().any(char::is_whitespace);
    ok.then_some(email)
}

/// A timestamp corrected for the sender's clock and never later than `received`.
fn clamp(t: Option<DateTime<Utc>>, received: DateTime<Utc>) -> Option<DateTime<Utc>> {
    t.map(|t| t.min(received))
}

// ---------------------------------------------------------------------------------------
// POST /v1/events
// ---------------------------------------------------------------------------------------

/// The fields of a `/v1/events` item: contract names and the reference engine's names.
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
) -> std::result::Result<Payload, Vec<FieldError>> {
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
        for key in object.keys().filter(|k| *k != "events") {
            errors.add(
                None,
                key,
                "unknown field (a batch is {\"events\": [...]} only)",
            );
        }
        match events {
            Value::Array(list) if list.is_empty() => {
                errors.add(None, "events", "must not be empty")
            }
            Value::Array(list) if list.len() > MAX_BATCH => errors.add(
                None,
                "events",
                format!("{} events: at most {MAX_BATCH} per request", list.len()),
            ),
            Value::Array(list) => {
                for (i, v) in list.iter().enumerate() {
                    let fallback = idempotency_key.map(|k| format!("{k}:{i}"));
                    if let Some(item) = event_item(v, Some(i), fallback, received, &mut errors) {
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
    } else if let Some(item) = event_item(
        body,
        Some(0),
        idempotency_key.map(str::to_owned),
        received,
        &mut errors,
    ) {
        items.push(item);
    }
    if errors.list.is_empty() {
        Ok(Payload { items, ignored: 0 })
    } else {
        Err(errors.list)
    }
}

fn event_item(
    v: &Value,
    at: Option<usize>,
    fallback_id: Option<String>,
    received: DateTime<Utc>,
    errors: &mut Errors,
) -> Option<Item> {
    let before = errors.list.len();
    let Some(object) = v.as_object() else {
        errors.add(
            at,
            "",
            format!("expected an event object, got {}", type_name(v)),
        );
        return None;
    };
    let mut fields: BTreeMap<&str, (&str, &Value)> = BTreeMap::new();
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
    if errors.list.len() > before {
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
    })
}

// ---------------------------------------------------------------------------------------
// Segment: /v1/track, /v1/identify, /v1/alias, /v1/page, /v1/screen, /v1/group, /v1/batch
// ---------------------------------------------------------------------------------------

/// Validates a Segment-spec payload. `kind` is the route's call type (`track`, …), `None`
/// for `/v1/batch` whose items carry their own `type`. Unknown fields are ignored (SDKs
/// send many); `page` and `screen` calls become `$pageview` / `$screen` events with the
/// page name in `properties.name`.
pub fn parse_segment(
    body: &Value,
    kind: Option<&str>,
    received: DateTime<Utc>,
) -> std::result::Result<Payload, Vec<FieldError>> {
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
    let batch_sent_at = instant(object.get("sentAt"), None, "sentAt", &mut errors);
    let batch_context = object.get("context");
    match kind {
        Some(kind) => {
            segment_item(
                object,
                kind,
                Some(0),
                (batch_sent_at, None),
                received,
                &mut payload,
                &mut errors,
            );
        }
        None => match object.get("batch") {
            Some(Value::Array(list)) if list.len() > MAX_BATCH => errors.add(
                None,
                "batch",
                format!("{} calls: at most {MAX_BATCH} per request", list.len()),
            ),
            Some(Value::Array(list)) => {
                for (i, v) in list.iter().enumerate() {
                    let Some(item) = v.as_object() else {
                        errors.add(
                            Some(i),
                            "",
                            format!("expected an object, got {}", type_name(v)),
                        );
                        continue;
                    };
                    let kind = match item.get("type") {
                        Some(Value::String(t)) => t.as_str(),
                        Some(other) => {
                            errors.add(
                                Some(i),
                                "type",
                                format!("expected a string, got {}", type_name(other)),
                            );
                            continue;
                        }
                        None => {
                            errors.add(
                                Some(i),
                                "type",
                                "missing: track, identify, alias, page, screen or group",
                            );
                            continue;
                        }
                    };
                    segment_item(
                        item,
                        kind,
                        Some(i),
                        (batch_sent_at, batch_context),
                        received,
                        &mut payload,
                        &mut errors,
                    );
                }
            }
            Some(other) => errors.add(
                None,
                "batch",
                format!("expected an array, got {}", type_name(other)),
            ),
            None => errors.add(None, "batch", "missing: a batch is {\"batch\": [...]}"),
        },
    }
    if errors.list.is_empty() {
        Ok(payload)
    } else {
        Err(errors.list)
    }
}

fn segment_item(
    item: &Map<String, Value>,
    kind: &str,
    at: Option<usize>,
    (batch_sent_at, batch_context): (Option<DateTime<Utc>>, Option<&Value>),
    received: DateTime<Utc>,
    payload: &mut Payload,
    errors: &mut Errors,
) {
    let before = errors.list.len();
    let user_id = id_field(item.get("userId"), true, at, "userId", errors);
    let mut anonymous_id = id_field(item.get("anonymousId"), true, at, "anonymousId", errors);
    let context = match item.get("context").or(batch_context) {
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
    };
    let mut contact = object_field(context.get("traits"), at, "context.traits", errors);
    let mut properties = object_field(item.get("properties"), at, "properties", errors);
    let mut merge = false;
    let event = match kind {
        "track" => event_name(item.get("event"), at, "event", errors),
        "page" | "screen" => {
            for field in ["name", "category"] {
                if let Some(v @ Value::String(_)) = item.get(field) {
                    properties
                        .entry(field.to_owned())
                        .or_insert_with(|| v.clone());
                }
            }
            Some(
                if kind == "page" {
                    "$pageview"
                } else {
                    "$screen"
                }
                .to_owned(),
            )
        }
        "identify" => {
            contact.extend(object_field(item.get("traits"), at, "traits", errors));
            merge = true;
            None
        }
        "alias" => {
            anonymous_id = id_field(item.get("previousId"), true, at, "previousId", errors);
            if anonymous_id.is_none() {
                errors.add(
                    at,
                    "previousId",
                    "missing: alias needs previousId and userId",
                );
            }
            if user_id.is_none() {
                errors.add(at, "userId", "missing: alias needs previousId and userId");
            }
            merge = true;
            None
        }
        "group" => {
            if errors.list.len() == before {
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
    let timestamp = instant(item.get("timestamp"), at, "timestamp", errors).or(instant(
        item.get("originalTimestamp"),
        at,
        "originalTimestamp",
        errors,
    ));
    let sent_at = instant(item.get("sentAt"), at, "sentAt", errors).or(batch_sent_at);
    let message_id = id_field(item.get("messageId"), true, at, "messageId", errors);
    if errors.list.len() > before {
        return;
    }
    // The sender's clock may be off: shift by how far its sentAt is from our receive time.
    let occurred_at = match (timestamp, sent_at) {
        (Some(t), Some(sent)) => Some(t + (received - sent)),
        (t, _) => t,
    };
    let email = contact
        .get("email")
        .and_then(Value::as_str)
        .and_then(normalize_email);
    payload.items.push(Item {
        user_id,
        anonymous_id,
        merge,
        event,
        properties,
        occurred_at: clamp(occurred_at, received),
        message_id,
        email,
        contact,
    });
}

// ---------------------------------------------------------------------------------------
// PostHog webhook destination
// ---------------------------------------------------------------------------------------

/// Validates a PostHog webhook payload: the flat form (`event` is the name, with
/// `distinct_id`, `uuid`, `timestamp`, `properties`, `person.properties`), the nested form
/// of PostHog's default webhook body (`{"event": {...}, "person": {...}}`), or an array of
/// either. `distinct_id` is the contact's user id; `person.properties` and `$set` patch the
/// contact; a `$identify` with `$anon_distinct_id` merges the anonymous contact.
pub fn parse_posthog(
    body: &Value,
    received: DateTime<Utc>,
) -> std::result::Result<Payload, Vec<FieldError>> {
    let mut errors = Errors::new();
    let mut payload = Payload::default();
    let list: Vec<&Value> = match body {
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
    };
    for (i, v) in list.into_iter().enumerate() {
        let before = errors.list.len();
        let at = Some(i);
        let Some(outer) = v.as_object() else {
            errors.add(at, "", format!("expected an object, got {}", type_name(v)));
            continue;
        };
        let (event, prefix) = match outer.get("event") {
            Some(Value::Object(inner)) => (inner, "event."),
            _ => (outer, ""),
        };
        let field = |name: &str| format!("{prefix}{name}");
        let name = event_name(event.get("event"), at, &field("event"), &mut errors);
        let user_id = id_field(
            event.get("distinct_id"),
            true,
            at,
            &field("distinct_id"),
            &mut errors,
        );
        if user_id.is_none() {
            errors.add(
                at,
                &field("distinct_id"),
                "missing: every event needs a distinct_id",
            );
        }
        let message_id = id_field(event.get("uuid"), false, at, &field("uuid"), &mut errors);
        let occurred_at = instant(event.get("timestamp"), at, &field("timestamp"), &mut errors);
        let properties = object_field(
            event.get("properties"),
            at,
            &field("properties"),
            &mut errors,
        );
        let person = object_field(outer.get("person"), at, "person", &mut errors);
        let mut contact = object_field(
            person.get("properties"),
            at,
            "person.properties",
            &mut errors,
        );
        if let Some(Value::Object(set)) = properties.get("$set") {
            contact.extend(set.clone());
        }
        if errors.list.len() > before {
            continue;
        }
        let anonymous_id = match (name.as_deref(), properties.get("$anon_distinct_id")) {
            (Some("$identify"), Some(Value::String(anon))) if !anon.trim().is_empty() => {
                Some(anon.trim().to_owned())
            }
            _ => None,
        };
        let email = contact
            .get("email")
            .and_then(Value::as_str)
            .and_then(normalize_email);
        payload.items.push(Item {
            user_id,
            merge: anonymous_id.is_some(),
            anonymous_id,
            event: name,
            properties,
            occurred_at: clamp(occurred_at, received),
            message_id,
            email,
            contact,
        });
    }
    if errors.list.is_empty() {
        Ok(payload)
    } else {
        Err(errors.list)
    }
}

// ---------------------------------------------------------------------------------------
// The write
// ---------------------------------------------------------------------------------------

/// The contact changes of one key, folded over the request's items in order.
#[derive(Default)]
struct ContactPatch {
    anonymous: bool,
    email: Option<String>,
    set: Map<String, Value>,
    remove: Vec<String>,
}

/// Writes validated items in one transaction. Retried on a deadlock or serialization
/// failure (concurrent requests creating the same contacts), and on a message-id collision
/// with a concurrent request: the retry's duplicate check then sees the other request's
/// events and skips them, so a replay racing its original still stores each event once.
pub async fn write(
    pool: &PgPool,
    schema: &str,
    payload: &Payload,
    received: DateTime<Utc>,
) -> Result<Outcome> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match write_once(pool, schema, payload, received).await {
            Err(Error::Database(sqlx::Error::Database(db)))
                if attempt < 4
                    && (matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
                        || db.constraint() == Some("events_message_id_key")) =>
            {
                tracing::debug!(attempt, "ingest transaction retried: {}", db.message());
            }
            other => return other,
        }
    }
}

async fn write_once(
    pool: &PgPool,
    schema: &str,
    payload: &Payload,
    received: DateTime<Utc>,
) -> Result<Outcome> {
    let s = schema_ident(schema);
    let items = &payload.items;
    let mut outcome = Outcome {
        accepted: items.len() + payload.ignored,
        ..Outcome::default()
    };
    let mut tx = pool.begin().await?;

    // 1. Replays: events whose message id is known (or repeated in this request) are
    //    skipped whole, contact patch included.
    let mut duplicate = vec![false; items.len()];
    let mut first_seen: HashSet<&str> = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        if let (Some(id), Some(_)) = (&item.message_id, &item.event) {
            if !first_seen.insert(id.as_str()) {
                duplicate[i] = true;
            }
        }
    }
    if !first_seen.is_empty() {
        let ids: Vec<&str> = first_seen.iter().copied().collect();
        let known: Vec<String> = sqlx::query_scalar(&format!(
            "select message_id from {s}.events where message_id = any($1)"
        ))
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let known: HashSet<String> = known.into_iter().collect();
        for (i, item) in items.iter().enumerate() {
            if let (Some(id), Some(_)) = (&item.message_id, &item.event) {
                if known.contains(id) {
                    duplicate[i] = true;
                }
            }
        }
    }
    let live: Vec<&Item> = items
        .iter()
        .zip(&duplicate)
        .filter(|(_, dup)| !**dup)
        .map(|(item, _)| item)
        .collect();

    // 2. Identity links, in request order (rare: identify / alias with both ids).
    let mut touched: Vec<String> = Vec::new();
    let mut linked: HashSet<(&str, &str)> = HashSet::new();
    for item in &live {
        if let (true, Some(user), Some(anon)) = (item.merge, &item.user_id, &item.anonymous_id) {
            if linked.insert((user, anon)) {
                let key: String = sqlx::query_scalar(&format!("select {s}.merge_contacts($1, $2)"))
                    .bind(user)
                    .bind(anon)
                    .fetch_one(&mut *tx)
                    .await?;
                touched.push(key);
            }
        }
    }

    // 3. The key of every item: its user id, else what its anonymous id resolves to.
    let anonymous: Vec<&str> = live
        .iter()
        .filter(|i| i.user_id.is_none())
        .filter_map(|i| i.anonymous_id.as_deref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut resolved: HashMap<String, String> = HashMap::new();
    if !anonymous.is_empty() {
        let rows: Vec<(String, String)> =
            sqlx::query_as(&format!("select * from {s}.resolve_anonymous($1)"))
                .bind(&anonymous)
                .fetch_all(&mut *tx)
                .await?;
        resolved.extend(rows);
    }
    let key_of = |item: &Item| -> Option<String> {
        match (&item.user_id, &item.anonymous_id) {
            (Some(user), _) => Some(user.clone()),
            (None, Some(anon)) => Some(resolved.get(anon).cloned().unwrap_or(anon.clone())),
            (None, None) => None,
        }
    };

    // 4. Contacts: create the unknown ones, then apply the patches (shallow, in order).
    //    A user id with nothing to patch and an event to store needs no statement here:
    //    the events trigger creates the contacts of unknown keys (as external ids), which
    //    saves a fifth of the work of a typical batch.
    let mut patches: BTreeMap<String, ContactPatch> = BTreeMap::new();
    let mut keys: Vec<Option<String>> = Vec::with_capacity(live.len());
    for item in &live {
        let key = key_of(item);
        keys.push(key.clone());
        let Some(key) = key else { continue };
        let plain = item.user_id.is_some()
            && item.event.is_some()
            && item.email.is_none()
            && item.contact.is_empty();
        if plain && !patches.contains_key(&key) {
            continue;
        }
        let patch = patches.entry(key).or_insert_with(|| ContactPatch {
            anonymous: item.user_id.is_none(),
            ..ContactPatch::default()
        });
        if item.email.is_some() {
            patch.email.clone_from(&item.email);
        }
        for (k, v) in &item.contact {
            if v.is_null() {
                patch.set.remove(k);
                if !patch.remove.contains(k) {
                    patch.remove.push(k.clone());
                }
            } else {
                patch.remove.retain(|r| r != k);
                patch.set.insert(k.clone(), v.clone());
            }
        }
    }
    if !patches.is_empty() {
        let (mut ks, mut anon, mut emails, mut sets) = (vec![], vec![], vec![], vec![]);
        for (k, p) in &patches {
            ks.push(k.as_str());
            anon.push(p.anonymous);
            emails.push(p.email.as_deref());
            sets.push(Value::Object(p.set.clone()));
        }
        let created: Vec<String> = sqlx::query_scalar(&format!(
            "insert into {s}.contacts (external_id, anonymous_id, email, properties)
             select case when t.anon then null else t.k end, case when t.anon then t.k end,
                    t.e, t.p
               from unnest($1::text[], $2::bool[], $3::text[], $4::jsonb[]) as t(k, anon, e, p)
             on conflict (user_key) do nothing
             returning user_key"
        ))
        .bind(&ks)
        .bind(&anon)
        .bind(&emails)
        .bind(&sets)
        .fetch_all(&mut *tx)
        .await?;
        let created: HashSet<String> = created.into_iter().collect();
        touched.extend(created.iter().cloned());
        let (mut uk, mut ue, mut us, mut ur) = (vec![], vec![], vec![], vec![]);
        for (k, p) in &patches {
            if created.contains(k) || (p.email.is_none() && p.set.is_empty() && p.remove.is_empty())
            {
                continue;
            }
            uk.push(k.as_str());
            ue.push(p.email.as_deref());
            us.push(Value::Object(p.set.clone()));
            ur.push(Value::from(p.remove.clone()));
        }
        if !uk.is_empty() {
            let updated: Vec<String> = sqlx::query_scalar(&format!(
                "with t as (
                   select t.k, t.e,
                          (c.properties || t.p) - array(select jsonb_array_elements_text(t.r)) as props
                     from unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[]) as t(k, e, p, r)
                     join {s}.contacts c on c.user_key = t.k
                    where c.deleted_at is null)
                 update {s}.contacts c
                    set properties = t.props, email = coalesce(t.e, c.email), updated_at = $5
                   from t
                  where c.user_key = t.k
                    and (c.properties is distinct from t.props
                         or (t.e is not null and t.e is distinct from c.email))
                 returning c.user_key"
            ))
            .bind(&uk)
            .bind(&ue)
            .bind(&us)
            .bind(&ur)
            .bind(received)
            .fetch_all(&mut *tx)
            .await?;
            touched.extend(updated);
        }
    }

    // 5. Events, in one statement. No ON CONFLICT: duplicates were removed above, and a
    //    concurrent request storing the same message id makes this fail and retry (a plain
    //    insert is cheaper than a speculative one).
    let (mut ek, mut en, mut ep, mut et, mut em) = (vec![], vec![], vec![], vec![], vec![]);
    for (item, key) in live.iter().zip(&keys) {
        if let (Some(event), Some(key)) = (&item.event, key) {
            ek.push(key.as_str());
            en.push(event.as_str());
            ep.push(Value::Object(item.properties.clone()));
            et.push(item.occurred_at.unwrap_or(received));
            em.push(item.message_id.as_deref());
        }
    }
    let events_in_request = items.iter().filter(|i| i.event.is_some()).count() as u64;
    if !ek.is_empty() {
        let done = sqlx::query(&format!(
            "insert into {s}.events (user_key, event, properties, occurred_at, received_at, message_id)
             select t.k, t.e, t.p, t.t, $6, t.m
               from unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[], $5::text[])
                    as t(k, e, p, t, m)"
        ))
        .bind(&ek)
        .bind(&en)
        .bind(&ep)
        .bind(&et)
        .bind(&em)
        .bind(received)
        .execute(&mut *tx)
        .await?;
        outcome.stored = done.rows_affected();
        touched.extend(ek.iter().map(|k| (*k).to_owned()));
    }
    outcome.duplicates = events_in_request.saturating_sub(outcome.stored);
    tx.commit().await?;
    touched.sort();
    touched.dedup();
    outcome.keys = touched;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn one_event_with_reference_names() {
        let p = parse_events(
            &json!({"name": "signed_up", "userId": "u1", "email": " Ann@Example.COM ",
                    "eventProperties": {"plan": "pro"}, "contactProperties": {"a": null}}),
            Some("idem-1"),
            now(),
        )
        .unwrap();
        let item = &p.items[0];
        assert_eq!(item.event.as_deref(), Some("signed_up"));
        assert_eq!(item.user_id.as_deref(), Some("u1"));
        assert_eq!(item.email.as_deref(), Some("ann@example.com"));
        assert_eq!(item.message_id.as_deref(), Some("idem-1"));
        assert_eq!(item.contact.get("a"), Some(&Value::Null));
    }

    #[test]
    fn every_bad_item_is_named() {
        let errs = parse_events(
            &json!({"events": [
                {"user_id": "u", "event": "ok"},
                {"event": "no_user"},
                {"user_id": 5, "event": "bucket:entered:x", "extra": 1},
                {"user_id": "u", "event": "e", "timestamp": "yesterday", "properties": []}
            ]}),
            None,
            now(),
        )
        .unwrap_err();
        let got: Vec<(Option<usize>, &str)> =
            errs.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some(1), "user_id"),
                (Some(2), "extra"),
                (Some(2), "user_id"),
                (Some(2), "event"),
                (Some(3), "properties"),
                (Some(3), "timestamp"),
            ]
        );
    }

    #[test]
    fn future_timestamps_are_clamped_and_offsets_kept() {
        let p = parse_events(
            &json!({"events": [
                {"user_id": "u", "event": "a", "timestamp": "2030-01-01T00:00:00Z"},
                {"user_id": "u", "event": "b", "timestamp": "2026-03-01T13:00:00+02:00"}]}),
            None,
            now(),
        )
        .unwrap();
        assert_eq!(p.items[0].occurred_at, Some(now()));
        assert_eq!(
            p.items[1].occurred_at.map(|t| t.to_rfc3339()),
            Some("2026-03-01T11:00:00+00:00".to_owned())
        );
    }

    #[test]
    fn segment_sent_at_corrects_clock_skew() {
        // The device clock is 10 minutes behind: sentAt 11:50 when we receive at 12:00.
        let p = parse_segment(
            &json!({"batch": [
                {"type": "track", "event": "x", "userId": 42, "timestamp": "2026-03-01T11:49:00Z",
                 "messageId": "m1", "context": {"traits": {"email": "A@B.C"}}},
                {"type": "page", "name": "Pricing", "anonymousId": "anon", "properties": {"path": "/pricing"}},
                {"type": "group", "userId": "u", "groupId": "g"}],
              "sentAt": "2026-03-01T11:50:00Z"}),
            None,
            now(),
        )
        .unwrap();
        assert_eq!(p.ignored, 1);
        assert_eq!(p.items[0].user_id.as_deref(), Some("42"));
        assert_eq!(
            p.items[0].occurred_at.map(|t| t.to_rfc3339()),
            Some("2026-03-01T11:59:00+00:00".to_owned())
        );
        assert_eq!(p.items[0].email.as_deref(), Some("a@b.c"));
        assert_eq!(p.items[1].event.as_deref(), Some("$pageview"));
        assert_eq!(p.items[1].properties["name"], "Pricing");
    }

    #[test]
    fn posthog_flat_and_nested() {
        let flat = json!({"event": "$identify", "distinct_id": "u1", "uuid": "0190-a",
            "timestamp": "2026-03-01T10:00:00Z",
            "properties": {"$anon_distinct_id": "anon-1"},
            "person": {"properties": {"email": "X@Y.Z", "plan": "pro"}}});
        let p = parse_posthog(&flat, now()).unwrap();
        assert!(p.items[0].merge);
        assert_eq!(p.items[0].anonymous_id.as_deref(), Some("anon-1"));
        assert_eq!(p.items[0].email.as_deref(), Some("x@y.z"));
        let nested = json!({"event": {"event": "$pageview", "distinct_id": "u2", "uuid": "0190-b",
            "properties": {"$current_url": "https://a/pricing"}}, "person": {"properties": {}}});
        let p = parse_posthog(&nested, now()).unwrap();
        assert_eq!(p.items[0].user_id.as_deref(), Some("u2"));
        let errs = parse_posthog(&json!({"event": "x"}), now()).unwrap_err();
        assert_eq!(errs[0].field, "distinct_id");
    }
}
