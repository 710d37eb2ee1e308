//! A Resend-compatible API for tests, in the test's process: `POST /emails` records every
//! request and behaves as Resend does where the delivery worker's correctness depends on it.
//!
//! - The bearer key must be the one given to [`FakeResend::start`] (else 401).
//! - `Idempotency-Key`: a key seen before is answered with the id of its first request and
//!   never counts as a second delivery ([`FakeResend::deliveries`] holds one entry per key).
//! - Scripted failures per recipient ([`FakeResend::fail`]): the next answers for an
//!   address, e.g. a 429 with `Retry-After`, a 503, or a 422 for ever.
//! - Stalling ([`FakeResend::stall_after`]): past N deliveries the server still accepts a
//!   message (records it, gives it an id) but holds the answer until
//!   [`FakeResend::release`] — the window in which a daemon killed has had its message
//!   accepted without learning so.
//! - Forgetting ([`FakeResend::forget_bodies`]): for load, keeps only the keys and ids, so
//!   the server's memory does not grow with the messages' bodies.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::watch;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The JSON body.
    pub body: Value,
}

/// A scripted answer.
#[derive(Debug, Clone, Copy)]
pub enum Scripted {
    /// This status with a Resend-shaped error body (and `Retry-After: 1` for 429).
    Status(u16),
    /// This status, for every later request to the address too.
    Always(u16),
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    /// (idempotency key, id, body), in order of first acceptance.
    deliveries: Vec<(String, String, Value)>,
    by_key: HashMap<String, String>,
    scripts: HashMap<String, VecDeque<Scripted>>,
    stall_after: Option<usize>,
    /// Keep no request and no body (see [`FakeResend::forget_bodies`]).
    forget: bool,
}

struct Shared {
    api_key: String,
    inner: Mutex<Inner>,
    released: watch::Sender<u64>,
}

/// The running server (stopped when dropped).
pub struct FakeResend {
    /// Where it listens: use `http://{addr}` as `[email] http_url`.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeResend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeResend {
    /// Starts a server accepting `api_key` on 127.0.0.1, any port.
    pub async fn start(api_key: &str) -> FakeResend {
        let shared = Arc::new(Shared {
            api_key: api_key.to_string(),
            inner: Mutex::new(Inner::default()),
            released: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/emails", post(emails))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API");
        let addr = listener.local_addr().expect("its address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeResend { addr, shared, task }
    }

    /// The base URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Scripts the next answers for messages to `to`.
    pub fn fail(&self, to: &str, answers: &[Scripted]) {
        self.inner()
            .scripts
            .entry(to.to_string())
            .or_default()
            .extend(answers.iter().copied());
    }

    /// Holds the answer of every message accepted after the first `n` (see the module).
    pub fn stall_after(&self, n: usize) {
        self.inner().stall_after = Some(n);
    }

    /// Answers the held requests and stops stalling.
    pub fn release(&self) {
        self.inner().stall_after = None;
        self.shared.released.send_modify(|n| *n += 1);
    }

    /// From now on, records no request and keeps no body: [`FakeResend::requests`] stays
    /// empty and [`FakeResend::deliveries`] holds `null` bodies (the keys and ids are kept:
    /// a repeated key is still answered with its first id).
    pub fn forget_bodies(&self) {
        self.inner().forget = true;
    }

    /// How many distinct messages were delivered.
    pub fn delivered(&self) -> usize {
        self.inner().deliveries.len()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner().requests.clone()
    }

    /// The messages delivered: one (idempotency key, id, body) per distinct key.
    pub fn deliveries(&self) -> Vec<(String, String, Value)> {
        self.inner().deliveries.clone()
    }

    /// How many requests are held by [`FakeResend::stall_after`] right now.
    pub fn stalled(&self) -> usize {
        let inner = self.inner();
        match inner.stall_after {
            Some(n) => inner.deliveries.len().saturating_sub(n),
            None => 0,
        }
    }
}

fn error(status: u16, name: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (
        code,
        Json(json!({"statusCode": status, "name": name, "message": message})),
    )
        .into_response();
    if status == 429 {
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
    }
    r
}

async fn emails(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let key = header("idempotency-key");
    let to = body["to"][0].as_str().unwrap_or_default().to_string();
    let stall_at = {
        let mut inner = shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !inner.forget {
            inner.requests.push(Recorded {
                idempotency_key: key.clone(),
                body: body.clone(),
            });
        }
        if header("authorization").as_deref() != Some(&format!("Bearer {}", shared.api_key)) {
            return error(401, "missing_api_key", "API key is invalid");
        }
        if body["from"].as_str().is_none() || to.is_empty() {
            return error(422, "validation_error", "Missing `from` or `to` field");
        }
        if let Some(script) = inner.scripts.get_mut(&to) {
            match script.front().copied() {
                Some(Scripted::Status(status)) => {
                    script.pop_front();
                    return error(status, "scripted", "scripted failure");
                }
                Some(Scripted::Always(status)) => {
                    return error(status, "validation_error", "scripted refusal");
                }
                None => {}
            }
        }
        let key = key.unwrap_or_else(|| format!("no-key-{}", inner.by_key.len()));
        if let Some(id) = inner.by_key.get(&key) {
            // Resend answers a repeated key with the first request's result.
            return (StatusCode::OK, Json(json!({"id": id}))).into_response();
        }
        let id = format!("re_{:06}", inner.deliveries.len() + 1);
        inner.by_key.insert(key.clone(), id.clone());
        let body = if inner.forget { Value::Null } else { body };
        inner.deliveries.push((key, id.clone(), body));
        let stall = inner
            .stall_after
            .is_some_and(|n| inner.deliveries.len() > n);
        (id, stall)
    };
    let (id, stall) = stall_at;
    if stall {
        let mut released = shared.released.subscribe();
        let _ = released.changed().await;
    }
    (StatusCode::OK, Json(json!({"id": id}))).into_response()
}
