//! Canonical forms of checked conditions: the criteria fingerprint and the readable text.
//!
//! Two criteria that mean the same thing by construction (reordered `and`/`or` children,
//! `7d` vs `1w`, `5` vs `5.0`, nested groups, duplicate children, double negation) normalize
//! to the same tree, hence the same fingerprint, so `migrate` does not re-backfill them.

use crate::ir::{CmpOp, EventAtom, EventPred, EventTest, Pred, Prop, PropTest, Scalar, Window};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Bumped whenever generated matching SQL changes meaning, so deployed buckets re-backfill.
pub(crate) const EVAL_VERSION: u32 = 1;

/// The canonical JSON text of a number literal written as `-?[0-9]+(\.[0-9]+)?`:
/// no leading zeros, no trailing fractional zeros, no `-0`.
pub(crate) fn canonical_number(raw: &str) -> String {
    let (negative, digits) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let frac = frac.trim_end_matches('0');
    let mut out = String::new();
    if negative && !(int == "0" && frac.is_empty()) {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// A normalized copy of `pred` (see the module docs).
pub fn normalize(pred: &Pred) -> Pred {
    match pred {
        Pred::And(children) => rebuild(children.iter().map(normalize), Pred::And, |p| match p {
            Pred::And(inner) => Ok(inner),
            other => Err(other),
        }),
        Pred::Or(children) => rebuild(children.iter().map(normalize), Pred::Or, |p| match p {
            Pred::Or(inner) => Ok(inner),
            other => Err(other),
        }),
        Pred::Not(inner) => match normalize(inner) {
            Pred::Not(x) => *x,
            x => Pred::Not(Box::new(x)),
        },
        Pred::Event(atom) => Pred::Event(EventAtom {
            event: atom.event.clone(),
            filter: atom.filter.as_ref().map(normalize_event),
            window: atom.window,
            test: atom.test,
        }),
        Pred::Prop(prop) => Pred::Prop(normalize_prop(prop)),
        Pred::Trigger(prop) => Pred::Trigger(normalize_prop(prop)),
        Pred::Opened(t) => Pred::Opened(t.clone()),
        Pred::Clicked(t) => Pred::Clicked(t.clone()),
    }
}

fn normalize_event(pred: &EventPred) -> EventPred {
    match pred {
        EventPred::And(children) => rebuild(
            children.iter().map(normalize_event),
            EventPred::And,
            |p| match p {
                EventPred::And(inner) => Ok(inner),
                other => Err(other),
            },
        ),
        EventPred::Or(children) => rebuild(
            children.iter().map(normalize_event),
            EventPred::Or,
            |p| match p {
                EventPred::Or(inner) => Ok(inner),
                other => Err(other),
            },
        ),
        EventPred::Not(inner) => match normalize_event(inner) {
            EventPred::Not(x) => *x,
            x => EventPred::Not(Box::new(x)),
        },
        EventPred::Prop(prop) => EventPred::Prop(normalize_prop(prop)),
    }
}

/// Flatten same-kind children, sort by canonical text, drop duplicates; a single survivor
/// stands alone.
fn rebuild<T: Canonical>(
    children: impl Iterator<Item = T>,
    make: fn(Vec<T>) -> T,
    split: fn(T) -> Result<Vec<T>, T>,
) -> T {
    let mut flat = Vec::new();
    for child in children {
        match split(child) {
            Ok(inner) => flat.extend(inner),
            Err(leaf) => flat.push(leaf),
        }
    }
    let mut keyed: Vec<(String, T)> = flat.into_iter().map(|c| (c.canonical(), c)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    let mut items: Vec<T> = keyed.into_iter().map(|(_, c)| c).collect();
    if items.len() == 1 {
        items.remove(0)
    } else {
        make(items)
    }
}

fn normalize_prop(prop: &Prop) -> Prop {
    let test = match &prop.test {
        PropTest::Compare(op, value) => PropTest::Compare(*op, normalize_scalar(value)),
        PropTest::In(values) => {
            let mut values: Vec<Scalar> = values.iter().map(normalize_scalar).collect();
            values.sort_by_key(scalar_text);
            values.dedup();
            if values.len() == 1 {
                PropTest::Compare(CmpOp::Eq, values.remove(0))
            } else {
                PropTest::In(values)
            }
        }
        other => other.clone(),
    };
    Prop {
        path: prop.path.clone(),
        test,
    }
}

fn normalize_scalar(value: &Scalar) -> Scalar {
    match value {
        Scalar::Number(raw) => Scalar::Number(canonical_number(raw)),
        other => other.clone(),
    }
}

/// A canonical, unambiguous text form (used for ordering and hashing).
pub trait Canonical {
    fn canonical(&self) -> String;
}

impl Canonical for Pred {
    fn canonical(&self) -> String {
        let mut out = String::new();
        write_pred(&mut out, self);
        out
    }
}

impl Canonical for EventPred {
    fn canonical(&self) -> String {
        let mut out = String::new();
        write_event_pred(&mut out, self);
        out
    }
}

fn write_pred(out: &mut String, pred: &Pred) {
    match pred {
        Pred::And(c) => write_list(out, "and", c, write_pred),
        Pred::Or(c) => write_list(out, "or", c, write_pred),
        Pred::Not(x) => {
            out.push_str("(not ");
            write_pred(out, x);
            out.push(')');
        }
        Pred::Event(atom) => {
            out.push_str("(event ");
            out.push_str(&json_string(&atom.event));
            match atom.window {
                Window::Ever => out.push_str(" ever"),
                Window::Within(s) => {
                    let _ = write!(out, " within {s}");
                }
                Window::SinceEntry => out.push_str(" since_entry"),
            }
            match atom.test {
                EventTest::Exists => out.push_str(" exists"),
                EventTest::Count(op, n) => {
                    let _ = write!(out, " count {} {n}", op.as_str());
                }
            }
            if let Some(filter) = &atom.filter {
                out.push(' ');
                write_event_pred(out, filter);
            }
            out.push(')');
        }
        Pred::Prop(prop) => write_prop(out, "contact", prop),
        Pred::Trigger(prop) => write_prop(out, "trigger", prop),
        Pred::Opened(t) => {
            let _ = write!(out, "(opened {})", json_string(t));
        }
        Pred::Clicked(t) => {
            let _ = write!(out, "(clicked {})", json_string(t));
        }
    }
}

fn write_event_pred(out: &mut String, pred: &EventPred) {
    match pred {
        EventPred::And(c) => write_list(out, "and", c, write_event_pred),
        EventPred::Or(c) => write_list(out, "or", c, write_event_pred),
        EventPred::Not(x) => {
            out.push_str("(not ");
            write_event_pred(out, x);
            out.push(')');
        }
        EventPred::Prop(prop) => write_prop(out, "event", prop),
    }
}

fn write_list<T>(out: &mut String, op: &str, items: &[T], write: fn(&mut String, &T)) {
    out.push('(');
    out.push_str(op);
    for item in items {
        out.push(' ');
        write(out, item);
    }
    out.push(')');
}

fn write_prop(out: &mut String, root: &str, prop: &Prop) {
    let _ = write!(out, "(prop {root}");
    for segment in &prop.path {
        out.push(' ');
        out.push_str(&json_string(segment));
    }
    match &prop.test {
        PropTest::Compare(op, value) => {
            let _ = write!(out, " {} {}", op.as_str(), scalar_text(value));
        }
        PropTest::Exists => out.push_str(" exists"),
        PropTest::Contains(s) => {
            let _ = write!(out, " contains {}", json_string(s));
        }
        PropTest::In(values) => {
            out.push_str(" in");
            for v in values {
                out.push(' ');
                out.push_str(&scalar_text(v));
            }
        }
    }
    out.push(')');
}

/// A scalar as JSON text (strings quoted and escaped, numbers canonical).
pub(crate) fn scalar_text(value: &Scalar) -> String {
    match value {
        Scalar::String(s) => json_string(s),
        Scalar::Number(raw) => canonical_number(raw),
        Scalar::Bool(b) => b.to_string(),
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The fingerprint of a bucket's criteria: a hex digest of its normalized canonical form.
pub fn fingerprint(criteria: &Pred) -> String {
    let canonical = normalize(criteria).canonical();
    let mut hasher = Sha256::new();
    hasher.update(format!("hogsend-eval-v{EVAL_VERSION}\n").as_bytes());
    hasher.update(canonical.as_bytes());
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn did(event: &str, window: Window) -> Pred {
        Pred::Event(EventAtom {
            event: event.into(),
            filter: None,
            window,
            test: EventTest::Exists,
        })
    }

    fn prop_eq(path: &str, value: Scalar) -> Pred {
        Pred::Prop(Prop {
            path: vec![path.into()],
            test: PropTest::Compare(CmpOp::Eq, value),
        })
    }

    #[test]
    fn numbers_are_canonical() {
        for (raw, want) in [
            ("5", "5"),
            ("5.0", "5"),
            ("007", "7"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("2.50", "2.5"),
            ("-3", "-3"),
            ("0.05", "0.05"),
        ] {
            assert_eq!(canonical_number(raw), want, "{raw}");
        }
    }

    #[test]
    fn reordering_and_units_do_not_change_the_fingerprint() {
        let a = Pred::And(vec![
            did("app_opened", Window::Ever),
            Pred::Not(Box::new(did("app_opened", Window::Within(604_800)))),
        ]);
        let b = Pred::And(vec![
            Pred::Not(Box::new(did("app_opened", Window::Within(7 * 86_400)))),
            did("app_opened", Window::Ever),
        ]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
    }

    #[test]
    fn nesting_duplicates_and_double_negation_normalize_away() {
        let x = prop_eq("plan", Scalar::String("pro".into()));
        let y = did("a", Window::Ever);
        let nested = Pred::And(vec![
            Pred::And(vec![x.clone(), y.clone()]),
            Pred::Not(Box::new(Pred::Not(Box::new(x.clone())))),
        ]);
        assert_eq!(fingerprint(&nested), fingerprint(&Pred::And(vec![y, x])));
    }

    #[test]
    fn number_spelling_does_not_matter_but_type_does() {
        let five = prop_eq("n", Scalar::Number("5".into()));
        let five_point_zero = prop_eq("n", Scalar::Number("5.0".into()));
        let five_string = prop_eq("n", Scalar::String("5".into()));
        assert_eq!(fingerprint(&five), fingerprint(&five_point_zero));
        assert_ne!(fingerprint(&five), fingerprint(&five_string));
    }

    #[test]
    fn different_windows_differ() {
        assert_ne!(
            fingerprint(&did("a", Window::Within(60))),
            fingerprint(&did("a", Window::Within(61)))
        );
    }
}
