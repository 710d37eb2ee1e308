//! Lexical productions: whitespace and comments, words and keywords, punctuation, identifiers,
//! strings, numbers, durations and times of day.
//!
//! Convention for every production in this crate: it skips the trivia *before* its first
//! token and never consumes trivia after its last one, so `state::offset(rest)` right after a
//! production is the end of what it parsed.
//!
//! Malformed tokens (a bad escape, an uppercase identifier, a duration with a bad unit) are
//! reported with `state::report` and still produce a value, so parsing goes on as if the user
//! had written what they meant.

use nom::bytes::complete::{tag, take_while};
use nom::character::complete::{char, satisfy};
use nom::combinator::{opt, recognize};
use nom::sequence::pair;

use crate::ast::{BoolLit, Duration, DurationPart, DurationUnit, Ident, IntLit, NumberLit};
use crate::ast::{Literal, StringLit, TimeOfDay};
use crate::error::{DurationProblem, IdentProblem, NumberProblem, ParseError, ParseErrorKind};
use crate::nom_error::{expected, expected_one, expected_token, PResult};
use crate::span::Span;
use crate::state::{self, span_between};
use crate::token::{self, is_word_char, is_word_start};

/// Skips whitespace and `//` comments.
///
/// ```text
/// ws := ([ \t\r\n] | "//" [^\n]*)*
/// ```
pub(crate) fn ws(i: &str) -> &str {
    token::skip_trivia(i).0
}

// word := [A-Za-z_][A-Za-z0-9_]*
/// A bare word after trivia, with its span. Fails without consuming anything.
pub(crate) fn word(i: &str) -> PResult<'_, (&str, Span)> {
    let start = ws(i);
    match bare_name(start) {
        Ok((rest, w)) => Ok((rest, (w, span_between(start, rest)))),
        Err(_) => expected(i, &[]),
    }
}

/// The word at the start of `i` (after trivia), if there is one.
pub(crate) fn peek_word(i: &str) -> Option<&str> {
    word(i).ok().map(|(_, (w, _))| w)
}

/// The two words at the start of `i` (after trivia).
pub(crate) fn peek_two_words(i: &str) -> (Option<&str>, Option<&str>) {
    match word(i) {
        Ok((rest, (w, _))) => (Some(w), peek_word(rest)),
        Err(_) => (None, None),
    }
}

/// The contextual keyword `kw`, as a whole word. Fails with "expected `kw`".
pub(crate) fn keyword<'a>(kw: &'static str) -> impl FnMut(&'a str) -> PResult<'a, Span> {
    move |i| match word(i) {
        Ok((rest, (w, span))) if w == kw => Ok((rest, span)),
        _ => expected_token(i, kw),
    }
}

/// Punctuation `p` (`{`, `)`, `,`, …) after trivia. Fails with "expected `p`".
pub(crate) fn punct<'a>(p: &'static str) -> impl FnMut(&'a str) -> PResult<'a, Span> {
    move |i| {
        let start = ws(i);
        match tag::<_, _, ()>(p)(start) {
            Ok((rest, _)) => Ok((rest, span_between(start, rest))),
            Err(_) => expected_token(i, p),
        }
    }
}

/// True when the next token (after trivia) is the punctuation `p`.
pub(crate) fn at_punct(i: &str, p: &str) -> bool {
    ws(i).starts_with(p)
}

/// The longest identifier users may write.
pub const MAX_IDENT_LEN: usize = 48;

// ident := [a-z][a-z0-9_]*        (at most 48 characters)
/// An identifier. `what` names it in errors ("a template name"). Identifier-looking words that
/// break the rules (`WentDormant`, `_x`, too long) are reported and kept as written.
pub(crate) fn ident<'a>(what: &'static str) -> impl FnMut(&'a str) -> PResult<'a, Ident> {
    move |i| {
        let Ok((rest, (name, span))) = word(i) else {
            return expected_one(i, what);
        };
        let problem = if name.chars().any(|c| c.is_ascii_uppercase()) {
            Some(IdentProblem::Uppercase)
        } else if name.starts_with('_') {
            Some(IdentProblem::LeadingUnderscore)
        } else if name.len() > MAX_IDENT_LEN {
            Some(IdentProblem::TooLong)
        } else {
            None
        };
        if let Some(reason) = problem {
            state::report(ParseError::new(
                ParseErrorKind::InvalidIdentifier {
                    name: name.to_string(),
                    reason,
                },
                span,
            ));
        }
        let ident = Ident {
            name: name.to_string(),
            span,
        };
        Ok((rest, ident))
    }
}

// string := '"' (char | escape)* '"'
// escape := '\"' | '\\' | '\n' | '\t' | '\u{' hex{1,6} '}'
/// A string literal with its escapes decoded. An unterminated string ends at the end of its
/// line; bad escapes are reported and dropped.
pub(crate) fn string_lit(i: &str) -> PResult<'_, StringLit> {
    let start = ws(i);
    if !start.starts_with('"') {
        return expected(i, &["a string"]);
    }
    let len = token::string_token_len(start);
    let raw = &start[..len];
    let rest = &start[len..];
    let terminated = len >= 2 && raw.ends_with('"') && !ends_with_escaped_quote(raw);
    let body = if terminated {
        &raw[1..len - 1]
    } else {
        &raw[1..]
    };
    let body_offset = state::offset(start) + 1;
    let value = unescape(body, body_offset);
    let span = span_between(start, rest);
    if !terminated {
        state::report(ParseError::new(ParseErrorKind::UnterminatedString, span));
    }
    Ok((rest, StringLit { value, span }))
}

