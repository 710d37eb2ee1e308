//! `hogsend compile [DIR] [--out D] [--check] [--diff]`: write the generated SQL.
//!
//! Without `--check` the files are written to `DIR/generated/` (or `--out`), and generated
//! files of buckets that no longer exist are removed. With `--check` nothing is written:
//! every stale, missing or leftover file is named and the exit code is 2 (`--diff` shows a
//! unified diff for each). Needs no database. Exit 1 when the project has errors.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use hogsend_compiler::diagnostics::{self, JSON_FORMAT_VERSION};
use hogsend_compiler::emit::GeneratedFile;
use hogsend_compiler::source::SourceSet;
use hogsend_compiler::Compiled;
use serde_json::json;

use crate::output::{plural, Format, Output};
use hogsend_compiler::project;

/// Arguments of `hogsend compile`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The project directory
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where to write the files (default: DIR/generated)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write nothing; exit 2 naming each generated file that is stale, missing or left over
    #[arg(long)]
    check: bool,
    /// With --check, print a unified diff of each stale file
    #[arg(long, requires = "check")]
    diff: bool,
}

/// Loads and compiles a project, printing its diagnostics (errors and warnings). Returns
/// `None` when it has errors.
pub(crate) fn compile_project(dir: &Path, out: Output) -> Result<Option<(SourceSet, Compiled)>> {
    let set = project::load(dir)?;
    let compiled = hogsend_compiler::compile(&set);
    let diags = &compiled.checked.diagnostics;
    let has_errors = compiled.files.is_none();
    if out.format == Format::Human {
        out.eprint_diagnostics(diags, &set);
        if has_errors {
            let summary = diagnostics::Summary::of(diags);
            eprintln!(
                "{} could not compile project due to {}",
                out.severity_prefix(true),
                plural(summary.errors, "error")
            );
        }
    } else if has_errors {
        let doc = diagnostics::render_json(diags, &set);
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok((!has_errors).then_some((set, compiled)))
}

/// The `.sql` files under `dir` (relative, `/`-separated): what a previous compile wrote.
fn existing_files(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    for sub in ["", "buckets", "journeys"] {
        let d = if sub.is_empty() {
            dir.to_path_buf()
        } else {
            dir.join(sub)
        };
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_file() && path.extension().is_some_and(|e| e == "sql") {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let rel = if sub.is_empty() {
                    name.to_string()
                } else {
                    format!("{sub}/{name}")
                };
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("could not read `{}`", path.display()))?;
                found.insert(rel, text);
            }
        }
    }
    Ok(found)
}

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let Some((_, compiled)) = compile_project(&args.dir, out)? else {
        return Ok(ExitCode::from(1));
    };
    let files: Vec<GeneratedFile> = compiled.files.unwrap_or_default();
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| args.dir.join("generated"));
    let existing = existing_files(&out_dir)?;
    let mut stale = Vec::new();
    let mut missing = Vec::new();
    for file in &files {
        match existing.get(&file.path) {
            None => missing.push(file.path.clone()),
            Some(text) if *text != file.contents => stale.push(file.path.clone()),
            Some(_) => {}
        }
    }
    let leftover: Vec<String> = existing
        .keys()
        .filter(|p| !files.iter().any(|f| &f.path == *p))
        .cloned()
        .collect();
    let shown_dir = out_dir.display().to_string();

    if args.check {
        let clean = stale.is_empty() && missing.is_empty() && leftover.is_empty();
        match out.format {
            Format::Json => {
                let doc = json!({
                    "format_version": JSON_FORMAT_VERSION,
                    "out": shown_dir,
                    "up_to_date": clean,
                    "stale": stale, "missing": missing, "leftover": leftover,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            Format::Human => {
                for path in &stale {
                    println!("stale: {shown_dir}/{path}");
                    if args.diff {
                        let old = existing.get(path).map_or("", String::as_str);
                        let new = files
                            .iter()
                            .find(|f| &f.path == path)
                            .map_or("", |f| f.contents.as_str());
                        print!(
                            "{}",
                            similar::TextDiff::from_lines(old, new)
                                .unified_diff()
                                .context_radius(3)
                                .header(
                                    &format!("{shown_dir}/{path} (committed)"),
                                    &format!("{shown_dir}/{path} (compiled)")
                                )
                        );
                    }
                }
                for path in &missing {
                    println!("missing: {shown_dir}/{path}");
                }
                for path in &leftover {
                    println!("leftover: {shown_dir}/{path} (no longer generated)");
                }
                if clean {
                    eprintln!(
                        "{} generated files in {shown_dir} are up to date",
                        files.len()
                    );
                } else {
                    eprintln!(
                        "{} generated SQL in {shown_dir} is out of date; run `hogsend compile`",
                        out.severity_prefix(true)
                    );
                }
            }
        }
        return Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }

    for file in &files {
        if existing.get(&file.path) == Some(&file.contents) {
            continue;
        }
        let path = out_dir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("could not create `{}`", parent.display()))?;
        }
        fs::write(&path, &file.contents)
            .with_context(|| format!("could not write `{}`", path.display()))?;
    }
    for path in &leftover {
        let path = out_dir.join(path);
        fs::remove_file(&path).with_context(|| format!("could not remove `{}`", path.display()))?;
    }
    let written = stale.len() + missing.len();
    match out.format {
        Format::Json => {
            let doc = json!({
                "format_version": JSON_FORMAT_VERSION,
                "out": shown_dir,
                "files": files.iter().map(|f| &f.path).collect::<Vec<_>>(),
                "written": stale.iter().chain(&missing).collect::<Vec<_>>(),
                "removed": leftover,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => {
            eprintln!(
                "compiled {} into {shown_dir}: {} written, {} removed, {} unchanged",
                plural(files.len(), "file"),
                written,
                leftover.len(),
                files.len() - written
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
