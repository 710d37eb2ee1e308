//! Criteria → the SQL that evaluates them for a set of contacts, as typed statements
//! ([`crate::plan::sql`]).
//!
//! One bucket's criteria become one SELECT: the contacts (all of them, or the candidates in
//! `_hs_cand`) left-joined to ONE aggregate over their relevant events, in which every
//! distinct event atom is a `count(*) FILTER (WHERE …)` column; the criteria is then a plain
//! boolean expression over those counts and `c.properties`. Every atom is two-valued (never
//! NULL), so `not` is plain negation as docs/language.md#meaning-at-an-instant requires.
//!
//! Values reach SQL only as [`Expr::Text`] / [`Expr::Int`], quoted by the printer's one
//! literal function; identifiers are either fixed names or ids validated by the checker.

use crate::ir::{CmpOp, EventAtom, EventPred, EventTest, Pred, Prop, PropTest, Scalar, Window};
use crate::plan::normalize::{canonical_number, Canonical};
use crate::plan::sql::{Expr, JoinKind, Op, Select, Source};

/// Durations are saturated to this many seconds (1000 years) so that `now - window` and
/// `entered_at + max_dwell` can never leave Postgres' timestamp range. Windows longer than
/// recorded history are equivalent anyway.
pub(crate) const MAX_SECONDS: i64 = 1000 * 365 * 86_400;

/// The SQL a bucket's criteria compile to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MatcherSql {
    /// `SELECT user_key, anchor` for the contacts in `_hs_cand` that match at `p_now`.
    pub(crate) match_candidates: Select,
    /// `SELECT user_key, anchor` for every live contact that matches at `p_now`, with the
    /// backfill dwell anchor.
    pub(crate) match_all: Select,
    /// `SELECT user_key` of the contacts whose truth may have changed between the previous
    /// tick `p_t0` and `p_now`: changed keys (events ready by `p_now` included), window edges,
    /// due timers.
    pub(crate) candidates: Select,
    /// `SELECT DISTINCT user_key` of the drained changes (`_hs_changed`) this criteria can
    /// see: the first part of `candidates`, alone (the daemon's real-time pass).
    pub(crate) changed: Select,
    /// `SELECT <jsonb>` explaining the criteria for the contact `p_key` at `p_now`: the
    /// tree of every node's value with each atom's evidence (see [`crate::plan::why`]).
    pub(crate) why: Select,
}

/// One distinct event atom of a criteria (same event, filter and window ⇒ same column).
pub(super) struct AtomColumn {
    key: String,
    pub(super) atom: EventAtom,
    pub(super) column: String,
    /// Some atom reading this column compares the count (`count … CMP n`), not only
    /// whether there is one (`did`).
    pub(super) counted: bool,
}

/// Builds the matcher SQL of one bucket.
pub(crate) struct MatcherBuilder<'a> {
    schema: &'a str,
    bucket_id: &'a str,
    pub(super) atoms: Vec<AtomColumn>,
    /// The criteria tests a contact property.
    reads_properties: bool,
    /// The criteria uses `opened` / `clicked`.
    reads_messages: bool,
}

pub(super) fn col(table: &str, column: &str) -> Expr {
    Expr::column(table, column)
}

/// A PL/pgSQL variable or parameter of the enclosing function (a fixed name, never input).
pub(super) fn var(name: &'static str) -> Expr {
    Expr::name(name)
}

pub(super) fn seconds_interval(seconds: i64) -> Expr {
    Expr::Seconds(seconds.clamp(1, MAX_SECONDS))
}

/// `var - interval`.
pub(super) fn ago(name: &'static str, seconds: i64) -> Expr {
    var(name).binary(Op::Sub, seconds_interval(seconds))
}

fn jsonb_literal(value: &Scalar) -> Expr {
    let json = match value {
        Scalar::String(s) => serde_json::Value::String(s.clone()).to_string(),
        Scalar::Number(raw) => canonical_number(raw),
        Scalar::Bool(b) => b.to_string(),
    };
    Expr::Text(json).cast("jsonb")
}

/// `root -> 'a' -> 'b'`: missing (NULL) as soon as a step is not an object with that key,
/// which is exactly the language's "a path through a non-object is missing".
pub(super) fn path_value(root: Expr, path: &[String]) -> Expr {
    path.iter()
        .fold(root, |acc, key| acc.binary(Op::Field, Expr::text(key)))
}

pub(super) fn jsonb_typeof(value: Expr) -> Expr {
    Expr::Call("jsonb_typeof", vec![value])
}

pub(super) fn coalesce(value: Expr, default: Expr) -> Expr {
    Expr::Call("COALESCE", vec![value, default])
}

