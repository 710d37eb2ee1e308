//! The untyped syntax tree of a `.hog` file: what the user wrote, with a span on every node.
//!
//! Names are kept as strings here; the compiler resolves them. Literal values are decoded
//! (string escapes resolved, durations split into parts) but not interpreted. Derived
//! equality compares spans too; use `SourceFile::without_spans` to compare trees parsed
//! from different text (the formatter's meaning-preservation property).

use crate::span::Span;
pub use crate::test_ast::*;

/// One parsed `.hog` file.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// Top-level definitions, in source order.
    pub items: Vec<Item>,
    /// Every `//` comment in the file, in source order (kept for the formatter).
    pub comments: Vec<Comment>,
}

/// A `// …` comment. `text` excludes the leading `//` but keeps everything after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

/// A top-level definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Bucket(Bucket),
    Journey(Journey),
    /// `test "…" { … }` (docs/language.md#tests)
    Test(TestBlock),
    List(List),
    /// `campaign ID { … }` (docs/language.md#campaigns)
    Campaign(Campaign),
}

impl Item {
    /// The span of the whole definition.
    pub fn span(&self) -> Span {
        match self {
            Item::Bucket(b) => b.span,
            Item::Journey(j) => j.span,
            Item::Test(t) => t.span,
            Item::List(l) => l.span,
            Item::Campaign(c) => c.span,
        }
    }
}

/// An identifier as written: a bucket, journey, template or label id.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal, with escapes already decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct StringLit {
    pub value: String,
    pub span: Span,
}

/// `true` / `false`.
#[derive(Debug, Clone, PartialEq)]
pub struct BoolLit {
    pub value: bool,
    pub span: Span,
}

/// A number as written (`42`, `-3`, `2.5`). `raw` is the validated source text.
#[derive(Debug, Clone, PartialEq)]
pub struct NumberLit {
    pub raw: String,
    pub span: Span,
}

/// A literal on the right of a comparison or inside `in [...]`.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(StringLit),
    Number(NumberLit),
    Bool(BoolLit),
}

impl Literal {
    /// The span of the literal.
    pub fn span(&self) -> Span {
        match self {
            Literal::String(s) => s.span,
            Literal::Number(n) => n.span,
            Literal::Bool(b) => b.span,
        }
    }
}

/// A duration unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DurationUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
}

impl DurationUnit {
    /// The unit's suffix as written in source (`s`, `m`, `h`, `d`, `w`).
    pub fn suffix(self) -> &'static str {
        match self {
            DurationUnit::Seconds => "s",
            DurationUnit::Minutes => "m",
            DurationUnit::Hours => "h",
            DurationUnit::Days => "d",
            DurationUnit::Weeks => "w",
        }
    }

    /// How many seconds one unit is.
    pub fn seconds(self) -> u64 {
        match self {
            DurationUnit::Seconds => 1,
            DurationUnit::Minutes => 60,
            DurationUnit::Hours => 3_600,
            DurationUnit::Days => 86_400,
            DurationUnit::Weeks => 604_800,
        }
    }
}

/// One `<integer><unit>` part of a duration.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationPart {
    pub value: u64,
    pub unit: DurationUnit,
}

/// A duration as written: `7d`, `1d12h`, or a (rejected by the checker) `-3d` / `0s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Duration {
    /// A leading `-` was written.
    pub negative: bool,
    /// The parts, largest unit first (the parser rejects any other order).
    pub parts: Vec<DurationPart>,
    pub span: Span,
}

impl Duration {
    /// The parts as written, without the sign (`1d12h`).
    pub fn parts_text(&self) -> String {
        self.parts
            .iter()
            .map(|p| format!("{}{}", p.value, p.unit.suffix()))
            .collect()
    }

    /// Total length in seconds, or `None` on overflow. Ignores `negative`.
    pub fn total_seconds(&self) -> Option<u64> {
        self.parts.iter().try_fold(0u64, |acc, p| {
            p.value
                .checked_mul(p.unit.seconds())
                .and_then(|s| acc.checked_add(s))
        })
    }
}

/// An event name: bare (`user.signed_up`) or quoted (`"Order Completed"`) in source.
/// The AST keeps only the name; the formatter decides whether quotes are needed.
#[derive(Debug, Clone, PartialEq)]
pub struct EventName {
    pub name: String,
    pub span: Span,
}

/// The object a property path reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRoot {
    /// `contact.…`
    Contact,
    /// `event.…` (only meaningful inside an event filter)
    Event,
    /// `trigger.…`: the properties of the event that started a journey run (only
    /// meaningful in a journey's conditions)
    Trigger,
}

/// One key of a property path (`plan`, or `"first name"` written quoted).
#[derive(Debug, Clone, PartialEq)]
pub struct PathSegment {
    pub name: String,
    pub span: Span,
}

