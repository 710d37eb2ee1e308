//! The base schema's lifecycle (ARCHITECTURE.md, "Schema lifecycle"): an upgrade installs
//! the binary's engine code over an older one and keeps the data; an edited (tampered)
//! migration and a database from a newer build (a downgrade) are refused, changing nothing.

use chrono::{DateTime, TimeZone, Utc};
use hogsend_engine_tests::compile;
use hogsend_runtime::testkit::TestDatabase;
use hogsend_runtime::{db, migrate, Error};
use hogsend_schema::{base, SchemaName};
use sqlx::PgConnection;
use std::collections::BTreeSet;

const PROJECT: &str = r#"
bucket signed_up {
  criteria did signed_up
}
"#;

const OLD_ENGINE: &str = include_str!("fixtures/old_engine.sql");

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).unwrap()
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn scalar(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn members(conn: &mut PgConnection) -> BTreeSet<String> {
    sqlx::query_scalar("select user_key from hogsend.bucket_members where bucket_id = 'signed_up'")
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The body Postgres runs for `function` (in schema `hogsend`).
async fn body(conn: &mut PgConnection, function: &str) -> String {
    sqlx::query_scalar("select prosrc from pg_proc where oid = $1::regproc")
        .bind(format!("hogsend.{function}"))
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// A database migrated with HEAD, one member (`a`), then the older engine installed.
async fn old_database(conn: &mut PgConnection, schema: &SchemaName) {
    migrate::migrate(conn, schema, &compile(PROJECT))
        .await
        .unwrap();
    exec(
        conn,
        "insert into hogsend.events (user_key, event, occurred_at)
         values ('a', 'signed_up', '2026-03-01T00:00:00Z')",
    )
    .await;
    db::tick(conn, schema, Some(at(1))).await.unwrap();
    assert_eq!(members(conn).await, BTreeSet::from(["a".to_owned()]));
    exec(conn, OLD_ENGINE).await;
}

#[tokio::test]
async fn an_upgrade_installs_the_binary_engine_and_keeps_the_data() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.connect().await;
    let schema = SchemaName::default();
    old_database(&mut conn, &schema).await;
    // The older engine is what runs now: a tick with a candidate fails in its `_apply`.
    exec(
        &mut conn,
        "insert into hogsend.events (user_key, event, occurred_at)
         values ('a', 'signed_up', '2026-03-01T01:30:00Z')",
    )
    .await;
    let stale = db::tick(&mut conn, &schema, Some(at(2))).await.unwrap_err();
    assert!(stale.to_string().contains("stale engine"), "{stale}");

    let report = migrate::migrate(&mut conn, &schema, &compile(PROJECT))
        .await
        .unwrap();
    let latest = base::latest_version();
    assert_eq!((report.base_from, report.base_to), (latest, latest));

    // HEAD's bodies are installed: `_apply` is exactly the engine file's.
    let pass = base::engine(&schema)
        .into_iter()
        .find(|f| f.name == "pass")
        .unwrap();
    let apply = body(&mut conn, "_apply").await;
    assert!(pass.sql.contains(&apply), "{apply}");
    assert!(!apply.contains("stale engine"));
    // The trigger calls HEAD's function again; the view has its column back.
    assert_eq!(
        scalar(
            &mut conn,
            "select count(*) from pg_trigger t join pg_proc p on p.oid = t.tgfoid
              where t.tgname = 'events_inserted' and p.proname = '_events_inserted'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &mut conn,
            "select count(*) from hogsend.bucket_members where entry_count = 1"
        )
        .await,
        1
    );

    // The data is kept, and the next tick is exact: `b`, an unknown key, gets a contact
    // (HEAD's trigger) and joins; `a` stays; the history has one join each.
    exec(
        &mut conn,
        "insert into hogsend.events (user_key, event, occurred_at)
         values ('b', 'signed_up', '2026-03-01T02:00:00Z'), ('c', 'visited', '2026-03-01T02:00:00Z')",
    )
    .await;
    db::tick(&mut conn, &schema, Some(at(3))).await.unwrap();
    assert_eq!(
        members(&mut conn).await,
        BTreeSet::from(["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(
        scalar(&mut conn, "select count(*) from hogsend.contacts").await,
        3
    );
    assert_eq!(
        scalar(
            &mut conn,
            "select count(*) from hogsend.events where event not like 'bucket:%'"
        )
        .await,
        4
    );
    // `a` joined silently (the first backfill); `b` by the tick, with its event.
    assert_eq!(
        scalar(
            &mut conn,
            "select count(*) from hogsend.events where event = 'bucket:entered:signed_up'
              and user_key = 'b'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &mut conn,
            "select count(*) from hogsend.transitions where kind = 'entered'"
        )
        .await,
        2
    );
    // Migrating again changes nothing and keeps the recorded migrations.
    migrate::migrate(&mut conn, &schema, &compile(PROJECT))
        .await
        .unwrap();
    assert_eq!(
        scalar(&mut conn, "select count(*) from hogsend.schema_migrations").await,
        i64::from(base::latest_version())
    );
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.connect().await;
    let schema = SchemaName::default();
    migrate::migrate(&mut conn, &schema, &compile(PROJECT))
        .await
        .unwrap();
    exec(
        &mut conn,
        "update hogsend.schema_migrations set checksum = 'deadbeef' where version = 1",
    )
    .await;
    let changed = compile("bucket other {\n  criteria did signed_up\n}\n");
    let err = migrate::migrate(&mut conn, &schema, &changed)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MigrationChecksum { version: 1, found, .. } if found == "deadbeef"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("migration 1 (base)") && message.contains("deadbeef"),
        "{message}"
    );
    // Nothing was applied: the deployed project is still the first one.
    assert_eq!(
        scalar(
            &mut conn,
            "select count(*) from hogsend.buckets where id = 'other'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.connect().await;
    let schema = SchemaName::default();
    old_database(&mut conn, &schema).await;
    let future = base::latest_version() + 1;
    exec(
        &mut conn,
        &format!(
            "insert into hogsend.schema_migrations (version, name, checksum, hogsend_version)
             values ({future}, 'future', 'x', '99.0.0')"
        ),
    )
    .await;
    let err = migrate::migrate(&mut conn, &schema, &compile(PROJECT))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NewerSchema { found, .. } if *found == future),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("newer than this hogsend knows"),
        "{err}"
    );
    // The refused migrate installed none of its (older) engine code.
    assert!(body(&mut conn, "_apply").await.contains("stale engine"));
}

#[tokio::test]
async fn a_pre_release_migrations_table_is_refused() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.connect().await;
    exec(
        &mut conn,
        "create schema hogsend;
         create table hogsend.schema_migrations (version integer primary key, name text not null,
           hogsend_version text not null, applied_at timestamptz not null default now());
         insert into hogsend.schema_migrations (version, name, hogsend_version)
           values (1, 'base', '0.1.0');",
    )
    .await;
    let err = migrate::migrate(&mut conn, &SchemaName::default(), &compile(PROJECT))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnversionedSchema(_)), "{err:?}");
}
