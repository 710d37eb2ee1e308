//! Parse errors as plain data: what went wrong, where, and how to say it to a user.
//!
//! The compiler crate maps each [`ParseErrorKind`] to a stable diagnostic code (`E01xx`) and
//! renders it; this module only provides the words: [`ParseError::message`] (the title),
//! [`ParseError::label`] (the text under the caret), [`ParseError::secondary`] (a related span)
//! and [`ParseError::help`].
//!
//! **Invariant:** the variants of [`ParseErrorKind`] are stable; add new ones at the end.

use crate::span::Span;

/// One syntax error, at one place in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    /// The primary span: the token the parser could not accept (empty at end of file).
    pub span: Span,
}

/// Everything the parser can complain about. Each variant shows an input that produces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// `bucket x { criteria did }` — the general syntax error: the parser expected one of
    /// `expected` (human descriptions like "an event name" or "`{`") and found `found`
    /// ("`}`", "end of file", "identifier `foo`", "a string").
    Unexpected {
        expected: Vec<String>,
        found: String,
    },
    /// `did @signup` — a character that cannot start any token.
    UnexpectedCharacter { ch: char },
    /// `name "Went dormant` — a string with no closing quote on its line.
    UnterminatedString,
    /// `name "C:\dir"` — an escape other than `\" \\ \n \t \u{…}`, or a `\u{…}` that is not a
    /// character. `escape` is the escape as written (`\d`, `\u{D800}`).
    InvalidEscape { escape: String },
    /// `contact.age > 1.2.3`, `count x > 2.5` — a malformed number, or one that does not fit.
    InvalidNumber { raw: String, reason: NumberProblem },
    /// `within 7days`, `wait 1h1d`, `wait 3` — a malformed duration.
    InvalidDuration {
        raw: String,
        reason: DurationProblem,
    },
    /// `bucket WentDormant {` — an identifier that breaks the `[a-z][a-z0-9_]*`, at most 48
    /// characters rule. The parser keeps the name as written and carries on.
    InvalidIdentifier { name: String, reason: IdentProblem },
    /// `bucket x { criteria did a` and then end of file — a `{`, `(` or `[` never closed.
    /// `span` is where the closer was expected (end of file, or the next definition);
    /// `open_span` is the opener.
    UnclosedDelimiter { open: char, open_span: Span },
    /// `criteria ((((((…did a…))))))` — more than [`crate::MAX_NESTING`] levels of
    /// parentheses, `all`/`any`, `not`, filters or blocks.
    NestingTooDeep,
    /// `wait until 25:00` — a time of day that is not `HH:MM` between `00:00` and `23:59`.
    InvalidTimeOfDay { raw: String },
    /// `at 2027-13-01` — a test instant that is not `YYYY-MM-DD [HH:MM[:SS]]` (a real date,
    /// from 1970 on) or `+DURATION`.
    InvalidInstant { raw: String },
    /// `send_at 2027-03-01 09:00` (no zone) or `send_at 2027-02-30T09:00:00Z` — a campaign's
    /// `send_at` that is neither an RFC 3339 instant nor `DATE TIME in contact.PROPERTY`.
    InvalidSendAt { raw: String },
}

/// Why a number was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberProblem {
    /// `1.2.3`, `12abc`, `1.` — not `-?[0-9]+(\.[0-9]+)?`.
    Malformed,
    /// `count x > 2.5` — a whole number was required.
    NotAnInteger,
    /// `count x > 99999999999999999999` — does not fit in a 64-bit integer.
    OutOfRange,
}

/// Why a duration was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationProblem {
    /// `7y`, `5min` — a unit other than `s m h d w`.
    BadUnit { unit: String },
    /// `wait 3` — a number with no unit.
    MissingUnit,
    /// `1h1d` — units must go from the largest to the smallest.
    UnitsOutOfOrder,
    /// `1h2h` — each unit at most once.
    RepeatedUnit { unit: String },
    /// `1.5h` — durations take whole numbers.
    Fractional,
    /// `99999999999999999999d` — longer than the engine can represent.
    Overflow,
    /// `within 7 days` — a unit word written apart from its number.
    DetachedUnit { unit: String },
}

/// Why an identifier was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentProblem {
    /// `WentDormant` — identifiers are lowercase.
    Uppercase,
    /// `_internal` — identifiers start with a letter.
    LeadingUnderscore,
    /// more than [`crate::MAX_IDENT_LEN`] characters.
    TooLong,
}

