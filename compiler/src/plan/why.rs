//! The explanation of a bucket's criteria for one contact (`hogsend why`): one SELECT
//! returning a `jsonb` tree with every node's value at `p_now` and each atom's evidence.
//!
//! It is built from the same builder as the matcher ([`MatcherBuilder`]): the event counts
//! come from the same per-contact aggregate (`a`), and every node's `value` is the matcher's
//! own boolean expression for that node ([`MatcherBuilder::criteria`]), so the explanation
//! cannot disagree with membership. The evidence (event instants, values found) is read
//! beside it.
//!
//! Node shapes (`kind`): `and`/`or` with `children`, `not` with `child`; `event`
//! (`did`/`count`) with `count`, `events` (the latest [`EVIDENCE_LIMIT`] matching instants,
//! newest first), `window_from`/`window_to` and, for a windowed atom, `changes_at` (the
//! first instant after `p_now` at which the atom's value changes because a matching event
//! leaves the window, NULL when none does); `property` with `found` (the JSON value or
//! NULL), `type` (its `jsonb_typeof`) and `absent` (NULL when found, `missing`, or
//! `not an object at contact.a.b`); `opened`/`clicked` with `messages` (the instants).
//! Every node has `text` (its `.hog` spelling) and `value`. The root also has
//! `next_event_at`: the first instant after `p_now` of an event of the criteria's names,
//! which becomes visible by the clock alone.

use crate::ir::{EventAtom, EventTest, Pred, Prop, Window};
use crate::plan::matcher::{
    coalesce, col, count_test, jsonb_typeof, path_value, seconds_interval, var, MatcherBuilder,
    Shape, MAX_SECONDS,
};
use crate::plan::sql::{Expr, JoinKind, Op, Select, Source};
use crate::plan::text::pred_text;

/// How many instants an atom's evidence lists (the latest ones).
pub const EVIDENCE_LIMIT: i64 = 10;

fn call(name: &'static str, args: Vec<Expr>) -> Expr {
    Expr::Call(name, args)
}

/// `jsonb_build_object('k1', v1, …)`.
fn object(fields: Vec<(&str, Expr)>) -> Expr {
    let mut args = Vec::new();
    for (key, value) in fields {
        args.push(Expr::text(key));
        args.push(value);
    }
    call("jsonb_build_object", args)
}

fn one_microsecond() -> Expr {
    Expr::text("1 microsecond").cast("interval")
}

