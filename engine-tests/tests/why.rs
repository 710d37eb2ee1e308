//! `GET /v1/buckets/{id}/members/{key}/why`: the evidence of every atom kind, the entry
//! policy's verdict and dwell timers, the next change by the clock alone, and the errors
//! (404 unknown bucket or contact, 400 bad `at`, 401 without a key). The agreement of the
//! verdict with membership over random criteria is in `differential.rs`.

use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};
use hogsend_runtime::db;
use hogsend_runtime::testkit::{TestDaemon, TestDatabase};
use serde_json::Value;
use sqlx::PgConnection;

const PROJECT: &str = r#"
bucket evidence {
  criteria all {
    did signed_up
    count app_opened within 7d >= 2
    contact.plan == "pro"
    not contact.address.country == "FR"
    any {
      opened welcome
      clicked welcome
    }
  }
  entry     once
  min_dwell 1d
}
"#;

fn files() -> Vec<hogsend_compiler::emit::GeneratedFile> {
    let set = SourceSet {
        files: vec![SourceFile::new("test.hog", PROJECT)],
        templates: vec![TemplateSource {
            id: "welcome".into(),
            html: None,
            text: Some(SourceFile::new(
                "welcome.txt",
                "---\nsubject: Welcome\ncategory: transactional\n---\nWelcome!",
            )),
        }],
        ..Default::default()
    };
    let compiled = hogsend_compiler::compile(&set);
    compiled
        .files
        .unwrap_or_else(|| panic!("{:#?}", compiled.checked.diagnostics))
}

