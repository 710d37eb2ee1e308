//! `hogsend serve [DIR]`: the daemon. Compiles the project, migrates, then runs the
//! scheduler, the real-time pass and the HTTP API until SIGTERM or Ctrl-C (exit 0 after
//! draining).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use hogsend_runtime::RuntimeConfig;

use crate::commands::compile::compile_project;
use crate::database::{self, ProjectArgs};
use crate::output::Output;

/// Arguments of `hogsend serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Listen here instead of `[api] listen` / HOGSEND_LISTEN
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

/// Structured logs on stderr; `RUST_LOG` filters (default `info`).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Compiles the project at `dir` into the daemon's configuration (`None`: the project has
/// errors, already printed).
pub(crate) fn runtime_config(
    dir: &Path,
    url: impl FnOnce(&hogsend_compiler::config::Config) -> Result<String>,
    out: Output,
) -> Result<Option<RuntimeConfig>> {
    let Some((_, compiled)) = compile_project(dir, out)? else {
        return Ok(None);
    };
    let config = &compiled.checked.config;
    let url = url(config)?;
    let files = compiled.files.unwrap_or_default();
    let settings = hogsend_runtime::config::Settings {
        schema: &config.database.schema,
        api: &config.api,
        schedule: &config.schedule,
    };
    let rc = RuntimeConfig::from_settings(settings, &url, files, |name| std::env::var(name).ok())?
        .with_email(&config.email, |name| std::env::var(name).ok())?;
    Ok(Some(rc))
}

/// Resolves when the process gets SIGTERM or SIGINT.
pub(crate) async fn terminated() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

/// Binds and runs the daemon until a signal; the exit code.
pub(crate) fn serve(
    config: RuntimeConfig,
    banner: impl FnOnce(std::net::SocketAddr),
) -> Result<ExitCode> {
    tracing::info!(config = ?config, "starting");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("could not listen on {}", config.listen))?;
        banner(listener.local_addr()?);
        hogsend_runtime::launch(config, listener, terminated())
            .await
            .context("the daemon stopped with an error")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the command.
pub(crate) fn run(args: &Args, out: Output) -> Result<ExitCode> {
    init_logging();
    let db = &args.project.db;
    let Some(mut config) = runtime_config(&args.project.dir, |c| db.resolve(c), out)? else {
        return Ok(ExitCode::from(1));
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    tracing::info!(database = %database::redact(config.database_url.expose()), "database");
    serve(config, |addr| {
        eprintln!("hogsend serve: listening on http://{addr}");
    })
}
