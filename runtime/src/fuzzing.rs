//! The ingest parsers under arbitrary input, for the fuzz targets (`fuzz/fuzz_targets/
//! ingest_bytes.rs`, `ingest_json.rs`) and their stable-toolchain twin in the test suite
//! (`engine-tests/tests/ingest_fuzz.rs`). Feature `testkit`.
//!
//! Every input goes through [`ingest_request::parse`], the decode + parse + validate of the
//! routes, and must end in one of two ways:
//!
//! - refused with a **4xx** `ApiError` (never a 5xx: bad input is the client's fault);
//! - accepted as a `Payload` that Postgres will store: no U+0000 in any text or key, every
//!   id within [`MAX_ID_CHARS`], event names within 200 characters and not reserved,
//!   timestamps within 1970–9999, at most 1,000 items ([`unstorable`]). An accepted payload
//!   that breaks one of these would be a 500 at the write.
//!
//! Either way, no panic.

use crate::http::ingest_request::{self, IngestRoute, RawRequest};
use crate::ingest::validate::{latest, EARLIEST, MAX_ID_CHARS};
use crate::ingest::{Item, Payload, MAX_BATCH, RESERVED_PREFIXES};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The receive time every check uses (fixed, so a failure replays exactly).
pub fn received() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Runs `request` through `route` and checks the outcome (module doc).
pub fn check(route: IngestRoute, request: &RawRequest<'_>) -> Result<(), String> {
    match ingest_request::parse(route, request, received()) {
        Ok(payload) => {
            let problems = unstorable(&payload);
            if problems.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "{route:?} accepted what Postgres refuses: {problems:?}"
                ))
            }
        }
        Err(e) if e.code.status().is_client_error() => Ok(()),
        Err(e) => Err(format!(
            "{route:?} refused with {} {:?}: {}",
            e.code.status(),
            e.code,
            e.message
        )),
    }
}

/// Arbitrary bytes as a whole request: the first byte picks the route and how the body is
/// labelled (`Content-Type`, `?compression=gzip-js`, an `Idempotency-Key`), the rest is the
/// body as sent.
pub fn check_bytes(data: &[u8]) -> Result<(), String> {
    let Some((&pick, body)) = data.split_first() else {
        return Ok(());
    };
    let route = IngestRoute::ALL[usize::from(pick) % IngestRoute::ALL.len()];
    let content_type = [
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("text/plain; charset=utf-8"),
        None,
    ][usize::from(pick >> 4) % 4];
    let query = (pick & 0x40 != 0).then_some("compression=gzip-js&ver=1.0");
    let idempotency = (pick & 0x80 != 0).then(|| String::from_utf8_lossy(body).into_owned());
    check(
        route,
        &RawRequest {
            content_type,
            query,
            idempotency_key: idempotency.as_deref(),
            body,
        },
    )
}

/// Arbitrary bytes read as a JSON document shaped like the payloads ([`json_from_bytes`]),
/// sent to every route, and to the capture API also gzipped, as a base64 form and as a
/// gzipped base64 form.
pub fn check_json(data: &[u8]) -> Result<(), String> {
    let value = json_from_bytes(data);
    let text = value.to_string();
    fn json(body: &[u8]) -> RawRequest<'_> {
        RawRequest {
            content_type: Some("application/json"),
            body,
            ..RawRequest::default()
        }
    }
    for route in IngestRoute::ALL {
        check(route, &json(text.as_bytes()))?;
    }
    let gzipped = gzip(text.as_bytes());
    check(IngestRoute::Capture, &json(&gzipped))?;
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for (form, query) in [
        (format!("data={}", b64(text.as_bytes())), None),
        (format!("data={}&compression=gzip-js", b64(&gzipped)), None),
        (
            format!("data={}", b64(&gzipped)),
            Some("compression=gzip-js"),
        ),
    ] {
        check(
            IngestRoute::Capture,
            &RawRequest {
                content_type: Some("application/x-www-form-urlencoded"),
                query,
                idempotency_key: None,
                body: form.as_bytes(),
            },
        )?;
    }
    Ok(())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

