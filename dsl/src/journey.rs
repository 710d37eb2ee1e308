//! Journey bodies (docs/language.md#journeys): headers and steps, in any order.
//!
//! ```text
//! journey_member := header | step
//! header  := "name" STRING | "description" STRING | "trigger" trigger
//!          | "entry" entry_policy | "exit" "when" expr
//! trigger := "event" EVENT [filter] | "enter" ID | "leave" ID | "dwell" ID "." ID
//! ```

use nom::combinator::{cut, opt};

use crate::ast::{JourneyHeader, JourneyHeaderKind, JourneyMember, Trigger};
use crate::bucket::entry_policy;
use crate::expr::{expr, filter};
use crate::lexical::{ident, keyword, peek_word, string_lit, word};
use crate::names::event_name;
use crate::nom_error::{expected, failure, unexpected, PResult};
use crate::recover::BodyKind;
use crate::span::Span;
use crate::state;
use crate::step::{at_exit_when, is_step_keyword, step};
use crate::token::is_word_start;

/// True for the words that start a journey member.
pub(crate) fn is_journey_keyword(word: &str) -> bool {
    matches!(word, "name" | "description" | "trigger" | "entry") || is_step_keyword(word)
}

/// The body of a journey, for recovery.
pub(crate) const JOURNEY_MEMBERS: BodyKind = BodyKind {
    is_member_keyword: is_journey_keyword,
    expected: &["a journey header", "a step"],
};

// journey_member := header | step
/// One member of a journey body.
pub(crate) fn journey_member(i: &str) -> PResult<'_, JourneyMember> {
    let is_header = matches!(
        peek_word(i),
        Some("name" | "description" | "trigger" | "entry")
    ) || at_exit_when(i);
    if is_header {
        let (i, h) = header(i)?;
        Ok((i, JourneyMember::Header(h)))
    } else {
        let (i, s) = step(i)?;
        Ok((i, JourneyMember::Step(s)))
    }
}

// header := "name" STRING | "description" STRING | "trigger" trigger
//         | "entry" entry_policy | "exit" "when" expr
fn header(i: &str) -> PResult<'_, JourneyHeader> {
    let (i, (kw, kw_span)) = word(i)?;
    let (i, keyword_span, kind) = match kw {
        "name" => {
            let (i, s) = cut(string_lit)(i)?;
            (i, kw_span, JourneyHeaderKind::Name(s))
        }
        "description" => {
            let (i, s) = cut(string_lit)(i)?;
            (i, kw_span, JourneyHeaderKind::Description(s))
        }
        "entry" => {
            let (i, p) = cut(entry_policy)(i)?;
            (i, kw_span, JourneyHeaderKind::Entry(p))
        }
        "exit" => {
            let (i, when) = cut(keyword("when"))(i)?;
            let (i, e) = cut(expr)(i)?;
            (i, kw_span.to(when), JourneyHeaderKind::ExitWhen(e))
        }
        "trigger" => {
            let (i, (kind_span, t)) = cut(trigger)(i)?;
            (i, kw_span.to(kind_span), JourneyHeaderKind::Trigger(t))
        }
        _ => return expected(i, JOURNEY_MEMBERS.expected),
    };
    let span = Span::new(kw_span.start, state::offset(i));
    Ok((
        i,
        JourneyHeader {
            kind,
            keyword_span,
            span,
        },
    ))
}

// trigger := "event" EVENT [filter] | "enter" ID | "leave" ID | "dwell" ID "." ID   (no spaces around ".")
/// What starts a journey, with the span of its kind keyword (`event`, `enter`, …).
fn trigger(i: &str) -> PResult<'_, (Span, Trigger)> {
    let what = &["`event`", "`enter`", "`leave`", "`dwell`"];
    let Ok((rest, (kind, kind_span))) = word(i) else {
        return expected(i, what);
    };
    let trigger = match kind {
        "event" => {
            let (rest, event) = cut(event_name)(rest)?;
            let (rest, filter) = opt(filter)(rest)?;
            return Ok((rest, (kind_span, Trigger::Event { event, filter })));
        }
        "enter" => cut(ident("a bucket id"))(rest).map(|(r, b)| (r, Trigger::Enter(b))),
        "leave" => cut(ident("a bucket id"))(rest).map(|(r, b)| (r, Trigger::Leave(b))),
        "dwell" => {
            // `bucket.label` is one token, like an event name: no spaces around the dot.
            let (rest, bucket) = cut(ident("a bucket id"))(rest)?;
            let Some(label_start) = rest
                .strip_prefix('.')
                .filter(|r| r.starts_with(is_word_start))
            else {
                let what = &["`.` and a dwell label, as in `went_dormant.after_3d`"];
                return failure(unexpected(rest, what));
            };
            let (rest, label) = cut(ident("a dwell label"))(label_start)?;
            Ok((rest, Trigger::Dwell { bucket, label }))
        }
        _ => return expected(i, what),
    };
    trigger.map(|(rest, t)| (rest, (kind_span, t)))
}