async fn sql(conn: &mut PgConnection, text: &str) {
    sqlx::raw_sql(text)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

fn at(day: u32, hour: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc
        .with_ymd_and_hms(2027, 3, day, hour, 0, 0)
        .unwrap()
}

/// The nodes of a tree, depth first.
fn nodes(node: &Value, out: &mut Vec<Value>) {
    out.push(node.clone());
    for child in node["children"].as_array().into_iter().flatten() {
        nodes(child, out);
    }
    if !node["child"].is_null() {
        nodes(&node["child"], out);
    }
}

fn node(why: &Value, text: &str) -> Value {
    let mut all = Vec::new();
    nodes(&why["criteria"], &mut all);
    all.into_iter()
        .find(|n| n["text"] == text)
        .unwrap_or_else(|| panic!("no node `{text}` in {why:#}"))
}

#[tokio::test]
async fn why_explains_every_atom_kind_and_the_policies() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, files(), |_| {}).await;
    let mut conn = tdb.connect().await;
    sql(
        &mut conn,
        r#"
        insert into hogsend.contacts (external_id, properties) values
          ('ann', '{"plan": "pro", "address": {"country": "DE"}}'),
          ('bob', '{"plan": 5, "address": "Paris"}');
        insert into hogsend.events (user_key, event, occurred_at) values
          ('ann', 'signed_up',  '2027-03-01T00:00:00Z'),
          ('ann', 'app_opened', '2027-03-02T00:00:00Z'),
          ('ann', 'app_opened', '2027-03-04T00:00:00Z'),
          ('ann', 'app_opened', '2027-03-20T00:00:00Z');
        insert into hogsend.messages (user_key, template, opened_at) values
          ('ann', 'welcome', '2027-03-03T00:00:00Z');
        "#,
    )
    .await;
    db::tick(&mut conn, "hogsend", Some(at(5, 0)))
        .await
        .unwrap();

    let get = |path: String| {
        let d = &d;
        async move { d.call("GET", &path, Some(&d.read_key), None).await }
    };
    let r = get("/v1/buckets/evidence/members/ann/why?at=2027-03-05T00:00:00Z".into()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let why = r.json();
    assert_eq!(why["matches"], true, "{why:#}");
    assert_eq!(why["criteria"]["value"], true);
    assert_eq!(why["membership"]["active"], true);
    assert_eq!(why["entry"]["verdict"], "member");
    assert_eq!(why["dwell"]["min_dwell_seconds"], 86_400);
    assert_eq!(why["dwell"]["min_dwell_until"], "2027-03-06T00:00:00+00:00");

    let signed = node(&why, "did signed_up");
    assert_eq!(signed["count"], 1);
    assert_eq!(
        signed["events"],
        serde_json::json!(["2027-03-01T00:00:00+00:00"])
    );
    assert!(signed["window_from"].is_null());
    let opened = node(&why, "count app_opened within 7d >= 2");
    assert_eq!(opened["count"], 2);
    assert_eq!(opened["window_from"], "2027-02-26T00:00:00+00:00");
    assert_eq!(opened["window_to"], "2027-03-05T00:00:00+00:00");
    assert_eq!(
        opened["events"],
        serde_json::json!(["2027-03-04T00:00:00+00:00", "2027-03-02T00:00:00+00:00"])
    );
    // The count drops below 2 when the 2 March event leaves the window.
    assert_eq!(opened["changes_at"], "2027-03-09T00:00:00.000001+00:00");
    assert_eq!(why["next_change_at"], "2027-03-09T00:00:00.000001+00:00");
    let plan = node(&why, r#"contact.plan == "pro""#);
    assert_eq!(
        (plan["found"].clone(), plan["type"].clone()),
        ("pro".into(), "string".into())
    );
    assert!(plan["absent"].is_null());
    let welcome = node(&why, "opened welcome");
    assert_eq!(welcome["value"], true);
    assert_eq!(
        welcome["messages"],
        serde_json::json!(["2027-03-03T00:00:00+00:00"])
    );
    assert_eq!(
        node(&why, "clicked welcome")["messages"],
        serde_json::json!([])
    );

    // bob: a number where a string is expected, a string where an object is expected.
    let r = get("/v1/buckets/evidence/members/bob/why?at=2027-03-05T00:00:00Z".into()).await;
    let why = r.json();
    assert_eq!(why["matches"], false);
    assert_eq!(why["entry"]["verdict"], "not_matching");
    assert!(why["membership"].is_null());
    let plan = node(&why, r#"contact.plan == "pro""#);
    assert_eq!(
        (plan["found"].clone(), plan["type"].clone()),
        (5.into(), "number".into())
    );
    let country = node(&why, r#"contact.address.country == "FR""#);
    assert_eq!(country["absent"], "not an object at contact.address");
    assert_eq!(node(&why, "did signed_up")["count"], 0);

    // ann leaves at the 9 March tick (after min_dwell) and `entry once` blocks her return.
    db::tick(&mut conn, "hogsend", Some(at(10, 0)))
        .await
        .unwrap();
    sql(
        &mut conn,
        "insert into hogsend.events (user_key, event, occurred_at) values \
         ('ann', 'app_opened', '2027-03-10T01:00:00Z')",
    )
    .await;
    db::tick(&mut conn, "hogsend", Some(at(10, 2)))
        .await
        .unwrap();
    let r = get("/v1/buckets/evidence/members/ann/why?at=2027-03-10T02:00:00Z".into()).await;
    let why = r.json();
    assert_eq!(why["matches"], true, "{why:#}");
    assert_eq!(why["membership"]["active"], false);
    assert_eq!(why["membership"]["leave_reason"], "criteria");
    assert_eq!(why["entry"]["verdict"], "blocked");
    assert_eq!(why["entry"]["left_at"], "2027-03-10T00:00:00+00:00");
    assert!(why["entry"]["blocked_until"].is_null());
    // The 20 March event becomes visible by the clock alone; the criteria still hold then,
    // and the 4 March event's leaving (11 March) is the first change.
    assert_eq!(why["next_change_at"], "2027-03-11T00:00:00.000001+00:00");

    // Errors.
    let r = get("/v1/buckets/nope/members/ann/why".into()).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, "bucket_not_found".into())
    );
    let r = get("/v1/buckets/evidence/members/nobody/why".into()).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, "contact_not_found".into())
    );
    let r = get("/v1/buckets/evidence/members/ann/why?at=yesterday".into()).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = d
        .call("GET", "/v1/buckets/evidence/members/ann/why", None, None)
        .await;
    assert_eq!(r.status, 401);
    // Without `at`: the database clock.
    let r = get("/v1/buckets/evidence/members/ann/why".into()).await;
    assert_eq!(r.status, 200, "{}", r.body);
}
