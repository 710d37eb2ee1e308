//! The reference evaluator of the IR: what a condition ([`Pred`]) means for one contact at
//! one instant, written straight from the semantics of conditions (`docs/language.md`),
//! with no SQL, no IO and no clock.
//!
//! It is the one statement of those semantics in Rust: the checker's empty-contact rule,
//! the engine's property tests (which compare the generated SQL with it) and the
//! benchmark's per-contact baseline all evaluate through it. The rules:
//!
//! - `==` is strict-typed equality (`"5"` is not `5`), numbers compared by value (`5` is
//!   `5.0`, exactly, as Postgres compares `numeric`); `!=` is its negation, so it holds when
//!   the property is missing; `<`, `<=`, `>`, `>=` hold only when both sides are numbers;
//!   `exists` is present and not JSON `null`; `contains` holds on a string containing the
//!   substring; `in` is `==` with one of the values.
//! - A path is missing as soon as a step is not an object holding that key (`a.b` on
//!   `{"a": "x"}` is missing).
//! - An event atom counts the contact's events with that name, `occurred_at <= T` (events
//!   after `T` have not happened yet), inside the window (inclusive at both ends:
//!   `T - D <= occurred_at`), matching the filter; `did` is "at least one", `count … CMP n`
//!   compares the count.
//! - `opened` / `clicked` hold once an open / click of a message of that template is
//!   recorded, whatever the instant (ARCHITECTURE.md, "Decisions").
//!
//! Instants are [`Micros`]: microseconds since any epoch, the same for every input of one
//! evaluation (Postgres timestamps have microsecond precision, so window edges are exact).

use std::cmp::Ordering;

use serde_json::Value;

use crate::ir::{CmpOp, EventAtom, EventPred, EventTest, Pred, Prop, PropTest, Scalar, Window};

/// An instant, in microseconds since an epoch of the caller's choosing.
pub type Micros = i64;

/// One event of the contact.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub name: &'a str,
    /// The event's properties (a JSON object; anything else has no property).
    pub properties: &'a Value,
    pub occurred_at: Micros,
}

/// One message sent to the contact.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The template id.
    pub template: &'a str,
    /// Whether an open was recorded.
    pub opened: bool,
    /// Whether a click was recorded.
    pub clicked: bool,
}

/// Everything a condition can read of one contact.
#[derive(Debug, Clone)]
pub struct Contact<'a> {
    /// The contact's properties (a JSON object; anything else has no property).
    pub properties: &'a Value,
    pub events: Vec<Event<'a>>,
    pub messages: Vec<Message<'a>>,
    /// The journey run's entry instant, which `since entry` windows start at; `None` outside
    /// a run, where such a window (the checker allows it in journeys only) covers all time.
    pub entered_at: Option<Micros>,
    /// The properties of the event that started the journey run, which `trigger.` paths
    /// read; JSON `null` (no property) outside a run and in a run not started by an event.
    pub trigger: &'a Value,
}

static NO_PROPERTIES: Value = Value::Null;

impl Contact<'static> {
    /// The contact with no properties, no events and no messages.
    pub fn empty() -> Self {
        Contact {
            properties: &NO_PROPERTIES,
            events: Vec::new(),
            messages: Vec::new(),
            entered_at: None,
            trigger: &NO_PROPERTIES,
        }
    }
}

/// Whether `pred` holds for `contact` at `at`.
pub fn holds(pred: &Pred, contact: &Contact<'_>, at: Micros) -> bool {
    let mut facts = |atom: Atom<'_>| {
        Some(match atom {
            Atom::Event(a) => event_atom_holds(a, &contact.events, at, contact.entered_at),
            Atom::Opened(t) => contact.messages.iter().any(|m| m.template == t && m.opened),
            Atom::Clicked(t) => contact
                .messages
                .iter()
                .any(|m| m.template == t && m.clicked),
        })
    };
    match evaluate_in_run(pred, contact.properties, contact.trigger, &mut facts) {
        Ok(value) => value,
        Err(_) => unreachable!("every atom is answered from the contact's data"),
    }
}

/// Whether `pred` holds for the contact with no properties, no events and no messages (the
/// empty-contact rule: a bucket's criteria must not).
pub fn holds_for_empty_contact(pred: &Pred) -> bool {
    holds(pred, &Contact::empty(), 0)
}

