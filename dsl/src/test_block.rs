//! `test` blocks (docs/language.md#tests): behaviour written next to the definitions.
//!
//! ```text
//! test        := "test" STRING "{" test_member* "}"
//! test_member := "contact" ID [object] | "at" instant "{" action* "}"
//! instant     := DATE [TIME] | "+" DURATION        DATE := YYYY-MM-DD  TIME := HH:MM[:SS]
//! action      := "expect" ID ["not"] expectation
//!              | ID "did" EVENT [object] | ID "set" object
//!              | ID ("subscribe" | "unsubscribe") (ID | "*") | ID "suppress" ("bounce" | "complaint" | "manual")
//! expectation := "in" ["journey"] ID | "entered" ID
//!              | "left" ID ["because" ("criteria" | "max_dwell")] | "dwell" ID "." ID
//!              | "received" ID [INT "times"] | "skipped" ID ["because" ID [ID]]
//!              | "journey" ID STATUS ["at" STRING] ["until" instant]   (`waiting` only)
//!              | ("subscribed" | "unsubscribed") (ID | "all" | "*")
//! object      := "{" [field ("," field)* [","]] "}"     field := (WORD | STRING) ":" value
//! value       := literal | "null" | object | "[" [value ("," value)*] "]"
//! ```

use nom::combinator::cut;

use crate::ast::{LeaveReason, StringLit};
use crate::error::{ParseError, ParseErrorKind};
use crate::expr::nest;
use crate::lexical::{
    bare_name, duration, ident, integer, keyword, literal, peek_word, punct, string_lit,
};
use crate::lexical::{word, ws};
use crate::names::event_name;
use crate::nom_error::{failure, missing_closer, unexpected, PResult};
use crate::recover::{body, BodyKind};
use crate::span::Span;
use crate::state::{self, span_between};
use crate::test_ast::{
    AtBlock, ContactDecl, DateTimeLit, Expect, Expectation, Instant, ObjectField, ObjectLit,
    RunStatus, SkipReason, TestAction, TestActionKind, TestBlock, TestMember, Value,
};

/// True for the words that start a member of a test body.
fn is_test_keyword(word: &str) -> bool {
    matches!(word, "contact" | "at")
}

/// The body of a test, for recovery.
const TEST_MEMBERS: BodyKind = BodyKind {
    is_member_keyword: is_test_keyword,
    expected: &["`contact`", "`at`"],
};

/// Any word starts an action (`expect`, or a contact's name).
fn is_action_word(_: &str) -> bool {
    true
}

/// The body of an `at` block, for recovery.
const ACTIONS: BodyKind = BodyKind {
    is_member_keyword: is_action_word,
    expected: &["`expect`", "a contact (`u1 did …`, `u1 set …`)"],
};

/// The rest of `test STRING { … }` after the keyword `test` (at `kw_span`).
pub(crate) fn test_definition(kw_span: Span, after_kw: &str) -> PResult<'_, TestBlock> {
    let (i, name) = match string_lit(after_kw) {
        Ok(ok) => ok,
        Err(_) => return failure(unexpected(after_kw, &["the test's name (a string)"])),
    };
    let (i, open) = punct("{")(i)?;
    let parsed = body(i, open, &TEST_MEMBERS, test_member);
    let span = Span::new(kw_span.start, parsed.end);
    Ok((
        parsed.rest,
        TestBlock {
            name,
            members: parsed.members,
            span,
        },
    ))
}

// test_member := "contact" ID [object] | "at" instant "{" action* "}"
fn test_member(i: &str) -> PResult<'_, TestMember> {
    if peek_word(i) == Some("contact") {
        let (i, kw) = keyword("contact")(i)?;
        let (i, id) = cut(ident("a contact name"))(i)?;
        let (i, properties) = if ws(i).starts_with('{') {
            let (i, o) = object(i)?;
            (i, Some(o))
        } else {
            (i, None)
        };
        let span = Span::new(kw.start, state::offset(i));
        return Ok((
            i,
            TestMember::Contact(ContactDecl {
                id,
                properties,
                span,
            }),
        ));
    }
    let (i, kw) = keyword("at")(i)?;
    let (i, at) = instant(i)?;
    let (i, open) = cut(punct("{"))(i)?;
    let _level = nest(open)?;
    let parsed = body(i, open, &ACTIONS, action);
    let body_span = Span::new(open.start, parsed.end);
    Ok((
        parsed.rest,
        TestMember::At(AtBlock {
            at,
            actions: parsed.members,
            body_span,
            span: Span::new(kw.start, parsed.end),
        }),
    ))
}

