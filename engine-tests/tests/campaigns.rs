//! Campaigns (broadcasts; docs/language.md#campaigns) on a real Postgres: the recipients and
//! skip reasons of a campaign against a naive per-contact reading of "who receives a
//! message" (property test over random contacts, subscriptions, suppressions and
//! audiences), exactly one message per recipient whatever reruns and concurrent passes
//! happen, local-time sends across zones (one with a DST change that week), bounded retries
//! of a failing start, cancelling, and the `/v1/campaigns` routes (idempotent creation,
//! progress, cancel, start of a held code campaign).

mod support;

use std::collections::BTreeMap;

use hogsend_compiler::ir::{self, CmpOp, Program};
use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};
use hogsend_runtime::testkit::{request, Response, TestDaemon, TestDatabase};
use proptest::prelude::*;
use serde_json::{json, Value};
use sqlx::PgConnection;
use support::*;

// ------------------------------------------------------------------------------------------
// Setup
// ------------------------------------------------------------------------------------------

/// The lists of every test: one opt-in, one opt-out.
fn lists() -> Vec<ir::List> {
    [("optin", false), ("optout", true)]
        .into_iter()
        .map(|(id, default_subscribed)| ir::List {
            id: id.into(),
            name: None,
            description: None,
            default_subscribed,
            origin: ir::Origin {
                file: "lists.hog".into(),
                line: 1,
            },
        })
        .collect()
}

/// A database with the lists and the bucket `vip` (`contact.tier == "vip"`) deployed, and
/// one template per category (`t_optin`, `t_optout`, `t_transactional`, `t_unlisted`: a
/// category with no list).
async fn setup() -> (TestDatabase, PgConnection) {
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let program = Program {
        buckets: vec![bucket("vip", cmp(&["tier"], CmpOp::Eq, s("vip")))],
        lists: lists(),
        ..Default::default()
    };
    deploy(&mut conn, "hogsend", &program).await;
    exec(
        &mut conn,
        "insert into hogsend.templates (id, category, definition)
         select 't_' || c, c, jsonb_build_object('id', 't_' || c, 'subject', 'Hi', 'category', c,
                                                  'html', '<p>Hi</p>')
           from unnest(array['optin', 'optout', 'transactional', 'unlisted']) c",
    )
    .await;
    (db, conn)
}

/// Inserts an API-style campaign due at `send_at` (or at the local time `local` in each
/// contact's `timezone`).
async fn campaign(
    conn: &mut PgConnection,
    id: &str,
    audience: (&str, &str),
    template: &str,
    send_at: Option<&str>,
    local: Option<&str>,
) {
    sqlx::query(
        "insert into hogsend.broadcasts (id, name, source, audience_kind, audience_id, template,
                                         send_at, send_at_local, zone_path)
         values ($1, $1, 'api', $2, $3, $4, $5::timestamptz, $6::timestamp,
                 case when $6 is not null then array['timezone'] end)",
    )
    .bind(id)
    .bind(audience.0)
    .bind(audience.1)
    .bind(template)
    .bind(send_at)
    .bind(local)
    .execute(conn)
    .await
    .expect("insert campaign");
}

/// The campaign pass at `at` (project zone UTC), as a tick runs it.
async fn pass(conn: &mut PgConnection, at: &str) -> Value {
    sqlx::query_scalar::<_, Option<Value>>("select hogsend._campaign_pass($1::timestamptz, 'UTC')")
        .bind(at)
        .fetch_one(conn)
        .await
        .expect("campaign pass")
        .unwrap_or(Value::Null)
}

/// A campaign's messages: user_key → (status, skip reason).
async fn messages(
    conn: &mut PgConnection,
    campaign: &str,
) -> BTreeMap<String, (String, Option<String>)> {
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select user_key, status, skip_reason from hogsend.messages where campaign_id = $1",
    )
    .bind(campaign)
    .fetch_all(conn)
    .await
    .expect("messages");
    rows.into_iter().map(|(k, s, r)| (k, (s, r))).collect()
}

async fn status(conn: &mut PgConnection, campaign: &str) -> (String, i32, Option<String>) {
    sqlx::query_as("select status, attempts, last_error from hogsend.broadcasts where id = $1")
        .bind(campaign)
        .fetch_one(conn)
        .await
        .expect("campaign status")
}

