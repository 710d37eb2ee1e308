//! What validation produces and the write consumes: [`Item`]s in a [`Payload`], and the
//! write's [`Outcome`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// One validated thing to write: an event, a contact update, an identity link, or several.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    /// The user id (external id), if given.
    pub user_id: Option<String>,
    /// The anonymous id, if given.
    pub anonymous_id: Option<String>,
    /// Fold the anonymous id's contact into the user id's (identify, alias).
    pub merge: bool,
    /// The event to store, if any (identify and alias store none).
    pub event: Option<String>,
    /// The event's properties.
    pub properties: Map<String, Value>,
    /// When it happened: already skew-corrected and clamped to the receive time.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The idempotency key of the event.
    pub message_id: Option<String>,
    /// Lower-cased and trimmed.
    pub email: Option<String>,
    /// A shallow patch of the contact's properties; `null` removes a key.
    pub contact: Map<String, Value>,
    /// Contact properties to set only where the contact has none yet (PostHog's
    /// `$set_once`); `contact` wins over them.
    pub contact_once: Map<String, Value>,
}

/// A validated request.
#[derive(Debug, Default)]
pub struct Payload {
    /// The items, in request order.
    pub items: Vec<Item>,
    /// Items of a kind hogsend accepts and ignores (Segment `group`).
    pub ignored: usize,
    /// Sent with a publishable key ([`Payload::restrict_to_publishable`]): a merge never
    /// folds an identified contact (one with an email address, or that absorbed another id).
    pub publishable: bool,
}

impl Payload {
    /// What a request made with a publishable key may do (docs/api.md, "Publishable keys"):
    /// store its events and patch its contacts' properties (what the events carry), but not
    /// set a contact's email address (a public key must not choose where mail goes), and
    /// never fold an identified contact into another (one with an email address, or that
    /// absorbed another id: PostHog's rule for `$identify`), so a visitor cannot take over a
    /// known person's history with `alias`.
    pub fn restrict_to_publishable(&mut self) {
        self.publishable = true;
        for item in &mut self.items {
            item.email = None;
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    /// Items accepted (including duplicates and ignored ones).
    pub accepted: usize,
    /// Events stored.
    pub stored: u64,
    /// Events not stored because their message id was already known.
    pub duplicates: u64,
    /// Contact keys whose data changed: the real-time pass re-evaluates them.
    #[serde(skip)]
    pub keys: Vec<String>,
}