/// `CASE WHEN jsonb_typeof(value) = 'ty' THEN then ELSE FALSE END`.
fn when_type(value: Expr, ty: &str, then: Expr) -> Expr {
    Expr::Case(
        Box::new(jsonb_typeof(value).eq(Expr::text(ty))),
        Box::new(then),
        Box::new(Expr::Bool(false)),
    )
}

/// A property test, two-valued.
pub(super) fn prop_test(root: Expr, prop: &Prop) -> Expr {
    let value = path_value(root, &prop.path);
    match &prop.test {
        PropTest::Compare(CmpOp::Eq, literal) => equals(value, literal),
        PropTest::Compare(CmpOp::Ne, literal) => equals(value, literal).not(),
        PropTest::Compare(op, literal) => match literal {
            Scalar::Number(raw) => {
                let number = Expr::Text(canonical_number(raw)).cast("numeric");
                let lhs = value.clone().cast("numeric");
                let op = match op {
                    CmpOp::Gt => Op::Gt,
                    CmpOp::Ge => Op::Ge,
                    CmpOp::Lt => Op::Lt,
                    _ => Op::Le,
                };
                when_type(value, "number", lhs.binary(op, number))
            }
            // Ordering a string or a boolean never holds (the checker warns).
            _ => Expr::Bool(false),
        },
        PropTest::Exists => Expr::all([
            Expr::IsNull(Box::new(value.clone()), true),
            jsonb_typeof(value).binary(Op::Ne, Expr::text("null")),
        ]),
        PropTest::Contains(needle) => {
            let text = Expr::JsonText(Box::new(value.clone()));
            let found =
                Expr::Call("strpos", vec![text, Expr::text(needle)]).binary(Op::Gt, Expr::Int(0));
            when_type(value, "string", found)
        }
        PropTest::In(values) => coalesce(
            Expr::In(Box::new(value), values.iter().map(jsonb_literal).collect()),
            Expr::Bool(false),
        ),
    }
}

/// Strict-typed JSON equality (`"5"` is not `5`, `5` is `5.0`), false when missing.
fn equals(value: Expr, literal: &Scalar) -> Expr {
    coalesce(value.eq(jsonb_literal(literal)), Expr::Bool(false))
}

pub(super) fn event_pred(pred: &EventPred, root: &Expr) -> Expr {
    match pred {
        EventPred::And(children) => Expr::all(children.iter().map(|c| event_pred(c, root))),
        EventPred::Or(children) => Expr::any(children.iter().map(|c| event_pred(c, root))),
        EventPred::Not(inner) => event_pred(inner, root).not(),
        EventPred::Prop(prop) => prop_test(root.clone(), prop),
    }
}

/// What one bucket's event aggregate covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// The candidates' events (`_hs_cand`), grouped by contact.
    Candidates,
    /// Every event of the criteria's names, grouped by contact (the backfill by default).
    AllEvents,
    /// One contact's events (`c`, in a `LATERAL` join).
    PerContact,
}

/// Whether `pred` reads contact properties alone (no event, no message).
fn property_only(pred: &Pred) -> bool {
    match pred {
        Pred::Prop(_) | Pred::Trigger(_) => true,
        Pred::And(children) | Pred::Or(children) => children.iter().all(property_only),
        Pred::Not(inner) => property_only(inner),
        Pred::Event(_) | Pred::Opened(_) | Pred::Clicked(_) => false,
    }
}

impl<'a> MatcherBuilder<'a> {
    /// Collects the event atoms of `criteria` for the bucket `bucket_id` in `schema`.
    pub(crate) fn new(schema: &'a str, bucket_id: &'a str, criteria: &Pred) -> Self {
        let mut builder = MatcherBuilder {
            schema,
            bucket_id,
            atoms: Vec::new(),
            reads_properties: false,
            reads_messages: false,
        };
        builder.collect(criteria);
        builder
    }

    fn collect(&mut self, pred: &Pred) {
        match pred {
            Pred::And(c) | Pred::Or(c) => c.iter().for_each(|p| self.collect(p)),
            Pred::Not(inner) => self.collect(inner),
            Pred::Event(atom) => {
                let key = atom_key(atom);
                let counted = matches!(atom.test, EventTest::Count(..));
                if let Some(existing) = self.atoms.iter_mut().find(|a| a.key == key) {
                    existing.counted |= counted;
                } else {
                    let column = format!("a{}", self.atoms.len());
                    self.atoms.push(AtomColumn {
                        key,
                        atom: atom.clone(),
                        column,
                        counted,
                    });
                }
            }
            Pred::Prop(_) => self.reads_properties = true,
            // (never in criteria: the checker rejects it; a bucket has no trigger)
            Pred::Trigger(_) => {}
            Pred::Opened(_) | Pred::Clicked(_) => self.reads_messages = true,
        }
    }

