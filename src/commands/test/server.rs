//! Where `hogsend test` runs: the database of `--database-url` / `DATABASE_URL`, else the local
//! server's `postgres` database (127.0.0.1:5432), else a private Postgres started from the
//! binaries like `hogsend dev` does. Each test gets a fresh schema of its own there
//! (`hogsend_test_<pid>_<nonce>_t<n>`), dropped when the test ends. `hogsend.toml`'s
//! `[database] url` is never used: it names the deployment's database.
//!
//! **Decision:** schemas, not a scratch database per run: `drop database` costs about a second
//! (it waits for a checkpoint), more than a whole small test suite.

use anyhow::{Context, Result};
use hogsend_runtime::pgcluster::PrivateCluster;
use sqlx::{Connection, PgConnection};

/// Where one run's tests go: a server's database, and a prefix for the schemas of this run.
pub(super) struct Scratch {
    /// The database's URL.
    pub url: String,
    prefix: String,
}

impl Scratch {
    /// Finds the server as the module says and checks that it answers.
    pub(super) async fn create(database_url: Option<&str>) -> Result<Scratch> {
        let given = database_url
            .map(str::to_owned)
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()));
        let url = match given {
            Some(url) => url,
            None => local_or_private().await?,
        };
        let conn = PgConnection::connect(&url)
            .await
            .with_context(|| format!("could not connect to {}", crate::database::redact(&url)))?;
        conn.close().await?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Ok(Scratch {
            url,
            prefix: format!("hogsend_test_{}_{nanos}", std::process::id()),
        })
    }

    /// The schema of the test at `index`, unique to this run (`[a-z0-9_]` only).
    pub(super) fn schema_for(&self, index: usize) -> String {
        format!("{}_t{index}", self.prefix)
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