// ------------------------------------------------------------------------------------------
// The differential property test
// ------------------------------------------------------------------------------------------

/// A subscription state for one list.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sub {
    Unset,
    Subscribed,
    Unsubscribed,
}

fn sub() -> impl Strategy<Value = Sub> {
    prop_oneof![
        Just(Sub::Unset),
        Just(Sub::Subscribed),
        Just(Sub::Unsubscribed)
    ]
}

/// One random contact.
#[derive(Debug, Clone)]
struct Person {
    /// 0: external id, 1: anonymous id only, 2: neither (keyed by its uuid).
    ident: u8,
    /// None, blank, or an address (upper-cased when `shout`).
    email: Option<String>,
    shout: bool,
    suppressed: bool,
    vip: bool,
    deleted: bool,
    unsubscribed_all: bool,
    optin: Sub,
    optout: Sub,
}

fn person() -> impl Strategy<Value = Person> {
    (
        0u8..3,
        prop_oneof![
            Just(None),
            Just(Some(" ".to_owned())),
            Just(Some("x".to_owned()))
        ],
        any::<bool>(),
        prop::bool::weighted(0.2),
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.2),
        sub(),
        sub(),
    )
        .prop_map(
            |(ident, email, shout, suppressed, vip, deleted, unsubscribed_all, optin, optout)| {
                Person {
                    ident,
                    email,
                    shout,
                    suppressed,
                    vip,
                    deleted,
                    unsubscribed_all,
                    optin,
                    optout,
                }
            },
        )
}