/// An atom whose value is not in the contact's properties: an event atom, or an `opened` /
/// `clicked` atom (by template id).
#[derive(Debug, Clone, Copy)]
pub enum Atom<'p> {
    Event(&'p EventAtom),
    Opened(&'p str),
    Clicked(&'p str),
}

/// Evaluates `pred` on `properties`, asking `facts` for the value of every other atom it
/// needs, short-circuiting (the children that read properties only go first: they may
/// decide alone). When `facts` does not know an atom (`None`), the evaluation stops and
/// returns that atom as `Err`: the caller finds its value (for example with one query) and
/// evaluates again. [`holds`] is this with every atom answered from a [`Contact`].
/// Outside a journey run, so every `trigger.` path is missing.
pub fn evaluate<'p>(
    pred: &'p Pred,
    properties: &Value,
    facts: &mut dyn FnMut(Atom<'p>) -> Option<bool>,
) -> Result<bool, Atom<'p>> {
    evaluate_in_run(pred, properties, &NO_PROPERTIES, facts)
}

/// [`evaluate`] inside a journey run whose triggering event had the properties `trigger`
/// (JSON `null` when no event started it: every `trigger.` path is missing).
pub fn evaluate_in_run<'p>(
    pred: &'p Pred,
    properties: &Value,
    trigger: &Value,
    facts: &mut dyn FnMut(Atom<'p>) -> Option<bool>,
) -> Result<bool, Atom<'p>> {
    match pred {
        Pred::And(children) | Pred::Or(children) => {
            let all = matches!(pred, Pred::And(_));
            let (cheap, costly): (Vec<&Pred>, Vec<&Pred>) =
                children.iter().partition(|c| reads_properties_only(c));
            for child in cheap.into_iter().chain(costly) {
                let value = evaluate_in_run(child, properties, trigger, facts)?;
                if value != all {
                    return Ok(value);
                }
            }
            Ok(all)
        }
        Pred::Not(inner) => evaluate_in_run(inner, properties, trigger, facts).map(|v| !v),
        Pred::Prop(prop) => Ok(prop_holds(properties, prop)),
        Pred::Trigger(prop) => Ok(prop_holds(trigger, prop)),
        Pred::Event(atom) => ask(Atom::Event(atom), facts),
        Pred::Opened(t) => ask(Atom::Opened(t), facts),
        Pred::Clicked(t) => ask(Atom::Clicked(t), facts),
    }
}

fn ask<'p>(
    atom: Atom<'p>,
    facts: &mut dyn FnMut(Atom<'p>) -> Option<bool>,
) -> Result<bool, Atom<'p>> {
    facts(atom).ok_or(atom)
}

/// Whether `pred` reads nothing but the contact's properties.
fn reads_properties_only(pred: &Pred) -> bool {
    match pred {
        Pred::And(c) | Pred::Or(c) => c.iter().all(reads_properties_only),
        Pred::Not(inner) => reads_properties_only(inner),
        Pred::Prop(_) | Pred::Trigger(_) => true,
        Pred::Event(_) | Pred::Opened(_) | Pred::Clicked(_) => false,
    }
}

/// The earliest `occurred_at` an atom with this window looks at, when evaluated at `at`
/// (`None`: no lower bound). The latest is `at` itself.
pub fn window_start(window: Window, at: Micros, entered_at: Option<Micros>) -> Option<Micros> {
    match window {
        Window::Ever => None,
        Window::Within(seconds) => Some(at.saturating_sub(seconds.saturating_mul(1_000_000))),
        Window::SinceEntry => entered_at,
    }
}

