//! `hogsend plan [DIR]`: what `migrate` would change in the database, without changing it:
//! buckets added, changed (a criteria change means a backfill) and removed, with how many
//! contacts match each new or changed bucket now.

use std::process::ExitCode;

use anyhow::Result;
use hogsend_compiler::diagnostics::JSON_FORMAT_VERSION;
use serde_json::json;

use crate::database::{self, ProjectDatabase};
use crate::output::{Format, Output};

/// Arguments of `hogsend plan`: the project directory and its database.
pub(crate) use crate::database::ProjectArgs as Args;

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let Some(ProjectDatabase { schema, url, files }) = database::compile_for_database(args, out)?
    else {
        return Ok(ExitCode::from(1));
    };
    let result = database::runtime()?.block_on(async {
        let mut conn = database::connect(&url, &schema).await?;
        Ok::<_, anyhow::Error>(hogsend_runtime::migrate::plan(&mut conn, &schema, &files).await)
    })?;
    let report = match result {
        Ok(report) => report,
        Err(err) => return Ok(out.fail(&err)),
    };
    match out.format {
        Format::Json => {
            let doc =
                json!({ "format_version": JSON_FORMAT_VERSION, "schema": schema, "plan": report });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => {
            let m = &report.migration;
            if m.base_from != m.base_to {
                println!("base schema: version {} → {}", m.base_from, m.base_to);
            }
            for b in &report.buckets {
                let verb = if m.added.contains(&b.id) {
                    "+ add   "
                } else {
                    "~ change"
                };
                println!(
                    "{verb} {}: backfill at the next tick; {} contacts match now, {} members today",
                    b.id, b.matching_now, b.members_now
                );
            }
            for id in &m.removed {
                println!("- remove {id}: its memberships end (reason `removed`, nothing fires)");
            }
            for j in &report.journeys {
                match j.change {
                    "add" => println!("+ add    journey {}", j.id),
                    "change" => println!(
                        "~ change journey {}: {} runs in flight stay at their steps, {} end (step_removed)",
                        j.id, j.runs_in_flight, j.runs_ended
                    ),
                    _ => println!(
                        "- remove journey {}: {} runs in flight end (step_removed)",
                        j.id, j.runs_ended
                    ),
                }
            }
            for c in &m.held_campaigns {
                println!(
                    "warning: campaign {}: send_at {} is in the past; it will not be sent \
                     automatically (start it with POST /v1/campaigns/{}/start)",
                    c.id, c.send_at, c.id
                );
            }
            for c in &report.campaigns {
                println!(
                    "  campaign {} ({}{}): {} contacts in the audience now, {} of whom may receive it",
                    c.id,
                    c.audience,
                    if c.held { ", held until started" } else { "" },
                    c.audience_now,
                    c.eligible_now
                );
            }
            if m.added.is_empty()
                && m.changed.is_empty()
                && m.removed.is_empty()
                && report.journeys.is_empty()
            {
                println!("no changes: the database runs this project already");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
