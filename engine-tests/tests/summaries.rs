//! The per-contact event summaries (`event_summaries`, migration 11) stay exactly equal to
//! the aggregate over `events` they stand for —
//! `select user_key, event, count(*), min(occurred_at), max(occurred_at) from events
//! group by 1, 2` without the engine's own `bucket:`/`hogsend:` events — through every write
//! path: INSERT and COPY, identity merges (which re-key events), updates of an event's
//! key, name or instant, deletes of events and of contacts, TRUNCATE, a load with the
//! triggers off followed by `rebuild_event_summaries()`, and concurrent writers.
//!
//! The matchers' use of the summaries is checked by the bucket property tests
//! (`differential.rs`, `policies.rs`): every answer they give is compared with the reference
//! evaluator.

mod support;

use hogsend_compiler::ir::Window;
use proptest::prelude::*;
use sqlx::PgConnection;
use support::*;

/// Rows where the summaries and the events' aggregate differ (both directions), as text.
async fn mismatches(conn: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "with agg as (
           select user_key, event, count(*) as n, min(occurred_at) as first_at,
                  max(occurred_at) as last_at
             from events
            where event not like 'bucket:%' and event not like 'hogsend:%'
            group by user_key, event)
         select coalesce(a.user_key, s.user_key) || ' ' || coalesce(a.event, s.event)
                || ': events ' || coalesce(a.n::text || ' ' || a.first_at || ' ' || a.last_at, '-')
                || ', summary ' || coalesce(s.n::text || ' ' || s.first_at || ' ' || s.last_at, '-')
           from agg a
           full join event_summaries s on s.user_key = a.user_key and s.event = a.event
          where a.user_key is null or s.user_key is null
             or (a.n, a.first_at, a.last_at) is distinct from (s.n, s.first_at, s.last_at)
          order by 1",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("compare summaries")
}

async fn summary_rows(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("select count(*) from event_summaries")
        .fetch_one(&mut *conn)
        .await
        .expect("count summaries")
}

const KEYS: &[&str] = &["u0", "u1", "u2", "a0", "a1", "a2"];
const NAMES: &[&str] = &["e0", "e1", "e2", "bucket:entered:b"];

#[derive(Clone, Debug)]
enum Op {
    /// Events `(key, name, hour)`, by INSERT or COPY.
    Insert {
        copy: bool,
        rows: Vec<(usize, usize, i64)>,
    },
    /// `merge_contacts(user, anon)`: the anonymous key's events move to the user key.
    Merge {
        user: usize,
        anon: usize,
    },
    /// `update events set user_key = to where user_key = from`.
    Rekey {
        from: usize,
        to: usize,
    },
    /// Shift the instant of the events whose id is `rest` modulo `modulo`.
    Move {
        modulo: i64,
        rest: i64,
        hours: i64,
    },
    /// Rename the events whose id is `rest` modulo `modulo`.
    Rename {
        modulo: i64,
        rest: i64,
        name: usize,
    },
    /// Change only the properties of every other event (no summary changes).
    Props,
    /// Delete the events whose id is `rest` modulo `modulo`.
    Delete {
        modulo: i64,
        rest: i64,
    },
    /// Delete every event of a key.
    DeleteKey {
        key: usize,
    },
    /// `delete_contact(key)`: a soft delete, the events stay.
    DeleteContact {
        key: usize,
    },
    Truncate,
    /// Events stored with the triggers off, then `rebuild_event_summaries()`.
    BulkLoad {
        rows: Vec<(usize, usize, i64)>,
    },
}

fn rows() -> impl Strategy<Value = Vec<(usize, usize, i64)>> {
    prop::collection::vec((0..KEYS.len(), 0..NAMES.len(), -48i64..48), 1..8)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), rows()).prop_map(|(copy, rows)| Op::Insert { copy, rows }),
        2 => (0..3usize, 3..6usize).prop_map(|(user, anon)| Op::Merge { user, anon }),
        1 => (0..KEYS.len(), 0..KEYS.len()).prop_map(|(from, to)| Op::Rekey { from, to }),
        2 => (1..4i64, 0..3i64, -30i64..30)
            .prop_map(|(modulo, rest, hours)| Op::Move { modulo, rest: rest % modulo, hours }),
        1 => (1..4i64, 0..3i64, 0..NAMES.len())
            .prop_map(|(modulo, rest, name)| Op::Rename { modulo, rest: rest % modulo, name }),
        1 => Just(Op::Props),
        2 => (1..4i64, 0..3i64).prop_map(|(modulo, rest)| Op::Delete { modulo, rest: rest % modulo }),
        1 => (0..KEYS.len()).prop_map(|key| Op::DeleteKey { key }),
        1 => (0..KEYS.len()).prop_map(|key| Op::DeleteContact { key }),
        1 => Just(Op::Truncate),
        1 => rows().prop_map(|rows| Op::BulkLoad { rows }),
    ]
}

