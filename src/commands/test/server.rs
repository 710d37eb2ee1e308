//! Where `hogsend test` runs: the database of `--database-url` / `DATABASE_URL`, else the local
//! server's `postgres` database (127.0.0.1:5432), else a private Postgres started from the
//! binaries like `hogsend dev` does. Each worker gets a fresh schema of its own there
//! (`hogsend_testrun_<pid>_<nonce>_w<n>`), dropped when the run ends. `hogsend.toml`'s
//! `[database] url` is never used: it names the deployment's database.
//!
//! **Leftovers.** A run that is killed (SIGKILL, a CI timeout) cannot drop its schemas. So a
//! run holds a session-level advisory lock named after its prefix for as long as it lives,
//! on a connection of its own, and every run starts by dropping each `hogsend_testrun_…`
//! schema whose run's lock it can take: that run's connections are gone, so it is dead. The
//! lock, not the process id, decides, so a run on another machine sharing the server is never
//! taken for dead.
//!
//! **Decision:** schemas, not a scratch database per run: `drop database` costs about a second
//! (it waits for a checkpoint), more than a whole small test suite.

use anyhow::{Context, Result};
use hogsend_runtime::pgcluster::PrivateCluster;
use sqlx::{Connection, Executor, PgConnection};

/// The start of every schema a run creates.
const PREFIX: &str = "hogsend_testrun_";

/// The first key of the runs' advisory locks (the second is the hash of the run's prefix);
/// the two-key space does not overlap the engine's one-key locks.
const LOCK_CLASS: i32 = 0x686f_6773;

/// Where one run's tests go: a server's database, and a prefix for the schemas of this run.
pub(super) struct Scratch {
    /// The database's URL.
    pub url: String,
    prefix: String,
    /// Holds the run's advisory lock until the run ends (the process exits, or is killed).
    _guard: PgConnection,
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
        let mut guard = PgConnection::connect(&url)
            .await
            .with_context(|| format!("could not connect to {}", crate::database::redact(&url)))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let prefix = format!("{PREFIX}{}_{nanos}", std::process::id());
        sqlx::query("select pg_advisory_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(&prefix)
            .execute(&mut guard)
            .await
            .context("could not take the test run's lock")?;
        sweep(&mut guard, &prefix)
            .await
            .context("could not drop the schemas of a killed test run")?;
        Ok(Scratch {
            url,
            prefix,
            _guard: guard,
        })
    }

    /// The schema of worker `index`, unique to this run (`[a-z0-9_]` only).
    pub(super) fn schema_for(&self, index: usize) -> String {
        format!("{}_w{index}", self.prefix)
    }
}

/// The run prefix of a schema a run created (`hogsend_testrun_<pid>_<nonce>`), or `None` for
/// any other schema.
fn run_prefix(schema: &str) -> Option<&str> {
    let rest = schema.strip_prefix(PREFIX)?;
    let mut parts = rest.split('_');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let (pid, nonce) = (parts.next(), parts.next());
    let worker = parts.next().and_then(|w| w.strip_prefix('w'));
    if !(digits(pid) && digits(nonce) && digits(worker) && parts.next().is_none()) {
        return None;
    }
    let end = schema.len() - worker.map_or(0, str::len) - 2;
    Some(&schema[..end])
}

/// Drops the schemas of every dead run (one whose lock is free) but this one's.
async fn sweep(conn: &mut PgConnection, own: &str) -> Result<()> {
    let schemas: Vec<String> = sqlx::query_scalar(
        "select nspname::text from pg_namespace where starts_with(nspname::text, $1) order by 1",
    )
    .bind(PREFIX)
    .fetch_all(&mut *conn)
    .await?;
    let mut runs: Vec<(&str, Vec<&String>)> = Vec::new();
    for schema in &schemas {
        let Some(prefix) = run_prefix(schema) else {
            continue;
        };
        match runs.iter_mut().find(|(p, _)| *p == prefix) {
            Some((_, of_run)) => of_run.push(schema),
            None => runs.push((prefix, vec![schema])),
        }
    }
    for (prefix, of_run) in runs {
        if prefix == own {
            continue;
        }
        let dead: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(prefix)
            .fetch_one(&mut *conn)
            .await?;
        if !dead {
            continue;
        }
        for schema in of_run {
            // `run_prefix` accepted only [a-z0-9_] names.
            conn.execute(format!("drop schema if exists {schema} cascade").as_str())
                .await?;
        }
        sqlx::query("select pg_advisory_unlock($1, hashtext($2))")
            .bind(LOCK_CLASS)
            .bind(prefix)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::run_prefix;

    #[test]
    fn only_the_schemas_of_a_run_have_a_run_prefix() {
        assert_eq!(
            run_prefix("hogsend_testrun_41_907_w3"),
            Some("hogsend_testrun_41_907")
        );
        assert_eq!(
            run_prefix("hogsend_testrun_41_907_w12"),
            Some("hogsend_testrun_41_907")
        );
        for other in [
            "hogsend",
            "hogsend_testrun_",
            "hogsend_testrun_41_907",
            "hogsend_testrun_41_907_w",
            "hogsend_testrun_41_907_t3",
            "hogsend_testrun_41_907_w3_x",
            "hogsend_testrun_a1_907_w3",
            "hogsend_test_41_907_t3",
        ] {
            assert_eq!(run_prefix(other), None, "{other}");
        }
    }
}
