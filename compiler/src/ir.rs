//! The checked program: what the checker produces and SQL planning consumes.
//!
//! Everything here is resolved and typed: ids are known to exist, durations are positive
//! seconds, property comparisons carry typed literals, event filters cannot contain event
//! atoms. No spans and no AST nodes (the plain `CmpOp` value is shared) — only the `Origin`
//! of each definition, for generated-file headers. Definitions are sorted by id so that
//! everything downstream is deterministic.

/// The validated bucket id the IR carries (from the schema crate, which the runtime shares).
pub use hogsend_schema::BucketId;

/// A positive number of seconds.
pub type Seconds = i64;

/// A checked project.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    /// Every bucket, sorted by id.
    pub buckets: Vec<Bucket>,
    /// Every journey, sorted by id.
    pub journeys: Vec<Journey>,
    /// Every template found under `templates/`, sorted by id.
    pub templates: Vec<Template>,
    /// Every list (subscription category), sorted by id.
    pub lists: Vec<List>,
    /// Every campaign (broadcast), sorted by id.
    pub campaigns: Vec<Campaign>,
}

/// Where a definition came from: the file path relative to the project root (always with
/// `/` separators) and the 1-based line of its keyword.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    pub line: u32,
}

/// A template found on disk (`templates/<id>.html` and/or `.txt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: String,
    pub has_html: bool,
    pub has_text: bool,
    /// The front matter's `category`: a declared list id or `transactional`.
    pub category: Option<String>,
    /// What `migrate` deploys: the front matter and the bodies (without the front matter).
    pub deployed: hogsend_mail::DeployedTemplate,
}

/// A checked list (docs/language.md#lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `default subscribed` (the default) or `default unsubscribed` (opt-in).
    pub default_subscribed: bool,
    pub origin: Origin,
}

/// A checked campaign (docs/language.md#campaigns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: String,
    /// The `name`, or the id when none is written.
    pub name: String,
    pub audience: Audience,
    pub template: String,
    /// None: started only through the API.
    pub send_at: Option<SendAt>,
    pub origin: Origin,
}

/// Who a campaign goes to: a bucket's members or a list's subscribers (by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Bucket(String),
    List(String),
}

/// When a campaign goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendAt {
    /// An instant, as seconds since the Unix epoch (UTC).
    Instant(i64),
    /// A wall-clock time (`YYYY-MM-DD HH:MM:SS`) in each contact's zone, named by the
    /// contact property at `zone` (a path of JSON keys).
    Local { local: String, zone: Vec<String> },
}

/// A checked bucket (docs/language.md#buckets).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Validated once, by the checker; the plan writes it into SQL names bare.
    pub id: BucketId,
    pub name: Option<String>,
    pub description: Option<String>,
    pub criteria: Pred,
    pub entry: EntryPolicy,
    pub min_dwell: Option<Seconds>,
    pub max_dwell: Option<Seconds>,
    pub enabled: bool,
    /// Dwell rules declared by `on dwell …` reactions, one per distinct label, sorted by label.
    pub dwell: Vec<DwellRule>,
    /// Reactions in source order.
    pub reactions: Vec<Reaction>,
    pub origin: Origin,
}

/// How often a contact may join (buckets) or start a run (journeys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPolicy {
    Unlimited,
    Once,
    /// Re-entry only once this long has passed since the last leave (buckets) or the last
    /// run's start (journeys).
    OncePer(Seconds),
}

/// `after` fires once per membership; `every` fires repeatedly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DwellKind {
    After,
    Every,
}

/// A dwell timer of a bucket: `on dwell after 3d as label`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DwellRule {
    /// The label (`after_3d` / `every_7d` by default).
    pub label: String,
    pub kind: DwellKind,
    pub period: Seconds,
}

/// What a reaction reacts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReactionOn {
    Enter { first_only: bool },
    Leave { because: Option<LeaveReason> },
    Dwell { label: String },
}

/// A leave reason a reaction can filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    Criteria,
    MaxDwell,
}

/// A bucket reaction: an inline journey with `entry unlimited`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    pub on: ReactionOn,
    pub steps: Vec<Step>,
}

