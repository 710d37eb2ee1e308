//! The real binary: `hogsend serve` drains in-flight requests and exits 0 on SIGTERM,
//! `hogsend keys` mints, lists and revokes keys, and `hogsend dev` runs a project on a
//! private Postgres started from nothing but the binaries.

use hogsend_runtime::testkit::{request, TestDatabase};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PROJECT: &str = r#"
bucket signed_up {
  criteria did signed_up
}
"#;

fn hogsend() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hogsend"));
    c.env("NO_COLOR", "1").env("RUST_LOG", "info");
    c
}

/// Spawns `cmd` with stderr captured line by line; waits for a line containing `marker` and
/// returns the child, the line and the rest of stderr as it comes.
fn spawn_until(mut cmd: Command, marker: &str) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hogsend");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(marker) => return (child, line, rx),
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no `{marker}` from hogsend; stderr so far:\n{}",
                    seen.join("\n")
                );
            }
        }
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits for the child to exit (at most 30 s) and returns its exit code and remaining stderr.
fn wait_exit(mut child: Child, rx: &mpsc::Receiver<String>) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hogsend did not exit within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The reader thread ends at EOF: take every line it still has.
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        rest.push(line);
    }
    (status.code(), rest.join("\n"))
}

fn addr_after(line: &str, prefix: &str) -> std::net::SocketAddr {
    line.split(prefix)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

fn project_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("buckets.hog"), PROJECT).expect("write project");
    dir
}

#[tokio::test]
async fn serve_drains_on_sigterm_and_keys_work() {
    let tdb = TestDatabase::new().await;
    let dir = project_dir();
    let mut cmd = hogsend();
    cmd.arg("serve")
        .arg(dir.path())
        .args(["--database-url", tdb.url(), "--listen", "127.0.0.1:0"])
        .env("HOGSEND_TICK_EVERY", "1s");
    let (child, line, rx) = spawn_until(cmd, "listening on http://");
    let addr = addr_after(&line, "http://");
    // The port is bound before the migration; the API answers once it is done.
    let started = Instant::now();
    while request(addr, "GET", "/healthz", &[], None).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Keys through the CLI, against the database serve migrated.
    let out = hogsend()
        .args(["keys", "create", "--scope", "ingest", "--name", "ci"])
        .arg(dir.path())
        .args(["--database-url", tdb.url()])
        .output()
        .expect("keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(key.starts_with("hs_"), "{key}");
    let out = hogsend()
        .args(["--format", "json", "keys", "list"])
        .arg(dir.path())
        .args(["--database-url", tdb.url()])
        .output()
        .expect("keys list");
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed["keys"][0]["scope"], "ingest");
    assert_eq!(listed["keys"][0]["name"], "ci");
    assert_eq!(listed["keys"][0]["publishable"], false);

    // A publishable key is an ingest key; no other scope can be publishable.
    let out = hogsend()
        .args(["keys", "create", "--scope", "ingest", "--publishable"])
        .arg(dir.path())
        .args(["--database-url", tdb.url()])
        .output()
        .expect("keys create --publishable");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("created publishable ingest key"));
    let out = hogsend()
        .args(["keys", "create", "--scope", "read", "--publishable"])
        .arg(dir.path())
        .args(["--database-url", tdb.url()])
        .output()
        .expect("keys create --scope read --publishable");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only an `ingest` key can be publishable"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hogsend()
        .args(["--format", "json", "keys", "list"])
        .arg(dir.path())
        .args(["--database-url", tdb.url()])
        .output()
        .expect("keys list");
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed["keys"][1]["publishable"], true);
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(2));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&key),
        "the secret is never shown again"
    );

    // A large batch in flight when SIGTERM arrives is answered, then the process exits 0.
    let events: Vec<Value> = (0..1000)
        .map(|i| json!({"user_id": format!("t{i}"), "event": "signed_up"}))
        .collect();
    let body = json!({"events": events}).to_string();
    let headers = vec![
        ("Authorization".to_owned(), format!("Bearer {key}")),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    let warmup = request(addr, "GET", "/healthz", &[], None).await;
    assert_eq!(warmup.status, 200);
    let inflight = tokio::spawn(async move {
        request(addr, "POST", "/v1/events", &headers, Some(body.as_bytes())).await
    });
    tokio::time::sleep(Duration::from_millis(15)).await;
    sigterm(&child);
    let response = inflight.await.expect("request task");
    assert_eq!(response.status, 202, "{}", response.body);
    let (code, rest) = tokio::task::spawn_blocking(move || wait_exit(child, &rx))
        .await
        .expect("wait task");
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("stopped"), "{rest}");
    let mut conn = tdb.connect().await;
    let stored: i64 =
        sqlx::query_scalar("select count(*) from hogsend.events where event = 'signed_up'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(stored, 1000);

    // Revocation.
    let prefix = key.split('_').nth(1).unwrap();
    let out = hogsend()
        .args(["keys", "revoke", prefix])
        .arg(dir.path())
        .args(["--database-url", tdb.url()])
        .output()
        .expect("keys revoke");
    assert!(out.status.success());
    let out = hogsend()
        .args(["keys", "revoke", prefix])
        .arg(dir.path())
        .args(["--database-url", tdb.url()])
        .output()
        .expect("keys revoke");
    assert_eq!(out.status.code(), Some(1), "revoking twice fails");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from)
        .expect("read_dir")
        .map_while(Result::ok)
    {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy");
        }
    }
}

