//! `hogsend dev [DIR]`: `serve` for a laptop. Without `--database-url` / `DATABASE_URL` it
//! runs a private Postgres from the binaries on PATH (or /usr/lib/postgresql/*/bin) in
//! `DIR/.hogsend-dev/` (as an unprivileged user when run as root) and stops it on exit.
//! `hogsend.toml`'s `[database] url` is deliberately not used: that is the deployment's
//! database, and `dev` never touches it unless asked to. Mail goes to the log. An admin API
//! key is minted on first start, kept in `DIR/.hogsend-dev/api-key` and printed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use hogsend_runtime::keys::{self, Scope};
use hogsend_runtime::pgcluster::PrivateCluster;
use sqlx::{Connection, Executor, PgConnection};

use crate::commands::serve::{init_logging, runtime_config, serve};
use crate::database;
use crate::output::Output;

/// Arguments of `hogsend dev`: those of `serve`.
pub(crate) use crate::commands::serve::Args;

const DEV_DATABASE: &str = "hogsend_dev";

/// Where the dev state lives: `DIR/.hogsend-dev/`, unless Postgres (run as an unprivileged
/// user when we are root) could not reach it there, as under `/root`; then a folder of the
/// system temp dir named after the project's path.
fn dev_dir(project: &Path) -> PathBuf {
    let preferred = project.join(".hogsend-dev");
    if PrivateCluster::can_host(&preferred) {
        return preferred;
    }
    let absolute = std::path::absolute(project).unwrap_or_else(|_| project.to_path_buf());
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in absolute.to_string_lossy().bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let fallback = std::env::temp_dir().join(format!("hogsend-dev-{hash:016x}"));
    eprintln!(
        "note: the Postgres user cannot reach {}; keeping the dev database in {}",
        preferred.display(),
        fallback.display()
    );
    fallback
}

/// Starts (or reuses) the private cluster and makes sure the dev database exists.
fn private_database(data: &Path) -> Result<(PrivateCluster, String)> {
    eprintln!("starting a private Postgres in {}", data.display());
    let cluster = PrivateCluster::ensure(data).context("could not start a private Postgres")?;
    let url = cluster.url(DEV_DATABASE);
    let admin = cluster.url("postgres");
    database::runtime()?.block_on(async {
        let mut conn = PgConnection::connect(&admin).await?;
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
                .bind(DEV_DATABASE)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            conn.execute(format!("create database {DEV_DATABASE}").as_str())
                .await?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok((cluster, url))
}

/// The dev key: the one saved in `<dev dir>/api-key` if still valid, else a new one.
fn dev_key(dev: &Path, config: &hogsend_runtime::RuntimeConfig) -> Result<String> {
    let path = dev.join("api-key");
    let schema = config.schema.clone();
    let url = config.database_url.expose().to_owned();
    let files = config.generated.clone();
    let saved = fs::read_to_string(&path).ok().map(|s| s.trim().to_owned());
    database::runtime()?.block_on(async {
        let mut conn = database::connect(&url, &schema).await?;
        hogsend_runtime::migrate::migrate(&mut conn, &schema, &files).await?;
        if let Some(saved) = saved {
            if keys::verify(&mut conn, &schema, &saved).await?.is_some() {
                return Ok(saved);
            }
        }
        let (_, key) = keys::create(&mut conn, &schema, Scope::Admin, Some("dev")).await?;
        fs::create_dir_all(dev)?;
        fs::write(&path, format!("{key}\n"))
            .with_context(|| format!("could not write {}", path.display()))?;
        Ok::<_, anyhow::Error>(key)
    })
}

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    init_logging();
    let explicit = args
        .project
        .db
        .database_url
        .clone()
        .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()));
    // Compile first: a project with errors should not start a database.
    let Some(mut config) = runtime_config(&args.project.dir, |_| Ok(String::new()), out)? else {
        return Ok(ExitCode::from(1));
    };
    let mut cluster = None;
    let dev = dev_dir(&args.project.dir);
    let url = match explicit {
        Some(url) => url,
        None => {
            let (c, url) = private_database(&dev)?;
            cluster = Some(c);
            url
        }
    };
    config.database_url = hogsend_schema::settings::RedactedUrl::new(url);
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    tracing::info!("mail provider forced to `log` in dev: nothing is sent");
    let key_file = dev.join("api-key");
    let result = dev_key(&dev, &config).and_then(|key| {
        let db = database::redact(config.database_url.expose());
        serve(config, |addr| {
            eprintln!(
                "\nhogsend dev is running\n  API       http://{addr}\n  API key   {key}   (admin; saved in {})\n  database  {db}\n\n  curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n       -d '{{\"user_id\": \"u1\", \"event\": \"app_opened\"}}' http://{addr}/v1/events\n  curl -H 'Authorization: Bearer {key}' http://{addr}/v1/buckets\n\nCtrl-C stops it (and the private Postgres).\n",
                key_file.display()
            );
        })
    });
    if let Some(cluster) = cluster {
        eprintln!("stopping the private Postgres");
        if let Err(e) = cluster.stop() {
            eprintln!("warning: could not stop the private Postgres: {e}");
        }
    }
    result
}
