//! `hogsend preview TEMPLATE [DIR] [--contact KEY | --props JSON]`: renders a template as it
//! would be sent (subject, HTML, text) with the same renderer as the daemon
//! (`hogsend-mail`). With `--props` (or nothing) no database is needed; `--contact` reads
//! the contact's email and properties from the database. Links are placeholders
//! (`PUBLIC_URL/u/PREVIEW`): no secret is involved. See `docs/cli.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hogsend_compiler::diagnostics::JSON_FORMAT_VERSION;
use hogsend_mail::{render, RenderContext};
use serde_json::{json, Value};

use crate::commands::compile::compile_project;
use crate::database::{self, DatabaseArgs};
use crate::output::{Format, Output};

/// Arguments of `hogsend preview`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The template's id (`welcome` for templates/welcome.html)
    template: String,
    /// The project directory
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Render for this contact (its email and properties, read from the database)
    #[arg(long, value_name = "KEY", conflicts_with = "props")]
    contact: Option<String>,
    /// Render with these contact properties, a JSON object (`email` is the contact's email)
    #[arg(long, value_name = "JSON")]
    props: Option<String>,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let Some((_, compiled)) = compile_project(&args.dir, out)? else {
        return Ok(ExitCode::from(1));
    };
    let checked = &compiled.checked;
    let Some(program) = &checked.program else {
        return Ok(ExitCode::from(1));
    };
    let Some(template) = program.templates.iter().find(|t| t.id == args.template) else {
        let known: Vec<&str> = program.templates.iter().map(|t| t.id.as_str()).collect();
        return Ok(out.fail(&format!(
            "no template `{}` in the project (templates: {})",
            args.template,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let (key, email, properties) = match (&args.contact, &args.props) {
        (Some(key), _) => {
            let config = &checked.config;
            let url = args.db.resolve(config)?;
            let schema = config.database.schema.clone();
            let found = database::runtime()?.block_on(async {
                let mut conn = database::connect(&url, &schema).await?;
                // A runtime connection: its `search_path` is the schema.
                let row: Option<(Option<String>, Value)> = sqlx::query_as(
                    "select email, properties from contacts
                      where user_key = $1 and deleted_at is null",
                )
                .bind(key)
                .fetch_optional(&mut conn)
                .await
                .context("could not read the contact")?;
                Ok::<_, anyhow::Error>(row)
            })?;
            let Some((email, properties)) = found else {
                return Ok(out.fail(&format!("no contact has the key `{key}`")));
            };
            (key.clone(), email, properties)
        }
        (None, Some(props)) => {
            let value: Value = match serde_json::from_str(props) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) => return Ok(out.fail(&"--props must be a JSON object")),
                Err(e) => return Ok(out.fail(&format!("--props is not JSON: {e}"))),
            };
            let email = value
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_string);
            ("preview".to_string(), email, value)
        }
        (None, None) => ("preview".to_string(), None, json!({})),
    };
    let base = checked
        .config
        .email
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", checked.config.api.listen));
    let base = base.trim_end_matches('/');
    let transactional = template.deployed.category == hogsend_mail::TRANSACTIONAL;
    let ctx = RenderContext {
        properties,
        email,
        key,
        event: None,
        journey: None,
        campaign: None,
        unsubscribe_url: if transactional {
            String::new()
        } else {
            format!("{base}/u/PREVIEW")
        },
        preferences_url: format!("{base}/p/PREVIEW"),
    };
    let rendered = match render(&template.deployed, &ctx) {
        Ok(r) => r,
        Err(e) => return Ok(out.fail(&e)),
    };
    match out.format {
        Format::Json => {
            let doc = json!({
                "format_version": JSON_FORMAT_VERSION,
                "template": template.id,
                "category": template.deployed.category,
                "subject": rendered.subject,
                "html": rendered.html,
                "text": rendered.text,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => {
            println!("Subject: {}", rendered.subject);
            println!("Category: {}", template.deployed.category);
            if let Some(html) = &rendered.html {
                println!("\n--- HTML ---\n{}", html.trim_end());
            }
            println!("\n--- Text ---\n{}", rendered.text.trim_end());
        }
    }
    Ok(ExitCode::SUCCESS)
}
