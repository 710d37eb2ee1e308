//! The payload families the API accepts, each turned into a validated [`Payload`] (or every
//! problem found) by the field readers of [`validate`]:
//!
//! - [`hogsend`]: hogsend's own `POST /v1/events` body;
//! - [`segment`]: the Segment spec (`/v1/track`, …, `/v1/batch`), as Segment and
//!   RudderStack SDKs send it;
//! - [`posthog`]: PostHog's webhook destination.
//!
//! [`Payload`]: super::Payload
//! [`validate`]: super::validate

pub mod hogsend;
pub mod posthog;
pub mod segment;
