//! The real binary killed mid-batch: `hogsend serve` delivers through the `http` provider to
//! a Resend-compatible API in this process, which stalls its answers after some messages —
//! it has accepted them, the daemon has not learnt so. The daemon gets SIGKILL in that
//! window and is started again: every message ends `sent`, and because a message sent again
//! carries the same `Idempotency-Key`, the API (deduplicating by key, as Resend does)
//! delivers none of them twice and answers the repeats with the first id, which is what the
//! outbox records.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hogsend_runtime::fake_resend::FakeResend;
use hogsend_runtime::testkit::{request, TestDatabase};

const API_KEY: &str = "re_crash_test";
const MESSAGES: usize = 60;
const STALL_AFTER: usize = 25;

const RECEIPT: &str = "---
subject: Your receipt
category: transactional
---
Thanks {{ contact.first_name }}.
";

fn project(api: &FakeResend) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("templates/receipt.txt"), RECEIPT).unwrap();
    std::fs::write(
        dir.path().join("hogsend.toml"),
        format!(
            "[email]\nprovider = \"http\"\nhttp_url = \"{}\"\nfrom = \"Acme <hello@acme.test>\"\n\
             lease = \"4s\"\nbatch_size = 20\nconcurrency = 4\n",
            api.url()
        ),
    )
    .unwrap();
    dir
}

/// Starts `hogsend serve` and waits until its API answers.
async fn serve(dir: &std::path::Path, db: &TestDatabase) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hogsend"))
        .arg("serve")
        .arg(dir)
        .args(["--database-url", db.url(), "--listen", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .env("HOGSEND_TICK_EVERY", "1h")
        .env("HOGSEND_EMAIL_API_KEY", API_KEY)
        .env("HOGSEND_SECRET", "crash-test-secret")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hogsend");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                // Nobody listens any more: keep draining so the daemon never blocks.
                continue;
            }
        }
    });
    let line = tokio::task::spawn_blocking(move || loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.contains("listening on http://") => break line,
            Ok(_) => {}
            Err(e) => panic!("hogsend serve did not start: {e}"),
        }
    })
    .await
    .unwrap();
    let addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    let started = Instant::now();
    while request(addr, "GET", "/healthz", &[], None).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

#[tokio::test]
async fn a_daemon_killed_between_acceptance_and_record_delivers_each_message_once() {
    let api = FakeResend::start(API_KEY).await;
    api.stall_after(STALL_AFTER);
    let db = TestDatabase::new().await;
    let dir = project(&api);
    let mut first = serve(dir.path(), &db).await;
    let mut conn = db.connect().await;
    sqlx::raw_sql(&format!(
        "insert into hogsend.contacts (external_id, email, properties)
         select 'c' || i, 'c' || i || '@x.test', '{{\"first_name\": \"C\"}}'
           from generate_series(1, {MESSAGES}) i;
         insert into hogsend.messages (user_key, template, category, to_email)
         select 'c' || i, 'receipt', 'transactional', 'c' || i || '@x.test'
           from generate_series(1, {MESSAGES}) i"
    ))
    .execute(&mut conn)
    .await
    .unwrap();

    // Wait until the API holds an accepted message's answer, then kill the daemon there.
    let started = Instant::now();
    while api.stalled() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the daemon never reached the stall: {} deliveries",
            api.deliveries().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let accepted_unrecorded: Vec<i64> = {
        let keys: HashSet<String> = api
            .deliveries()
            .into_iter()
            .skip(STALL_AFTER)
            .map(|d| d.0)
            .collect();
        let mut ids: Vec<i64> = keys
            .iter()
            .map(|k| k.rsplit(':').next().unwrap().parse().unwrap())
            .collect();
        ids.sort_unstable();
        ids
    };
    let unrecorded: Vec<(i64, String)> =
        sqlx::query_as("select id, status from hogsend.messages where id = any($1) order by id")
            .bind(&accepted_unrecorded)
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(
        unrecorded.iter().all(|(_, s)| s == "sending"),
        "accepted by the API, not recorded by the killed daemon: {unrecorded:?}"
    );
    api.release();

    // A new daemon takes the messages over when their leases run out.
    let mut second = serve(dir.path(), &db).await;
    let started = Instant::now();
    let rows: Vec<(i64, String, Option<String>, i32)> = loop {
        let rows: Vec<(i64, String, Option<String>, i32)> = sqlx::query_as(
            "select id, status, provider_id, attempts from hogsend.messages order by id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        if rows.iter().all(|r| r.1 == "sent") {
            break rows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not all delivered after the restart: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    second.kill().expect("stop");
    let _ = second.wait();

    // One delivery per message; the killed window's messages were sent again with the same
    // key (so the API saw more requests than deliveries) and got the same id.
    let deliveries = api.deliveries();
    assert_eq!(deliveries.len(), MESSAGES, "no message delivered twice");
    let by_key: HashMap<String, String> = deliveries
        .iter()
        .map(|(key, id, _)| (key.clone(), id.clone()))
        .collect();
    assert_eq!(by_key.len(), MESSAGES);
    let requests = api.requests();
    let repeated = requests.len() - MESSAGES;
    assert!(
        repeated >= accepted_unrecorded.len(),
        "the accepted-unrecorded messages were sent again: {repeated} repeats for {accepted_unrecorded:?}"
    );
    let installation: String = sqlx::query_scalar("select id::text from hogsend.installation")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    for (id, _, provider_id, attempts) in &rows {
        let key = format!("hogsend:{installation}:{id}");
        assert_eq!(provider_id.as_ref(), by_key.get(&key), "message {id}");
        if accepted_unrecorded.contains(id) {
            assert_eq!(*attempts, 2, "message {id}: sent again after the crash");
        }
    }
}