/// The audience: a bucket (with the template's category) or a list.
#[derive(Debug, Clone)]
enum Audience {
    Bucket(&'static str),
    List(&'static str),
}

fn audience() -> impl Strategy<Value = Audience> {
    prop_oneof![
        prop::sample::select(vec!["optin", "optout", "transactional", "unlisted"])
            .prop_map(Audience::Bucket),
        prop::sample::select(vec!["optin", "optout"]).prop_map(Audience::List),
    ]
}

/// The address of contact `i`, as stored (`None`: no email).
fn address(i: usize, p: &Person) -> Option<String> {
    p.email.as_ref().map(|e| {
        if e.trim().is_empty() {
            e.clone()
        } else if p.shout {
            format!("Person{i}@Example.TEST")
        } else {
            format!("person{i}@example.test")
        }
    })
}

/// Who receives the campaign and why not, per contact index, read straight from
/// docs/language.md ("Campaigns", "Who receives a message"): the audience is every live
/// member of the bucket, or every live contact subscribed to the list (explicitly, or by
/// its `default subscribed`); the message's category is the list, or the template's for a
/// bucket; the first reason that applies wins.
fn naive(people: &[Person], audience: &Audience) -> BTreeMap<usize, Option<String>> {
    let mut out = BTreeMap::new();
    for (i, p) in people.iter().enumerate() {
        let sub_of = |list: &str| match list {
            "optin" => p.optin,
            "optout" => p.optout,
            _ => Sub::Unset,
        };
        let (member, category) = match audience {
            Audience::Bucket(category) => (p.vip, *category),
            Audience::List(list) => {
                let default_subscribed = *list == "optout";
                let s = sub_of(list);
                (
                    s == Sub::Subscribed || (default_subscribed && s == Sub::Unset),
                    *list,
                )
            }
        };
        if !member || p.deleted {
            continue;
        }
        let email = address(i, p);
        let reason = if email.as_deref().is_none_or(|e| e.trim().is_empty()) {
            Some("no_email".to_owned())
        } else if p.suppressed {
            Some("suppressed".to_owned())
        } else if category == "transactional" {
            None
        } else if p.unsubscribed_all {
            Some("unsubscribed_all".to_owned())
        } else if sub_of(category) == Sub::Unsubscribed {
            Some(format!("unsubscribed:{category}"))
        } else if category == "optin" && sub_of(category) != Sub::Subscribed {
            Some(format!("not_subscribed:{category}"))
        } else {
            None
        };
        out.insert(i, reason);
    }
    out
}

async fn run_case(people: &[Person], audience: &Audience) -> Result<(), TestCaseError> {
    let (_db, mut conn) = setup().await;
    for (i, p) in people.iter().enumerate() {
        let email = address(i, p);
        sqlx::query(
            "insert into hogsend.contacts (external_id, anonymous_id, email, properties)
             values ($1, $2, $3, jsonb_build_object('i', $4::int, 'tier', $5::text))",
        )
        .bind((p.ident == 0).then(|| format!("u{i}")))
        .bind((p.ident == 1).then(|| format!("a{i}")))
        .bind(&email)
        .bind(i as i32)
        .bind(if p.vip { "vip" } else { "free" })
        .execute(&mut conn)
        .await
        .expect("contact");
        let key: String = sqlx::query_scalar(
            "select user_key from hogsend.contacts where (properties->>'i')::int = $1",
        )
        .bind(i as i32)
        .fetch_one(&mut conn)
        .await
        .expect("key");
        if p.suppressed {
            if let Some(e) = email.as_ref().filter(|e| !e.trim().is_empty()) {
                sqlx::query(
                    "insert into hogsend.suppressions (email, reason) values (lower(btrim($1)), 'manual')",
                )
                .bind(e)
                .execute(&mut conn)
                .await
                .expect("suppression");
            }
        }
        for (list, state) in [
            ("optin", p.optin),
            ("optout", p.optout),
            (
                "*",
                if p.unsubscribed_all {
                    Sub::Unsubscribed
                } else {
                    Sub::Unset
                },
            ),
        ] {
            let status = match state {
                Sub::Unset => continue,
                Sub::Subscribed => "subscribed",
                Sub::Unsubscribed => "unsubscribed",
            };
            sqlx::query(
                "insert into hogsend.subscriptions (user_key, list_id, status) values ($1, $2, $3)",
            )
            .bind(&key)
            .bind(list)
            .bind(status)
            .execute(&mut conn)
            .await
            .expect("subscription");
        }
    }
    // Memberships settle, then some contacts are deleted (which ends theirs at the next tick).
    tick(&mut conn, "hogsend", secs(0)).await;
    for (i, p) in people.iter().enumerate() {
        if p.deleted {
            sqlx::query(
                "update hogsend.contacts set deleted_at = now() where (properties->>'i')::int = $1",
            )
            .bind(i as i32)
            .execute(&mut conn)
            .await
            .expect("delete");
        }
    }
    tick(&mut conn, "hogsend", secs(60)).await;
    let (kind, id, template) = match audience {
        Audience::Bucket(category) => ("bucket", "vip".to_owned(), format!("t_{category}")),
        Audience::List(list) => ("list", (*list).to_owned(), format!("t_{list}")),
    };
    campaign(
        &mut conn,
        "c",
        (kind, &id),
        &template,
        Some("2000-01-01T00:00:00Z"),
        None,
    )
    .await;
    // A tick runs the campaign pass.
    tick(&mut conn, "hogsend", secs(120)).await;
    let keys: BTreeMap<String, usize> = sqlx::query_as::<_, (String, i32)>(
        "select user_key, (properties->>'i')::int from hogsend.contacts",
    )
    .fetch_all(&mut conn)
    .await
    .expect("keys")
    .into_iter()
    .map(|(k, i)| (k, i as usize))
    .collect();
    let actual: BTreeMap<usize, Option<String>> = messages(&mut conn, "c")
        .await
        .into_iter()
        .map(|(key, (status, reason))| {
            assert_eq!(
                status == "queued",
                reason.is_none(),
                "{key}: {status} {reason:?}"
            );
            (keys[&key], reason)
        })
        .collect();
    let expected = naive(people, audience);
    // With nothing to deliver (everyone skipped), the campaign is sent at once.
    let queued = expected.values().any(Option::is_none);
    prop_assert_eq!(actual, expected, "audience {:?}", audience);
    let (state, _, _) = status(&mut conn, "c").await;
    prop_assert_eq!(state, if queued { "sending" } else { "sent" });
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 100,
        ..ProptestConfig::default()
    })]

    #[test]
    fn recipients_and_skip_reasons_match_a_naive_evaluation(
        people in prop::collection::vec(person(), 0..14),
        audience in audience(),
    ) {
        RT.block_on(run_case(&people, &audience))?;
    }
}

