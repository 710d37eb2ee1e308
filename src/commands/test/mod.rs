//! `hogsend test [DIR] [--filter S]`: compiles the project and runs its `test` blocks, each on
//! its own fresh schema of a scratch database (see `server`), several at once; prints each
//! failed expectation as a diagnostic at its line (human, JSON or JUnit XML). Exit 0 when every
//! test passes, 1 otherwise. See docs/cli.md and docs/language.md#tests.

mod expect;
mod report;
mod runner;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use hogsend_compiler::plan::{self, PlanOptions};
use hogsend_compiler::test_suite::TestCase;
use hogsend_schema::SchemaName;
use tokio::sync::Semaphore;

use crate::commands::compile::compile_project;
use crate::database;
use crate::output::Output;

/// How many tests run at once by default.
const DEFAULT_JOBS: usize = 4;

/// Arguments of `hogsend test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Run only the tests whose name contains S
    #[arg(long, value_name = "S")]
    filter: Option<String>,
    /// Postgres server to run on (default: $DATABASE_URL, then 127.0.0.1:5432, then a private Postgres)
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// How many tests run at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_JOBS)]
    jobs: usize,
}

/// One test and what running it found.
pub struct Ran {
    pub test: TestCase,
    pub outcome: runner::Outcome,
}

/// Runs the command.
pub fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let Some((set, compiled)) = compile_project(&args.dir, out)? else {
        return Ok(ExitCode::from(1));
    };
    let Some(program) = compiled.checked.program.clone() else {
        return Ok(ExitCode::from(1));
    };
    let tests: Vec<TestCase> = compiled
        .checked
        .tests
        .iter()
        .filter(|t| args.filter.as_ref().is_none_or(|f| t.name.contains(f.as_str())))
        .cloned()
        .collect();
    let started = Instant::now();
    let ran = if tests.is_empty() {
        Vec::new()
    } else {
        database::runtime()?.block_on(run_all(&args, &program, tests))?
    };
    let elapsed = started.elapsed();
    report::print(out, &set, &ran, elapsed)?;
    let failed = ran
        .iter()
        .any(|r| r.outcome.error.is_some() || !r.outcome.failures.is_empty());
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Runs every test, at most `--jobs` at once, each on its own schema; returns them in
/// definition order.
async fn run_all(
    args: &Args,
    program: &hogsend_compiler::ir::Program,
    tests: Vec<TestCase>,
) -> Result<Vec<Ran>> {
    let scratch = server::Scratch::create(args.database_url.as_deref()).await?;
    let url = Arc::new(scratch.url.clone());
    let drop_schemas = scratch.drops_schemas();
    let permits = Arc::new(Semaphore::new(args.jobs.max(1)));
    let mut handles = Vec::new();
    for (index, test) in tests.into_iter().enumerate() {
        let schema = SchemaName::new(&scratch.schema_for(index))?;
        let options = PlanOptions {
            schema: schema.as_str().to_owned(),
        };
        let files = hogsend_compiler::emit::emit(&plan::plan(program, &options));
        let (url, permits) = (url.clone(), permits.clone());
        handles.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = runner::run(&url, &schema, &files, &test, drop_schemas).await;
            Ran { test, outcome }
        }));
    }
    let mut ran = Vec::new();
    for h in handles {
        ran.push(h.await?);
    }
    scratch.drop().await?;
    Ok(ran)
}
