//! Checked conditions back to `.hog` syntax, for generated-file headers and the bucket
//! definitions the API serves. Not the formatter: this prints the normalized IR.

//!
//! The leaves (strings, names, paths, durations, operators) are the language's own printer,
//! [`hogsend_dsl::text`], so the formatter and the compiler spell them alike.

use crate::ir::{EntryPolicy, EventPred, EventTest, Pred, Prop, PropTest, Scalar, Window};
use crate::plan::normalize::canonical_number;
use hogsend_dsl::text::{event_name, quote as string_lit};

/// `did app_opened and not did app_opened within 7d`
pub fn pred_text(pred: &Pred) -> String {
    write_pred(pred, 0)
}

/// Binding strength: or = 1, and = 2, not/atom = 3.
fn write_pred(pred: &Pred, parent: u8) -> String {
    let (text, strength) = match pred {
        Pred::Or(c) => (
            c.iter()
                .map(|p| write_pred(p, 1))
                .collect::<Vec<_>>()
                .join(" or "),
            1,
        ),
        Pred::And(c) => (
            c.iter()
                .map(|p| write_pred(p, 2))
                .collect::<Vec<_>>()
                .join(" and "),
            2,
        ),
        Pred::Not(inner) => (format!("not {}", write_pred(inner, 3)), 3),
        Pred::Event(atom) => {
            let mut s = match atom.test {
                EventTest::Exists => format!("did {}", event_name(&atom.event)),
                EventTest::Count(..) => format!("count {}", event_name(&atom.event)),
            };
            if let Some(filter) = &atom.filter {
                s.push_str(&format!(" where ({})", write_event(filter, 0)));
            }
            match atom.window {
                Window::Ever => {}
                Window::Within(secs) => s.push_str(&format!(" within {}", duration_text(secs))),
                Window::SinceEntry => s.push_str(" since entry"),
            }
            if let EventTest::Count(op, n) = atom.test {
                s.push_str(&format!(" {} {n}", op.as_str()));
            }
            (s, 3)
        }
        Pred::Prop(prop) => (prop_text("contact", prop), 3),
        Pred::Trigger(prop) => (prop_text("trigger", prop), 3),
        Pred::Opened(t) => (format!("opened {t}"), 3),
        Pred::Clicked(t) => (format!("clicked {t}"), 3),
    };
    if strength < parent {
        format!("({text})")
    } else {
        text
    }
}

fn write_event(pred: &EventPred, parent: u8) -> String {
    let (text, strength) = match pred {
        EventPred::Or(c) => (
            c.iter()
                .map(|p| write_event(p, 1))
                .collect::<Vec<_>>()
                .join(" or "),
            1,
        ),
        EventPred::And(c) => (
            c.iter()
                .map(|p| write_event(p, 2))
                .collect::<Vec<_>>()
                .join(" and "),
            2,
        ),
        EventPred::Not(inner) => (format!("not {}", write_event(inner, 3)), 3),
        EventPred::Prop(prop) => (prop_text("event", prop), 3),
    };
    if strength < parent {
        format!("({text})")
    } else {
        text
    }
}

fn prop_text(root: &str, prop: &Prop) -> String {
    let path = hogsend_dsl::text::path(root, prop.path.iter().map(String::as_str));
    match &prop.test {
        PropTest::Compare(op, v) => format!("{path} {} {}", op.as_str(), scalar(v)),
        PropTest::Exists => format!("{path} exists"),
        PropTest::Contains(s) => format!("{path} contains {}", string_lit(s)),
        PropTest::In(values) => format!(
            "{path} in [{}]",
            values.iter().map(scalar).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn scalar(v: &Scalar) -> String {
    match v {
        Scalar::String(s) => string_lit(s),
        Scalar::Number(raw) => canonical_number(raw),
        Scalar::Bool(b) => b.to_string(),
    }
}

/// Seconds as the shortest largest-first duration (`7d`, `1d12h`, `1m30s`): the IR's signed
/// seconds through [`hogsend_dsl::text::duration`] (never negative in a checked program).
pub fn duration_text(secs: i64) -> String {
    hogsend_dsl::text::duration(secs.max(0).unsigned_abs())
}

/// `unlimited`, `once`, `once per 14d`.
pub fn entry_text(entry: EntryPolicy) -> String {
    match entry {
        EntryPolicy::Unlimited => "unlimited".to_owned(),
        EntryPolicy::Once => "once".to_owned(),
        EntryPolicy::OncePer(s) => format!("once per {}", duration_text(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::EventAtom;

    #[test]
    fn renders_with_minimal_parentheses() {
        let did = |e: &str, w| {
            Pred::Event(EventAtom {
                event: e.into(),
                filter: None,
                window: w,
                test: EventTest::Exists,
            })
        };
        let p = Pred::And(vec![
            Pred::Or(vec![
                did("a", Window::Ever),
                did("Order Completed", Window::Ever),
            ]),
            Pred::Not(Box::new(did("user.signed_up", Window::Within(604_800)))),
        ]);
        assert_eq!(
            pred_text(&p),
            "(did a or did \"Order Completed\") and not did user.signed_up within 7d"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration_text(604_800), "7d");
        assert_eq!(duration_text(129_600), "1d12h");
        assert_eq!(duration_text(90), "1m30s");
    }
}
