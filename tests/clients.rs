//! Real clients against a running daemon: the stock Segment Python SDK and a recorded
//! PostHog webhook payload replayed with `requests` (scripts in `tests/clients/`).
//!
//! Nothing is skipped: without `python3` or the packages (`.ci/run` installs them with
//! `pip install segment-analytics-python==2.4.0`) these tests fail and say what to install.

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
async fn run_client(script: &str, d: &TestDaemon) {
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
    run_client("segment_client.py", &d).await;
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
    run_client("posthog_webhook.py", &d).await;
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