// ------------------------------------------------------------------------------------------
// Exactly once
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn reruns_and_concurrent_passes_create_one_message_per_recipient() {
    let (db, mut conn) = setup().await;
    exec(
        &mut conn,
        "insert into hogsend.contacts (external_id, email)
         select 'u' || g, 'u' || g || '@example.test' from generate_series(1, 200) g",
    )
    .await;
    campaign(
        &mut conn,
        "c",
        ("list", "optout"),
        "t_optout",
        Some("2027-01-01T00:00:00Z"),
        None,
    )
    .await;
    // Not due yet.
    assert_eq!(pass(&mut conn, "2026-12-31T23:59:59Z").await, Value::Null);
    assert!(messages(&mut conn, "c").await.is_empty());
    // Two connections run the pass at once.
    let mut other = db.connect().await;
    let (a, b) = tokio::join!(
        pass(&mut conn, "2027-01-01T00:00:00Z"),
        pass(&mut other, "2027-01-01T00:00:00Z")
    );
    let started = [&a, &b]
        .iter()
        .map(|v| v.get("started").and_then(Value::as_i64).unwrap_or(0))
        .sum::<i64>();
    assert_eq!(started, 1, "{a} {b}");
    let first = messages(&mut conn, "c").await;
    assert_eq!(first.len(), 200);
    assert!(first.values().all(|(s, r)| s == "queued" && r.is_none()));
    // A crash after the insert but before the status change: the campaign is due again; the
    // rerun creates nothing and the campaign goes on.
    exec(
        &mut conn,
        "update hogsend.broadcasts set status = 'scheduled', started_at = null where id = 'c'",
    )
    .await;
    let rerun = pass(&mut conn, "2027-01-01T00:01:00Z").await;
    assert_eq!(rerun["started"], 1);
    assert_eq!(rerun["messages"], 0);
    let count: i64 =
        sqlx::query_scalar("select count(*) from hogsend.messages where campaign_id = 'c'")
            .fetch_one(&mut conn)
            .await
            .expect("count");
    assert_eq!(count, 200);
    // Contacts who join the list later are not added: the audience was frozen at the start.
    exec(
        &mut conn,
        "insert into hogsend.contacts (external_id, email) values ('late', 'late@example.test')",
    )
    .await;
    pass(&mut conn, "2027-01-01T00:02:00Z").await;
    assert_eq!(messages(&mut conn, "c").await.len(), 200);
    // Once every message is delivered, the campaign is sent.
    exec(
        &mut conn,
        "update hogsend.messages set status = 'sent', sent_at = now() where campaign_id = 'c'",
    )
    .await;
    let done = pass(&mut conn, "2027-01-01T00:03:00Z").await;
    assert_eq!(done["completed"], 1);
    assert_eq!(status(&mut conn, "c").await.0, "sent");
    let (recipients, sent): (i64, i64) =
        sqlx::query_as("select recipients, sent from hogsend.campaigns where id = 'c'")
            .fetch_one(&mut conn)
            .await
            .expect("view");
    assert_eq!((recipients, sent), (200, 200));
}

