//! The canonical text of the language's leaves, shared by the formatter and the compiler
//! (generated-file headers, the bucket registry, dwell labels, `hogsend.toml` durations):
//! string literals, bare names, event names, property paths, durations and operators
//! ([`crate::ast::CmpOp::as_str`]). One spelling, so what the compiler prints is what the
//! parser reads back.

use crate::error::DurationProblem;
use crate::token::{is_word_char, is_word_start};

/// A string literal with canonical escapes: `\"`, `\\`, `\n`, `\t`, and `\u{…}` for other
/// control characters and for the invisible U+FEFF, U+2028 and U+2029. The result never
/// holds a raw control character or line separator, so it is safe inside a one-line
/// comment (generated SQL headers).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{feff}' || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{{{:X}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`: a name that needs no quotes.
pub fn is_bare_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_word_start) && chars.all(is_word_char)
}

/// An event name, quoted only when it is not a bare dotted name (`user.signed_up`).
pub fn event_name(name: &str) -> String {
    if name.split('.').all(is_bare_name) {
        name.to_owned()
    } else {
        quote(name)
    }
}

/// A property path: `root` (`contact` or `event`), then each key, quoted only when needed.
pub fn path<'a>(root: &str, keys: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = root.to_owned();
    for key in keys {
        out.push('.');
        if is_bare_name(key) {
            out.push_str(key);
        } else {
            out.push_str(&quote(key));
        }
    }
    out
}

/// Seconds as the shortest largest-first duration in days, hours, minutes and seconds
/// (`7d`, `1d12h`, `90` → `1m30s`, `0` → `0s`).
pub fn duration(seconds: u64) -> String {
    let mut rest = seconds;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    if out.is_empty() {
        "0s".to_owned()
    } else {
        out
    }
}

/// Why [`parse_duration`] refused a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// Not a duration of the language (or one that does not fit).
    Invalid(DurationProblem),
    /// Empty, or written with a sign.
    Malformed,
    /// Zero seconds.
    NotPositive,
}

/// A positive duration written as in the language (`30s`, `15m`, `1h30m`, `2w`), in
/// seconds, with the parser's rules (whole numbers, units `w d h m s` largest first, each
/// at most once).
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    if text.is_empty() || !text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(DurationError::Malformed);
    }
    let (parts, problem) = crate::lexical::duration_parts(text);
    if let Some(problem) = problem {
        return Err(DurationError::Invalid(problem));
    }
    // `duration_parts` has checked that the total fits.
    let total = parts
        .iter()
        .map(|p| p.value.saturating_mul(p.unit.seconds()))
        .fold(0u64, u64::saturating_add);
    if total == 0 {
        return Err(DurationError::NotPositive);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_canonically() {
        assert_eq!(quote("a\"b\\c\nd\te"), r#""a\"b\\c\nd\te""#);
        assert_eq!(quote("\u{0}\r😀"), "\"\\u{0}\\u{D}😀\"");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn invisible_separators_are_escaped() {
        assert_eq!(
            quote("a\u{2028}b\u{2029}c\u{feff}d\u{7f}\u{85}"),
            "\"a\\u{2028}b\\u{2029}c\\u{FEFF}d\\u{7F}\\u{85}\""
        );
        // Nothing that could end a one-line comment survives.
        let quoted = quote("x\r\n\u{2028}\u{2029}\u{b}\u{c}");
        assert!(!quoted.chars().any(|c| c.is_control() || c == '\u{2028}'));
    }

    #[test]
    fn quoted_strings_read_back() {
        for value in [
            "plain",
            "a\"b",
            "back\\slash",
            "tab\tnl\n",
            "\u{2028}\u{feff}",
            "é😀",
        ] {
            let source = format!("bucket b {{ criteria contact.x == {} }}", quote(value));
            let parsed = crate::parse(&source);
            assert!(parsed.errors.is_empty(), "{value:?}: {:?}", parsed.errors);
            let printed = crate::format(&source).expect("formats");
            assert!(printed.contains(&quote(value)), "{printed}");
        }
    }

    #[test]
    fn names_and_paths_are_quoted_only_when_needed() {
        assert_eq!(event_name("user.signed_up"), "user.signed_up");
        assert_eq!(event_name("$pageview"), "\"$pageview\"");
        assert_eq!(event_name("a..b"), "\"a..b\"");
        assert_eq!(event_name(""), "\"\"");
        assert_eq!(
            path("contact", ["company", "employees"]),
            "contact.company.employees"
        );
        assert_eq!(
            path("event", ["$browser", "a b"]),
            "event.\"$browser\".\"a b\""
        );
    }

    #[test]
    fn durations_print_largest_first() {
        assert_eq!(duration(604_800), "7d");
        assert_eq!(duration(129_600), "1d12h");
        assert_eq!(duration(90), "1m30s");
        assert_eq!(duration(0), "0s");
    }

    #[test]
    fn durations_parse_with_the_language_rules() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        assert_eq!(parse_duration("2w1d"), Ok(1_296_000));
        assert_eq!(parse_duration("0s"), Err(DurationError::NotPositive));
        assert_eq!(parse_duration(""), Err(DurationError::Malformed));
        assert_eq!(parse_duration("-3d"), Err(DurationError::Malformed));
        assert_eq!(parse_duration("h"), Err(DurationError::Malformed));
        assert_eq!(
            parse_duration("30m1h"),
            Err(DurationError::Invalid(DurationProblem::UnitsOutOfOrder))
        );
        assert_eq!(
            parse_duration("1.5h"),
            Err(DurationError::Invalid(DurationProblem::Fractional))
        );
        assert_eq!(
            parse_duration("30"),
            Err(DurationError::Invalid(DurationProblem::MissingUnit))
        );
        assert_eq!(
            parse_duration("99999999999999999999w"),
            Err(DurationError::Invalid(DurationProblem::Overflow))
        );
        for seconds in [1, 59, 60, 3_599, 86_400, 129_600, 10_000_000] {
            assert_eq!(parse_duration(&duration(seconds)), Ok(seconds));
        }
    }
}
