//! The journey bench (`hogsend-bench journeys`) loads its parked runs set-based
//! (bench/src/journey_runs.sql) instead of driving a million sign-ups through ticks. This
//! checks, on a couple of hundred contacts, that the load writes exactly the rows the engine
//! writes when the same sign-ups go through ticks — runs, their history, messages, events,
//! an empty inbox — and that the engine then moves both states the same way.

use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};
use hogsend_runtime::testkit::TestDatabase;
use serde_json::Value;
use sqlx::PgConnection;

const HOG: &str = include_str!("../../bench/src/journeys.hog");
const LOAD: &str = include_str!("../../bench/src/journey_runs.sql");
const TEMPLATES: &[&str] = &["welcome", "tips", "activated_tips", "activated_nudge"];
const CONTACTS: i64 = 200;
const T0: &str = "2026-06-01T12:00:00Z";

fn source_set() -> SourceSet {
    SourceSet {
        files: vec![SourceFile::new("journeys/bench.hog", HOG)],
        templates: TEMPLATES
            .iter()
            .map(|id| TemplateSource {
                id: (*id).to_owned(),
                html: Some(SourceFile::new(
                    format!("templates/{id}.html"),
                    format!("---\nsubject: {id}\ncategory: transactional\n---\n<p>{id}</p>\n"),
                )),
                text: None,
            })
            .collect(),
        config: None,
    }
}

/// The load's statements with their parameters spliced in (our own constants).
fn statements() -> Vec<String> {
    LOAD.split("\n-- ;;\n")
        .map(|s| {
            s.replace("$contacts", &CONTACTS.to_string())
                .replace("$t0", &format!("'{T0}'::timestamptz"))
        })
        .collect()
}

async fn deployed() -> (TestDatabase, PgConnection) {
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let compiled = hogsend_compiler::compile(&source_set());
    let files = compiled
        .files
        .unwrap_or_else(|| panic!("project has errors: {:#?}", compiled.checked.diagnostics));
    hogsend_runtime::migrate::migrate(&mut conn, &Default::default(), &files)
        .await
        .expect("migrate");
    (db, conn)
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn tick(conn: &mut PgConnection, at: &str) -> Value {
    sqlx::query_scalar("select tick($1::timestamptz)")
        .bind(at)
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("tick at {at}: {e}"))
}

/// Everything the journey engine wrote, ids replaced by what they point at, sorted.
async fn state(conn: &mut PgConnection) -> Value {
    sqlx::query_scalar(
        "select jsonb_build_object(
           'runs', (select coalesce(jsonb_agg(x order by x::text), '[]') from (
             select to_jsonb(r) - 'id' - 'trigger_event_id'
                    || jsonb_build_object('trigger', (select to_jsonb(e) - 'id' from events e
                                                       where e.id = r.trigger_event_id)) as x
               from runs r) q),
           'run_steps', (select coalesce(jsonb_agg(x order by x::text), '[]') from (
             select to_jsonb(s) - 'run_id' || jsonb_build_object('journey_id', r.journey_id) as x
               from run_steps s join runs r on r.id = s.run_id) q),
           'messages', (select coalesce(jsonb_agg(x order by x::text), '[]') from (
             select to_jsonb(m) - 'id' - 'run_id' as x from messages m) q),
           'events', (select coalesce(jsonb_agg(x order by x::text), '[]') from (
             select to_jsonb(e) - 'id' as x from events e where e.event not like 'bucket:%') q),
           'inbox', (select count(*) from journey_inbox),
           'skips', (select count(*) from journey_skips))",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("state")
}

#[tokio::test]
async fn the_bulk_load_writes_what_the_engine_writes() {
    let statements = statements();
    assert_eq!(statements.len(), 7);

    // The engine: the same contacts; each sign-up inserted (triggers on) just before the pass
    // at its enrolment instant.
    let (_a, mut engine) = deployed().await;
    exec(&mut engine, &statements[0]).await;
    exec(&mut engine, &statements[1]).await;
    let instants: Vec<String> = sqlx::query_scalar(
        "select distinct to_char(enrolled_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
           from bench_enrol order by 1",
    )
    .fetch_all(&mut engine)
    .await
    .expect("instants");
    assert!(instants.len() > 100);
    for at in &instants {
        sqlx::query(
            "insert into events (user_key, event, properties, occurred_at, received_at)
             select user_key, 'user.signed_up', '{}', enrolled_at - interval '5 seconds',
                    enrolled_at - interval '5 seconds'
               from bench_enrol where enrolled_at = $1::timestamptz order by user_key",
        )
        .bind(at)
        .execute(&mut engine)
        .await
        .expect("sign-ups");
        tick(&mut engine, at).await;
    }

    // The bench's load, as the bench runs it (triggers off).
    let (_b, mut loaded) = deployed().await;
    exec(
        &mut loaded,
        "alter table contacts disable trigger user; alter table events disable trigger user;
         alter table messages disable trigger user;",
    )
    .await;
    for sql in &statements {
        exec(&mut loaded, sql).await;
    }
    exec(
        &mut loaded,
        "alter table contacts enable trigger user; alter table events enable trigger user;
         alter table messages enable trigger user; select rebuild_event_summaries();",
    )
    .await;

    let expected = state(&mut engine).await;
    assert_eq!(expected["runs"].as_array().map(Vec::len), Some(200));
    assert_eq!(expected["messages"].as_array().map(Vec::len), Some(200));
    assert_eq!(state(&mut loaded).await, expected);

    // Both move the same way: nothing at t0, the 1% due at t0 + 60 s.
    for at in [T0, "2026-06-01T12:01:00Z"] {
        let a = tick(&mut engine, at).await;
        let b = tick(&mut loaded, at).await;
        assert_eq!(a["journeys"], b["journeys"], "at {at}");
        assert_eq!(
            state(&mut loaded).await,
            state(&mut engine).await,
            "at {at}"
        );
    }
    let completed: i64 = sqlx::query_scalar("select count(*) from runs where status = 'completed'")
        .fetch_one(&mut loaded)
        .await
        .expect("count");
    assert_eq!(completed, 2);
}