// ------------------------------------------------------------------------------------------
// Local time
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn local_time_sends_are_due_at_that_time_in_each_zone() {
    let (_db, mut conn) = setup().await;
    // 2027-03-14 is the day the United States move their clocks forward at 02:00: 02:30
    // does not exist in New York and becomes 03:00 EDT (the end of the gap).
    exec(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email, properties) values
           ('ny', 'ny@example.test', '{"timezone": "America/New_York"}'),
           ('ldn', 'ldn@example.test', '{"timezone": "Europe/London"}'),
           ('tyo', 'tyo@example.test', '{"timezone": "Asia/Tokyo"}'),
           ('mars', 'mars@example.test', '{"timezone": "Mars/Olympus_Mons"}'),
           ('none', 'none@example.test', '{}'),
           ('noemail', null, '{"timezone": "Asia/Tokyo"}')"#,
    )
    .await;
    campaign(
        &mut conn,
        "local",
        ("list", "optout"),
        "t_optout",
        None,
        Some("2027-03-14 02:30"),
    )
    .await;
    // It starts once 02:30 has come somewhere (UTC+14: 12:30 UTC the day before).
    assert_eq!(pass(&mut conn, "2027-03-13T12:29:00Z").await, Value::Null);
    let started = pass(&mut conn, "2027-03-13T12:30:00Z").await;
    assert_eq!(started["started"], 1, "{started}");
    let due: BTreeMap<String, Option<String>> = sqlx::query_as(
        "select user_key, to_char(next_attempt_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI')
           from hogsend.messages where campaign_id = 'local'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("due")
    .into_iter()
    .collect();
    let expected: BTreeMap<String, Option<String>> = [
        ("ny", Some("2027-03-14 07:00")),
        ("ldn", Some("2027-03-14 02:30")),
        ("tyo", Some("2027-03-13 17:30")),
        // an invalid or missing zone: the project's (UTC here)
        ("mars", Some("2027-03-14 02:30")),
        ("none", Some("2027-03-14 02:30")),
        // skipped: never due
        ("noemail", None),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.map(str::to_owned)))
    .collect();
    assert_eq!(due, expected);
    // Delivery claims nothing before its due instant (the database clock is years earlier).
    let claimed: i64 = sqlx::query_scalar("select count(*) from hogsend.claim_messages(100, 60)")
        .fetch_one(&mut conn)
        .await
        .expect("claim");
    assert_eq!(claimed, 0);
}

// ------------------------------------------------------------------------------------------
// Failure and cancel
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_campaign_that_keeps_failing_ends_failed_after_five_attempts() {
    let (_db, mut conn) = setup().await;
    exec(
        &mut conn,
        "insert into hogsend.contacts (external_id, email) values ('u1', 'u1@example.test')",
    )
    .await;
    campaign(
        &mut conn,
        "broken",
        ("list", "optout"),
        "no_such_template",
        Some("2027-01-01T00:00:00Z"),
        None,
    )
    .await;
    campaign(
        &mut conn,
        "fine",
        ("list", "optout"),
        "t_optout",
        Some("2027-01-01T00:00:00Z"),
        None,
    )
    .await;
    // The failing one does not stop the other (nor the tick).
    let first = pass(&mut conn, "2027-01-01T00:00:00Z").await;
    assert_eq!(
        (&first["started"], &first["failed_attempts"]),
        (&json!(1), &json!(1))
    );
    assert_eq!(status(&mut conn, "fine").await.0, "sending");
    assert_eq!(
        status(&mut conn, "broken").await,
        (
            "scheduled".into(),
            1,
            Some("unknown template no_such_template".into())
        )
    );
    // Before its backoff (30 s) has passed, nothing is tried.
    pass(&mut conn, "2027-01-01T00:00:20Z").await;
    assert_eq!(status(&mut conn, "broken").await.1, 1);
    // Attempts 2..5, each after its backoff (30 s, 1 min, 2 min, 4 min).
    for (n, at) in [
        (2, "2027-01-01T00:00:30Z"),
        (3, "2027-01-01T00:01:30Z"),
        (4, "2027-01-01T00:03:30Z"),
        (5, "2027-01-01T00:07:30Z"),
    ] {
        pass(&mut conn, at).await;
        assert_eq!(status(&mut conn, "broken").await.1, n, "at {at}");
    }
    let (state, attempts, error) = status(&mut conn, "broken").await;
    assert_eq!((state.as_str(), attempts), ("failed", 5));
    assert_eq!(error.as_deref(), Some("unknown template no_such_template"));
    // Never retried again.
    pass(&mut conn, "2027-01-02T00:00:00Z").await;
    assert_eq!(status(&mut conn, "broken").await.1, 5);
    assert!(messages(&mut conn, "broken").await.is_empty());
}

