//! `hogsend why BUCKET KEY [DIR] [--at RFC3339]`: why a contact is (or is not) in a bucket
//! at an instant, explained by the bucket's generated `b_<id>_why` function (the same
//! criteria SQL as the matcher, so it cannot disagree with membership). The project must
//! have been migrated. See `docs/cli.md`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use hogsend_compiler::diagnostics::JSON_FORMAT_VERSION;
use hogsend_runtime::db::Why;
use serde_json::{json, Value};

use crate::database::{self, DatabaseArgs};
use crate::output::{Format, Output};
use hogsend_compiler::project;

/// Arguments of `hogsend why`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The bucket's id
    bucket: String,
    /// The contact's key (external id, anonymous id or contact id)
    key: String,
    /// The project directory (for hogsend.toml)
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The instant to explain, RFC 3339 (default: the database's clock)
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    at: Option<DateTime<Utc>>,
    #[command(flatten)]
    db: DatabaseArgs,
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 instant ({e}); e.g. 2026-01-31T09:00:00Z"))
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
        Ok::<_, anyhow::Error>(
            hogsend_runtime::db::why(&mut conn, &schema, &args.bucket, &args.key, args.at).await,
        )
    })?;
    let explanation = match result {
        Ok(Why::Explained(explanation)) => explanation,
        Ok(Why::UnknownBucket) => {
            return Ok(out.fail(&format!("no bucket `{}` is deployed", args.bucket)))
        }
        Ok(Why::UnknownContact) => {
            return Ok(out.fail(&format!("no contact has the key `{}`", args.key)))
        }
        Err(err) => return Ok(out.fail(&err)),
    };
    match out.format {
        Format::Json => {
            let doc = json!({ "format_version": JSON_FORMAT_VERSION, "why": explanation });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => print!("{}", human(&explanation)),
    }
    Ok(ExitCode::SUCCESS)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn mark(v: &Value) -> &'static str {
    if v.get("value").and_then(Value::as_bool) == Some(true) {
        "✓"
    } else {
        "✗"
    }
}

