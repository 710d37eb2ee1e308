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

/// Replaces the database name (the path) of a Postgres URL.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

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

    /// A new connection to this test's database.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url)
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
