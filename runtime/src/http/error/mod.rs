//! The one error shape of the API: `{"error": {"code", "message", "details"}}`.
//!
//! Every 4xx the daemon sends goes through [`ApiError`], including axum's own rejections
//! (malformed JSON, wrong content type, oversize body, unknown route or method). A 500 is
//! logged with an incident id and answered with that id only: internals never leak. The
//! codes, their statuses and meanings are one list: [`registry`].

mod registry;

pub use registry::ErrorCode;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// The stable code; it fixes the HTTP status.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
    /// One entry per problem (`index`, `field`, `message` for bad items).
    pub details: Vec<Value>,
    /// Seconds, for 429 and 503 (`Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An answer with this code (and so its status) and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Vec<Value>) -> ApiError {
        self.details = details;
        self
    }

    /// 400 with one detail per problem.
    pub fn invalid(problems: &[crate::ingest::FieldError]) -> ApiError {
        const SHOWN: usize = 100;
        let n = problems.len();
        let mut details: Vec<Value> = problems
            .iter()
            .take(SHOWN)
            .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
            .collect();
        if n > SHOWN {
            details
                .push(json!({"field": "", "message": format!("and {} more problems", n - SHOWN)}));
        }
        let items: std::collections::BTreeSet<usize> =
            problems.iter().filter_map(|p| p.index).collect();
        let message = if items.is_empty() {
            "the request is invalid; nothing was stored".to_owned()
        } else {
            format!(
                "{} invalid item{} ({} problem{}); nothing was stored",
                items.len(),
                if items.len() == 1 { "" } else { "s" },
                n,
                if n == 1 { "" } else { "s" }
            )
        };
        ApiError::new(ErrorCode::InvalidRequest, message).with_details(details)
    }

    /// 400 for a bad query or path parameter.
    pub fn bad_parameter(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError::new(
            ErrorCode::InvalidParameter,
            format!("invalid parameter `{field}`: {message}"),
        )
        .with_details(vec![json!({"field": field, "message": message})])
    }

    /// 500: logs `err` under a fresh incident id and answers with the id only.
    pub fn internal(err: impl std::fmt::Display) -> ApiError {
        let incident = uuid::Uuid::new_v4();
        tracing::error!(%incident, "internal error: {err}");
        ApiError::new(
            ErrorCode::Internal,
            format!("internal error (incident {incident}); the details are in the server log"),
        )
    }
}

impl From<crate::Error> for ApiError {
    fn from(err: crate::Error) -> ApiError {
        if err.is_unavailable() {
            tracing::warn!("database unavailable: {err}");
            let mut answer = ApiError::new(
                ErrorCode::Unavailable,
                "the database is unavailable or busy; retry shortly",
            );
            answer.retry_after = Some(2);
            return answer;
        }
        ApiError::internal(err)
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorObject,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    /// The stable code (see the registry in `runtime/src/http/error/registry.rs`).
    pub code: ErrorCode,
    /// For people; may change between releases.
    pub message: String,
    /// One object per problem: `index`, `field`, `message` for invalid items; `field`,
    /// `message` for a parameter; `line`, `column`, `message` for malformed JSON; `check`,
    /// `message` for `/readyz`.
    #[schema(value_type = Vec<Object>)]
    pub details: Vec<Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorObject {
                code: self.code,
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.code.status(), axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
