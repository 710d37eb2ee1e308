//! The project's `test` blocks, checked and resolved for `hogsend test` (docs/language.md#tests):
//! instants as UTC seconds, properties as JSON, names resolved. Unlike the IR, a test keeps the
//! file and span of every expectation, because a failed expectation is reported there.

use hogsend_dsl::Span;
use serde_json::{Map, Value};

/// One `test "…" { … }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// The test's name as written (unique in the project).
    pub name: String,
    /// The file it is in (the source set's path).
    pub file: String,
    /// The span of the name.
    pub span: Span,
    /// The declared contacts, created before the first instant.
    pub contacts: Vec<TestContact>,
    /// The instants in order (strictly increasing).
    pub steps: Vec<TestStep>,
}

/// A declared contact: `contact u1 { email: "…", plan: "pro" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestContact {
    /// The contact's key (stored as its external id).
    pub key: String,
    /// The `email` field, stored as the contact's address.
    pub email: Option<String>,
    /// Every other field.
    pub properties: Map<String, Value>,
}

/// One `at` block.
#[derive(Debug, Clone, PartialEq)]
pub struct TestStep {
    /// The instant, seconds since 1970-01-01T00:00:00Z.
    pub at: i64,
    /// The span of the instant as written.
    pub span: Span,
    /// Events and property changes, in source order; recorded before the tick.
    pub changes: Vec<TestChange>,
    /// Checked after the tick, in source order.
    pub expectations: Vec<TestExpectation>,
}

/// Something that happens to a contact at an instant.
#[derive(Debug, Clone, PartialEq)]
pub enum TestChange {
    /// `u1 did E { … }`: an event at the instant.
    Event {
        key: String,
        event: String,
        properties: Map<String, Value>,
    },
    /// `u1 set { … }`: a shallow merge of the properties (`null` removes a key); an `email`
    /// field sets (or, when `null`, clears) the address.
    Set {
        key: String,
        email: Option<Option<String>>,
        properties: Map<String, Value>,
    },
    /// `u1 subscribe L` / `u1 unsubscribe L`: the contact's row of `subscriptions` for the list
    /// (`*`: every list).
    Subscription {
        key: String,
        list_id: String,
        subscribed: bool,
    },
    /// `u1 suppress REASON`: the contact's address joins `suppressions`.
    Suppress { key: String, reason: String },
}

/// `expect u1 [not] …`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestExpectation {
    pub key: String,
    pub negated: bool,
    pub kind: ExpectationKind,
    /// The span of the whole `expect …` line.
    pub span: Span,
    /// The expectation as the formatter prints it.
    pub text: String,
}

/// What an expectation claims; see docs/language.md#tests for each one's meaning.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpectationKind {
    /// An active member of the bucket after the tick.
    InBucket(String),
    /// A run of the journey is in flight (active or waiting).
    InJourney(String),
    /// Joined the bucket at this instant.
    Entered(String),
    /// Left the bucket at this instant (for this reason, when given: `criteria`, `max_dwell`).
    Left {
        bucket: String,
        reason: Option<String>,
    },
    /// The bucket's dwell reaction `label` fired at this instant.
    Dwell { bucket: String, label: String },
    /// A message from the template was created for the contact (by this instant), not skipped.
    Received(String),
    /// Exactly this many messages from the template, not skipped, by this instant.
    ReceivedTimes { template: String, times: i64 },
    /// A message from the template was skipped (for this stored reason, when given).
    Skipped {
        template: String,
        reason: Option<String>,
    },
    /// `subscribed L` / `unsubscribed L` (`list` is `None` for `all`): see
    /// docs/language.md#tests for what each state means.
    Subscription {
        list: Option<String>,
        subscribed: bool,
    },
    /// The contact's latest run of the journey has this status (and is at this step).
    JourneyStatus {
        journey: String,
        status: String,
        step: Option<String>,
        /// The run's `wake_at`, seconds since the epoch (`waiting until …`).
        wake_at: Option<i64>,
    },
}

/// Seconds since the epoch of a proleptic Gregorian UTC date and time.
pub fn epoch_seconds(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32) -> i64 {
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + i64::from(h) * 3_600 + i64::from(m) * 60 + i64::from(s)
}

#[cfg(test)]
mod tests {
    use super::epoch_seconds;

    #[test]
    fn epoch_seconds_matches_known_instants() {
        assert_eq!(epoch_seconds(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(epoch_seconds(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(epoch_seconds(2027, 1, 4, 10, 0, 0), 1_799_056_800);
        assert_eq!(epoch_seconds(2024, 2, 29, 23, 59, 59), 1_709_251_199);
    }
}
