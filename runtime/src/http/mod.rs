//! The HTTP API (docs/api.md): one router per feature, one error shape, shared state.

pub mod auth;
pub mod body;
pub mod buckets;
pub mod campaigns;
pub mod contacts;
pub mod email_webhooks;
pub mod error;
pub mod events;
pub mod extract;
pub mod ingest_request;
pub mod journeys;
pub mod lists;
pub mod messages;
pub mod openapi;
pub mod ops;
pub mod page;
pub mod posthog;
pub mod preferences;
pub mod runs;
pub mod segment;
pub mod subscriptions;
pub mod timeouts;
pub mod tracking;
pub mod unsubscribe;

use crate::config::RuntimeConfig;
use crate::metrics::Metrics;
use crate::realtime::Pending;
use crate::scheduler::TickHealth;
use auth::RateLimiter;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::Router;
use error::{ApiError, ErrorCode};
use sqlx::PgPool;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// The daemon's configuration.
    pub config: Arc<RuntimeConfig>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Contacts waiting for the real-time pass.
    pub pending: Arc<Pending>,
    /// The per-key rate limit.
    pub limiter: Arc<RateLimiter>,
    /// The per-source-address rate limit of publishable keys.
    pub ip_limiter: Arc<RateLimiter<std::net::IpAddr>>,
    /// The scheduler's last round, for `/readyz`.
    pub health: Arc<Mutex<TickHealth>>,
    /// When the daemon started.
    pub started: Instant,
    /// Email settings and the link signer.
    pub mail: Arc<crate::mail::MailState>,
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(ingest_routes(&state.config.cors_origins))
        .merge(contacts::router())
        .merge(buckets::router())
        .merge(journeys::router())
        .merge(runs::router())
        .merge(messages::router())
        .merge(campaigns::router())
        .merge(subscriptions::router())
        .merge(lists::router())
        .merge(email_webhooks::router())
        .merge(unsubscribe::router())
        .merge(preferences::router())
        .merge(tracking::router())
        .merge(ops::router())
        .merge(openapi::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestDecompressionLayer::new())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .layer(axum::middleware::from_fn_with_state(
            timeouts::RequestLimits {
                body: state.config.body_timeout,
                total: state.config.request_timeout,
            },
            timeouts::enforce,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take that method",
    )
}

/// `limit` query parameter: default 100, between 1 and 1,000.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_parameter(
            "limit",
            "must be between 1 and 1000",
        )),
    }
}

/// The ingest routes (hogsend's own, Segment's, PostHog's), with CORS headers for browser
/// SDKs when origins are configured (`HOGSEND_CORS_ORIGINS`).
fn ingest_routes(origins: &[String]) -> Router<AppState> {
    let routes = Router::new()
        .merge(events::router())
        .merge(segment::router())
        .merge(posthog::router());
    if origins.is_empty() {
        return routes;
    }
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    // The fallback for other methods is set before the layer, so a preflight (OPTIONS)
    // reaches the CORS layer instead of the router-wide 405.
    routes
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            CorsLayer::new()
                .allow_origin(allow_origin)
                .allow_methods([Method::POST, Method::OPTIONS])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::CONTENT_ENCODING,
                    HeaderName::from_static("idempotency-key"),
                ])
                // A page's script may read when to retry after a 429.
                .expose_headers([header::RETRY_AFTER])
                .max_age(std::time::Duration::from_secs(3600)),
        )
}