impl MatcherBuilder<'_> {
    /// `SELECT <tree> FROM contacts c LEFT JOIN LATERAL <the matcher's per-contact
    /// aggregate> a ON TRUE WHERE c.user_key = p_key`.
    pub(crate) fn why(&self, criteria: &Pred) -> Select {
        let mut tree = self.why_node(criteria);
        let names = self.event_names();
        if !names.is_empty() {
            let next = Select::from(self.table("events", "e"))
                .item(call("min", vec![col("e", "occurred_at")]))
                .filter(col("e", "user_key").eq(col("c", "user_key")))
                .filter(Self::name_condition("e", &names))
                .filter(col("e", "occurred_at").binary(Op::Gt, var("p_now")));
            tree = tree.binary(
                Op::Concat,
                object(vec![("next_event_at", Expr::Subquery(Box::new(next)))]),
            );
        }
        let mut q = Select::from(self.table("contacts", "c")).item(tree);
        if !self.atoms.is_empty() {
            q = q.join(
                JoinKind::LeftLateral,
                Source::Subquery(
                    Box::new(self.aggregate(Shape::PerContact, false)),
                    "a".into(),
                ),
                Expr::Bool(true),
            );
        }
        q.filter(col("c", "user_key").eq(var("p_key")))
    }

    fn why_node(&self, pred: &Pred) -> Expr {
        let value = self.criteria(pred);
        let text = Expr::text(&pred_text(pred));
        match pred {
            Pred::And(children) | Pred::Or(children) => {
                let kind = if matches!(pred, Pred::And(_)) {
                    "and"
                } else {
                    "or"
                };
                let children = call(
                    "jsonb_build_array",
                    children.iter().map(|c| self.why_node(c)).collect(),
                );
                object(vec![
                    ("kind", Expr::text(kind)),
                    ("text", text),
                    ("value", value),
                    ("children", children),
                ])
            }
            Pred::Not(inner) => object(vec![
                ("kind", Expr::text("not")),
                ("text", text),
                ("value", value),
                ("child", self.why_node(inner)),
            ]),
            Pred::Event(atom) => self.why_event(atom, text, value),
            Pred::Prop(prop) => why_property(prop, text, value),
            // (never in criteria: a bucket has no triggering event)
            Pred::Trigger(_) => object(vec![
                ("kind", Expr::text("trigger")),
                ("text", text),
                ("value", value),
            ]),
            Pred::Opened(template) | Pred::Clicked(template) => {
                let (kind, column) = match pred {
                    Pred::Opened(_) => ("opened", "opened_at"),
                    _ => ("clicked", "clicked_at"),
                };
                let latest = Select::from(self.table("messages", "m"))
                    .item(col("m", column))
                    .filter(col("m", "user_key").eq(col("c", "user_key")))
                    .filter(col("m", "template").eq(Expr::text(template)))
                    .filter(Expr::IsNull(Box::new(col("m", column)), true))
                    .order_by(col("m", column), true)
                    .limit(EVIDENCE_LIMIT);
                object(vec![
                    ("kind", Expr::text(kind)),
                    ("text", text),
                    ("value", value),
                    ("template", Expr::text(template)),
                    ("messages", instants(latest, column)),
                ])
            }
        }
    }

    fn why_event(&self, atom: &EventAtom, text: Expr, value: Expr) -> Expr {
        let column = self.column_of(atom);
        let count = coalesce(col("a", &column), Expr::Int(0));
        // The matching events, as the aggregate counts them (name, filter, window, <= p_now).
        let matching = |alias: &str| {
            Select::from(self.table("events", alias))
                .filter(col(alias, "user_key").eq(col("c", "user_key")))
                .filter(col(alias, "occurred_at").binary(Op::Le, var("p_now")))
                .filter(Self::atom_condition(atom, alias, true))
        };
        let latest = matching("e")
            .item(col("e", "occurred_at"))
            .order_by(col("e", "occurred_at"), true)
            .limit(EVIDENCE_LIMIT);
        let (window_from, changes_at) = match atom.window {
            Window::Within(seconds) => {
                let width = seconds_interval(seconds.clamp(1, MAX_SECONDS));
                let from = var("p_now").binary(Op::Sub, width.clone());
                // The event e leaves the window just after e.occurred_at + width; the count
                // then drops by the events at or before e.occurred_at. The first such
                // instant at which the test's answer differs from `value`.
                let gone = matching("e2")
                    .item(Expr::CountStar)
                    .filter(col("e2", "occurred_at").binary(Op::Le, col("e", "occurred_at")));
                let after = count
                    .clone()
                    .binary(Op::Sub, Expr::Subquery(Box::new(gone)));
                let flips = matching("e")
                    .item(call(
                        "min",
                        vec![col("e", "occurred_at")
                            .binary(Op::Add, width)
                            .binary(Op::Add, one_microsecond())],
                    ))
                    .filter(
                        count_test(after, atom.test)
                            .binary(Op::Ne, count_test(count.clone(), atom.test)),
                    );
                (from, Expr::Subquery(Box::new(flips)))
            }
            _ => (Expr::Null("timestamptz"), Expr::Null("timestamptz")),
        };
        let kind = match atom.test {
            EventTest::Exists => "did",
            EventTest::Count(..) => "count",
        };
        object(vec![
            ("kind", Expr::text("event")),
            ("atom", Expr::text(kind)),
            ("text", text),
            ("value", value),
            ("event", Expr::text(&atom.event)),
            ("count", count),
            ("events", instants(latest, "occurred_at")),
            ("window_from", window_from),
            ("window_to", var("p_now")),
            ("changes_at", changes_at),
        ])
    }
}

/// `COALESCE((SELECT jsonb_agg(x.column) FROM (<select>) x), '[]')`: the instants in the
/// subquery's order.
fn instants(select: Select, column: &str) -> Expr {
    let agg = Select::from(Source::Subquery(Box::new(select), "x".into()))
        .item(call("jsonb_agg", vec![col("x", column)]));
    coalesce(
        Expr::Subquery(Box::new(agg)),
        Expr::text("[]").cast("jsonb"),
    )
}

/// A property atom's node: the value found at its path, its JSON type, and why it is
/// absent (`missing`, or `not an object at contact.a`: the first prefix holding a
/// non-object).
fn why_property(prop: &Prop, text: Expr, value: Expr) -> Expr {
    let root = col("c", "properties");
    let found = path_value(root.clone(), &prop.path);
    // Innermost first: the deepest prefix is checked last.
    let mut absent = Expr::text("missing");
    for depth in (1..prop.path.len()).rev() {
        let prefix = path_value(root.clone(), &prop.path[..depth]);
        let at = format!("not an object at contact.{}", prop.path[..depth].join("."));
        let typ = jsonb_typeof(prefix);
        absent = Expr::Case(
            Box::new(Expr::IsNull(Box::new(typ.clone()), false)),
            Box::new(Expr::text("missing")),
            Box::new(Expr::Case(
                Box::new(typ.binary(Op::Ne, Expr::text("object"))),
                Box::new(Expr::text(&at)),
                Box::new(absent),
            )),
        );
    }
    let absent = Expr::Case(
        Box::new(Expr::IsNull(Box::new(found.clone()), true)),
        Box::new(Expr::Null("text")),
        Box::new(absent),
    );
    object(vec![
        ("kind", Expr::text("property")),
        ("text", text),
        ("value", value),
        (
            "path",
            Expr::text(&format!("contact.{}", prop.path.join("."))),
        ),
        ("found", found.clone()),
        ("type", jsonb_typeof(found)),
        ("absent", absent),
    ])
}
