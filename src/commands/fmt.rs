//! `hogsend fmt [DIR] [--check]`: format every `.hog` file of a project in place.
//!
//! With `--check` nothing is written: files that would change are listed on stdout and
//! the exit code is 1 if there is any. A file that does not parse is left alone, its
//! errors are printed, and the exit code is 1.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hogsend_compiler::diagnostics::{self, Diagnostic, JSON_FORMAT_VERSION};
use hogsend_compiler::parse::format_file;
use serde_json::json;

use crate::output::{plural, Format, Output};
use hogsend_compiler::project;

/// Arguments of `hogsend fmt`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The project directory
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Write nothing; list the files that would change and exit 1 if there is any
    #[arg(long)]
    check: bool,
}

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let set = project::load(&args.dir)?;
    let mut changed = Vec::new();
    let mut unchanged = 0usize;
    let mut errors: Vec<Diagnostic> = Vec::new();
    for file in &set.files {
        match format_file(file) {
            Ok(formatted) if formatted == file.text => unchanged += 1,
            Ok(formatted) => {
                if !args.check {
                    let path = args.dir.join(&file.path);
                    std::fs::write(&path, formatted)
                        .with_context(|| format!("could not write `{}`", path.display()))?;
                }
                changed.push(file.path.clone());
            }
            Err(diags) => errors.extend(diags),
        }
    }
    let failed = !errors.is_empty() || (args.check && !changed.is_empty());
    match out.format {
        Format::Json => {
            let doc = json!({
                "format_version": JSON_FORMAT_VERSION,
                "check": args.check,
                "changed": changed,
                "unchanged": unchanged,
                "diagnostics": diagnostics::render_json(&errors, &set)["diagnostics"],
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => {
            out.eprint_diagnostics(&errors, &set);
            let verb = if args.check {
                "would reformat"
            } else {
                "reformatted"
            };
            for path in &changed {
                println!("{verb} {path}");
            }
            let mut parts = Vec::new();
            if !changed.is_empty() {
                parts.push(format!(
                    "{} {}",
                    plural(changed.len(), "file"),
                    if args.check {
                        "would be reformatted"
                    } else {
                        "reformatted"
                    }
                ));
            }
            if unchanged > 0 || (changed.is_empty() && errors.is_empty()) {
                parts.push(format!("{} already formatted", plural(unchanged, "file")));
            }
            if !parts.is_empty() {
                println!("{}", parts.join(", "));
            }
            if !errors.is_empty() {
                let files: std::collections::BTreeSet<&str> =
                    errors.iter().map(|d| d.primary.file.as_str()).collect();
                eprintln!(
                    "{} could not format {} with parse errors",
                    out.severity_prefix(true),
                    plural(files.len(), "file")
                );
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
