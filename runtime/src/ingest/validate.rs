//! Step 1 of an ingest, validation: the field readers every payload family uses, and the
//! problem list they fill.
//!
//! Each reader checks one field as it is read and records a [`FieldError`] (item index,
//! field as the request named it, what is wrong) instead of failing, so one pass over a
//! request reports every problem. A family turns a request into a [`Payload`] only when
//! nothing was recorded: validation is all-or-nothing.
//!
//! [`Payload`]: super::Payload

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// The longest user id, anonymous id, message id, contact key or `Idempotency-Key`, in
/// characters: every one of them reaches a btree index, whose entries must stay well under
/// a page (a 255-character id is at most 1,020 bytes).
pub const MAX_ID_CHARS: usize = 255;
/// The longest event name, in characters.
const MAX_EVENT_CHARS: usize = 200;
/// Event-name prefixes only hogsend itself may use.
pub const RESERVED_PREFIXES: [&str; 2] = ["bucket:", "hogsend:"];

/// One problem with a request: the item (`None` for the request as a whole), the field and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The item's position in the request (`None`: the request as a whole).
    pub index: Option<usize>,
    /// The field as the request named it.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The problems found so far in one request.
pub(super) struct Errors {
    pub(super) list: Vec<FieldError>,
}

impl Errors {
    pub(super) fn new() -> Errors {
        Errors { list: Vec::new() }
    }

    pub(super) fn add(&mut self, index: Option<usize>, field: &str, message: impl Into<String>) {
        self.list.push(FieldError {
            index,
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// How many problems so far: a family compares it before and after an item.
    pub(super) fn count(&self) -> usize {
        self.list.len()
    }

    /// `value` when nothing was found, else every problem.
    pub(super) fn into_result<T>(self, value: T) -> Result<T, Vec<FieldError>> {
        if self.list.is_empty() {
            Ok(value)
        } else {
            Err(self.list)
        }
    }
}

/// The JSON type of `v`, for messages.
pub(super) fn type_name(v: &Value) -> &'static str {
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
pub(super) fn id_field(
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

pub(super) fn event_name(
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

pub(super) fn object_field(
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

/// The earliest instant hogsend stores: 1970-01-01T00:00:00Z.
pub const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// The latest instant a request may name: 9999-12-31T23:59:59Z.
pub fn latest() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

pub(super) fn instant(
    v: Option<&Value>,
    at: Option<usize>,
    field: &str,
    errors: &mut Errors,
) -> Option<DateTime<Utc>> {
    match v? {
        Value::Null => None,
        Value::String(s) => match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) if !(EARLIEST..=latest()).contains(&t.with_timezone(&Utc)) => {
                errors.add(
                    at,
                    field,
                    "out of range: timestamps must be between 1970-01-01T00:00:00Z and \
                     9999-12-31T23:59:59Z",
                );
                None
            }
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
pub(super) fn email_field(
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

/// A timestamp never later than `received` nor earlier than 1970.
pub(super) fn clamp(t: Option<DateTime<Utc>>, received: DateTime<Utc>) -> Option<DateTime<Utc>> {
    t.map(|t| t.clamp(EARLIEST, received.max(EARLIEST)))
}

/// `timestamp` shifted by how far the sender's clock is off (`received - sent_at`), then
/// clamped like [`clamp`]. Both inputs are in range (see [`instant`]), so the shift is at
/// most ±8,030 years and cannot overflow; the clamp keeps the result storable.
pub(super) fn skew_corrected(
    timestamp: DateTime<Utc>,
    sent_at: DateTime<Utc>,
    received: DateTime<Utc>,
) -> DateTime<Utc> {
    let shifted =
        timestamp
            .checked_add_signed(received - sent_at)
            .unwrap_or(if sent_at > received {
                EARLIEST
            } else {
                received
            });
    shifted.clamp(EARLIEST, received.max(EARLIEST))
}

/// Where a string or key of a JSON document holds U+0000, which Postgres text and jsonb
/// cannot store: one problem per place, named by its path (`events[2].properties.a`).
pub fn nul_bytes(body: &Value) -> Vec<FieldError> {
    fn walk(v: &Value, path: &mut String, found: &mut Vec<FieldError>) {
        const SHOWN: usize = 100;
        if found.len() >= SHOWN {
            return;
        }
        let here = |path: &str, what: &str| FieldError {
            index: None,
            field: if path.is_empty() {
                "(body)".to_owned()
            } else {
                path.to_owned()
            },
            message: format!("{what} contains a NUL character (U+0000), which cannot be stored"),
        };
        match v {
            Value::String(s) if s.contains('\0') => found.push(here(path, "the value")),
            Value::Array(list) => {
                for (i, item) in list.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path, found);
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&key.replace('\0', "\\u0000"));
                    if key.contains('\0') {
                        found.push(here(path, "the key"));
                    }
                    walk(item, path, found);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(body, &mut String::new(), &mut found);
    found
}

/// A path segment or query value: no U+0000 and, when it names a contact, at most
/// [`MAX_ID_CHARS`] characters. The problem, if any.
pub fn parameter(value: &str, id: bool) -> Option<String> {
    if value.contains('\0') {
        Some("contains a NUL character (U+0000)".to_owned())
    } else if id && value.chars().count() > MAX_ID_CHARS {
        Some(format!("longer than {MAX_ID_CHARS} characters"))
    } else {
        None
    }
}
