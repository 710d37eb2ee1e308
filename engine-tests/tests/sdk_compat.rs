//! What analytics SDKs send, over HTTP: Segment-spec bodies whatever their `Content-Type`
//! and compression, Segment-style error bodies, and PostHog's capture API (key in the body,
//! gzip by header or `?compression=gzip-js`, form `data=` base64, `$set_once`,
//! `$create_alias`).

use base64::Engine;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;
use hogsend_engine_tests::compile;
use hogsend_runtime::testkit::{request, Response, TestDaemon, TestDatabase};
use serde_json::{json, Value};
use std::io::Write;

const PROJECT: &str = "bucket pro {\n  criteria contact.plan == \"pro\"\n}\n";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// HTTP `deflate` is zlib-wrapped (RFC 9110).
fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn basic(key: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

async fn post(d: &TestDaemon, path: &str, headers: &[(&str, String)], body: &[u8]) -> Response {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    request(d.addr, "POST", path, &headers, Some(body)).await
}

async fn scalar(tdb: &TestDatabase, sql: &str) -> Value {
    let mut conn = tdb.connect().await;
    sqlx::query_scalar::<_, Value>(&format!("select to_jsonb(({sql}))"))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn segment_routes_take_any_content_type_and_compression() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    let call = |n: u32| {
        serde_json::to_vec(&json!({"batch": [{"type": "track", "event": "app_opened",
            "userId": "u1", "messageId": format!("m{n}"),
            "originalTimestamp": "2026-01-01T10:00:00Z"}],
            "sentAt": "2026-01-01T10:00:00Z"}))
        .unwrap()
    };
    // rudder-sdk-node's defaults: gzipped JSON labelled as a form.
    let form = "application/x-www-form-urlencoded".to_owned();
    let r = post(
        &d,
        "/v1/batch",
        &[
            ("content-type", form.clone()),
            ("content-encoding", "gzip".into()),
            ("authorization", basic(&d.ingest_key)),
        ],
        &gzip(&call(1)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &d,
        "/v1/batch",
        &[
            ("content-encoding", "deflate".into()),
            ("authorization", basic(&d.ingest_key)),
        ],
        &deflate(&call(2)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        scalar(
            &tdb,
            "select count(*) from hogsend.events where event = 'app_opened'"
        )
        .await,
        2
    );
    // originalTimestamp is the event time, corrected by sentAt (the clock was ~now-2026-01-01
    // behind): close to the receive time.
    assert_eq!(
        scalar(
            &tdb,
            "select bool_and(occurred_at > now() - interval '1 minute') from hogsend.events"
        )
        .await,
        true
    );
    // Errors carry Segment's top-level code and message beside the error object.
    let r = post(
        &d,
        "/v1/track",
        &[("authorization", basic("hs_nope_nope"))],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 401);
    let body = r.json();
    assert_eq!(body["code"], "unauthorized");
    assert_eq!(body["message"], body["error"]["message"]);
    assert_eq!(body["error"]["code"], "unauthorized");
    let r = post(
        &d,
        "/v1/track",
        &[("authorization", basic(&d.ingest_key))],
        b"{\"type\":",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "malformed_json");
    // Other routes keep the one shape.
    let r = post(
        &d,
        "/v1/events",
        &[
            ("authorization", format!("Bearer {}", d.ingest_key)),
            ("content-type", "application/json".into()),
        ],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json().get("code").is_none(), "{}", r.body);
    d.stop().await.unwrap();
}

#[tokio::test]
async fn posthog_capture_api_in_every_encoding() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    let json_type = ("content-type", "application/json".to_owned());
    // posthog-python / posthog-node: {api_key, batch, sent_at} to /batch/, key in the body.
    let batch = json!({"api_key": d.ingest_key, "sent_at": "2026-01-01T10:00:00Z", "batch": [
        {"event": "signed_up", "distinct_id": "anon-1", "uuid": "0190-0001",
         "timestamp": "2026-01-01T09:59:00Z", "properties": {"$set_once": {"plan": "free", "src": "ad"}}},
        {"event": "$identify", "distinct_id": "user-1", "uuid": "0190-0002",
         "properties": {"$anon_distinct_id": "anon-1"}, "$set": {"plan": "pro"}},
        {"event": "$create_alias", "distinct_id": "device-9", "uuid": "0190-0003",
         "properties": {"distinct_id": "device-9", "alias": "user-1"}}]});
    let r = post(
        &d,
        "/batch/",
        std::slice::from_ref(&json_type),
        &serde_json::to_vec(&batch).unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], 1);
    assert_eq!(
        scalar(&tdb, "select jsonb_agg(jsonb_build_array(user_key, properties) order by user_key) from hogsend.contacts").await,
        json!([["user-1", {"plan": "pro", "src": "ad"}]])
    );
    assert_eq!(
        scalar(&tdb, "select jsonb_agg(event order by id) from hogsend.events where user_key = 'user-1' and event not like 'bucket:%'").await,
        json!(["signed_up", "$identify"])
    );
    // A replay stores nothing.
    let r = post(
        &d,
        "/batch",
        std::slice::from_ref(&json_type),
        &serde_json::to_vec(&batch).unwrap(),
    )
    .await;
    assert_eq!(r.json()["stored"], 0, "{}", r.body);
    // posthog-js: an array, gzipped, `?compression=gzip-js`, the key as properties.token.
    let events = json!([{"event": "$pageview", "distinct_id": "device-9", "uuid": "0190-0004",
        "properties": {"token": d.ingest_key, "$current_url": "https://x/"}}]);
    let r = post(
        &d,
        "/e/?compression=gzip-js&ver=1.0",
        &[("content-type", "text/plain".into())],
        &gzip(&serde_json::to_vec(&events).unwrap()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The form encoding: data=<base64 JSON>.
    let single = json!({"event": "app_opened", "distinct_id": "user-1", "uuid": "0190-0005",
        "properties": {"token": d.ingest_key}});
    let data =
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&single).unwrap());
    let form = format!(
        "data={}",
        data.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    );
    let r = post(
        &d,
        "/i/v0/e/",
        &[("content-type", "application/x-www-form-urlencoded".into())],
        form.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A Bearer key (posthog-python's v1 capture mode).
    let r = post(
        &d,
        "/i/v1/analytics/events",
        &[
            json_type.clone(),
            ("authorization", format!("Bearer {}", d.ingest_key)),
        ],
        &serde_json::to_vec(&json!({"batch": [{"event": "x", "distinct_id": "user-1"}]})).unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The alias and the identify resolved every distinct id to the user.
    assert_eq!(
        scalar(
            &tdb,
            "select jsonb_agg(distinct user_key) from hogsend.events"
        )
        .await,
        json!(["user-1"])
    );
    // No key, a bad key: 401 and nothing stored.
    let r = post(
        &d,
        "/capture/",
        std::slice::from_ref(&json_type),
        br#"{"event": "y", "distinct_id": "z"}"#,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = post(
        &d,
        "/capture/",
        std::slice::from_ref(&json_type),
        br#"{"api_key": "hs_nope_nope", "event": "y", "distinct_id": "z"}"#,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(
        scalar(
            &tdb,
            "select count(*) from hogsend.events where event = 'y'"
        )
        .await,
        0
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn cors_on_the_ingest_routes_for_configured_origins() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| {
        c.cors_origins = vec!["https://app.example.com".to_owned()];
    })
    .await;
    let preflight = |origin: &str| {
        vec![
            ("origin".to_owned(), origin.to_owned()),
            (
                "access-control-request-method".to_owned(),
                "POST".to_owned(),
            ),
            (
                "access-control-request-headers".to_owned(),
                "content-type".to_owned(),
            ),
        ]
    };
    let r = request(
        d.addr,
        "OPTIONS",
        "/e/",
        &preflight("https://app.example.com"),
        None,
    )
    .await;
    assert!(r.status < 300, "{} {}", r.status, r.body);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let r = request(
        d.addr,
        "OPTIONS",
        "/e/",
        &preflight("https://evil.example"),
        None,
    )
    .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The capture itself carries the header; read routes carry none.
    let body =
        serde_json::to_vec(&json!({"event": "x", "distinct_id": "u", "token": d.ingest_key}))
            .unwrap();
    let r = post(
        &d,
        "/e/",
        &[("origin", "https://app.example.com".into())],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    let r = request(
        d.addr,
        "GET",
        "/healthz",
        &[("origin".to_owned(), "https://app.example.com".to_owned())],
        None,
    )
    .await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    d.stop().await.unwrap();
}
