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
