//! Checker unit tests over hand-built trees (the fixture suite in `tests/` covers the
//! checker end to end through the parser).

use hogsend_dsl::ast::*;
use hogsend_dsl::Span;

use super::{check_parsed, ParsedFile};
use crate::diagnostics::Code;
use crate::ir;
use crate::source::{SourceFile, SourceSet};

/// A span covering `needle` in `text` (first occurrence).
fn at(text: &str, needle: &str) -> Span {
    let start = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} in {text:?}"));
    Span::new(start, start + needle.len())
}

fn ident(text: &str, name: &str) -> Ident {
    Ident {
        name: name.into(),
        span: at(text, name),
    }
}

fn did(text: &str, event: &str, window: Option<&str>) -> Expr {
    let ev = EventName {
        name: event.into(),
        span: at(text, event),
    };
    let window = window.map(|w| Window {
        kind: WindowKind::Within(Duration {
            negative: false,
            parts: vec![DurationPart {
                value: w.trim_end_matches('d').parse().unwrap(),
                unit: DurationUnit::Days,
            }],
            span: at(text, w),
        }),
        span: at(text, w),
    });
    let start = at(text, "did").start;
    let end = window.as_ref().map_or(ev.span.end, |w| w.span.end);
    Expr {
        kind: ExprKind::Did {
            event: ev,
            filter: None,
            window,
        },
        span: Span::new(start, end),
    }
}

fn bucket(text: &str, id: &str, criteria: Option<Expr>, reactions: Vec<Reaction>) -> Item {
    let mut members: Vec<BucketMember> = criteria
        .into_iter()
        .map(|e| {
            BucketMember::Field(BucketField {
                keyword_span: at(text, "criteria"),
                span: Span::new(at(text, "criteria").start, e.span.end),
                kind: BucketFieldKind::Criteria(e),
            })
        })
        .collect();
    members.extend(reactions.into_iter().map(BucketMember::Reaction));
    Item::Bucket(Bucket {
        id: ident(text, id),
        members,
        span: Span::new(0, text.len()),
    })
}

fn journey(text: &str, id: &str, trigger_bucket: &str, steps: Vec<Step>) -> Item {
    let mut members = vec![JourneyMember::Header(JourneyHeader {
        kind: JourneyHeaderKind::Trigger(Trigger::Enter(ident(text, trigger_bucket))),
        keyword_span: at(text, "trigger"),
        span: at(text, "trigger"),
    })];
    members.extend(steps.into_iter().map(JourneyMember::Step));
    Item::Journey(Journey {
        id: ident(text, id),
        members,
        span: Span::new(0, text.len()),
    })
}

fn file(items: Vec<Item>) -> ParsedFile {
    ParsedFile {
        ast: hogsend_dsl::ast::SourceFile {
            items,
            comments: Vec::new(),
        },
        diagnostics: Vec::new(),
    }
}

#[test]
fn empty_contact_rule_suggests_a_positive_condition() {
    let text = "bucket engagement {\n  criteria not did app_opened within 7d\n}\n";
    let inner = did(text, "app_opened", Some("7d"));
    let criteria = Expr {
        span: Span::new(at(text, "not").start, inner.span.end),
        kind: ExprKind::Not(Box::new(inner)),
    };
    let set = SourceSet::from_files([SourceFile::new("buckets/engagement.hog", text)]);
    let checked = check_parsed(
        &set,
        &[file(vec![bucket(
            text,
            "engagement",
            Some(criteria),
            vec![],
        )])],
    );
    assert!(checked.program.is_none());
    let d = &checked.diagnostics[0];
    assert_eq!(d.code, Code::E0301);
    assert_eq!(d.primary.text, "true for a contact with no events");
    assert_eq!(
        d.help.as_deref(),
        Some("add a positive condition, e.g. `did app_opened and not did app_opened within 7d`")
    );
}

#[test]
fn lowers_a_bucket_with_default_dwell_label() {
    let text =
        "bucket dormant {\n  criteria did app_opened\n  on dwell after 3d { send nudge }\n}\n";
    let reaction = Reaction {
        trigger: ReactionTrigger::DwellAfter {
            after: Duration {
                negative: false,
                parts: vec![DurationPart {
                    value: 3,
                    unit: DurationUnit::Days,
                }],
                span: at(text, "3d"),
            },
            label: None,
        },
        trigger_span: at(text, "on dwell after 3d"),
        body: Block {
            steps: vec![Step {
                kind: StepKind::Send(ident(text, "nudge")),
                span: at(text, "send nudge"),
            }],
            span: at(text, "{ send nudge }"),
        },
        span: at(text, "on dwell after 3d { send nudge }"),
    };
    let set = SourceSet::from_files([SourceFile::new("b.hog", text)]).with_templates(["nudge"]);
    let b = bucket(
        text,
        "dormant",
        Some(did(text, "app_opened", None)),
        vec![reaction],
    );
    let checked = check_parsed(&set, &[file(vec![b])]);
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let program = checked.program.unwrap();
    let b = &program.buckets[0];
    assert_eq!(
        b.origin,
        ir::Origin {
            file: "b.hog".into(),
            line: 1
        }
    );
    assert_eq!(b.dwell[0].label, "after_3d");
    assert_eq!(b.dwell[0].period, 3 * 86_400);
    assert_eq!(b.reactions[0].steps, vec![ir::Step::Send("nudge".into())]);
}

#[test]
fn duplicates_and_cycles_point_at_both_places() {
    let a = "journey a {\n  trigger enter b1\n  start b\n}\n";
    let b = "journey b {\n  trigger enter b1\n  start a\n}\n";
    let c = "bucket b1 {\n  criteria did x\n}\nbucket b1 {\n  criteria did x\n}\n";
    let start = |text: &str, target: &str| Step {
        kind: StepKind::Start(Ident {
            name: target.into(),
            span: at(text, &format!("start {target}"))
                .to(at(text, &format!("start {target}")))
                .range()
                .end
                .checked_sub(target.len())
                .map(|s| Span::new(s, s + target.len()))
                .unwrap(),
        }),
        span: at(text, &format!("start {target}")),
    };
    let second = c.rfind("b1").unwrap();
    let dup = Item::Bucket(Bucket {
        id: Ident {
            name: "b1".into(),
            span: Span::new(second, second + 2),
        },
        members: Vec::new(),
        span: Span::new(second - 7, c.len()),
    });
    let set = SourceSet::from_files([
        SourceFile::new("a.hog", a),
        SourceFile::new("b.hog", b),
        SourceFile::new("c.hog", c),
    ]);
    let checked = check_parsed(
        &set,
        &[
            file(vec![journey(a, "a", "b1", vec![start(a, "b")])]),
            file(vec![journey(b, "b", "b1", vec![start(b, "a")])]),
            file(vec![bucket(c, "b1", Some(did(c, "x", None)), vec![]), dup]),
        ],
    );
    let codes: Vec<Code> = checked.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, vec![Code::E0311, Code::E0201, Code::E0302]);
    let cycle = &checked.diagnostics[0];
    assert_eq!(
        cycle.message,
        "journeys start each other in a cycle: a → b → a"
    );
    assert_eq!(cycle.secondary[0].file, "b.hog");
    assert_eq!(
        checked.diagnostics[1].secondary[0].text,
        "first defined here"
    );
}
