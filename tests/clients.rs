//! Real clients against a running daemon: the stock Segment Python SDK, the PostHog Python
//! SDK, rudder-sdk-python, the JavaScript SDKs (`@rudderstack/rudder-sdk-node` with its
//! default settings, `posthog-node`, `@segment/analytics-node`) and a recorded PostHog
//! webhook payload replayed with `requests` (scripts in `tests/clients/`). Every SDK that
//! takes a key is also given a revoked one: one 401, not retried. posthog-js runs in headless
//! Chromium (chromedriver), on a page of another origin with a publishable key; its
//! screenshot is kept at `target/tmp/posthog-js-chromium.png`.
//!
//! Nothing is skipped: without `python3`/`node`/`chromium`/`chromedriver` or the packages
//! (`.ci/run` installs them: pip for the Python SDKs, `npm install --prefix tests/clients`
//! for the JavaScript ones, apt for Chromium) these tests fail and say what to install.

use hogsend_runtime::keys;
use hogsend_runtime::testkit::{TestDaemon, TestDatabase};
use hogsend_schema::GeneratedFile;
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::path::Path;
use std::time::{Duration, Instant};

const PROJECT: &str = r#"
bucket signed_up {
  criteria did signed_up
}

bucket pro {
  criteria contact.plan == "pro"
}
"#;

