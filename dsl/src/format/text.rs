//! The canonical spelling of the leaves of the tree: strings, names, paths, literals,
//! durations, times and days.

use crate::ast::{DaySpec, Duration, EntryPolicy, EventName, Literal, Path, PathRoot, TimeOfDay};
use crate::token::{is_word_char, is_word_start};

/// A string literal with canonical escapes: `\"`, `\\`, `\n`, `\t`, and `\u{…}` for other
/// control characters.
pub(crate) fn quote(value: &str) -> String {
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

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
fn is_bare_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_word_start) && chars.all(is_word_char)
}

/// An event name, quoted only when it is not a bare dotted name.
pub(crate) fn event_name(event: &EventName) -> String {
    if event.name.split('.').all(is_bare_name) {
        event.name.clone()
    } else {
        quote(&event.name)
    }
}

/// A property path, quoting only the segments that need it.
pub(crate) fn path(path: &Path) -> String {
    let mut out = String::from(match path.root {
        PathRoot::Contact => "contact",
        PathRoot::Event => "event",
    });
    for segment in &path.segments {
        out.push('.');
        if is_bare_name(&segment.name) {
            out.push_str(&segment.name);
        } else {
            out.push_str(&quote(&segment.name));
        }
    }
    out
}

/// A literal as written (numbers keep their source text).
pub(crate) fn literal(literal: &Literal) -> String {
    match literal {
        Literal::String(s) => quote(&s.value),
        Literal::Number(n) => n.raw.clone(),
        Literal::Bool(b) => b.value.to_string(),
    }
}

/// A duration: `-`, then each part as `<value><unit>`.
pub(crate) fn duration(d: &Duration) -> String {
    let mut out = String::new();
    if d.negative {
        out.push('-');
    }
    for part in &d.parts {
        out.push_str(&part.value.to_string());
        out.push_str(part.unit.suffix());
    }
    out
}

/// `HH:MM`.
pub(crate) fn time_of_day(t: &TimeOfDay) -> String {
    format!("{:02}:{:02}", t.hour, t.minute)
}

/// `weekdays`, `weekends`, or `mon, wed`.
pub(crate) fn days(days: &DaySpec) -> String {
    match days {
        DaySpec::Weekdays => "weekdays".to_string(),
        DaySpec::Weekends => "weekends".to_string(),
        DaySpec::Days(list) => list
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `unlimited`, `once`, `once per 14d`.
pub(crate) fn entry_policy(policy: &EntryPolicy) -> String {
    match policy {
        EntryPolicy::Unlimited => "unlimited".to_string(),
        EntryPolicy::Once => "once".to_string(),
        EntryPolicy::OncePer(d) => format!("once per {}", duration(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::Span;

    #[test]
    fn strings_are_escaped_canonically() {
        assert_eq!(quote("a\"b\\c\nd\te"), r#""a\"b\\c\nd\te""#);
        assert_eq!(quote("\u{0}\r😀"), "\"\\u{0}\\u{D}😀\"");
    }

    #[test]
    fn event_names_are_quoted_only_when_needed() {
        let name = |n: &str| {
            event_name(&EventName {
                name: n.to_string(),
                span: Span::default(),
            })
        };
        assert_eq!(name("user.signed_up"), "user.signed_up");
        assert_eq!(name("Order_Completed"), "Order_Completed");
        assert_eq!(name("$pageview"), "\"$pageview\"");
        assert_eq!(name("a..b"), "\"a..b\"");
        assert_eq!(name(""), "\"\"");
        assert_eq!(name("1st"), "\"1st\"");
    }
}