#[tokio::test]
async fn cancelling_stops_what_is_not_sent() {
    let (_db, mut conn) = setup().await;
    exec(
        &mut conn,
        "insert into hogsend.contacts (external_id, email)
         select 'u' || g, 'u' || g || '@example.test' from generate_series(1, 10) g",
    )
    .await;
    campaign(
        &mut conn,
        "c",
        ("list", "optout"),
        "t_optout",
        Some("2027-01-01T00:00:00Z"),
        None,
    )
    .await;
    pass(&mut conn, "2027-01-01T00:00:00Z").await;
    exec(
        &mut conn,
        "update hogsend.messages set status = 'sent', sent_at = now()
          where campaign_id = 'c' and user_key in ('u1', 'u2', 'u3')",
    )
    .await;
    let cancelled: Option<i64> = sqlx::query_scalar("select hogsend.cancel_campaign('c')")
        .fetch_one(&mut conn)
        .await
        .expect("cancel");
    assert_eq!(cancelled, Some(7));
    let by_status: BTreeMap<String, i64> = sqlx::query_as(
        "select status, count(*) from hogsend.messages where campaign_id = 'c' group by 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("statuses")
    .into_iter()
    .collect();
    assert_eq!(
        by_status,
        BTreeMap::from([("cancelled".to_owned(), 7), ("sent".to_owned(), 3)])
    );
    assert_eq!(status(&mut conn, "c").await.0, "cancelled");
    // A second cancel changes nothing; a later pass neither completes nor restarts it.
    let again: Option<i64> = sqlx::query_scalar("select hogsend.cancel_campaign('c')")
        .fetch_one(&mut conn)
        .await
        .expect("cancel");
    assert_eq!(again, None);
    pass(&mut conn, "2027-01-01T01:00:00Z").await;
    assert_eq!(status(&mut conn, "c").await.0, "cancelled");
}

// ------------------------------------------------------------------------------------------
// Code-defined campaigns and the API
// ------------------------------------------------------------------------------------------

const PROJECT: &str = r#"
list news {
  name "News"
}

bucket pro {
  criteria contact.plan == "pro"
}

campaign past_launch {
  name     "A launch whose date has passed"
  audience list news
  template launch
  send_at  2001-01-01T09:00:00Z
}

campaign later {
  audience bucket pro
  template launch
  send_at  2999-01-01 09:00 in contact.timezone
}
"#;

fn project() -> Vec<hogsend_schema::GeneratedFile> {
    let mut launch = TemplateSource::html_only("launch");
    if let Some(html) = launch.html.as_mut() {
        *html = SourceFile::new(
            "templates/launch.html",
            "---\nsubject: Launch\ncategory: news\n---\n<p>Hi {{ campaign.id }}</p>\n",
        );
    }
    let mut receipt = TemplateSource::html_only("receipt");
    if let Some(html) = receipt.html.as_mut() {
        *html = SourceFile::new(
            "templates/receipt.html",
            "---\nsubject: Receipt\ncategory: transactional\n---\n<p>Thanks</p>\n",
        );
    }
    let set = SourceSet {
        files: vec![SourceFile::new("project.hog", PROJECT)],
        templates: vec![launch, receipt],
        ..Default::default()
    };
    let compiled = hogsend_compiler::compile(&set);
    compiled
        .files
        .unwrap_or_else(|| panic!("{:#?}", compiled.checked.diagnostics))
}

fn error_code(r: &Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_owned()
}

async fn post(d: &TestDaemon, path: &str, body: &Value, key: Option<&str>) -> Response {
    let mut headers = vec![
        (
            "Authorization".to_owned(),
            format!("Bearer {}", d.admin_key),
        ),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    if let Some(key) = key {
        headers.push(("Idempotency-Key".to_owned(), key.to_owned()));
    }
    request(
        d.addr,
        "POST",
        path,
        &headers,
        Some(body.to_string().as_bytes()),
    )
    .await
}

#[tokio::test]
async fn code_campaigns_deploy_held_when_past_and_the_api_creates_follows_and_cancels() {
    let db = TestDatabase::new().await;
    let files = project();
    // The deploy reports the campaign whose send_at is past, and holds it.
    let mut conn = db.connect().await;
    let report = hogsend_runtime::migrate::migrate(
        &mut conn,
        &hogsend_schema::SchemaName::default(),
        &files,
    )
    .await
    .expect("migrate");
    let held: Vec<&str> = report
        .held_campaigns
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(held, ["past_launch"]);
    let d = TestDaemon::start(&db, files, |_| {}).await;
    exec(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email, properties) values
           ('p1', 'p1@example.test', '{"plan": "pro"}'),
           ('p2', null, '{"plan": "pro"}'),
           ('f1', 'f1@example.test', '{"plan": "free"}');
           insert into hogsend.subscriptions (user_key, list_id, status)
           values ('f1', 'news', 'unsubscribed');"#,
    )
    .await;
    sqlx::query("select hogsend.tick(null)")
        .execute(&mut conn)
        .await
        .expect("tick");

    // Held: a tick does not send it.
    let r = d
        .call("GET", "/v1/campaigns/past_launch", Some(&d.read_key), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = r.json();
    assert_eq!(
        (c["status"].as_str(), c["held"].as_bool()),
        (Some("scheduled"), Some(true))
    );
    assert_eq!(c["recipients"], 0);
    // Started through the API, the next tick sends it.
    let r = d
        .call(
            "POST",
            "/v1/campaigns/past_launch/start",
            Some(&d.admin_key),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["held"].as_bool()),
        (200, Some(false)),
        "{}",
        r.body
    );
    sqlx::query("select hogsend.tick(null)")
        .execute(&mut conn)
        .await
        .expect("tick");
    let c = d
        .call("GET", "/v1/campaigns/past_launch", Some(&d.read_key), None)
        .await
        .json();
    // news is opt-out: p1 and p2 (no email: skipped), not f1 (unsubscribed from it).
    assert_eq!(c["status"], "sending");
    assert_eq!(
        (c["recipients"].as_i64(), c["skipped"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(c["skipped_by_reason"], json!({"no_email": 1}));
    let r = d
        .call(
            "POST",
            "/v1/campaigns/past_launch/start",
            Some(&d.admin_key),
            None,
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (409, "campaign_finished")
    );

    // Creation through the API: 201, then 200 for a replay with the same key.
    let body = json!({"name": "Pro news", "audience": {"bucket": "pro"}, "template": "launch",
                      "send_at": "2999-01-01T00:00:00Z"});
    let first = post(&d, "/v1/campaigns", &body, Some("k-1")).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let id = first.json()["id"].as_str().expect("id").to_owned();
    let replay = post(&d, "/v1/campaigns", &body, Some("k-1")).await;
    assert_eq!(
        (replay.status, replay.json()["id"].as_str()),
        (200, Some(id.as_str()))
    );
    let other = post(
        &d,
        "/v1/campaigns",
        &json!({"name": "Other", "audience": {"bucket": "pro"},
        "template": "launch"}),
        Some("k-1"),
    )
    .await;
    assert_eq!(
        (other.status, error_code(&other).as_str()),
        (409, "idempotency_key_reused")
    );
    let without_key = post(&d, "/v1/campaigns", &body, None).await;
    assert_eq!(without_key.status, 201);
    assert_ne!(without_key.json()["id"].as_str(), Some(id.as_str()));
    // Bad input: 400 with every problem, nothing stored.
    let before: i64 = sqlx::query_scalar("select count(*) from hogsend.broadcasts")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    for bad in [
        json!({"name": "x", "audience": {"bucket": "nope"}, "template": "launch"}),
        json!({"name": "x", "audience": {"list": "news"}, "template": "nope"}),
        // A transactional template to a bucket would bypass unsubscribes (E0314 in code).
        json!({"name": "x", "audience": {"bucket": "pro"}, "template": "receipt"}),
        json!({"name": "x", "audience": {"bucket": "pro", "list": "news"}, "template": "launch"}),
        json!({"name": "x", "audience": {"list": "news"}, "template": "launch",
               "send_at": "2027-03-01 09:00"}),
        json!({"audience": {"list": "news"}, "template": "launch", "extra": true}),
        json!([1, 2]),
    ] {
        let r = post(&d, "/v1/campaigns", &bad, None).await;
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (400, "invalid_request"),
            "{bad}: {}",
            r.body
        );
        assert!(!r.json()["error"]["details"]
            .as_array()
            .expect("details")
            .is_empty());
    }
    let r = post(&d, "/v1/campaigns", &body, Some(&"k".repeat(300))).await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (400, "invalid_parameter")
    );
    let after: i64 = sqlx::query_scalar("select count(*) from hogsend.broadcasts")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(before, after);
    // A read key may not create.
    let r = d
        .call("POST", "/v1/campaigns", Some(&d.read_key), Some(&body))
        .await;
    assert_eq!(r.status, 403);

    // The list, and cancelling.
    let list = d
        .call("GET", "/v1/campaigns", Some(&d.read_key), None)
        .await
        .json();
    let ids: Vec<&str> = list["campaigns"]
        .as_array()
        .expect("campaigns")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 4, "{list}");
    assert!(ids.contains(&"later") && ids.contains(&id.as_str()));
    let r = d
        .call(
            "POST",
            &format!("/v1/campaigns/{id}/cancel"),
            Some(&d.admin_key),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("cancelled")),
        "{}",
        r.body
    );
    let r = d
        .call(
            "POST",
            &format!("/v1/campaigns/{id}/cancel"),
            Some(&d.admin_key),
            None,
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (409, "campaign_finished")
    );
    let r = d
        .call(
            "POST",
            "/v1/campaigns/nope/cancel",
            Some(&d.admin_key),
            None,
        )
        .await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (404, "campaign_not_found")
    );
    let r = d
        .call("GET", "/v1/campaigns/nope", Some(&d.read_key), None)
        .await;
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (404, "campaign_not_found")
    );
    d.stop().await.expect("stop");
}

