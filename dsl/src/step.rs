//! Journey steps and step blocks (docs/language.md#steps), shared by journeys and bucket reactions.
//!
//! ```text
//! block := "{" step* "}"
//! step  := "send" TEMPLATE | "wait" DURATION
//!        | "wait" "until" expr "," "at" "most" DURATION
//!        | "wait" "until" TIME ["on" days] ["in" PATH]
//!        | "if" expr block ("else" "if" expr block)* ["else" block]
//!        | "start" JOURNEY | "emit" EVENT | "exit"
//! days  := "weekdays" | "weekends" | DAY ("," DAY)*
//! ```

use nom::combinator::{cut, opt};
use nom::sequence::preceded;

use crate::ast::{Block, DaySpec, IfBranch, Step, StepKind, Weekday};
use crate::expr::{expr, nest, A_CONDITION};
use crate::lexical::{duration, ident, keyword, peek_two_words, peek_word, punct};
use crate::lexical::{starts_number, time_of_day, word};
use crate::names::{event_name, path};
use crate::nom_error::{expected, expected_one, failure, unexpected, PResult};
use crate::recover::{body, BodyKind};
use crate::span::Span;
use crate::state;

/// True for the words that start a step.
pub(crate) fn is_step_keyword(word: &str) -> bool {
    matches!(word, "send" | "wait" | "if" | "start" | "emit" | "exit")
}

/// The body of a step block, for recovery.
pub(crate) const STEPS: BodyKind = BodyKind {
    is_member_keyword: is_step_keyword,
    expected: &["a step"],
};

// block := "{" step* "}"
/// A `{ … }` block of steps. Broken steps inside are reported and skipped.
pub(crate) fn block(i: &str) -> PResult<'_, Block> {
    let (i, open) = punct("{")(i)?;
    let _level = nest(open)?;
    let parsed = body(i, open, &STEPS, step);
    let span = Span::new(open.start, parsed.end);
    Ok((
        parsed.rest,
        Block {
            steps: parsed.members,
            span,
        },
    ))
}

// step := send | wait | if | start | emit | exit
/// One step.
pub(crate) fn step(i: &str) -> PResult<'_, Step> {
    match peek_word(i) {
        Some("send") => send(i),
        Some("wait") => wait(i),
        Some("if") => if_step(i),
        Some("start") => start(i),
        Some("emit") => emit(i),
        Some("exit") => exit(i),
        _ => expected(i, &["a step"]),
    }
}

/// A step from its keyword span to the end of what was parsed.
fn step_at(rest: &str, keyword: Span, kind: StepKind) -> PResult<'_, Step> {
    let span = Span::new(keyword.start, state::offset(rest));
    Ok((rest, Step { kind, span }))
}

// send := "send" TEMPLATE
fn send(i: &str) -> PResult<'_, Step> {
    let (i, kw) = keyword("send")(i)?;
    let (i, template) = cut(ident("a template name"))(i)?;
    step_at(i, kw, StepKind::Send(template))
}

// start := "start" JOURNEY
fn start(i: &str) -> PResult<'_, Step> {
    let (i, kw) = keyword("start")(i)?;
    let (i, journey) = cut(ident("a journey id"))(i)?;
    step_at(i, kw, StepKind::Start(journey))
}

// emit := "emit" EVENT
fn emit(i: &str) -> PResult<'_, Step> {
    let (i, kw) = keyword("emit")(i)?;
    let (i, event) = cut(event_name)(i)?;
    step_at(i, kw, StepKind::Emit(event))
}

// exit := "exit"
fn exit(i: &str) -> PResult<'_, Step> {
    let (i, kw) = keyword("exit")(i)?;
    step_at(i, kw, StepKind::Exit)
}

// wait := "wait" DURATION | "wait" "until" (wait_until_time | wait_until_condition)
fn wait(i: &str) -> PResult<'_, Step> {
    let (i, kw) = keyword("wait")(i)?;
    let Ok((i, _)) = keyword("until")(i) else {
        let (i, d) = match duration(i) {
            Ok(ok) => ok,
            Err(_) => return failure(unexpected(i, &["a duration", "`until`"])),
        };
        return step_at(i, kw, StepKind::Wait(d));
    };
    if starts_number(i) {
        wait_until_time(i, kw)
    } else {
        wait_until_condition(i, kw)
    }
}

