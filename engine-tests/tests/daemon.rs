//! The daemon end to end: a real Postgres database per test, the server on 127.0.0.1:0,
//! requests over TCP. Every route's happy path and errors, the bad-input matrix (status,
//! error body, nothing stored), replays, identity merge, the real-time pass, two daemons
//! sharing a database, and the transition feed.

use base64::Engine;
use hogsend_engine_tests::compile;
use hogsend_runtime::testkit::{request, TestDaemon, TestDatabase};
use hogsend_runtime::{db, keys};
use hogsend_schema::SchemaName;
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::time::{Duration, Instant};

const PROJECT: &str = r#"
bucket signed_up {
  criteria did signed_up
}

bucket pro {
  criteria contact.plan == "pro"
}

bucket active {
  criteria count app_opened within 7d >= 2
}
"#;

async fn daemon(tdb: &TestDatabase) -> TestDaemon {
    TestDaemon::start(tdb, compile(PROJECT), |_| {}).await
}

async fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Waits until `key` is (or is not) a member of `bucket` as the API reports it; the time it
/// took.
async fn wait_membership(d: &TestDaemon, bucket: &str, key: &str, member: bool) -> Duration {
    let started = Instant::now();
    let want = if member { 200 } else { 404 };
    loop {
        let r = d
            .call(
                "GET",
                &format!("/v1/buckets/{bucket}/members/{key}"),
                Some(&d.read_key),
                None,
            )
            .await;
        if r.status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{key} in {bucket}: still {} after 5 s: {}",
            r.status,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn error_code(r: &hogsend_runtime::testkit::Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn events_are_stored_once_and_replays_say_so() {
    let tdb = TestDatabase::new().await;
    let d = daemon(&tdb).await;
    let mut conn = tdb.connect().await;
    let batch = json!({"events": [
        {"user_id": "u1", "event": "app_opened", "message_id": "m1",
         "timestamp": "2026-01-05T10:00:00+02:00", "properties": {"screen": "home"}},
        {"anonymous_id": "anon-1", "event": "app_opened", "message_id": "m2",
         "email": "  Someone@Example.COM ", "contact": {"plan": "free"}},
        {"user_id": "u1", "event": "clicked", "properties": {"n": 1}}
    ]});
    let r = d
        .call("POST", "/v1/events", Some(&d.ingest_key), Some(&batch))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"accepted": 3, "stored": 3, "duplicates": 0})
    );
    // The replay stores the event without a message id again, and only that one.
    let r = d
        .call("POST", "/v1/events", Some(&d.ingest_key), Some(&batch))
        .await;
    assert_eq!(
        r.json(),
        json!({"accepted": 3, "stored": 1, "duplicates": 2})
    );
    assert_eq!(
        count(&mut conn, "select count(*) from hogsend.events").await,
        4
    );
    let occurred: String = sqlx::query_scalar(
        "select to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from hogsend.events where message_id = 'm1'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(occurred, "2026-01-05 08:00");
    let (anon, email, props): (Option<String>, Option<String>, Value) = sqlx::query_as(
        "select anonymous_id, email, properties from hogsend.contacts where user_key = 'anon-1'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(anon.as_deref(), Some("anon-1"));
    assert_eq!(email.as_deref(), Some("someone@example.com"));
    assert_eq!(props, json!({"plan": "free"}));
    // The alias field names in a single-event body, with an Idempotency-Key header.
    let headers = vec![
        (
            "Authorization".to_owned(),
            format!("Bearer {}", d.ingest_key),
        ),
        ("Content-Type".to_owned(), "application/json".to_owned()),
        ("Idempotency-Key".to_owned(), "idem-7".to_owned()),
    ];
    let body = json!({"name": "signed_up", "userId": "u2", "eventProperties": {"a": 1}});
    for stored in [1, 0] {
        let r = request(
            d.addr,
            "POST",
            "/v1/events",
            &headers,
            Some(body.to_string().as_bytes()),
        )
        .await;
        assert_eq!(r.status, 202);
        assert_eq!(r.json()["stored"], stored);
    }
    // A future timestamp is clamped to the receive time.
    let r = d
        .call(
            "POST",
            "/v1/events",
            Some(&d.ingest_key),
            Some(&json!({"user_id": "u3", "event": "x", "timestamp": "2999-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.events where user_key = 'u3' and occurred_at <= now()"
        )
        .await,
        1
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_a_clean_4xx_and_stores_nothing() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| c.max_body_bytes = 64 * 1024).await;
    let mut conn = tdb.connect().await;
    let ok = json!({"user_id": "good", "event": "app_opened"});
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"user_id": format!("u{i}"), "event": "e"}))
        .collect();
    let big = "x".repeat(70 * 1024);
    // (name, content type, body, status, code, expected details as (index, field))
    type Case = (
        &'static str,
        &'static str,
        String,
        u16,
        &'static str,
        Vec<(Option<usize>, &'static str)>,
    );
    let cases: Vec<Case> = vec![
        ("malformed JSON", "application/json", "{\"user_id\": ".into(), 400, "malformed_json", vec![]),
        ("wrong content type", "text/csv", ok.to_string(), 415, "unsupported_media_type", vec![]),
        ("no content type", "", ok.to_string(), 415, "unsupported_media_type", vec![]),
        ("not an object", "application/json", "[1, 2]".into(), 400, "invalid_request", vec![(None, "")]),
        ("wrong types", "application/json",
         json!({"events": [ok, {"user_id": 7, "event": ["x"], "properties": "p", "timestamp": 5}]}).to_string(),
         400, "invalid_request",
         vec![(Some(1), "user_id"), (Some(1), "event"), (Some(1), "properties"), (Some(1), "timestamp")]),
        ("missing user id", "application/json",
         json!({"events": [ok, {"event": "x"}, {"user_id": "", "event": "x"}]}).to_string(),
         400, "invalid_request", vec![(Some(1), "user_id"), (Some(2), "user_id")]),
        ("missing event", "application/json", json!({"user_id": "u"}).to_string(),
         400, "invalid_request", vec![(Some(0), "event")]),
        ("reserved names", "application/json",
         json!({"events": [ok, {"user_id": "u", "event": "bucket:entered:pro"},
                           {"user_id": "u", "event": "hogsend:x"}]}).to_string(),
         400, "invalid_request", vec![(Some(1), "event"), (Some(2), "event")]),
        ("unknown fields", "application/json",
         json!({"events": [ok, {"user_id": "u", "event": "x", "colour": "red"}]}).to_string(),
         400, "invalid_request", vec![(Some(1), "colour")]),
        ("unknown top-level field", "application/json",
         json!({"events": [ok], "extra": 1}).to_string(), 400, "invalid_request", vec![(None, "extra")]),
        ("both names of one field", "application/json",
         json!({"user_id": "u", "userId": "u", "event": "x"}).to_string(),
         400, "invalid_request", vec![(Some(0), "userId")]),
        ("bad email and timestamp", "application/json",
         json!({"user_id": "u", "event": "x", "email": "nope", "timestamp": "yesterday"}).to_string(),
         400, "invalid_request", vec![(Some(0), "timestamp"), (Some(0), "email")]),
        ("1,001 events", "application/json", json!({"events": many}).to_string(),
         400, "invalid_request", vec![(None, "events")]),
        ("empty batch", "application/json", json!({"events": []}).to_string(),
         400, "invalid_request", vec![(None, "events")]),
        ("NUL characters", "application/json",
         json!({"events": [ok, {"user_id": "a\u{0}b", "event": "x\u{0}",
                                "properties": {"k\u{0}": "v", "ok": ["\u{0}"]}}]}).to_string(),
         400, "invalid_request",
         vec![(None, "events[1].user_id"), (None, "events[1].event"),
              (None, "events[1].properties.k\\u0000"), (None, "events[1].properties.ok[0]")]),
        ("over-long ids", "application/json",
         json!({"events": [ok, {"user_id": "u".repeat(256), "anonymous_id": "a".repeat(6000),
                                "message_id": "m".repeat(6000), "event": "x"}]}).to_string(),
         400, "invalid_request",
         vec![(Some(1), "user_id"), (Some(1), "anonymous_id"), (Some(1), "message_id")]),
        ("timestamps out of range", "application/json",
         json!({"events": [ok, {"user_id": "u", "event": "x", "timestamp": "0000-01-01T00:00:00Z"},
                               {"user_id": "u", "event": "x", "timestamp": "1969-12-31T23:59:59Z"},
                               {"user_id": "u", "event": "x", "timestamp": "+10000-01-01T00:00:00Z"}]}).to_string(),
         400, "invalid_request",
         vec![(Some(1), "timestamp"), (Some(2), "timestamp"), (Some(3), "timestamp")]),
        ("oversize body", "application/json",
         json!({"user_id": "u", "event": "x", "properties": {"blob": big}}).to_string(),
         413, "payload_too_large", vec![]),
    ];
    for (name, content_type, body, status, code, details) in cases {
        let mut headers = vec![(
            "Authorization".to_owned(),
            format!("Bearer {}", d.ingest_key),
        )];
        if !content_type.is_empty() {
            headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        }
        let r = request(
            d.addr,
            "POST",
            "/v1/events",
            &headers,
            Some(body.as_bytes()),
        )
        .await;
        assert_eq!(r.status, status, "{name}: {}", r.body);
        let doc = r.json();
        assert_eq!(error_code(&r), code, "{name}: {}", r.body);
        assert!(doc["error"]["message"].is_string(), "{name}");
        let got: Vec<(Option<usize>, String)> = doc["error"]["details"]
            .as_array()
            .unwrap_or(&vec![])
            .iter()
            .filter(|d| d.get("field").is_some())
            .map(|d| {
                (
                    d["index"].as_u64().map(|i| i as usize),
                    d["field"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        if !details.is_empty() {
            let want: Vec<(Option<usize>, String)> =
                details.iter().map(|(i, f)| (*i, (*f).to_owned())).collect();
            assert_eq!(got, want, "{name}: {}", r.body);
        }
        assert_eq!(
            count(&mut conn, "select count(*) from hogsend.events").await,
            0,
            "{name}"
        );
        assert_eq!(
            count(&mut conn, "select count(*) from hogsend.contacts").await,
            0,
            "{name}"
        );
    }
    // Segment and PostHog payloads are validated the same way.
    for (path, body, field) in [
        ("/v1/track", json!({"userId": "u"}), "event"),
        (
            "/v1/batch",
            json!({"batch": [{"type": "track", "event": "x", "userId": "u"},
                                       {"type": "launch", "userId": "u"}]}),
            "type",
        ),
        ("/v1/alias", json!({"userId": "u"}), "previousId"),
        (
            "/v1/webhooks/posthog",
            json!({"event": "x", "properties": {}}),
            "distinct_id",
        ),
    ] {
        let r = d.call("POST", path, Some(&d.ingest_key), Some(&body)).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(
            r.json()["error"]["details"][0]["field"],
            field,
            "{path}: {}",
            r.body
        );
        assert_eq!(
            count(&mut conn, "select count(*) from hogsend.events").await,
            0,
            "{path}"
        );
    }
    // NUL characters and over-long ids in every family, the headers and the path; every one
    // a 4xx naming the field, nothing stored.
    let long = "a".repeat(6000);
    let long_key = format!("/v1/contacts/{}", "k".repeat(300));
    let ingest_auth = (
        "Authorization".to_owned(),
        format!("Bearer {}", d.ingest_key),
    );
    let json_type = ("Content-Type".to_owned(), "application/json".to_owned());
    let basic_nul = base64::engine::general_purpose::STANDARD.encode("hs_abc\u{0}_def:");
    let segment_nul = json!({"userId": "U", "traits": {"name": "a\u{0}b"}});
    // (method, path, headers, body, status, code, first detail's field)
    type Raw<'a> = (
        &'a str,
        &'a str,
        Vec<(String, String)>,
        Option<Value>,
        u16,
        &'a str,
        &'a str,
    );
    let cases: Vec<Raw> = vec![
        (
            "POST",
            "/v1/identify",
            vec![ingest_auth.clone(), json_type.clone()],
            Some(segment_nul),
            400,
            "invalid_request",
            "traits.name",
        ),
        (
            "POST",
            "/v1/alias",
            vec![ingest_auth.clone(), json_type.clone()],
            Some(json!({"userId": "U", "previousId": "a\u{0}b"})),
            400,
            "invalid_request",
            "previousId",
        ),
        (
            "POST",
            "/v1/webhooks/posthog",
            vec![ingest_auth.clone(), json_type.clone()],
            Some(json!({"event": "$identify", "distinct_id": "U",
                     "properties": {"$anon_distinct_id": long}})),
            400,
            "invalid_request",
            "properties.$anon_distinct_id",
        ),
        (
            "POST",
            "/v1/webhooks/posthog",
            vec![ingest_auth.clone(), json_type.clone()],
            Some(json!({"event": "$identify", "distinct_id": "U",
                     "properties": {"$anon_distinct_id": "a\u{0}"}})),
            400,
            "invalid_request",
            "properties.$anon_distinct_id",
        ),
        (
            "POST",
            "/v1/track",
            vec![ingest_auth.clone(), json_type.clone()],
            Some(json!({"userId": "U", "event": "x", "timestamp": "0000-01-01T00:00:00Z"})),
            400,
            "invalid_request",
            "timestamp",
        ),
        (
            "POST",
            "/v1/events",
            vec![
                ingest_auth.clone(),
                json_type.clone(),
                ("Idempotency-Key".to_owned(), long.clone()),
            ],
            Some(ok.clone()),
            400,
            "invalid_request",
            "Idempotency-Key",
        ),
        (
            "PUT",
            &long_key,
            vec![ingest_auth.clone(), json_type.clone()],
            Some(json!({"properties": {}})),
            400,
            "invalid_path",
            "key",
        ),
        (
            "PUT",
            "/v1/contacts/a%00b",
            vec![ingest_auth.clone(), json_type.clone()],
            Some(json!({"properties": {}})),
            400,
            "invalid_path",
            "key",
        ),
        (
            "PUT",
            "/v1/contacts/ok",
            vec![ingest_auth.clone(), json_type.clone()],
            Some(json!({"email": "a\u{0}@b.c"})),
            400,
            "invalid_request",
            "email",
        ),
        (
            "GET",
            "/v1/contacts/a%00b",
            vec![("Authorization".to_owned(), format!("Bearer {}", d.read_key))],
            None,
            400,
            "invalid_path",
            "key",
        ),
        (
            "GET",
            "/v1/buckets/x%00y/members",
            vec![("Authorization".to_owned(), format!("Bearer {}", d.read_key))],
            None,
            400,
            "invalid_path",
            "id",
        ),
        (
            "GET",
            "/v1/buckets/pro/members?after=a%00b",
            vec![("Authorization".to_owned(), format!("Bearer {}", d.read_key))],
            None,
            400,
            "invalid_parameter",
            "after",
        ),
        (
            "POST",
            "/v1/events",
            vec![
                ("Authorization".to_owned(), format!("Basic {basic_nul}")),
                json_type.clone(),
            ],
            Some(ok.clone()),
            401,
            "unauthorized",
            "",
        ),
        (
            "POST",
            "/v1/events",
            vec![
                ("Authorization".to_owned(), format!("Bearer {long}")),
                json_type.clone(),
            ],
            Some(ok.clone()),
            401,
            "unauthorized",
            "",
        ),
    ];
    for (method, path, headers, body, status, code, field) in cases {
        let body = body.map(|b| b.to_string());
        let r = request(
            d.addr,
            method,
            path,
            &headers,
            body.as_deref().map(str::as_bytes),
        )
        .await;
        let name = format!("{method} {}", &path[..path.len().min(60)]);
        assert_eq!(r.status, status, "{name}: {}", r.body);
        assert_eq!(error_code(&r), code, "{name}: {}", r.body);
        if !field.is_empty() {
            assert_eq!(
                r.json()["error"]["details"][0]["field"],
                field,
                "{name}: {}",
                r.body
            );
        }
        assert_eq!(
            count(&mut conn, "select count(*) from hogsend.events").await,
            0,
            "{name}"
        );
        assert_eq!(
            count(&mut conn, "select count(*) from hogsend.contacts").await,
            0,
            "{name}"
        );
    }
    // Bad query and path parameters.
    let r = d
        .call(
            "GET",
            "/v1/buckets/pro/members?limit=0",
            Some(&d.read_key),
            None,
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (400, "invalid_parameter")
    );
    let r = d
        .call(
            "GET",
            "/v1/buckets/pro/transitions?after=abc",
            Some(&d.read_key),
            None,
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (400, "invalid_parameter")
    );
    let r = d
        .call("DELETE", "/v1/events", Some(&d.admin_key), None)
        .await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (405, "method_not_allowed")
    );
    let r = d.call("GET", "/v2/nothing", None, None).await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "not_found"));
    // A sender clock far ahead (sentAt in 9999) cannot push a timestamp out of range: the
    // correction is clamped, at the latest to 1970 (and never later than the receive time).
    for (path, body) in [
        (
            "/v1/track",
            json!({"userId": "skew", "event": "x", "timestamp": "2020-01-01T00:00:00Z",
                             "sentAt": "9999-12-31T23:59:59Z"}),
        ),
        (
            "/v1/batch",
            json!({"batch": [{"type": "track", "userId": "skew", "event": "x",
                                         "timestamp": "2020-01-01T00:00:00Z"}],
                             "sentAt": "9999-12-31T23:59:59Z"}),
        ),
        (
            "/v1/track",
            json!({"userId": "skew", "event": "x", "timestamp": "9999-12-31T23:59:59Z",
                             "sentAt": "1970-01-01T00:00:00Z"}),
        ),
    ] {
        let r = d.call("POST", path, Some(&d.ingest_key), Some(&body)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    assert_eq!(
        count(&mut conn, "select count(*) from hogsend.events
                          where user_key = 'skew' and occurred_at >= '1970-01-01' and occurred_at <= now()").await,
        3
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn keys_scopes_and_rate_limits() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| {
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 3;
    })
    .await;
    let event = json!({"user_id": "u", "event": "x"});
    let r = d.call("POST", "/v1/events", None, Some(&event)).await;
    assert_eq!((r.status, error_code(&r).as_str()), (401, "unauthorized"));
    let r = d
        .call(
            "POST",
            "/v1/events",
            Some("hs_000000000000_nope"),
            Some(&event),
        )
        .await;
    assert_eq!((r.status, error_code(&r).as_str()), (401, "unauthorized"));
    // A tampered secret with a real prefix.
    let last = if d.ingest_key.ends_with('0') {
        "1"
    } else {
        "0"
    };
    let tampered = format!("{}{last}", &d.ingest_key[..d.ingest_key.len() - 1]);
    let r = d
        .call("POST", "/v1/events", Some(&tampered), Some(&event))
        .await;
    assert_eq!(r.status, 401);
    // An ingest key cannot read; a read key cannot ingest; only admin deletes.
    let r = d
        .call("GET", "/v1/contacts/u", Some(&d.ingest_key), None)
        .await;
    assert_eq!((r.status, error_code(&r).as_str()), (403, "forbidden"));
    let r = d
        .call("POST", "/v1/events", Some(&d.read_key), Some(&event))
        .await;
    assert_eq!(r.status, 403);
    let r = d
        .call("DELETE", "/v1/contacts/u", Some(&d.read_key), None)
        .await;
    assert_eq!(r.status, 403);
    // Basic auth with the key as user name (Segment SDKs).
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:", d.ingest_key));
    let headers = vec![
        ("Authorization".to_owned(), format!("Basic {basic}")),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    let body = json!({"userId": "u", "event": "x"}).to_string();
    let r = request(d.addr, "POST", "/v1/track", &headers, Some(body.as_bytes())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["success"], true);
    // The admin key's bucket: a burst of 3, then 429 with Retry-After (refill: 1 a second,
    // so on a slow machine a fourth request may still pass).
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = d.call("GET", "/v1/buckets", Some(&d.admin_key), None).await;
        statuses.push(r.status);
        if r.status == 429 {
            assert_eq!(r.header("retry-after"), Some("1"));
            assert_eq!(error_code(&r), "rate_limited");
            break;
        }
    }
    assert_eq!(statuses[..3], [200, 200, 200], "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // Revoked keys stop working at once.
    let mut conn = tdb.connect().await;
    let prefix = d.read_key.split('_').nth(1).unwrap().to_owned();
    assert!(keys::revoke(&mut conn, "hogsend", &prefix).await.unwrap());
    let r = d.call("GET", "/v1/buckets", Some(&d.read_key), None).await;
    assert_eq!(r.status, 401);
    let listed = keys::list(&mut conn, "hogsend").await.unwrap();
    assert_eq!(listed.len(), 3);
    let stored: Vec<String> = sqlx::query_scalar("select hash from hogsend.api_keys")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(
        stored.iter().all(|h| !h.contains(&d.admin_key)),
        "keys are stored hashed"
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn contacts_upsert_read_and_delete() {
    let tdb = TestDatabase::new().await;
    let d = daemon(&tdb).await;
    let mut conn = tdb.connect().await;
    let put = |body: Value| {
        let d = &d;
        async move {
            d.call("PUT", "/v1/contacts/ann", Some(&d.ingest_key), Some(&body))
                .await
        }
    };
    let r =
        put(json!({"email": " ANN@Example.com", "properties": {"plan": "pro", "seats": 3}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["email"], "ann@example.com");
    let r = put(json!({"properties": {"seats": null, "role": "owner"}})).await;
    assert_eq!(
        r.json()["properties"],
        json!({"plan": "pro", "role": "owner"})
    );
    let r = put(json!({"properties": [1]})).await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (400, "invalid_request")
    );
    let r = put(json!({"nickname": "a"})).await;
    assert_eq!(r.status, 400);
    let r = d
        .call("GET", "/v1/contacts/ann", Some(&d.read_key), None)
        .await;
    assert_eq!(r.json()["properties"]["plan"], "pro");
    let r = d
        .call("GET", "/v1/contacts/nobody", Some(&d.read_key), None)
        .await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (404, "contact_not_found")
    );
    // The property change puts ann in `pro` in real time.
    wait_membership(&d, "pro", "ann", true).await;
    let r = d
        .call("GET", "/v1/contacts/ann/buckets", Some(&d.read_key), None)
        .await;
    assert_eq!(r.json()["buckets"][0]["bucket_id"], "pro");
    // Events, paginated by id.
    let events: Vec<Value> = (0..5)
        .map(|i| json!({"user_id": "ann", "event": "app_opened", "properties": {"i": i}}))
        .collect();
    d.call(
        "POST",
        "/v1/events",
        Some(&d.ingest_key),
        Some(&json!({"events": events})),
    )
    .await;
    // (with the `bucket:entered:*` events the joins recorded for ann)
    wait_membership(&d, "active", "ann", true).await;
    let mut walked = Vec::new();
    let mut after = 0;
    loop {
        let r = d
            .call(
                "GET",
                &format!("/v1/contacts/ann/events?limit=3&after={after}"),
                Some(&d.read_key),
                None,
            )
            .await;
        let page = r.json();
        let rows = page["events"].as_array().unwrap().clone();
        assert!(rows.len() <= 3);
        walked.extend(rows.iter().map(|e| e["id"].as_i64().unwrap()));
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    let all: Vec<i64> =
        sqlx::query_scalar("select id from hogsend.events where user_key = 'ann' order by id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(walked, all);
    assert_eq!(all.len(), 7, "5 app opens, entered pro, entered active");
    // DELETE: soft-deleted, out of every bucket at once, silently.
    let r = d
        .call("DELETE", "/v1/contacts/ann", Some(&d.admin_key), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let r = d
        .call("GET", "/v1/contacts/ann", Some(&d.read_key), None)
        .await;
    assert_eq!(r.status, 404);
    let r = d
        .call("DELETE", "/v1/contacts/ann", Some(&d.admin_key), None)
        .await;
    assert_eq!(r.status, 404);
    let r = d
        .call(
            "GET",
            "/v1/buckets/pro/members/ann",
            Some(&d.read_key),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.transitions where kind = 'left' and reason = 'deleted'"
        )
        .await,
        2,
        "left pro and active"
    );
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.events where event like 'bucket:left:%'"
        )
        .await,
        0,
        "a deletion fires nothing"
    );
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.contacts where deleted_at is not null"
        )
        .await,
        1
    );
    // A tick afterwards changes nothing.
    db::tick(&mut conn, "hogsend", None).await.unwrap();
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.bucket_members where user_key = 'ann'"
        )
        .await,
        0
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn real_time_join_is_visible_within_a_second() {
    let tdb = TestDatabase::new().await;
    // The default flush interval, as deployed.
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| {
        c.realtime_flush = Duration::from_millis(250);
    })
    .await;
    let r = d
        .call(
            "POST",
            "/v1/events",
            Some(&d.ingest_key),
            Some(&json!({"user_id": "rt", "event": "signed_up"})),
        )
        .await;
    assert_eq!(r.status, 202);
    let took = wait_membership(&d, "signed_up", "rt", true).await;
    assert!(took < Duration::from_secs(1), "join visible after {took:?}");
    // Two app opens within a week: `active`; the leave side through a contact change.
    let r = d
        .call(
            "POST",
            "/v1/events",
            Some(&d.ingest_key),
            Some(&json!({"events": [{"user_id": "rt", "event": "app_opened"},
                                    {"user_id": "rt", "event": "app_opened", "contact": {"plan": "pro"}}]})),
        )
        .await;
    assert_eq!(r.status, 202);
    wait_membership(&d, "active", "rt", true).await;
    wait_membership(&d, "pro", "rt", true).await;
    d.call(
        "PUT",
        "/v1/contacts/rt",
        Some(&d.ingest_key),
        Some(&json!({"properties": {"plan": "free"}})),
    )
    .await;
    wait_membership(&d, "pro", "rt", false).await;
    let mut conn = tdb.connect().await;
    assert_eq!(
        count(&mut conn, "select count(*) from hogsend.events where event = 'bucket:left:pro' and user_key = 'rt'").await,
        1
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn buckets_members_and_the_transition_feed() {
    let tdb = TestDatabase::new().await;
    let d = daemon(&tdb).await;
    let mut conn = tdb.connect().await;
    let events: Vec<Value> = (0..25)
        .map(|i| json!({"user_id": format!("k{i:02}"), "event": "signed_up"}))
        .collect();
    d.call(
        "POST",
        "/v1/events",
        Some(&d.ingest_key),
        Some(&json!({"events": events})),
    )
    .await;
    wait_membership(&d, "signed_up", "k24", true).await;
    let r = d.call("GET", "/v1/buckets", Some(&d.read_key), None).await;
    let list = r.json();
    let ids: Vec<&str> = list["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["active", "pro", "signed_up"]);
    assert_eq!(list["buckets"][2]["members"], 25);
    let r = d
        .call("GET", "/v1/buckets/signed_up", Some(&d.read_key), None)
        .await;
    assert_eq!(r.json()["criteria"], "did signed_up");
    let r = d
        .call("GET", "/v1/buckets/nope", Some(&d.read_key), None)
        .await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (404, "bucket_not_found")
    );
    let r = d
        .call("GET", "/v1/buckets/nope/members", Some(&d.read_key), None)
        .await;
    assert_eq!(r.status, 404);
    let r = d
        .call(
            "GET",
            "/v1/buckets/signed_up/members/k99",
            Some(&d.read_key),
            None,
        )
        .await;
    assert_eq!((r.status, error_code(&r).as_str()), (404, "not_a_member"));
    // Keyset pages: a member joining mid-walk before the cursor does not shift the pages.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let r = d
            .call(
                "GET",
                &format!("/v1/buckets/signed_up/members?limit=10&after={after}"),
                Some(&d.read_key),
                None,
            )
            .await;
        let page = r.json();
        for m in page["members"].as_array().unwrap() {
            seen.push(m["key"].as_str().unwrap().to_owned());
        }
        if seen.len() == 10 {
            d.call(
                "POST",
                "/v1/events",
                Some(&d.ingest_key),
                Some(&json!({"user_id": "a-early", "event": "signed_up"})),
            )
            .await;
            wait_membership(&d, "signed_up", "a-early", true).await;
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    let want: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    assert_eq!(seen, want);
    // The feed: every transition once, by cursor.
    let mut feed = Vec::new();
    let mut cursor = 0;
    loop {
        let r = d
            .call(
                "GET",
                &format!("/v1/buckets/signed_up/transitions?after={cursor}&limit=7"),
                Some(&d.read_key),
                None,
            )
            .await;
        let page = r.json();
        let rows = page["transitions"].as_array().unwrap().clone();
        feed.extend(rows.iter().map(|t| t["key"].as_str().unwrap().to_owned()));
        cursor = page["next"].as_i64().unwrap();
        if !page["more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(feed.len(), 26);
    let r = d
        .call(
            "GET",
            &format!("/v1/buckets/signed_up/transitions?after={cursor}"),
            Some(&d.read_key),
            None,
        )
        .await;
    assert_eq!(r.json()["transitions"], json!([]));
    assert_eq!(r.json()["next"], cursor, "an empty page keeps the cursor");
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.transitions where bucket_id = 'signed_up'"
        )
        .await,
        26
    );
    // Ops routes.
    let r = d.call("GET", "/healthz", None, None).await;
    assert_eq!(r.status, 200);
    let r = d.call("GET", "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = d.call("GET", "/metrics", None, None).await;
    assert!(
        r.body
            .contains("hogsend_bucket_members{bucket=\"signed_up\"} 26"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("hogsend_events_ingested_total 26"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("hogsend_transitions_total{kind=\"entered\"} 26"),
        "{}",
        r.body
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn identify_merges_the_anonymous_contact() {
    let tdb = TestDatabase::new().await;
    let d = daemon(&tdb).await;
    let mut conn = tdb.connect().await;
    // Before login: an anonymous visitor signs up and opens the app twice.
    let r = d
        .call(
            "POST",
            "/v1/batch",
            Some(&d.ingest_key),
            Some(&json!({"batch": [
                {"type": "track", "anonymousId": "anon-9", "event": "signed_up", "messageId": "s1"},
                {"type": "track", "anonymousId": "anon-9", "event": "app_opened", "messageId": "s2"},
                {"type": "identify", "anonymousId": "anon-9", "traits": {"plan": "pro", "colour": "red"}}
            ]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The known user already exists, in `signed_up` and `active`.
    d.call(
        "POST",
        "/v1/events",
        Some(&d.ingest_key),
        Some(&json!({"events": [
            {"user_id": "user-9", "event": "signed_up", "contact": {"colour": "blue"}},
            {"user_id": "user-9", "event": "app_opened"}, {"user_id": "user-9", "event": "app_opened"}]})),
    )
    .await;
    wait_membership(&d, "pro", "anon-9", true).await;
    wait_membership(&d, "signed_up", "anon-9", true).await;
    wait_membership(&d, "active", "user-9", true).await;
    // Login: identify links the two.
    let r = d
        .call(
            "POST",
            "/v1/identify",
            Some(&d.ingest_key),
            Some(&json!({"userId": "user-9", "anonymousId": "anon-9", "traits": {"email": "Nine@Example.com"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    wait_membership(&d, "pro", "user-9", true).await;
    assert_eq!(
        count(&mut conn, "select count(*) from hogsend.contacts").await,
        1
    );
    let (id_key, anon, email, props): (String, Option<String>, Option<String>, Value) =
        sqlx::query_as("select user_key, anonymous_id, email, properties from hogsend.contacts")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(id_key, "user-9");
    assert_eq!(anon.as_deref(), Some("anon-9"));
    assert_eq!(email.as_deref(), Some("nine@example.com"));
    // The survivor (the contact with an external id) wins conflicts.
    assert_eq!(
        props,
        json!({"plan": "pro", "colour": "blue", "email": "Nine@Example.com"})
    );
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.events where user_key = 'anon-9'"
        )
        .await,
        0,
        "events re-keyed"
    );
    // Each bucket lists the person once; the anonymous memberships ended silently.
    for bucket in ["signed_up", "pro", "active"] {
        let members: Vec<String> = sqlx::query_scalar(
            "select user_key from hogsend.bucket_members where bucket_id = $1 order by 1",
        )
        .bind(bucket)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(members, vec!["user-9"], "{bucket}");
    }
    assert_eq!(
        count(&mut conn, "select count(*) from hogsend.transitions where reason = 'merged' and user_key = 'anon-9'").await,
        1,
        "signed_up: both were members"
    );
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.events where event like 'bucket:left:%'"
        )
        .await,
        0,
        "folding fires nothing"
    );
    // `pro` moved over with its history: no second `entered` for the person.
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.transitions where bucket_id = 'pro' and kind = 'entered'"
        )
        .await,
        1
    );
    // Later anonymous events from the same device reach the merged contact.
    d.call(
        "POST",
        "/v1/track",
        Some(&d.ingest_key),
        Some(&json!({"anonymousId": "anon-9", "event": "clicked"})),
    )
    .await;
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.events where event = 'clicked' and user_key = 'user-9'"
        )
        .await,
        1
    );
    // A tick after all this changes nothing, and a repeated identify is a no-op.
    let summary = db::tick(&mut conn, "hogsend", None).await.unwrap();
    assert_eq!(summary["passes"]["reconcile"]["joins"], 0, "{summary}");
    assert_eq!(summary["passes"]["reconcile"]["leaves"], 0, "{summary}");
    let r = d
        .call(
            "POST",
            "/v1/alias",
            Some(&d.ingest_key),
            Some(&json!({"userId": "user-9", "previousId": "anon-9"})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        count(&mut conn, "select count(*) from hogsend.contacts").await,
        1
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn identify_renames_a_lone_anonymous_contact_and_keeps_dwell_history() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.connect().await;
    hogsend_runtime::migrate::migrate(&mut conn, &SchemaName::default(), &compile(PROJECT))
        .await
        .unwrap();
    sqlx::raw_sql(
        "insert into hogsend.contacts (anonymous_id, properties) values ('a1', '{\"plan\": \"pro\"}');
         insert into hogsend.events (user_key, event) values ('a1', 'signed_up');",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    db::tick(&mut conn, "hogsend", None).await.unwrap();
    let key: String = sqlx::query_scalar("select hogsend.merge_contacts('u1', 'a1')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(key, "u1");
    let members: Vec<(String, String)> =
        sqlx::query_as("select bucket_id, user_key from hogsend.bucket_members order by 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        members,
        vec![
            ("pro".into(), "u1".into()),
            ("signed_up".into(), "u1".into())
        ]
    );
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.transitions where user_key = 'a1'"
        )
        .await,
        0
    );
    let summary = db::tick(&mut conn, "hogsend", None).await.unwrap();
    assert_eq!(summary["passes"]["reconcile"]["joins"], 0, "{summary}");
    // A second user identifying with the same (already folded) anonymous id merges nothing.
    sqlx::query_scalar::<_, String>("select hogsend.merge_contacts('u2', 'a1')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.contacts where user_key = 'u1'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn posthog_webhook_and_segment_calls() {
    let tdb = TestDatabase::new().await;
    let d = daemon(&tdb).await;
    let mut conn = tdb.connect().await;
    let r = d
        .call(
            "POST",
            "/v1/webhooks/posthog",
            Some(&d.ingest_key),
            Some(&json!([
                {"event": "signed_up", "distinct_id": "ph-1", "uuid": "01900000-0000-7000-8000-000000000001",
                 "timestamp": "2026-01-01T10:00:00.000Z", "properties": {"$browser": "Firefox"},
                 "person": {"properties": {"email": "PH@Example.com", "plan": "pro"}}},
                {"event": {"event": "$pageview", "distinct_id": "ph-1", "uuid": "01900000-0000-7000-8000-000000000002",
                           "properties": {"$current_url": "https://x/pricing"}},
                 "person": {"properties": {}}}
            ])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["stored"], 2);
    let email: String =
        sqlx::query_scalar("select email from hogsend.contacts where user_key = 'ph-1'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(email, "ph@example.com");
    wait_membership(&d, "pro", "ph-1", true).await;
    // Segment page/screen become $pageview/$screen; group is accepted and ignored.
    for (path, body) in [
        (
            "/v1/page",
            json!({"userId": "s-1", "name": "Pricing", "properties": {"path": "/pricing"}}),
        ),
        ("/v1/screen", json!({"userId": "s-1", "name": "Home"})),
        ("/v1/group", json!({"userId": "s-1", "groupId": "g"})),
    ] {
        let r = d.call("POST", path, Some(&d.ingest_key), Some(&body)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let names: Vec<String> =
        sqlx::query_scalar("select event from hogsend.events where user_key = 's-1' order by id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(names, vec!["$pageview", "$screen"]);
    d.stop().await.unwrap();
}

#[tokio::test]
async fn two_daemons_share_a_database_without_double_firing() {
    let tdb = TestDatabase::new().await;
    let files = compile(PROJECT);
    let fast = |c: &mut hogsend_runtime::RuntimeConfig| {
        c.scheduler = true;
        c.tick_every = Duration::from_millis(50);
    };
    let a = TestDaemon::start(&tdb, files.clone(), fast).await;
    let b = TestDaemon::start(&tdb, files, fast).await;
    let mut conn = tdb.connect().await;
    // For ~2 s, both take events for overlapping contacts while both schedulers run.
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(2) {
        for (i, d) in [&a, &b].into_iter().enumerate() {
            let events: Vec<Value> = (0..20)
                .map(|k| json!({"user_id": format!("c{}", (k * 7 + round + i) % 40), "event": "app_opened"}))
                .collect();
            let r = d
                .call(
                    "POST",
                    "/v1/events",
                    Some(&d.ingest_key),
                    Some(&json!({"events": events})),
                )
                .await;
            assert_eq!(r.status, 202, "{}", r.body);
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let metrics_a = a.call("GET", "/metrics", None, None).await.body;
    let metrics_b = b.call("GET", "/metrics", None, None).await.body;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db::tick(&mut conn, "hogsend", None).await.unwrap();
    // Every contact that qualifies is in `active` exactly once, with exactly one `entered`
    // transition and one `bucket:entered` event.
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.bucket_members where bucket_id = 'active'"
        )
        .await,
        40
    );
    assert_eq!(
        count(&mut conn, "select count(*) from hogsend.transitions where bucket_id = 'active' and kind = 'entered'").await,
        40
    );
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.events where event = 'bucket:entered:active'"
        )
        .await,
        40
    );
    let ticks: i64 = count(&mut conn, "select ticks from hogsend.tick_state").await;
    assert!(ticks >= 5, "the schedulers ticked ({ticks})");
    let ticked = |m: &str| {
        m.lines()
            .find(|l| l.starts_with("hogsend_ticks_total{result=\"ok\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(
        ticked(&metrics_a) + ticked(&metrics_b) >= 5,
        "{metrics_a}\n{metrics_b}"
    );
}

#[tokio::test]
async fn shutdown_drains_and_a_newer_schema_is_refused() {
    let tdb = TestDatabase::new().await;
    let d = daemon(&tdb).await;
    let addr = d.addr;
    let key = d.ingest_key.clone();
    // A large batch in flight while the daemon is told to stop still completes.
    let events: Vec<Value> = (0..1000)
        .map(|i| json!({"user_id": format!("d{i}"), "event": "signed_up"}))
        .collect();
    let body = json!({"events": events}).to_string();
    let inflight = tokio::spawn(async move {
        let headers = vec![
            ("Authorization".to_owned(), format!("Bearer {key}")),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ];
        request(addr, "POST", "/v1/events", &headers, Some(body.as_bytes())).await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    d.stop().await.unwrap();
    let r = inflight.await.unwrap();
    assert_eq!(r.status, 202, "{}", r.body);
    let mut conn = tdb.connect().await;
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.events where event = 'signed_up'"
        )
        .await,
        1000
    );
    // The last real-time pass ran before the daemon returned.
    assert_eq!(
        count(&mut conn, "select count(*) from hogsend.bucket_members").await,
        1000
    );
    // A database migrated by a newer hogsend is refused with a clear error.
    sqlx::query("insert into hogsend.schema_migrations (version, name, checksum, hogsend_version) values (99, 'future', '', '9.9.9')")
        .execute(&mut conn)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (schema, api, schedule) = Default::default();
    let settings = hogsend_runtime::config::Settings {
        schema: &schema,
        api: &api,
        schedule: &schedule,
    };
    let config = hogsend_runtime::RuntimeConfig::from_settings(
        settings,
        tdb.url(),
        compile(PROJECT),
        |_| None,
    )
    .unwrap();
    let err = hogsend_runtime::launch(config, listener, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("newer than this hogsend knows"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failing_tick_is_counted_shown_and_retried() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| {
        c.scheduler = true;
        c.tick_every = Duration::from_millis(50);
    })
    .await;
    let mut conn = tdb.connect().await;
    // Break the tick: the generated function disappears (as if someone dropped it).
    sqlx::raw_sql("alter function hogsend.tick(timestamptz) rename to tick_away")
        .execute(&mut conn)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let r = d.call("GET", "/readyz", None, None).await;
        if r.status == 503 {
            assert_eq!(error_code(&r), "not_ready");
            assert!(r.body.contains("the last tick failed"), "{}", r.body);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = d.call("GET", "/metrics", None, None).await.body;
    assert!(
        !metrics.contains("hogsend_ticks_total{result=\"failed\"} 0"),
        "{metrics}"
    );
    // Repaired: the next rounds succeed and the daemon is ready again.
    sqlx::raw_sql("alter function hogsend.tick_away(timestamptz) rename to tick")
        .execute(&mut conn)
        .await
        .unwrap();
    let started = Instant::now();
    while d.call("GET", "/readyz", None, None).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never ready again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.stop().await.unwrap();
}

#[tokio::test]
async fn the_feed_polled_by_cursor_misses_and_repeats_nothing_under_load() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| {
        c.scheduler = true;
        c.tick_every = Duration::from_millis(30);
        c.realtime_flush = Duration::from_millis(10);
        c.rate_limit_per_second = 0; // the consumer polls in a tight loop
    })
    .await;
    // Writers: contacts flip between pro and free, from two concurrent request streams.
    let writer =
        |offset: usize| {
            let addr = d.addr;
            let key = d.ingest_key.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut round = 0usize;
                while started.elapsed() < Duration::from_millis(1500) {
                    let events: Vec<Value> = (0..20)
                    .map(|k| {
                        let plan = if (k + round + offset) % 2 == 0 { "pro" } else { "free" };
                        json!({"user_id": format!("f{}", (k * 3 + offset) % 30), "event": "seen",
                               "contact": {"plan": plan}})
                    })
                    .collect();
                    let headers = vec![
                        ("Authorization".to_owned(), format!("Bearer {key}")),
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                    ];
                    let body = json!({"events": events}).to_string();
                    let r =
                        request(addr, "POST", "/v1/events", &headers, Some(body.as_bytes())).await;
                    assert_eq!(r.status, 202, "{}", r.body);
                    round += 1;
                }
            })
        };
    let writers = [writer(0), writer(1)];
    // The consumer polls with its cursor all along.
    let mut seen: Vec<i64> = Vec::new();
    let mut cursor = 0i64;
    let poll = |cursor: i64| {
        let d = &d;
        async move {
            d.call(
                "GET",
                &format!("/v1/buckets/pro/transitions?after={cursor}&limit=50"),
                Some(&d.read_key),
                None,
            )
            .await
            .json()
        }
    };
    while !writers.iter().all(tokio::task::JoinHandle::is_finished) {
        let page = poll(cursor).await;
        for t in page["transitions"].as_array().unwrap() {
            seen.push(t["id"].as_i64().unwrap());
        }
        cursor = page["next"].as_i64().unwrap();
    }
    for w in writers {
        w.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    loop {
        let page = poll(cursor).await;
        let rows = page["transitions"].as_array().unwrap().clone();
        if rows.is_empty() {
            break;
        }
        seen.extend(rows.iter().map(|t| t["id"].as_i64().unwrap()));
        cursor = page["next"].as_i64().unwrap();
    }
    d.stop().await.unwrap();
    let mut conn = tdb.connect().await;
    let all: Vec<i64> = sqlx::query_scalar(
        "select id from hogsend.transitions where bucket_id = 'pro' order by id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(all.len() > 30, "the load made transitions ({})", all.len());
    assert_eq!(
        seen, all,
        "the consumer saw every transition once, in order"
    );
}

#[tokio::test]
async fn a_500_names_an_incident_and_nothing_else() {
    let tdb = TestDatabase::new().await;
    let d = daemon(&tdb).await;
    let mut conn = tdb.connect().await;
    sqlx::raw_sql("alter table hogsend.events rename to events_elsewhere")
        .execute(&mut conn)
        .await
        .unwrap();
    let r = d
        .call(
            "POST",
            "/v1/events",
            Some(&d.ingest_key),
            Some(&json!({"user_id": "u", "event": "x"})),
        )
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(error_code(&r), "internal");
    let message = r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(message.contains("incident"), "{message}");
    for leak in ["events", "relation", "hogsend.", "sqlx", "does not exist"] {
        assert!(!r.body.contains(leak), "the 500 leaks `{leak}`: {}", r.body);
    }
    d.stop().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_with_retry_after_and_not_ready() {
    let tdb = TestDatabase::new().await;
    let d = daemon(&tdb).await;
    let mut conn = tdb.connect().await;
    let event = json!({"user_id": "u", "event": "signed_up"});
    let r = d
        .call("POST", "/v1/events", Some(&d.ingest_key), Some(&event))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    // Let the real-time pass of that event finish first: a pass still pending would wait
    // out the outage below and then queue behind the table lock with the request.
    for _ in 0..200 {
        let queued = count(
            &mut conn,
            "select count(*) from hogsend.changed_keys where user_key = 'u'",
        )
        .await;
        if queued == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The database stops accepting connections and the daemon's are terminated.
    let name: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mut admin =
        <PgConnection as sqlx::Connection>::connect(&hogsend_runtime::testkit::admin_url().await)
            .await
            .unwrap();
    sqlx::raw_sql(&format!(
        "alter database \"{name}\" allow_connections false;
         select pg_terminate_backend(pid) from pg_stat_activity
          where datname = '{name}' and application_name = 'hogsend'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let unavailable = |r: &hogsend_runtime::testkit::Response| {
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(error_code(r), "unavailable", "{}", r.body);
        assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    };
    let r = d
        .call("POST", "/v1/events", Some(&d.ingest_key), Some(&event))
        .await;
    unavailable(&r);
    let r = d
        .call("GET", "/v1/contacts/u", Some(&d.read_key), None)
        .await;
    unavailable(&r);
    let r = d.call("GET", "/readyz", None, None).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(error_code(&r), "not_ready");

    // A request whose connection is terminated while it runs: 503 too, and nothing stored.
    sqlx::raw_sql(&format!("alter database \"{name}\" allow_connections true"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::raw_sql("begin; lock table hogsend.events in share mode")
        .execute(&mut conn)
        .await
        .unwrap();
    let addr = d.addr;
    let key = d.ingest_key.clone();
    let blocked = tokio::spawn(async move {
        let body = json!({"user_id": "v", "event": "signed_up"}).to_string();
        request(
            addr,
            "POST",
            "/v1/events",
            &[
                ("Authorization".to_owned(), format!("Bearer {key}")),
                ("Content-Type".to_owned(), "application/json".to_owned()),
            ],
            Some(body.as_bytes()),
        )
        .await
    });
    let mut waiting = 0;
    for _ in 0..200 {
        // (From another connection: a transaction sees one snapshot of pg_stat_activity.)
        waiting = count(
            &mut admin,
            &format!(
                "select count(*) from pg_stat_activity
                  where datname = '{name}' and application_name = 'hogsend'
                    and wait_event_type = 'Lock'"
            ),
        )
        .await;
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if waiting != 1 {
        let r = blocked.await.unwrap();
        panic!(
            "the request did not wait for the lock: {} {}",
            r.status, r.body
        );
    }
    sqlx::raw_sql(&format!(
        "select pg_terminate_backend(pid) from pg_stat_activity
          where datname = '{name}' and application_name = 'hogsend'
            and wait_event_type = 'Lock'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    unavailable(&blocked.await.unwrap());
    sqlx::raw_sql("rollback").execute(&mut conn).await.unwrap();
    assert_eq!(
        count(
            &mut conn,
            "select count(*) from hogsend.events where user_key = 'v'"
        )
        .await,
        0
    );

    // Back: the pool reconnects on its own.
    let r = d
        .call("POST", "/v1/events", Some(&d.ingest_key), Some(&event))
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = d.call("GET", "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    d.stop().await.unwrap();
}

/// Backpressure that tells the truth: while something holds the pass lock, the real-time
/// pass waits, its backlog shows in `/metrics` (contacts waiting, age of the oldest) and
/// `/readyz` fails with a `realtime` check once that age passes the bound; once the lock is
/// free the pass catches up, the contacts join, the wait is counted as wait (not as the
/// pass's work) and the daemon is ready again.
#[tokio::test]
async fn a_stalled_real_time_pass_shows_in_metrics_and_readyz() {
    let tdb = TestDatabase::new().await;
    let bound = Duration::from_millis(100);
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| {
        c.realtime_flush = Duration::from_millis(20);
        c.realtime_max_backlog_age = Some(bound);
    })
    .await;
    let metric = |body: &str, name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    };
    let r = d.call("GET", "/metrics", None, None).await;
    assert_eq!(metric(&r.body, "hogsend_realtime_backlog_contacts"), 0.0);
    assert_eq!(metric(&r.body, "hogsend_realtime_backlog_age_seconds"), 0.0);

    // Hold the pass lock, as a long tick would.
    let mut holder = tdb.connect().await;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(hogsend_schema::lock_key("hogsend"))
        .execute(&mut holder)
        .await
        .unwrap();
    for i in 0..3 {
        let batch = json!({"events": [{"user_id": format!("stalled{i}"), "event": "signed_up"}]});
        let r = d
            .call("POST", "/v1/events", Some(&d.ingest_key), Some(&batch))
            .await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let started = Instant::now();
    let not_ready = loop {
        let r = d.call("GET", "/readyz", None, None).await;
        if r.status == 503 {
            break r;
        }
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never degraded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(error_code(&not_ready), "not_ready");
    let details = &not_ready.json()["error"]["details"];
    assert!(
        details
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["check"] == "realtime"
                && p["message"]
                    .as_str()
                    .unwrap()
                    .contains("real-time pass is behind")),
        "{}",
        not_ready.body
    );
    let r = d.call("GET", "/metrics", None, None).await;
    // The first pass took (at least) the first contact and waits for the lock; the others
    // wait for it.
    assert!(
        metric(&r.body, "hogsend_realtime_backlog_contacts") >= 1.0,
        "{}",
        r.body
    );
    assert!(
        metric(&r.body, "hogsend_realtime_backlog_age_seconds") > bound.as_secs_f64(),
        "{}",
        r.body
    );
    for i in 0..3 {
        let r = d
            .call(
                "GET",
                &format!("/v1/buckets/signed_up/members/stalled{i}"),
                Some(&d.read_key),
                None,
            )
            .await;
        assert_eq!(r.status, 404, "joined while the pass lock was held");
    }

    // The pass is waiting for the lock; keep it waiting a while longer, so that its wait
    // is certainly longer than 0.1 s.
    let started = Instant::now();
    while count(
        &mut holder,
        "select count(*) from pg_stat_activity
          where datname = current_database() and wait_event = 'advisory'",
    )
    .await
        == 0
    {
        assert!(started.elapsed() < Duration::from_secs(10), "no pass waits");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("select pg_advisory_unlock($1)")
        .bind(hogsend_schema::lock_key("hogsend"))
        .execute(&mut holder)
        .await
        .unwrap();
    for i in 0..3 {
        wait_membership(&d, "signed_up", &format!("stalled{i}"), true).await;
    }
    let started = Instant::now();
    while d.call("GET", "/readyz", None, None).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never ready again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = d.call("GET", "/metrics", None, None).await;
    assert_eq!(metric(&r.body, "hogsend_realtime_backlog_contacts"), 0.0);
    assert_eq!(metric(&r.body, "hogsend_realtime_backlog_age_seconds"), 0.0);
    // The stalled pass's wait (over 0.3 s) is counted as a lock wait, not as work.
    let waits = metric(&r.body, "hogsend_realtime_lock_wait_seconds_count");
    let short_waits = metric(
        &r.body,
        "hogsend_realtime_lock_wait_seconds_bucket{le=\"0.1\"}",
    );
    assert!(waits >= 1.0 && short_waits < waits, "{}", r.body);
    d.stop().await.unwrap();
}