#[tokio::test]
async fn the_campaign_list_pages_newest_first() {
    let db = TestDatabase::new().await;
    let d = TestDaemon::start(&db, project(), |_| {}).await;
    let mut conn = db.connect().await;
    // 7 API campaigns besides the project's 2: three share one created_at (ties go by id,
    // descending), the others are a minute apart.
    exec(
        &mut conn,
        "insert into hogsend.broadcasts
           (id, name, source, audience_kind, audience_id, template, send_at, created_at)
         select 'c' || n, 'C' || n, 'api', 'list', 'news', 'launch', '2999-01-01',
                '2030-01-01'::timestamptz + make_interval(mins => least(n, 4))
           from generate_series(1, 7) n",
    )
    .await;
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            None => "/v1/campaigns?limit=2".to_owned(),
            Some(a) => format!("/v1/campaigns?limit=2&after={a}"),
        };
        let r = d.call("GET", &path, Some(&d.read_key), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        let rows = page["campaigns"].as_array().expect("campaigns");
        assert!(rows.len() <= 2, "{page}");
        ids.extend(
            rows.iter()
                .filter_map(|c| c["id"].as_str().map(str::to_owned)),
        );
        pages += 1;
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "the walk does not end");
    }
    let deployed: Vec<String> = sqlx::query_scalar(
        "select id from hogsend.broadcasts where source = 'code' order by created_at desc, id desc",
    )
    .fetch_all(&mut conn)
    .await
    .expect("code campaigns");
    assert_eq!(deployed.len(), 2);
    // The deployed ones were created at the daemon's start, before 2030: they come last.
    let mut expected: Vec<String> = ["c7", "c6", "c5", "c4", "c3", "c2", "c1"]
        .map(str::to_owned)
        .to_vec();
    expected.extend(deployed);
    assert_eq!(ids, expected);
    // 9 campaigns by 2: the fifth page has one and no `next`.
    assert_eq!(pages, 5);
    // Without a limit, one page of everything.
    let all = d
        .call("GET", "/v1/campaigns", Some(&d.read_key), None)
        .await
        .json();
    assert_eq!(all["campaigns"].as_array().map(Vec::len), Some(9));
    assert_eq!(all["next"], Value::Null);
    // Bad cursors and limits: the same 400 as every other list.
    for bad in [
        "after=nope",
        "after=12.",
        "after=x.c1",
        "limit=0",
        "limit=1001",
    ] {
        let r = d
            .call(
                "GET",
                &format!("/v1/campaigns?{bad}"),
                Some(&d.read_key),
                None,
            )
            .await;
        assert_eq!(
            (r.status, error_code(&r).as_str()),
            (400, "invalid_parameter"),
            "{bad}: {}",
            r.body
        );
        let field = bad.split('=').next().unwrap_or_default();
        assert_eq!(
            r.json()["error"]["details"][0]["field"],
            field,
            "{}",
            r.body
        );
    }
    d.stop().await.expect("stop");
}
