//! Journeys exactly once with the real binary: two `hogsend serve` processes share one
//! database (each ticking every second, each running its real-time pass and its delivery
//! worker, both delivering through SMTP to a real server), sign-ups arrive through both
//! daemons' `POST /v1/events`, and one daemon is SIGKILLed while they flow — in the middle
//! of whatever it was doing: a real-time pass, a tick, a delivery round — then started
//! again. The journey is `send welcome` → `wait 2s` → `send followup`, so every run crosses
//! a wait that the daemons' own clocks release.
//!
//! At the end: one run per contact (a second sign-up of the `entry once` journey is
//! skipped, a batch retried on the other daemon is deduplicated by message id), every run
//! `completed` with its three steps recorded once, exactly one message per (run, step), both
//! `sent`, the second at least the wait after the first, and the SMTP server got each
//! message — at most once more per kill, as docs/operations.md ("Email") allows for SMTP.

#[path = "../engine-tests/tests/support/smtp.rs"]
mod smtp;

mod daemon;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use daemon::{api_key, cli, try_request, until_sql, Daemon, Rng};
use hogsend_runtime::testkit::TestDatabase;
use serde_json::{json, Value};
use smtp::{header, Sink};

/// Contacts signing up: 2 messages each. A few thousand, as the two daemons share one
/// Python SMTP server that records a few hundred messages a second on the loaded 2-core
/// CI machine (debug build), which keeps the test well under a minute.
const CONTACTS: usize = 2_000;
/// Events per request.
const BATCH: usize = 100;
/// `[email] concurrency` of each daemon.
const CONCURRENCY: usize = 16;
/// `[email] batch_size` of each daemon: a round's claim, the most messages whose acceptance
/// a killed daemon can have left unrecorded (sends in flight plus outcomes not yet written).
const DELIVERY_BATCH: usize = 100;

const PROJECT: &str = r#"
list onboarding {
  name "Onboarding"
}

journey onboarding {
  trigger event signed_up
  entry   once

  send welcome
  wait 2s
  send followup
}
"#;

