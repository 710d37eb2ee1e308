//! Contact import and lists over a real Postgres: `POST /v1/contacts/import` (summary, bad
//! lines, idempotence, the realtime queue), imported contacts and the engine (no event
//! bucket, no journey), the list routes (counts and keyset pages against a naive model,
//! bulk subscribe/unsubscribe), and a property test: a random CSV, randomly quoted, imports
//! exactly the contacts it was generated from.

use hogsend_engine_tests::compile;
use hogsend_runtime::import::{self, Format};
use hogsend_runtime::testkit::{request, Response, TestDaemon, TestDatabase};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use std::collections::{BTreeMap, BTreeSet};

const PROJECT: &str = r#"
bucket signed_up {
  criteria did signed_up
}
bucket pros {
  criteria contact.plan == "pro"
}
journey welcome {
  trigger enter signed_up
  wait 1d
}
journey on_signup {
  trigger event signed_up
  wait 1d
}
list news {
  name    "News"
  default subscribed
}
list beta {
  name    "Beta"
  default unsubscribed
}
"#;

async fn post_ndjson(
    d: &TestDaemon,
    key: Option<&str>,
    content_type: &str,
    body: &str,
) -> Response {
    let mut headers = vec![("Content-Type".to_owned(), content_type.to_owned())];
    if let Some(key) = key {
        headers.push(("Authorization".to_owned(), format!("Bearer {key}")));
    }
    request(
        d.addr,
        "POST",
        "/v1/contacts/import",
        &headers,
        Some(body.as_bytes()),
    )
    .await
}

/// The properties the OpenAPI document gives schema `name`.
fn documented(name: &str) -> BTreeSet<String> {
    let doc = serde_json::to_value(hogsend_runtime::http::openapi::document()).unwrap();
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"))
        .keys()
        .cloned()
        .collect()
}

