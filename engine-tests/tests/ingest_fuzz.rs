//! The ingest parsers under arbitrary input, on the stable toolchain: the checks of the fuzz
//! targets (`fuzz/fuzz_targets/ingest_bytes.rs`, `ingest_json.rs`, in
//! `hogsend_runtime::fuzzing`) over random bytes and random payload-shaped JSON, plus the
//! inputs fuzzing found, kept as regression cases. Every input is either refused with a 4xx
//! or accepted as a payload Postgres stores; nothing panics.
//!
//! `PROPTEST_CASES=N` runs a longer campaign (default 512 per property).

use hogsend_runtime::fuzzing::{check, check_bytes, check_json, json_from_bytes};
use hogsend_runtime::http::ingest_request::{IngestRoute, RawRequest};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_a_4xx_or_storable(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Err(e) = check_bytes(&data) {
            prop_assert!(false, "{e}\ninput: {data:?}");
        }
    }

    #[test]
    fn arbitrary_payload_shaped_json_is_a_4xx_or_storable(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Err(e) = check_json(&data) {
            prop_assert!(false, "{e}\ndocument: {}", json_from_bytes(&data));
        }
    }
}

/// A hand-written request, checked on every route.
fn all_routes(body: &str) {
    for route in IngestRoute::ALL {
        let request = RawRequest {
            content_type: Some("application/json"),
            body: body.as_bytes(),
            ..RawRequest::default()
        };
        if let Err(e) = check(route, &request) {
            panic!("{e}\nbody: {body}");
        }
    }
}

#[test]
fn the_generator_reaches_the_payload_shapes() {
    // The generator is not degenerate: some inputs are accepted by each family (a fuzz
    // campaign that only ever hits "malformed" proves little).
    let mut accepted = std::collections::BTreeSet::new();
    for seed in 0u32..20_000 {
        let data: Vec<u8> = (0..64)
            .map(|i| (seed.wrapping_mul(2_654_435_761).rotate_left(i) & 0xff) as u8)
            .collect();
        let value = json_from_bytes(&data);
        let text = value.to_string();
        for route in IngestRoute::ALL {
            let request = RawRequest {
                content_type: Some("application/json"),
                body: text.as_bytes(),
                ..RawRequest::default()
            };
            if hogsend_runtime::http::ingest_request::parse(
                route,
                &request,
                hogsend_runtime::fuzzing::received(),
            )
            .is_ok_and(|p| !p.items.is_empty())
            {
                accepted.insert(format!("{route:?}"));
            }
        }
    }
    assert!(
        accepted.len() >= 4,
        "random documents were accepted only by {accepted:?}"
    );
}

#[test]
fn edge_inputs_are_a_4xx_or_storable() {
    for body in [
        "",
        "null",
        "[]",
        "{}",
        "\"\\u0000\"",
        r#"{"events": []}"#,
        r#"{"batch": [null, 1, "x", {"type": "identify"}]}"#,
        r#"{"user_id": "u", "event": "e", "timestamp": "0000-01-01T00:00:00Z"}"#,
        r#"{"userId": "u", "event": "e", "timestamp": "2020-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"}"#,
        r#"{"userId": "u", "event": "e", "originalTimestamp": "9999-12-31T23:59:59Z", "sentAt": "1970-01-01T00:00:00Z"}"#,
        r#"{"batch": [{"type": "track", "userId": "u", "event": "e", "timestamp": "1970-01-01T00:00:00Z"}], "sentAt": "9999-12-31T23:59:59+23:59"}"#,
        r#"{"distinct_id": "u", "event": "$identify", "properties": {"$anon_distinct_id": {"a": 1}}}"#,
        r#"{"distinct_id": "u", "event": "$create_alias", "properties": {"alias": ""}}"#,
        r#"{"api_key": "k", "batch": [{"event": "e", "distinct_id": 12345678901234567890}], "sent_at": "x"}"#,
        r#"{"event": {"event": {"event": "e"}}, "person": {"properties": null}}"#,
        r#"{"userId": 1e300, "event": "e"}"#,
        r#"{"userId": "u", "event": "e", "properties": {"k": [[[[[[[[[[["\u0000"]]]]]]]]]]]}}"#,
        r#"{"user_id": "u", "event": "e", "contact": {"\u0000": 1}}"#,
        r#"{"type": "alias", "userId": "u", "previousId": "u"}"#,
        r#"{"distinct_id": "u", "event": "e", "$set": {"email": "@@"}, "$set_once": []}"#,
    ] {
        all_routes(body);
    }
    // Capture bodies that are not what they claim.
    for (content_type, query, body) in [
        (
            Some("application/x-www-form-urlencoded"),
            None,
            &b"data="[..],
        ),
        (
            Some("application/x-www-form-urlencoded"),
            None,
            b"data=%ZZ%4",
        ),
        (None, None, b"data=!!!&compression=gzip-js"),
        (None, Some("compression=gzip-js"), b"not gzip"),
        (None, None, &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3][..]),
        (
            Some("application/x-www-form-urlencoded"),
            None,
            b"data=e30%3D",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            None,
            b"data=%+1%-1",
        ),
    ] {
        let request = RawRequest {
            content_type,
            query,
            idempotency_key: None,
            body,
        };
        if let Err(e) = check(IngestRoute::Capture, &request) {
            panic!("{e}\nbody: {body:?}");
        }
    }
    // Idempotency keys that could not be message ids.
    for key in ["a\u{0}b", &"k".repeat(6000), "  "] {
        let request = RawRequest {
            content_type: Some("application/json"),
            idempotency_key: Some(key),
            body: br#"{"user_id": "u", "event": "e"}"#,
            ..RawRequest::default()
        };
        check(IngestRoute::Events, &request).unwrap();
    }
}
