//! The per-contact baseline's in-process evaluator: property tests on JSON values with
//! LANGUAGE.md §2 semantics, and the criteria as a short-circuit boolean over atoms whose
//! values are fetched on demand (one query each, by the caller).

use hogsend_compiler::ir::{CmpOp, EventAtom, EventPred, Pred, Prop, PropTest, Scalar};
use serde_json::Value;

/// The value at `path` under `root`: missing as soon as a step is not an object with that key.
fn lookup<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(root, |v, key| v.as_object().and_then(|o| o.get(key)))
}

/// Strict-typed JSON equality with a literal (`"5"` is not `5`; `5` is `5.0`).
fn equals(value: &Value, literal: &Scalar) -> bool {
    match (value, literal) {
        (Value::String(s), Scalar::String(l)) => s == l,
        (Value::Bool(b), Scalar::Bool(l)) => b == l,
        (Value::Number(n), Scalar::Number(l)) => match (n.as_f64(), l.parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

/// A property test on `root` (the contact's or the event's properties).
pub fn prop_holds(root: &Value, prop: &Prop) -> bool {
    let value = lookup(root, &prop.path);
    match &prop.test {
        PropTest::Compare(CmpOp::Eq, l) => value.is_some_and(|v| equals(v, l)),
        PropTest::Compare(CmpOp::Ne, l) => !value.is_some_and(|v| equals(v, l)),
        PropTest::Compare(op, Scalar::Number(l)) => {
            let (Some(a), Ok(b)) = (value.and_then(Value::as_f64), l.parse::<f64>()) else {
                return false;
            };
            match op {
                CmpOp::Gt => a > b,
                CmpOp::Ge => a >= b,
                CmpOp::Lt => a < b,
                _ => a <= b,
            }
        }
        PropTest::Compare(_, _) => false,
        PropTest::Exists => value.is_some_and(|v| !v.is_null()),
        PropTest::Contains(needle) => value
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains(needle.as_str())),
        PropTest::In(literals) => value.is_some_and(|v| literals.iter().any(|l| equals(v, l))),
    }
}

/// An event filter on one event's properties.
pub fn event_pred_holds(props: &Value, pred: &EventPred) -> bool {
    match pred {
        EventPred::And(c) => c.iter().all(|p| event_pred_holds(props, p)),
        EventPred::Or(c) => c.iter().any(|p| event_pred_holds(props, p)),
        EventPred::Not(inner) => !event_pred_holds(props, inner),
        EventPred::Prop(prop) => prop_holds(props, prop),
    }
}

/// An atom whose value needs a query: an event atom or an `opened` / `clicked` atom.
#[derive(Debug, Clone, Copy)]
pub enum QueryAtom<'a> {
    Event(&'a EventAtom),
    Opened(&'a str),
    Clicked(&'a str),
}

/// Why an evaluation could not finish: this atom's value is needed first.
pub struct Needs<'a>(pub QueryAtom<'a>);

/// Evaluates `pred` for a contact with properties `props`, short-circuiting, property
/// children first (they cost nothing). `known` answers the query atoms fetched so far (by
/// address); the first unknown atom needed is returned as `Err(Needs)`, and the caller
/// fetches it and evaluates again.
pub fn evaluate<'a>(
    pred: &'a Pred,
    props: &Value,
    known: &dyn Fn(QueryAtom<'a>) -> Option<bool>,
) -> Result<bool, Needs<'a>> {
    match pred {
        Pred::And(children) | Pred::Or(children) => {
            let is_and = matches!(pred, Pred::And(_));
            // Cheap children (no query inside) first: they may decide alone.
            let (cheap, costly): (Vec<&Pred>, Vec<&Pred>) =
                children.iter().partition(|c| !needs_query(c));
            for child in cheap.into_iter().chain(costly) {
                let v = evaluate(child, props, known)?;
                if v != is_and {
                    return Ok(v);
                }
            }
            Ok(is_and)
        }
        Pred::Not(inner) => evaluate(inner, props, known).map(|v| !v),
        Pred::Prop(prop) => Ok(prop_holds(props, prop)),
        Pred::Event(atom) => lookup_atom(QueryAtom::Event(atom), known),
        Pred::Opened(t) => lookup_atom(QueryAtom::Opened(t), known),
        Pred::Clicked(t) => lookup_atom(QueryAtom::Clicked(t), known),
    }
}

fn lookup_atom<'a>(
    atom: QueryAtom<'a>,
    known: &dyn Fn(QueryAtom<'a>) -> Option<bool>,
) -> Result<bool, Needs<'a>> {
    known(atom).ok_or(Needs(atom))
}

/// Whether evaluating `pred` may need a query.
fn needs_query(pred: &Pred) -> bool {
    match pred {
        Pred::And(c) | Pred::Or(c) => c.iter().any(needs_query),
        Pred::Not(inner) => needs_query(inner),
        Pred::Prop(_) => false,
        Pred::Event(_) | Pred::Opened(_) | Pred::Clicked(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prop(path: &[&str], test: PropTest) -> Prop {
        Prop {
            path: path.iter().map(|s| s.to_string()).collect(),
            test,
        }
    }

    #[test]
    fn property_semantics_follow_the_language() {
        let c = json!({"seats": "12", "n": 5, "address": "unknown", "a": {"b": "DE"}, "s": null});
        let num = |s: &str| Scalar::Number(s.into());
        assert!(!prop_holds(
            &c,
            &prop(&["seats"], PropTest::Compare(CmpOp::Ge, num("10")))
        ));
        assert!(prop_holds(
            &c,
            &prop(&["n"], PropTest::Compare(CmpOp::Eq, num("5.0")))
        ));
        assert!(!prop_holds(
            &c,
            &prop(&["address", "country"], PropTest::Exists)
        ));
        assert!(prop_holds(
            &c,
            &prop(
                &["a", "b"],
                PropTest::Compare(CmpOp::Eq, Scalar::String("DE".into()))
            )
        ));
        assert!(prop_holds(
            &c,
            &prop(
                &["missing"],
                PropTest::Compare(CmpOp::Ne, Scalar::Bool(true))
            )
        ));
        assert!(!prop_holds(&c, &prop(&["s"], PropTest::Exists)));
        assert!(prop_holds(
            &c,
            &prop(&["address"], PropTest::Contains("know".into()))
        ));
        assert!(!prop_holds(
            &c,
            &prop(&["n"], PropTest::Contains("5".into()))
        ));
    }
}
