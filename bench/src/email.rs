//! `hogsend-bench email`: the delivery worker's throughput.
//!
//! Creates `hogsend_email_<N>`, migrates a project with one list and one newsletter
//! template (HTML with a `<style>` block that is inlined, variables, a condition, the
//! unsubscribe link; the text part derived from the HTML), loads N contacts and queues one
//! message to each, set-based. Then it launches the daemon in this process
//! ([`hogsend_runtime::launch`], the code `hogsend serve` runs; the scheduler off, the
//! delivery worker on with its default batch and concurrency) against the chosen provider
//! and waits until no message is `queued` or `sending`:
//!
//! - `log`: the log provider (this process installs no log subscriber, so the lines are not
//!   formatted or written);
//! - `http`: the Resend-compatible API of the tests ([`FakeResend`]), in this process,
//!   keeping no bodies;
//! - `smtp`: a real SMTP server: `--smtp HOST:PORT`, else `python3 -m aiosmtpd` with its
//!   `Sink` handler, started by the bench on a free port (pooled connections, no TLS).
//!
//! Messages/s is N over the time from the daemon's launch to the last message recorded;
//! peak RSS is this process's high-water mark (`VmHWM`): the daemon, plus the in-process
//! fake API for `http`.

use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};
use hogsend_runtime::fake_resend::FakeResend;
use hogsend_runtime::mail::links::Signer;
use hogsend_runtime::mail::settings::{HttpSettings, ProviderSettings, SmtpSettings};
use hogsend_schema::settings::SmtpTls;
use serde_json::{json, Value};

use crate::daemon::Daemon;
use crate::project::{self, SCHEMA};
use crate::server;

/// The project: one list the messages belong to.
const PROJECT: &str = r#"
list news {
  name    "News"
  default subscribed
}
"#;