// wait_until_condition := expr "," "at" "most" DURATION
fn wait_until_condition(i: &str, kw: Span) -> PResult<'_, Step> {
    let (i, cond) = match expr(i) {
        Ok(ok) => ok,
        Err(nom::Err::Error(_)) => {
            return failure(unexpected(i, &[A_CONDITION, "a time of day"]));
        }
        Err(e) => return Err(e),
    };
    let Ok((i, _)) = punct(",")(i) else {
        return failure(unexpected(i, &["`and`", "`or`", "`, at most …`"]));
    };
    let (i, _) = cut(keyword("at"))(i)?;
    let (i, _) = cut(keyword("most"))(i)?;
    let (i, at_most) = cut(duration)(i)?;
    step_at(i, kw, StepKind::WaitUntil { cond, at_most })
}

// wait_until_time := TIME [on_days] ["in" PATH]
fn wait_until_time(i: &str, kw: Span) -> PResult<'_, Step> {
    let (i, time) = time_of_day(i)?;
    let (i, days) = opt(on_days)(i)?;
    let (days, days_span) = match days {
        Some((spec, span)) => (Some(spec), Some(span)),
        None => (None, None),
    };
    let (i, zone) = opt(preceded(keyword("in"), cut(path)))(i)?;
    let kind = StepKind::WaitUntilTime {
        time,
        days,
        days_span,
        zone,
    };
    step_at(i, kw, kind)
}

// on_days := "on" days
/// The days of a `wait until`, with the span from `on` to the last day.
fn on_days(i: &str) -> PResult<'_, (DaySpec, Span)> {
    let (i, on) = keyword("on")(i)?;
    let (i, spec) = cut(days)(i)?;
    Ok((i, (spec, Span::new(on.start, state::offset(i)))))
}

// days := "weekdays" | "weekends" | DAY ("," DAY)*
fn days(i: &str) -> PResult<'_, DaySpec> {
    match word(i) {
        Ok((rest, ("weekdays", _))) => return Ok((rest, DaySpec::Weekdays)),
        Ok((rest, ("weekends", _))) => return Ok((rest, DaySpec::Weekends)),
        _ => {}
    }
    let what = "`weekdays`, `weekends` or a day name (`mon` … `sun`)";
    let (mut i, first) = day(i, what)?;
    let mut list = vec![first];
    while let Ok((rest, _)) = punct(",")(i) {
        let (rest, next) = cut(|i| day(i, "a day name (`mon` … `sun`)"))(rest)?;
        list.push(next);
        i = rest;
    }
    Ok((i, DaySpec::Days(list)))
}

// DAY := "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun"
fn day<'a>(i: &'a str, what: &'static str) -> PResult<'a, Weekday> {
    match word(i) {
        Ok((rest, (name, _))) => match weekday(name) {
            Some(day) => Ok((rest, day)),
            None => expected_one(i, what),
        },
        Err(_) => expected_one(i, what),
    }
}

/// A three-letter day name.
fn weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

// if := "if" expr block ("else" "if" expr block)* ["else" block]
fn if_step(i: &str) -> PResult<'_, Step> {
    let (mut i, kw) = keyword("if")(i)?;
    let mut branches = Vec::new();
    let mut branch_start = kw;
    let else_block = loop {
        let (rest, cond) = cut(expr)(i)?;
        let (rest, body) = match block(rest) {
            Ok(ok) => ok,
            Err(nom::Err::Error(_)) => {
                return failure(unexpected(rest, &["`and`", "`or`", "`{`"]));
            }
            Err(e) => return Err(e),
        };
        let span = branch_start.to(body.span);
        branches.push(IfBranch { cond, body, span });
        i = rest;
        let Ok((rest, _)) = keyword("else")(i) else {
            break None;
        };
        if let Ok((rest, if_kw)) = keyword("if")(rest) {
            branch_start = if_kw;
            i = rest;
            continue;
        }
        match block(rest) {
            Ok((rest, else_block)) => {
                i = rest;
                break Some(else_block);
            }
            Err(nom::Err::Error(_)) => return failure(unexpected(rest, &["`if`", "`{`"])),
            Err(e) => return Err(e),
        }
    };
    step_at(
        i,
        kw,
        StepKind::If {
            branches,
            else_block,
        },
    )
}

/// True when the input starts with the journey header `exit when` rather than the step `exit`.
pub(crate) fn at_exit_when(i: &str) -> bool {
    peek_two_words(i) == (Some("exit"), Some("when"))
}
