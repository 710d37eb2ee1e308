//! The checker's errors and warnings as plain data, and their one rendering into
//! [`Diagnostic`]s (Gleam style: each variant's comment shows the input that causes it).

use hogsend_dsl::Span;

use crate::diagnostics::{Code, Diagnostic, Label};

/// A place in the project: a file path and a byte span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file: String,
    pub span: Span,
}

impl Loc {
    fn label(&self, text: impl Into<String>) -> Label {
        Label::new(self.file.clone(), self.span, text)
    }
}

/// The kinds of named definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefKind {
    Bucket,
    Journey,
    List,
    Campaign,
}

impl DefKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DefKind::Bucket => "bucket",
            DefKind::Journey => "journey",
            DefKind::List => "list",
            DefKind::Campaign => "campaign",
        }
    }
}

/// What kind of problem an ordering comparison has.
/// Where a `trigger.` path was written that has no triggering event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TriggerPathPlace {
    /// A bucket's `criteria`.
    Criteria,
    /// Inside an event filter (`where ( … )`), whose span is given.
    Filter(Loc),
    /// The zone of a time-of-day wait (`in trigger.tz`).
    Zone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LiteralKind {
    String,
    Bool,
}

/// Everything the checker can report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckError {
    /// `bucket a {…}` … `bucket a {…}`
    DuplicateDefinition {
        kind: DefKind,
        id: String,
        at: Loc,
        first: Loc,
    },
    /// `trigger enter went_dormnat`
    UnknownBucket {
        name: String,
        at: Loc,
        suggestion: Option<String>,
    },
    /// `start tips_serie`
    UnknownJourney {
        name: String,
        at: Loc,
        suggestion: Option<String>,
    },
    /// `send welcom`, `opened welcom`
    UnknownTemplate {
        name: String,
        at: Loc,
        suggestion: Option<String>,
    },
    /// `trigger dwell dormant.after_2d` when `dormant` has only `after_3d`
    UnknownDwellLabel {
        bucket: String,
        label: String,
        at: Loc,
        known: Vec<String>,
    },
    /// `on dwell after 3d {…}` twice in one bucket
    DuplicateDwellLabel {
        bucket: String,
        label: String,
        at: Loc,
        first: Loc,
        defaulted: bool,
    },
    /// `criteria …` twice in one bucket
    DuplicateField {
        owner: DefKind,
        field: &'static str,
        at: Loc,
        first: Loc,
    },
    /// `criteria not did app_opened within 7d`
    EmptyContact {
        at: Loc,
        label: String,
        suggestion: Option<String>,
    },
    /// `bucket b { name "B" }` (no criteria)
    MissingField {
        owner: DefKind,
        id: String,
        field: &'static str,
        example: &'static str,
        at: Loc,
    },
    /// `wait 0s`, `within -3d`
    NonPositiveDuration { negative: bool, at: Loc },
    /// `within 99999w`
    DurationTooLong { at: Loc },
    /// `min_dwell 7d` with `max_dwell 1d`
    MinDwellAboveMax { at: Loc, max: Loc },
    /// `criteria did "bucket:entered:x"`, `emit "hogsend:x"`
    ReservedEvent {
        name: String,
        at: Loc,
        in_emit: bool,
    },
    /// `criteria did purchase since entry`
    SinceEntryOutsideJourney { at: Loc },
    /// `did purchase where (contact.plan == "pro")`
    ContactPathInFilter { at: Loc, filter: Loc },
    /// `criteria event.amount > 3`, `wait until 09:00 in event.tz`
    EventPathOutsideFilter { at: Loc, in_zone: bool },
    /// `criteria trigger.plan == "pro"`, `did a where (trigger.x == 1)`,
    /// `wait until 09:00 in trigger.tz`
    TriggerPathOutsideJourney { at: Loc, place: TriggerPathPlace },
    /// `did purchase where (did refund)`
    EventAtomInFilter {
        what: &'static str,
        at: Loc,
        filter: Loc,
    },
    /// `journey a { … start b }` + `journey b { … start a }`
    StartCycle {
        cycle: Vec<String>,
        at: Loc,
        others: Vec<(String, String, Loc)>,
    },
    /// `send welcome` followed by `exit when …`
    HeaderAfterStep {
        header: &'static str,
        at: Loc,
        first_step: Loc,
    },
    /// `count app_opened >= 0` (warning)
    ConstantCount { always: bool, at: Loc },
    /// `contact.plan > "basic"` (warning)
    NeverMatches {
        op: &'static str,
        kind: LiteralKind,
        at: Loc,
    },
    /// `exit` then `send bye` (warning)
    UnreachableStep { at: Loc, exit: Loc },
    /// a journey with no `send`, `start` or `emit` (warning)
    JourneyDoesNothing { id: String, at: Loc },
    /// `on leave because max_dwell` without `max_dwell` (warning)
    ReactionNeverFires { at: Loc },
    /// `category: onboardng` in a template's front matter
    UnknownList {
        name: String,
        at: Loc,
        suggestion: Option<String>,
    },
    /// `campaign c { audience bucket paying  template receipt }` where `receipt` has
    /// `category: transactional`
    TransactionalBroadcast {
        campaign: String,
        template: String,
        at: Loc,
        audience: Loc,
    },
    /// a template without `subject:`, or with `subjet: …`
    TemplateFrontMatter { message: String, at: Loc },
    /// `{% if contact.plan %}` never closed in a template
    TemplateSyntax { message: String, at: Loc },
    /// `{{ user.name }}` in a template (no top-level variable `user`)
    UnknownTemplateVariable { name: String, at: Loc },
}

