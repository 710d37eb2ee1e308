//! The journey, run and message routes over HTTP, on a real Postgres: the rows a pass would
//! write (journeys, runs, run history, messages, skip counters) are inserted directly, then
//! read and changed through the API. Happy paths, keyset pages, the status filter, scopes,
//! 404s, bad input, cancelling (also while a pass holds the lock), the `journey_runs` view,
//! the metrics and the OpenAPI document's shapes.

use hogsend_engine_tests::compile;
use hogsend_runtime::http::openapi::document;
use hogsend_runtime::testkit::{request, Response, TestDaemon, TestDatabase};
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::collections::BTreeSet;
use std::time::Duration;

const PROJECT: &str = "bucket pro {\n  criteria contact.plan == \"pro\"\n}\n";

fn error_code(r: &Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_owned()
}

/// Asserts an error answer: its status, its code, and the one error shape.
fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(
        (r.status, error_code(r).as_str()),
        (status, code),
        "{}",
        r.body
    );
    let body = r.json();
    let error = body["error"].as_object().expect("an error object");
    let fields: BTreeSet<&str> = error.keys().map(String::as_str).collect();
    assert_eq!(fields, BTreeSet::from(["code", "message", "details"]));
    assert!(!error["message"].as_str().unwrap_or("").is_empty());
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn scalar<T>(conn: &mut PgConnection, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The ids of the runs the fixture inserts.
struct Fixture {
    /// ann's onboarding run, waiting at s1.
    ann_waiting: i64,
    /// bob's onboarding run, completed, with four steps and two messages.
    bob_completed: i64,
    /// ann's winback run, exited.
    ann_exited: i64,
    /// bob's first message (sent).
    bob_welcome: i64,
    /// Every onboarding run id, ascending.
    onboarding: Vec<i64>,
}

async fn run(conn: &mut PgConnection, journey: &str, key: &str, status: &str, step: &str) -> i64 {
    let ended = matches!(status, "completed" | "exited" | "failed");
    sqlx::query_scalar(
        "insert into hogsend.runs (journey_id, user_key, status, step_id, entered_at, arrived_at,
                                   wake_at, ended_at, exit_reason, error, trigger_kind, exclusive)
         values ($1, $2, $3, $4, '2027-01-04T10:00:00Z', '2027-01-04T10:00:00Z',
                 case when $3 = 'waiting' then timestamptz '2027-01-07T10:00:00Z' end,
                 case when $5 then timestamptz '2027-01-05T10:00:00Z' end,
                 case $3 when 'exited' then 'exit_when' end,
                 case $3 when 'failed' then 'template missing' end,
                 'event', true)
         returning id",
    )
    .bind(journey)
    .bind(key)
    .bind(status)
    .bind(step)
    .bind(ended)
    .fetch_one(conn)
    .await
    .unwrap_or_else(|e| panic!("insert run: {e}"))
}

