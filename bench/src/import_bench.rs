//! `hogsend-bench import`: the bulk contact import, timed as a user runs it.
//!
//! Creates `hogsend_import_<N>`, migrates a small project (two buckets, two lists) with the
//! `hogsend` binary, writes a CSV of N contacts (key, email, a name that is quoted when it
//! holds a comma, a plan, a typed age, list subscriptions for a third of them), then times:
//!
//! 1. `hogsend import contacts FILE DIR` into the empty database (every row created);
//! 2. the same command again (every row unchanged: the re-import's compare-before-write);
//! 3. a plain `COPY` of the same contacts (key, email, properties as JSON) into the contacts
//!    table of a second fresh database migrated the same way: the floor, without parsing,
//!    validation or upsert logic (the change-capture triggers fire for both).
//!
//! Rows/s are rows of the file over the wall time of the process (or of the COPY).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::server;

/// The project the contacts are imported into.
const PROJECT: &str = r#"
bucket signed_up {
  criteria did signed_up
}
bucket pros {
  criteria contact.plan == "pro"
}
list news {
  name    "News"
  default subscribed
}
list beta {
  name    "Beta"
  default unsubscribed
}
"#;

/// Arguments of `hogsend-bench import`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Postgres server URL (any database on it; the bench creates and drops its own)
    #[arg(long, value_name = "URL", env = "DATABASE_URL")]
    database_url: String,
    /// Contacts in the generated file
    #[arg(long, default_value_t = 200_000)]
    contacts: u64,
    /// Rows per transaction (`hogsend import --batch-size`)
    #[arg(long, default_value_t = 5_000)]
    batch_size: usize,
    /// The `hogsend` binary (default: next to this one)
    #[arg(long, value_name = "PATH")]
    hogsend: Option<PathBuf>,
    /// Keep the databases and the file afterwards
    #[arg(long)]
    keep: bool,
}

/// Runs the import bench and prints its figures.
pub(crate) fn run(args: &Args) -> Result<std::process::ExitCode> {
    let hogsend = match &args.hogsend {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary has no directory")?
            .join("hogsend"),
    };
    if !hogsend.exists() {
        bail!(
            "no hogsend binary at {} (build it, or pass --hogsend)",
            hogsend.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("hogsend-bench-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("main.hog"), PROJECT)?;
    let file = dir.join("contacts.csv");
    let started = Instant::now();
    let bytes = write_csv(&file, args.contacts)?;
    eprintln!(
        "wrote {} contacts ({:.1} MB) in {:.1} s",
        args.contacts,
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let report = runtime.block_on(measure(args, &hogsend, &dir, &file));
    if !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = report?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(std::process::ExitCode::SUCCESS)
}

/// Row `i` of the file: a name with a comma for one row in ten (so it is quoted), a typed age,
/// subscriptions for a third of the rows.
fn row(i: u64) -> (String, String, String, &'static str, u64, &'static str) {
    let key = format!("user-{i:08}");
    let email = format!("user{i}@example.com");
    let name = if i % 10 == 0 {
        format!("Doe, Jo {i}")
    } else {
        format!("Jo {i}")
    };
    let plan = ["free", "pro", "team"][(i % 3) as usize];
    let lists = ["", "news", "news;beta"][(i % 3) as usize];
    (key, email, name, plan, 18 + i % 60, lists)
}

fn write_csv(path: &Path, contacts: u64) -> Result<u64> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "key,email,name,plan,age:number,lists")?;
    for i in 0..contacts {
        let (key, email, name, plan, age, lists) = row(i);
        let name = if name.contains(',') {
            format!("\"{name}\"")
        } else {
            name
        };
        writeln!(out, "{key},{email},{name},{plan},{age},{lists}")?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// `hogsend ARGS --database-url URL`, timed; fails when it does.
fn hogsend_timed(hogsend: &Path, args: &[&str], url: &str) -> Result<(f64, String)> {
    let started = Instant::now();
    let out = Command::new(hogsend)
        .args(args)
        .args(["--database-url", url])
        .env("NO_COLOR", "1")
        .output()
        .with_context(|| format!("could not run {}", hogsend.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "hogsend {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((
        seconds,
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    ))
}

async fn measure(args: &Args, hogsend: &Path, dir: &Path, file: &Path) -> Result<Value> {
    let mut admin = sqlx::Connection::connect(&args.database_url)
        .await
        .context("could not connect to the server")?;
    let name = format!("hogsend_import_{}", args.contacts);
    let copy_name = format!("hogsend_import_copy_{}", args.contacts);
    let d = dir.to_str().context("temp dir is not UTF-8")?;
    let f = file.to_str().context("temp file is not UTF-8")?;
    let n = args.contacts as f64;
    let batch = args.batch_size.to_string();

    server::recreate_database(&mut admin, &name).await?;
    let url = hogsend_runtime::db::with_database(&args.database_url, &name);
    hogsend_timed(hogsend, &["migrate", d], &url)?;
    let import_args = ["import", "contacts", f, d, "--batch-size", batch.as_str()];
    let (first, first_out) = hogsend_timed(hogsend, &import_args, &url)?;
    eprintln!("{first_out} in {first:.1} s ({:.0} rows/s)", n / first);
    let (again, again_out) = hogsend_timed(hogsend, &import_args, &url)?;
    eprintln!("{again_out} in {again:.1} s ({:.0} rows/s)", n / again);

    server::recreate_database(&mut admin, &copy_name).await?;
    let copy_url = hogsend_runtime::db::with_database(&args.database_url, &copy_name);
    hogsend_timed(hogsend, &["migrate", d], &copy_url)?;
    let mut text = String::with_capacity(args.contacts as usize * 100);
    for i in 0..args.contacts {
        let (key, email, name, plan, age, _) = row(i);
        let props = json!({"name": name, "plan": plan, "age": age}).to_string();
        text += &format!("{key}\t{email}\t{}\n", props.replace('\\', "\\\\"));
    }
    let mut conn = server::connect(&copy_url).await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("copy hogsend.contacts (external_id, email, properties) from stdin")
        .await?;
    copy.send(text.as_bytes()).await?;
    let copied = copy.finish().await?;
    let copy_s = started.elapsed().as_secs_f64();
    eprintln!(
        "COPY {copied} contacts in {copy_s:.1} s ({:.0} rows/s)",
        n / copy_s
    );
    drop(conn);

    if !args.keep {
        server::drop_database(&mut admin, &name).await?;
        server::drop_database(&mut admin, &copy_name).await?;
    }
    Ok(json!({
        "contacts": args.contacts,
        "batch_size": args.batch_size,
        "import_s": first,
        "import_rows_per_s": (n / first).round(),
        "reimport_s": again,
        "reimport_rows_per_s": (n / again).round(),
        "copy_s": copy_s,
        "copy_rows_per_s": (n / copy_s).round(),
        "import_vs_copy": (copy_s / first * 100.0).round() / 100.0,
    }))
}
