//! `hogsend check [DIR]`: parse and check a project, print every diagnostic.
//!
//! Exit 0 when there is no error (warnings allowed unless `--warnings-as-errors`), 1
//! otherwise. Human output goes to stderr (diagnostics, then one summary line); JSON goes
//! to stdout as one document.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use hogsend_compiler::diagnostics::{self, Summary};

use crate::output::{plural, Format, Output};
use hogsend_compiler::project;

/// Arguments of `hogsend check`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The project directory
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Treat warnings as errors (exit 1 when there is any)
    #[arg(long)]
    warnings_as_errors: bool,
}

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let set = project::load(&args.dir)?;
    let mut checked = hogsend_compiler::check(&set);
    if args.warnings_as_errors {
        diagnostics::promote_warnings(&mut checked.diagnostics);
    }
    let summary = Summary::of(&checked.diagnostics);
    match out.format {
        Format::Json => {
            let doc = diagnostics::render_json(&checked.diagnostics, &set);
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => {
            out.eprint_diagnostics(&checked.diagnostics, &set);
            if summary.errors > 0 {
                let mut line = format!(
                    "{} could not check project due to {}",
                    out.severity_prefix(true),
                    plural(summary.errors, "error")
                );
                if summary.warnings > 0 {
                    line += &format!("; {} emitted", plural(summary.warnings, "warning"));
                }
                eprintln!("{line}");
            } else {
                let program = checked.program.as_ref();
                let buckets = program.map_or(0, |p| p.buckets.len());
                let journeys = program.map_or(0, |p| p.journeys.len());
                let lists = program.map_or(0, |p| p.lists.len());
                let campaigns = program.map_or(0, |p| p.campaigns.len());
                let mut line = format!(
                    "checked {}: {}, {}, {}, {}, {}",
                    plural(set.files.len(), "file"),
                    plural(buckets, "bucket"),
                    plural(journeys, "journey"),
                    plural(lists, "list"),
                    plural(campaigns, "campaign"),
                    plural(set.templates.len(), "template"),
                );
                if summary.warnings > 0 {
                    line += &format!("; {} emitted", plural(summary.warnings, "warning"));
                }
                eprintln!("{line}");
            }
        }
    }
    Ok(if summary.errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
