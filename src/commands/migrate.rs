//! `hogsend migrate [DIR]`: apply the base schema and the compiled project in one
//! transaction. Idempotent; refuses a database whose base schema is newer than this build.

use std::process::ExitCode;

use anyhow::Result;
use hogsend_compiler::diagnostics::JSON_FORMAT_VERSION;
use serde_json::json;

use crate::database::{self, ProjectDatabase};
use crate::output::{Format, Output};

/// Arguments of `hogsend migrate`: the project directory and its database.
pub(crate) use crate::database::ProjectArgs as Args;

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let Some(ProjectDatabase { schema, url, files }) = database::compile_for_database(args, out)?
    else {
        return Ok(ExitCode::from(1));
    };
    let report = database::runtime()?.block_on(async {
        let mut conn = database::connect(&url, &schema).await?;
        Ok::<_, anyhow::Error>(hogsend_runtime::migrate::migrate(&mut conn, &schema, &files).await)
    })?;
    let report = match report {
        Ok(report) => report,
        Err(err) => return Ok(out.fail(&err)),
    };
    match out.format {
        Format::Json => {
            let doc = json!({
                "format_version": JSON_FORMAT_VERSION,
                "schema": schema,
                "report": report,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => {
            if report.base_from != report.base_to {
                eprintln!(
                    "base schema `{schema}`: version {} → {}",
                    report.base_from, report.base_to
                );
            }
            for id in &report.added {
                eprintln!("  + {id} (new: backfilled by the next tick)");
            }
            for id in &report.changed {
                eprintln!("  ~ {id} (changed)");
            }
            for id in &report.removed {
                eprintln!("  - {id} (removed: memberships ended)");
            }
            for c in &report.held_campaigns {
                eprintln!(
                    "warning: campaign `{}`: send_at {} is in the past; it is not sent \
                     automatically (start it with POST /v1/campaigns/{}/start)",
                    c.id, c.send_at, c.id
                );
            }
            eprintln!(
                "migrated `{schema}` on {}: {} added, {} changed, {} removed",
                database::redact(&url),
                report.added.len(),
                report.changed.len(),
                report.removed.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
