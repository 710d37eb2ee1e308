//! Where the database is: `--database-url`, else `DATABASE_URL`, else `hogsend.toml`'s
//! `[database] url`. Shared by every command that talks to Postgres.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use hogsend_compiler::config::Config;
use hogsend_compiler::emit::GeneratedFile;
use hogsend_schema::SchemaName;
use sqlx::PgConnection;

use crate::commands::compile::compile_project;
use crate::output::Output;

/// A project directory and its database: the arguments of `migrate` and `plan`, and part
/// of `serve`'s and `dev`'s.
#[derive(Debug, clap::Args)]
pub(crate) struct ProjectArgs {
    /// The project directory
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// A compiled project and the database it goes to: what `migrate` and `plan` start from.
pub(crate) struct ProjectDatabase {
    /// The configured schema (`[database] schema`).
    pub schema: SchemaName,
    /// The resolved database URL.
    pub url: String,
    /// The generated SQL.
    pub files: Vec<GeneratedFile>,
}

/// Compiles the project (printing its diagnostics) and resolves its database. `None` when
/// the project has errors.
pub(crate) fn compile_for_database(
    args: &ProjectArgs,
    out: Output,
) -> Result<Option<ProjectDatabase>> {
    let Some((_, compiled)) = compile_project(&args.dir, out)? else {
        return Ok(None);
    };
    let config = &compiled.checked.config;
    Ok(Some(ProjectDatabase {
        schema: config.database.schema.clone(),
        url: args.db.resolve(config)?,
        files: compiled.files.unwrap_or_default(),
    }))
}

/// The `--database-url` flag.
#[derive(Debug, clap::Args)]
pub(crate) struct DatabaseArgs {
    /// Postgres URL (default: $DATABASE_URL, then hogsend.toml [database] url)
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// The URL to use, in order of precedence.
    pub(crate) fn resolve(&self, config: &Config) -> Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if !url.is_empty() {
                return Ok(url);
            }
        }
        if let Some(url) = &config.database.url {
            return Ok(url.expose().to_owned());
        }
        bail!(
            "no database configured: pass --database-url, set DATABASE_URL, or set [database] url in hogsend.toml"
        )
    }
}

/// Connects to `url` for `schema` (the runtime's connection: its `search_path` is the
/// schema), with a readable error that never prints the password.
pub(crate) async fn connect(url: &str, schema: &SchemaName) -> Result<PgConnection> {
    hogsend_runtime::db::connect_one(url, schema)
        .await
        .with_context(|| format!("could not connect to {}", redact(url)))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub(crate) fn redact(url: &str) -> String {
    hogsend_schema::settings::RedactedUrl::new(url).redacted()
}

/// A Tokio runtime for a command's database work.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")
}
