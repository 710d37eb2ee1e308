//! What an ingest route does with a request before anything reaches the database, as one
//! pure function: the body decoded as the route's extractor decodes it ([`super::body`]),
//! then parsed and validated by the route's payload family (`ingest::parse_*`), with the
//! route's header checks. What it accepts is what the route writes; what it refuses is the
//! route's answer, always a 4xx. The handlers call the same pieces; the fuzz targets
//! (`fuzz/fuzz_targets/ingest_*.rs`) and `engine-tests/tests/ingest_fuzz.rs` call this.

use super::body;
use super::error::ApiError;
use super::events::idempotency_key;
use crate::ingest::{self, Payload};
use chrono::{DateTime, Utc};

/// An ingest route, by the payload family it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestRoute {
    /// `POST /v1/events` (strict `Content-Type`, `Idempotency-Key`).
    Events,
    /// A Segment-spec route: `Some(kind)` for `/v1/track` (`"track"`), `/v1/identify`, …;
    /// `None` for `/v1/batch` and `/v1/import`, whose calls carry their own `type`.
    Segment(Option<&'static str>),
    /// PostHog's capture API (`/batch/`, `/e/`, …): JSON, gzip or form bodies.
    Capture,
    /// `POST /v1/webhooks/posthog`.
    PosthogWebhook,
}

impl IngestRoute {
    /// Every route, with each Segment kind.
    pub const ALL: [IngestRoute; 10] = [
        IngestRoute::Events,
        IngestRoute::Segment(None),
        IngestRoute::Segment(Some("track")),
        IngestRoute::Segment(Some("identify")),
        IngestRoute::Segment(Some("alias")),
        IngestRoute::Segment(Some("page")),
        IngestRoute::Segment(Some("screen")),
        IngestRoute::Segment(Some("group")),
        IngestRoute::Capture,
        IngestRoute::PosthogWebhook,
    ];
}

/// The parts of a request an ingest route reads besides its key.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawRequest<'a> {
    /// The `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// The query string (the capture API reads `compression`).
    pub query: Option<&'a str>,
    /// The `Idempotency-Key` header (`/v1/events`).
    pub idempotency_key: Option<&'a str>,
    /// The body, after `Content-Encoding` is undone.
    pub body: &'a [u8],
}

/// Decodes, parses and validates `request` as `route` does, at the receive time `received`.
pub fn parse(
    route: IngestRoute,
    request: &RawRequest<'_>,
    received: DateTime<Utc>,
) -> Result<Payload, ApiError> {
    let invalid = |problems: Vec<ingest::FieldError>| ApiError::invalid(&problems);
    match route {
        IngestRoute::Events => {
            let idempotency = idempotency_key(request.idempotency_key)?;
            let value = body::json(request.content_type, request.body)?;
            ingest::parse_events(&value, idempotency, received).map_err(invalid)
        }
        IngestRoute::Segment(kind) => {
            let value = body::any_json(request.body)?;
            ingest::parse_segment(&value, kind, received).map_err(invalid)
        }
        IngestRoute::Capture => {
            let value = body::capture(request.content_type, request.query, request.body)?;
            // The key may be in the body; finding it must not fail on any body either.
            let _ = ingest::capture_key(&value);
            ingest::parse_capture(&value, received).map_err(invalid)
        }
        IngestRoute::PosthogWebhook => {
            let value = body::json(request.content_type, request.body)?;
            ingest::parse_posthog(&value, received).map_err(invalid)
        }
    }
}