/// Whether an event atom holds on these events (of any names) at `at`.
pub fn event_atom_holds(
    atom: &EventAtom,
    events: &[Event<'_>],
    at: Micros,
    entered_at: Option<Micros>,
) -> bool {
    let from = window_start(atom.window, at, entered_at);
    let count = events
        .iter()
        .filter(|e| {
            e.name == atom.event
                && e.occurred_at <= at
                && from.is_none_or(|from| from <= e.occurred_at)
                && atom
                    .filter
                    .as_ref()
                    .is_none_or(|f| event_pred_holds(e.properties, f))
        })
        .count();
    count_holds(atom.test, i64::try_from(count).unwrap_or(i64::MAX))
}

/// Whether an event atom's test holds for this many matching events.
pub fn count_holds(test: EventTest, count: i64) -> bool {
    match test {
        EventTest::Exists => count > 0,
        EventTest::Count(op, n) => compare(op, count.cmp(&n)),
    }
}

/// Whether an event filter holds on one event's properties.
pub fn event_pred_holds(properties: &Value, pred: &EventPred) -> bool {
    match pred {
        EventPred::And(c) => c.iter().all(|p| event_pred_holds(properties, p)),
        EventPred::Or(c) => c.iter().any(|p| event_pred_holds(properties, p)),
        EventPred::Not(inner) => !event_pred_holds(properties, inner),
        EventPred::Prop(prop) => prop_holds(properties, prop),
    }
}

/// Whether a property test holds on `root` (a contact's or an event's properties).
pub fn prop_holds(root: &Value, prop: &Prop) -> bool {
    let value = lookup(root, &prop.path);
    match &prop.test {
        PropTest::Compare(CmpOp::Eq, literal) => value.is_some_and(|v| equals(v, literal)),
        PropTest::Compare(CmpOp::Ne, literal) => !value.is_some_and(|v| equals(v, literal)),
        PropTest::Compare(op, Scalar::Number(literal)) => match value {
            Some(Value::Number(n)) => {
                decimal_cmp(&n.to_string(), literal).is_some_and(|ord| compare(*op, ord))
            }
            _ => false,
        },
        PropTest::Compare(_, _) => false,
        PropTest::Exists => value.is_some_and(|v| !v.is_null()),
        PropTest::Contains(needle) => {
            matches!(value, Some(Value::String(s)) if s.contains(needle.as_str()))
        }
        PropTest::In(literals) => value.is_some_and(|v| literals.iter().any(|l| equals(v, l))),
    }
}

/// The value at `path` under `root`: missing as soon as a step is not an object holding
/// that key.
pub fn lookup<'v>(root: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(root, |v, key| v.as_object().and_then(|o| o.get(key)))
}

/// Strict-typed equality with a literal, numbers by value.
fn equals(value: &Value, literal: &Scalar) -> bool {
    match (value, literal) {
        (Value::String(s), Scalar::String(l)) => s == l,
        (Value::Bool(b), Scalar::Bool(l)) => b == l,
        (Value::Number(n), Scalar::Number(l)) => {
            decimal_cmp(&n.to_string(), l) == Some(Ordering::Equal)
        }
        _ => false,
    }
}

fn compare(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
    }
}

/// A decimal number as `±0.d₁d₂…dₙ × 10^exponent` with `d₁` and `dₙ` non-zero (no digits:
/// zero).
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