fn events_of(rows: &[(usize, usize, i64)]) -> Vec<Event> {
    rows.iter()
        .map(|&(k, n, h)| Event {
            key: KEYS[k].to_owned(),
            name: NAMES[n].to_owned(),
            props: "{}".to_owned(),
            at: 10 * DAY + h * HOUR,
        })
        .collect()
}

async fn apply(conn: &mut PgConnection, op: &Op) {
    match op {
        Op::Insert { copy: false, rows } => insert_events(conn, "hogsend", &events_of(rows)).await,
        Op::Insert { copy: true, rows } => copy_events(conn, "hogsend", &events_of(rows)).await,
        Op::Merge { user, anon } => {
            sqlx::query("select merge_contacts($1, $2)")
                .bind(KEYS[*user])
                .bind(KEYS[*anon])
                .execute(&mut *conn)
                .await
                .expect("merge");
        }
        Op::Rekey { from, to } => {
            sqlx::query("update events set user_key = $2 where user_key = $1")
                .bind(KEYS[*from])
                .bind(KEYS[*to])
                .execute(&mut *conn)
                .await
                .expect("re-key");
        }
        Op::Move {
            modulo,
            rest,
            hours,
        } => {
            sqlx::query(
                "update events set occurred_at = occurred_at + $3 * interval '1 hour'
                  where id % $1 = $2",
            )
            .bind(modulo)
            .bind(rest)
            .bind(*hours as f64)
            .execute(&mut *conn)
            .await
            .expect("move");
        }
        Op::Rename { modulo, rest, name } => {
            sqlx::query("update events set event = $3 where id % $1 = $2")
                .bind(modulo)
                .bind(rest)
                .bind(NAMES[*name])
                .execute(&mut *conn)
                .await
                .expect("rename");
        }
        Op::Props => {
            exec(
                conn,
                "update events set properties = '{\"x\": 1}' where id % 2 = 0",
            )
            .await;
        }
        Op::Delete { modulo, rest } => {
            sqlx::query("delete from events where id % $1 = $2")
                .bind(modulo)
                .bind(rest)
                .execute(&mut *conn)
                .await
                .expect("delete");
        }
        Op::DeleteKey { key } => {
            sqlx::query("delete from events where user_key = $1")
                .bind(KEYS[*key])
                .execute(&mut *conn)
                .await
                .expect("delete key");
        }
        Op::DeleteContact { key } => {
            sqlx::query("select delete_contact($1)")
                .bind(KEYS[*key])
                .execute(&mut *conn)
                .await
                .expect("delete contact");
        }
        Op::Truncate => exec(conn, "truncate events").await,
        Op::BulkLoad { rows } => {
            exec(conn, "set session_replication_role = replica").await;
            insert_events(conn, "hogsend", &events_of(rows)).await;
            exec(conn, "set session_replication_role = origin").await;
            exec(conn, "select rebuild_event_summaries()").await;
        }
    }
}