/// True when the final `"` of `raw` (at least 2 bytes, ending with `"`) is escaped by an odd
/// run of backslashes, so the string is in fact unterminated: `"abc\"` at the end of input.
fn ends_with_escaped_quote(raw: &str) -> bool {
    let before = &raw[1..raw.len() - 1];
    before.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Decodes the escapes of a string body that starts at byte `offset` in the source.
fn unescape(body: &str, offset: usize) -> String {
    let mut value = String::with_capacity(body.len());
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        let decoded = match body[at + 1..].chars().next() {
            Some('"') => Some(('"', 2)),
            Some('\\') => Some(('\\', 2)),
            Some('n') => Some(('\n', 2)),
            Some('t') => Some(('\t', 2)),
            Some('u') => unicode_escape(&body[at..]),
            _ => None,
        };
        let end = match decoded {
            Some((c, len)) => {
                value.push(c);
                at + len
            }
            None => {
                let escape = bad_escape_text(&body[at..]);
                let end = at + escape.len();
                state::report(ParseError::new(
                    ParseErrorKind::InvalidEscape { escape },
                    Span::new(offset + at, offset + end),
                ));
                end
            }
        };
        // Skip the rest of the escape.
        while chars.as_str().len() > body.len() - end {
            chars.next();
        }
    }
    value
}

/// Decodes `\u{hex}` at the start of `s`: the character and the escape's length in bytes.
fn unicode_escape(s: &str) -> Option<(char, usize)> {
    let inner = s.strip_prefix("\\u{")?;
    let close = inner.find('}')?;
    let hex = &inner[..close];
    if hex.is_empty() || hex.len() > 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
    Some((ch, 3 + close + 1))
}

/// The text of a bad escape at the start of `s` (which starts with `\`), for the error.
fn bad_escape_text(s: &str) -> String {
    let mut chars = s.chars();
    chars.next();
    match chars.next() {
        None => "\\".to_string(),
        Some('u') if s[2..].starts_with('{') => {
            let close = s[2..]
                .char_indices()
                .take(10)
                .find(|&(_, c)| c == '}')
                .map(|(n, _)| 2 + n + 1);
            match close {
                Some(end) => s[..end].to_string(),
                None => "\\u{".to_string(),
            }
        }
        Some(c) => format!("\\{c}"),
    }
}

/// The run of characters that make up a number-like token (`-?[0-9][A-Za-z0-9_.:]*`) at the
/// start of `i` (after trivia), or `None` when there is no digit there.
fn number_like(i: &str) -> Option<(&str, &str)> {
    let start = ws(i);
    let result: nom::IResult<&str, &str, ()> = recognize(pair(
        pair(opt(char('-')), satisfy(|c| c.is_ascii_digit())),
        take_while(|c| is_word_char(c) || c == '.' || c == ':'),
    ))(start);
    result.ok()
}

/// True when `raw` matches `-?[0-9]+(\.[0-9]+)?`.
fn is_number(raw: &str) -> bool {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole) && fraction.is_none_or(all_digits)
}

