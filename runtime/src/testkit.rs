//! A fresh, throwaway database per test, on a real Postgres.
//!
//! The server is, in order: `HOGSEND_TEST_DATABASE_URL` or `DATABASE_URL` when set (it must
//! allow CREATE DATABASE); the local server at 127.0.0.1:5432 (user `postgres`); otherwise a
//! private cluster started from the `initdb`/`postgres` binaries under the system temp dir
//! (kept running for later test runs; stop it with `pg_ctl -D <tmp>/hogsend-test-pg/data stop`).
//! Each [`TestDatabase`] creates its own database and drops it when dropped, so tests run in
//! parallel without seeing each other.

use crate::pgcluster::PrivateCluster;
use sqlx::{Connection, Executor, PgConnection};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::OnceCell;

static ADMIN_URL: OnceCell<String> = OnceCell::const_new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

pub use crate::db::with_database;

async fn reachable(url: &str) -> bool {
    matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(3),
            PgConnection::connect(url)
        )
        .await,
        Ok(Ok(_))
    )
}

/// The URL of a server database we may create databases from.
pub async fn admin_url() -> String {
    ADMIN_URL
        .get_or_init(|| async {
            for var in ["HOGSEND_TEST_DATABASE_URL", "DATABASE_URL"] {
                if let Ok(url) = std::env::var(var) {
                    if !url.is_empty() {
                        return url;
                    }
                }
            }
            let local = "postgres://postgres@127.0.0.1:5432/postgres".to_owned();
            if std::env::var_os("HOGSEND_TEST_PRIVATE_PG").is_none() && reachable(&local).await {
                return local;
            }
            let dir = std::env::temp_dir().join("hogsend-test-pg");
            let cluster = tokio::task::spawn_blocking(move || PrivateCluster::ensure(&dir))
                .await
                .expect("cluster thread")
                .unwrap_or_else(|e| panic!("no Postgres for tests: {e}"));
            cluster.url("postgres")
        })
        .await
        .clone()
}

/// A database that exists for the lifetime of this value.
pub struct TestDatabase {
    url: String,
    name: String,
    admin: String,
}

impl TestDatabase {
    /// Creates a new, empty database.
    pub async fn new() -> TestDatabase {
        let admin = admin_url().await;
        let name = format!(
            "hogsend_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..8)
                .unwrap_or("0")
        );
        let mut conn = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
        conn.execute(format!("create database \"{name}\"").as_str())
            .await
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"));
        TestDatabase {
            url: with_database(&admin, &name),
            name,
            admin,
        }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new runtime connection to this test's database for the schema `hogsend` (its
    /// `search_path`, like the daemon's connections; see `db::connect_options`).
    pub async fn connect(&self) -> PgConnection {
        self.connect_to(&hogsend_schema::SchemaName::default())
            .await
    }

    /// A new runtime connection to this test's database for `schema`. Its application
    /// name is `hogsend-test`, so tests can tell the daemon's connections (`hogsend`) apart.
    pub async fn connect_to(&self, schema: &hogsend_schema::SchemaName) -> PgConnection {
        let options = crate::db::connect_options(&self.url, schema)
            .unwrap_or_else(|e| panic!("bad test database URL {}: {e}", self.url))
            .application_name("hogsend-test");
        PgConnection::connect_with(&options)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside (or outside) an async runtime: do the cleanup on a thread of its
        // own with its own small runtime.
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect(&admin).await {
                        let _ = conn
                            .execute(
                                format!("drop database if exists \"{name}\" with (force)").as_str(),
                            )
                            .await;
                    }
                });
            }
        });
        let _ = handle.join();
    }
}

/// A daemon launched in-process on 127.0.0.1:0 against a test database, with one key of
/// each scope.
pub struct TestDaemon {
    pub addr: std::net::SocketAddr,
    pub admin_key: String,
    pub ingest_key: String,
    pub read_key: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<crate::Result<()>>>,
}

impl TestDaemon {
    /// Migrates `files` into `db`, mints keys and launches. `tweak` adjusts the config
    /// (the scheduler is off by default: tests drive `tick` themselves).
    pub async fn start(
        db: &TestDatabase,
        files: Vec<hogsend_schema::GeneratedFile>,
        tweak: impl FnOnce(&mut crate::RuntimeConfig),
    ) -> TestDaemon {
        let mut conn = db.connect().await;
        crate::migrate::migrate(&mut conn, &hogsend_schema::SchemaName::default(), &files)
            .await
            .unwrap_or_else(|e| panic!("migrate: {e}"));
        // Settle (backfill) the new buckets, as the scheduler's first round would: the
        // real-time pass leaves unsettled buckets to the tick.
        crate::db::tick(&mut conn, "hogsend", None)
            .await
            .unwrap_or_else(|e| panic!("first tick: {e}"));
        let mut keys = Vec::new();
        for scope in [
            crate::keys::Scope::Admin,
            crate::keys::Scope::Ingest,
            crate::keys::Scope::Read,
        ] {
            let (_, key) = crate::keys::create(&mut conn, "hogsend", scope, Some("test"))
                .await
                .unwrap_or_else(|e| panic!("key: {e}"));
            keys.push(key);
        }
        let [admin_key, ingest_key, read_key]: [String; 3] =
            keys.try_into().unwrap_or_else(|_| panic!("three keys"));
        let (schema, api, schedule) = Default::default();
        let settings = crate::config::Settings {
            schema: &schema,
            api: &api,
            schedule: &schedule,
        };
        let mut config = crate::RuntimeConfig::from_settings(settings, db.url(), files, |_| None)
            .unwrap_or_else(|e| panic!("config: {e}"));
        config.scheduler = false;
        config.realtime_flush = std::time::Duration::from_millis(50);
        config.pool_size = 5;
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(crate::launch(config, listener, async move {
            let _ = stopped.await;
        }));
        let daemon = TestDaemon {
            addr,
            admin_key,
            ingest_key,
            read_key,
            stop: Some(stop),
            handle: Some(handle),
        };
        // Serving starts after launch's own migrate: wait for it.
        let started = std::time::Instant::now();
        while daemon.call("GET", "/healthz", None, None).await.status != 200 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "the test daemon did not come up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        daemon
    }

    /// A request with a bearer key.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Response {
        let mut headers = Vec::new();
        if let Some(key) = key {
            headers.push(("Authorization".to_owned(), format!("Bearer {key}")));
        }
        let body = body.map(|b| {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
            b.to_string().into_bytes()
        });
        request(self.addr, method, path, &headers, body.as_deref()).await
    }

    /// Stops the daemon (as on SIGTERM) and returns what `launch` returned.
    pub async fn stop(mut self) -> crate::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.handle.take() {
            Some(h) => h.await.unwrap_or_else(|e| panic!("daemon task: {e}")),
            None => Ok(()),
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 client (one request per connection), enough for tests.
pub async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Response {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    // The server may answer (413) and close before reading a large body: ignore write errors.
    let _ = stream.write_all(&raw).await;
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