fn list(v: &Value) -> String {
    let items: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// The explanation as an indented tree, one line per node (✓ holds, ✗ does not) with its
/// evidence on the lines below it.
pub(crate) fn human(w: &Value) -> String {
    let mut out = format!(
        "{} {} {} at {}\n",
        text(w, "key"),
        if w["matches"].as_bool() == Some(true) {
            "matches"
        } else {
            "does not match"
        },
        text(w, "bucket"),
        text(w, "at"),
    );
    if let Some(deleted) = w["deleted_at"].as_str() {
        out += &format!("  the contact was deleted at {deleted}\n");
    }
    node(&w["criteria"], 1, &mut out);
    match w["next_change_at"].as_str() {
        Some(t) => out += &format!("next change by the clock alone: {t}\n"),
        None => out += "no change by the clock alone\n",
    }
    let m = &w["membership"];
    if m.is_null() {
        out += "membership: never a member\n";
    } else if m["active"].as_bool() == Some(true) {
        out += &format!(
            "membership: member since {} (entry {})\n",
            text(m, "entered_at"),
            m["entry_count"]
        );
    } else {
        out += &format!(
            "membership: left at {} ({}; entry {})\n",
            text(m, "left_at"),
            text(m, "leave_reason"),
            m["entry_count"]
        );
    }
    let e = &w["entry"];
    let verdict = match text(e, "verdict") {
        "blocked" => match e["blocked_until"].as_str() {
            Some(until) => format!(
                "blocked by `entry once per` until {until} (left at {})",
                text(e, "left_at")
            ),
            None => format!("blocked by `entry once` (left at {})", text(e, "left_at")),
        },
        "later" => "left at this instant; reconsidered at the next tick".to_owned(),
        "may_join" => "joins at the next tick".to_owned(),
        "member" => "member".to_owned(),
        _ => "does not match".to_owned(),
    };
    out += &format!("entry {}: {verdict}\n", text(e, "policy"));
    let d = &w["dwell"];
    if let Some(secs) = d["min_dwell_seconds"].as_i64() {
        out += &format!("min_dwell {secs}s");
        if let Some(until) = d["min_dwell_until"].as_str() {
            out += &format!(": until {until}");
        }
        if d["leave_deferred"].as_bool() == Some(true) {
            out += " (leave deferred)";
        }
        out += "\n";
    }
    if let Some(secs) = d["max_dwell_seconds"].as_i64() {
        out += &format!("max_dwell {secs}s");
        if let Some(at) = d["max_dwell_at"].as_str() {
            out += &format!(": leaves at {at}");
        }
        out += "\n";
    }
    if let Some(next) = d["next_check_at"].as_str() {
        out += &format!("next timer: {next}\n");
    }
    out
}

fn node(n: &Value, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let kind = text(n, "kind");
    let label = match kind {
        "and" => "all of".to_owned(),
        "or" => "any of".to_owned(),
        "not" => "not".to_owned(),
        _ => text(n, "text").to_owned(),
    };
    *out += &format!("{pad}{} {label}\n", mark(n));
    let detail = format!("{pad}    ");
    match kind {
        "and" | "or" => {
            for child in n["children"].as_array().into_iter().flatten() {
                node(child, depth + 1, out);
            }
        }
        "not" => node(&n["child"], depth + 1, out),
        "event" => {
            let window = match n["window_from"].as_str() {
                Some(from) => format!(" in [{from}, {}]", text(n, "window_to")),
                None => format!(" up to {}", text(n, "window_to")),
            };
            *out += &format!("{detail}{} matching{window}\n", n["count"]);
            if n["count"].as_i64().unwrap_or(0) > 0 {
                *out += &format!("{detail}latest: {}\n", list(&n["events"]));
            }
            if let Some(t) = n["changes_at"].as_str() {
                *out += &format!("{detail}changes at {t} (an event leaves the window)\n");
            }
        }
        "property" => match n["absent"].as_str() {
            Some(reason) => *out += &format!("{detail}{}: {reason}\n", text(n, "path")),
            None => {
                *out += &format!(
                    "{detail}{} = {} ({})\n",
                    text(n, "path"),
                    n["found"],
                    text(n, "type")
                );
            }
        },
        "opened" | "clicked" => {
            *out += &format!("{detail}{kind}: {}\n", list(&n["messages"]));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::human;
    use serde_json::json;

    #[test]
    fn the_human_tree_shows_each_node_and_its_evidence() {
        let why = json!({
            "bucket": "evidence", "key": "ann", "at": "2027-03-10T02:00:00+00:00",
            "matches": true, "deleted_at": null,
            "next_change_at": "2027-03-11T00:00:00.000001+00:00",
            "criteria": {
                "kind": "and", "text": "…", "value": true, "children": [
                    { "kind": "event", "atom": "count", "value": true,
                      "text": "count app_opened within 7d >= 2", "count": 2,
                      "events": ["2027-03-10T01:00:00+00:00", "2027-03-04T00:00:00+00:00"],
                      "window_from": "2027-03-03T02:00:00+00:00",
                      "window_to": "2027-03-10T02:00:00+00:00",
                      "changes_at": "2027-03-11T00:00:00.000001+00:00" },
                    { "kind": "not", "text": "…", "value": true, "child":
                      { "kind": "property", "text": "contact.address.country == \"FR\"",
                        "value": false, "path": "contact.address.country", "found": null,
                        "type": null, "absent": "not an object at contact.address" } },
                    { "kind": "property", "text": "contact.plan == \"pro\"", "value": true,
                      "path": "contact.plan", "found": "pro", "type": "string",
                      "absent": null },
                    { "kind": "or", "text": "…", "value": true, "children": [
                        { "kind": "opened", "text": "opened welcome", "value": true,
                          "messages": ["2027-03-03T00:00:00+00:00"] },
                        { "kind": "clicked", "text": "clicked welcome", "value": false,
                          "messages": [] } ] } ] },
            "membership": { "active": false, "entry_count": 1,
                            "entered_at": "2027-03-05T00:00:00+00:00",
                            "left_at": "2027-03-10T00:00:00+00:00",
                            "leave_reason": "criteria" },
            "entry": { "policy": "once", "verdict": "blocked",
                       "left_at": "2027-03-10T00:00:00+00:00", "blocked_until": null },
            "dwell": { "min_dwell_seconds": 86400, "min_dwell_until": null,
                       "leave_deferred": false, "max_dwell_seconds": null,
                       "next_check_at": null }
        });
        insta::with_settings!({ snapshot_path => "../../snapshots", omit_expression => true }, {
            insta::assert_snapshot!("why_human_tree", human(&why));
        });
    }
}
