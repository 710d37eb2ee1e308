//! `hogsend test [DIR] [--filter S]`: compiles the project and runs its `test` blocks, each on
//! a freshly migrated schema (see `server` and `runner`), several at once; prints each
//! failed expectation as a diagnostic at its line (human, JSON or JUnit XML). Exit 0 when every
//! test passes, 1 otherwise. See docs/cli.md and docs/language.md#tests.

mod expect;
mod report;
mod runner;
mod server;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, Result};
use hogsend_compiler::plan::{self, PlanOptions};
use hogsend_compiler::test_suite::TestCase;
use hogsend_schema::SchemaName;

use crate::commands::compile::compile_project;
use crate::database;
use crate::output::{Format, Output};
use hogsend_compiler::project;

/// How many tests run at once by default.
const DEFAULT_JOBS: usize = 4;

/// Arguments of `hogsend test`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
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
pub(crate) struct Ran {
    pub test: TestCase,
    pub outcome: runner::Outcome,
}

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let (set, compiled) = if out.junit || out.format == Format::Json {
        // Machine output stays machine-readable when the project does not compile: a JUnit
        // document with a failing `compile` test case, or a JSON error document.
        let set = project::load(&args.dir)?;
        let compiled = hogsend_compiler::compile(&set);
        if compiled.files.is_none() {
            report::print_compile_failure(out, &set, &compiled.checked.diagnostics)?;
            return Ok(ExitCode::from(1));
        }
        if out.junit {
            // Warnings go to stderr, as in human output; stdout holds only the XML.
            out.eprint_diagnostics(&compiled.checked.diagnostics, &set);
        }
        (set, compiled)
    } else {
        let Some(project) = compile_project(&args.dir, out)? else {
            return Ok(ExitCode::from(1));
        };
        project
    };
    let Some(program) = compiled.checked.program.clone() else {
        return Ok(ExitCode::from(1));
    };
    let tests: Vec<TestCase> = compiled
        .checked
        .tests
        .iter()
        .filter(|t| {
            args.filter
                .as_ref()
                .is_none_or(|f| t.name.contains(f.as_str()))
        })
        .cloned()
        .collect();
    let started = Instant::now();
    let ran = if tests.is_empty() {
        Vec::new()
    } else {
        let config = &compiled.checked.config;
        let base = PlanOptions {
            schema: String::new(),
            timezone: config.project.timezone.clone(),
            trigger_max_age: config.journeys.trigger_max_age,
        };
        database::runtime()?.block_on(run_all(args, &program, &base, tests))?
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

/// Runs every test on `--jobs` workers (each its own schema and connection); returns them in
/// definition order.
async fn run_all(
    args: &Args,
    program: &hogsend_compiler::ir::Program,
    base: &PlanOptions,
    tests: Vec<TestCase>,
) -> Result<Vec<Ran>> {
    let scratch = server::Scratch::create(args.database_url.as_deref()).await?;
    let count = tests.len();
    let queue: Arc<Mutex<VecDeque<(usize, TestCase)>>> =
        Arc::new(Mutex::new(tests.into_iter().enumerate().collect()));
    let mut workers = Vec::new();
    for w in 0..args.jobs.clamp(1, count) {
        let schema = SchemaName::new(&scratch.schema_for(w))?;
        let options = PlanOptions {
            schema: schema.as_str().to_owned(),
            ..base.clone()
        };
        let files = hogsend_compiler::emit::emit(&plan::plan(program, &options));
        let (url, queue) = (scratch.url.clone(), queue.clone());
        workers.push(tokio::spawn(async move {
            let mut worker = runner::Worker::start(&url, schema, &files).await?;
            let mut ran = Vec::new();
            loop {
                let next = queue
                    .lock()
                    .map_err(|_| anyhow!("a worker panicked"))?
                    .pop_front();
                let Some((index, test)) = next else { break };
                let outcome = worker.run(&test).await;
                ran.push((index, Ran { test, outcome }));
            }
            worker.stop().await?;
            Ok::<_, anyhow::Error>(ran)
        }));
    }
    let mut ran = Vec::with_capacity(count);
    let mut first_error = None;
    for w in workers {
        match w.await? {
            Ok(r) => ran.extend(r),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    ran.sort_by_key(|(index, _)| *index);
    Ok(ran.into_iter().map(|(_, r)| r).collect())
}