/// `contact.address.country`, `contact."first name"`, `event.amount`, `trigger.plan`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub root: PathRoot,
    pub root_span: Span,
    /// At least one segment.
    pub segments: Vec<PathSegment>,
    pub span: Span,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    /// The operator as written in source.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }
}

/// An integer literal (the right side of `count … CMP n`).
#[derive(Debug, Clone, PartialEq)]
pub struct IntLit {
    pub value: i64,
    pub span: Span,
}

/// `where ( … )` after an event name.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub expr: Box<Expr>,
    pub span: Span,
}

/// `within D` or `since entry`.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowKind {
    Within(Duration),
    SinceEntry,
}

/// A time window on an event atom.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub kind: WindowKind,
    pub span: Span,
}

/// A condition (docs/language.md#conditions).
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// The shapes of a condition. `and`/`or` chains are flat (`a and b and c` is one `And` of
/// three); parentheses and `all {}`/`any {}` are kept as written so the formatter can
/// reproduce them.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// `a or b or …` (at least two operands)
    Or(Vec<Expr>),
    /// `a and b and …` (at least two operands)
    And(Vec<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `( a )`
    Paren(Box<Expr>),
    /// `all { a b … }` (at least one operand)
    All(Vec<Expr>),
    /// `any { a b … }` (at least one operand)
    Any(Vec<Expr>),
    /// `did E [where (…)] [within D | since entry]`
    Did {
        event: EventName,
        filter: Option<Filter>,
        window: Option<Window>,
    },
    /// `count E [where (…)] [within D | since entry] CMP n`
    Count {
        event: EventName,
        filter: Option<Filter>,
        window: Option<Window>,
        op: CmpOp,
        value: IntLit,
    },
    /// `PATH CMP LITERAL`
    Compare {
        path: Path,
        op: CmpOp,
        value: Literal,
    },
    /// `PATH exists`
    Exists(Path),
    /// `PATH contains "s"`
    Contains(Path, StringLit),
    /// `PATH in [a, b, …]` (at least one literal)
    In(Path, Vec<Literal>),
    /// `opened TEMPLATE`
    Opened(Ident),
    /// `clicked TEMPLATE`
    Clicked(Ident),
}

/// `entry unlimited | once | once per D`.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryPolicy {
    Unlimited,
    Once,
    OncePer(Duration),
}

/// A bucket definition (docs/language.md#buckets).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub id: Ident,
    /// Fields and reactions in source order. Duplicates are kept; the checker reports them.
    pub members: Vec<BucketMember>,
    pub span: Span,
}

/// `list ID { name "…" description "…" default subscribed|unsubscribed }`: a subscription
/// category (docs/language.md#lists).
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    pub id: Ident,
    /// Fields in source order. Duplicates are kept; the checker reports them.
    pub fields: Vec<ListField>,
    pub span: Span,
}

/// One field of a list body.
#[derive(Debug, Clone, PartialEq)]
pub struct ListField {
    pub kind: ListFieldKind,
    /// The span of the field's keyword alone.
    pub keyword_span: Span,
    pub span: Span,
}

/// The list fields.
#[derive(Debug, Clone, PartialEq)]
pub enum ListFieldKind {
    Name(StringLit),
    Description(StringLit),
    /// `default subscribed` (opt-out) or `default unsubscribed` (opt-in).
    Default(ListDefault),
}

/// A list's `default`, with the span of its value.
#[derive(Debug, Clone, PartialEq)]
pub struct ListDefault {
    /// True for `subscribed`.
    pub subscribed: bool,
    pub span: Span,
}

/// `campaign ID { name "…" audience list L template T send_at … }`: a broadcast
/// (docs/language.md#campaigns).
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub id: Ident,
    /// Fields in source order. Duplicates are kept; the checker reports them.
    pub fields: Vec<CampaignField>,
    pub span: Span,
}

/// One field of a campaign body.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignField {
    pub kind: CampaignFieldKind,
    /// The span of the field's keyword alone.
    pub keyword_span: Span,
    pub span: Span,
}

/// The campaign fields.
#[derive(Debug, Clone, PartialEq)]
pub enum CampaignFieldKind {
    Name(StringLit),
    /// `audience bucket B` or `audience list L`.
    Audience(Audience),
    /// `template T`
    Template(Ident),
    /// `send_at 2027-03-01T09:00:00Z` or `send_at 2027-03-01 09:00 in contact.timezone`.
    SendAt(SendAt),
}

/// Who a campaign goes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Audience {
    /// True for `audience list L`, false for `audience bucket B`.
    pub is_list: bool,
    /// The bucket or list id.
    pub id: Ident,
}

/// When a campaign goes out.
#[derive(Debug, Clone, PartialEq)]
pub enum SendAt {
    /// An RFC 3339 instant, `2027-03-01T09:00:00Z` or `2027-03-01T09:00:00+02:00`.
    Instant {
        /// The local date and time as written.
        at: DateTimeLit,
        /// The UTC offset written, in minutes (`Z` is 0).
        offset_minutes: i16,
        span: Span,
    },
    /// `2027-03-01 09:00 in contact.timezone`: that wall-clock time in each contact's zone,
    /// named by the contact property `zone` (the path after `contact.`).
    Local {
        at: DateTimeLit,
        zone: Vec<String>,
        span: Span,
    },
}

