//! The layout of `test` blocks: one member per line, an `at` block on one line when it holds a
//! single action, no comment and fits, else one action per line; objects on one line.

use crate::ast::{
    AtBlock, ContactDecl, Expect, Instant, LeaveReason, ObjectLit, TestAction, TestActionKind,
    TestBlock, TestMember, Value,
};
use crate::format::printer::{Printer, CLOSE, MAX_WIDTH, MEMBER};
use crate::format::text;

/// `test "name" { … }`.
pub(crate) fn test_block(p: &mut Printer<'_>, t: &TestBlock) {
    let head = format!("test {} {{", text::quote(&t.name.value));
    let open_end = p.src.open_brace_end(t.name.span.end);
    if t.members.is_empty() && !p.src.has_comment_between(open_end, t.span.end) {
        let line = format!("test {} {{}}", text::quote(&t.name.value));
        p.line(0, &line, t.span.start, t.span.end, MEMBER);
        return;
    }
    p.line(0, &head, t.span.start, open_end, MEMBER);
    for m in &t.members {
        match m {
            TestMember::Contact(c) => contact(p, c),
            TestMember::At(a) => at_block(p, a),
        }
    }
    p.line(0, "}", t.span.end.saturating_sub(1), t.span.end, CLOSE);
}

fn contact(p: &mut Printer<'_>, c: &ContactDecl) {
    let line = match &c.properties {
        Some(o) => format!("contact {} {}", c.id.name, object(o)),
        None => format!("contact {}", c.id.name),
    };
    p.line(1, &line, c.span.start, c.span.end, MEMBER);
}

fn at_block(p: &mut Printer<'_>, a: &AtBlock) {
    let head = format!("at {}", instant(&a.at));
    let commented = p
        .src
        .has_comment_between(a.body_span.start, a.body_span.end);
    if !commented {
        let one_line = match a.actions.as_slice() {
            [] => Some(format!("{head} {{}}")),
            [only] => Some(format!("{head} {{ {} }}", action(only))),
            _ => None,
        };
        if let Some(line) = one_line.filter(|l| 2 + l.chars().count() <= MAX_WIDTH) {
            p.line(1, &line, a.span.start, a.span.end, MEMBER);
            return;
        }
    }
    p.line(
        1,
        &format!("{head} {{"),
        a.span.start,
        a.body_span.start + 1,
        MEMBER,
    );
    for act in &a.actions {
        p.line(2, &action(act), act.span.start, act.span.end, MEMBER);
    }
    p.line(1, "}", a.span.end.saturating_sub(1), a.span.end, CLOSE);
}

/// An instant: `2027-01-04 10:00` (seconds only when not zero) or `+8d`.
pub(crate) fn instant(at: &Instant) -> String {
    match at {
        Instant::Absolute(d) => {
            let date = format!("{:04}-{:02}-{:02}", d.year, d.month, d.day);
            match d.time {
                None => date,
                Some((h, m, 0)) => format!("{date} {h:02}:{m:02}"),
                Some((h, m, s)) => format!("{date} {h:02}:{m:02}:{s:02}"),
            }
        }
        Instant::Relative { after, .. } => format!("+{}", text::duration(after)),
    }
}

/// One action on one line, as the formatter prints it.
pub(crate) fn action(a: &TestAction) -> String {
    match &a.kind {
        TestActionKind::Did {
            contact,
            event,
            properties,
        } => match properties {
            Some(o) => format!(
                "{} did {} {}",
                contact.name,
                text::event_name(event),
                object(o)
            ),
            None => format!("{} did {}", contact.name, text::event_name(event)),
        },
        TestActionKind::Set {
            contact,
            properties,
        } => format!("{} set {}", contact.name, object(properties)),
        TestActionKind::Subscription {
            contact,
            list,
            subscribed,
            ..
        } => format!(
            "{} {} {}",
            contact.name,
            if *subscribed {
                "subscribe"
            } else {
                "unsubscribe"
            },
            list.as_ref().map_or("*", |l| l.name.as_str())
        ),
        TestActionKind::Suppress { contact, reason } => {
            format!("{} suppress {}", contact.name, reason.name)
        }
        TestActionKind::Expect(e) => {
            let not = if e.negated { "not " } else { "" };
            let what = match &e.what {
                Expect::InBucket(b) => format!("in {}", b.name),
                Expect::InJourney(j) => format!("in journey {}", j.name),
                Expect::Entered(b) => format!("entered {}", b.name),
                Expect::Left { bucket, because } => match because {
                    None => format!("left {}", bucket.name),
                    Some(LeaveReason::Criteria) => format!("left {} because criteria", bucket.name),
                    Some(LeaveReason::MaxDwell) => {
                        format!("left {} because max_dwell", bucket.name)
                    }
                },
                Expect::Dwell { bucket, label } => format!("dwell {}.{}", bucket.name, label.name),
                Expect::Received(t) => format!("received {}", t.name),
                Expect::ReceivedTimes { template, times } => format!(
                    "received {} {} {}",
                    template.name,
                    times.value,
                    if times.value == 1 { "time" } else { "times" }
                ),
                Expect::Skipped { template, because } => match because {
                    None => format!("skipped {}", template.name),
                    Some(r) => match &r.list {
                        Some(list) => format!(
                            "skipped {} because {} {}",
                            template.name, r.reason.name, list.name
                        ),
                        None => format!("skipped {} because {}", template.name, r.reason.name),
                    },
                },
                Expect::Subscription {
                    list, subscribed, ..
                } => format!(
                    "{} {}",
                    if *subscribed {
                        "subscribed"
                    } else {
                        "unsubscribed"
                    },
                    list.as_ref().map_or("all", |l| l.name.as_str())
                ),
                Expect::JourneyStatus {
                    journey,
                    status,
                    step,
                    until,
                } => {
                    let mut out = format!("journey {} {}", journey.name, status.as_str());
                    if let Some(s) = step {
                        out += &format!(" at {}", text::quote(&s.value));
                    }
                    if let Some(u) = until {
                        out += &format!(" until {}", instant(u));
                    }
                    out
                }
            };
            format!("expect {} {not}{what}", e.contact.name)
        }
    }
}

/// `{ key: value, … }` on one line; keys bare when they are plain words.
fn object(o: &ObjectLit) -> String {
    if o.fields.is_empty() {
        return "{}".to_string();
    }
    let fields: Vec<String> = o
        .fields
        .iter()
        .map(|f| {
            let key = if crate::text::is_bare_name(&f.key.value) {
                f.key.value.clone()
            } else {
                text::quote(&f.key.value)
            };
            format!("{key}: {}", value(&f.value))
        })
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

fn value(v: &Value) -> String {
    match v {
        Value::Literal(l) => text::literal(l),
        Value::Null(_) => "null".to_string(),
        Value::Object(o) => object(o),
        Value::List(items, _) => {
            let items: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", items.join(", "))
        }
    }
}