impl ParseError {
    /// A new error of `kind` at `span`.
    pub fn new(kind: ParseErrorKind, span: Span) -> Self {
        ParseError { kind, span }
    }

    /// The one-line title: lowercase, no trailing period (rustc style).
    pub fn message(&self) -> String {
        match &self.kind {
            ParseErrorKind::Unexpected { expected, found } if expected.is_empty() => {
                format!("unexpected {found}")
            }
            ParseErrorKind::Unexpected { expected, found } => {
                format!("expected {}, found {found}", one_of(expected))
            }
            ParseErrorKind::UnexpectedCharacter { ch } => {
                format!("unexpected character {}", show_char(*ch))
            }
            ParseErrorKind::UnterminatedString => "unterminated string".to_string(),
            ParseErrorKind::InvalidEscape { escape } => {
                format!("invalid escape `{escape}` in string")
            }
            ParseErrorKind::InvalidNumber { raw, reason } => match reason {
                NumberProblem::Malformed => format!("invalid number `{raw}`"),
                NumberProblem::NotAnInteger => format!("expected a whole number, found `{raw}`"),
                NumberProblem::OutOfRange => format!("number `{raw}` is too large"),
            },
            ParseErrorKind::InvalidDuration { raw, reason } => match reason {
                DurationProblem::BadUnit { unit } => {
                    format!("unknown duration unit `{unit}` in `{raw}`")
                }
                DurationProblem::MissingUnit => format!("duration `{raw}` has no unit"),
                DurationProblem::UnitsOutOfOrder => {
                    format!("duration units out of order in `{raw}`")
                }
                DurationProblem::RepeatedUnit { unit } => {
                    format!("duration unit `{unit}` repeated in `{raw}`")
                }
                DurationProblem::Fractional => {
                    format!("duration `{raw}` is not a whole number of units")
                }
                DurationProblem::Overflow => format!("duration `{raw}` is too long"),
                DurationProblem::DetachedUnit { .. } => {
                    format!("duration `{raw}` has a space before its unit")
                }
            },
            ParseErrorKind::InvalidIdentifier { name, reason } => match reason {
                IdentProblem::Uppercase => format!("identifier `{name}` has uppercase letters"),
                IdentProblem::LeadingUnderscore => {
                    format!("identifier `{name}` does not start with a letter")
                }
                IdentProblem::TooLong => format!(
                    "identifier `{}…` is longer than {} characters",
                    prefix(name, 20),
                    crate::MAX_IDENT_LEN
                ),
            },
            ParseErrorKind::UnclosedDelimiter { open, .. } => format!("unclosed `{open}`"),
            ParseErrorKind::NestingTooDeep => "nesting too deep".to_string(),
            ParseErrorKind::InvalidTimeOfDay { raw } => format!("invalid time of day `{raw}`"),
            ParseErrorKind::InvalidInstant { raw } => format!("invalid instant `{raw}`"),
            ParseErrorKind::InvalidSendAt { raw } => format!("invalid send_at `{raw}`"),
        }
    }

    /// The short text shown under the primary span.
    pub fn label(&self) -> String {
        match &self.kind {
            ParseErrorKind::Unexpected { expected, .. } if expected.is_empty() => {
                "unexpected here".to_string()
            }
            ParseErrorKind::Unexpected { expected, .. } => format!("expected {}", one_of(expected)),
            ParseErrorKind::UnexpectedCharacter { .. } => "not valid here".to_string(),
            ParseErrorKind::UnterminatedString => "this string has no closing `\"`".to_string(),
            ParseErrorKind::InvalidEscape { .. } => "unknown escape".to_string(),
            ParseErrorKind::InvalidNumber { reason, .. } => match reason {
                NumberProblem::Malformed => "not a number".to_string(),
                NumberProblem::NotAnInteger => "expected a whole number".to_string(),
                NumberProblem::OutOfRange => "does not fit in 64 bits".to_string(),
            },
            ParseErrorKind::InvalidDuration { reason, .. } => match reason {
                DurationProblem::BadUnit { .. } => "unknown unit".to_string(),
                DurationProblem::MissingUnit => "no unit".to_string(),
                DurationProblem::UnitsOutOfOrder => "units out of order".to_string(),
                DurationProblem::RepeatedUnit { .. } => "unit repeated".to_string(),
                DurationProblem::Fractional => "not a whole number".to_string(),
                DurationProblem::Overflow => "too long".to_string(),
                DurationProblem::DetachedUnit { .. } => "unit apart from its number".to_string(),
            },
            ParseErrorKind::InvalidIdentifier { reason, .. } => match reason {
                IdentProblem::Uppercase => "uppercase letters".to_string(),
                IdentProblem::LeadingUnderscore => "starts with `_`".to_string(),
                IdentProblem::TooLong => format!("more than {} characters", crate::MAX_IDENT_LEN),
            },
            ParseErrorKind::UnclosedDelimiter { open, .. } => {
                format!("expected `{}` before this", closer(*open))
            }
            ParseErrorKind::NestingTooDeep => {
                format!("more than {} levels of nesting", crate::MAX_NESTING)
            }
            ParseErrorKind::InvalidTimeOfDay { .. } => "not a time between 00:00 and 23:59".into(),
            ParseErrorKind::InvalidInstant { .. } => "not a date (and time) in UTC".into(),
            ParseErrorKind::InvalidSendAt { .. } => {
                "not an RFC 3339 instant nor a time in the contact's zone".into()
            }
        }
    }

