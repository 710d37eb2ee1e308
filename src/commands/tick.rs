//! `hogsend tick [DIR] [--now RFC3339]`: run one full tick (every pass) at that instant and
//! print what changed. The project must have been migrated.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use hogsend_compiler::diagnostics::JSON_FORMAT_VERSION;
use serde_json::{json, Value};

use crate::database::{self, DatabaseArgs};
use crate::output::{Format, Output};
use hogsend_compiler::project;

/// Arguments of `hogsend tick`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The project directory (for hogsend.toml)
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The tick instant, RFC 3339 (default: the database's clock)
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    now: Option<DateTime<Utc>>,
    #[command(flatten)]
    db: DatabaseArgs,
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 instant ({e}); e.g. 2026-01-31T09:00:00Z"))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let set = project::load(&args.dir)?;
    let (config, diags) = hogsend_compiler::config::load(set.config.as_ref());
    if !diags.is_empty() {
        out.eprint_diagnostics(&diags, &set);
        return Ok(ExitCode::from(1));
    }
    let schema = config.database.schema.clone();
    let url = args.db.resolve(&config)?;
    let result = database::runtime()?.block_on(async {
        let mut conn = database::connect(&url, &schema).await?;
        let summary = hogsend_runtime::db::tick(&mut conn, &schema, args.now).await;
        if let Ok(summary) = &summary {
            if num(summary, &["passes", "backfill", "buckets"]) > 0.0 {
                hogsend_runtime::db::vacuum_state(&mut conn, &schema)
                    .await
                    .context("could not vacuum after the backfill")?;
            }
        }
        Ok::<_, anyhow::Error>(summary)
    })?;
    let summary = match result {
        Ok(summary) => summary,
        Err(err) => return Ok(out.fail(&err)),
    };
    match out.format {
        Format::Json => {
            let doc = json!({ "format_version": JSON_FORMAT_VERSION, "tick": summary });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => print!("{}", human_summary(&summary)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The tick summary as a few aligned lines.
fn human_summary(s: &Value) -> String {
    let mut text = format!(
        "tick at {} (previous {}) in {} ms\n",
        s["now"].as_str().unwrap_or("?"),
        s["previous"].as_str().unwrap_or("none"),
        num(s, &["ms"])
    );
    for pass in ["backfill", "reconcile"] {
        let p = &["passes", pass];
        text += &format!(
            "  {pass:<10} {:>5} buckets {:>9} candidates {:>7} joins {:>7} leaves {:>10} ms\n",
            num(s, &[p[0], p[1], "buckets"]),
            num(s, &[p[0], p[1], "candidates"]),
            num(s, &[p[0], p[1], "joins"]),
            num(s, &[p[0], p[1], "leaves"]),
            num(s, &[p[0], p[1], "ms"]),
        );
    }
    text += &format!(
        "  {:<10} {:>5} fires {:>55} ms\n",
        "dwell",
        num(s, &["passes", "dwell", "fires"]),
        num(s, &["passes", "dwell", "ms"]),
    );
    text += &format!(
        "  {:<10} {:>5} enrolled {:>5} skipped {:>7} steps {:>7} messages {:>7} ended\n",
        "journeys",
        num(s, &["journeys", "enrolled"]),
        num(s, &["journeys", "skipped"]),
        num(s, &["journeys", "steps"]),
        num(s, &["journeys", "messages"]),
        num(s, &["journeys", "ended"]),
    );
    text += &format!(
        "  {:<10} {:>5} started {:>5} messages {:>7} completed {:>7} failed starts\n",
        "campaigns",
        num(s, &["campaigns", "started"]),
        num(s, &["campaigns", "messages"]),
        num(s, &["campaigns", "completed"]),
        num(s, &["campaigns", "failed_attempts"]),
    );
    if let Some(buckets) = s["buckets"].as_object() {
        for (id, b) in buckets {
            let changed = num(b, &["joins"]) + num(b, &["leaves"]) + num(b, &["dwell_fires"]);
            if changed > 0.0 || b["mode"] == "backfill" {
                text += &format!(
                    "    {id}: {} — {} joins, {} leaves, {} dwell fires\n",
                    b["mode"].as_str().unwrap_or("?"),
                    num(b, &["joins"]),
                    num(b, &["leaves"]),
                    num(b, &["dwell_fires"]),
                );
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::human_summary;
    use serde_json::json;

    #[test]
    fn prints_the_campaign_pass_like_the_journey_pass() {
        let s = json!({
            "now": "2027-01-04T10:00:00+00:00",
            "journeys": {"enrolled": 1, "steps": 2, "messages": 1},
            "campaigns": {"started": 2, "messages": 120, "failed_attempts": 1, "completed": 0},
        });
        let text = human_summary(&s);
        assert!(
            text.contains(
                "  journeys       1 enrolled     0 skipped       2 steps       1 messages       0 ended\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  campaigns      2 started   120 messages       0 completed       1 failed starts\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_tick_without_campaigns_prints_zeros() {
        let text = human_summary(&json!({"now": "2027-01-04T10:00:00+00:00"}));
        assert!(
            text.contains("  campaigns      0 started     0 messages       0 completed       0 failed starts\n"),
            "{text}"
        );
    }
}