/// Why Postgres would refuse an accepted payload (empty: it would store it).
pub fn unstorable(payload: &Payload) -> Vec<String> {
    let mut problems = Vec::new();
    if payload.items.len() > MAX_BATCH {
        problems.push(format!("{} items", payload.items.len()));
    }
    for (i, item) in payload.items.iter().enumerate() {
        item_problems(item, &mut |p| problems.push(format!("item {i}: {p}")));
    }
    problems
}

fn item_problems(item: &Item, report: &mut dyn FnMut(String)) {
    if item.user_id.is_none() && item.anonymous_id.is_none() {
        report("no id".into());
    }
    for (name, id) in [
        ("user_id", &item.user_id),
        ("anonymous_id", &item.anonymous_id),
        ("message_id", &item.message_id),
    ] {
        if let Some(id) = id {
            if id.is_empty() || id.chars().count() > MAX_ID_CHARS || id.contains('\0') {
                report(format!("{name} {id:?}"));
            }
        }
    }
    if let Some(event) = &item.event {
        if event.is_empty()
            || event.chars().count() > 200
            || event.contains('\0')
            || RESERVED_PREFIXES.iter().any(|p| event.starts_with(p))
        {
            report(format!("event {event:?}"));
        }
    }
    if let Some(email) = &item.email {
        if email.len() > 320 || email.contains('\0') {
            report(format!("email {email:?}"));
        }
    }
    if let Some(at) = item.occurred_at {
        if at < EARLIEST || at > latest() {
            report(format!("occurred_at {at}"));
        }
    }
    for (name, map) in [
        ("properties", &item.properties),
        ("contact", &item.contact),
        ("contact_once", &item.contact_once),
    ] {
        if has_nul(map) {
            report(format!("U+0000 in {name}"));
        }
    }
}

fn has_nul(map: &Map<String, Value>) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(value),
            Value::Object(o) => has_nul(o),
            _ => false,
        }
    }
    map.iter().any(|(k, v)| k.contains('\0') || value(v))
}

/// Field names of every payload family, so random documents look like requests.
const KEYS: &[&str] = &[
    "events",
    "batch",
    "type",
    "userId",
    "user_id",
    "anonymousId",
    "anonymous_id",
    "previousId",
    "event",
    "name",
    "properties",
    "traits",
    "context",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "sent_at",
    "messageId",
    "message_id",
    "idempotencyKey",
    "email",
    "contact",
    "contactProperties",
    "eventProperties",
    "distinct_id",
    "uuid",
    "api_key",
    "token",
    "$set",
    "$set_once",
    "$anon_distinct_id",
    "alias",
    "person",
    "$identify",
    "$create_alias",
    "integrations",
    "groupId",
];

/// Strings that probe the validators: ids at and past the limits, NUL, timestamps at and
/// past the range, reserved names, emails, Segment types and PostHog events.
fn interesting_string(pick: u8, data: &mut Bytes<'_>) -> String {
    match pick % 24 {
        0 => "a\u{0}b".into(),
        1 => "x".repeat(MAX_ID_CHARS),
        2 => "x".repeat(MAX_ID_CHARS + 1),
        3 => "é".repeat(usize::from(data.next()) * 4),
        4 => "2020-01-01T00:00:00Z".into(),
        5 => "9999-12-31T23:59:59Z".into(),
        6 => "0000-01-01T00:00:00Z".into(),
        7 => "1969-12-31T23:59:59-23:59".into(),
        8 => "+275760-09-13T00:00:00Z".into(),
        9 => "bucket:x".into(),
        10 => " Ada@Example.COM ".into(),
        11 => "@".into(),
        12 => ["track", "identify", "alias", "page", "screen", "group"]
            [usize::from(data.next()) % 6]
            .into(),
        13 => ["$identify", "$create_alias", "$pageview", "$set", "$screen"]
            [usize::from(data.next()) % 5]
            .into(),
        14 => String::new(),
        15 => "  ".into(),
        16 => "\u{feff}".into(),
        17 => "9999-12-31T23:59:60Z".into(),
        18 => "\u{0}".into(),
        19 => format!("{}\u{0}", char::from(data.next() % 26 + b'a')),
        _ => {
            let n = usize::from(data.next() % 16);
            (0..n).map(|_| char::from(data.next() % 95 + 32)).collect()
        }
    }
}

