//! No join is lost to a pass that evaluates before the event causing it: whatever the
//! interleaving of commits, real-time passes (`apply_changes`) and ticks, a change is
//! drained only by a pass whose instant is at or after its events and which sees them
//! (`changed_keys.ready_at`); the others stay queued for the next pass. So a join is visible
//! after the first real-time pass given its key at an instant at or after the event.
//!
//! The clock is the tests' own (explicit instants), so the interleavings that lost joins —
//! an event committed while a tick drains the queue, a pass whose instant precedes an event
//! it drains — are built on purpose, then hammered at random by concurrent writers, passes
//! and ticks.

mod support;

use hogsend_engine_tests::compile;
use hogsend_runtime::testkit::TestDatabase;
use hogsend_runtime::{db, migrate};
use sqlx::{Connection, PgConnection};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{ts, SEC};

const PROJECT: &str = r#"
bucket opened {
  criteria did app_opened
}
"#;

async fn setup() -> TestDatabase {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.connect().await;
    migrate::migrate(
        &mut conn,
        &hogsend_schema::SchemaName::default(),
        &compile(PROJECT),
    )
    .await
    .expect("migrate");
    db::tick(&mut conn, "hogsend", Some(ts(0)))
        .await
        .expect("first tick");
    tdb
}

async fn scalar(conn: &mut PgConnection, sql: &str, key: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(key)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn is_member(conn: &mut PgConnection, key: &str) -> bool {
    scalar(
        conn,
        "select count(*) from memberships where bucket_id = 'opened' and user_key = $1 and active",
        key,
    )
    .await
        == 1
}

async fn queued(conn: &mut PgConnection, key: &str) -> i64 {
    scalar(
        conn,
        "select count(*) from changed_keys where user_key = $1",
        key,
    )
    .await
}

/// Waits until some other session of this database waits for a lock.
async fn until_lock_wait(conn: &mut PgConnection) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no session started waiting for a lock");
}

/// The interleaving that lost joins to ticks: an event (at 2 s) is inserted, the tick at
/// 1 s switches the queue's slot and waits for the writer, the writer commits, the tick
/// drains. The tick cannot see an event after its instant, so it must leave the change
/// queued; the next real-time pass (at 3 s) joins the contact.
#[tokio::test]
async fn a_change_committed_during_a_tick_is_left_to_the_next_pass() {
    let tdb = setup().await;
    let mut writer = tdb.connect().await;
    let mut probe = tdb.connect().await;

    let mut tx = writer.begin().await.unwrap();
    sqlx::query(
        "insert into events (user_key, event, occurred_at) values ('late', 'app_opened', $1)",
    )
    .bind(ts(2 * SEC))
    .execute(&mut *tx)
    .await
    .unwrap();
    let mut ticker = tdb.connect().await;
    let tick = tokio::spawn(async move {
        db::tick(&mut ticker, "hogsend", Some(ts(SEC)))
            .await
            .expect("tick")
    });
    until_lock_wait(&mut probe).await;
    tx.commit().await.unwrap();
    let summary = tick.await.unwrap();
    let now: chrono::DateTime<chrono::Utc> = summary["now"].as_str().unwrap().parse().unwrap();
    assert_eq!(now, ts(SEC));

    assert!(
        !is_member(&mut probe, "late").await,
        "joined before the event"
    );
    assert_eq!(
        queued(&mut probe, "late").await,
        1,
        "the tick left the change queued"
    );

    let pass = db::apply_changes(
        &mut probe,
        "hogsend",
        &["late".to_owned()],
        Some(ts(3 * SEC)),
    )
    .await
    .expect("pass");
    assert_eq!(pass["changes"], 1, "{pass}");
    assert!(pass["wait_ms"].as_f64().is_some(), "{pass}");
    assert!(is_member(&mut probe, "late").await, "lost to the tick");
    assert_eq!(queued(&mut probe, "late").await, 0);
    let at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "select occurred_at from transitions where user_key = 'late' and kind = 'entered'",
    )
    .fetch_one(&mut probe)
    .await
    .unwrap();
    assert_eq!(at, ts(3 * SEC), "joined by the pass, at its instant");
}

/// A real-time pass whose instant precedes an event it sees (it waited for a tick while the
/// event committed) leaves that event's change queued; the next pass joins the contact.
#[tokio::test]
async fn a_pass_before_an_event_leaves_its_change_queued() {
    let tdb = setup().await;
    let mut conn = tdb.connect().await;
    sqlx::query("insert into events (user_key, event, occurred_at) values ('k', 'app_opened', $1)")
        .bind(ts(2 * SEC))
        .execute(&mut conn)
        .await
        .unwrap();
    let keys = ["k".to_owned()];
    let early = db::apply_changes(&mut conn, "hogsend", &keys, Some(ts(SEC)))
        .await
        .unwrap();
    // It drains the new contact's entry (ready at once), not the event's.
    assert_eq!(early["changes"], 1, "{early}");
    assert!(!is_member(&mut conn, "k").await);
    assert_eq!(queued(&mut conn, "k").await, 1);
    let left: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select ready_at from changed_keys where user_key = 'k'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        left,
        Some(ts(2 * SEC)),
        "the event's entry, ready at the event"
    );
    let later = db::apply_changes(&mut conn, "hogsend", &keys, Some(ts(2 * SEC)))
        .await
        .unwrap();
    assert_eq!(later["changes"], 1, "{later}");
    assert!(is_member(&mut conn, "k").await);

    // A tick before a future event leaves it; the tick reaching it joins the contact,
    // without any rule reading the interval's events.
    sqlx::query("insert into events (user_key, event, occurred_at) values ('f', 'app_opened', $1)")
        .bind(ts(10 * SEC))
        .execute(&mut conn)
        .await
        .unwrap();
    db::tick(&mut conn, "hogsend", Some(ts(5 * SEC)))
        .await
        .unwrap();
    assert!(!is_member(&mut conn, "f").await);
    assert_eq!(queued(&mut conn, "f").await, 1);
    db::tick(&mut conn, "hogsend", Some(ts(10 * SEC)))
        .await
        .unwrap();
    assert!(is_member(&mut conn, "f").await);
    assert_eq!(queued(&mut conn, "f").await, 0);
}