    pub(super) fn table(&self, name: &str, alias: &str) -> Source {
        Source::table(self.schema, name, alias)
    }

    /// `alias.event = 'x'` or `alias.event IN ('x', 'y')`.
    pub(super) fn name_condition(alias: &str, names: &[String]) -> Expr {
        if names.len() == 1 {
            col(alias, "event").eq(Expr::text(&names[0]))
        } else {
            Expr::In(
                Box::new(col(alias, "event")),
                names.iter().map(|n| Expr::text(n)).collect(),
            )
        }
    }

    /// The distinct event names the criteria reads, sorted.
    pub(super) fn event_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.atoms.iter().map(|a| a.atom.event.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The distinct (event, window) pairs of windowed atoms, sorted.
    fn windows(&self) -> Vec<(String, i64)> {
        let mut windows: Vec<(String, i64)> = self
            .atoms
            .iter()
            .filter_map(|a| match a.atom.window {
                Window::Within(s) => Some((a.atom.event.clone(), s.clamp(1, MAX_SECONDS))),
                _ => None,
            })
            .collect();
        windows.sort();
        windows.dedup();
        windows
    }

    /// When every atom is windowed, no event older than the widest window matters.
    fn lower_bound(&self) -> Option<i64> {
        let mut widest = 0;
        for a in &self.atoms {
            match a.atom.window {
                Window::Within(s) => widest = widest.max(s.clamp(1, MAX_SECONDS)),
                _ => return None,
            }
        }
        (widest > 0).then_some(widest)
    }

    /// The condition an event row `e` must meet to count for `atom` (name, window, filter).
    pub(super) fn atom_condition(atom: &EventAtom, alias: &str, with_window: bool) -> Expr {
        let mut cond = vec![col(alias, "event").eq(Expr::text(&atom.event))];
        if with_window {
            if let Window::Within(seconds) = atom.window {
                cond.push(col(alias, "occurred_at").binary(Op::Ge, ago("p_now", seconds)));
            }
        }
        if let Some(filter) = &atom.filter {
            cond.push(event_pred(filter, &col(alias, "properties")));
        }
        Expr::all(cond)
    }

    /// `SELECT e.user_key, count(*) FILTER (…) AS a0, … FROM events e [JOIN _hs_cand] … GROUP BY`,
    /// or (`Shape::PerContact`) the same counts for one contact `c`, without `GROUP BY`, for a
    /// `LATERAL` join. With `with_anchor`, also `max(occurred_at) FILTER (…) AS anchor_at`: the
    /// latest event of a windowed atom inside the aggregate's range (see [`Self::anchor`]).
    pub(super) fn aggregate(&self, shape: Shape, with_anchor: bool) -> Select {
        let mut q = Select::from(self.table("events", "e"));
        if shape != Shape::PerContact {
            q = q.item(col("e", "user_key"));
        }
        for a in &self.atoms {
            let count = Expr::Filter(
                Box::new(Expr::CountStar),
                Box::new(Self::atom_condition(&a.atom, "e", true)),
            );
            q = q.item_as(count, &a.column);
        }
        let windowed = self.windowed_conditions("e");
        if with_anchor && !windowed.is_empty() {
            let latest = Expr::Filter(
                Box::new(Expr::Call("max", vec![col("e", "occurred_at")])),
                Box::new(Expr::any(windowed)),
            );
            q = q.item_as(latest, "anchor_at");
        }
        match shape {
            Shape::Candidates => {
                q = q.join(
                    JoinKind::Inner,
                    Source::temp("_hs_cand"),
                    col("_hs_cand", "user_key").eq(col("e", "user_key")),
                );
            }
            Shape::PerContact => {
                q = q.filter(col("e", "user_key").eq(col("c", "user_key")));
            }
            Shape::AllEvents => {}
        }
        q = q
            .filter(Self::name_condition("e", &self.event_names()))
            .filter(col("e", "occurred_at").binary(Op::Le, var("p_now")));
        if let Some(bound) = self.lower_bound() {
            q = q.filter(col("e", "occurred_at").binary(Op::Ge, ago("p_now", bound)));
        }
        if shape != Shape::PerContact {
            q = q.group_by(col("e", "user_key"));
        }
        q
    }

    /// The conditions (name, filter; no window) of the windowed atoms on event rows `alias`.
    fn windowed_conditions(&self, alias: &str) -> Vec<Expr> {
        self.atoms
            .iter()
            .filter(|a| matches!(a.atom.window, Window::Within(_)))
            .map(|a| Self::atom_condition(&a.atom, alias, false))
            .collect()
    }

    /// Whether the backfill starts from the contacts (each probing its own events through
    /// the `(user_key, event, occurred_at)` index) rather than from one aggregate over every
    /// event of the criteria's names: when a top-level conjunct tests properties alone, it
    /// narrows the contacts before any event is read (`contact.country == "DE" and did
    /// app_opened within 30d`). The planner cannot tell how selective a JSON property test
    /// is, so the shape is chosen here.
    fn contacts_first(&self, criteria: &Pred) -> bool {
        !self.atoms.is_empty()
            && matches!(criteria, Pred::And(children) if children.iter().any(property_only))
    }

    /// The criteria as a boolean over `c` (contacts) and `a` (the aggregate).
    pub(super) fn criteria(&self, pred: &Pred) -> Expr {
        match pred {
            Pred::And(children) => Expr::all(children.iter().map(|p| self.criteria(p))),
            Pred::Or(children) => Expr::any(children.iter().map(|p| self.criteria(p))),
            Pred::Not(inner) => self.criteria(inner).not(),
            Pred::Event(atom) => {
                let column = self.column_of(atom);
                count_test(coalesce(col("a", &column), Expr::Int(0)), atom.test)
            }
            Pred::Prop(prop) => prop_test(col("c", "properties"), prop),
            // A bucket has no triggering event, so every `trigger.` path is missing (the
            // checker rejects it in criteria; this keeps `plan` total).
            Pred::Trigger(prop) => prop_test(Expr::Text("{}".to_owned()).cast("jsonb"), prop),
            Pred::Opened(template) => self.message_exists(template, "opened_at"),
            Pred::Clicked(template) => self.message_exists(template, "clicked_at"),
        }
    }

    /// The aggregate column counting `atom`'s events.
    pub(super) fn column_of(&self, atom: &EventAtom) -> String {
        let key = atom_key(atom);
        self.atoms
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.column.clone())
            .unwrap_or_default()
    }