// instant := DATE [TIME] | "+" DURATION
fn instant(i: &str) -> PResult<'_, Instant> {
    let start = ws(i);
    if let Some(after_plus) = start.strip_prefix('+') {
        let (rest, after) = duration(after_plus)?;
        let span = span_between(start, rest);
        return Ok((rest, Instant::Relative { after, span }));
    }
    let date_len = start
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(start.len());
    if date_len == 0 {
        return failure(unexpected(i, &["an instant (`2027-01-04 10:00` or `+8d`)"]));
    }
    let mut rest = &start[date_len..];
    let mut raw_end = rest;
    // A time of day on the same line, after spaces.
    let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let after_spaces = &rest[spaces..];
    let time_len = after_spaces
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(after_spaces.len());
    let has_time = spaces > 0 && time_len > 0 && after_spaces[..time_len].contains(':');
    if has_time {
        rest = &after_spaces[time_len..];
        raw_end = rest;
    }
    let span = span_between(start, raw_end);
    let raw = &start[..start.len() - raw_end.len()];
    let date = &start[..date_len];
    let time = has_time.then(|| &after_spaces[..time_len]);
    match date_time(date, time) {
        Some((year, month, day, time)) => Ok((
            rest,
            Instant::Absolute(DateTimeLit {
                year,
                month,
                day,
                time,
                span,
            }),
        )),
        None => {
            state::report(ParseError::new(
                ParseErrorKind::InvalidInstant {
                    raw: raw.to_string(),
                },
                span,
            ));
            let lit = DateTimeLit {
                year: 1970,
                month: 1,
                day: 1,
                time: None,
                span,
            };
            Ok((rest, Instant::Absolute(lit)))
        }
    }
}

/// A validated `YYYY-MM-DD` and optional `HH:MM[:SS]`.
/// A date: year, month, day, and the time of day when one was written.
pub(crate) type DateParts = (u16, u8, u8, Option<(u8, u8, u8)>);

pub(crate) fn date_time(date: &str, time: Option<&str>) -> Option<DateParts> {
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let year: u16 = y.parse().ok().filter(|y| *y >= 1970)?;
    let month: u8 = m.parse().ok().filter(|m| (1..=12).contains(m))?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let day: u8 = d.parse().ok().filter(|d| (1..=days).contains(d))?;
    let time = match time {
        None => None,
        Some(t) => {
            let fields: Vec<&str> = t.split(':').collect();
            if !(2..=3).contains(&fields.len()) || fields.iter().any(|f| f.len() != 2) {
                return None;
            }
            let h: u8 = fields[0].parse().ok().filter(|h| *h <= 23)?;
            let min: u8 = fields[1].parse().ok().filter(|m| *m <= 59)?;
            let s: u8 = match fields.get(2) {
                Some(s) => s.parse().ok().filter(|s| *s <= 59)?,
                None => 0,
            };
            Some((h, min, s))
        }
    };
    Some((year, month, day, time))
}

// action := "expect" ID ["not"] expectation | ID "did" EVENT [object] | ID "set" object
fn action(i: &str) -> PResult<'_, TestAction> {
    let start = state::offset(ws(i));
    if peek_word(i) == Some("expect") {
        let (i, _) = keyword("expect")(i)?;
        let (i, contact) = cut(ident("a contact name"))(i)?;
        let (i, negated) = match keyword("not")(i) {
            Ok((i, _)) => (i, true),
            Err(_) => (i, false),
        };
        let (i, what) = expectation(i)?;
        let span = Span::new(start, state::offset(i));
        let kind = TestActionKind::Expect(Expectation {
            contact,
            negated,
            what,
        });
        return Ok((i, TestAction { kind, span }));
    }
    let (i, contact) = ident("a contact name")(i)?;
    let (i, kind) = match word(i) {
        Ok((i, ("did", _))) => {
            let (i, event) = cut(event_name)(i)?;
            let (i, properties) = if ws(i).starts_with('{') {
                let (i, o) = object(i)?;
                (i, Some(o))
            } else {
                (i, None)
            };
            (
                i,
                TestActionKind::Did {
                    contact,
                    event,
                    properties,
                },
            )
        }
        Ok((i, ("set", _))) => {
            let (i, properties) = object(i)?;
            (
                i,
                TestActionKind::Set {
                    contact,
                    properties,
                },
            )
        }
        Ok((i, (verb @ ("subscribe" | "unsubscribe"), _))) => {
            let (i, list, list_span) = if let Some(rest) = ws(i).strip_prefix('*') {
                (rest, None, span_between(ws(i), rest))
            } else {
                let (i, l) = cut(ident("a list id or `*`"))(i)?;
                let span = l.span;
                (i, Some(l), span)
            };
            (
                i,
                TestActionKind::Subscription {
                    contact,
                    list,
                    subscribed: verb == "subscribe",
                    list_span,
                },
            )
        }
        Ok((i, ("suppress", _))) => {
            if !matches!(peek_word(i), Some("bounce" | "complaint" | "manual")) {
                return failure(unexpected(i, &["`bounce`", "`complaint`", "`manual`"]));
            }
            let (i, reason) = ident("a suppression reason")(i)?;
            (i, TestActionKind::Suppress { contact, reason })
        }
        _ => {
            return failure(unexpected(
                i,
                &[
                    "`did`",
                    "`set`",
                    "`subscribe`",
                    "`unsubscribe`",
                    "`suppress`",
                ],
            ))
        }
    };
    let span = Span::new(start, state::offset(i));
    Ok((i, TestAction { kind, span }))
}

