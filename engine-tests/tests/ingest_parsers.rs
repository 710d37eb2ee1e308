//! The ingest parsers on arbitrary input (a property-test smoke in place of a fuzz target):
//! random JSON shaped like each payload family, with NUL characters, huge ids and extreme
//! timestamps mixed in. No parser panics; whatever a parser accepts (in a body the
//! `JsonBody` NUL check lets through) is storable: ids within 255 characters, timestamps
//! within 1970 and the receive time, no U+0000 anywhere. A rejection is a list of field
//! problems, which the API answers 400.

use chrono::{DateTime, Utc};
use hogsend_runtime::ingest::{self, validate, Payload};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn received() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_$ ]{0,12}",
        Just("a\u{0}b".to_owned()),
        Just("x".repeat(300)),
        Just("$identify".to_owned()),
        Just("bucket:entered:x".to_owned()),
        Just("0000-01-01T00:00:00Z".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("1969-12-31T23:59:59Z".to_owned()),
        Just("2020-01-01T00:00:00Z".to_owned()),
        Just("+262143-01-01T00:00:00Z".to_owned()),
        Just("a@b.c".to_owned()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "userId",
            "anonymousId",
            "user_id",
            "anonymous_id",
            "event",
            "name",
            "type",
            "timestamp",
            "sentAt",
            "originalTimestamp",
            "messageId",
            "message_id",
            "previousId",
            "properties",
            "traits",
            "context",
            "batch",
            "events",
            "distinct_id",
            "uuid",
            "person",
            "$anon_distinct_id",
            "$set",
            "email",
            "contact",
            "idempotencyKey",
        ])
        .prop_map(str::to_owned),
        text(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn storable(payload: &Payload) {
    let now = received();
    for item in &payload.items {
        for id in [&item.user_id, &item.anonymous_id, &item.message_id]
            .into_iter()
            .flatten()
        {
            assert!(id.chars().count() <= validate::MAX_ID_CHARS + 5, "{id:?}");
            assert!(!id.contains('\0'));
        }
        if let Some(t) = item.occurred_at {
            assert!(t >= validate::EARLIEST && t <= now, "{t}");
        }
        for s in [&item.event, &item.email].into_iter().flatten() {
            assert!(!s.contains('\0'));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_and_accept_only_storable_payloads(
        body in json_value(),
        kind in prop::sample::select(vec!["track", "identify", "alias", "page", "screen", "group", "x"]),
        idempotency in prop::option::of(text()),
    ) {
        let nul_free = validate::nul_bytes(&body).is_empty();
        let results = [
            ingest::parse_events(&body, idempotency.as_deref().filter(|k| !k.contains('\0') && k.chars().count() <= validate::MAX_ID_CHARS), received()),
            ingest::parse_segment(&body, Some(kind), received()),
            ingest::parse_segment(&body, None, received()),
            ingest::parse_posthog(&body, received()),
        ];
        for result in results {
            match result {
                Ok(payload) if nul_free => storable(&payload),
                Ok(_) => {}
                Err(problems) => prop_assert!(!problems.is_empty()),
            }
        }
    }
}
