//! Per-request deadlines. The whole request (authentication, body, database work) must be
//! answered within `total`, else 503 `timeout` (the write may or may not have committed:
//! clients retry with the same message ids, which are idempotent). The body must arrive
//! within `body`, else 408 `body_timeout` and nothing is stored; [`super::extract::JsonBody`]
//! reads the deadline from the request's extensions. The request-head deadline is the
//! connection's (see `crate::server`).

use super::error::{ApiError, ErrorCode};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// The deadlines of one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// The body must be read within this.
    pub body: Duration,
    /// The answer must be ready within this.
    pub total: Duration,
}

/// The body deadline, as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// The middleware: sets the body deadline and enforces the total one.
pub async fn enforce(
    State(limits): State<RequestLimits>,
    mut req: Request,
    next: Next,
) -> Response {
    req.extensions_mut().insert(BodyTimeout(limits.body));
    match tokio::time::timeout(limits.total, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit = ?limits.total, "request timed out");
            let mut err = ApiError::new(
                ErrorCode::Timeout,
                format!(
                    "the request was not answered within {} s; it may or may not have been \
                     stored: retry with the same message ids",
                    limits.total.as_secs_f64()
                ),
            );
            err.retry_after = Some(1);
            err.into_response()
        }
    }
}

/// 408: the client did not send its body in time.
pub fn body_timed_out(limit: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::BodyTimeout,
        format!(
            "the request body did not arrive within {} s; nothing was stored",
            limit.as_secs_f64()
        ),
    )
}
