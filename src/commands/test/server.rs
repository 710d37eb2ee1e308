//! Where `hogsend test` runs: a scratch database, created for the run on the server of
//! `--database-url` / `DATABASE_URL`, else the local server (127.0.0.1:5432), else a private
//! Postgres started from the binaries like `hogsend dev` does; dropped at the end. Each test
//! gets its own schema in it. `hogsend.toml`'s `[database] url` is never used: it names the
//! deployment's database.

use anyhow::{Context, Result};
use hogsend_runtime::db::with_database;
use hogsend_runtime::pgcluster::PrivateCluster;
use sqlx::{Connection, Executor, PgConnection};

/// The scratch database of one run.
pub struct Scratch {
    /// Its URL.
    pub url: String,
    /// The server's admin URL (to drop it), or `None` when the tests run in the given
    /// database itself (the role may not create databases): then each test's schema is
    /// dropped instead.
    admin: Option<String>,
    name: String,
}

impl Scratch {
    /// Creates the scratch database on the server chosen as the module says.
    pub async fn create(database_url: Option<&str>) -> Result<Scratch> {
        let given = database_url
            .map(str::to_owned)
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()));
        let server = match given {
            Some(url) => url,
            None => local_or_private().await?,
        };
        let name = format!(
            "hogsend_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let mut conn = PgConnection::connect(&server)
            .await
            .with_context(|| format!("could not connect to {}", crate::database::redact(&server)))?;
        // `name` is made of [a-z0-9_] only.
        match conn.execute(format!("create database {name}").as_str()).await {
            Ok(_) => Ok(Scratch {
                url: with_database(&server, &name),
                admin: Some(server),
                name,
            }),
            // No CREATEDB: run in the given database, one schema per test.
            Err(_) => Ok(Scratch {
                url: server,
                admin: None,
                name,
            }),
        }
    }

    /// A schema name for the test at `index`, unique to this run.
    pub fn schema_for(&self, index: usize) -> String {
        format!("{}_t{index}", self.name)
    }

    /// True when each test's schema must be dropped (no scratch database to drop).
    pub fn drops_schemas(&self) -> bool {
        self.admin.is_none()
    }

    /// Drops the scratch database (closing its connections).
    pub async fn drop(self) -> Result<()> {
        if let Some(admin) = &self.admin {
            let mut conn = PgConnection::connect(admin).await?;
            conn.execute(format!("drop database if exists {} with (force)", self.name).as_str())
                .await?;
        }
        Ok(())
    }
}

/// The local server when it answers, else a private cluster in the temp dir (kept running
/// between runs, like the test harness's, so only the first run pays its start).
async fn local_or_private() -> Result<String> {
    let local = "postgres://postgres@127.0.0.1:5432/postgres".to_owned();
    let reachable = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        PgConnection::connect(&local),
    )
    .await
    .is_ok_and(|c| c.is_ok());
    if reachable {
        return Ok(local);
    }
    let dir = std::env::temp_dir().join("hogsend-test-pg");
    eprintln!("starting a private Postgres in {}", dir.display());
    let cluster = tokio::task::spawn_blocking(move || PrivateCluster::ensure(&dir))
        .await
        .context("the cluster thread failed")?
        .context("could not start a private Postgres")?;
    Ok(cluster.url("postgres"))
}
