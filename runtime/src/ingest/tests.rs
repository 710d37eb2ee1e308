//! Validation of the three payload families, without a database.

use super::*;
use chrono::{DateTime, Utc};
use serde_json::json;
use serde_json::Value;

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