const EXPECTATIONS: &[&str] = &[
    "`in`",
    "`entered`",
    "`left`",
    "`dwell`",
    "`received`",
    "`skipped`",
    "`journey`",
    "`subscribed`",
    "`unsubscribed`",
];

// expectation := "in" ["journey"] ID | "entered" ID | "left" ID ["because" REASON]
//              | "dwell" ID "." ID | "received" ID [INT "times"]
//              | "skipped" ID ["because" ID [ID]]
//              | "journey" ID STATUS ["at" STRING] ["until" instant]   (`waiting` only)
//              | ("subscribed" | "unsubscribed") (ID | "all" | "*")
fn expectation(i: &str) -> PResult<'_, Expect> {
    let Ok((rest, (kw, _))) = word(i) else {
        return failure(unexpected(i, EXPECTATIONS));
    };
    match kw {
        "in" => {
            // `in journey J` (so a bucket cannot be tested under the id `journey`).
            if peek_word(rest) == Some("journey") {
                let (after, _) = keyword("journey")(rest)?;
                let (after, j) = cut(ident("a journey id"))(after)?;
                return Ok((after, Expect::InJourney(j)));
            }
            let (rest, b) = cut(ident("a bucket id"))(rest)?;
            Ok((rest, Expect::InBucket(b)))
        }
        "entered" => {
            let (rest, b) = cut(ident("a bucket id"))(rest)?;
            Ok((rest, Expect::Entered(b)))
        }
        "left" => {
            let (rest, bucket) = cut(ident("a bucket id"))(rest)?;
            let (rest, because) = match keyword("because")(rest) {
                Ok((rest, _)) => match word(rest) {
                    Ok((rest, ("criteria", _))) => (rest, Some(LeaveReason::Criteria)),
                    Ok((rest, ("max_dwell", _))) => (rest, Some(LeaveReason::MaxDwell)),
                    _ => return failure(unexpected(rest, &["`criteria`", "`max_dwell`"])),
                },
                Err(_) => (rest, None),
            };
            Ok((rest, Expect::Left { bucket, because }))
        }
        "dwell" => {
            let (rest, bucket) = cut(ident("a bucket id"))(rest)?;
            let Some(after_dot) = rest.strip_prefix('.') else {
                return failure(unexpected(
                    rest,
                    &["`.` and the dwell label (`bucket.label`)"],
                ));
            };
            let (rest, label) = cut(ident("a dwell label"))(after_dot)?;
            Ok((rest, Expect::Dwell { bucket, label }))
        }
        "received" => {
            let (rest, t) = cut(ident("a template id"))(rest)?;
            if !ws(rest).starts_with(|c: char| c.is_ascii_digit()) {
                return Ok((rest, Expect::Received(t)));
            }
            let (rest, times) = integer(rest)?;
            let rest = match word(rest) {
                Ok((after, ("times" | "time", _))) => after,
                _ => return failure(unexpected(rest, &["`times`"])),
            };
            Ok((rest, Expect::ReceivedTimes { template: t, times }))
        }
        "skipped" => {
            let (rest, template) = cut(ident("a template id"))(rest)?;
            let (rest, because) = match keyword("because")(rest) {
                Ok((rest, _)) => {
                    let start = state::offset(ws(rest));
                    let (rest, reason) = cut(ident("a skip reason"))(rest)?;
                    let needs_list =
                        matches!(reason.name.as_str(), "unsubscribed" | "not_subscribed");
                    let (rest, list) = if needs_list {
                        let (rest, list) = cut(ident("a list id"))(rest)?;
                        (rest, Some(list))
                    } else {
                        (rest, None)
                    };
                    let span = Span::new(start, state::offset(rest));
                    (rest, Some(SkipReason { reason, list, span }))
                }
                Err(_) => (rest, None),
            };
            Ok((rest, Expect::Skipped { template, because }))
        }
        "journey" => {
            let (rest, journey) = cut(ident("a journey id"))(rest)?;
            let (rest, status) = match word(rest) {
                Ok((r, (w, _))) if RunStatus::from_word(w).is_some() => {
                    (r, RunStatus::from_word(w).unwrap_or(RunStatus::Active))
                }
                _ => {
                    return failure(unexpected(
                        rest,
                        &[
                            "`active`",
                            "`waiting`",
                            "`completed`",
                            "`exited`",
                            "`failed`",
                        ],
                    ))
                }
            };
            let (rest, step) = match keyword("at")(rest) {
                Ok((rest, _)) => {
                    let (rest, s) = cut(string_lit)(rest)?;
                    (rest, Some(s))
                }
                Err(_) => (rest, None),
            };
            let (rest, until) = match keyword("until")(rest) {
                Ok((rest, _)) if status == RunStatus::Waiting => {
                    let (rest, at) = cut(instant)(rest)?;
                    (rest, Some(at))
                }
                _ => (rest, None),
            };
            Ok((
                rest,
                Expect::JourneyStatus {
                    journey,
                    status,
                    step,
                    until,
                },
            ))
        }
        "subscribed" | "unsubscribed" => {
            let subscribed = kw == "subscribed";
            let (rest, list, list_span) = if let Some(after) = ws(rest).strip_prefix('*') {
                (after, None, span_between(ws(rest), after))
            } else if let Ok((after, ("all", span))) = word(rest) {
                (after, None, span)
            } else {
                let (after, l) = cut(ident("a list id or `all`"))(rest)?;
                let span = l.span;
                (after, Some(l), span)
            };
            Ok((
                rest,
                Expect::Subscription {
                    list,
                    subscribed,
                    list_span,
                },
            ))
        }
        _ => failure(unexpected(i, EXPECTATIONS)),
    }
}