    /// A related span with its label, when there is one (the opener of an unclosed delimiter).
    pub fn secondary(&self) -> Option<(Span, String)> {
        match &self.kind {
            ParseErrorKind::UnclosedDelimiter { open, open_span } => {
                Some((*open_span, format!("this `{open}` is never closed")))
            }
            _ => None,
        }
    }

    /// A `help:` line, where there is something useful to suggest.
    pub fn help(&self) -> Option<String> {
        match &self.kind {
            ParseErrorKind::Unexpected { expected, found } => unexpected_help(expected, found),
            ParseErrorKind::UnexpectedCharacter { ch } => character_help(*ch),
            ParseErrorKind::UnterminatedString => Some(
                "a string ends on the line where it starts; write `\\n` for a line break".into(),
            ),
            ParseErrorKind::InvalidEscape { .. } => Some(
                "the escapes are `\\\"`, `\\\\`, `\\n`, `\\t` and `\\u{…}` (a hexadecimal code point)"
                    .into(),
            ),
            ParseErrorKind::InvalidNumber { reason, .. } => match reason {
                NumberProblem::Malformed => {
                    Some("numbers look like `42`, `-3` or `2.5`".to_string())
                }
                NumberProblem::NotAnInteger | NumberProblem::OutOfRange => None,
            },
            ParseErrorKind::InvalidDuration { raw, reason } => match reason {
                DurationProblem::BadUnit { unit } | DurationProblem::DetachedUnit { unit }
                    if unit_suffix(unit).is_some() =>
                {
                    let suffix = unit_suffix(unit).unwrap_or_default();
                    let fixed = raw.replace(unit.as_str(), suffix).replace(' ', "");
                    Some(format!("write `{fixed}`"))
                }
                DurationProblem::BadUnit { .. }
                | DurationProblem::MissingUnit
                | DurationProblem::DetachedUnit { .. } => Some(
                    "the units are `s`, `m` (minutes), `h`, `d` and `w`, e.g. `30s`, `15m`, `7d`"
                        .into(),
                ),
                DurationProblem::UnitsOutOfOrder | DurationProblem::RepeatedUnit { .. } => Some(
                    "durations go from the largest unit to the smallest, e.g. `1d12h`".to_string(),
                ),
                DurationProblem::Fractional => {
                    Some("chain whole units instead: `1h30m`, not `1.5h`".to_string())
                }
                DurationProblem::Overflow => None,
            },
            ParseErrorKind::InvalidIdentifier { name, reason } => match reason {
                IdentProblem::Uppercase | IdentProblem::LeadingUnderscore => Some(format!(
                    "identifiers are lowercase letters, digits and `_`, starting with a letter: `{}`",
                    suggest_ident(name)
                )),
                IdentProblem::TooLong => None,
            },
            ParseErrorKind::UnclosedDelimiter { open, .. } => {
                Some(format!("add the missing `{}`", closer(*open)))
            }
            ParseErrorKind::NestingTooDeep => Some(
                "split the condition, or flatten it with `all { … }` / `any { … }`".to_string(),
            ),
            ParseErrorKind::InvalidTimeOfDay { .. } => {
                Some("write a 24-hour time such as `09:00` or `17:30`".to_string())
            }
            ParseErrorKind::InvalidInstant { .. } => Some(
                "write a UTC date and time such as `2027-01-04 10:00`, or a step such as `+8d`"
                    .to_string(),
            ),
            ParseErrorKind::InvalidSendAt { .. } => Some(
                "write an instant with its offset such as `2027-03-01T09:00:00Z`, or a local \
                 time such as `2027-03-01 09:00 in contact.timezone`"
                    .to_string(),
            ),
        }
    }
}