/// Three journeys (one disabled in code, one bucket reaction), contacts, runs of every
/// status, bob's history and messages, skip counters: what passes would have written.
async fn fixture(conn: &mut PgConnection) -> Fixture {
    exec(
        conn,
        r#"
        insert into hogsend.journeys (id, fingerprint, enabled, kind, entry_kind, entry_period, definition)
        values ('onboarding', 'f1', true, 'journey', 'once', null,
                '{"name": "Onboarding", "steps": [{"id": "s0", "kind": "send", "template": "welcome"}]}'),
               ('winback', 'f2', false, 'journey', 'once_per', interval '14 days', '{"name": "Win back"}'),
               ('pro.on_enter', 'f3', true, 'reaction', 'unlimited', null, '{}')
        on conflict (id) do update set enabled = excluded.enabled, kind = excluded.kind,
          entry_kind = excluded.entry_kind, entry_period = excluded.entry_period,
          definition = excluded.definition, paused = false;
        insert into hogsend.contacts (external_id, email)
        values ('ann', 'ann@example.com'), ('bob', 'bob@example.com'), ('cy', null);
        insert into hogsend.journey_skips (journey_id, reason, count)
        values ('onboarding', 'entry_once', 3), ('winback', 'disabled', 5);
        "#,
    )
    .await;
    let ann_waiting = run(conn, "onboarding", "ann", "waiting", "s1").await;
    let bob_completed = run(conn, "onboarding", "bob", "completed", "s3").await;
    let ann_exited = run(conn, "winback", "ann", "exited", "s0").await;
    let mut onboarding = vec![ann_waiting, bob_completed];
    for (key, status, step) in [
        ("p1", "active", "s0"),
        ("p2", "active", "s0"),
        ("p3", "exited", "s1"),
        ("p4", "failed", "s2"),
        ("p5", "waiting", "s1"),
    ] {
        onboarding.push(run(conn, "onboarding", key, status, step).await);
    }
    // bob's history, inserted out of order: two passes, the second executing three steps.
    sqlx::query(
        "insert into hogsend.run_steps (user_key, run_id, step_id, kind, outcome, executed_at)
         values ('bob', $1, 's3', 'send', null, '2027-01-07T10:00:00Z'),
                ('bob', $1, 's1', 'wait', null, '2027-01-07T10:00:00Z'),
                ('bob', $1, 's0', 'send', null, '2027-01-04T10:00:00Z'),
                ('bob', $1, 's2', 'if', 'then', '2027-01-07T10:00:00Z')",
    )
    .bind(bob_completed)
    .execute(&mut *conn)
    .await
    .unwrap();
    let bob_welcome: i64 = sqlx::query_scalar(
        "insert into hogsend.messages (journey_id, run_id, step_id, user_key, template, category,
                                       to_email, status, subject, provider_id, attempts, sent_at)
         values ('onboarding', $1, 's0', 'bob', 'welcome', 'transactional', 'bob@example.com',
                 'sent', 'Welcome, Bob', '<m1@mail.test>', 1, '2027-01-04T10:00:01Z')
         returning id",
    )
    .bind(bob_completed)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    sqlx::query(
        "insert into hogsend.messages (journey_id, run_id, step_id, user_key, template, category,
                                       to_email, status, skip_reason)
         values ('onboarding', $1, 's3', 'bob', 'tips', 'onboarding', 'bob@example.com',
                 'skipped', 'unsubscribed:onboarding')",
    )
    .bind(bob_completed)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query(
        "insert into hogsend.messages (journey_id, run_id, step_id, user_key, template, category,
                                       to_email, status)
         values ('onboarding', $1, 's0', 'ann', 'welcome', 'transactional', 'ann@example.com', 'queued');
         ",
    )
    .bind(ann_waiting)
    .execute(&mut *conn)
    .await
    .unwrap();
    exec(
        conn,
        "insert into hogsend.messages (campaign_id, user_key, template, category, to_email, status)
         values ('spring', 'ann', 'spring', 'product_updates', 'ann@example.com', 'queued')",
    )
    .await;
    Fixture {
        ann_waiting,
        bob_completed,
        ann_exited,
        bob_welcome,
        onboarding,
    }
}

async fn setup() -> (TestDatabase, TestDaemon, PgConnection, Fixture) {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    let mut conn = tdb.connect().await;
    let f = fixture(&mut conn).await;
    (tdb, d, conn, f)
}

async fn get(d: &TestDaemon, path: &str) -> Response {
    d.call("GET", path, Some(&d.read_key), None).await
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|r| r["id"].as_i64().expect("an id"))
        .collect()
}