// number := "-"? [0-9]+ ("." [0-9]+)?
/// A number literal, kept as written. A malformed one is reported and kept.
pub(crate) fn number_lit(i: &str) -> PResult<'_, NumberLit> {
    let Some((rest, raw)) = number_like(i) else {
        return expected(i, &["a number"]);
    };
    let span = Span::new(state::offset(rest) - raw.len(), state::offset(rest));
    if !is_number(raw) {
        state::report(ParseError::new(
            ParseErrorKind::InvalidNumber {
                raw: raw.to_string(),
                reason: NumberProblem::Malformed,
            },
            span,
        ));
    }
    Ok((
        rest,
        NumberLit {
            raw: raw.to_string(),
            span,
        },
    ))
}

// integer := "-"? [0-9]+
/// A whole number (the right side of `count … CMP n`).
pub(crate) fn integer(i: &str) -> PResult<'_, IntLit> {
    let Some((rest, raw)) = number_like(i) else {
        return expected(i, &["a whole number"]);
    };
    let span = Span::new(state::offset(rest) - raw.len(), state::offset(rest));
    let (value, problem) = if !is_number(raw) {
        (0, Some(NumberProblem::Malformed))
    } else if raw.contains('.') {
        (0, Some(NumberProblem::NotAnInteger))
    } else {
        match raw.parse::<i64>() {
            Ok(v) => (v, None),
            Err(_) => (0, Some(NumberProblem::OutOfRange)),
        }
    };
    if let Some(reason) = problem {
        state::report(ParseError::new(
            ParseErrorKind::InvalidNumber {
                raw: raw.to_string(),
                reason,
            },
            span,
        ));
    }
    Ok((rest, IntLit { value, span }))
}

// duration := "-"? ([0-9]+ unit)+          (units from the largest to the smallest)
// unit     := "w" | "d" | "h" | "m" | "s"
/// A duration. A malformed one is reported and kept with the parts that could be read.
pub(crate) fn duration(i: &str) -> PResult<'_, Duration> {
    let Some((mut rest, raw)) = number_like(i) else {
        return expected(i, &["a duration"]);
    };
    let mut span = Span::new(state::offset(rest) - raw.len(), state::offset(rest));
    let negative = raw.starts_with('-');
    let (parts, mut problem) = duration_parts(raw.trim_start_matches('-'));
    let mut raw = raw.to_string();
    if problem == Some(DurationProblem::MissingUnit) {
        // `7 days`: take the unit word along, so the mistake is one error, not two.
        if let Some((after, unit)) = detached_unit(rest) {
            raw = format!("{raw} {unit}");
            span.end = state::offset(after);
            rest = after;
            problem = Some(DurationProblem::DetachedUnit { unit: unit.into() });
        }
    }
    if let Some(reason) = problem {
        state::report(ParseError::new(
            ParseErrorKind::InvalidDuration { raw, reason },
            span,
        ));
    }
    Ok((
        rest,
        Duration {
            negative,
            parts,
            span,
        },
    ))
}

/// A unit word (`d`, `days`, `hours`, …) after spaces on the same line, and the rest after it.
fn detached_unit(i: &str) -> Option<(&str, &str)> {
    let spaces = i.len() - i.trim_start_matches([' ', '\t']).len();
    if spaces == 0 {
        return None;
    }
    let (rest, unit) = bare_name(&i[spaces..]).ok()?;
    crate::error::unit_suffix(unit).map(|_| (rest, unit))
}

/// Splits `1d12h` into parts, with the first problem found.
pub(crate) fn duration_parts(text: &str) -> (Vec<DurationPart>, Option<DurationProblem>) {
    let mut parts: Vec<DurationPart> = Vec::new();
    if text.contains('.') {
        return (parts, Some(DurationProblem::Fractional));
    }
    let mut rest = text;
    while !rest.is_empty() {
        let digits_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (digits, after) = rest.split_at(digits_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit_text, after) = after.split_at(unit_len);
        rest = after;
        if digits.is_empty() {
            return (
                parts,
                Some(DurationProblem::BadUnit {
                    unit: unit_text.into(),
                }),
            );
        }
        let unit = match unit_text {
            "" => return (parts, Some(DurationProblem::MissingUnit)),
            "s" => DurationUnit::Seconds,
            "m" => DurationUnit::Minutes,
            "h" => DurationUnit::Hours,
            "d" => DurationUnit::Days,
            "w" => DurationUnit::Weeks,
            other => {
                return (parts, Some(DurationProblem::BadUnit { unit: other.into() }));
            }
        };
        let Ok(value) = digits.parse::<u64>() else {
            return (parts, Some(DurationProblem::Overflow));
        };
        if let Some(previous) = parts.last() {
            if previous.unit == unit {
                let unit = unit.suffix().to_string();
                return (parts, Some(DurationProblem::RepeatedUnit { unit }));
            }
            if previous.unit < unit || parts.iter().any(|p| p.unit == unit) {
                return (parts, Some(DurationProblem::UnitsOutOfOrder));
            }
        }
        parts.push(DurationPart { value, unit });
    }
    let total = parts.iter().try_fold(0u64, |acc, p| {
        p.value
            .checked_mul(p.unit.seconds())
            .and_then(|s| acc.checked_add(s))
    });
    match total {
        Some(t) if t <= i64::MAX as u64 => (parts, None),
        _ => (parts, Some(DurationProblem::Overflow)),
    }
}

