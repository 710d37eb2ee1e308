//! `hogsend import contacts FILE [DIR]`: bulk upsert of contacts and their list
//! subscriptions from CSV or NDJSON (docs/cli.md#hogsend-import-contacts). The file is
//! streamed: rows are validated as they are read, good ones written in batches (one
//! transaction each, the upsert `PUT /v1/contacts/{key}` uses), bad ones reported by line.
//! The project must have been migrated.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hogsend_compiler::diagnostics::JSON_FORMAT_VERSION;
use hogsend_compiler::project;
use hogsend_runtime::import::{self, ImportError, Progress, RowError, Summary};
use serde_json::json;

use crate::database::{self, DatabaseArgs};
use crate::output::{Format, Output};

/// Arguments of `hogsend import`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: What,
}

/// What to import.
#[derive(Debug, clap::Subcommand)]
enum What {
    /// Upsert contacts (and their list subscriptions) from a CSV or NDJSON file
    Contacts(ContactsArgs),
}

/// Arguments of `hogsend import contacts`.
#[derive(Debug, clap::Args)]
struct ContactsArgs {
    /// The file to import (`-` reads standard input)
    file: PathBuf,
    /// The project directory (for hogsend.toml)
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The file's format (default: from its extension: .csv, .ndjson, .jsonl, .json)
    #[arg(long, value_enum, value_name = "FORMAT")]
    input_format: Option<InputFormat>,
    /// Rows per transaction
    #[arg(long, value_name = "N", default_value_t = import::DEFAULT_BATCH_SIZE,
          value_parser = parse_batch_size)]
    batch_size: usize,
    #[command(flatten)]
    db: DatabaseArgs,
}

fn parse_batch_size(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err("expected a number of rows from 1 to 100000".into()),
    }
}

/// `--input-format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum InputFormat {
    /// RFC 4180 CSV with a header record
    Csv,
    /// One JSON object per line
    Ndjson,
}

/// Runs the command.
pub(crate) fn run(args: Args, out: Output) -> Result<ExitCode> {
    let What::Contacts(args) = args.what;
    let set = project::load(&args.dir)?;
    let (config, diags) = hogsend_compiler::config::load(set.config.as_ref());
    if !diags.is_empty() {
        out.eprint_diagnostics(&diags, &set);
        return Ok(ExitCode::from(1));
    }
    let stdin = args.file.as_os_str() == "-";
    let format = match (
        args.input_format,
        import::Format::from_extension(&args.file),
    ) {
        (Some(InputFormat::Csv), _) => import::Format::Csv,
        (Some(InputFormat::Ndjson), _) => import::Format::Ndjson,
        (None, Some(f)) => f,
        (None, None) => bail!(
            "cannot tell the format of `{}` from its extension: pass --input-format csv or ndjson",
            args.file.display()
        ),
    };
    let (input, size): (Box<dyn BufRead>, Option<u64>) = if stdin {
        (Box::new(BufReader::new(std::io::stdin().lock())), None)
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("could not open `{}`", args.file.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 16, file)), size)
    };
    let name = args.file.display().to_string();
    let schema = config.database.schema.clone();
    let url = args.db.resolve(&config)?;
    let human = out.format == Format::Human;
    let mut bar = ProgressLine::new(human && std::io::stderr().is_terminal(), size);
    let result = database::runtime()?.block_on(async {
        let pool = hogsend_runtime::db::connect(&url, &schema, 2)
            .await
            .with_context(|| format!("could not connect to {}", database::redact(&url)))?;
        let result = import::import(&pool, input, format, args.batch_size, |p| match p {
            Progress::Bad(bad) if human => bar.print_above(&bad_line(out, &name, bad)),
            Progress::Bad(_) => {}
            Progress::Committed { summary, bytes, .. } => bar.update(summary, bytes),
        })
        .await;
        pool.close().await;
        Ok::<_, anyhow::Error>(result)
    })?;
    bar.finish();
    let summary = match result {
        Ok(summary) => summary,
        Err(ImportError::Header { line, message }) => {
            return Ok(out.fail(&format!(
                "{name} line {line}: {message}; nothing was imported"
            )))
        }
        Err(ImportError::Database(e)) => {
            return Ok(out.fail(&format!(
            "{e} (the batches before the failing one are committed; re-running the import is safe)"
        )))
        }
        Err(e) => return Ok(out.fail(&e)),
    };
    match out.format {
        Format::Json => {
            let doc = json!({"format_version": JSON_FORMAT_VERSION, "import": summary});
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => println!("{}", human_summary(&name, &summary)),
    }
    Ok(if summary.bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `error: contacts.csv line 4: …`
fn bad_line(out: Output, name: &str, bad: &RowError) -> String {
    format!(
        "{} {name} line {}: {}",
        out.severity_prefix(true),
        bad.line,
        bad.message
    )
}

/// The last line: `imported contacts.csv: 10 rows, 6 upserted, 2 unchanged, 2 bad`.
fn human_summary(name: &str, s: &Summary) -> String {
    format!(
        "imported {name}: {} rows, {} upserted, {} unchanged, {} bad",
        s.rows, s.upserted, s.unchanged, s.bad
    )
}

/// A one-line progress display on a terminal's stderr, redrawn at most ten times a
/// second; nothing at all when stderr is not a terminal.
struct ProgressLine {
    enabled: bool,
    size: Option<u64>,
    drawn: bool,
    last: Option<Instant>,
    started: Instant,
}

impl ProgressLine {
    fn new(enabled: bool, size: Option<u64>) -> ProgressLine {
        ProgressLine {
            enabled,
            size,
            drawn: false,
            last: None,
            started: Instant::now(),
        }
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[2K");
            self.drawn = false;
        }
    }

    fn print_above(&mut self, line: &str) {
        self.clear();
        eprintln!("{line}");
    }

    fn update(&mut self, s: &Summary, bytes: u64) {
        if !self.enabled
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let rate = s.rows as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let share = match self.size {
            Some(size) if size > 0 => format!("{:>3}% ", (bytes * 100 / size).min(100)),
            _ => String::new(),
        };
        eprint!(
            "\r\x1b[2Kimporting: {share}{} rows, {} upserted, {} unchanged, {} bad ({:.0} rows/s)",
            s.rows, s.upserted, s.unchanged, s.bad, rate
        );
        let _ = std::io::stderr().flush();
        self.drawn = true;
    }

    fn finish(&mut self) {
        self.clear();
    }
}
