//! `hogsend explain [CODE]`: print the long explanation of a diagnostic code, or list
//! every code with its title.

use std::process::ExitCode;

use anyhow::Result;
use hogsend_compiler::diagnostics::Code;
use serde_json::json;

use crate::output::{Format, Output};

/// Arguments of `hogsend explain`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A code such as E0301 (case-insensitive); without one, every code is listed
    code: Option<String>,
}

/// Runs the command.
pub(crate) fn run(args: Args, out: Output) -> Result<ExitCode> {
    let Some(name) = args.code else {
        match out.format {
            Format::Json => {
                let codes: Vec<_> = Code::ALL
                    .iter()
                    .map(|c| json!({"code": c.as_str(), "severity": c.severity().as_str(), "title": c.title()}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"format_version": 1, "codes": codes}))?
                );
            }
            Format::Human => {
                for c in Code::ALL {
                    println!("{}  {}", c.as_str(), c.title());
                }
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    let Some(code) = Code::parse(&name) else {
        eprintln!(
            "{} unknown diagnostic code `{name}`",
            out.severity_prefix(true)
        );
        eprintln!("  = help: codes look like E0301 or W0101; `hogsend explain` lists them all");
        return Ok(ExitCode::from(1));
    };
    match out.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "format_version": 1,
                "code": code.as_str(),
                "severity": code.severity().as_str(),
                "title": code.title(),
                "explanation": code.explanation(),
            }))?
        ),
        Format::Human => {
            println!("{}: {}\n", code.as_str(), code.title());
            println!("{}", code.explanation());
        }
    }
    Ok(ExitCode::SUCCESS)
}