fn did_you_mean(suggestion: &Option<String>) -> Option<String> {
    suggestion.as_ref().map(|s| format!("did you mean `{s}`?"))
}

impl CheckError {
    /// The one rendering of each problem.
    pub(crate) fn to_diagnostic(&self) -> Diagnostic {
        use CheckError::*;
        match self {
            DuplicateDefinition { kind, id, at, first } => {
                let k = kind.as_str();
                Diagnostic::new(
                    Code::E0201,
                    format!("the {k} `{id}` is defined more than once"),
                    at.label(format!("`{id}` defined again here")),
                )
                .with_secondary(first.label("first defined here"))
                .with_help(format!("{k} ids are unique across the project; rename one of them"))
            }
            UnknownBucket {
                name,
                at,
                suggestion,
            } => {
                let d = Diagnostic::new(
                    Code::E0202,
                    format!("unknown bucket `{name}`"),
                    at.label("no bucket has this id"),
                );
                match did_you_mean(suggestion) {
                    Some(h) => d.with_help(h),
                    None => d,
                }
            }
            UnknownJourney {
                name,
                at,
                suggestion,
            } => {
                let d = Diagnostic::new(
                    Code::E0203,
                    format!("unknown journey `{name}`"),
                    at.label("no journey has this id"),
                );
                match did_you_mean(suggestion) {
                    Some(h) => d.with_help(h),
                    None => d,
                }
            }
            UnknownTemplate {
                name,
                at,
                suggestion,
            } => Diagnostic::new(
                Code::E0204,
                format!("unknown template `{name}`"),
                at.label(format!(
                    "no templates/{name}.html or templates/{name}.txt"
                )),
            )
            .with_help(did_you_mean(suggestion).unwrap_or_else(|| {
                format!("create templates/{name}.html (or .txt) in the project")
            })),
            UnknownDwellLabel {
                bucket,
                label,
                at,
                known,
            } => {
                let d = Diagnostic::new(
                    Code::E0205,
                    format!("bucket `{bucket}` has no dwell timer `{label}`"),
                    at.label("unknown dwell label"),
                );
                if known.is_empty() {
                    d.with_help(format!(
                        "declare one in bucket `{bucket}`, e.g. `on dwell after 3d {{ … }}`"
                    ))
                } else {
                    let list: Vec<String> = known.iter().map(|l| format!("`{l}`")).collect();
                    d.with_help(format!(
                        "bucket `{bucket}` declares {}",
                        list.join(", ")
                    ))
                }
            }
            DuplicateDwellLabel {
                bucket,
                label,
                at,
                first,
                defaulted,
            } => {
                let d = Diagnostic::new(
                    Code::E0206,
                    format!("bucket `{bucket}` declares the dwell label `{label}` twice"),
                    at.label(format!("`{label}` declared again here")),
                )
                .with_secondary(first.label("first declared here"));
                if *defaulted {
                    d.with_help("merge the two reactions, or name one with `as some_label`")
                } else {
                    d.with_help("dwell labels are unique within a bucket; rename one")
                }
            }
            DuplicateField {
                owner,
                field,
                at,
                first,
            } => Diagnostic::new(
                Code::E0207,
                format!("`{field}` is set more than once in this {}", owner.as_str()),
                at.label("set again here"),
            )
            .with_secondary(first.label("first set here"))
            .with_help(if *field == "criteria" || *field == "exit when" {
                format!("keep one `{field}` and combine the conditions with `and` / `or`")
            } else {
                format!("keep one `{field}`")
            }),
            EmptyContact {
                at,
                label,
                suggestion,
            } => Diagnostic::new(
                Code::E0301,
                "this bucket would contain every contact",
                at.label(label.clone()),
            )
            .with_help(match suggestion {
                Some(s) => format!("add a positive condition, e.g. `{s}`"),
                None => "add a positive condition, e.g. `did some_event` or `contact.some_property exists`".into(),
            }),
            MissingField {
                owner,
                id,
                field,
                example,
                at,
            } => Diagnostic::new(
                Code::E0302,
                format!("{} `{id}` has no `{field}`", owner.as_str()),
                at.label(format!("this {} needs a `{field}`", owner.as_str())),
            )
            .with_help(format!("add one, e.g. `{example}`")),
            NonPositiveDuration { negative, at } => Diagnostic::new(
                Code::E0303,
                if *negative {
                    "negative duration"
                } else {
                    "zero duration"
                },
                at.label("durations must be positive"),
            ),
            DurationTooLong { at } => Diagnostic::new(
                Code::E0304,
                "duration too long",
                at.label("longer than 100 years"),
            )
            .with_note("Durations are limited to 100 years (36500d)."),
            MinDwellAboveMax { at, max } => Diagnostic::new(
                Code::E0305,
                "min_dwell is longer than max_dwell",
                at.label("the floor is here"),
            )
            .with_secondary(max.label("the ceiling is shorter"))
            .with_help("make `min_dwell` at most `max_dwell`"),
            ReservedEvent { name, at, in_emit } => {
                if *in_emit {
                    Diagnostic::new(
                        Code::E0306,
                        format!("`emit` cannot record the reserved event `{name}`"),
                        at.label("reserved for events hogsend records itself"),
                    )
                    .with_help("choose a name that does not start with `bucket:` or `hogsend:`")
                } else {
                    Diagnostic::new(
                        Code::E0306,
                        format!("reserved event `{name}` in a bucket's criteria"),
                        at.label("`bucket:` and `hogsend:` events cannot be used in criteria"),
                    )
                    .with_help("react to bucket transitions in a journey: `trigger enter|leave|dwell …`")
                }
            }
            SinceEntryOutsideJourney { at } => Diagnostic::new(
                Code::E0307,
                "`since entry` outside a journey",
                at.label("a bucket's criteria have no entry to count from"),
            )
            .with_help("use a fixed window, e.g. `within 7d`"),
            ContactPathInFilter { at, filter } => Diagnostic::new(
                Code::E0308,
                "contact property in an event filter",
                at.label("an event filter can only test `event.` properties"),
            )
            .with_secondary(filter.label("in this filter"))
            .with_help("move the contact condition out of the filter and join it with `and`"),
            EventPathOutsideFilter { at, in_zone } => Diagnostic::new(
                Code::E0309,
                "event property outside an event filter",
                at.label("`event.` only means something inside `where ( … )`"),
            )
            .with_help(if *in_zone {
                "the time zone is read from a contact property, e.g. `in contact.timezone`"
            } else {
                "test it inside an event atom, e.g. `did purchase where (event.amount > 100)`"
            }),
            TriggerPathOutsideJourney { at, place } => {
                let (label, help) = match place {
                    TriggerPathPlace::Criteria => (
                        "a bucket's criteria have no triggering event",
                        "test the event itself, e.g. `did user.signed_up where (event.plan == \"pro\")`",
                    ),
                    TriggerPathPlace::Filter(_) => (
                        "an event filter tests one event's properties, written `event.`",
                        "move the `trigger.` condition out of the filter and join it with `and`",
                    ),
                    TriggerPathPlace::Zone => (
                        "the time zone is read from a contact property",
                        "write e.g. `in contact.timezone`",
                    ),
                };
                let d = Diagnostic::new(
                    Code::E0313,
                    "`trigger.` property outside a journey condition",
                    at.label(label),
                )
                .with_help(help);
                match place {
                    TriggerPathPlace::Filter(filter) => d.with_secondary(filter.label("in this filter")),
                    _ => d,
                }
            }
            EventAtomInFilter { what, at, filter } => Diagnostic::new(
                Code::E0310,
                format!("`{what}` inside an event filter"),
                at.label("an event filter tests one event's properties"),
            )
            .with_secondary(filter.label("in this filter"))
            .with_help(format!("move the `{what}` condition out of the filter and join it with `and`")),
            StartCycle { cycle, at, others } => {
                let mut d = Diagnostic::new(
                    Code::E0311,
                    format!("journeys start each other in a cycle: {}", cycle.join(" → ")),
                    at.label(format!("`{}` starts `{}` here", cycle[0], cycle[1])),
                );
                for (from, to, loc) in others {
                    d = d.with_secondary(loc.label(format!("`{from}` starts `{to}` here")));
                }
                d.with_help(if others.is_empty() {
                    "remove this `start` step"
                } else {
                    "remove one of these `start` steps"
                })
            }
            HeaderAfterStep {
                header,
                at,
                first_step,
            } => Diagnostic::new(
                Code::E0312,
                format!("`{header}` after the journey's first step"),
                at.label("headers come before the steps"),
            )
            .with_secondary(first_step.label("the first step"))
            .with_help(format!("move `{header}` above the first step")),
            ConstantCount { always, at } => Diagnostic::new(
                Code::W0101,
                if *always {
                    "this count is always true"
                } else {
                    "this count is always false"
                },
                at.label(if *always {
                    "true for every contact: a count is never negative"
                } else {
                    "false for every contact: a count is never negative"
                }),
            )
            .with_help(if *always {
                "remove it, or compare with a positive number, e.g. `>= 1`"
            } else {
                "remove it, or compare with a positive number"
            }),
            NeverMatches { op, kind, at } => {
                let k = match kind {
                    LiteralKind::String => "a string",
                    LiteralKind::Bool => "a boolean",
                };
                Diagnostic::new(
                    Code::W0102,
                    "this comparison can never match",
                    at.label(format!("`{op}` holds only between numbers, and this is {k}")),
                )
                .with_help(match kind {
                    LiteralKind::String => "compare text with `==`, `!=`, `in [ … ]` or `contains`",
                    LiteralKind::Bool => "compare booleans with `==` or `!=`",
                })
            }
            UnreachableStep { at, exit } => Diagnostic::new(
                Code::W0103,
                "unreachable step",
                at.label("this step never runs"),
            )
            .with_secondary(exit.label("every run has exited here"))
            .with_help("remove the unreachable steps, or the `exit`"),
            JourneyDoesNothing { id, at } => Diagnostic::new(
                Code::W0104,
                format!("journey `{id}` does nothing"),
                at.label("no `send`, `start` or `emit` in this journey"),
            )
            .with_help("add a step with an effect, e.g. `send some_template`"),
            ReactionNeverFires { at } => Diagnostic::new(
                Code::W0105,
                "this reaction can never fire",
                at.label("the bucket has no `max_dwell`"),
            )
            .with_help("add `max_dwell D` to the bucket, or react to `on leave`"),
            UnknownList {
                name,
                at,
                suggestion,
            } => Diagnostic::new(
                Code::E0208,
                format!("unknown list `{name}`"),
                at.label("not a declared list, nor `transactional`"),
            )
            .with_help(did_you_mean(suggestion).unwrap_or_else(|| {
                format!("declare it in a .hog file: `list {name} {{ name \"…\" }}`")
            })),
            TransactionalBroadcast {
                campaign,
                template,
                at,
                audience,
            } => Diagnostic::new(
                Code::E0314,
                format!(
                    "campaign `{campaign}` sends the transactional template `{template}` to a bucket"
                ),
                at.label("`category: transactional`: sent whatever the contact unsubscribed from"),
            )
            .with_secondary(audience.label("its members would receive it, unsubscribed or not"))
            .with_note("a broadcast must not bypass unsubscribes; transactional mail answers one contact's own action")
            .with_help(format!(
                "give `{template}` a list as its `category`, or send the campaign to a list (`audience list …`)"
            )),
            TemplateFrontMatter { message, at } => Diagnostic::new(
                Code::E0501,
                format!("invalid template front matter: {message}"),
                at.label("here"),
            )
            .with_help(
                "a template starts with `---`, then `subject: …` and `category: …` lines \
                 (optionally `from`, `reply_to`, `preheader`), then `---`",
            ),
            TemplateSyntax { message, at } => Diagnostic::new(
                Code::E0502,
                "template syntax error",
                at.label(message.clone()),
            ),
            UnknownTemplateVariable { name, at } => Diagnostic::new(
                Code::E0503,
                format!("unknown template variable `{name}`"),
                at.label("not a template variable"),
            )
            .with_help(
                "the variables are `contact`, `event`, `journey`, `campaign`, \
                 `unsubscribe_url` and `preferences_url`",
            ),
        }
    }
}
