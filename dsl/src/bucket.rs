//! Bucket bodies (docs/language.md#buckets): fields and reactions.
//!
//! ```text
//! bucket_member := field | reaction
//! field    := "name" STRING | "description" STRING | "criteria" expr | "entry" entry_policy
//!           | "min_dwell" DURATION | "max_dwell" DURATION | "enabled" BOOL
//! reaction := "on" reaction_trigger block
//! reaction_trigger := "enter" ["first"] | "leave" ["because" ("criteria" | "max_dwell")]
//!           | "dwell" ("after" | "every") DURATION ["as" ID]
//! entry_policy := "unlimited" | "once" ["per" DURATION]
//! ```

use nom::combinator::{cut, opt};
use nom::sequence::preceded;

use crate::ast::{BucketField, BucketFieldKind, BucketMember, EntryPolicy, LeaveReason};
use crate::ast::{Reaction, ReactionTrigger};
use crate::expr::expr;
use crate::lexical::{bool_lit, duration, ident, keyword, peek_word, string_lit, word};
use crate::nom_error::{expected, failure, unexpected, PResult};
use crate::recover::BodyKind;
use crate::span::Span;
use crate::state;
use crate::step::block;

/// True for the words that start a bucket member.
pub(crate) fn is_bucket_keyword(word: &str) -> bool {
    matches!(
        word,
        "name"
            | "description"
            | "criteria"
            | "entry"
            | "min_dwell"
            | "max_dwell"
            | "enabled"
            | "on"
    )
}

/// The body of a bucket, for recovery.
pub(crate) const BUCKET_MEMBERS: BodyKind = BodyKind {
    is_member_keyword: is_bucket_keyword,
    expected: &["a bucket field", "a reaction (`on …`)"],
};

// bucket_member := field | reaction
/// One member of a bucket body.
pub(crate) fn bucket_member(i: &str) -> PResult<'_, BucketMember> {
    if peek_word(i) == Some("on") {
        let (i, r) = reaction(i)?;
        return Ok((i, BucketMember::Reaction(r)));
    }
    let (i, f) = field(i)?;
    Ok((i, BucketMember::Field(f)))
}

// field := "name" STRING | "description" STRING | "criteria" expr | "entry" entry_policy
//        | "min_dwell" DURATION | "max_dwell" DURATION | "enabled" BOOL
fn field(i: &str) -> PResult<'_, BucketField> {
    let (i, (kw, keyword_span)) = word(i)?;
    let (i, kind) = match kw {
        "name" => cut(string_lit)(i).map(|(i, s)| (i, BucketFieldKind::Name(s)))?,
        "description" => cut(string_lit)(i).map(|(i, s)| (i, BucketFieldKind::Description(s)))?,
        "criteria" => cut(expr)(i).map(|(i, e)| (i, BucketFieldKind::Criteria(e)))?,
        "entry" => cut(entry_policy)(i).map(|(i, p)| (i, BucketFieldKind::Entry(p)))?,
        "min_dwell" => cut(duration)(i).map(|(i, d)| (i, BucketFieldKind::MinDwell(d)))?,
        "max_dwell" => cut(duration)(i).map(|(i, d)| (i, BucketFieldKind::MaxDwell(d)))?,
        "enabled" => cut(bool_lit)(i).map(|(i, b)| (i, BucketFieldKind::Enabled(b)))?,
        _ => return expected(i, BUCKET_MEMBERS.expected),
    };
    let span = Span::new(keyword_span.start, state::offset(i));
    Ok((
        i,
        BucketField {
            kind,
            keyword_span,
            span,
        },
    ))
}

// entry_policy := "unlimited" | "once" ["per" DURATION]
/// How often a contact may enter (buckets and journeys).
pub(crate) fn entry_policy(i: &str) -> PResult<'_, EntryPolicy> {
    match word(i) {
        Ok((i, ("unlimited", _))) => Ok((i, EntryPolicy::Unlimited)),
        Ok((i, ("once", _))) => {
            let (i, per) = opt(preceded(keyword("per"), cut(duration)))(i)?;
            Ok((i, per.map_or(EntryPolicy::Once, EntryPolicy::OncePer)))
        }
        _ => expected(i, &["`unlimited`", "`once`", "`once per …`"]),
    }
}

// reaction := "on" reaction_trigger block
fn reaction(i: &str) -> PResult<'_, Reaction> {
    let (i, on) = keyword("on")(i)?;
    let (i, trigger) = cut(reaction_trigger)(i)?;
    let trigger_span = Span::new(on.start, state::offset(i));
    let (i, body) = match block(i) {
        Ok(ok) => ok,
        Err(nom::Err::Error(_)) => {
            let mut what = match trigger {
                ReactionTrigger::Enter { first: false } => vec!["`first`"],
                ReactionTrigger::Leave { because: None } => vec!["`because`"],
                ReactionTrigger::DwellAfter { label: None, .. }
                | ReactionTrigger::DwellEvery { label: None, .. } => vec!["`as`"],
                _ => vec![],
            };
            what.push("`{`");
            return failure(unexpected(i, &what));
        }
        Err(e) => return Err(e),
    };
    let span = on.to(body.span);
    Ok((
        i,
        Reaction {
            trigger,
            trigger_span,
            body,
            span,
        },
    ))
}

// reaction_trigger := "enter" ["first"] | "leave" ["because" ("criteria" | "max_dwell")]
//                   | "dwell" ("after" | "every") DURATION ["as" ID]
fn reaction_trigger(i: &str) -> PResult<'_, ReactionTrigger> {
    let what = &["`enter`", "`leave`", "`dwell`"];
    let Ok((rest, (kw, _))) = word(i) else {
        return expected(i, what);
    };
    let start = i;
    let i = rest;
    match kw {
        "enter" => {
            let (i, first) = opt(keyword("first"))(i)?;
            Ok((
                i,
                ReactionTrigger::Enter {
                    first: first.is_some(),
                },
            ))
        }
        "leave" => {
            let (i, because) = opt(preceded(keyword("because"), cut(leave_reason)))(i)?;
            Ok((i, ReactionTrigger::Leave { because }))
        }
        "dwell" => {
            let (i, (how, _)) = match word(i) {
                Ok(ok @ (_, ("after" | "every", _))) => ok,
                _ => return failure(unexpected(i, &["`after`", "`every`"])),
            };
            let (i, d) = cut(duration)(i)?;
            let (i, label) = opt(preceded(keyword("as"), cut(ident("a label"))))(i)?;
            let trigger = if how == "after" {
                ReactionTrigger::DwellAfter { after: d, label }
            } else {
                ReactionTrigger::DwellEvery { every: d, label }
            };
            Ok((i, trigger))
        }
        _ => expected(start, what),
    }
}

// leave_reason := "criteria" | "max_dwell"
fn leave_reason(i: &str) -> PResult<'_, LeaveReason> {
    match word(i) {
        Ok((i, ("criteria", _))) => Ok((i, LeaveReason::Criteria)),
        Ok((i, ("max_dwell", _))) => Ok((i, LeaveReason::MaxDwell)),
        _ => expected(i, &["`criteria`", "`max_dwell`"]),
    }
}
