//! The canonical spelling of the leaves of the tree: strings, names, paths, literals,
//! durations, times and days.

use crate::ast::{DaySpec, Duration, EntryPolicy, EventName, Literal, Path, PathRoot, TimeOfDay};

pub(crate) use crate::text::quote;

/// An event name, quoted only when it is not a bare dotted name.
pub(crate) fn event_name(event: &EventName) -> String {
    crate::text::event_name(&event.name)
}

/// A property path, quoting only the segments that need it.
pub(crate) fn path(path: &Path) -> String {
    let root = match path.root {
        PathRoot::Contact => "contact",
        PathRoot::Event => "event",
        PathRoot::Trigger => "trigger",
    };
    crate::text::path(root, path.segments.iter().map(|s| s.name.as_str()))
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
    let sign = if d.negative { "-" } else { "" };
    format!("{sign}{}", d.parts_text())
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