fn python() -> String {
    std::env::var("HOGSEND_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs a client script against the daemon; panics with its output when it fails.
async fn run_client(script: &str, d: &TestDaemon, extra: &[&str]) {
    let check = tokio::process::Command::new(python())
        .args(["-c", "import segment.analytics, requests"])
        .output()
        .await;
    match check {
        Err(e) => panic!(
            "`{}` cannot be run ({e}): these tests need Python 3 with segment-analytics-python \
             and requests (`python3 -m pip install segment-analytics-python==2.4.0`; .ci/run does it)",
            python()
        ),
        Ok(o) if !o.status.success() => panic!(
            "the Python client packages are missing ({}): run \
             `python3 -m pip install segment-analytics-python==2.4.0` (.ci/run does it)",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Ok(_) => {}
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = tokio::process::Command::new(python())
        .arg(&path)
        .args([
            "--host",
            &format!("http://{}", d.addr),
            "--key",
            &d.ingest_key,
        ])
        .args(extra)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `script` (under `tests/clients/`) with `interpreter` against the daemon, with the
/// host and key arguments and `extra`; panics with its output when it fails.
async fn run_script(interpreter: &str, script: &str, d: &TestDaemon, key: &str, extra: &[&str]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = tokio::process::Command::new(interpreter)
        .arg(&path)
        .args(["--host", &format!("http://{}", d.addr), "--key", key])
        .args(extra)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{interpreter} {}` ({e}); .ci/run installs what it needs",
                path.display()
            )
        });
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key that existed and was revoked.
async fn revoked_key(tdb: &TestDatabase) -> String {
    let mut conn = tdb.connect().await;
    let (info, key) = keys::create(&mut conn, "hogsend", keys::Scope::Ingest, Some("revoked"))
        .await
        .unwrap();
    assert!(keys::revoke(&mut conn, "hogsend", &info.prefix)
        .await
        .unwrap());
    key
}

async fn rows(conn: &mut PgConnection, sql: &str) -> Value {
    sqlx::query_scalar::<_, Value>(&format!(
        "select coalesce(jsonb_agg(r), '[]') from ({sql}) r"
    ))
    .fetch_one(conn)
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn wait_member(d: &TestDaemon, bucket: &str, key: &str) {
    let started = Instant::now();
    while d
        .call(
            "GET",
            &format!("/v1/buckets/{bucket}/members/{key}"),
            Some(&d.read_key),
            None,
        )
        .await
        .status
        != 200
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{key} never joined {bucket}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_segment_python_sdk_feeds_the_daemon() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    let revoked = revoked_key(&tdb).await;
    run_client("segment_client.py", &d, &["--revoked", &revoked]).await;
    let mut conn = tdb.connect().await;
    // identify folded the anonymous visitor into the user: one contact, every event on it.
    let contacts = rows(
        &mut conn,
        "select user_key, external_id, anonymous_id, email, properties->>'plan' as plan
           from hogsend.contacts",
    )
    .await;
    assert_eq!(
        contacts,
        json!([{"user_key": "py-user", "external_id": "py-user", "anonymous_id": "py-anon",
                "email": "py.user@example.com", "plan": "pro"}])
    );
    let events = rows(
        &mut conn,
        "select event, user_key, properties->>'path' as path from hogsend.events
          where event not like 'bucket:%' order by id",
    )
    .await;
    assert_eq!(
        events,
        json!([
            {"event": "signed_up", "user_key": "py-user", "path": null},
            {"event": "$pageview", "user_key": "py-user", "path": "/pricing"},
            {"event": "app_opened", "user_key": "py-user", "path": null},
            {"event": "app_opened", "user_key": "py-user", "path": null},
            {"event": "invoice.paid", "user_key": "py-user", "path": null}
        ]),
        "the repeated message id is stored once"
    );
    // Timestamps are the SDK's, corrected for skew: never in the future, close to now.
    let skew = rows(
        &mut conn,
        "select count(*) as n from hogsend.events
          where occurred_at > now() or occurred_at < now() - interval '1 minute'",
    )
    .await;
    assert_eq!(skew, json!([{"n": 0}]));
    wait_member(&d, "pro", "py-user").await;
    wait_member(&d, "signed_up", "py-user").await;
    let r = d
        .call(
            "GET",
            "/v1/buckets/signed_up/members",
            Some(&d.read_key),
            None,
        )
        .await;
    assert_eq!(r.json()["members"].as_array().map(Vec::len), Some(1));
    d.stop().await.unwrap();
}

#[tokio::test]
async fn a_recorded_posthog_webhook_feeds_the_daemon() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    run_client("posthog_webhook.py", &d, &[]).await;
    let mut conn = tdb.connect().await;
    let contacts = rows(
        &mut conn,
        "select user_key, anonymous_id, email, properties - '$initial_browser' as properties
           from hogsend.contacts order by user_key",
    )
    .await;
    assert_eq!(
        contacts,
        json!([
            {"user_key": "ph-user-1", "anonymous_id": "0192f3a0-0000-7000-8000-00000000abcd",
             "email": "maria@acme.test",
             "properties": {"email": "Maria@Acme.test", "role": "owner", "plan": "pro",
                            "company": {"name": "Acme", "employees": 12}}},
            {"user_key": "ph-user-2", "anonymous_id": null, "email": "lee@partner.test",
             "properties": {"email": "lee@partner.test", "signup source": "partner"}}
        ])
    );
    let events = rows(
        &mut conn,
        "select event, user_key, message_id, to_char(occurred_at at time zone 'UTC', 'HH24:MI:SS') as at
           from hogsend.events where event not like 'bucket:%' order by id",
    )
    .await;
    assert_eq!(
        events,
        json!([
            {"event": "$identify", "user_key": "ph-user-1",
             "message_id": "0192f3a1-7c2e-7b3d-9a41-2f6d8e0c1a01", "at": "09:15:02"},
            {"event": "$pageview", "user_key": "ph-user-1",
             "message_id": "0192f3a1-9d10-7c44-8b0e-5a1f2e3d4c02", "at": "09:16:40"},
            {"event": "signed_up", "user_key": "ph-user-2",
             "message_id": "0192f3a2-1111-7000-8000-000000000003", "at": "09:00:00"}
        ])
    );
    wait_member(&d, "pro", "ph-user-1").await;
    wait_member(&d, "signed_up", "ph-user-2").await;
    d.stop().await.unwrap();
}

#[tokio::test]
async fn the_posthog_python_sdk_feeds_the_daemon() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    let revoked = revoked_key(&tdb).await;
    run_script(
        &python(),
        "posthog_client.py",
        &d,
        &d.ingest_key,
        &["--revoked", &revoked],
    )
    .await;
    let mut conn = tdb.connect().await;
    // $identify folded the anonymous visitor in; alias folded the device id in; $set patched
    // the contact and $set_once only added what it did not have.
    let contacts = rows(
        &mut conn,
        "select user_key, anonymous_id, email, properties - 'email' as properties
           from hogsend.contacts order by user_key",
    )
    .await;
    assert_eq!(
        contacts,
        json!([{"user_key": "ph-user", "anonymous_id": "ph-anon", "email": "ph.user@example.com",
                "properties": {"plan": "pro", "first_seen": "python"}}])
    );
    let events = rows(
        &mut conn,
        "select event, user_key, message_id is not null as has_uuid from hogsend.events
          where event not like 'bucket:%' order by id",
    )
    .await;
    assert_eq!(
        events,
        json!([
            {"event": "signed_up", "user_key": "ph-user", "has_uuid": true},
            {"event": "$pageview", "user_key": "ph-user", "has_uuid": true},
            {"event": "$identify", "user_key": "ph-user", "has_uuid": true},
            {"event": "$set", "user_key": "ph-user", "has_uuid": true},
            {"event": "$set_once", "user_key": "ph-user", "has_uuid": true},
            {"event": "app_opened", "user_key": "ph-user", "has_uuid": true},
            {"event": "invoice.paid", "user_key": "ph-user", "has_uuid": true}
        ]),
        "the replayed uuid is stored once; $create_alias merges and stores no event"
    );
    // The SDK's timestamp, corrected by its sent_at (a clock in sync: within a second).
    let at = rows(
        &mut conn,
        "select abs(extract(epoch from occurred_at - '2026-01-05T09:30:00Z'::timestamptz)) < 2 as ok
           from hogsend.events where event = 'app_opened'",
    )
    .await;
    assert_eq!(at, json!([{"ok": true}]));
    wait_member(&d, "pro", "ph-user").await;
    wait_member(&d, "signed_up", "ph-user").await;
    d.stop().await.unwrap();
}

/// The path to `node`, for the JavaScript SDK scripts.
fn node() -> String {
    std::env::var("HOGSEND_TEST_NODE").unwrap_or_else(|_| "node".to_owned())
}

#[tokio::test]
async fn the_rudderstack_node_sdk_with_default_settings_feeds_the_daemon() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    run_script(&node(), "rudder_node.js", &d, &d.ingest_key, &[]).await;
    let mut conn = tdb.connect().await;
    let contacts = rows(
        &mut conn,
        "select user_key, anonymous_id, email, properties->>'plan' as plan from hogsend.contacts",
    )
    .await;
    assert_eq!(
        contacts,
        json!([{"user_key": "rn-user", "anonymous_id": "rn-anon", "email": "rn@example.com",
                "plan": "pro"}])
    );
    let events = rows(
        &mut conn,
        "select event, user_key from hogsend.events where event not like 'bucket:%' order by id",
    )
    .await;
    assert_eq!(
        events,
        json!([
            {"event": "signed_up", "user_key": "rn-user"},
            {"event": "$pageview", "user_key": "rn-user"},
            {"event": "app_opened", "user_key": "rn-user"}
        ])
    );
    // originalTimestamp (the SDK sends no timestamp) with sentAt correction: close to now.
    let skew = rows(
        &mut conn,
        "select count(*) as n from hogsend.events
          where occurred_at > now() or occurred_at < now() - interval '1 minute'",
    )
    .await;
    assert_eq!(skew, json!([{"n": 0}]));
    wait_member(&d, "pro", "rn-user").await;
    d.stop().await.unwrap();
}

#[tokio::test]
async fn rudder_sdk_python_takes_a_revoked_key_401_as_final() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    let revoked = revoked_key(&tdb).await;
    run_script(
        &python(),
        "rudder_client.py",
        &d,
        &d.ingest_key,
        &["--revoked", &revoked],
    )
    .await;
    let mut conn = tdb.connect().await;
    let events = rows(
        &mut conn,
        "select event, user_key from hogsend.events where event not like 'bucket:%' order by id",
    )
    .await;
    assert_eq!(
        events,
        json!([{"event": "signed_up", "user_key": "rp-user"}])
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn posthog_node_and_segment_analytics_node_feed_the_daemon() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    run_script(&node(), "node_sdks.js", &d, &d.ingest_key, &[]).await;
    let mut conn = tdb.connect().await;
    let contacts = rows(
        &mut conn,
        "select user_key, anonymous_id, email, properties->>'plan' as plan
           from hogsend.contacts order by user_key",
    )
    .await;
    assert_eq!(
        contacts,
        json!([
            {"user_key": "pn-user", "anonymous_id": "pn-anon", "email": "pn@example.com", "plan": "pro"},
            {"user_key": "sn-user", "anonymous_id": "sn-anon", "email": "sn@example.com", "plan": "pro"}
        ])
    );
    let events = rows(
        &mut conn,
        "select event, user_key, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') as at
           from hogsend.events where event not like 'bucket:%' and event <> 'signed_up' order by id",
    )
    .await;
    // The SDKs' own timestamps (their clocks are in sync: the sentAt correction is ~0).
    assert_eq!(
        events,
        json!([
            {"event": "$identify", "user_key": "pn-user", "at": events[0]["at"]},
            {"event": "app_opened", "user_key": "pn-user", "at": "2026-01-05 09:30"},
            {"event": "app_opened", "user_key": "sn-user", "at": "2026-01-05 09:30"}
        ])
    );
    let signed_up = rows(
        &mut conn,
        "select user_key from hogsend.events where event = 'signed_up' order by user_key",
    )
    .await;
    assert_eq!(
        signed_up,
        json!([{"user_key": "pn-user"}, {"user_key": "sn-user"}])
    );
    wait_member(&d, "pro", "pn-user").await;
    wait_member(&d, "pro", "sn-user").await;
    d.stop().await.unwrap();
}

#[tokio::test]
async fn the_javascript_sdks_take_a_revoked_key_401_as_final() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    let revoked = revoked_key(&tdb).await;
    // The script counts every request each SDK makes through a proxy: one, answered 401.
    run_script(&node(), "revoked_node.js", &d, &revoked, &[]).await;
    let mut conn = tdb.connect().await;
    let events = rows(&mut conn, "select event from hogsend.events").await;
    assert_eq!(events, json!([]), "nothing was stored with the revoked key");
    d.stop().await.unwrap();
}

/// Compiles one `.hog` file into the generated SQL the daemon is launched with.
fn compile(hog: &str) -> Vec<GeneratedFile> {
    let set = hogsend_compiler::source::SourceSet {
        files: vec![hogsend_compiler::source::SourceFile::new("test.hog", hog)],
        ..Default::default()
    };
    let compiled = hogsend_compiler::compile(&set);
    compiled.files.unwrap_or_else(|| {
        panic!(
            "test project has errors: {:#?}",
            compiled.checked.diagnostics
        )
    })
}

/// The page posthog-js runs in: loads the npm package's self-contained bundle (no internet)
/// and sends with a publishable key to the daemon, a different origin (CORS).
fn posthog_js_page(key: &str, daemon: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>hogsend × posthog-js</title>
<script>
  // Every request the page makes, with its answer, for the test's failure message.
  window.requests = [];
  const fetch0 = window.fetch;
  window.fetch = (url, opts) => fetch0(url, opts).then(
    (r) => {{ requests.push(new URL(url, location.href).pathname + " → " + r.status); return r; }},
    (e) => {{ requests.push(new URL(url, location.href).pathname + " failed: " + e); throw e; }});
  const open0 = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (m, url) {{
    this.addEventListener("loadend", () => requests.push(new URL(url, location.href).pathname + " → " + this.status));
    return open0.apply(this, arguments);
  }};
</script>
<script src="/posthog.js"></script></head>
<body style="font-family: sans-serif; margin: 2em">
<h1>hogsend × posthog-js</h1>
<p>posthog-js sends to <code>{daemon}</code> with a publishable key.</p>
<pre id="log">loading…</pre>
<script>
  const log = (line) => {{ document.getElementById("log").textContent += "\n" + line; }};
  posthog.init("{key}", {{
    api_host: "{daemon}",
    autocapture: false,
    capture_pageview: true,
    capture_pageleave: false,
    disable_session_recording: true,
    disable_surveys: true,
    advanced_disable_decide: true,
    advanced_disable_flags: true,
    disable_external_dependency_loading: true,
    persistence: "memory",
    request_batching: false,
    // Headless Chromium announces itself in its user agent, which posthog-js drops as a bot.
    opt_out_useragent_filter: true,
  }});
  log("anonymous id: " + posthog.get_distinct_id());
  posthog.capture("signed_up", {{ source: "posthog-js" }});
  posthog.identify("js-user", {{ plan: "pro", email: "js@example.com" }});
  posthog.capture("app_opened", {{ screen: "home" }});
  log("captured: $pageview, signed_up, $identify, app_opened");
  window.hogsendDone = true;
</script></body></html>"#
    )
}

/// Serves `page` at `/` and the posthog-js bundle at `/posthog.js`, one connection at a time.
async fn serve_page(listener: tokio::net::TcpListener, page: String, bundle: Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let line = String::from_utf8_lossy(&head);
        let path = line.split_whitespace().nth(1).unwrap_or("/");
        let (status, kind, body) = match path {
            "/" => (
                "200 OK",
                "text/html; charset=utf-8",
                page.as_bytes().to_vec(),
            ),
            "/posthog.js" => ("200 OK", "application/javascript", bundle.clone()),
            _ => ("404 Not Found", "text/plain", b"not found".to_vec()),
        };
        let header = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(header.as_bytes()).await;
        let _ = stream.write_all(&body).await;
    }
}

/// An HTTP exchange with chromedriver, which keeps connections open whatever the request
/// says: the answer is read up to its `Content-Length`. Returns the status and the JSON body.
async fn driver_http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("chromedriver at {addr}: {e}"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let json =
                    serde_json::from_slice(&buf[end + 4..end + 4 + length]).unwrap_or(Value::Null);
                return (status, json);
            }
        }
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        assert!(
            n > 0,
            "chromedriver closed the connection: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A WebDriver command to chromedriver; the answer's `value`.
async fn webdriver(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, answer) = driver_http(addr, method, path, body.as_ref()).await;
    assert!(
        status == 200,
        "chromedriver {method} {path}: {status} {answer}"
    );
    answer["value"].clone()
}

/// chromedriver, stopped when dropped.
struct Chromedriver(std::process::Child);

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn posthog_js_in_headless_chromium_feeds_the_daemon_with_a_publishable_key() {
    let bundle_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/node_modules/posthog-js/dist/array.full.no-external.js");
    let bundle = std::fs::read(&bundle_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `npm install --prefix tests/clients` (.ci/run does it)",
            bundle_path.display()
        )
    });
    let chromedriver_bin =
        std::env::var("HOGSEND_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned());
    let chromium_bin =
        std::env::var("HOGSEND_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());

    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", site.local_addr().unwrap());
    let tdb = TestDatabase::new().await;
    let cors = origin.clone();
    let d = TestDaemon::start(&tdb, compile(PROJECT), move |c| {
        c.cors_origins = vec![cors];
    })
    .await;
    let key = {
        let mut conn = tdb.connect().await;
        keys::create_publishable(&mut conn, "hogsend", Some("browser"))
            .await
            .unwrap()
            .1
    };
    let page = posthog_js_page(&key, &format!("http://{}", d.addr));
    tokio::spawn(serve_page(site, page, bundle));

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let driver = Chromedriver(
        std::process::Command::new(&chromedriver_bin)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `{chromedriver_bin}` ({e}): apt-get install chromium chromium-driver (.ci/run does it)")
            }),
    );
    let wd: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let started = Instant::now();
    loop {
        let ready = tokio::net::TcpStream::connect(wd).await.is_ok()
            && driver_http(wd, "GET", "/status", None).await.1["value"]["ready"] == true;
        if ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let session = webdriver(
        wd,
        "POST",
        "/session",
        Some(
            json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium_bin, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1000,700"]}}}}),
        ),
    )
    .await;
    let id = session["sessionId"]
        .as_str()
        .expect("a session id")
        .to_owned();
    webdriver(
        wd,
        "POST",
        &format!("/session/{id}/url"),
        Some(json!({"url": origin})),
    )
    .await;

    // posthog-js sends from the page: wait until the daemon has stored it all.
    let mut conn = tdb.connect().await;
    let started = Instant::now();
    let events = loop {
        let events = rows(
            &mut conn,
            "select event, user_key from hogsend.events where event not like 'bucket:%'
              order by event",
        )
        .await;
        if events.as_array().map_or(0, Vec::len) >= 4 || started.elapsed() > Duration::from_secs(30)
        {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = webdriver(
        wd,
        "POST",
        &format!("/session/{id}/execute/sync"),
        Some(json!({"script": "const log = document.getElementById('log'); log.textContent += '\\nhogsend answered: ' + window.requests.join(', '); return log.textContent", "args": []})),
    )
    .await;
    let shot = webdriver(wd, "GET", &format!("/session/{id}/screenshot"), None).await;
    {
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("posthog-js-chromium.png");
        std::fs::write(&path, &png).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        eprintln!("screenshot: {}", path.display());
    }
    webdriver(wd, "DELETE", &format!("/session/{id}"), None).await;
    drop(driver);

    // Every call, the anonymous ones folded into the user by $identify.
    assert_eq!(
        events,
        json!([
            {"event": "$identify", "user_key": "js-user"},
            {"event": "$pageview", "user_key": "js-user"},
            {"event": "app_opened", "user_key": "js-user"},
            {"event": "signed_up", "user_key": "js-user"}
        ]),
        "page log: {log}"
    );
    // The traits are properties; a publishable key sets no email address.
    let contacts = rows(
        &mut conn,
        "select user_key, anonymous_id is not null as had_anonymous_id, email,
                properties->>'plan' as plan from hogsend.contacts",
    )
    .await;
    assert_eq!(
        contacts,
        json!([{"user_key": "js-user", "had_anonymous_id": true, "email": null, "plan": "pro"}])
    );
    wait_member(&d, "pro", "js-user").await;
    d.stop().await.unwrap();
}
