//! The daemon the HTTP phases talk to: launched in this process with
//! [`hogsend_runtime::launch`] (the code `hogsend serve` runs) on `127.0.0.1:0`, with the
//! real-time pass on and the scheduler off (the bench drives the clock itself), and an
//! ingest key of its own; [`Client`], a keep-alive HTTP/1.1 connection to it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hogsend_compiler::emit::GeneratedFile;
use hogsend_runtime::RuntimeConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sqlx::PgConnection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::project::SCHEMA;

/// A running in-process daemon.
pub(crate) struct Daemon {
    /// Where it listens.
    pub addr: SocketAddr,
    /// An ingest key (`Bearer …`) for its API.
    pub key: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<hogsend_runtime::Result<()>>,
}

impl Daemon {
    /// Creates an ingest key named `bench`, launches the daemon on database `url` with the
    /// compiled `files` (`configure` adjusts the configuration first) and waits until
    /// `/healthz` answers.
    pub(crate) async fn start(
        conn: &mut PgConnection,
        url: &str,
        files: Vec<GeneratedFile>,
        configure: impl FnOnce(&mut RuntimeConfig),
    ) -> Result<Daemon> {
        let (_, key) = hogsend_runtime::keys::create(
            conn,
            SCHEMA,
            hogsend_runtime::keys::Scope::Ingest,
            Some("bench"),
        )
        .await?;
        let (schema, api, schedule) = Default::default();
        let settings = hogsend_runtime::config::Settings {
            schema: &schema,
            api: &api,
            schedule: &schedule,
        };
        let mut config = RuntimeConfig::from_settings(settings, url, files, |_| None)
            .map_err(|e| anyhow!("{e}"))?;
        config.scheduler = false;
        config.rate_limit_per_second = 0;
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hogsend_runtime::launch(config, listener, async move {
            let _ = stopped.await;
        }));
        let daemon = Daemon {
            addr,
            key,
            stop,
            task,
        };
        let started = Instant::now();
        loop {
            let up = match Client::connect(addr, &daemon.key).await {
                Ok(mut probe) => matches!(
                    probe.send("GET", "/healthz", String::new()).await,
                    Ok((200, _))
                ),
                Err(_) => false,
            };
            if up {
                return Ok(daemon);
            }
            if started.elapsed() > Duration::from_secs(60) || daemon.task.is_finished() {
                daemon.stop().await?;
                bail!("the daemon did not come up");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Shuts the daemon down and waits for it; its error when it failed.
    pub(crate) async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .context("daemon task")?
            .context("the daemon failed")?;
        Ok(())
    }
}

/// A keep-alive HTTP/1.1 connection to the daemon.
pub(crate) struct Client {
    sender: SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    auth: String,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr, key: &str) -> Result<Client> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Client {
            sender,
            addr,
            auth: format!("Bearer {key}"),
        })
    }

    /// Sends one request; returns the status and the body.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: String,
    ) -> Result<(u16, String)> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::AUTHORIZATION, &self.auth)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}
