//! Ingest: a request of one of the payload families → validated [`Item`]s → one set-based
//! transaction → the touched contacts queued for the real-time pass.
//!
//! The steps, each in its own module:
//!
//! 1. **validate** ([`payload`] per family, field readers in [`validate`]): every item is
//!    checked before anything is written, and a request with any bad item is refused whole
//!    with one [`FieldError`] per problem (item index and field);
//! 2. **resolve identities**, 3. **insert contacts and patches**, 4. **insert events**
//!    ([`write`]): a handful of statements per request whatever its size; known message
//!    ids are skipped first, so replays store nothing (a concurrent replay is caught by the
//!    unique index and retried);
//! 5. **queue**: the HTTP layer hands [`Outcome::keys`] to the real-time pass
//!    (`http::events::accept`).

mod item;
pub mod payload;
#[cfg(test)]
mod tests;
pub mod validate;
mod write;

pub use item::{Item, Outcome, Payload};
pub use payload::hogsend::parse_events;
pub use payload::posthog::{capture_key, parse_capture, parse_posthog};
pub use payload::segment::parse_segment;
pub use validate::{normalize_email, FieldError, RESERVED_PREFIXES};
pub use write::{backoff, resolve_key, should_retry, upsert, upsert_contacts, write, Upserted};

/// The most items one request may carry.
pub const MAX_BATCH: usize = 1000;