// time := [0-9]{1,2} ":" [0-9]{2}            (00:00 to 23:59)
/// A local time of day. A malformed one is reported and read as `00:00`.
pub(crate) fn time_of_day(i: &str) -> PResult<'_, TimeOfDay> {
    let start = ws(i);
    let Some((rest, raw)) = number_like(start) else {
        return expected(i, &["a time of day"]);
    };
    let span = span_between(start, rest);
    let parsed = raw
        .split_once(':')
        .and_then(|(h, m)| Some((clock_field(h, 1, 23)?, clock_field(m, 2, 59)?)));
    let (hour, minute) = parsed.unwrap_or_else(|| {
        state::report(ParseError::new(
            ParseErrorKind::InvalidTimeOfDay {
                raw: raw.to_string(),
            },
            span,
        ));
        (0, 0)
    });
    Ok((rest, TimeOfDay { hour, minute, span }))
}

/// One field of `HH:MM`: at least `min_len` and at most 2 digits, at most `max`.
fn clock_field(s: &str, min_len: usize, max: u8) -> Option<u8> {
    let shaped = (min_len..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    shaped
        .then(|| s.parse::<u8>().ok())
        .flatten()
        .filter(|v| *v <= max)
}

// bool := "true" | "false"
/// A boolean literal.
pub(crate) fn bool_lit(i: &str) -> PResult<'_, BoolLit> {
    match word(i) {
        Ok((rest, ("true", span))) => Ok((rest, BoolLit { value: true, span })),
        Ok((rest, ("false", span))) => Ok((rest, BoolLit { value: false, span })),
        _ => expected(i, &["`true`", "`false`"]),
    }
}

// literal := string | number | bool
/// A literal on the right of a comparison or in a list.
pub(crate) fn literal(i: &str) -> PResult<'_, Literal> {
    let start = ws(i);
    if start.starts_with('"') {
        string_lit(start).map(|(rest, s)| (rest, Literal::String(s)))
    } else if number_like(start).is_some() {
        number_lit(start).map(|(rest, n)| (rest, Literal::Number(n)))
    } else if let Ok((rest, b)) = bool_lit(start) {
        Ok((rest, Literal::Bool(b)))
    } else {
        expected(i, &["a literal (a string, a number, `true` or `false`)"])
    }
}

/// Bare `[A-Za-z_][A-Za-z0-9_]*` text (no trivia skipped): a name inside a dotted name or path.
pub(crate) fn bare_name(i: &str) -> nom::IResult<&str, &str, ()> {
    recognize(pair(satisfy(is_word_start), take_while(is_word_char)))(i)
}

