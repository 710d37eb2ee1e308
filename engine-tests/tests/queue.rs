//! The change queue does not bloat: ticks drain it by switching slots and truncating the
//! one they left, so after bulk loads its tables stay empty (no dead tuples for later ticks
//! to scan, with autovacuum off), and nothing queued is lost — neither by a tick nor while
//! writers insert during ticks.

use hogsend_engine_tests::compile;
use hogsend_runtime::testkit::TestDatabase;
use hogsend_runtime::{db, migrate};
use sqlx::PgConnection;
use std::time::{Duration, Instant};

const PROJECT: &str = r#"
bucket opened {
  criteria did app_opened
}
"#;

async fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

const QUEUE_BYTES: &str = "select (pg_total_relation_size('hogsend.changed_keys_0')
                                  + pg_total_relation_size('hogsend.changed_keys_1'))::bigint";
const MEMBERS: &str =
    "select count(*) from hogsend.memberships where bucket_id = 'opened' and active";

#[tokio::test]
async fn drained_queue_leaves_no_dead_rows_and_loses_nothing() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.connect().await;
    migrate::migrate(
        &mut conn,
        &hogsend_schema::SchemaName::default(),
        &compile(PROJECT),
    )
    .await
    .expect("migrate");
    db::tick(&mut conn, "hogsend", None).await.expect("tick");
    sqlx::raw_sql(
        "alter table hogsend.changed_keys_0 set (autovacuum_enabled = false);
         alter table hogsend.changed_keys_1 set (autovacuum_enabled = false);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let empty = count(&mut conn, QUEUE_BYTES).await;

    // Bulk loads by SQL, a tick after each: the queue's tables are back to their empty size
    // (a delete-drained table would keep every drained row as a dead tuple).
    for round in 1..=3i64 {
        sqlx::query(
            "insert into hogsend.events (user_key, event)
             select 'r' || $1 || 'k' || g, 'app_opened' from generate_series(1, 10000) g",
        )
        .bind(round)
        .execute(&mut conn)
        .await
        .unwrap();
        assert!(
            count(&mut conn, QUEUE_BYTES).await > empty + 500_000,
            "the load queued"
        );
        db::tick(&mut conn, "hogsend", None).await.expect("tick");
        assert_eq!(count(&mut conn, QUEUE_BYTES).await, empty, "round {round}");
        assert_eq!(
            count(&mut conn, MEMBERS).await,
            round * 10_000,
            "round {round}"
        );
    }
    let dead = count(
        &mut conn,
        "select coalesce(sum(n_dead_tup), 0)::bigint from pg_stat_user_tables
          where schemaname = 'hogsend' and relname like 'changed_keys%'",
    )
    .await;
    assert_eq!(dead, 0, "dead tuples in the queue");

    // Writers inserting while ticks switch and drain: every key is evaluated in the end.
    let stop = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut c = tdb.connect().await;
        writers.push(tokio::spawn(async move {
            let mut n = 0i64;
            while Instant::now() < stop {
                sqlx::query(
                    "insert into hogsend.events (user_key, event) values ($1, 'app_opened')",
                )
                .bind(format!("w{w}n{n}"))
                .execute(&mut c)
                .await
                .unwrap();
                n += 1;
            }
            n
        }));
    }
    let mut ticker = tdb.connect().await;
    while Instant::now() < stop {
        db::tick(&mut ticker, "hogsend", None).await.expect("tick");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    // Two ticks: one drains each slot.
    db::tick(&mut conn, "hogsend", None).await.expect("tick");
    db::tick(&mut conn, "hogsend", None).await.expect("tick");
    assert!(written > 0);
    assert_eq!(count(&mut conn, MEMBERS).await, 3 * 10_000 + written);
}

/// The tables with planner statistics (rows in `pg_stats`) among `tables`.
async fn with_statistics(conn: &mut PgConnection, tables: &[&str]) -> Vec<String> {
    sqlx::query_scalar(
        "select t from unnest($1::text[]) t
          where exists (select 1 from pg_stats s where s.schemaname = 'hogsend' and s.tablename = t)
          order by t",
    )
    .bind(tables)
    .fetch_all(conn)
    .await
    .expect("pg_stats")
}

/// The tables a tick summary says it analyzed.
fn analyzed(summary: &serde_json::Value) -> Vec<String> {
    summary["analyzed"]["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("no analyzed tables in {summary}"))
        .iter()
        .map(|t| t.as_str().expect("a table name").to_owned())
        .collect()
}

#[tokio::test]
async fn ticks_analyze_what_a_bulk_load_and_a_backfill_wrote() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.connect().await;
    migrate::migrate(
        &mut conn,
        &hogsend_schema::SchemaName::default(),
        &compile(PROJECT),
    )
    .await
    .expect("migrate");
    sqlx::raw_sql(
        "do $$ declare t text; begin
           for t in select c.relname from pg_class c
                     where c.relnamespace = 'hogsend'::regnamespace and c.relkind = 'r' loop
             execute format('alter table hogsend.%I set (autovacuum_enabled = false)', t);
           end loop;
         end $$;",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    // A bulk load by SQL, no ANALYZE: 20,000 contacts (created by the events' capture
    // trigger) with 5 events each.
    sqlx::query(
        "insert into hogsend.events (user_key, event, occurred_at)
         select 'k' || (g % 20000), 'app_opened', now() - g * interval '1 second'
           from generate_series(1, 100000) g",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    const STATE: [&str; 4] = ["contacts", "events", "memberships", "transitions"];
    assert!(with_statistics(&mut conn, &STATE).await.is_empty());

    // The backfill tick analyzes the loaded tables before its buckets run, and the state it
    // wrote (20,000 memberships and transitions) before it commits.
    let first = db::tick(&mut conn, "hogsend", None).await.expect("tick");
    assert_eq!(first["passes"]["backfill"]["joins"], 20_000);
    assert_eq!(analyzed(&first), STATE);
    assert_eq!(with_statistics(&mut conn, &STATE).await, STATE);

    // The statistics hold what the tick wrote: the next tick finds nothing to analyze.
    let second = db::tick(&mut conn, "hogsend", None).await.expect("tick");
    assert_eq!(analyzed(&second), Vec::<String>::new());
    let members: i64 = sqlx::query_scalar(
        "select reltuples::bigint from pg_class where oid = 'hogsend.memberships'::regclass",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        members, 20_000,
        "memberships' row count as the planner sees it"
    );

    // A later load that more than doubles `events` is analyzed again by the next tick.
    sqlx::query(
        "insert into hogsend.events (user_key, event, occurred_at)
         select 'k' || (g % 20000), 'search', now() - g * interval '1 second'
           from generate_series(1, 150000) g",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let third = db::tick(&mut conn, "hogsend", None).await.expect("tick");
    assert!(
        analyzed(&third).contains(&"events".to_owned()),
        "{}",
        third["analyzed"]
    );
}
