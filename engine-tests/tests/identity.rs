//! Identity under concurrency: random interleavings of identify, alias, track (anonymous
//! and known), contact PUT and DELETE from 8 concurrent HTTP clients, then the identity
//! invariant (ARCHITECTURE.md, "Identity under concurrency") is checked in the database:
//! every event's key has its contact, no id another contact absorbed is a live contact of
//! its own, and each person is counted once per bucket. Nothing may answer 5xx.
//!
//! `PROPTEST_CASES=N` runs more rounds (default 3); each round uses fresh ids.

use hogsend_engine_tests::compile;
use hogsend_runtime::db;
use hogsend_runtime::testkit::{TestDaemon, TestDatabase};
use serde_json::json;
use sqlx::PgConnection;
use std::sync::Arc;
use std::time::Duration;

const PROJECT: &str = r#"
bucket opened {
  criteria did app_opened
}

bucket pro {
  criteria contact.plan == "pro"
}
"#;

/// A small deterministic generator (xorshift64*), so a failing round can be replayed by its
/// seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

async fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// One client's random calls; every answer must be below 500.
async fn client(d: Arc<TestDaemon>, round: usize, seed: u64, calls: usize) {
    let mut rng = Rng(seed | 1);
    let user = |i: usize| format!("r{round}u{i}");
    let anon = |i: usize| format!("r{round}a{i}");
    for _ in 0..calls {
        let (u, a) = (user(rng.below(3)), anon(rng.below(5)));
        let (method, path, key, body) = match rng.below(7) {
            0 => (
                "POST",
                "/v1/identify".to_owned(),
                &d.ingest_key,
                Some(json!({"userId": u, "anonymousId": a})),
            ),
            1 => (
                "POST",
                "/v1/alias".to_owned(),
                &d.ingest_key,
                Some(json!({"userId": u, "previousId": a})),
            ),
            2 | 3 => (
                "POST",
                "/v1/track".to_owned(),
                &d.ingest_key,
                Some(json!({"anonymousId": a, "event": "app_opened"})),
            ),
            4 => (
                "POST",
                "/v1/track".to_owned(),
                &d.ingest_key,
                Some(json!({"userId": u, "event": "app_opened"})),
            ),
            5 => {
                let key = if rng.below(2) == 0 { u } else { a };
                let plan = if rng.below(2) == 0 { "pro" } else { "free" };
                (
                    "PUT",
                    format!("/v1/contacts/{key}"),
                    &d.ingest_key,
                    Some(json!({"properties": {"plan": plan}})),
                )
            }
            _ => {
                let key = if rng.below(2) == 0 { u } else { a };
                ("DELETE", format!("/v1/contacts/{key}"), &d.admin_key, None)
            }
        };
        let r = d.call(method, &path, Some(key), body.as_ref()).await;
        assert!(
            r.status > 0 && r.status < 500,
            "{method} {path} {body:?} (seed {seed}): {} {}",
            r.status,
            r.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identity_holds_under_concurrent_identify_alias_track_put_delete() {
    let rounds: usize = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tdb = TestDatabase::new().await;
    let d = Arc::new(
        TestDaemon::start(&tdb, compile(PROJECT), |c| {
            c.pool_size = 12;
            c.realtime_flush = Duration::from_millis(20);
            // Eight clients fire as fast as they can: the per-key limit is not under test.
            c.rate_limit_per_second = 0;
        })
        .await,
    );
    let mut conn = tdb.connect().await;
    for round in 0..rounds {
        // A few anonymous sessions first, as a device would send before anyone logs in.
        for a in 0..5 {
            let r = d
                .call(
                    "POST",
                    "/v1/track",
                    Some(&d.ingest_key),
                    Some(&json!({"anonymousId": format!("r{round}a{a}"), "event": "app_opened"})),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
        let mut clients = Vec::new();
        for c in 0..8u64 {
            let seed = 0x9E37_79B9_7F4A_7C15u64
                .wrapping_mul(round as u64 * 8 + c + 1)
                .rotate_left(17);
            clients.push(tokio::spawn(client(d.clone(), round, seed, 30)));
        }
        for c in clients {
            c.await.expect("client task");
        }
    }
    // Let the real-time pass finish, then settle every bucket at one instant.
    tokio::time::sleep(Duration::from_millis(300)).await;
    db::tick(&mut conn, "hogsend", None).await.expect("tick");

    let orphans = count(
        &mut conn,
        "select count(*) from hogsend.events e
          where not exists (select 1 from hogsend.contacts c where c.user_key = e.user_key)",
    )
    .await;
    assert_eq!(orphans, 0, "events stored under a key with no contact");
    let split = count(
        &mut conn,
        "select count(*) from hogsend.contacts k
          where k.deleted_at is null
            and (exists (select 1 from hogsend.contacts c
                          where c.id <> k.id and c.deleted_at is null
                            and c.anonymous_id = k.user_key)
                 or exists (select 1 from hogsend.contact_aliases x
                             where x.alias = k.user_key and x.contact_id <> k.id))",
    )
    .await;
    if split != 0 {
        let rows: Vec<(String, Option<String>, Option<String>, bool)> = sqlx::query_as(
            "select user_key, external_id, anonymous_id, deleted_at is not null
               from hogsend.contacts order by user_key",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let aliases: Vec<(String, String)> = sqlx::query_as(
            "select x.alias, c.user_key from hogsend.contact_aliases x
               join hogsend.contacts c on c.id = x.contact_id order by 1",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        panic!(
            "a live contact for an id another contact absorbed ({split}):\n{rows:?}\n{aliases:?}"
        );
    }
    let ghost_members = count(
        &mut conn,
        "select count(*) from hogsend.memberships m
          where m.active
            and not exists (select 1 from hogsend.contacts c
                             where c.user_key = m.user_key and c.deleted_at is null)",
    )
    .await;
    assert_eq!(ghost_members, 0, "an active membership of no live contact");
    // Each person once: `opened` lists exactly the live contacts with an app_opened event.
    let wrong = count(
        &mut conn,
        "with want as (
           select c.user_key from hogsend.contacts c
            where c.deleted_at is null
              and exists (select 1 from hogsend.events e
                           where e.user_key = c.user_key and e.event = 'app_opened')),
         got as (select user_key from hogsend.memberships where bucket_id = 'opened' and active)
         select count(*) from ((table want except table got) union all (table got except table want)) d",
    )
    .await;
    assert_eq!(wrong, 0, "bucket `opened` does not list each person once");
    let members = count(
        &mut conn,
        "select count(*) from hogsend.memberships where bucket_id = 'opened' and active",
    )
    .await;
    assert!(members > 0, "the rounds made members");
}