impl Decimal {
    /// Parses JSON number text (`-12.50`, `1e20`, `2.5E-3`); `None` for anything else.
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(i) => {
                let e = &unsigned[i + 1..];
                let e = e.strip_prefix('+').unwrap_or(e);
                (&unsigned[..i], e.parse::<i64>().ok()?)
            }
            None => (unsigned, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        let leading = all.iter().take_while(|d| **d == 0).count();
        let mut digits = all[leading..].to_vec();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits,
                exponent: 0,
            });
        }
        let point = i64::try_from(int.len()).ok()? - i64::try_from(leading).ok()?;
        Some(Decimal {
            negative,
            digits,
            exponent: point.checked_add(exponent)?,
        })
    }

    fn sign(&self) -> i8 {
        match (self.digits.is_empty(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_sign = self.sign().cmp(&other.sign());
        if by_sign != Ordering::Equal || self.sign() == 0 {
            return by_sign;
        }
        let magnitude = self
            .exponent
            .cmp(&other.exponent)
            .then_with(|| self.digits.cmp(&other.digits));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two decimal texts exactly; `None` when one is not a number.
fn decimal_cmp(a: &str, b: &str) -> Option<Ordering> {
    Some(Decimal::parse(a)?.cmp(&Decimal::parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prop(path: &[&str], test: PropTest) -> Prop {
        Prop {
            path: path.iter().map(ToString::to_string).collect(),
            test,
        }
    }

    fn num(s: &str) -> Scalar {
        Scalar::Number(s.into())
    }

    fn cmp(path: &[&str], op: CmpOp, value: Scalar) -> Pred {
        Pred::Prop(prop(path, PropTest::Compare(op, value)))
    }

    fn did(event: &str, window: Window, test: EventTest) -> Pred {
        Pred::Event(EventAtom {
            event: event.into(),
            filter: None,
            window,
            test,
        })
    }

    #[test]
    fn property_tests_follow_the_semantics() {
        let c = json!({"seats": "12", "n": 5, "address": "unknown", "a": {"b": "DE"}, "s": null,
                       "f": false, "x": 2.5});
        let holds = |p: Prop| prop_holds(&c, &p);
        // Strict types: a string is not a number, a number is not a string.
        assert!(!holds(prop(
            &["seats"],
            PropTest::Compare(CmpOp::Ge, num("10"))
        )));
        assert!(!holds(prop(
            &["seats"],
            PropTest::Compare(CmpOp::Eq, num("12"))
        )));
        assert!(!holds(prop(
            &["n"],
            PropTest::Compare(CmpOp::Eq, Scalar::String("5".into()))
        )));
        // Numbers by value.
        assert!(holds(prop(
            &["n"],
            PropTest::Compare(CmpOp::Eq, num("5.0"))
        )));
        assert!(holds(prop(
            &["x"],
            PropTest::Compare(CmpOp::Gt, num("2.49"))
        )));
        assert!(holds(prop(
            &["x"],
            PropTest::Compare(CmpOp::Le, num("2.50"))
        )));
        // Nested paths through a non-object are missing; `!=` holds on missing.
        assert!(!holds(prop(&["address", "country"], PropTest::Exists)));
        assert!(holds(prop(
            &["address", "country"],
            PropTest::Compare(CmpOp::Ne, Scalar::String("DE".into()))
        )));
        assert!(holds(prop(
            &["a", "b"],
            PropTest::Compare(CmpOp::Eq, Scalar::String("DE".into()))
        )));
        assert!(holds(prop(
            &["missing"],
            PropTest::Compare(CmpOp::Ne, Scalar::Bool(true))
        )));
        assert!(!holds(prop(
            &["missing"],
            PropTest::Compare(CmpOp::Lt, num("1"))
        )));
        // `exists` is present and not null.
        assert!(!holds(prop(&["s"], PropTest::Exists)));
        assert!(holds(prop(&["f"], PropTest::Exists)));
        // `contains` on strings only.
        assert!(holds(prop(&["address"], PropTest::Contains("know".into()))));
        assert!(!holds(prop(&["n"], PropTest::Contains("5".into()))));
        // `in` is `==` with one of them.
        assert!(holds(prop(
            &["n"],
            PropTest::In(vec![Scalar::String("5".into()), num("5")])
        )));
        assert!(!holds(prop(
            &["f"],
            PropTest::In(vec![Scalar::String("false".into())])
        )));
    }

    #[test]
    fn decimals_compare_exactly() {
        let ord = |a: &str, b: &str| decimal_cmp(a, b).unwrap();
        assert_eq!(ord("5", "5.0"), Ordering::Equal);
        assert_eq!(ord("0", "-0.0"), Ordering::Equal);
        assert_eq!(ord("1e2", "100"), Ordering::Equal);
        assert_eq!(ord("2.5E-3", "0.0025"), Ordering::Equal);
        assert_eq!(ord("0.1", "0.1000000000000000000001"), Ordering::Less);
        assert_eq!(ord("12", "9.99"), Ordering::Greater);
        assert_eq!(ord("-12", "-9.99"), Ordering::Less);
        assert_eq!(ord("-1", "0"), Ordering::Less);
        assert_eq!(ord("0.05", "0.5"), Ordering::Less);
        assert_eq!(ord("123", "12.3"), Ordering::Greater);
        assert_eq!(
            ord("9007199254740993", "9007199254740992"),
            Ordering::Greater
        );
        assert_eq!(decimal_cmp("abc", "1"), None);
        assert_eq!(decimal_cmp(".5", "1"), None);
    }

    #[test]
    fn event_atoms_count_inside_inclusive_windows_up_to_the_instant() {
        let props = json!({"plan": "pro"});
        let event = |at| Event {
            name: "paid",
            properties: &props,
            occurred_at: at,
        };
        let hour = 3_600_000_000;
        let contact = Contact {
            events: vec![event(0), event(hour), event(3 * hour)],
            ..Contact::empty()
        };
        let within_1h = Window::Within(3600);
        // At 2h: the event at 3h has not happened yet; the one at 1h is on the edge.
        let at = 2 * hour;
        assert!(holds(
            &did("paid", within_1h, EventTest::Exists),
            &contact,
            at
        ));
        assert!(holds(
            &did("paid", Window::Ever, EventTest::Count(CmpOp::Eq, 2)),
            &contact,
            at
        ));
        assert!(!holds(
            &did("paid", within_1h, EventTest::Exists),
            &contact,
            2 * hour + 1
        ));
        assert!(!holds(
            &did("other", Window::Ever, EventTest::Exists),
            &contact,
            at
        ));
        let filtered = |value: &str| {
            Pred::Event(EventAtom {
                event: "paid".into(),
                filter: Some(EventPred::Prop(prop(
                    &["plan"],
                    PropTest::Compare(CmpOp::Eq, Scalar::String(value.into())),
                ))),
                window: Window::Ever,
                test: EventTest::Count(CmpOp::Ge, 3),
            })
        };
        assert!(holds(&filtered("pro"), &contact, 3 * hour));
        assert!(!holds(&filtered("team"), &contact, 3 * hour));
        // `since entry` starts at the run's entry.
        let since = did("paid", Window::SinceEntry, EventTest::Count(CmpOp::Eq, 1));
        let run = Contact {
            entered_at: Some(hour),
            ..contact.clone()
        };
        assert!(holds(&since, &run, 2 * hour));
        assert!(!holds(&since, &contact, 2 * hour));
    }

    #[test]
    fn trigger_paths_read_the_run_trigger_and_are_missing_elsewhere() {
        let props = json!({"plan": "pro"});
        let trigger = json!({"total": 150, "plan": "trial"});
        let contact = Contact {
            properties: &props,
            ..Contact::empty()
        };
        let run = Contact {
            trigger: &trigger,
            ..contact.clone()
        };
        let big = Pred::Trigger(Prop {
            path: vec!["total".into()],
            test: PropTest::Compare(CmpOp::Ge, Scalar::Number("100".into())),
        });
        let trial = Pred::Trigger(Prop {
            path: vec!["plan".into()],
            test: PropTest::Compare(CmpOp::Eq, Scalar::String("trial".into())),
        });
        assert!(holds(&big, &run, 0));
        assert!(holds(&trial, &run, 0));
        // The contact's own `plan` is not the trigger's.
        assert!(!holds(&trial, &contact, 0));
        assert!(!holds(&big, &contact, 0));
        let not_trial = Pred::Not(Box::new(trial));
        assert!(holds(&not_trial, &contact, 0));
        let mut never = |_| None;
        assert!(matches!(evaluate(&big, &props, &mut never), Ok(false)));
        assert!(matches!(
            evaluate_in_run(&big, &props, &trigger, &mut never),
            Ok(true)
        ));
    }

    #[test]
    fn messages_count_once_recorded() {
        let contact = Contact {
            messages: vec![Message {
                template: "welcome",
                opened: true,
                clicked: false,
            }],
            ..Contact::empty()
        };
        assert!(holds(&Pred::Opened("welcome".into()), &contact, 0));
        assert!(!holds(&Pred::Clicked("welcome".into()), &contact, 0));
        assert!(!holds(&Pred::Opened("other".into()), &contact, 0));
    }

    #[test]
    fn the_empty_contact() {
        let ne = cmp(&["plan"], CmpOp::Ne, Scalar::String("pro".into()));
        assert!(holds_for_empty_contact(&ne));
        assert!(!holds_for_empty_contact(&cmp(
            &["plan"],
            CmpOp::Eq,
            Scalar::String("pro".into())
        )));
        assert!(holds_for_empty_contact(&Pred::Not(Box::new(did(
            "paid",
            Window::Ever,
            EventTest::Exists
        )))));
        assert!(holds_for_empty_contact(&did(
            "paid",
            Window::Within(60),
            EventTest::Count(CmpOp::Lt, 3)
        )));
        assert!(!holds_for_empty_contact(&Pred::And(vec![
            ne,
            did("paid", Window::Ever, EventTest::Exists)
        ])));
    }

    #[test]
    fn evaluate_asks_only_for_the_atoms_it_needs() {
        let paid = did("paid", Window::Ever, EventTest::Exists);
        let pro = cmp(&["plan"], CmpOp::Eq, Scalar::String("pro".into()));
        let p = Pred::And(vec![paid, pro]);
        let props = json!({"plan": "free"});
        let mut asked = 0;
        let mut facts = |_: Atom<'_>| {
            asked += 1;
            None
        };
        // The property child decides alone: no atom is asked for.
        assert_eq!(evaluate(&p, &props, &mut facts).ok(), Some(false));
        assert_eq!(asked, 0);
        let props = json!({"plan": "pro"});
        let needed = evaluate(&p, &props, &mut |_| None).unwrap_err();
        assert!(matches!(needed, Atom::Event(a) if a.event == "paid"));
        assert_eq!(evaluate(&p, &props, &mut |_| Some(true)).ok(), Some(true));
    }
}