    pub(super) fn message_exists(&self, template: &str, column: &str) -> Expr {
        let q = Select::from(self.table("messages", "m"))
            .item(Expr::Int(1))
            .filter(col("m", "user_key").eq(col("c", "user_key")))
            .filter(col("m", "template").eq(Expr::text(template)))
            .filter(Expr::IsNull(Box::new(col("m", column)), true));
        Expr::Exists(Box::new(q))
    }

    /// The backfill dwell anchor: the latest `occurred_at <= p_now` among the events the
    /// windowed atoms name (with their filters), NULL when there is none (the join instant
    /// is used then). Read from the aggregate's `anchor_at`; when the aggregate only covers
    /// the widest window and found none there, an older event may still be the anchor, so
    /// a per-contact lookup runs for those contacts alone.
    fn anchor(&self) -> Expr {
        let windowed = self.windowed_conditions("e2");
        if windowed.is_empty() {
            return Expr::Null("timestamptz");
        }
        let from_aggregate = col("a", "anchor_at");
        if self.lower_bound().is_none() {
            return from_aggregate;
        }
        let q = Select::from(self.table("events", "e2"))
            .item(Expr::Call("max", vec![col("e2", "occurred_at")]))
            .filter(col("e2", "user_key").eq(col("c", "user_key")))
            .filter(col("e2", "occurred_at").binary(Op::Le, var("p_now")))
            .filter(Expr::any(windowed));
        coalesce(from_aggregate, Expr::Subquery(Box::new(q)))
    }

