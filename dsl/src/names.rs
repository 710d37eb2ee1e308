//! Event names and property paths: the dotted names of the language.

use nom::character::complete::char;

use crate::ast::{EventName, Path, PathRoot, PathSegment};
use crate::lexical::{bare_name, string_lit, ws};
use crate::nom_error::{expected, failure, unexpected, PResult};
use crate::state::span_between;

// event  := string | dotted
// dotted := name ("." name)*          name := [A-Za-z_][A-Za-z0-9_]*
/// An event name: `user.signed_up`, or quoted `"Order Completed"`. No spaces around the dots.
pub(crate) fn event_name(i: &str) -> PResult<'_, EventName> {
    let start = ws(i);
    if start.starts_with('"') {
        let (rest, s) = string_lit(start)?;
        return Ok((
            rest,
            EventName {
                name: s.value,
                span: s.span,
            },
        ));
    }
    let Ok((mut rest, _)) = bare_name(start) else {
        return expected(i, &["an event name"]);
    };
    while let Ok((after_dot, _)) = char::<_, ()>('.')(rest) {
        match bare_name(after_dot) {
            Ok((after_name, _)) => rest = after_name,
            Err(_) => return failure(unexpected(after_dot, &["a name after `.`"])),
        }
    }
    let name = start[..start.len() - rest.len()].to_string();
    Ok((
        rest,
        EventName {
            name,
            span: span_between(start, rest),
        },
    ))
}

// path    := ("contact" | "event" | "trigger") ("." segment)+
// segment := name | string
/// A property path: `contact.plan`, `contact.address.country`, `contact."first name"`,
/// `event.amount`, `trigger.plan`. No spaces around the dots. `trigger` is a path root only
/// when a `.` follows at once (otherwise it is the journey header keyword).
pub(crate) fn path(i: &str) -> PResult<'_, Path> {
    let start = ws(i);
    let (after_root, root) = match bare_name(start) {
        Ok((rest, "contact")) => (rest, PathRoot::Contact),
        Ok((rest, "event")) => (rest, PathRoot::Event),
        Ok((rest, "trigger")) if rest.starts_with('.') => (rest, PathRoot::Trigger),
        _ => {
            return expected(
                i,
                &["a property path (`contact.…`, `event.…` or `trigger.…`)"],
            )
        }
    };
    let root_span = span_between(start, after_root);
    let mut rest = after_root;
    let mut segments = Vec::new();
    while let Ok((after_dot, _)) = char::<_, ()>('.')(rest) {
        let (after_segment, segment) = path_segment(after_dot)?;
        segments.push(segment);
        rest = after_segment;
    }
    if segments.is_empty() {
        return failure(unexpected(rest, &["`.` and a property name"]));
    }
    Ok((
        rest,
        Path {
            root,
            root_span,
            segments,
            span: span_between(start, rest),
        },
    ))
}

// segment := name | string
/// Whether `i` starts (after trivia) with a `trigger.` path, as opposed to the `trigger`
/// keyword of a journey header.
pub(crate) fn at_trigger_path(i: &str) -> bool {
    matches!(bare_name(ws(i)), Ok((rest, "trigger")) if rest.starts_with('.'))
}

/// One key of a path, right after its `.` (no trivia allowed).
fn path_segment(i: &str) -> PResult<'_, PathSegment> {
    if i.starts_with('"') {
        let (rest, s) = string_lit(i)?;
        return Ok((
            rest,
            PathSegment {
                name: s.value,
                span: s.span,
            },
        ));
    }
    match bare_name(i) {
        Ok((rest, name)) => Ok((
            rest,
            PathSegment {
                name: name.to_string(),
                span: span_between(i, rest),
            },
        )),
        Err(_) => failure(unexpected(i, &["a property name"])),
    }
}