// object := "{" [field ("," field)* [","]] "}"
fn object(i: &str) -> PResult<'_, ObjectLit> {
    let (mut i, open) = punct("{")(i)?;
    let _level = nest(open)?;
    let mut fields = Vec::new();
    loop {
        if let Ok((rest, close)) = punct("}")(i) {
            return Ok((
                rest,
                ObjectLit {
                    fields,
                    span: open.to(close),
                },
            ));
        }
        if !fields.is_empty() {
            match punct(",")(i) {
                Ok((rest, _)) => i = rest,
                Err(_) => return missing_closer(i, '{', open, &["`,`", "`}`"]),
            }
            if let Ok((rest, close)) = punct("}")(i) {
                return Ok((
                    rest,
                    ObjectLit {
                        fields,
                        span: open.to(close),
                    },
                ));
            }
        }
        let (rest, field) = object_field(i)?;
        fields.push(field);
        i = rest;
    }
}

// field := (WORD | STRING) ":" value
fn object_field(i: &str) -> PResult<'_, ObjectField> {
    let start = ws(i);
    let (rest, key) = if start.starts_with('"') {
        string_lit(start)?
    } else {
        match bare_name(start) {
            Ok((rest, name)) => (
                rest,
                StringLit {
                    value: name.to_string(),
                    span: span_between(start, rest),
                },
            ),
            Err(_) => return failure(unexpected(i, &["a property name", "`}`"])),
        }
    };
    let after = ws(rest);
    let Some(after_colon) = after.strip_prefix(':') else {
        return failure(unexpected(rest, &["`:`"]));
    };
    let (rest, value) = value(after_colon)?;
    let span = Span::new(key.span.start, value.span().end);
    Ok((rest, ObjectField { key, value, span }))
}

// value := literal | "null" | object | "[" [value ("," value)*] "]"
fn value(i: &str) -> PResult<'_, Value> {
    let start = ws(i);
    if start.starts_with('{') {
        let (rest, o) = object(start)?;
        return Ok((rest, Value::Object(o)));
    }
    if start.starts_with('[') {
        let (mut i, open) = punct("[")(start)?;
        let _level = nest(open)?;
        let mut items = Vec::new();
        loop {
            if let Ok((rest, close)) = punct("]")(i) {
                return Ok((rest, Value::List(items, open.to(close))));
            }
            if !items.is_empty() {
                match punct(",")(i) {
                    Ok((rest, _)) => i = rest,
                    Err(_) => return missing_closer(i, '[', open, &["`,`", "`]`"]),
                }
            }
            let (rest, v) = value(i)?;
            items.push(v);
            i = rest;
        }
    }
    if let Ok((rest, ("null", span))) = word(start) {
        return Ok((rest, Value::Null(span)));
    }
    match literal(start) {
        Ok((rest, l)) => Ok((rest, Value::Literal(l))),
        Err(_) => failure(unexpected(
            start,
            &["a value (a string, a number, `true`, `false`, `null`, `{…}` or `[…]`)"],
        )),
    }
}
