//! Campaign bodies (docs/language.md#campaigns): a broadcast's fields.
//!
//! ```text
//! campaign_field := "name" STRING | "audience" ("bucket" | "list") ID | "template" ID
//!                 | "send_at" send_at
//! send_at        := RFC3339                       e.g. 2027-03-01T09:00:00Z, …T09:00:00+02:00
//!                 | DATE TIME "in" "contact" ("." WORD)+     DATE := YYYY-MM-DD  TIME := HH:MM[:SS]
//! ```

use nom::combinator::cut;

use crate::ast::{Audience, CampaignField, CampaignFieldKind, SendAt};
use crate::error::{ParseError, ParseErrorKind};
use crate::lexical::{ident, keyword, punct, string_lit, word, ws};
use crate::nom_error::{expected, failure, unexpected, PResult};
use crate::recover::BodyKind;
use crate::span::Span;
use crate::state::{self, span_between};
use crate::test_ast::DateTimeLit;
use crate::test_block::date_time;

/// True for the words that start a campaign field.
pub(crate) fn is_campaign_keyword(word: &str) -> bool {
    matches!(word, "name" | "audience" | "template" | "send_at")
}

/// The body of a campaign, for recovery.
pub(crate) const CAMPAIGN_FIELDS: BodyKind = BodyKind {
    is_member_keyword: is_campaign_keyword,
    expected: &["a campaign field"],
};

// campaign_field := "name" STRING | "audience" ("bucket" | "list") ID | "template" ID
//                 | "send_at" send_at
/// One field of a campaign body.
pub(crate) fn campaign_field(i: &str) -> PResult<'_, CampaignField> {
    let (i, (kw, keyword_span)) = word(i)?;
    let (i, kind) = match kw {
        "name" => cut(string_lit)(i).map(|(i, s)| (i, CampaignFieldKind::Name(s)))?,
        "audience" => audience(i).map(|(i, a)| (i, CampaignFieldKind::Audience(a)))?,
        "template" => {
            cut(ident("a template id"))(i).map(|(i, t)| (i, CampaignFieldKind::Template(t)))?
        }
        "send_at" => send_at(i).map(|(i, s)| (i, CampaignFieldKind::SendAt(s)))?,
        _ => return expected(i, CAMPAIGN_FIELDS.expected),
    };
    let span = Span::new(keyword_span.start, state::offset(i));
    Ok((
        i,
        CampaignField {
            kind,
            keyword_span,
            span,
        },
    ))
}

// audience := ("bucket" | "list") ID
fn audience(i: &str) -> PResult<'_, Audience> {
    let is_list = match word(i) {
        Ok((_, ("list", _))) => true,
        Ok((_, ("bucket", _))) => false,
        _ => return failure(unexpected(i, &["`bucket`", "`list`"])),
    };
    let (i, _) = word(i)?;
    let what = if is_list { "a list id" } else { "a bucket id" };
    let (i, id) = cut(ident(what))(i)?;
    Ok((i, Audience { is_list, id }))
}

// send_at := RFC3339 | DATE TIME "in" "contact" ("." WORD)+
fn send_at(i: &str) -> PResult<'_, SendAt> {
    let start = ws(i);
    let len = start
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '+' | '.')))
        .unwrap_or(start.len());
    if len == 0 {
        return failure(unexpected(
            i,
            &["an instant (`2027-03-01T09:00:00Z` or `2027-03-01 09:00 in contact.timezone`)"],
        ));
    }
    let first = &start[..len];
    let rest = &start[len..];
    if let Some((date, time)) = first.split_once(['T', 't']) {
        let span = span_between(start, rest);
        return Ok((
            rest,
            instant(date, time, span).unwrap_or_else(|| bad(first, span)),
        ));
    }
    // DATE TIME "in" "contact" ("." WORD)+
    let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    let after = &rest[spaces..];
    let time_len = after
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(after.len());
    let (time, rest) = if spaces > 0 && time_len > 0 {
        (Some(&after[..time_len]), &after[time_len..])
    } else {
        (None, rest)
    };
    let written = span_between(start, rest);
    let raw = &start[..start.len() - rest.len()];
    let parts = time.and_then(|t| date_time(first, Some(t)));
    let Some((year, month, day, Some(t))) = parts else {
        return Ok((rest, bad(raw, written)));
    };
    if !matches!(word(rest), Ok((_, ("in", _)))) {
        return Ok((rest, bad(raw, written)));
    }
    let (rest, _) = keyword("in")(rest)?;
    let (rest, _) = cut(keyword("contact"))(rest)?;
    let mut zone = Vec::new();
    let mut rest = rest;
    loop {
        let Ok((after_dot, _)) = punct(".")(rest) else {
            break;
        };
        let Ok((after_word, (w, _))) = word(after_dot) else {
            return failure(unexpected(after_dot, &["a property name"]));
        };
        zone.push(w.to_string());
        rest = after_word;
    }
    if zone.is_empty() {
        return failure(unexpected(rest, &["`.` and the property naming the zone"]));
    }
    let at = DateTimeLit {
        year,
        month,
        day,
        time: Some(t),
        span: written,
    };
    let span = span_between(start, rest);
    Ok((rest, SendAt::Local { at, zone, span }))
}

/// An RFC 3339 instant split at its `T`: `2027-03-01` and `09:00:00Z` (or `…+02:00`).
fn instant(date: &str, time: &str, span: Span) -> Option<SendAt> {
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(at);
        let sign: i16 = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let h: i16 = h.parse().ok().filter(|h| *h <= 23)?;
        let m: i16 = m.parse().ok().filter(|m| *m <= 59)?;
        (clock, sign * (h * 60 + m))
    };
    if clock.split(':').count() != 3 {
        return None;
    }
    let (year, month, day, t) = date_time(date, Some(clock))?;
    Some(SendAt::Instant {
        at: DateTimeLit {
            year,
            month,
            day,
            time: t,
            span,
        },
        offset_minutes,
        span,
    })
}

/// Reports an invalid `send_at` and stands in for it.
fn bad(raw: &str, span: Span) -> SendAt {
    state::report(ParseError::new(
        ParseErrorKind::InvalidSendAt {
            raw: raw.to_string(),
        },
        span,
    ));
    SendAt::Instant {
        at: DateTimeLit {
            year: 1970,
            month: 1,
            day: 1,
            time: Some((0, 0, 0)),
            span,
        },
        offset_minutes: 0,
        span,
    }
}
