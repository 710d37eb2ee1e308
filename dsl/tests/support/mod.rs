//! Helpers shared by the integration tests: a compact s-expression dump of a tree, and
//! `check` helpers built on it.
#![allow(dead_code)]

use hogsend_dsl::ast::*;
use hogsend_dsl::{parse, ParseError};

/// Parses `input`, asserts it has no errors, and compares the dump of its tree with
/// `expected` (whitespace-insensitive: runs of whitespace compare equal).
#[track_caller]
pub(crate) fn check(input: &str, expected: &str) {
    let parsed = parse(input);
    assert!(
        parsed.errors.is_empty(),
        "unexpected errors for {input:?}:\n{}",
        show_errors(input, &parsed.errors)
    );
    assert_eq!(
        squash(&dump(&parsed.file)),
        squash(expected),
        "for input {input:?}"
    );
}

/// Parses `input` and returns the messages of its errors, as `start..end: message`.
pub(crate) fn errors(input: &str) -> Vec<String> {
    let parsed = parse(input);
    parsed
        .errors
        .iter()
        .map(|e| format!("{}..{}: {}", e.span.start, e.span.end, e.message()))
        .collect()
}

/// The errors of `input` with the text they point at.
pub(crate) fn show_errors(input: &str, errors: &[ParseError]) -> String {
    errors
        .iter()
        .map(|e| {
            let text = input.get(e.span.range()).unwrap_or("<bad span>");
            format!("{:?} at {text:?}: {}", e.span, e.message())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collapses runs of whitespace to one space and trims.
pub(crate) fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The whole file as s-expressions, one definition per line.
pub(crate) fn dump(file: &SourceFile) -> String {
    file.items
        .iter()
        .map(|item| match item {
            Item::Bucket(b) => {
                let members: Vec<_> = b.members.iter().map(bucket_member).collect();
                format!("(bucket {} {})", b.id.name, members.join(" "))
            }
            Item::Journey(j) => {
                let members: Vec<_> = j.members.iter().map(journey_member).collect();
                format!("(journey {} {})", j.id.name, members.join(" "))
            }
            Item::Test(t) => format!("(test {:?} {})", t.name.value, t.members.len()),
            Item::List(l) => {
                let fields: Vec<_> = l.fields.iter().map(list_field).collect();
                format!("(list {} {})", l.id.name, fields.join(" "))
            }
            Item::Campaign(c) => format!("(campaign {} {})", c.id.name, c.fields.len()),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn list_field(f: &ListField) -> String {
    match &f.kind {
        ListFieldKind::Name(s) => format!("(name {:?})", s.value),
        ListFieldKind::Description(s) => format!("(description {:?})", s.value),
        ListFieldKind::Default(d) => format!("(default {})", d.subscribed),
    }
}

fn bucket_member(m: &BucketMember) -> String {
    match m {
        BucketMember::Field(f) => match &f.kind {
            BucketFieldKind::Name(s) => format!("(name {:?})", s.value),
            BucketFieldKind::Description(s) => format!("(description {:?})", s.value),
            BucketFieldKind::Criteria(e) => format!("(criteria {})", expr(e)),
            BucketFieldKind::Entry(p) => format!("(entry {})", entry(p)),
            BucketFieldKind::MinDwell(d) => format!("(min_dwell {})", duration(d)),
            BucketFieldKind::MaxDwell(d) => format!("(max_dwell {})", duration(d)),
            BucketFieldKind::Enabled(b) => format!("(enabled {})", b.value),
        },
        BucketMember::Reaction(r) => {
            let trigger = match &r.trigger {
                ReactionTrigger::Enter { first } => {
                    if *first {
                        "enter first".to_string()
                    } else {
                        "enter".to_string()
                    }
                }
                ReactionTrigger::Leave { because } => match because {
                    None => "leave".to_string(),
                    Some(LeaveReason::Criteria) => "leave because criteria".to_string(),
                    Some(LeaveReason::MaxDwell) => "leave because max_dwell".to_string(),
                },
                ReactionTrigger::DwellAfter { after, label } => {
                    format!("dwell after {}{}", duration(after), label_of(label))
                }
                ReactionTrigger::DwellEvery { every, label } => {
                    format!("dwell every {}{}", duration(every), label_of(label))
                }
            };
            format!("(on {trigger} {})", block(&r.body))
        }
    }
}

fn label_of(label: &Option<Ident>) -> String {
    label
        .as_ref()
        .map(|l| format!(" as {}", l.name))
        .unwrap_or_default()
}

fn journey_member(m: &JourneyMember) -> String {
    match m {
        JourneyMember::Header(h) => match &h.kind {
            JourneyHeaderKind::Name(s) => format!("(name {:?})", s.value),
            JourneyHeaderKind::Description(s) => format!("(description {:?})", s.value),
            JourneyHeaderKind::Entry(p) => format!("(entry {})", entry(p)),
            JourneyHeaderKind::ExitWhen(e) => format!("(exit-when {})", expr(e)),
            JourneyHeaderKind::Trigger(t) => match t {
                Trigger::Event { event, filter } => {
                    format!("(trigger event {:?}{})", event.name, filter_of(filter))
                }
                Trigger::Enter(b) => format!("(trigger enter {})", b.name),
                Trigger::Leave(b) => format!("(trigger leave {})", b.name),
                Trigger::Dwell { bucket, label } => {
                    format!("(trigger dwell {}.{})", bucket.name, label.name)
                }
            },
        },
        JourneyMember::Step(s) => step(s),
    }
}

fn block(b: &Block) -> String {
    let steps: Vec<_> = b.steps.iter().map(step).collect();
    format!("{{{}}}", steps.join(" "))
}

pub(crate) fn step(s: &Step) -> String {
    match &s.kind {
        StepKind::Send(t) => format!("(send {})", t.name),
        StepKind::Wait(d) => format!("(wait {})", duration(d)),
        StepKind::WaitUntil { cond, at_most } => {
            format!("(wait-until {} at-most {})", expr(cond), duration(at_most))
        }
        StepKind::WaitUntilTime {
            time, days, zone, ..
        } => {
            let mut out = format!("(wait-until-time {:02}:{:02}", time.hour, time.minute);
            match days {
                Some(DaySpec::Weekdays) => out.push_str(" weekdays"),
                Some(DaySpec::Weekends) => out.push_str(" weekends"),
                Some(DaySpec::Days(list)) => {
                    let names: Vec<_> = list.iter().map(|d| d.as_str()).collect();
                    out.push_str(&format!(" [{}]", names.join(" ")));
                }
                None => {}
            }
            if let Some(zone) = zone {
                out.push_str(&format!(" in {}", path(zone)));
            }
            out.push(')');
            out
        }
        StepKind::If {
            branches,
            else_block,
        } => {
            let mut out = "(if".to_string();
            for b in branches {
                out.push_str(&format!(" {} {}", expr(&b.cond), block(&b.body)));
            }
            if let Some(e) = else_block {
                out.push_str(&format!(" else {}", block(e)));
            }
            out.push(')');
            out
        }
        StepKind::Start(j) => format!("(start {})", j.name),
        StepKind::Emit(e) => format!("(emit {:?})", e.name),
        StepKind::Exit => "(exit)".to_string(),
    }
}

fn entry(p: &EntryPolicy) -> String {
    match p {
        EntryPolicy::Unlimited => "unlimited".to_string(),
        EntryPolicy::Once => "once".to_string(),
        EntryPolicy::OncePer(d) => format!("once-per {}", duration(d)),
    }
}

pub(crate) fn duration(d: &Duration) -> String {
    let parts: Vec<_> = d
        .parts
        .iter()
        .map(|p| format!("{}{}", p.value, p.unit.suffix()))
        .collect();
    format!("{}{}", if d.negative { "-" } else { "" }, parts.join("+"))
}

fn path(p: &Path) -> String {
    let root = match p.root {
        PathRoot::Contact => "contact",
        PathRoot::Event => "event",
        PathRoot::Trigger => "trigger",
    };
    let segments: Vec<_> = p.segments.iter().map(|s| format!("{:?}", s.name)).collect();
    format!("{root}.{}", segments.join("."))
}

fn literal(l: &Literal) -> String {
    match l {
        Literal::String(s) => format!("{:?}", s.value),
        Literal::Number(n) => n.raw.clone(),
        Literal::Bool(b) => b.value.to_string(),
    }
}

fn filter_of(f: &Option<Filter>) -> String {
    f.as_ref()
        .map(|f| format!(" where {}", expr(&f.expr)))
        .unwrap_or_default()
}

fn window_of(w: &Option<Window>) -> String {
    match w.as_ref().map(|w| &w.kind) {
        Some(WindowKind::Within(d)) => format!(" within {}", duration(d)),
        Some(WindowKind::SinceEntry) => " since entry".to_string(),
        None => String::new(),
    }
}

pub(crate) fn expr(e: &Expr) -> String {
    let list = |name: &str, es: &[Expr]| {
        let inner: Vec<_> = es.iter().map(expr).collect();
        format!("({name} {})", inner.join(" "))
    };
    match &e.kind {
        ExprKind::Or(es) => list("or", es),
        ExprKind::And(es) => list("and", es),
        ExprKind::All(es) => list("all", es),
        ExprKind::Any(es) => list("any", es),
        ExprKind::Not(x) => format!("(not {})", expr(x)),
        ExprKind::Paren(x) => format!("[{}]", expr(x)),
        ExprKind::Did {
            event,
            filter,
            window,
        } => format!(
            "(did {:?}{}{})",
            event.name,
            filter_of(filter),
            window_of(window)
        ),
        ExprKind::Count {
            event,
            filter,
            window,
            op,
            value,
        } => format!(
            "(count {:?}{}{} {} {})",
            event.name,
            filter_of(filter),
            window_of(window),
            op.as_str(),
            value.value
        ),
        ExprKind::Compare { path: p, op, value } => {
            format!("({} {} {})", path(p), op.as_str(), literal(value))
        }
        ExprKind::Exists(p) => format!("({} exists)", path(p)),
        ExprKind::Contains(p, s) => format!("({} contains {:?})", path(p), s.value),
        ExprKind::In(p, vs) => {
            let vs: Vec<_> = vs.iter().map(literal).collect();
            format!("({} in {})", path(p), vs.join(" "))
        }
        ExprKind::Opened(t) => format!("(opened {})", t.name),
        ExprKind::Clicked(t) => format!("(clicked {})", t.name),
    }
}