#[tokio::test]
async fn journeys_with_run_counts_by_status_and_step() {
    let (_tdb, d, _conn, _f) = setup().await;
    let r = get(&d, "/v1/journeys").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = r.json();
    let journeys = list["journeys"].as_array().unwrap();
    let names: Vec<&str> = journeys.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(names, ["onboarding", "pro.on_enter", "winback"]);
    let onboarding = &journeys[0];
    assert_eq!(
        onboarding["runs"],
        json!({"active": 2, "waiting": 2, "completed": 1, "exited": 1, "failed": 1})
    );
    assert_eq!(
        onboarding["steps"],
        json!([
            {"step": "s0", "runs": {"active": 2, "waiting": 0, "completed": 0, "exited": 0, "failed": 0}},
            {"step": "s1", "runs": {"active": 0, "waiting": 2, "completed": 0, "exited": 1, "failed": 0}},
            {"step": "s2", "runs": {"active": 0, "waiting": 0, "completed": 0, "exited": 0, "failed": 1}},
            {"step": "s3", "runs": {"active": 0, "waiting": 0, "completed": 1, "exited": 0, "failed": 0}},
        ])
    );
    assert_eq!(onboarding["kind"], "journey");
    assert_eq!(onboarding["entry"], "once");
    assert_eq!(onboarding["entry_period_seconds"], Value::Null);
    assert_eq!(onboarding["definition"]["name"], "Onboarding");
    assert_eq!(
        (
            onboarding["enabled"].clone(),
            onboarding["paused"].clone(),
            onboarding["enrolling"].clone()
        ),
        (json!(true), json!(false), json!(true))
    );
    // Disabled in the code: not enrolling, though not paused.
    let winback = &journeys[2];
    assert_eq!(winback["enabled"], false);
    assert_eq!(winback["enrolling"], false);
    assert_eq!(winback["entry"], "once_per");
    assert_eq!(winback["entry_period_seconds"], 14 * 86_400);
    assert_eq!(winback["runs"]["exited"], 1);
    // A reaction with no runs: zero counts, no steps.
    let reaction = &journeys[1];
    assert_eq!(reaction["kind"], "reaction");
    assert_eq!(
        reaction["runs"],
        json!({"active": 0, "waiting": 0, "completed": 0, "exited": 0, "failed": 0})
    );
    assert_eq!(reaction["steps"], json!([]));

    // One journey: the same object as in the list.
    let r = get(&d, "/v1/journeys/onboarding").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(&r.json(), onboarding);
    let r = get(&d, "/v1/journeys/pro.on_enter").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(&r.json(), reaction);
    assert_error(
        &get(&d, "/v1/journeys/nope").await,
        404,
        "journey_not_found",
    );
    // Scopes: a read key reads, an ingest key does not, no key is 401.
    let r = d
        .call("GET", "/v1/journeys", Some(&d.ingest_key), None)
        .await;
    assert_error(&r, 403, "forbidden");
    let r = d.call("GET", "/v1/journeys", None, None).await;
    assert_error(&r, 401, "unauthorized");
    let r = d
        .call("GET", "/v1/journeys", Some(&d.admin_key), None)
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_journeys_runs_in_keyset_pages_filtered_by_status() {
    let (_tdb, d, mut conn, f) = setup().await;
    // Pages of 3: 3 + 3 + 1, each row once, in id order.
    let mut seen = Vec::new();
    let mut after = 0;
    let mut pages = 0;
    loop {
        let r = get(
            &d,
            &format!("/v1/journeys/onboarding/runs?limit=3&after={after}"),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        assert_eq!(page["journey_id"], "onboarding");
        seen.extend(ids(&page["runs"]));
        pages += 1;
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
        // A run created while walking lands after the cursor: the walk still sees it once.
        if pages == 1 {
            let late = run(&mut conn, "onboarding", "late", "active", "s0").await;
            assert!(late > f.onboarding[6]);
        }
    }
    assert_eq!(pages, 3);
    let mut expected = f.onboarding.clone();
    expected.push(seen[7]);
    assert_eq!(seen, expected);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    // The run's fields.
    let r = get(&d, "/v1/journeys/onboarding/runs?status=waiting").await;
    let page = r.json();
    assert_eq!(ids(&page["runs"]), [f.ann_waiting, f.onboarding[6]]);
    assert_eq!(page["next"], Value::Null);
    let first = &page["runs"][0];
    assert_eq!(first["key"], "ann");
    assert_eq!(first["journey_id"], "onboarding");
    assert_eq!(first["status"], "waiting");
    assert_eq!(first["step"], "s1");
    assert_eq!(first["trigger"], "event");
    assert_eq!(first["ended_at"], Value::Null);
    assert!(first["wake_at"]
        .as_str()
        .unwrap()
        .starts_with("2027-01-07T10:00:00"));
    let r = get(&d, "/v1/journeys/onboarding/runs?status=failed").await;
    let failed = &r.json()["runs"][0];
    assert_eq!(failed["error"], "template missing");
    assert_eq!(failed["status"], "failed");
    let r = get(&d, "/v1/journeys/onboarding/runs?status=exited").await;
    assert_eq!(r.json()["runs"][0]["exit_reason"], "exit_when");
    let r = get(&d, "/v1/journeys/winback/runs?status=active").await;
    assert_eq!(r.json()["runs"], json!([]));
    // Bad input.
    for (query, field) in [
        ("status=running", "status"),
        ("status=", "status"),
        ("status=WAITING", "status"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ] {
        let r = get(&d, &format!("/v1/journeys/onboarding/runs?{query}")).await;
        assert_error(&r, 400, "invalid_parameter");
        assert_eq!(r.json()["error"]["details"][0]["field"], field, "{query}");
    }
    let r = get(&d, "/v1/journeys/onboarding/runs?after=abc").await;
    assert_error(&r, 400, "invalid_parameter");
    let r = get(&d, "/v1/journeys/nope/runs").await;
    assert_error(&r, 404, "journey_not_found");
    let r = d
        .call(
            "GET",
            "/v1/journeys/onboarding/runs",
            Some(&d.ingest_key),
            None,
        )
        .await;
    assert_error(&r, 403, "forbidden");
}

#[tokio::test]
async fn a_run_with_its_history_and_messages() {
    let (_tdb, d, _conn, f) = setup().await;
    let r = get(&d, &format!("/v1/runs/{}", f.bob_completed)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let history = r.json();
    assert_eq!(history["run"]["id"], f.bob_completed);
    assert_eq!(history["run"]["status"], "completed");
    assert_eq!(history["run"]["key"], "bob");
    assert!(history["run"]["ended_at"].is_string());
    // By instant, then by step id within one pass's instant.
    let steps: Vec<(&str, &str)> = history["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [("s0", "send"), ("s1", "wait"), ("s2", "if"), ("s3", "send")]
    );
    assert_eq!(history["steps"][2]["outcome"], "then");
    assert!(history["steps"][0]["executed_at"]
        .as_str()
        .unwrap()
        .starts_with("2027-01-04T10:00:00"));
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["id"], f.bob_welcome);
    assert_eq!(messages[0]["template"], "welcome");
    assert_eq!(messages[0]["status"], "sent");
    assert_eq!(messages[1]["status"], "skipped");
    assert_eq!(messages[1]["skip_reason"], "unsubscribed:onboarding");
    assert_eq!(messages[1]["step"], "s3");
    // A run that executed nothing yet has an empty history.
    let r = get(&d, &format!("/v1/runs/{}", f.onboarding[2])).await;
    assert_eq!(r.json()["steps"], json!([]));
    assert_eq!(r.json()["messages"], json!([]));
    assert_error(&get(&d, "/v1/runs/999999").await, 404, "run_not_found");
    assert_error(&get(&d, "/v1/runs/abc").await, 400, "invalid_path");
    assert_error(&get(&d, "/v1/runs/1.5").await, 400, "invalid_path");
    let r = d
        .call(
            "GET",
            &format!("/v1/runs/{}", f.bob_completed),
            Some(&d.ingest_key),
            None,
        )
        .await;
    assert_error(&r, 403, "forbidden");
}

#[tokio::test]
async fn a_contacts_runs_and_messages_and_one_message() {
    let (_tdb, d, _conn, f) = setup().await;
    let r = get(&d, "/v1/contacts/ann/journeys").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let page = r.json();
    assert_eq!(page["key"], "ann");
    assert_eq!(ids(&page["runs"]), [f.ann_waiting, f.ann_exited]);
    assert_eq!(page["runs"][1]["journey_id"], "winback");
    assert_eq!(page["next"], Value::Null);
    let r = get(&d, "/v1/contacts/ann/journeys?limit=1").await;
    assert_eq!(r.json()["next"], f.ann_waiting);
    let r = get(
        &d,
        &format!("/v1/contacts/ann/journeys?limit=1&after={}", f.ann_waiting),
    )
    .await;
    assert_eq!(ids(&r.json()["runs"]), [f.ann_exited]);
    let r = get(&d, "/v1/contacts/ann/journeys?status=exited").await;
    assert_eq!(ids(&r.json()["runs"]), [f.ann_exited]);
    let r = get(&d, "/v1/contacts/cy/journeys").await;
    assert_eq!(r.json()["runs"], json!([]));
    assert_error(
        &get(&d, "/v1/contacts/ann/journeys?status=nope").await,
        400,
        "invalid_parameter",
    );
    assert_error(
        &get(&d, "/v1/contacts/nobody/journeys").await,
        404,
        "contact_not_found",
    );

    // Messages: journeys' and campaigns' alike, by id.
    let r = get(&d, "/v1/contacts/ann/messages").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let page = r.json();
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["run_id"], f.ann_waiting);
    assert_eq!(messages[1]["campaign_id"], "spring");
    assert_eq!(messages[1]["run_id"], Value::Null);
    let first = messages[0]["id"].as_i64().unwrap();
    let r = get(&d, "/v1/contacts/ann/messages?limit=1").await;
    assert_eq!(r.json()["next"], first);
    let r = get(&d, &format!("/v1/contacts/ann/messages?after={first}")).await;
    assert_eq!(r.json()["messages"][0]["campaign_id"], "spring");
    assert_eq!(r.json()["next"], Value::Null);
    assert_error(
        &get(&d, "/v1/contacts/ann/messages?limit=-1").await,
        400,
        "invalid_parameter",
    );
    assert_error(
        &get(&d, "/v1/contacts/nobody/messages").await,
        404,
        "contact_not_found",
    );
    let r = d
        .call(
            "GET",
            "/v1/contacts/ann/messages",
            Some(&d.ingest_key),
            None,
        )
        .await;
    assert_error(&r, 403, "forbidden");

    // One message.
    let r = get(&d, &format!("/v1/messages/{}", f.bob_welcome)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let m = r.json();
    assert_eq!(m["key"], "bob");
    assert_eq!(m["journey_id"], "onboarding");
    assert_eq!(m["run_id"], f.bob_completed);
    assert_eq!(m["step"], "s0");
    assert_eq!(m["category"], "transactional");
    assert_eq!(m["to_email"], "bob@example.com");
    assert_eq!(m["subject"], "Welcome, Bob");
    assert_eq!(m["provider_id"], "<m1@mail.test>");
    assert_eq!(m["attempts"], 1);
    assert!(m["sent_at"]
        .as_str()
        .unwrap()
        .starts_with("2027-01-04T10:00:01"));
    assert_error(&get(&d, "/v1/messages/0").await, 404, "message_not_found");
    assert_error(&get(&d, "/v1/messages/x").await, 400, "invalid_path");
    let r = d
        .call(
            "GET",
            &format!("/v1/messages/{}", f.bob_welcome),
            None,
            None,
        )
        .await;
    assert_error(&r, 401, "unauthorized");
}

#[tokio::test]
async fn pausing_a_journey_needs_admin_and_leaves_runs_in_flight() {
    let (_tdb, d, mut conn, _f) = setup().await;
    let pause = json!({"enabled": false});
    for key in [&d.read_key, &d.ingest_key] {
        let r = d
            .call("PATCH", "/v1/journeys/onboarding", Some(key), Some(&pause))
            .await;
        assert_error(&r, 403, "forbidden");
    }
    let r = d
        .call("PATCH", "/v1/journeys/onboarding", None, Some(&pause))
        .await;
    assert_error(&r, 401, "unauthorized");
    let paused: bool = scalar(
        &mut conn,
        "select paused from hogsend.journeys where id = 'onboarding'",
    )
    .await;
    assert!(!paused, "a refused PATCH changes nothing");

    let runs_before: Vec<(i64, String, Option<String>)> =
        sqlx::query_as("select id, status, step_id from hogsend.runs order by id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let r = d
        .call(
            "PATCH",
            "/v1/journeys/onboarding",
            Some(&d.admin_key),
            Some(&pause),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(
        (
            j["id"].clone(),
            j["paused"].clone(),
            j["enabled"].clone(),
            j["enrolling"].clone()
        ),
        (json!("onboarding"), json!(true), json!(true), json!(false))
    );
    assert_eq!(j["runs"]["waiting"], 2);
    let paused: bool = scalar(
        &mut conn,
        "select paused from hogsend.journeys where id = 'onboarding'",
    )
    .await;
    assert!(paused);
    let runs_after: Vec<(i64, String, Option<String>)> =
        sqlx::query_as("select id, status, step_id from hogsend.runs order by id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(runs_before, runs_after, "runs in flight go on");
    // Idempotent; then resumed.
    let r = d
        .call(
            "PATCH",
            "/v1/journeys/onboarding",
            Some(&d.admin_key),
            Some(&pause),
        )
        .await;
    assert_eq!(r.json()["paused"], true);
    let r = d
        .call(
            "PATCH",
            "/v1/journeys/onboarding",
            Some(&d.admin_key),
            Some(&json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.json()["paused"].clone(), r.json()["enrolling"].clone()),
        (json!(false), json!(true))
    );
    // Resuming a journey disabled in its code: not paused, still not enrolling.
    let r = d
        .call(
            "PATCH",
            "/v1/journeys/winback",
            Some(&d.admin_key),
            Some(&json!({"enabled": true})),
        )
        .await;
    assert_eq!(
        (r.json()["paused"].clone(), r.json()["enrolling"].clone()),
        (json!(false), json!(false))
    );

    // Bad bodies: 400 with the field named, nothing changed.
    for (body, field) in [
        (json!({"enabled": "no"}), "enabled"),
        (json!({"enabled": 0}), "enabled"),
        (json!({"enabled": null}), "enabled"),
        (json!({}), "enabled"),
        (json!({"enabled": false, "paused": true}), "paused"),
        (json!([false]), ""),
    ] {
        let r = d
            .call(
                "PATCH",
                "/v1/journeys/onboarding",
                Some(&d.admin_key),
                Some(&body),
            )
            .await;
        assert_error(&r, 400, "invalid_request");
        assert_eq!(r.json()["error"]["details"][0]["field"], field, "{body}");
    }
    let paused: bool = scalar(
        &mut conn,
        "select paused from hogsend.journeys where id = 'onboarding'",
    )
    .await;
    assert!(!paused);
    let headers = vec![
        (
            "Authorization".to_owned(),
            format!("Bearer {}", d.admin_key),
        ),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    let r = request(
        d.addr,
        "PATCH",
        "/v1/journeys/onboarding",
        &headers,
        Some(b"{enabled"),
    )
    .await;
    assert_error(&r, 400, "malformed_json");
    let r = request(
        d.addr,
        "PATCH",
        "/v1/journeys/onboarding",
        &headers[..1],
        Some(b"{\"enabled\": false}"),
    )
    .await;
    assert_error(&r, 415, "unsupported_media_type");
    let r = d
        .call(
            "PATCH",
            "/v1/journeys/nope",
            Some(&d.admin_key),
            Some(&pause),
        )
        .await;
    assert_error(&r, 404, "journey_not_found");
    // The route takes GET and PATCH only.
    let r = d
        .call(
            "DELETE",
            "/v1/journeys/onboarding",
            Some(&d.admin_key),
            None,
        )
        .await;
    assert_error(&r, 405, "method_not_allowed");
}

#[tokio::test]
async fn cancelling_a_run_ends_it_once() {
    let (_tdb, d, mut conn, f) = setup().await;
    let path = format!("/v1/runs/{}/cancel", f.ann_waiting);
    for key in [&d.read_key, &d.ingest_key] {
        let r = d.call("POST", &path, Some(key), None).await;
        assert_error(&r, 403, "forbidden");
    }
    let r = d.call("POST", &path, Some(&d.admin_key), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run = r.json();
    assert_eq!(run["id"], f.ann_waiting);
    assert_eq!(run["status"], "exited");
    assert_eq!(run["exit_reason"], "cancelled");
    assert_eq!(run["step"], "s1", "a cancelled run stays at its step");
    assert_eq!(run["wake_at"], Value::Null);
    assert!(run["ended_at"].is_string());
    // The contract's view shows it.
    let (status, reason, ended): (String, Option<String>, bool) = sqlx::query_as(
        "select status, exit_reason, ended_at is not null from hogsend.journey_runs where id = $1",
    )
    .bind(f.ann_waiting)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), reason.as_deref(), ended),
        ("exited", Some("cancelled"), true)
    );
    // Its queued message stays queued.
    let queued: i64 = scalar(
        &mut conn,
        "select count(*) from hogsend.messages where user_key = 'ann' and status = 'queued'",
    )
    .await;
    assert_eq!(queued, 2);
    // Once only: a second cancel, or one of a run that ended otherwise, is a conflict.
    let r = d.call("POST", &path, Some(&d.admin_key), None).await;
    assert_error(&r, 409, "run_ended");
    for id in [f.bob_completed, f.ann_exited, f.onboarding[5]] {
        let r = d
            .call(
                "POST",
                &format!("/v1/runs/{id}/cancel"),
                Some(&d.admin_key),
                None,
            )
            .await;
        assert_error(&r, 409, "run_ended");
    }
    let reason: Option<String> =
        sqlx::query_scalar("select exit_reason from hogsend.runs where id = $1")
            .bind(f.ann_exited)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        reason.as_deref(),
        Some("exit_when"),
        "an ended run is not rewritten"
    );
    // An active run can be cancelled too.
    let r = d
        .call(
            "POST",
            &format!("/v1/runs/{}/cancel", f.onboarding[2]),
            Some(&d.admin_key),
            None,
        )
        .await;
    assert_eq!(r.json()["exit_reason"], "cancelled");
    let r = d
        .call("POST", "/v1/runs/999999/cancel", Some(&d.admin_key), None)
        .await;
    assert_error(&r, 404, "run_not_found");
    let r = d
        .call("POST", "/v1/runs/abc/cancel", Some(&d.admin_key), None)
        .await;
    assert_error(&r, 400, "invalid_path");
    let r = d.call("GET", &path, Some(&d.admin_key), None).await;
    assert_error(&r, 405, "method_not_allowed");
}

#[tokio::test]
async fn a_cancel_waits_for_the_pass_that_holds_the_lock() {
    let (tdb, d, _conn, f) = setup().await;
    // A "pass": holds the schema's pass lock and is about to complete two runs.
    let mut pass = tdb.connect().await;
    sqlx::raw_sql("begin").execute(&mut pass).await.unwrap();
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(hogsend_schema::lock_key("hogsend"))
        .execute(&mut pass)
        .await
        .unwrap();
    let admin = d.admin_key.clone();
    let addr = d.addr;
    let cancel = |id: i64| {
        let headers = vec![("Authorization".to_owned(), format!("Bearer {admin}"))];
        tokio::spawn(async move {
            request(
                addr,
                "POST",
                &format!("/v1/runs/{id}/cancel"),
                &headers,
                None,
            )
            .await
        })
    };
    let first = cancel(f.ann_waiting);
    let second = cancel(f.onboarding[6]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !first.is_finished() && !second.is_finished(),
        "the cancels wait for the pass"
    );
    sqlx::query("update hogsend.runs set status = 'completed', ended_at = now() where id = $1")
        .bind(f.ann_waiting)
        .execute(&mut pass)
        .await
        .unwrap();
    sqlx::raw_sql("commit").execute(&mut pass).await.unwrap();
    // The pass completed ann's run before the cancel could see it; p5's it left waiting.
    let r = first.await.unwrap();
    assert_error(&r, 409, "run_ended");
    let r = second.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["exit_reason"], "cancelled");
    let mut conn = tdb.connect().await;
    let status: String = sqlx::query_scalar("select status from hogsend.runs where id = $1")
        .bind(f.ann_waiting)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(status, "completed");
}

#[tokio::test]
async fn the_journey_runs_view_and_the_metrics() {
    let (_tdb, d, mut conn, f) = setup().await;
    let columns: Vec<String> = sqlx::query_scalar(
        "select column_name::text from information_schema.columns
          where table_schema = 'hogsend' and table_name = 'journey_runs' order by ordinal_position",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        columns,
        [
            "id",
            "journey_id",
            "user_key",
            "status",
            "step",
            "entered_at",
            "wake_at",
            "ended_at",
            "exit_reason"
        ]
    );
    let (key, step, wake): (String, String, bool) = sqlx::query_as(
        "select user_key, step, wake_at is not null from hogsend.journey_runs where id = $1",
    )
    .bind(f.ann_waiting)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((key.as_str(), step.as_str(), wake), ("ann", "s1", true));
    let views: i64 = scalar(&mut conn, "select count(*) from hogsend.journey_runs").await;
    assert_eq!(views, 8);

    let r = d.call("GET", "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    for line in [
        "# TYPE hogsend_journey_runs gauge",
        "hogsend_journey_runs{journey=\"onboarding\",status=\"waiting\"} 2",
        "hogsend_journey_runs{journey=\"onboarding\",status=\"active\"} 2",
        "hogsend_journey_runs{journey=\"winback\",status=\"exited\"} 1",
        "# TYPE hogsend_journey_enrolments_skipped_total counter",
        "hogsend_journey_enrolments_skipped_total{journey=\"onboarding\",reason=\"entry_once\"} 3",
        "hogsend_journey_enrolments_skipped_total{journey=\"winback\",reason=\"disabled\"} 5",
        "# TYPE hogsend_messages gauge",
        "hogsend_messages{status=\"queued\"} 2",
        "hogsend_messages{status=\"sent\"} 1",
        "hogsend_messages{status=\"skipped\"} 1",
    ] {
        assert!(
            r.body.lines().any(|l| l == line),
            "no `{line}` in\n{}",
            r.body
        );
    }
    // A cancel shows up at the next scrape.
    let r = d
        .call(
            "POST",
            &format!("/v1/runs/{}/cancel", f.ann_waiting),
            Some(&d.admin_key),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = d.call("GET", "/metrics", None, None).await;
    assert!(r
        .body
        .contains("hogsend_journey_runs{journey=\"onboarding\",status=\"waiting\"} 1\n"));
    assert!(r
        .body
        .contains("hogsend_journey_runs{journey=\"onboarding\",status=\"exited\"} 2\n"));
}

/// The property names of component schema `name`.
fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"))
        .keys()
        .cloned()
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_answers_have_exactly_the_documented_fields() {
    let (_tdb, d, _conn, f) = setup().await;
    let doc = serde_json::to_value(document()).unwrap();
    let journey = get(&d, "/v1/journeys/onboarding").await.json();
    assert_eq!(keys(&journey), properties(&doc, "Journey"));
    assert_eq!(keys(&journey["runs"]), properties(&doc, "RunCounts"));
    assert_eq!(keys(&journey["steps"][0]), properties(&doc, "StepCounts"));
    let list = get(&d, "/v1/journeys").await.json();
    assert_eq!(keys(&list), properties(&doc, "JourneyList"));
    let page = get(&d, "/v1/journeys/onboarding/runs").await.json();
    assert_eq!(keys(&page), properties(&doc, "RunPage"));
    assert_eq!(keys(&page["runs"][0]), properties(&doc, "Run"));
    let history = get(&d, &format!("/v1/runs/{}", f.bob_completed))
        .await
        .json();
    assert_eq!(keys(&history), properties(&doc, "RunHistory"));
    assert_eq!(keys(&history["steps"][0]), properties(&doc, "RunStep"));
    assert_eq!(keys(&history["messages"][0]), properties(&doc, "Message"));
    let message = get(&d, &format!("/v1/messages/{}", f.bob_welcome))
        .await
        .json();
    assert_eq!(keys(&message), properties(&doc, "Message"));
    let runs = get(&d, "/v1/contacts/ann/journeys").await.json();
    assert_eq!(keys(&runs), properties(&doc, "ContactRuns"));
    let messages = get(&d, "/v1/contacts/ann/messages").await.json();
    assert_eq!(keys(&messages), properties(&doc, "ContactMessages"));
    let cancelled = d
        .call(
            "POST",
            &format!("/v1/runs/{}/cancel", f.ann_waiting),
            Some(&d.admin_key),
            None,
        )
        .await
        .json();
    assert_eq!(keys(&cancelled), properties(&doc, "Run"));
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    for code in [
        "journey_not_found",
        "run_not_found",
        "message_not_found",
        "run_ended",
    ] {
        assert!(
            codes.contains(&json!(code)),
            "{code} is not in the document"
        );
    }
}