/// True when `c` can start a number-like token.
pub(crate) fn starts_number(i: &str) -> bool {
    number_like(i).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseError;

    /// Runs `production` on `input`; returns its value (debug-printed), the unparsed rest, and
    /// the errors reported, as `start..end: message`.
    fn run<'a, T: std::fmt::Debug>(
        input: &'a str,
        production: impl FnOnce(&'a str) -> PResult<'a, T>,
    ) -> (String, String, Vec<String>) {
        let (result, errors) = state::with_source(input, || match production(input) {
            Ok((rest, value)) => (format!("{value:?}"), rest.to_string()),
            Err(e) => {
                let e: ParseError = crate::nom_error::into_parse_error(e);
                (format!("error: {}", e.message()), String::new())
            }
        });
        let errors = errors
            .iter()
            .map(|e| format!("{}..{}: {}", e.span.start, e.span.end, e.message()))
            .collect();
        (result.0, result.1, errors)
    }

    /// Asserts that `production` reads all of `input` (up to trailing text `rest`) without
    /// errors, and that the value's debug form contains `expected`.
    #[track_caller]
    fn check<'a, T: std::fmt::Debug>(
        input: &'a str,
        production: impl FnOnce(&'a str) -> PResult<'a, T>,
        expected: &str,
        rest: &str,
    ) {
        let (value, left, errors) = run(input, production);
        assert!(errors.is_empty(), "{input:?}: {errors:?}");
        assert!(
            value.contains(expected),
            "{input:?}: {value} lacks {expected}"
        );
        assert_eq!(left, rest, "{input:?}");
    }

    #[test]
    fn words_keywords_and_punctuation() {
        check(
            "  // c\n did x",
            keyword("did"),
            "Span { start: 8, end: 11 }",
            " x",
        );
        check("didnt", word, "\"didnt\"", "");
        let (value, _, _) = run("didnt", keyword("did"));
        assert_eq!(value, "error: expected `did`, found identifier `didnt`");
        check(" == 1", punct("=="), "Span { start: 1, end: 3 }", " 1");
    }

    #[test]
    fn identifiers() {
        check("went_dormant2 {", ident("an id"), "\"went_dormant2\"", " {");
        let (_, _, errors) = run("Went", ident("an id"));
        assert_eq!(
            errors,
            vec!["0..4: identifier `Went` has uppercase letters"]
        );
        let (value, _, _) = run("{", ident("a bucket id"));
        assert_eq!(value, "error: expected a bucket id, found `{`");
    }

    #[test]
    fn strings() {
        check(r#""a\"b" x"#, string_lit, r#"value: "a\"b""#, " x");
        check(
            r#""\u{41}\u{1F600}\t""#,
            string_lit,
            r#"value: "A😀\t""#,
            "",
        );
        check(r#""// not a comment""#, string_lit, "// not a comment", "");
        let (value, rest, errors) = run("\"abc\nnext", string_lit);
        assert!(value.contains("value: \"abc\""));
        assert_eq!(rest, "\nnext");
        assert_eq!(errors, vec!["0..4: unterminated string"]);
        let (_, _, errors) = run(r#""abc\""#, string_lit);
        assert_eq!(errors, vec!["0..6: unterminated string"]);
    }

    #[test]
    fn numbers_and_integers() {
        check("-2.5)", number_lit, "raw: \"-2.5\"", ")");
        check("42,", number_lit, "raw: \"42\"", ",");
        check("-7 ", integer, "value: -7", " ");
        let (_, _, errors) = run("1e5", number_lit);
        assert_eq!(errors, vec!["0..3: invalid number `1e5`"]);
        let (value, _, _) = run("x", integer);
        assert_eq!(
            value,
            "error: expected a whole number, found identifier `x`"
        );
    }

    #[test]
    fn durations() {
        check(
            "1d12h}",
            duration,
            "value: 1, unit: Days }, DurationPart { value: 12, unit: Hours",
            "}",
        );
        check("-0s", duration, "negative: true", "");
        check("15m", duration, "unit: Minutes", "");
        let problems = [
            ("3", "0..1: duration `3` has no unit"),
            ("3y", "0..2: unknown duration unit `y` in `3y`"),
            ("1m1h", "0..4: duration units out of order in `1m1h`"),
            ("1s1s", "0..4: duration unit `s` repeated in `1s1s`"),
            (
                "2.5h",
                "0..4: duration `2.5h` is not a whole number of units",
            ),
            (
                "20000000000000w",
                "0..15: duration `20000000000000w` is too long",
            ),
            ("1d_", "0..3: unknown duration unit `d_` in `1d_`"),
            (
                "7 days",
                "0..6: duration `7 days` has a space before its unit",
            ),
        ];
        for (input, message) in problems {
            let (_, _, errors) = run(input, duration);
            assert_eq!(errors, vec![message], "{input}");
        }
    }

    #[test]
    fn times_of_day() {
        check("09:00 on", time_of_day, "hour: 9, minute: 0", " on");
        check("23:59", time_of_day, "hour: 23, minute: 59", "");
        check("7:05", time_of_day, "hour: 7, minute: 5", "");
        for bad in ["24:00", "12:60", "123:00", "12:5", "12", "12:00:00"] {
            let (_, _, errors) = run(bad, time_of_day);
            assert_eq!(errors.len(), 1, "{bad}");
        }
    }

    #[test]
    fn literals() {
        check("\"x\"", literal, "String", "");
        check("-1", literal, "Number", "");
        check("true", literal, "Bool(BoolLit { value: true", "");
        let (value, _, _) = run("maybe", literal);
        assert!(value.starts_with("error: expected a literal"));
    }
}