/// A condition over one contact at an instant (docs/language.md#conditions).
#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    /// All must hold (at least two children; `all {}` of one child is lowered to the child).
    And(Vec<Pred>),
    /// Any must hold (at least two children).
    Or(Vec<Pred>),
    Not(Box<Pred>),
    /// `did …` / `count …`
    Event(EventAtom),
    /// `contact.path …`
    Prop(Prop),
    /// `trigger.path …`: a property of the event that started the journey run (journey
    /// conditions only; missing in a run not started by an event).
    Trigger(Prop),
    /// `opened TEMPLATE` (template id)
    Opened(String),
    /// `clicked TEMPLATE` (template id)
    Clicked(String),
}

/// `did E [where f] [window]` or `count E [where f] [window] CMP n`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventAtom {
    pub event: String,
    pub filter: Option<EventPred>,
    pub window: Window,
    pub test: EventTest,
}

/// What an event atom asks of the matching events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTest {
    /// `did`: at least one.
    Exists,
    /// `count … CMP n`
    Count(CmpOp, i64),
}

/// Which events an atom looks at, relative to the evaluation instant `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// `occurred_at <= T`
    Ever,
    /// `T - D <= occurred_at <= T`
    Within(Seconds),
    /// Since the journey run's entry (journeys only; the checker rejects it elsewhere).
    SinceEntry,
}

/// A condition over one event's properties (the `where (…)` of an event atom or trigger).
#[derive(Debug, Clone, PartialEq)]
pub enum EventPred {
    And(Vec<EventPred>),
    Or(Vec<EventPred>),
    Not(Box<EventPred>),
    /// `event.path …`
    Prop(Prop),
}

/// A test on a JSON property reached by `path` (object keys, outermost first).
#[derive(Debug, Clone, PartialEq)]
pub struct Prop {
    pub path: Vec<String>,
    pub test: PropTest,
}

/// The property tests, with the semantics of docs/language.md#meaning-at-an-instant:
/// `Compare(Eq)` is strict-typed equality (numbers by value), `Compare(Ne)` is its negation
/// (true when missing), ordering operators hold only when both sides are numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum PropTest {
    Compare(CmpOp, Scalar),
    /// Present and not JSON null.
    Exists,
    /// A string containing this substring (case-sensitive).
    Contains(String),
    /// Equal to one of these (at least one).
    In(Vec<Scalar>),
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    String(String),
    /// A JSON number, as validated decimal text (`42`, `-3`, `2.5`).
    Number(String),
    Bool(bool),
}

/// A comparison operator: the language's own plain value (no span), so its text
/// ([`CmpOp::as_str`]) has one definition.
pub use hogsend_dsl::ast::CmpOp;

/// A checked journey (docs/language.md#journeys).
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub trigger: JourneyTrigger,
    /// Defaults to `Once`.
    pub entry: EntryPolicy,
    pub exit_when: Option<Pred>,
    pub steps: Vec<Step>,
    pub origin: Origin,
}

/// What starts a run.
#[derive(Debug, Clone, PartialEq)]
pub enum JourneyTrigger {
    Event {
        event: String,
        filter: Option<EventPred>,
    },
    /// A join of this bucket (id).
    Enter(String),
    /// A leave of this bucket (id).
    Leave(String),
    /// A dwell firing of this bucket's label.
    Dwell { bucket: String, label: String },
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// A journey step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Template id.
    Send(String),
    Wait(Seconds),
    WaitUntil {
        cond: Pred,
        at_most: Seconds,
    },
    /// The next local `hour:minute` on one of `days` (empty: any day), in the time zone
    /// named by the contact property at `zone` (else the project's time zone).
    WaitUntilTime {
        hour: u8,
        minute: u8,
        days: Vec<Weekday>,
        zone: Option<Vec<String>>,
    },
    If {
        branches: Vec<(Pred, Vec<Step>)>,
        otherwise: Vec<Step>,
    },
    /// Journey id.
    Start(String),
    /// Event name.
    Emit(String),
    Exit,
}
