//! The `http` email provider end to end against a Resend-compatible API running in the test
//! process (`hogsend_runtime::fake_resend`): the request carries every part of the message,
//! the bearer key and an `Idempotency-Key` stable per message; 429 (with `Retry-After`) and
//! 503 are retried, 422 fails at once; the provider's id is recorded. Then the provider's
//! webhooks: Svix signatures (a forged one and a replayed stale one are refused), delivered,
//! soft and hard bounces, complaints, suppression, and a webhook delivered twice.

use std::time::{Duration, Instant};

use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};
use hogsend_runtime::fake_resend::{FakeResend, Scripted};
use hogsend_runtime::mail::links::Signer;
use hogsend_runtime::mail::settings::{HttpSettings, ProviderSettings};
use hogsend_runtime::mail::webhook_signature::sign;
use hogsend_runtime::mail::MailSettings;
use hogsend_runtime::testkit::{request, Response, TestDaemon, TestDatabase};
use serde_json::{json, Value};
use sqlx::PgConnection;

const LISTS: &str = r#"
list news {
  name "Product news"
}
"#;

const WELCOME: &str = "---
subject: Welcome, {{ contact.first_name | default(\"friend\") }}
category: news
reply_to: Support <support@acme.test>
---
<html><body><p>Hi {{ contact.first_name }}</p>
<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p></body></html>
";

const RECEIPT: &str = "---
subject: Your receipt
category: transactional
---
Thanks {{ contact.first_name }}.
";

const API_KEY: &str = "re_test_key";
/// `whsec_` + base64 of "hogsend-webhook-test-secret".
const WEBHOOK_SECRET: &str = "whsec_aG9nc2VuZC13ZWJob29rLXRlc3Qtc2VjcmV0";

fn files() -> Vec<hogsend_compiler::emit::GeneratedFile> {
    let set = SourceSet {
        files: vec![SourceFile::new("lists.hog", LISTS)],
        templates: vec![
            TemplateSource {
                id: "receipt".into(),
                html: None,
                text: Some(SourceFile::new("templates/receipt.txt", RECEIPT)),
            },
            TemplateSource {
                id: "welcome".into(),
                html: Some(SourceFile::new("templates/welcome.html", WELCOME)),
                text: None,
            },
        ],
        ..Default::default()
    };
    let compiled = hogsend_compiler::compile(&set);
    compiled
        .files
        .unwrap_or_else(|| panic!("{:#?}", compiled.checked.diagnostics))
}

fn http_settings(api: &FakeResend) -> MailSettings {
    MailSettings {
        provider: ProviderSettings::Http(HttpSettings {
            base_url: api.url(),
            api_key: API_KEY.into(),
        }),
        provider_name: "http",
        webhook_secrets: vec![WEBHOOK_SECRET.into()],
        from: "Acme <hello@acme.test>".into(),
        public_url: "https://mail.acme.test".into(),
        unsubscribe_mailto: "unsubscribe@acme.test".into(),
        signer: Signer::from_env_value("test-secret"),
        poll: Duration::from_millis(50),
        retry_base: Duration::from_millis(200),
        max_attempts: 3,
        ..MailSettings::default()
    }
}

async fn sql(conn: &mut PgConnection, text: &str) {
    sqlx::raw_sql(text)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

async fn queue(conn: &mut PgConnection, key: &str, template: &str, category: &str) -> i64 {
    sqlx::query_scalar(
        "insert into hogsend.messages (user_key, template, category, to_email)
         select $1, $2, $3, c.email from (select 1) one
           left join hogsend.contacts c on c.user_key = $1
         returning id",
    )
    .bind(key)
    .bind(template)
    .bind(category)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// A message row: (id, status, attempts, provider_id, last_error).
type Row = (i64, String, i32, Option<String>, Option<String>);

/// Waits until no message is queued or being sent; returns every message row.
async fn settled(conn: &mut PgConnection) -> Vec<Row> {
    let start = Instant::now();
    loop {
        let rows: Vec<Row> = sqlx::query_as(
            "select id, status, attempts, provider_id, last_error from hogsend.messages order by id",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        if rows.iter().all(|r| r.1 != "queued" && r.1 != "sending") {
            return rows;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not delivered: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn row(rows: &[Row], id: i64) -> &Row {
    rows.iter().find(|r| r.0 == id).unwrap()
}

async fn suppressions(conn: &mut PgConnection) -> Vec<(String, String)> {
    sqlx::query_as("select email, reason from hogsend.suppressions order by email")
        .fetch_all(conn)
        .await
        .unwrap()
}

async fn installation(conn: &mut PgConnection) -> String {
    sqlx::query_scalar("select id::text from hogsend.installation")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_http_provider_sends_with_an_idempotency_key_and_retries_only_transient_failures() {
    let api = FakeResend::start(API_KEY).await;
    api.fail("busy@x.test", &[Scripted::Status(429)]);
    api.fail(
        "down@x.test",
        &[Scripted::Status(503), Scripted::Status(502)],
    );
    api.fail("bad@x.test", &[Scripted::Always(422)]);
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let daemon = TestDaemon::start(&db, files(), |c| c.mail = http_settings(&api)).await;
    sql(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email, properties) values
             ('ada', 'ada@x.test', '{"first_name": "Ada"}'),
             ('bob', 'busy@x.test', '{"first_name": "Bob"}'),
             ('dot', 'down@x.test', '{}'),
             ('bad', 'bad@x.test', '{}')"#,
    )
    .await;
    let ada = queue(&mut conn, "ada", "welcome", "news").await;
    let bob = queue(&mut conn, "bob", "receipt", "transactional").await;
    let dot = queue(&mut conn, "dot", "receipt", "transactional").await;
    let bad = queue(&mut conn, "bad", "receipt", "transactional").await;
    let rows = settled(&mut conn).await;
    let install = installation(&mut conn).await;
    let deliveries = api.deliveries();
    let requests = api.requests();

    // Every request carries the message's idempotency key.
    for r in &requests {
        let to = r.body["to"][0].as_str().unwrap();
        let id = [
            ("ada@x.test", ada),
            ("busy@x.test", bob),
            ("down@x.test", dot),
            ("bad@x.test", bad),
        ]
        .iter()
        .find(|(address, _)| *address == to)
        .unwrap()
        .1;
        assert_eq!(
            r.idempotency_key.as_deref(),
            Some(format!("hogsend:{install}:{id}").as_str())
        );
    }

    // ada: one request, every part of the message, the provider's id recorded.
    let (_, status, attempts, provider_id, _) = row(&rows, ada).clone();
    assert_eq!((status.as_str(), attempts), ("sent", 1));
    let (_, ada_id, body) = deliveries
        .iter()
        .find(|d| d.2["to"][0] == "ada@x.test")
        .unwrap();
    assert_eq!(provider_id.as_deref(), Some(ada_id.as_str()));
    assert_eq!(body["from"], "Acme <hello@acme.test>");
    assert_eq!(body["subject"], "Welcome, Ada");
    assert_eq!(body["reply_to"], "Support <support@acme.test>");
    assert!(body["html"].as_str().unwrap().contains("<p>Hi Ada</p>"));
    assert!(body["text"].as_str().unwrap().contains("Hi Ada"));
    let unsubscribe = body["headers"]["List-Unsubscribe"].as_str().unwrap();
    assert!(
        unsubscribe.starts_with("<https://mail.acme.test/u/"),
        "{unsubscribe}"
    );
    assert_eq!(
        body["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(
        body["headers"]["List-Id"],
        "\"Product news\" <news.acme.test>"
    );

    // 429 then accepted; 503, 502 then accepted: retried, delivered once each.
    let count = |to: &str| requests.iter().filter(|r| r.body["to"][0] == to).count();
    assert_eq!((row(&rows, bob).1.as_str(), row(&rows, bob).2), ("sent", 2));
    assert_eq!(count("busy@x.test"), 2);
    assert_eq!((row(&rows, dot).1.as_str(), row(&rows, dot).2), ("sent", 3));
    assert_eq!(count("down@x.test"), 3);
    // 422: failed at once, the provider's error recorded.
    let (_, status, attempts, provider_id, error) = row(&rows, bad).clone();
    assert_eq!(
        (status.as_str(), attempts, provider_id),
        ("failed", 1, None)
    );
    assert!(
        error.as_deref().unwrap_or("").contains("HTTP 422"),
        "{error:?}"
    );
    assert_eq!(count("bad@x.test"), 1);
    assert_eq!(deliveries.len(), 3, "ada, bob and dot, once each");
    daemon.stop().await.unwrap();
}

/// Posts a webhook signed with `secret` at `timestamp` (Unix seconds).
async fn webhook(
    daemon: &TestDaemon,
    provider: &str,
    svix_id: &str,
    timestamp: i64,
    secret: &str,
    body: &str,
) -> Response {
    let ts = timestamp.to_string();
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("svix-id".to_string(), svix_id.to_string()),
        ("svix-timestamp".to_string(), ts.clone()),
        (
            "svix-signature".to_string(),
            sign(secret, svix_id, &ts, body.as_bytes()),
        ),
    ];
    request(
        daemon.addr,
        "POST",
        &format!("/v1/webhooks/email/{provider}"),
        &headers,
        Some(body.as_bytes()),
    )
    .await
}

fn event(kind: &str, provider_id: &str, bounce: Option<&str>) -> String {
    let mut data = json!({"email_id": provider_id, "to": ["someone@x.test"],
                          "from": "Acme <hello@acme.test>", "subject": "Hi"});
    if let Some(t) = bounce {
        data["bounce"] = json!({"type": t, "subType": "General", "message": format!("{t} bounce")});
    }
    json!({"type": kind, "created_at": "2026-01-02T03:04:05.000Z", "data": data}).to_string()
}

/// (status, delivered_at set, bounce_type, complained_at set)
async fn webhook_state(conn: &mut PgConnection, id: i64) -> (String, bool, Option<String>, bool) {
    sqlx::query_as(
        "select status, delivered_at is not null, bounce_type, complained_at is not null
           from hogsend.messages where id = $1",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn provider_webhooks_are_verified_and_bounces_and_complaints_suppress() {
    let api = FakeResend::start(API_KEY).await;
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let daemon = TestDaemon::start(&db, files(), |c| c.mail = http_settings(&api)).await;
    sql(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email) values
             ('ada', 'Ada@X.test'), ('bob', 'bob@x.test'), ('cyd', 'cyd@x.test')"#,
    )
    .await;
    let ada = queue(&mut conn, "ada", "receipt", "transactional").await;
    let bob = queue(&mut conn, "bob", "receipt", "transactional").await;
    let cyd = queue(&mut conn, "cyd", "receipt", "transactional").await;
    let rows = settled(&mut conn).await;
    let pid = |id: i64| row(&rows, id).3.clone().unwrap();
    let now = chrono::Utc::now().timestamp();

    // Refused: a forged signature, a correctly signed but stale (replayed) request, no
    // headers at all, and an unknown provider. Nothing is recorded.
    let hard = event("email.bounced", &pid(ada), Some("Permanent"));
    let forged = webhook(&daemon, "resend", "msg_1", now, "whsec_Zm9yZ2Vk", &hard).await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!(forged.json()["error"]["code"], "invalid_signature");
    let stale = webhook(&daemon, "resend", "msg_1", now - 600, WEBHOOK_SECRET, &hard).await;
    assert_eq!(stale.status, 401, "{}", stale.body);
    assert_eq!(stale.json()["error"]["code"], "invalid_signature");
    assert!(stale.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("5 minutes"));
    let bare = request(
        daemon.addr,
        "POST",
        "/v1/webhooks/email/resend",
        &[],
        Some(hard.as_bytes()),
    )
    .await;
    assert_eq!(bare.status, 401);
    let unknown = webhook(&daemon, "pigeon", "msg_1", now, WEBHOOK_SECRET, &hard).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], "unknown_provider");
    assert_eq!(
        webhook_state(&mut conn, ada).await,
        ("sent".into(), false, None, false)
    );
    assert!(suppressions(&mut conn).await.is_empty());

    // Well signed but not JSON, or without a type: 400, nothing recorded.
    let bad = webhook(&daemon, "resend", "msg_2", now, WEBHOOK_SECRET, "{nope").await;
    assert_eq!(bad.json()["error"]["code"], "malformed_json");
    let untyped = webhook(&daemon, "resend", "msg_3", now, WEBHOOK_SECRET, "{}").await;
    assert_eq!(untyped.json()["error"]["code"], "invalid_request");

    // Delivered: a marker, status unchanged.
    let r = webhook(
        &daemon,
        "resend",
        "msg_10",
        now,
        WEBHOOK_SECRET,
        &event("email.delivered", &pid(ada), None),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["message_id"], ada);
    assert_eq!(
        webhook_state(&mut conn, ada).await,
        ("sent".into(), true, None, false)
    );

    // A soft bounce: bounced, not suppressed.
    let r = webhook(
        &daemon,
        "resend",
        "msg_11",
        now,
        WEBHOOK_SECRET,
        &event("email.bounced", &pid(bob), Some("Transient")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["suppressed"], Value::Null);
    assert_eq!(
        webhook_state(&mut conn, bob).await,
        ("bounced".into(), false, Some("soft".into()), false)
    );

    // A hard bounce: bounced and suppressed (the address normalised); delivered twice (the
    // provider retries with the same svix-id), it is recorded once.
    for _ in 0..2 {
        let r = webhook(&daemon, "resend", "msg_12", now, WEBHOOK_SECRET, &hard).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["suppressed"], "bounce");
    }
    assert_eq!(
        webhook_state(&mut conn, ada).await,
        ("bounced".into(), true, Some("hard".into()), false)
    );
    let reason: Option<String> =
        sqlx::query_scalar("select bounce_reason from hogsend.messages where id = $1")
            .bind(ada)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("Permanent bounce"));

    // A complaint: complained and suppressed.
    let r = webhook(
        &daemon,
        "resend",
        "msg_13",
        now,
        WEBHOOK_SECRET,
        &event("email.complained", &pid(cyd), None),
    )
    .await;
    assert_eq!(r.json()["suppressed"], "complaint", "{}", r.body);
    assert_eq!(
        webhook_state(&mut conn, cyd).await,
        ("complained".into(), false, None, true)
    );
    assert_eq!(
        suppressions(&mut conn).await,
        vec![
            ("ada@x.test".to_string(), "bounce".to_string()),
            ("cyd@x.test".to_string(), "complaint".to_string())
        ]
    );

    // The events journeys can react to, once per webhook.
    let events: Vec<(String, String, Value)> = sqlx::query_as(
        "select user_key, event, properties from hogsend.events
          where event like 'email.%' order by id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let names: Vec<(&str, &str)> = events
        .iter()
        .map(|(k, e, _)| (k.as_str(), e.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("ada", "email.delivered"),
            ("bob", "email.bounced"),
            ("ada", "email.bounced"),
            ("cyd", "email.complained")
        ]
    );
    assert_eq!(events[2].2["bounce_type"], "hard");
    assert_eq!(events[2].2["message_id"], ada);

    // Ignored, answered 200: another type, and an id no message of ours has.
    let r = webhook(
        &daemon,
        "resend",
        "msg_14",
        now,
        WEBHOOK_SECRET,
        &event("email.opened", &pid(ada), None),
    )
    .await;
    assert_eq!((r.status, r.json()["handled"].clone()), (200, json!(false)));
    let r = webhook(
        &daemon,
        "resend",
        "msg_15",
        now,
        WEBHOOK_SECRET,
        &event("email.bounced", "re_not_ours", Some("Permanent")),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["message_id"].clone()),
        (200, Value::Null)
    );

    // `/metrics` counts each applied webhook once.
    let metrics = daemon.call("GET", "/metrics", None, None).await;
    for (event, n) in [
        ("delivered", 1),
        ("bounced_hard", 1),
        ("bounced_soft", 1),
        ("complained", 1),
    ] {
        let line = format!("hogsend_email_provider_events_total{{event=\"{event}\"}} {n}\n");
        assert!(metrics.body.contains(&line), "{line}: {}", metrics.body);
    }
    assert!(metrics
        .body
        .contains("hogsend_email_messages_total{outcome=\"sent\",provider=\"http\"} 3\n"));
    assert!(metrics
        .body
        .contains("hogsend_email_delivery_seconds_count{provider=\"http\"} 3\n"));

    // The suppressed addresses get nothing more; bob's soft bounce does not stop his mail.
    let ada2 = queue(&mut conn, "ada", "receipt", "transactional").await;
    let bob2 = queue(&mut conn, "bob", "receipt", "transactional").await;
    let rows = settled(&mut conn).await;
    assert_eq!(row(&rows, ada2).1, "skipped");
    assert_eq!(row(&rows, bob2).1, "sent");
    daemon.stop().await.unwrap();
}
