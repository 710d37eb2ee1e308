//! The HTTP server loop: accepts connections, bounds how long a client may take, and shuts
//! down within a grace period.
//!
//! `axum::serve` reads request headers with no deadline and waits for every connection on
//! shutdown, so one client that sends half a request holds the daemon forever. Here:
//!
//! - each connection has a header deadline (`header_timeout`): a client that does not send
//!   a whole request head within it — including an idle keep-alive connection — is
//!   disconnected;
//! - the body and whole-request deadlines are enforced per request by
//!   [`crate::http::timeouts`];
//! - on shutdown the listener is closed at once, idle connections are closed, requests in
//!   flight may finish for at most `grace`, and whatever is left is then dropped (its
//!   transaction, never committed, rolls back).

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long clients may take, and how long shutdown may drain.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// A request head (request line and headers) must arrive within this, counted from
    /// the moment the connection is ready for it; idle keep-alive connections close then.
    pub header_timeout: Duration,
    /// The longest shutdown waits for requests in flight.
    pub grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains (see the module doc).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (close_tx, close_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                // The peer address, for the per-address rate limit of publishable keys.
                let service = TowerToHyperService::new(
                    tower::ServiceBuilder::new()
                        .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                            req
                        })
                        .service(app.clone()),
                );
                let mut close = close_rx.clone();
                connections.spawn(async move {
                    let mut builder = http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(limits.header_timeout)
                        .keep_alive(true);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        result = conn.as_mut() => log_connection_end(result),
                        () = async { let _ = close.wait_for(|closing| *closing).await; } => {
                            // Finish the request in flight (if any), then close.
                            conn.as_mut().graceful_shutdown();
                            log_connection_end(conn.await);
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    let _ = close_tx.send(true);
    let open = connections.len();
    tracing::info!(
        connections = open,
        grace = ?limits.grace,
        "shutting down: draining requests"
    );
    let drained = tokio::time::timeout(limits.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "grace period over: closing the connections still open"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

fn log_connection_end(result: hyper::Result<()>) {
    if let Err(e) = result {
        if e.is_timeout() {
            tracing::debug!("connection closed: no request head within the header timeout");
        } else {
            tracing::debug!("connection ended: {e}");
        }
    }
}