    /// The full matcher SELECT for `criteria`.
    fn matcher(&self, criteria: &Pred, over_candidates: bool) -> Select {
        let on_contact = || col("a", "user_key").eq(col("c", "user_key"));
        let mut q = if over_candidates && self.summarizable() {
            Select::from(Source::temp("_hs_cand"))
                .item(col("c", "user_key"))
                .item_as(Expr::Null("timestamptz"), "anchor")
                .join(
                    JoinKind::Inner,
                    self.table("contacts", "c"),
                    col("c", "user_key").eq(col("_hs_cand", "user_key")),
                )
                .join(
                    JoinKind::LeftLateral,
                    Source::Subquery(Box::new(self.summary_counts()), "a".to_owned()),
                    Expr::Bool(true),
                )
        } else if over_candidates {
            let q = Select::from(Source::temp("_hs_cand"))
                .item(col("c", "user_key"))
                .item_as(Expr::Null("timestamptz"), "anchor")
                .join(
                    JoinKind::Inner,
                    self.table("contacts", "c"),
                    col("c", "user_key").eq(col("_hs_cand", "user_key")),
                );
            if self.atoms.is_empty() {
                q
            } else {
                let aggregate = self.aggregate(Shape::Candidates, false);
                q.join(
                    JoinKind::Left,
                    Source::Subquery(Box::new(aggregate), "a".to_owned()),
                    on_contact(),
                )
            }
        } else {
            let q = Select::from(self.table("contacts", "c"))
                .item(col("c", "user_key"))
                .item_as(self.anchor(), "anchor");
            if self.contacts_first(criteria) {
                let aggregate = self.aggregate(Shape::PerContact, true);
                q.join(
                    JoinKind::LeftLateral,
                    Source::Subquery(Box::new(aggregate), "a".to_owned()),
                    Expr::Bool(true),
                )
            } else if !self.atoms.is_empty() {
                let aggregate = self.aggregate(Shape::AllEvents, true);
                q.join(
                    JoinKind::Left,
                    Source::Subquery(Box::new(aggregate), "a".to_owned()),
                    on_contact(),
                )
            } else {
                q
            }
        };
        q = q
            .filter(Expr::IsNull(Box::new(col("c", "deleted_at")), false))
            .filter(self.criteria(criteria));
        q
    }

    /// Keys whose data changed in a way this criteria can see (see `changed_keys`).
    fn changed(&self) -> Select {
        let kind = |k: &str| col("_hs_changed", "kind").eq(Expr::text(k));
        let mut changed = vec![kind("x")];
        let names = self.event_names();
        if !names.is_empty() {
            changed.push(Expr::all([
                kind("e"),
                Self::name_condition("_hs_changed", &names),
            ]));
        }
        if self.reads_properties {
            changed.push(kind("p"));
        }
        if self.reads_messages {
            changed.push(kind("m"));
        }
        Select::from(Source::temp("_hs_changed"))
            .item(Expr::name("user_key"))
            .filter(Expr::any(changed))
    }

    /// The union of everything that may have changed for this bucket since `p_t0`.
    fn candidates(&self) -> Select {
        let mut q = self.changed();
        for (event, seconds) in self.windows() {
            // Events that were inside the window at p_t0 and are outside it at p_now.
            let edge = Select::from(self.table("events", "e"))
                .item(col("e", "user_key"))
                .filter(col("e", "event").eq(Expr::text(&event)))
                .filter(col("e", "occurred_at").binary(Op::Ge, ago("p_t0", seconds)))
                .filter(col("e", "occurred_at").binary(Op::Lt, ago("p_now", seconds)));
            q = q.union(edge);
        }
        // Events that became visible between the ticks (an event stored before its
        // `occurred_at`) need no rule of their own: their change-queue entry is ready only at
        // that instant (`changed_keys.ready_at`), so the first pass whose instant reaches it
        // drains it. Reading the events of the interval instead made every tick re-evaluate
        // every contact the real-time pass had already evaluated.

        // Members whose timer (dwell, max_dwell, deferred leave, cool-down) is due.
        let due = Select::from(self.table("memberships", "m"))
            .item(col("m", "user_key"))
            .filter(col("m", "bucket_id").eq(Expr::text(self.bucket_id)))
            .filter(col("m", "next_check_at").binary(Op::Le, var("p_now")));
        q.union(due)
    }

    /// Builds all four statements and the explanation.
    pub(crate) fn build(&self, criteria: &Pred) -> MatcherSql {
        MatcherSql {
            why: self.why(criteria),
            match_candidates: self.matcher(criteria, true),
            match_all: self.matcher(criteria, false),
            candidates: self.candidates(),
            changed: self.changed().distinct(),
        }
    }
}

/// An event atom's test on a count of matching events.
pub(super) fn count_test(count: Expr, test: EventTest) -> Expr {
    match test {
        EventTest::Exists => count.binary(Op::Gt, Expr::Int(0)),
        EventTest::Count(op, n) => {
            let op = match op {
                CmpOp::Eq => Op::Eq,
                CmpOp::Ne => Op::Ne,
                CmpOp::Gt => Op::Gt,
                CmpOp::Ge => Op::Ge,
                CmpOp::Lt => Op::Lt,
                CmpOp::Le => Op::Le,
            };
            count.binary(op, Expr::Int(n))
        }
    }
}

fn atom_key(atom: &EventAtom) -> String {
    Pred::Event(EventAtom {
        test: EventTest::Exists,
        ..atom.clone()
    })
    .canonical()
}
