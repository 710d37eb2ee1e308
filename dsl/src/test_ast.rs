//! The syntax tree of `test` blocks (docs/language.md#tests): contacts, instants, the actions
//! at each instant and the expectations checked after its tick. Re-exported by [`crate::ast`].

use crate::ast::{EventName, Ident, IntLit, LeaveReason, Literal, StringLit};
use crate::span::Span;

/// `test "name" { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestBlock {
    pub name: StringLit,
    /// Contacts and instants in source order.
    pub members: Vec<TestMember>,
    pub span: Span,
}

/// One line-level element of a test body.
#[derive(Debug, Clone, PartialEq)]
pub enum TestMember {
    Contact(ContactDecl),
    At(AtBlock),
}

/// `contact u1 { email: "u1@example.com", plan: "pro" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactDecl {
    /// The contact's key (its external id) and the name actions use.
    pub id: Ident,
    pub properties: Option<ObjectLit>,
    pub span: Span,
}

/// `{ key: value, … }`: JSON written in the language's literals.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectLit {
    pub fields: Vec<ObjectField>,
    pub span: Span,
}

/// `key: value` (the key bare, or quoted when it is not a plain word).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectField {
    pub key: StringLit,
    pub value: Value,
    pub span: Span,
}

/// A JSON value in a test: a literal, `null`, an object or a list.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Literal(Literal),
    Null(Span),
    Object(ObjectLit),
    List(Vec<Value>, Span),
}

impl Value {
    /// The span of the value.
    pub fn span(&self) -> Span {
        match self {
            Value::Literal(l) => l.span(),
            Value::Null(s) | Value::List(_, s) => *s,
            Value::Object(o) => o.span,
        }
    }
}

/// An instant, UTC: `2027-01-04`, `2027-01-04 10:00`, `2027-01-04 10:00:30`.
#[derive(Debug, Clone, PartialEq)]
pub struct DateTimeLit {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    /// Hour, minute and second, when a time was written.
    pub time: Option<(u8, u8, u8)>,
    pub span: Span,
}

/// Where an `at` block happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Instant {
    /// `at 2027-01-04 10:00`
    Absolute(DateTimeLit),
    /// `at +8d`: after the previous instant. `span` covers the `+`.
    Relative {
        after: crate::ast::Duration,
        span: Span,
    },
}

impl Instant {
    /// The span of the instant as written.
    pub fn span(&self) -> Span {
        match self {
            Instant::Absolute(d) => d.span,
            Instant::Relative { span, .. } => *span,
        }
    }
}

/// `at INSTANT { action* }`.
#[derive(Debug, Clone, PartialEq)]
pub struct AtBlock {
    pub at: Instant,
    pub actions: Vec<TestAction>,
    /// The span of the `{ … }` body.
    pub body_span: Span,
    pub span: Span,
}

/// One line of an `at` block.
#[derive(Debug, Clone, PartialEq)]
pub struct TestAction {
    pub kind: TestActionKind,
    pub span: Span,
}

/// What a test does or checks at an instant.
#[derive(Debug, Clone, PartialEq)]
pub enum TestActionKind {
    /// `u1 did app_opened` / `u1 did checkout.completed { amount: 120 }`
    Did {
        contact: Ident,
        event: EventName,
        properties: Option<ObjectLit>,
    },
    /// `u1 set { plan: "free", trial: null }` (shallow merge; `null` removes)
    Set {
        contact: Ident,
        properties: ObjectLit,
    },
    /// `u1 subscribe LIST` / `u1 unsubscribe LIST`, or `*` for every list: a row of
    /// `subscriptions` (`list` is `None` for `*`).
    Subscription {
        contact: Ident,
        list: Option<Ident>,
        subscribed: bool,
        /// The span of the list (or of the `*`).
        list_span: Span,
    },
    /// `u1 suppress complaint`: the contact's address joins `suppressions` for the reason.
    Suppress { contact: Ident, reason: Ident },
    /// `expect …`
    Expect(Expectation),
}

/// `expect u1 [not] …`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub contact: Ident,
    pub negated: bool,
    pub what: Expect,
}

/// What an expectation claims about a contact after the instant's tick.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// `in B`: an active member of bucket B
    InBucket(Ident),
    /// `in journey J`: a run of J in flight (active or waiting)
    InJourney(Ident),
    /// `entered B`: joined B at this instant
    Entered(Ident),
    /// `left B [because criteria | max_dwell]`: left B at this instant
    Left {
        bucket: Ident,
        because: Option<LeaveReason>,
    },
    /// `dwell B.label`: the dwell reaction `label` of B fired at this instant
    Dwell { bucket: Ident, label: Ident },
    /// `received T`: a message from template T was created for the contact (by now)
    Received(Ident),
    /// `received T N times`: exactly N messages from T, not skipped, by now
    ReceivedTimes { template: Ident, times: IntLit },
    /// `skipped T [because REASON [LIST]]`: a message from T was skipped (by now)
    Skipped {
        template: Ident,
        because: Option<SkipReason>,
    },
    /// `subscribed L` / `unsubscribed L`, or `all` (also written `*`) for the switch over
    /// every list: the contact's subscription state after the instant (`list` is `None` for
    /// `all`).
    Subscription {
        list: Option<Ident>,
        subscribed: bool,
        /// The span of the list id (or of `all` / `*`).
        list_span: Span,
    },
    /// `journey J STATUS [at "step"]`: the contact's latest run of J
    JourneyStatus {
        journey: Ident,
        status: RunStatus,
        step: Option<StringLit>,
        /// `waiting until INSTANT`: the run's `wake_at` (a `+D` counts from the `at` instant)
        until: Option<Instant>,
    },
}

/// Why a message was skipped: `no_email`, `suppressed`, `unsubscribed_all`,
/// `unsubscribed LIST`, `not_subscribed LIST`.
#[derive(Debug, Clone, PartialEq)]
pub struct SkipReason {
    pub reason: Ident,
    pub list: Option<Ident>,
    pub span: Span,
}

impl SkipReason {
    /// The reason as the outbox stores it: `no_email`, `unsubscribed:weekly`.
    pub fn stored(&self) -> String {
        match &self.list {
            Some(list) => format!("{}:{}", self.reason.name, list.name),
            None => self.reason.name.clone(),
        }
    }
}

/// A journey run's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Active,
    Waiting,
    Completed,
    Exited,
    Failed,
}

impl RunStatus {
    /// The status as written and as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Active => "active",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Exited => "exited",
            RunStatus::Failed => "failed",
        }
    }

    /// The status named `word`, if any.
    pub fn from_word(word: &str) -> Option<RunStatus> {
        Some(match word {
            "active" => RunStatus::Active,
            "waiting" => RunStatus::Waiting,
            "completed" => RunStatus::Completed,
            "exited" => RunStatus::Exited,
            "failed" => RunStatus::Failed,
            _ => return None,
        })
    }
}