impl SendAt {
    /// The span of the value as written.
    pub fn span(&self) -> Span {
        match self {
            SendAt::Instant { span, .. } | SendAt::Local { span, .. } => *span,
        }
    }
}

/// One line-level element of a bucket body.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketMember {
    Field(BucketField),
    Reaction(Reaction),
}

/// A `keyword value` field of a bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketField {
    pub kind: BucketFieldKind,
    /// The span of the field keyword alone (for "duplicate field" diagnostics).
    pub keyword_span: Span,
    pub span: Span,
}

/// The bucket fields.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketFieldKind {
    Name(StringLit),
    Description(StringLit),
    Criteria(Expr),
    Entry(EntryPolicy),
    MinDwell(Duration),
    MaxDwell(Duration),
    Enabled(BoolLit),
}

/// Why a member left, as named in `on leave because …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    Criteria,
    MaxDwell,
}

/// What transition a reaction reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum ReactionTrigger {
    /// `on enter` / `on enter first`
    Enter { first: bool },
    /// `on leave` / `on leave because criteria|max_dwell`
    Leave { because: Option<LeaveReason> },
    /// `on dwell after D [as label]`
    DwellAfter {
        after: Duration,
        label: Option<Ident>,
    },
    /// `on dwell every D [as label]`
    DwellEvery {
        every: Duration,
        label: Option<Ident>,
    },
}

/// `on … { steps }` inside a bucket: an inline journey.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaction {
    pub trigger: ReactionTrigger,
    /// The span of `on …` up to (not including) the body.
    pub trigger_span: Span,
    pub body: Block,
    pub span: Span,
}

/// A journey definition (docs/language.md#journeys).
#[derive(Debug, Clone, PartialEq)]
pub struct Journey {
    pub id: Ident,
    /// Headers and steps in source order. The parser accepts headers after steps; the checker
    /// decides what is allowed.
    pub members: Vec<JourneyMember>,
    pub span: Span,
}

/// One line-level element of a journey body.
#[derive(Debug, Clone, PartialEq)]
pub enum JourneyMember {
    Header(JourneyHeader),
    Step(Step),
}

/// A journey header line.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyHeader {
    pub kind: JourneyHeaderKind,
    /// The span of the header keyword(s) alone.
    pub keyword_span: Span,
    pub span: Span,
}

/// The journey headers.
#[derive(Debug, Clone, PartialEq)]
pub enum JourneyHeaderKind {
    Name(StringLit),
    Description(StringLit),
    Trigger(Trigger),
    Entry(EntryPolicy),
    /// `exit when COND`
    ExitWhen(Expr),
}

/// What starts a journey run.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// `trigger event E [where (…)]`
    Event {
        event: EventName,
        filter: Option<Filter>,
    },
    /// `trigger enter B`
    Enter(Ident),
    /// `trigger leave B`
    Leave(Ident),
    /// `trigger dwell B.label`
    Dwell { bucket: Ident, label: Ident },
}

/// `{ step* }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub steps: Vec<Step>,
    pub span: Span,
}

/// A journey step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    pub span: Span,
}

/// A day of the week, for `wait until 09:00 on mon, wed`.
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

impl Weekday {
    /// The three-letter name as written in source.
    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }
}

/// `on weekdays` / `on weekends` / `on mon, wed`.
#[derive(Debug, Clone, PartialEq)]
pub enum DaySpec {
    Weekdays,
    Weekends,
    Days(Vec<Weekday>),
}

/// A local time of day `HH:MM` (24-hour clock).
#[derive(Debug, Clone, PartialEq)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub span: Span,
}

/// An `else if` / the first `if` branch.
#[derive(Debug, Clone, PartialEq)]
pub struct IfBranch {
    pub cond: Expr,
    pub body: Block,
    pub span: Span,
}

/// The journey steps.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `send TEMPLATE`
    Send(Ident),
    /// `wait D`
    Wait(Duration),
    /// `wait until COND, at most D`
    WaitUntil { cond: Expr, at_most: Duration },
    /// `wait until 09:00 [on …] [in PATH]`
    WaitUntilTime {
        time: TimeOfDay,
        days: Option<DaySpec>,
        /// Span of the `on …` part, when present.
        days_span: Option<Span>,
        zone: Option<Path>,
    },
    /// `if COND {…} else if COND {…} else {…}` — at least one branch.
    If {
        branches: Vec<IfBranch>,
        else_block: Option<Block>,
    },
    /// `start JOURNEY`
    Start(Ident),
    /// `emit EVENT`
    Emit(EventName),
    /// `exit`
    Exit,
}