/// What the concurrent scenario shares: the test clock (µs after `support::base`), the keys
/// committed and not yet taken by a pass, and whether the writers are done.
#[derive(Default)]
struct Shared {
    clock: AtomicI64,
    pending: Mutex<Vec<(String, i64)>>,
    done: AtomicBool,
}

/// Concurrent writers (distinct contacts, events at the current test instant), a real-time
/// pass loop (as the daemon's: the keys committed since its last call) and a tick loop,
/// each advancing the clock. After every pass, every key it was given whose event lies at or
/// before its instant is a member: no join waits for a tick. Run with several shapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ingest_passes_and_ticks_lose_no_join() {
    for (writers, batch, tick_pause_ms) in [(3, 1, 0), (4, 5, 2), (2, 20, 5)] {
        run_concurrent(writers, batch, tick_pause_ms).await;
    }
}

async fn run_concurrent(writers: usize, batch: usize, tick_pause_ms: u64) {
    const ROUNDS: usize = 60;
    let tdb = setup().await;
    let shared = Arc::new(Shared::default());
    shared.clock.store(SEC, Ordering::SeqCst);

    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut conn = tdb.connect().await;
        let shared = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let keys: Vec<String> = (0..batch).map(|i| format!("w{w}r{round}i{i}")).collect();
                let at = shared.clock.load(Ordering::SeqCst);
                sqlx::query(
                    "insert into events (user_key, event, occurred_at)
                     select k, 'app_opened', $2 from unnest($1::text[]) k",
                )
                .bind(&keys)
                .bind(ts(at))
                .execute(&mut conn)
                .await
                .expect("insert");
                shared
                    .pending
                    .lock()
                    .unwrap()
                    .extend(keys.into_iter().map(|k| (k, at)));
                if round % 3 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }

    let ticks = {
        let mut conn = tdb.connect().await;
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut n = 0u64;
            while !shared.done.load(Ordering::SeqCst) {
                let at = shared.clock.fetch_add(SEC / 10, Ordering::SeqCst) + SEC / 10;
                db::tick(&mut conn, "hogsend", Some(ts(at)))
                    .await
                    .expect("tick");
                n += 1;
                tokio::time::sleep(Duration::from_millis(tick_pause_ms)).await;
            }
            n
        })
    };

    let passes = {
        let mut conn = tdb.connect().await;
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut checked = 0usize;
            loop {
                let finished = shared.done.load(Ordering::SeqCst);
                let taken: Vec<(String, i64)> =
                    std::mem::take(&mut *shared.pending.lock().unwrap());
                if taken.is_empty() {
                    if finished {
                        return checked;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let at = shared.clock.fetch_add(SEC / 100, Ordering::SeqCst) + SEC / 100;
                let keys: Vec<String> = taken.iter().map(|(k, _)| k.clone()).collect();
                db::apply_changes(&mut conn, "hogsend", &keys, Some(ts(at)))
                    .await
                    .expect("pass");
                for (key, event_at) in &taken {
                    assert!(*event_at <= at, "the clock only moves forward");
                    assert!(
                        is_member(&mut conn, key).await,
                        "{key} (event at {event_at} µs) is not a member after the pass at {at} µs"
                    );
                }
                checked += taken.len();
            }
        })
    };

    for t in tasks {
        t.await.unwrap();
    }
    shared.done.store(true, Ordering::SeqCst);
    let checked = passes.await.unwrap();
    let n_ticks = ticks.await.unwrap();
    assert_eq!(
        checked,
        writers * batch * ROUNDS,
        "every key went through a pass"
    );
    assert!(n_ticks > 0, "ticks ran concurrently");

    // Nothing is left behind, and a final tick changes nothing.
    let mut conn = tdb.connect().await;
    let at = shared.clock.fetch_add(SEC, Ordering::SeqCst) + SEC;
    let last = db::tick(&mut conn, "hogsend", Some(ts(at))).await.unwrap();
    assert_eq!(last["passes"]["reconcile"]["joins"], 0, "{last}");
    let members: i64 = sqlx::query_scalar(
        "select count(*) from memberships where bucket_id = 'opened' and active",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(members as usize, writers * batch * ROUNDS);
}
