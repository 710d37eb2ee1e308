//! `hogsend keys create|list|revoke`: API keys. A new key is printed once; only its hash is
//! stored. The project must have been migrated (`hogsend migrate` or `hogsend serve`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use hogsend_compiler::diagnostics::JSON_FORMAT_VERSION;
use hogsend_runtime::keys::{self, Scope};
use serde_json::json;

use crate::database::{self, DatabaseArgs};
use crate::output::{Format, Output};
use hogsend_compiler::project;

/// Arguments of `hogsend keys`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Mint a key and print it (once)
    Create {
        /// What the key may do: ingest (write events/contacts), read, or admin (everything)
        #[arg(long, value_parser = parse_scope)]
        scope: Scope,
        /// With --scope ingest: a key safe to ship in a browser or app (events only, rate
        /// limited per source IP too)
        #[arg(long)]
        publishable: bool,
        /// A name to recognise the key by
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List keys (prefix, scope and whether publishable, name, created, revoked)
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a key by id or prefix; it stops working at once
    Revoke {
        /// The key's id or prefix (from `hogsend keys list`)
        key: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, clap::Args)]
struct Common {
    /// The project directory (for hogsend.toml)
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    db: DatabaseArgs,
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    text.parse()
}

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let common = match &args.action {
        Action::Create { common, .. } | Action::List { common } | Action::Revoke { common, .. } => {
            common
        }
    };
    let set = project::load(&common.dir)?;
    let (config, diags) = hogsend_compiler::config::load(set.config.as_ref());
    if !diags.is_empty() {
        out.eprint_diagnostics(&diags, &set);
        return Ok(ExitCode::from(1));
    }
    let schema = config.database.schema.clone();
    let url = common.db.resolve(&config)?;
    database::runtime()?.block_on(async {
        let mut conn = database::connect(&url, &schema).await?;
        if hogsend_runtime::migrate::base_version(&mut conn).await? == 0 {
            bail!("the schema `{schema}` has no API keys table yet: run `hogsend migrate` (or `hogsend serve`) first");
        }
        match &args.action {
            Action::Create {
                scope,
                name,
                publishable,
                ..
            } => {
                let (info, key) = if *publishable {
                    if *scope != Scope::Ingest {
                        bail!("only an `ingest` key can be publishable: use `--scope ingest --publishable`");
                    }
                    keys::create_publishable(&mut conn, &schema, name.as_deref()).await?
                } else {
                    keys::create(&mut conn, &schema, *scope, name.as_deref()).await?
                };
                match out.format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({
                            "format_version": JSON_FORMAT_VERSION, "key": key, "info": info}))?
                    ),
                    Format::Human => {
                        println!("{key}");
                        eprintln!(
                            "created {}{} key {} (id {}); it is shown only this once",
                            if info.publishable { "publishable " } else { "" },
                            info.scope,
                            info.prefix,
                            info.id
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Action::List { .. } => {
                let list = keys::list(&mut conn, &schema).await?;
                match out.format {
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&json!({
                            "format_version": JSON_FORMAT_VERSION, "keys": list}))?
                    ),
                    Format::Human => {
                        println!("{:>4}  {:<12}  {:<18}  {:<20}  {:<25}  revoked", "id", "prefix", "scope", "name", "created");
                        for k in list {
                            println!(
                                "{:>4}  {:<12}  {:<18}  {:<20}  {:<25}  {}",
                                k.id,
                                k.prefix,
                                if k.publishable {
                                    format!("{} publishable", k.scope)
                                } else {
                                    k.scope.to_string()
                                },
                                k.name.unwrap_or_default(),
                                k.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                                k.revoked_at.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                            );
                        }
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Action::Revoke { key, .. } => {
                if keys::revoke(&mut conn, &schema, key).await? {
                    eprintln!("revoked {key}");
                    Ok(ExitCode::SUCCESS)
                } else {
                    eprintln!("{} no live key `{key}`", out.severity_prefix(true));
                    Ok(ExitCode::from(1))
                }
            }
        }
    })
}