/// The newsletter: a `<style>` block (inlined at render time), variables, a condition.
const NEWSLETTER: &str = r#"---
subject: "{{ contact.first_name | default('there') }}, your weekly digest"
category: news
preheader: What happened this week at Acme
---
<html><head><style>
body { font-family: Helvetica, Arial, sans-serif; color: #222; }
h1 { font-size: 22px; margin: 0 0 12px; }
p { line-height: 1.5; margin: 0 0 10px; }
.cta { background: #0a7; color: #fff; padding: 10px 16px; text-decoration: none; }
.footer { color: #888; font-size: 12px; }
@media (max-width: 600px) { h1 { font-size: 18px; } }
</style></head>
<body>
<h1>Hi {{ contact.first_name | default('there') }},</h1>
<p>Here is what happened on your {{ contact.plan }} plan this week.</p>
{% if contact.plan == "pro" %}<p>Your team shipped {{ contact.projects }} projects.</p>
{% else %}<p>Upgrade to pro to share projects with your team.</p>{% endif %}
<p><a class="cta" href="https://acme.test/digest?u={{ contact.key }}">Read the digest</a></p>
<p class="footer">You get this because you subscribed to News.
<a href="{{ unsubscribe_url }}">Unsubscribe</a> · <a href="{{ preferences_url }}">Preferences</a></p>
</body></html>
"#;

const API_KEY: &str = "re_bench";

/// Where the bench sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Target {
    /// The log provider.
    Log,
    /// The Resend-compatible API, in this process.
    Http,
    /// A real SMTP server.
    Smtp,
}

/// Arguments of `hogsend-bench email`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Postgres server URL (any database on it; the bench creates and drops its own)
    #[arg(long, value_name = "URL", env = "DATABASE_URL")]
    database_url: String,
    /// Contacts, one queued message each
    #[arg(long, default_value_t = 100_000)]
    contacts: u64,
    /// The provider
    #[arg(long, value_enum)]
    provider: Target,
    /// An SMTP server to send to (default: start `python3 -m aiosmtpd` on a free port)
    #[arg(long, value_name = "HOST:PORT")]
    smtp: Option<SocketAddr>,
    /// `[email] batch_size` (default: the daemon's)
    #[arg(long)]
    batch_size: Option<i32>,
    /// `[email] concurrency` (default: the daemon's)
    #[arg(long)]
    concurrency: Option<usize>,
    /// Keep the database afterwards
    #[arg(long)]
    keep: bool,
}

/// Runs the email bench and prints its figures as JSON.
pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let report = runtime.block_on(measure(args))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn source() -> SourceSet {
    SourceSet {
        files: vec![SourceFile::new("main.hog", PROJECT)],
        templates: vec![TemplateSource {
            id: "newsletter".into(),
            html: Some(SourceFile::new("templates/newsletter.html", NEWSLETTER)),
            text: None,
        }],
        config: None,
    }
}

/// A started `python3 -m aiosmtpd` (killed when dropped).
struct SmtpSink(Child);

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the aiosmtpd sink on a free port and waits until it accepts connections.
async fn start_sink() -> Result<(SmtpSink, SocketAddr)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l"])
        .arg(addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("could not start python3 -m aiosmtpd (pip install aiosmtpd)")?;
    let sink = SmtpSink(child);
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("the aiosmtpd sink did not come up on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((sink, addr))
}

/// This process's peak resident set (`VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

async fn measure(args: &Args) -> Result<Value> {
    let contacts = args.contacts.max(1);
    let project = project::compile(&source())?;
    let name = format!("hogsend_email_{contacts}");
    let mut admin = server::connect(&args.database_url).await?;
    let machine = server::describe(&mut admin).await?;
    server::recreate_database(&mut admin, &name).await?;
    let url = hogsend_runtime::db::with_database(&args.database_url, &name);
    let result = deliver_all(args, contacts, &project, &url).await;
    if !args.keep {
        server::drop_database(&mut admin, &name).await?;
    }
    let mut report = result?;
    report["database"] = json!(name);
    report["machine"] = machine;
    report["load_average"] = json!(server::load_average());
    Ok(report)
}

async fn deliver_all(
    args: &Args,
    contacts: u64,
    project: &project::CompiledProject,
    url: &str,
) -> Result<Value> {
    let mut conn = server::connect(url).await?;
    let schema = hogsend_schema::SchemaName::new(SCHEMA)?;
    hogsend_runtime::migrate::migrate(&mut conn, &schema, &project.files).await?;
    let started = Instant::now();
    sqlx::raw_sql(&format!(
        "insert into {SCHEMA}.contacts (external_id, email, properties)
         select 'c' || i, 'c' || i || '@example.com',
                jsonb_build_object('first_name', 'Jo ' || i,
                                   'plan', case when i % 3 = 0 then 'pro' else 'free' end,
                                   'projects', i % 17)
           from generate_series(1, {contacts}) i;
         insert into {SCHEMA}.messages (user_key, template, category, to_email)
         select 'c' || i, 'newsletter', 'news', 'c' || i || '@example.com'
           from generate_series(1, {contacts}) i;
         analyze {SCHEMA}.messages; analyze {SCHEMA}.contacts;"
    ))
    .execute(&mut conn)
    .await?;
    let queue_s = started.elapsed().as_secs_f64();
    eprintln!("queued {contacts} messages in {queue_s:.1} s");

    let mut _sink = None;
    let mut api = None;
    let provider = match args.provider {
        Target::Log => ProviderSettings::Log,
        Target::Http => {
            let fake = FakeResend::start(API_KEY).await;
            fake.forget_bodies();
            let p = ProviderSettings::Http(HttpSettings {
                base_url: fake.url(),
                api_key: API_KEY.into(),
            });
            api = Some(fake);
            p
        }
        Target::Smtp => {
            let addr = match args.smtp {
                Some(a) => a,
                None => {
                    let (sink, addr) = start_sink().await?;
                    _sink = Some(sink);
                    addr
                }
            };
            ProviderSettings::Smtp(SmtpSettings {
                host: addr.ip().to_string(),
                port: addr.port(),
                tls: SmtpTls::None,
                credentials: None,
                url: None,
            })
        }
    };
    let provider_name = match args.provider {
        Target::Log => "log",
        Target::Http => "http",
        Target::Smtp => "smtp",
    };
    let started = Instant::now();
    let daemon = Daemon::start(&mut conn, url, project.files.clone(), |c| {
        c.mail.provider = provider;
        c.mail.provider_name = provider_name;
        c.mail.signer = Signer::from_env_value("bench-link-secret");
        c.mail.from = "Acme <news@acme.test>".into();
        c.mail.public_url = "https://mail.acme.test".into();
        if let Some(n) = args.batch_size {
            c.mail.batch_size = n.max(1);
        }
        if let Some(n) = args.concurrency {
            c.mail.concurrency = n.max(1);
        }
    })
    .await?;
    let mut last_report = Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar(&format!(
            "select count(*) from {SCHEMA}.messages where status in ('queued', 'sending')"
        ))
        .fetch_one(&mut conn)
        .await?;
        if left == 0 {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "{left} messages left after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    daemon.stop().await?;
    let by_status: Vec<(String, i64)> = sqlx::query_as(&format!(
        "select status, count(*) from {SCHEMA}.messages group by 1 order by 1"
    ))
    .fetch_all(&mut conn)
    .await?;
    let sent = by_status
        .iter()
        .find(|(s, _)| s == "sent")
        .map_or(0, |(_, n)| *n);
    if u64::try_from(sent).unwrap_or(0) != contacts {
        bail!("not every message was sent: {by_status:?}");
    }
    if let Some(api) = &api {
        if api.delivered() != usize::try_from(contacts).unwrap_or(usize::MAX) {
            bail!(
                "the API received {} messages, not {contacts}",
                api.delivered()
            );
        }
    }
    Ok(json!({
        "provider": provider_name,
        "messages": contacts,
        "queue_s": (queue_s * 10.0).round() / 10.0,
        "deliver_s": (seconds * 10.0).round() / 10.0,
        "messages_per_s": (contacts as f64 / seconds).round(),
        "peak_rss_mib": rss,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
    }))
}