/// An answer object's fields.
fn fields(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn code(r: &Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_owned()
}

/// Every live contact: key → (email, properties).
async fn contacts(conn: &mut PgConnection) -> BTreeMap<String, (Option<String>, Value)> {
    let rows: Vec<(String, Option<String>, Value)> = sqlx::query_as(
        "select user_key, email, properties from contacts where deleted_at is null order by 1",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    rows.into_iter().map(|(k, e, p)| (k, (e, p))).collect()
}

/// Every subscription row: (key, list) → status.
async fn subscriptions(conn: &mut PgConnection) -> BTreeMap<(String, String), String> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("select user_key, list_id, status from subscriptions order by 1, 2")
            .fetch_all(conn)
            .await
            .unwrap();
    rows.into_iter().map(|(k, l, s)| ((k, l), s)).collect()
}

#[tokio::test]
async fn api_import_upserts_reports_bad_lines_and_is_idempotent() {
    let db = TestDatabase::new().await;
    let d = TestDaemon::start(&db, compile(PROJECT), |_| {}).await;
    let mut conn = db.connect().await;
    let body = concat!(
        "{\"key\": \"ann\", \"email\": \" Ann@X.io \", \"plan\": \"pro\", \"age\": 31, \"lists\": [\"beta\"]}\n",
        "\n",
        "{\"user_id\": \"bob\", \"timezone\": \"Europe/Paris\", \"subscriptions\": {\"news\": false}}\n",
        "{\"key\": \"cy\", \"email\": \"not-an-email\"}\n",
        "[1, 2]\n",
        "{\"id\": 42, \"properties\": {\"nested\": {\"a\": [1, \"é\"]}}}\n",
        "{\"key\": \"dee\", \"lists\": [\"nope\"]}\n",
        "{\"key\": \"eve\", \"timezone\": \"Mars/Olympus\"}\n",
        "{\"key\": \"ann\", \"vip\": true}\n",
    );
    let r = post_ndjson(&d, Some(&d.ingest_key), "application/x-ndjson", body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let summary = r.json();
    assert_eq!(
        (
            summary["rows"].clone(),
            summary["upserted"].clone(),
            summary["unchanged"].clone(),
            summary["bad"].clone()
        ),
        (json!(8), json!(4), json!(0), json!(4)),
        "{summary}"
    );
    assert_eq!(fields(&summary), documented("Summary"));
    assert_eq!(fields(&summary["errors"][0]), documented("RowError"));
    let lines: Vec<u64> = summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![4, 5, 7, 8]);
    assert!(summary["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("not an email address"));
    assert!(summary["errors"][2]["message"]
        .as_str()
        .unwrap()
        .contains("`nope` is not a declared list"));
    assert!(summary["errors"][3]["message"]
        .as_str()
        .unwrap()
        .contains("not a time zone"));

    let expected: BTreeMap<String, (Option<String>, Value)> = [
        ("42".to_owned(), (None, json!({"nested": {"a": [1, "é"]}}))),
        (
            "ann".to_owned(),
            (
                Some("ann@x.io".to_owned()),
                json!({"plan": "pro", "age": 31, "vip": true}),
            ),
        ),
        (
            "bob".to_owned(),
            (None, json!({"timezone": "Europe/Paris"})),
        ),
    ]
    .into();
    assert_eq!(contacts(&mut conn).await, expected);
    let subs: BTreeMap<(String, String), String> = [
        (
            ("ann".to_owned(), "beta".to_owned()),
            "subscribed".to_owned(),
        ),
        (
            ("bob".to_owned(), "news".to_owned()),
            "unsubscribed".to_owned(),
        ),
    ]
    .into();
    assert_eq!(subscriptions(&mut conn).await, subs);
    let source: String = sqlx::query_scalar("select distinct source from subscriptions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(source, "import");

    // The same body again: nothing changes, not even `updated_at`.
    let stamps: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("select user_key, updated_at from contacts order by 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let again = post_ndjson(&d, Some(&d.ingest_key), "application/x-ndjson", body)
        .await
        .json();
    assert_eq!(
        (
            again["upserted"].clone(),
            again["unchanged"].clone(),
            again["bad"].clone()
        ),
        (json!(0), json!(4), json!(4))
    );
    let after: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("select user_key, updated_at from contacts order by 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(stamps, after);

    // A change is one upsert; `null` removes a property, as in PUT.
    let r = post_ndjson(
        &d,
        Some(&d.ingest_key),
        "application/jsonl",
        "{\"key\": \"ann\", \"age\": null}\n",
    )
    .await;
    assert_eq!(
        (r.json()["upserted"].clone(), r.json()["unchanged"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(
        contacts(&mut conn).await["ann"].1,
        json!({"plan": "pro", "vip": true})
    );

    // PUT goes through the same upsert: unchanged data writes nothing.
    let before: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select updated_at from contacts where user_key = 'ann'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let put = d
        .call(
            "PUT",
            "/v1/contacts/ann",
            Some(&d.ingest_key),
            Some(&json!({"properties": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let after: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select updated_at from contacts where user_key = 'ann'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(before, after);

    // Auth, scope, media type, and the route's neighbours.
    assert_eq!(
        post_ndjson(&d, None, "application/x-ndjson", body)
            .await
            .status,
        401
    );
    assert_eq!(
        post_ndjson(&d, Some(&d.read_key), "application/x-ndjson", body)
            .await
            .status,
        403
    );
    let r = post_ndjson(
        &d,
        Some(&d.ingest_key),
        "application/x-www-form-urlencoded",
        body,
    )
    .await;
    assert_eq!(
        (r.status, code(&r).as_str()),
        (415, "unsupported_media_type")
    );
    let r = d
        .call(
            "POST",
            "/v1/contacts/ann",
            Some(&d.ingest_key),
            Some(&json!({})),
        )
        .await;
    assert_eq!((r.status, code(&r).as_str()), (405, "method_not_allowed"));
    // A contact keyed `import` is an ordinary contact for the other methods.
    let r = d
        .call("GET", "/v1/contacts/import", Some(&d.read_key), None)
        .await;
    assert_eq!((r.status, code(&r).as_str()), (404, "contact_not_found"));
    let r = d
        .call(
            "PUT",
            "/v1/contacts/import",
            Some(&d.ingest_key),
            Some(&json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        d.call("GET", "/v1/contacts/import", Some(&d.read_key), None)
            .await
            .status,
        200
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn imported_contacts_join_no_event_bucket_and_trigger_no_journey() {
    let db = TestDatabase::new().await;
    let d = TestDaemon::start(&db, compile(PROJECT), |_| {}).await;
    let mut conn = db.connect().await;
    let csv = "key,email,plan\nann,ann@x.io,pro\nbob,bob@x.io,free\n";
    let summary = import::import(&pool(&db).await, csv.as_bytes(), Format::Csv, 5000, |_| {})
        .await
        .unwrap();
    assert_eq!((summary.upserted, summary.bad), (2, 0));
    hogsend_runtime::db::tick(&mut conn, "hogsend", None)
        .await
        .unwrap();
    let members: Vec<(String, String)> =
        sqlx::query_as("select bucket_id, user_key from bucket_members order by 1, 2")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    // The property-only bucket takes `ann` at the next tick; the event bucket nobody.
    assert_eq!(members, vec![("pros".to_owned(), "ann".to_owned())]);
    let runs: i64 = sqlx::query_scalar("select count(*) from journey_runs")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(runs, 0);
    let events: i64 =
        sqlx::query_scalar("select count(*) from events where event not like 'bucket:%'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(events, 0);
    d.stop().await.unwrap();
}

async fn pool(db: &TestDatabase) -> sqlx::PgPool {
    hogsend_runtime::db::connect(db.url(), &hogsend_schema::SchemaName::default(), 2)
        .await
        .unwrap()
}

/// One contact of the lists test's population.
struct Person {
    key: String,
    email: Option<String>,
    news: Option<bool>,
    beta: Option<bool>,
    all_off: bool,
    suppressed: bool,
    deleted: bool,
}

impl Person {
    /// Subscribed to `list` (explicitly or by its default), unsubscribed neither from it nor
    /// from everything: docs/api.md#lists.
    fn subscriber(&self, list: &str) -> bool {
        let (choice, default) = if list == "news" {
            (self.news, true)
        } else {
            (self.beta, false)
        };
        !self.deleted && !self.all_off && choice.unwrap_or(default)
    }

    /// A subscriber who would receive the list's mail.
    fn member(&self, list: &str) -> bool {
        self.subscriber(list) && self.email.is_some() && !self.suppressed
    }
}

#[tokio::test]
async fn list_routes_count_page_and_bulk_subscribe() {
    let db = TestDatabase::new().await;
    let d = TestDaemon::start(&db, compile(PROJECT), |_| {}).await;
    let mut conn = db.connect().await;
    // A population covering every case, deterministic.
    let people: Vec<Person> = (0..230)
        .map(|i: u32| Person {
            key: format!("p{i:03}"),
            email: (i % 7 != 0).then(|| format!("p{i}@x.io")),
            news: [None, Some(true), Some(false)][(i % 3) as usize],
            beta: [None, Some(true), None, Some(false)][(i % 4) as usize],
            all_off: i % 11 == 0,
            suppressed: i % 13 == 5,
            deleted: i % 17 == 3,
        })
        .collect();
    let mut ndjson = String::new();
    for p in &people {
        let mut subs = Map::new();
        if let Some(n) = p.news {
            subs.insert("news".into(), n.into());
        }
        if let Some(b) = p.beta {
            subs.insert("beta".into(), b.into());
        }
        ndjson += &json!({"key": p.key, "email": p.email, "subscriptions": subs}).to_string();
        ndjson.push('\n');
    }
    let r = post_ndjson(&d, Some(&d.ingest_key), "application/x-ndjson", &ndjson).await;
    assert_eq!(r.json()["upserted"], json!(people.len()), "{}", r.body);
    for p in &people {
        if p.all_off {
            sqlx::query("insert into subscriptions (user_key, list_id, status) values ($1, '*', 'unsubscribed')")
                .bind(&p.key)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        if p.suppressed {
            if let Some(e) = &p.email {
                sqlx::query("insert into suppressions (email, reason) values ($1, 'manual')")
                    .bind(e)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
        if p.deleted {
            assert_eq!(
                d.call(
                    "DELETE",
                    &format!("/v1/contacts/{}", p.key),
                    Some(&d.admin_key),
                    None
                )
                .await
                .status,
                204
            );
        }
    }

    let check = |people: &[Person], lists: &Value| {
        for list in ["beta", "news"] {
            let row = lists["lists"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["id"] == list)
                .unwrap()
                .clone();
            let subscribers = people.iter().filter(|p| p.subscriber(list)).count();
            let members = people.iter().filter(|p| p.member(list)).count();
            assert_eq!(
                (
                    row["subscribers"].as_u64().unwrap() as usize,
                    row["members"].as_u64().unwrap() as usize
                ),
                (subscribers, members),
                "{list}: {row}"
            );
        }
    };
    let lists = d.call("GET", "/v1/lists", Some(&d.read_key), None).await;
    assert_eq!(lists.status, 200, "{}", lists.body);
    assert_eq!(fields(&lists.json()), documented("Lists"));
    assert_eq!(fields(&lists.json()["lists"][0]), documented("List"));
    check(&people, &lists.json());

    // Keyset pages over several pages equal the model's members, in key order.
    for list in ["news", "beta"] {
        let mut got = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/lists/{list}/members?limit=37&after={a}"),
                None => format!("/v1/lists/{list}/members?limit=37"),
            };
            let page = d.call("GET", &path, Some(&d.read_key), None).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let page = page.json();
            assert_eq!(fields(&page), documented("ListMemberPage"));
            assert_eq!(fields(&page["members"][0]), documented("ListMember"));
            pages += 1;
            for m in page["members"].as_array().unwrap() {
                got.push(m["key"].as_str().unwrap().to_owned());
            }
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => break,
            }
        }
        let want: Vec<String> = people
            .iter()
            .filter(|p| p.member(list))
            .map(|p| p.key.clone())
            .collect();
        assert!(pages >= 2 && want.len() > 37, "{list}: {pages} pages");
        assert_eq!(got, want, "{list}");
    }
    let r = d
        .call("GET", "/v1/lists/nope/members", Some(&d.read_key), None)
        .await;
    assert_eq!((r.status, code(&r).as_str()), (404, "list_not_found"));
    let r = d
        .call(
            "GET",
            "/v1/lists/news/members?limit=0",
            Some(&d.read_key),
            None,
        )
        .await;
    assert_eq!((r.status, code(&r).as_str()), (400, "invalid_parameter"));

    // Bulk subscribe: unknown and deleted keys reported, the rest changed or unchanged.
    let mut people = people;
    let named: Vec<String> = people
        .iter()
        .take(40)
        .map(|p| p.key.clone())
        .chain(["ghost".to_owned()])
        .collect();
    let r = d
        .call(
            "POST",
            "/v1/lists/beta/subscribe",
            Some(&d.ingest_key),
            Some(&json!({"keys": named})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(fields(&body), documented("BulkSubscription"));
    let live: Vec<&Person> = people.iter().take(40).filter(|p| !p.deleted).collect();
    let already = live.iter().filter(|p| p.beta == Some(true)).count();
    let mut unknown: Vec<String> = people
        .iter()
        .take(40)
        .filter(|p| p.deleted)
        .map(|p| p.key.clone())
        .collect();
    unknown.push("ghost".into());
    assert_eq!(body["changed"], json!(live.len() - already));
    assert_eq!(body["unchanged"], json!(already));
    assert_eq!(body["unknown"], json!(unknown));
    for p in people.iter_mut().take(40).filter(|p| !p.deleted) {
        p.beta = Some(true);
    }
    check(
        &people,
        &d.call("GET", "/v1/lists", Some(&d.read_key), None)
            .await
            .json(),
    );
    let named: Vec<String> = people
        .iter()
        .skip(20)
        .take(30)
        .map(|p| p.key.clone())
        .collect();
    let r = d
        .call(
            "POST",
            "/v1/lists/news/unsubscribe",
            Some(&d.ingest_key),
            Some(&json!({"keys": named})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for p in people.iter_mut().skip(20).take(30).filter(|p| !p.deleted) {
        p.news = Some(false);
    }
    check(
        &people,
        &d.call("GET", "/v1/lists", Some(&d.read_key), None)
            .await
            .json(),
    );
    let source: Vec<String> = sqlx::query_scalar(
        "select distinct source from subscriptions where user_key = 'p022' and list_id in ('news', 'beta')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(source, vec!["api".to_owned()]);

    // Bad requests change nothing.
    for (path, body, status, code_) in [
        (
            "/v1/lists/nope/subscribe",
            json!({"keys": ["p001"]}),
            404,
            "list_not_found",
        ),
        (
            "/v1/lists/beta/subscribe",
            json!({"keys": []}),
            400,
            "invalid_request",
        ),
        (
            "/v1/lists/beta/subscribe",
            json!({"keys": ["p001", 7]}),
            400,
            "invalid_request",
        ),
        (
            "/v1/lists/beta/subscribe",
            json!({"ids": ["p001"]}),
            400,
            "invalid_request",
        ),
        (
            "/v1/lists/beta/subscribe",
            json!(["p001"]),
            400,
            "invalid_request",
        ),
    ] {
        let r = d.call("POST", path, Some(&d.ingest_key), Some(&body)).await;
        assert_eq!(
            (r.status, code(&r).as_str()),
            (status, code_),
            "{path} {body}"
        );
    }
    let r = d
        .call(
            "POST",
            "/v1/lists/beta/subscribe",
            Some(&d.read_key),
            Some(&json!({"keys": ["p001"]})),
        )
        .await;
    assert_eq!(r.status, 403);
    check(
        &people,
        &d.call("GET", "/v1/lists", Some(&d.read_key), None)
            .await
            .json(),
    );
    d.stop().await.unwrap();
}

// ------------------------------------------------------------------------------------------
// Property: a random CSV, randomly quoted, imports exactly the contacts it was made from.
// ------------------------------------------------------------------------------------------

/// A generated contact: what the CSV must import to.
#[derive(Debug, Clone)]
struct Generated {
    key: String,
    email: Option<String>,
    name: String,
    note: String,
    age: Option<i64>,
    lists: Vec<&'static str>,
}

/// Text likely to break a CSV writer or reader: commas, quotes, line breaks, non-ASCII.
fn tricky() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(",".to_owned()),
            Just("\"".to_owned()),
            Just("\"\"".to_owned()),
            Just("\n".to_owned()),
            Just("\r\n".to_owned()),
            Just(" ".to_owned()),
            Just("é".to_owned()),
            Just("Zoë".to_owned()),
            Just("日本".to_owned()),
            Just("🙂".to_owned()),
            "[a-z]{1,5}",
        ],
        1..6,
    )
    .prop_map(|parts| parts.concat())
    // An all-blank cell means "leave what is stored": keep generated values non-blank.
    .prop_filter("non-blank", |s| !s.trim().is_empty())
}

fn generated() -> impl Strategy<Value = Vec<Generated>> {
    proptest::collection::vec(
        (
            tricky(),
            proptest::option::of("[a-z]{1,6}@[a-z]{1,4}\\.io"),
            tricky(),
            tricky(),
            proptest::option::of(-1000i64..1000),
            proptest::sample::subsequence(vec!["news", "beta"], 0..=2),
        ),
        1..25,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (key, email, name, note, age, lists))| Generated {
                // Unique keys that still need quoting; the key is trimmed on import.
                key: format!("{i}{}", key.trim()),
                email,
                name,
                note,
                age,
                lists,
            })
            .collect()
    })
}

/// How to write each field: always quoted, or only when it must be.
fn field(text: &str, always: bool) -> String {
    let needs =
        text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ');
    if always || needs {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn write_csv(rows: &[Generated], quote: &[bool], crlf: bool, bom: bool) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    if bom {
        out.push('\u{feff}');
    }
    out += &["key", "email", "name", "note", "age:number", "lists"].join(",");
    out += eol;
    for (i, r) in rows.iter().enumerate() {
        let q = quote[i % quote.len()];
        let cells = [
            field(&r.key, q),
            field(r.email.as_deref().unwrap_or(""), q),
            field(&r.name, q),
            field(&r.note, !q),
            field(&r.age.map(|a| a.to_string()).unwrap_or_default(), q),
            field(&r.lists.join(";"), q),
        ];
        out += &cells.join(",");
        out += eol;
    }
    out
}

/// One database for every case (migrating costs more than a case); emptied before each.
#[test]
fn random_csv_imports_exactly_its_contacts() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (db, pool) = rt.block_on(async {
        let db = TestDatabase::new().await;
        let mut conn = db.connect().await;
        hogsend_runtime::migrate::migrate(
            &mut conn,
            &hogsend_schema::SchemaName::default(),
            &compile(PROJECT),
        )
        .await
        .unwrap();
        let pool = pool(&db).await;
        (db, pool)
    });
    let strategy = (
        generated(),
        proptest::collection::vec(any::<bool>(), 1..4),
        any::<bool>(),
        any::<bool>(),
        1usize..8,
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let result = runner.run(&strategy, |(rows, quote, crlf, bom, batch)| {
        rt.block_on(async {
            let mut conn = db.connect().await;
            sqlx::raw_sql("delete from subscriptions; delete from contacts;")
                .execute(&mut conn)
                .await
                .unwrap();
            let csv = write_csv(&rows, &quote, crlf, bom);
            let summary = import::import(&pool, csv.as_bytes(), Format::Csv, batch, |_| {})
                .await
                .unwrap();
            prop_assert_eq!(summary.bad, 0, "{:?}\n{}", summary.errors, csv);
            prop_assert_eq!(
                (summary.rows, summary.upserted),
                (rows.len() as u64, rows.len() as u64)
            );
            let mut want = BTreeMap::new();
            let mut want_subs = BTreeMap::new();
            for r in &rows {
                let mut props = json!({"name": r.name, "note": r.note});
                if let Some(a) = r.age {
                    props["age"] = json!(a);
                }
                want.insert(r.key.trim().to_owned(), (r.email.clone(), props));
                for l in &r.lists {
                    want_subs.insert(
                        (r.key.trim().to_owned(), (*l).to_owned()),
                        "subscribed".to_owned(),
                    );
                }
            }
            prop_assert_eq!(contacts(&mut conn).await, want, "{}", csv);
            prop_assert_eq!(subscriptions(&mut conn).await, want_subs, "{}", csv);
            // Re-importing the same text changes nothing.
            let again = import::import(&pool, csv.as_bytes(), Format::Csv, batch, |_| {})
                .await
                .unwrap();
            prop_assert_eq!((again.upserted, again.unchanged), (0, rows.len() as u64));
            Ok(())
        })
    });
    rt.block_on(pool.close());
    if let Err(e) = result {
        panic!("{e}");
    }
}