fn project(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    for (id, subject) in [("welcome", "Welcome"), ("followup", "How is it going?")] {
        std::fs::write(
            dir.path().join(format!("templates/{id}.txt")),
            format!("---\nsubject: {subject}\ncategory: onboarding\n---\nHi.\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("onboarding.hog"), PROJECT).unwrap();
    std::fs::write(
        dir.path().join("hogsend.toml"),
        format!(
            "[email]\nprovider = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
             from = \"Acme <hello@acme.test>\"\nlease = \"8s\"\nbatch_size = {DELIVERY_BATCH}\n\
             concurrency = {CONCURRENCY}\n"
        ),
    )
    .unwrap();
    dir
}

const ENV: &[(&str, &str)] = &[
    ("HOGSEND_TICK_EVERY", "1s"),
    ("HOGSEND_SECRET", "journey-crash-secret"),
    ("HOGSEND_RATE_LIMIT_PER_SECOND", "0"),
];

/// The batch of sign-ups of contacts `range`; `again` makes them second sign-ups (other
/// message ids, same contacts).
fn batch(range: std::ops::Range<usize>, again: bool) -> String {
    let events: Vec<Value> = range
        .map(|i| {
            let id = if again {
                format!("again-{i}")
            } else {
                format!("signup-{i}")
            };
            json!({"user_id": format!("u{i}"), "event": "signed_up", "message_id": id,
                   "email": format!("u{i}@x.test")})
        })
        .collect();
    json!({ "events": events }).to_string()
}

/// Posts `body` to the first daemon of `addrs` that answers 202; a request to a killed
/// daemon (no answer) goes to the next. Returns the answer's `stored` (which undercounts
/// when a killed daemon had stored the batch before dying: the retry finds it stored).
async fn post(addrs: &[SocketAddr], key: &str, body: &str) -> i64 {
    let auth = format!("Bearer {key}");
    for round in 0..100 {
        for addr in addrs {
            let headers = [
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ];
            match try_request(*addr, "POST", "/v1/events", &headers, Some(body)).await {
                Some((202, answer)) => {
                    return serde_json::from_str::<Value>(&answer).unwrap()["stored"]
                        .as_i64()
                        .unwrap()
                }
                Some((code, answer)) if code < 500 => panic!("{code}: {answer}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50 * round)).await;
    }
    panic!("no daemon took the batch");
}

/// A pass (a tick or a real-time pass) holds the pass lock in one transaction and writes
/// `runs` and `messages`. This takes a SHARE lock on `table`, which stops the next pass's
/// first write to it half-way through its transaction (the inbox rows already taken, runs
/// moved or created, messages not yet committed). If that pass is `daemon`'s, SIGKILLs it
/// there and returns true; else lets the pass go on and returns false.
async fn kill_in_pass(conn: &mut sqlx::PgConnection, daemon: &mut Daemon, table: &str) -> bool {
    sqlx::raw_sql(&format!("begin; lock table {table} in share mode"))
        .execute(&mut *conn)
        .await
        .unwrap();
    let blocked = format!(
        "select a.client_port from pg_stat_activity a join pg_locks l on l.pid = a.pid
          where not l.granted and l.relation = '{table}'::regclass
            and a.datname = current_database()
            and a.query ~ '^select (tick|apply_changes|apply_keys)\\('"
    );
    let mut ports: Vec<i32> = Vec::new();
    for _ in 0..250 {
        ports = sqlx::query_scalar(&blocked)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        if !ports.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mine = daemon.local_ports();
    let killed = ports.iter().any(|p| mine.contains(p));
    if killed {
        daemon.kill();
    }
    sqlx::raw_sql("commit").execute(&mut *conn).await.unwrap();
    killed
}

#[tokio::test]
async fn two_daemons_one_killed_mid_pass_send_each_journey_message_once() {
    let mut rng = Rng::from_env("journey_crash");
    let db = TestDatabase::new().await;
    let sink = Sink::start_headers_only();
    let dir = project(sink.port);
    cli(&["migrate"], dir.path(), db.url());
    let key = api_key(dir.path(), db.url(), "ingest");
    let mut a = Daemon::start(dir.path(), db.url(), ENV).await;
    let b = Daemon::start(dir.path(), db.url(), ENV).await;
    let mut conn = db.connect().await;

    // The first sign-ups, alternately through each daemon (the other one when it is dead),
    // while daemon `a` is killed after a random delay.
    let chunks: Vec<std::ops::Range<usize>> = (0..CONTACTS)
        .step_by(BATCH)
        .map(|s| s..(s + BATCH).min(CONTACTS))
        .collect();
    let kill_after = Duration::from_millis(rng.range(300, 2_500));
    let sender = {
        let (a_addr, b_addr, key, chunks) = (a.addr, b.addr, key.clone(), chunks.clone());
        tokio::spawn(async move {
            for (n, chunk) in chunks.into_iter().enumerate() {
                let order = if n % 2 == 0 {
                    [a_addr, b_addr]
                } else {
                    [b_addr, a_addr]
                };
                post(&order, &key, &batch(chunk, false)).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(kill_after).await;
    let table = ["hogsend.runs", "hogsend.messages"][usize::from(rng.range(0, 2) == 1)];
    // Passes run after every batch a daemon receives (both get half of them) and at every
    // tick, so `a` is caught within a few tries while the sign-ups flow.
    let started = std::time::Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "daemon `a` was never caught in a pass ({attempts} tries)"
        );
        if kill_in_pass(&mut conn, &mut a, table).await {
            eprintln!("journey_crash: `a` was in the pass at the {attempts}. try");
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.range(20, 200))).await;
    }
    let kills = 1usize;
    let at_kill = sink.count();
    sender.await.unwrap();

    // `a` again, on a new port; every contact's sign-up again through both (all duplicates)
    // and a second sign-up for one contact in five, which `entry once` skips.
    let a = Daemon::start(dir.path(), db.url(), ENV).await;
    for (n, chunk) in chunks.iter().enumerate() {
        let order = if n % 2 == 0 {
            [a.addr, b.addr]
        } else {
            [b.addr, a.addr]
        };
        assert_eq!(post(&order, &key, &batch(chunk.clone(), false)).await, 0);
        let again = chunk.clone().filter(|i| i % 5 == 0).count();
        let body = batch(chunk.clone(), true);
        let body: Value = serde_json::from_str(&body).unwrap();
        let events: Vec<&Value> = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["user_id"].as_str().unwrap()[1..]
                    .parse::<usize>()
                    .unwrap()
                    % 5
                    == 0
            })
            .collect();
        let body = json!({ "events": events }).to_string();
        let order = [order[1], order[0]];
        assert_eq!(
            post(&order, &key, &body).await,
            i64::try_from(again).unwrap()
        );
    }
    let stored: i64 =
        sqlx::query_scalar("select count(*) from hogsend.events where event = 'signed_up'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        stored,
        i64::try_from(CONTACTS + CONTACTS / 5).unwrap(),
        "every sign-up stored once"
    );

    // Both daemons finish every run and deliver every message.
    let done = until_sql(
        &mut conn,
        Duration::from_secs(120),
        &format!(
            "select (select count(*) from hogsend.runs where status = 'completed') = {CONTACTS}
                and (select count(*) from hogsend.messages where status = 'sent') = {}
                and not exists (select 1 from hogsend.journey_inbox)",
            2 * CONTACTS
        ),
    )
    .await;
    let state: Vec<(String, i64)> = sqlx::query_as(
        "select 'run ' || status, count(*) from hogsend.runs group by 1
         union all select 'message ' || status, count(*) from hogsend.messages group by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        done,
        "not finished after 120 s: {state:?}\na:\n{}\nb:\n{}",
        a.log(),
        b.log()
    );

    // One run per contact, all completed, each step once.
    let runs: Vec<(String, i64, String, i64)> = sqlx::query_as(
        "select r.user_key, count(*) over (partition by r.user_key), r.status,
                (select count(*) from hogsend.run_steps s
                  where s.user_key = r.user_key and s.run_id = r.id
                    and s.step_id in ('s1', 's2', 's3'))
           from hogsend.runs r",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(runs.len(), CONTACTS, "one run per contact");
    for (user, n, status, steps) in &runs {
        assert_eq!((*n, status.as_str(), *steps), (1, "completed", 3), "{user}");
    }
    let skipped: Option<i64> =
        sqlx::query_scalar("select sum(count)::bigint from hogsend.journey_skips")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        skipped,
        Some(i64::try_from(CONTACTS / 5).unwrap()),
        "the second sign-ups"
    );

    // Exactly one message per (run, step), the second after the wait.
    let messages: Vec<(i64, String, String, String, i32, bool)> = sqlx::query_as(
        "select m.id, m.user_key, m.step_id || ':' || m.template, m.status, m.attempts,
                m.created_at >= (select w.created_at + interval '2 seconds'
                                   from hogsend.messages w
                                  where w.run_id = m.run_id and w.step_id = 's1')
           from hogsend.messages m
          order by m.user_key, m.step_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(messages.len(), 2 * CONTACTS);
    let mut per_user: HashMap<&str, Vec<&str>> = HashMap::new();
    for (_, user, step, status, _, _) in &messages {
        assert_eq!(status, "sent", "{user} {step}");
        per_user.entry(user).or_default().push(step);
    }
    for (user, steps) in &per_user {
        assert_eq!(steps, &["s1:welcome", "s3:followup"], "{user}");
    }
    for (id, user, step, _, _, after_wait) in &messages {
        if step.starts_with("s3") {
            assert!(
                after_wait,
                "{user}'s followup {id} came before the wait ended"
            );
        }
    }

    // The SMTP server got every message, duplicates only within the crash bound.
    let mut copies: HashMap<String, Vec<String>> = HashMap::new();
    for m in sink.received() {
        let to = m["rcpt_tos"][0].as_str().unwrap().to_owned();
        copies
            .entry(header(&m, "Message-ID").expect("Message-ID").to_owned())
            .or_default()
            .push(to);
    }
    let mut extra = 0;
    for (id, user, step, _, attempts, _) in &messages {
        let received = copies
            .remove(&format!("<{id}.hogsend@acme.test>"))
            .unwrap_or_default();
        let n = received.len();
        assert!(n >= 1, "{user} {step}: message {id} never arrived");
        assert!(
            received.iter().all(|to| *to == format!("{user}@x.test")),
            "{user}: {received:?}"
        );
        assert!(
            n <= usize::try_from(*attempts).unwrap() && n <= 1 + kills,
            "{user} {step}: {n} copies in {attempts} attempts, {kills} kill(s)"
        );
        extra += n - 1;
    }
    assert!(copies.is_empty(), "messages nobody queued: {copies:?}");
    assert!(
        extra <= kills * DELIVERY_BATCH,
        "{extra} duplicates after {kills} kill(s)"
    );
    eprintln!(
        "journey_crash: {} messages, {extra} duplicate(s); `a` killed (tries from {kill_after:?}) \
         in a pass blocked on {table} ({at_kill} had arrived)",
        messages.len()
    );
}