/// The input bytes as a stream of choices (zeros once spent).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// A JSON document decoded from bytes, biased towards the payload families' shapes: an
/// object (or an array of them) keyed by their field names, each field mostly of the kind
/// its family expects (ids and names strings, `properties` objects, `batch` arrays of
/// calls), strings that probe the validators, numbers at the edges. Deterministic, so a
/// fuzz input replays.
pub fn json_from_bytes(data: &[u8]) -> Value {
    let mut bytes = Bytes(data);
    let mut budget = 400usize;
    if bytes.next() % 4 == 0 {
        let n = usize::from(bytes.next() % 4);
        Value::Array(
            (0..n)
                .map(|_| gen_object(&mut bytes, 1, &mut budget))
                .collect(),
        )
    } else {
        gen_object(&mut bytes, 0, &mut budget)
    }
}

/// What a field usually holds.
enum Kind {
    Text,
    Object,
    Calls,
}

fn kind_of(key: &str) -> Kind {
    match key {
        "events" | "batch" => Kind::Calls,
        "properties" | "traits" | "context" | "contact" | "contactProperties"
        | "eventProperties" | "$set" | "$set_once" | "person" | "integrations" => Kind::Object,
        _ => Kind::Text,
    }
}

fn gen_object(data: &mut Bytes<'_>, depth: usize, budget: &mut usize) -> Value {
    *budget = budget.saturating_sub(1);
    let n = usize::from(data.next() % 8);
    let mut map = Map::new();
    for _ in 0..n {
        let k = data.next();
        let key = if k < 230 {
            KEYS[usize::from(k) % KEYS.len()].to_owned()
        } else {
            interesting_string(k, data)
        };
        let typed = data.next() % 8 != 0 && depth < 6 && *budget > 0;
        let v = match (typed, kind_of(&key)) {
            (true, Kind::Text) => Value::String(interesting_string(data.next(), data)),
            (true, Kind::Object) => gen_object(data, depth + 1, budget),
            (true, Kind::Calls) => {
                let n = usize::from(data.next() % 4);
                Value::Array(
                    (0..n)
                        .map(|_| gen_object(data, depth + 1, budget))
                        .collect(),
                )
            }
            (false, _) => gen_value(data, depth + 1, budget),
        };
        map.insert(key, v);
    }
    Value::Object(map)
}

fn gen_value(data: &mut Bytes<'_>, depth: usize, budget: &mut usize) -> Value {
    *budget = budget.saturating_sub(1);
    let pick = data.next();
    let leaf = depth > 6 || *budget == 0;
    match if leaf { pick % 5 } else { pick % 7 } {
        0 => Value::Null,
        1 => Value::Bool(pick & 0x80 != 0),
        2 => match data.next() % 6 {
            0 => Value::from(i64::MAX),
            1 => Value::from(u64::MAX),
            2 => Value::from(-1.5e300),
            3 => Value::from(253_402_300_800_i64),
            _ => Value::from(i64::from(data.next()) - 128),
        },
        3 | 4 => Value::String(interesting_string(data.next(), data)),
        5 => {
            let n = usize::from(data.next() % 5);
            Value::Array((0..n).map(|_| gen_value(data, depth + 1, budget)).collect())
        }
        _ => gen_object(data, depth, budget),
    }
}