/// The unit suffix a unit word stands for: `days` → `d`. `m` is minutes; months have no unit.
pub(crate) fn unit_suffix(word: &str) -> Option<&'static str> {
    Some(match word {
        "s" | "sec" | "secs" | "second" | "seconds" => "s",
        "m" | "min" | "mins" | "minute" | "minutes" => "m",
        "h" | "hr" | "hrs" | "hour" | "hours" => "h",
        "d" | "day" | "days" => "d",
        "w" | "wk" | "wks" | "week" | "weeks" => "w",
        _ => return None,
    })
}

/// "a", "a or b", "a, b or c".
fn one_of(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The first `n` characters of `s`.
fn prefix(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// How to show a character in a message: `` `@` `` or `U+0000` for invisible ones.
fn show_char(ch: char) -> String {
    if ch.is_control() || ch.is_whitespace() || ch == '\u{feff}' {
        format!("U+{:04X}", ch as u32)
    } else {
        format!("`{ch}`")
    }
}

/// The closing partner of an opening delimiter.
fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

/// Hints for common slips from other languages.
fn character_help(ch: char) -> Option<String> {
    let text = match ch {
        '#' | '/' => "comments start with `//`",
        ':' => "fields and headers take no `:`: write `name \"…\"`, `criteria did x`",
        '-' => "identifiers join words with `_`, not `-`: `went_dormant`",
        '$' | '@' => {
            "quote event names that are not plain dotted identifiers: `\"$pageview\"`, `\"Order Completed\"`"
        }
        '=' => "compare with `==`",
        '!' => "negate with `not`; `!=` compares",
        '&' => "combine conditions with `and`",
        '|' => "combine conditions with `or`",
        '\'' => "strings use double quotes: `\"…\"`",
        ';' => "members and steps end at the end of the line; no `;` is needed",
        _ => return None,
    };
    Some(text.to_string())
}

/// Hints for the general syntax error, keyed on what was expected.
fn unexpected_help(expected: &[String], found: &str) -> Option<String> {
    let expects = |s: &str| expected.iter().any(|e| e == s);
    if expects("an event name") {
        return Some(
            "event names are dotted names like `user.signed_up`; quote any other name: `\"Order Completed\"`"
                .to_string(),
        );
    }
    if expects("at least one condition") {
        return Some("`all { … }` and `any { … }` need at least one condition".to_string());
    }
    if expects("a condition") && found != "`}`" && found != "end of file" {
        return Some(
            "a condition starts with `did`, `count`, `not`, `all`, `any`, `(`, `opened`, `clicked`, or a property path like `contact.plan`"
                .to_string(),
        );
    }
    if expects("a duration") {
        return Some("durations look like `30s`, `15m`, `2h`, `7d`, `2w` or `1d12h`".to_string());
    }
    None
}

/// A valid identifier close to `name`: `WentDormant` → `went_dormant`.
fn suggest_ident(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if ch.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
            prev_lower = false;
        } else {
            out.push(ch);
            prev_lower = ch.is_ascii_lowercase() || ch.is_ascii_digit();
        }
    }
    let trimmed = out.trim_start_matches(|c: char| !c.is_ascii_lowercase());
    if trimmed.is_empty() {
        "my_name".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_list_expectations_like_rustc() {
        let e = ParseError::new(
            ParseErrorKind::Unexpected {
                expected: vec!["a condition".into()],
                found: "`}`".into(),
            },
            Span::new(0, 1),
        );
        assert_eq!(e.message(), "expected a condition, found `}`");
        let e = ParseError::new(
            ParseErrorKind::Unexpected {
                expected: vec!["`and`".into(), "`or`".into(), "`)`".into()],
                found: "end of file".into(),
            },
            Span::new(0, 1),
        );
        assert_eq!(
            e.message(),
            "expected `and`, `or` or `)`, found end of file"
        );
    }

    #[test]
    fn identifiers_are_suggested_in_snake_case() {
        assert_eq!(suggest_ident("WentDormant"), "went_dormant");
        assert_eq!(suggest_ident("_x"), "x");
        assert_eq!(suggest_ident("ABC"), "abc");
        assert_eq!(suggest_ident("__"), "my_name");
    }

    #[test]
    fn invisible_characters_are_shown_as_code_points() {
        assert_eq!(show_char('\0'), "U+0000");
        assert_eq!(show_char('@'), "`@`");
    }
}
