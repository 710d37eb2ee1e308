//! Real clients against a running daemon: the stock Segment Python SDK, the PostHog Python
//! SDK, rudder-sdk-python, the JavaScript SDKs (`@rudderstack/rudder-sdk-node` with its
//! default settings, `posthog-node`, `@segment/analytics-node`) and a recorded PostHog
//! webhook payload replayed with `requests` (scripts in `tests/clients/`). Every SDK that
//! takes a key is also given a revoked one: one 401, not retried.
//!
//! Nothing is skipped: without `python3`/`node` or the packages (`.ci/run` installs them:
//! pip for the Python SDKs, `npm install --prefix tests/clients` for the JavaScript ones)
//! these tests fail and say what to install.

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