async fn run_case(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut env = Env::new(vec![bucket("b", did("e0", Window::Ever))]).await;
    for (i, op) in ops.iter().enumerate() {
        apply(&mut env.conn, op).await;
        let wrong = mismatches(&mut env.conn).await;
        prop_assert!(wrong.is_empty(), "after op {i} {op:?}: {wrong:#?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn summaries_equal_the_event_aggregate_after_random_writes(
        ops in prop::collection::vec(op(), 1..25)
    ) {
        RT.block_on(run_case(&ops))?;
    }
}

/// Whether a statement failed only because of its concurrency — a deadlock Postgres broke, a
/// serialization failure, or two writers outside the identity locks creating or re-keying
/// the same contact at once — so the writer retries it, as the daemon does.
fn retryable(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    match d.code().as_deref() {
        Some("40P01" | "40001") => true,
        Some("23505") => d.constraint() == Some("contacts_user_key_key"),
        _ => false,
    }
}

/// One writer's round: `ops` transactions over shared keys, each retried until it commits.
async fn writer(mut conn: PgConnection, seed: u64, ops: usize) -> usize {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut retries = 0;
    for _ in 0..ops {
        let kind = next(10);
        let a = KEYS[next(KEYS.len() as u64) as usize];
        let b = KEYS[next(KEYS.len() as u64) as usize];
        let rows: Vec<(String, String, i64)> = (0..1 + next(6))
            .map(|_| {
                (
                    KEYS[next(KEYS.len() as u64) as usize].to_owned(),
                    NAMES[next(3) as usize].to_owned(),
                    next(96) as i64 - 48,
                )
            })
            .collect();
        let modulo = 2 + next(3) as i64;
        let rest = next(modulo as u64) as i64;
        loop {
            let result: Result<(), sqlx::Error> = async {
                let mut tx = sqlx::Connection::begin(&mut conn).await?;
                match kind {
                    0..=4 => {
                        // an ingest: its events (in no particular key order), and again
                        // in a second statement, as a request with a merge writes twice
                        for half in [&rows[..rows.len() / 2], &rows[rows.len() / 2..]] {
                            let keys: Vec<&str> = half.iter().map(|r| r.0.as_str()).collect();
                            let names: Vec<&str> = half.iter().map(|r| r.1.as_str()).collect();
                            let hours: Vec<f64> = half.iter().map(|r| r.2 as f64).collect();
                            sqlx::query(
                                "insert into events (user_key, event, occurred_at)
                                 select k, e, timestamptz '2026-03-11' + h * interval '1 hour'
                                   from unnest($1::text[], $2::text[], $3::float8[]) as u(k, e, h)",
                            )
                            .bind(keys)
                            .bind(names)
                            .bind(hours)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                    5 => {
                        sqlx::query("select merge_contacts($1, $2)")
                            .bind(a)
                            .bind(b)
                            .execute(&mut *tx)
                            .await?;
                    }
                    6 => {
                        sqlx::query("delete from events where id % $1 = $2")
                            .bind(modulo)
                            .bind(rest)
                            .execute(&mut *tx)
                            .await?;
                    }
                    7 => {
                        sqlx::query(
                            "update events set occurred_at = occurred_at + interval '5 hours'
                              where user_key = $1",
                        )
                        .bind(a)
                        .execute(&mut *tx)
                        .await?;
                    }
                    8 => {
                        sqlx::query("update events set user_key = $2 where user_key = $1")
                            .bind(a)
                            .bind(b)
                            .execute(&mut *tx)
                            .await?;
                    }
                    _ => {
                        sqlx::query("delete from events where user_key = $1 and event = 'e1'")
                            .bind(a)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await
            }
            .await;
            match result {
                Ok(()) => break,
                Err(e) if retryable(&e) => retries += 1,
                Err(e) => panic!("writer {seed}: {e}"),
            }
        }
    }
    retries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_of_the_same_keys_lose_no_count() {
    let mut env = Env::new(vec![bucket("b", did("e0", Window::Ever))]).await;
    for round in 0..3u64 {
        let mut tasks = Vec::new();
        for w in 0..6u64 {
            let conn = env.db.connect().await;
            tasks.push(tokio::spawn(writer(conn, round * 100 + w + 1, 40)));
        }
        for t in tasks {
            t.await.expect("writer task");
        }
        let wrong = mismatches(&mut env.conn).await;
        assert!(wrong.is_empty(), "round {round}: {wrong:#?}");
    }
    assert!(
        summary_rows(&mut env.conn).await > 0,
        "the writers left events to summarize"
    );
}

/// Upgrading a database that already holds events: migration 11 summarizes them.
#[tokio::test]
async fn the_migration_summarizes_the_events_already_stored() {
    let mut env = Env::new(vec![bucket("b", did("e0", Window::Ever))]).await;
    env.events(&[("k1", "e0", DAY), ("k1", "e0", 2 * DAY), ("k2", "e1", DAY)])
        .await;
    // Back to a database from before migration 11 (the table and its record gone), then
    // migrate again.
    env.sql(
        "drop table hs.event_summaries cascade;
         delete from hs.schema_migrations where version = 11;",
    )
    .await;
    env.deploy(vec![bucket("b", did("e0", Window::Ever))]).await;
    assert_eq!(summary_rows(&mut env.conn).await, 2);
    assert!(mismatches(&mut env.conn).await.is_empty());
}