#[tokio::test]
async fn dev_runs_the_example_on_a_private_postgres() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The private Postgres runs as an unprivileged user when we are root: let it in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let project = tmp.path().join("saas");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/saas"),
        &project,
    );
    let mut cmd = hogsend();
    cmd.arg("dev")
        .arg(&project)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL");
    let (child, line, rx) = spawn_until(cmd, "  API       http://");
    let addr = addr_after(&line, "http://");
    let key = std::fs::read_to_string(project.join(".hogsend-dev/api-key"))
        .expect("the dev key is saved")
        .trim()
        .to_owned();
    let auth = vec![
        ("Authorization".to_owned(), format!("Bearer {key}")),
        ("Content-Type".to_owned(), "application/json".to_owned()),
    ];
    let body = json!({"events": [
        {"user_id": "dev-1", "event": "app_opened"},
        {"user_id": "dev-1", "event": "app_opened", "contact": {"plan": "trial"}}]})
    .to_string();
    let r = request(addr, "POST", "/v1/events", &auth, Some(body.as_bytes())).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = request(addr, "GET", "/v1/buckets", &auth, None).await;
    let ids: Vec<String> = r.json()["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_owned))
        .collect();
    assert!(ids.contains(&"went_dormant".to_owned()), "{ids:?}");
    sigterm(&child);
    let (code, rest) = tokio::task::spawn_blocking(move || wait_exit(child, &rx))
        .await
        .expect("wait task");
    assert_eq!(code, Some(0), "{rest}");
    assert!(rest.contains("stopping the private Postgres"), "{rest}");
    assert!(
        !project.join(".hogsend-dev/data/postmaster.pid").exists(),
        "the private Postgres is stopped"
    );
}

/// Reads from `stream` until the server closes it or `limit` passes; what it sent.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut buf)).await {
        Ok(_) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

async fn send(addr: std::net::SocketAddr, bytes: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes.as_bytes()).await.expect("write");
    stream
}

#[tokio::test]
async fn slow_clients_time_out_and_shutdown_is_bounded() {
    let tdb = TestDatabase::new().await;
    let dir = project_dir();
    let mut cmd = hogsend();
    cmd.arg("serve")
        .arg(dir.path())
        .args(["--database-url", tdb.url(), "--listen", "127.0.0.1:0"])
        .env("HOGSEND_TICK_EVERY", "1h")
        .env("HOGSEND_HEADER_TIMEOUT", "1s")
        .env("HOGSEND_BODY_TIMEOUT", "1s")
        .env("HOGSEND_REQUEST_TIMEOUT", "1m")
        .env("HOGSEND_SHUTDOWN_GRACE", "2s");
    let (child, line, rx) = spawn_until(cmd, "listening on http://");
    let addr = addr_after(&line, "http://");
    let started = Instant::now();
    while request(addr, "GET", "/healthz", &[], None).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never came up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut conn = tdb.connect().await;
    let (_, key) = hogsend_runtime::keys::create(
        &mut conn,
        "hogsend",
        hogsend_runtime::keys::Scope::Admin,
        Some("slow"),
    )
    .await
    .expect("key");

    // Half a request head, nothing at all, and a body that never arrives: the first two are
    // disconnected after the header timeout, the third is answered 408 after the body one.
    let mut half_head = send(addr, "POST /v1/events HTTP/1.1\r\nHost: x\r\n").await;
    let mut silent = send(addr, "").await;
    let mut half_body = send(
        addr,
        &format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user_id\":"
        ),
    )
    .await;
    let t0 = Instant::now();
    for stream in [&mut half_head, &mut silent] {
        let got = read_until_closed(stream, Duration::from_secs(10)).await;
        assert!(
            got.is_some(),
            "a slow client was not disconnected within 10 s"
        );
    }
    let answer = read_until_closed(&mut half_body, Duration::from_secs(10))
        .await
        .expect("a slow body was not cut off within 10 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());

    // A request stuck in the database (its contact row is locked by this test) when SIGTERM
    // comes: the daemon waits the 2 s grace period, closes it and exits 0, and the stuck
    // write is rolled back.
    let r = request(
        addr,
        "PUT",
        "/v1/contacts/stuck",
        &[
            ("Authorization".to_owned(), format!("Bearer {key}")),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ],
        Some(br#"{"properties": {"n": 1}}"#),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut blocker = tdb.connect().await;
    sqlx::query("begin").execute(&mut blocker).await.unwrap();
    sqlx::query("select 1 from hogsend.contacts where user_key = 'stuck' for update")
        .execute(&mut blocker)
        .await
        .unwrap();
    let body = r#"{"properties": {"n": 2}}"#;
    let mut stuck = send(
        addr,
        &format!(
            "PUT /v1/contacts/stuck HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // And an idle connection that would otherwise hold shutdown for its header timeout.
    let _idle = send(addr, "GET /healthz HTTP/1.1\r\n").await;
    let t0 = Instant::now();
    sigterm(&child);
    let (code, rest) = tokio::task::spawn_blocking(move || wait_exit(child, &rx))
        .await
        .expect("wait task");
    let took = t0.elapsed();
    assert_eq!(code, Some(0), "{rest}");
    assert!(
        took < Duration::from_secs(6),
        "shutdown took {took:?}\n{rest}"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "the grace period was not given: {took:?}"
    );
    assert!(rest.contains("grace period over"), "{rest}");
    let got = read_until_closed(&mut stuck, Duration::from_secs(5)).await;
    assert_eq!(
        got.as_deref(),
        Some(""),
        "the stuck request's connection is closed unanswered"
    );
    sqlx::query("rollback").execute(&mut blocker).await.unwrap();
    let n: Value = sqlx::query_scalar(
        "select properties -> 'n' from hogsend.contacts where user_key = 'stuck'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(n, json!(1), "the interrupted write did not commit");
}
