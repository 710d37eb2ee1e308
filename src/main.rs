//! The `hogsend` command line: a thin edge over the compiler and the runtime.
//!
//! `main` parses the arguments and dispatches to one module per command under
//! `commands/`. Commands return the process exit code; an `Err` is an unexpected failure
//! (an unreadable directory…), printed as `error: …` with exit code 2.

mod commands;
mod database;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Lifecycle segmentation compiled to set-based Postgres SQL.
#[derive(Debug, Parser)]
#[command(name = "hogsend", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    output: output::OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse and check a project; print every diagnostic (exit 1 on errors)
    Check(commands::check::Args),
    /// Format every .hog file of a project in place (or just check with --check)
    Fmt(commands::fmt::Args),
    /// Explain a diagnostic code (or list them all)
    Explain(commands::explain::Args),
    /// Write the generated SQL (or check that the committed files are up to date)
    Compile(commands::compile::Args),
    /// Show what `migrate` would change in the database, changing nothing
    Plan(commands::plan::Args),
    /// Apply the base schema and the compiled project to the database
    Migrate(commands::migrate::Args),
    /// Run one full tick at an instant and print what changed
    Tick(commands::tick::Args),
    /// Render a template as it would be sent: subject, HTML and text
    Preview(commands::preview::Args),
    /// Explain why a contact is (or is not) in a bucket at an instant
    Why(commands::why::Args),
    /// Run the project's test blocks, each on a fresh schema (exit 1 when one fails)
    Test(commands::test::Args),
    /// Run the daemon: migrate, then the scheduler, the real-time pass and the HTTP API
    Serve(commands::serve::Args),
    /// Run the daemon on a laptop, with a private Postgres when no database is given
    Dev(commands::dev::Args),
    /// Create, list and revoke API keys
    Keys(commands::keys::Args),
    /// Bulk upsert contacts and their list subscriptions from CSV or NDJSON
    Import(commands::import::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = cli.output.resolve();
    if output.junit && !matches!(cli.command, Command::Test(_)) {
        eprintln!("error: `--format junit` is only for `hogsend test`");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Check(args) => commands::check::run(&args, output),
        Command::Fmt(args) => commands::fmt::run(&args, output),
        Command::Explain(args) => commands::explain::run(args, output),
        Command::Compile(args) => commands::compile::run(&args, output),
        Command::Plan(args) => commands::plan::run(&args, output),
        Command::Migrate(args) => commands::migrate::run(&args, output),
        Command::Preview(args) => commands::preview::run(&args, output),
        Command::Tick(args) => commands::tick::run(&args, output),
        Command::Why(args) => commands::why::run(&args, output),
        Command::Test(args) => commands::test::run(&args, output),
        Command::Serve(args) => commands::serve::run(&args, output),
        Command::Dev(args) => commands::dev::run(&args, output),
        Command::Keys(args) => commands::keys::run(&args, output),
        Command::Import(args) => commands::import::run(args, output),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
