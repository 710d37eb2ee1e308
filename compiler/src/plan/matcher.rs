//! Criteria → the SQL that evaluates them for a set of contacts, built with sea-query.
//!
//! One bucket's criteria become one SELECT: the contacts (all of them, or the candidates in
//! `_hs_cand`) left-joined to ONE aggregate over their relevant events, in which every
//! distinct event atom is a `count(*) FILTER (WHERE …)` column; the criteria is then a plain
//! boolean expression over those counts and `c.properties`. Every atom is two-valued (never
//! NULL), so `not` is plain negation as LANGUAGE.md §2 requires.
//!
//! Values reach SQL only through sea-query's value rendering (strings quoted and escaped by
//! the builder); identifiers are either fixed names or ids validated by the checker.

use crate::ir::{CmpOp, EventAtom, EventPred, EventTest, Pred, Prop, PropTest, Scalar, Window};
use crate::plan::normalize::{canonical_number, Canonical};
use sea_query::extension::postgres::PgExpr;
use sea_query::{
    Alias, CaseStatement, Expr, Func, IntoIden, JoinType, PostgresQueryBuilder, Query,
    SelectStatement, SimpleExpr, TableRef, UnionType, Value,
};

/// Durations are saturated to this many seconds (1000 years) so that `now - window` and
/// `entered_at + max_dwell` can never leave Postgres' timestamp range. Windows longer than
/// recorded history are equivalent anyway.
pub const MAX_SECONDS: i64 = 1000 * 365 * 86_400;

/// The SQL a bucket's criteria compile to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatcherSql {
    /// `SELECT user_key, anchor` for the contacts in `_hs_cand` that match at `p_now`.
    pub match_candidates: String,
    /// `SELECT user_key, anchor` for every live contact that matches at `p_now`, with the
    /// backfill dwell anchor.
    pub match_all: String,
    /// `SELECT user_key` of the contacts whose truth may have changed between the previous
    /// tick `p_t0` and `p_now`: changed keys, window edges, newly visible events, due timers.
    pub candidates: String,
    /// `SELECT DISTINCT user_key` of the drained changes (`_hs_changed`) this criteria can
    /// see: the first part of `candidates`, alone (the daemon's real-time pass).
    pub changed: String,
}

/// One distinct event atom of a criteria (same event, filter and window ⇒ same column).
struct AtomColumn {
    key: String,
    atom: EventAtom,
    column: String,
}

/// Builds the matcher SQL of one bucket.
pub struct MatcherBuilder<'a> {
    schema: &'a str,
    bucket_id: &'a str,
    atoms: Vec<AtomColumn>,
    /// The criteria tests a contact property.
    reads_properties: bool,
    /// The criteria uses `opened` / `clicked`.
    reads_messages: bool,
}

fn ident(name: &str) -> Alias {
    Alias::new(name)
}

fn col(table: &str, column: &str) -> Expr {
    Expr::col((ident(table), ident(column)))
}

/// A PL/pgSQL variable or parameter of the enclosing function (a fixed name, never input).
fn var(name: &'static str) -> SimpleExpr {
    Expr::cust(name)
}

fn seconds_interval(seconds: i64) -> SimpleExpr {
    Expr::cust_with_values("make_interval(secs => $1)", [seconds.clamp(1, MAX_SECONDS)])
}

/// A text literal. Postgres text cannot hold NUL; the checker rejects it, and should one slip
/// through it becomes the JSON escape `\u0000`, which Postgres refuses loudly.
fn text_literal(value: &str) -> SimpleExpr {
    if value.contains('\0') {
        let json = serde_json::Value::String(value.to_owned()).to_string();
        Expr::cust_with_exprs("($1 #>> '{}')", [Expr::val(json).cast_as(ident("jsonb"))])
    } else {
        Expr::val(value).into()
    }
}

fn jsonb_literal(value: &Scalar) -> SimpleExpr {
    let json = match value {
        Scalar::String(s) => serde_json::Value::String(s.clone()).to_string(),
        Scalar::Number(raw) => canonical_number(raw),
        Scalar::Bool(b) => b.to_string(),
    };
    Expr::val(json).cast_as(ident("jsonb"))
}

/// `root -> 'a' -> 'b'`: missing (NULL) as soon as a step is not an object with that key,
/// which is exactly LANGUAGE.md's "a path through a non-object is missing".
fn path_value(root: SimpleExpr, path: &[String]) -> SimpleExpr {
    path.iter()
        .fold(root, |acc, key| acc.get_json_field(Expr::val(key.as_str())))
}

fn jsonb_typeof(value: SimpleExpr) -> SimpleExpr {
    Func::cust(ident("jsonb_typeof")).arg(value).into()
}

/// A property test, two-valued.
fn prop_test(root: SimpleExpr, prop: &Prop) -> SimpleExpr {
    let value = path_value(root, &prop.path);
    match &prop.test {
        PropTest::Compare(CmpOp::Eq, literal) => equals(value, literal),
        PropTest::Compare(CmpOp::Ne, literal) => equals(value, literal).not(),
        PropTest::Compare(op, literal) => match literal {
            Scalar::Number(raw) => {
                let number = Expr::val(canonical_number(raw)).cast_as(ident("numeric"));
                let lhs = Expr::expr(value.clone()).cast_as(ident("numeric"));
                let cmp = match op {
                    CmpOp::Gt => Expr::expr(lhs).gt(number),
                    CmpOp::Ge => Expr::expr(lhs).gte(number),
                    CmpOp::Lt => Expr::expr(lhs).lt(number),
                    _ => Expr::expr(lhs).lte(number),
                };
                CaseStatement::new()
                    .case(Expr::expr(jsonb_typeof(value)).eq("number"), cmp)
                    .finally(Expr::val(false))
                    .into()
            }
            // Ordering a string or a boolean never holds (the checker warns).
            _ => Expr::val(false).into(),
        },
        PropTest::Exists => Expr::expr(value.clone())
            .is_not_null()
            .and(Expr::expr(jsonb_typeof(value)).ne("null")),
        PropTest::Contains(needle) => {
            let text = Expr::cust_with_exprs("($1 #>> '{}')", [value.clone()]);
            let found = Expr::expr(
                Func::cust(ident("strpos"))
                    .arg(text)
                    .arg(text_literal(needle)),
            )
            .gt(0);
            CaseStatement::new()
                .case(Expr::expr(jsonb_typeof(value)).eq("string"), found)
                .finally(Expr::val(false))
                .into()
        }
        PropTest::In(values) => Func::coalesce([
            Expr::expr(value).is_in(values.iter().map(jsonb_literal)),
            Expr::val(false).into(),
        ])
        .into(),
    }
}

/// Strict-typed JSON equality (`"5"` is not `5`, `5` is `5.0`), false when missing.
fn equals(value: SimpleExpr, literal: &Scalar) -> SimpleExpr {
    Func::coalesce([
        Expr::expr(value).eq(jsonb_literal(literal)),
        Expr::val(false).into(),
    ])
    .into()
}

fn event_pred(pred: &EventPred, root: &SimpleExpr) -> SimpleExpr {
    match pred {
        EventPred::And(children) => all(children.iter().map(|c| event_pred(c, root))),
        EventPred::Or(children) => any(children.iter().map(|c| event_pred(c, root))),
        EventPred::Not(inner) => event_pred(inner, root).not(),
        EventPred::Prop(prop) => prop_test(root.clone(), prop),
    }
}

/// What one bucket's event aggregate covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
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
        Pred::Prop(_) => true,
        Pred::And(children) | Pred::Or(children) => children.iter().all(property_only),
        Pred::Not(inner) => property_only(inner),
        Pred::Event(_) | Pred::Opened(_) | Pred::Clicked(_) => false,
    }
}

fn all(mut items: impl Iterator<Item = SimpleExpr>) -> SimpleExpr {
    let first = items.next().unwrap_or_else(|| Expr::val(true).into());
    items.fold(first, |acc, x| acc.and(x))
}

fn any(mut items: impl Iterator<Item = SimpleExpr>) -> SimpleExpr {
    let first = items.next().unwrap_or_else(|| Expr::val(false).into());
    items.fold(first, |acc, x| acc.or(x))
}

impl<'a> MatcherBuilder<'a> {
    /// Collects the event atoms of `criteria` for the bucket `bucket_id` in `schema`.
    pub fn new(schema: &'a str, bucket_id: &'a str, criteria: &Pred) -> Self {
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
                if !self.atoms.iter().any(|a| a.key == key) {
                    let column = format!("a{}", self.atoms.len());
                    self.atoms.push(AtomColumn {
                        key,
                        atom: atom.clone(),
                        column,
                    });
                }
            }
            Pred::Prop(_) => self.reads_properties = true,
            Pred::Opened(_) | Pred::Clicked(_) => self.reads_messages = true,
        }
    }

    fn table(&self, name: &str) -> (Alias, Alias) {
        (ident(self.schema), ident(name))
    }

    /// `alias.event = 'x'` or `alias.event IN ('x', 'y')`.
    fn name_condition(&self, alias: &str, names: &[String]) -> SimpleExpr {
        if names.len() == 1 {
            col(alias, "event").eq(text_literal(&names[0]))
        } else {
            col(alias, "event").is_in(names.iter().map(|n| text_literal(n)))
        }
    }

    /// The distinct event names the criteria reads, sorted.
    pub fn event_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.atoms.iter().map(|a| a.atom.event.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// The distinct (event, window) pairs of windowed atoms, sorted.
    pub fn windows(&self) -> Vec<(String, i64)> {
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
    fn atom_condition(&self, atom: &EventAtom, alias: &str, with_window: bool) -> SimpleExpr {
        let mut cond = col(alias, "event").eq(text_literal(&atom.event));
        if with_window {
            if let Window::Within(seconds) = atom.window {
                cond = cond.and(
                    col(alias, "occurred_at").gte(var("p_now").sub(seconds_interval(seconds))),
                );
            }
        }
        if let Some(filter) = &atom.filter {
            cond = cond.and(event_pred(filter, &col(alias, "properties").into()));
        }
        cond
    }

    /// `SELECT e.user_key, count(*) FILTER (…) AS a0, … FROM events e [JOIN _hs_cand] … GROUP BY`,
    /// or (`Shape::PerContact`) the same counts for one contact `c`, without `GROUP BY`, for a
    /// `LATERAL` join. With `with_anchor`, also `max(occurred_at) FILTER (…) AS anchor_at`: the
    /// latest event of a windowed atom inside the aggregate's range (see [`Self::anchor`]).
    fn aggregate(&self, shape: Shape, with_anchor: bool) -> SelectStatement {
        let mut q = Query::select();
        if shape != Shape::PerContact {
            q.column((ident("e"), ident("user_key")));
        }
        for a in &self.atoms {
            q.expr_as(
                Expr::cust_with_exprs(
                    "count(*) FILTER (WHERE $1)",
                    [self.atom_condition(&a.atom, "e", true)],
                ),
                ident(&a.column),
            );
        }
        let windowed = self.windowed_conditions("e");
        if with_anchor && !windowed.is_empty() {
            q.expr_as(
                Expr::cust_with_exprs(
                    "max(e.occurred_at) FILTER (WHERE $1)",
                    [any(windowed.into_iter())],
                ),
                ident("anchor_at"),
            );
        }
        q.from_as(self.table("events"), ident("e"));
        match shape {
            Shape::Candidates => {
                q.inner_join(
                    ident("_hs_cand"),
                    col("_hs_cand", "user_key").equals((ident("e"), ident("user_key"))),
                );
            }
            Shape::PerContact => {
                q.and_where(col("e", "user_key").equals((ident("c"), ident("user_key"))));
            }
            Shape::AllEvents => {}
        }
        q.and_where(self.name_condition("e", &self.event_names()));
        q.and_where(col("e", "occurred_at").lte(var("p_now")));
        if let Some(bound) = self.lower_bound() {
            q.and_where(col("e", "occurred_at").gte(var("p_now").sub(seconds_interval(bound))));
        }
        if shape != Shape::PerContact {
            q.group_by_col((ident("e"), ident("user_key")));
        }
        q
    }

    /// The conditions (name, filter; no window) of the windowed atoms on event rows `alias`.
    fn windowed_conditions(&self, alias: &str) -> Vec<SimpleExpr> {
        self.atoms
            .iter()
            .filter(|a| matches!(a.atom.window, Window::Within(_)))
            .map(|a| self.atom_condition(&a.atom, alias, false))
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
    fn criteria(&self, pred: &Pred) -> SimpleExpr {
        match pred {
            Pred::And(children) => all(children.iter().map(|p| self.criteria(p))),
            Pred::Or(children) => any(children.iter().map(|p| self.criteria(p))),
            Pred::Not(inner) => self.criteria(inner).not(),
            Pred::Event(atom) => {
                let key = atom_key(atom);
                let column = self
                    .atoms
                    .iter()
                    .find(|a| a.key == key)
                    .map(|a| a.column.clone())
                    .unwrap_or_default();
                let count: SimpleExpr =
                    Func::coalesce([col("a", &column).into(), Expr::val(0).into()]).into();
                match atom.test {
                    EventTest::Exists => Expr::expr(count).gt(0),
                    EventTest::Count(op, n) => {
                        let count = Expr::expr(count);
                        match op {
                            CmpOp::Eq => count.eq(n),
                            CmpOp::Ne => count.ne(n),
                            CmpOp::Gt => count.gt(n),
                            CmpOp::Ge => count.gte(n),
                            CmpOp::Lt => count.lt(n),
                            CmpOp::Le => count.lte(n),
                        }
                    }
                }
            }
            Pred::Prop(prop) => prop_test(col("c", "properties").into(), prop),
            Pred::Opened(template) => self.message_exists(template, "opened_at"),
            Pred::Clicked(template) => self.message_exists(template, "clicked_at"),
        }
    }

    fn message_exists(&self, template: &str, column: &str) -> SimpleExpr {
        let mut q = Query::select();
        q.expr(Expr::val(1))
            .from_as(self.table("messages"), ident("m"))
            .and_where(col("m", "user_key").equals((ident("c"), ident("user_key"))))
            .and_where(col("m", "template").eq(text_literal(template)))
            .and_where(col("m", column).is_not_null());
        Expr::exists(q)
    }

    /// The backfill dwell anchor: the latest `occurred_at <= p_now` among the events the
    /// windowed atoms name (with their filters), NULL when there is none (the join instant
    /// is used then). Read from the aggregate's `anchor_at`; when the aggregate only covers
    /// the widest window and found none there, an older event may still be the anchor, so
    /// a per-contact lookup runs for those contacts alone.
    fn anchor(&self) -> SimpleExpr {
        let windowed = self.windowed_conditions("e2");
        if windowed.is_empty() {
            return Expr::cust("NULL::timestamptz");
        }
        let from_aggregate: SimpleExpr = col("a", "anchor_at").into();
        if self.lower_bound().is_none() {
            return from_aggregate;
        }
        let mut q = Query::select();
        q.expr(Expr::cust("max(e2.occurred_at)"))
            .from_as(self.table("events"), ident("e2"))
            .and_where(col("e2", "user_key").equals((ident("c"), ident("user_key"))))
            .and_where(col("e2", "occurred_at").lte(var("p_now")))
            .and_where(any(windowed.into_iter()));
        Func::coalesce([
            from_aggregate,
            SimpleExpr::SubQuery(None, Box::new(q.into_sub_query_statement())),
        ])
        .into()
    }

    /// The full matcher SELECT for `criteria`.
    fn matcher(&self, criteria: &Pred, over_candidates: bool) -> SelectStatement {
        let mut q = Query::select();
        q.column((ident("c"), ident("user_key")));
        if over_candidates {
            q.expr_as(Expr::cust("NULL::timestamptz"), ident("anchor"));
            q.from(ident("_hs_cand"));
            q.inner_join(
                TableRef::SchemaTableAlias(
                    ident(self.schema).into_iden(),
                    ident("contacts").into_iden(),
                    ident("c").into_iden(),
                ),
                col("c", "user_key").equals((ident("_hs_cand"), ident("user_key"))),
            );
        } else {
            q.expr_as(self.anchor(), ident("anchor"));
            q.from_as(self.table("contacts"), ident("c"));
        }
        if over_candidates {
            if !self.atoms.is_empty() {
                q.join_subquery(
                    JoinType::LeftJoin,
                    self.aggregate(Shape::Candidates, false),
                    ident("a"),
                    col("a", "user_key").equals((ident("c"), ident("user_key"))),
                );
            }
        } else if self.contacts_first(criteria) {
            q.join_lateral(
                JoinType::LeftJoin,
                self.aggregate(Shape::PerContact, true),
                ident("a"),
                Expr::cust("TRUE"),
            );
        } else if !self.atoms.is_empty() {
            q.join_subquery(
                JoinType::LeftJoin,
                self.aggregate(Shape::AllEvents, true),
                ident("a"),
                col("a", "user_key").equals((ident("c"), ident("user_key"))),
            );
        }
        q.and_where(col("c", "deleted_at").is_null());
        q.and_where(self.criteria(criteria));
        q
    }

    /// Keys whose data changed in a way this criteria can see (see `changed_keys`).
    fn changed(&self) -> SelectStatement {
        let mut q = Query::select();
        let mut changed = col("_hs_changed", "kind").eq("x");
        let names = self.event_names();
        if !names.is_empty() {
            changed = changed.or(col("_hs_changed", "kind")
                .eq("e")
                .and(self.name_condition("_hs_changed", &names)));
        }
        if self.reads_properties {
            changed = changed.or(col("_hs_changed", "kind").eq("p"));
        }
        if self.reads_messages {
            changed = changed.or(col("_hs_changed", "kind").eq("m"));
        }
        q.column(ident("user_key"))
            .from(ident("_hs_changed"))
            .and_where(changed);
        q
    }

    /// The union of everything that may have changed for this bucket since `p_t0`.
    fn candidates(&self) -> SelectStatement {
        let mut q = self.changed();
        let names = self.event_names();
        let mut parts = Vec::new();
        for (event, seconds) in self.windows() {
            // Events that were inside the window at p_t0 and are outside it at p_now.
            let mut edge = Query::select();
            edge.column((ident("e"), ident("user_key")))
                .from_as(self.table("events"), ident("e"))
                .and_where(col("e", "event").eq(text_literal(&event)))
                .and_where(col("e", "occurred_at").gte(var("p_t0").sub(seconds_interval(seconds))))
                .and_where(col("e", "occurred_at").lt(var("p_now").sub(seconds_interval(seconds))));
            parts.push(edge);
        }
        if !names.is_empty() {
            // Events that happened (became visible) between the ticks.
            let mut visible = Query::select();
            let name_cond = self.name_condition("e", &names);
            visible
                .column((ident("e"), ident("user_key")))
                .from_as(self.table("events"), ident("e"))
                .and_where(name_cond)
                .and_where(col("e", "occurred_at").gt(var("p_t0")))
                .and_where(col("e", "occurred_at").lte(var("p_now")));
            parts.push(visible);
        }
        // Members whose timer (dwell, max_dwell, deferred leave, cool-down) is due.
        let mut due = Query::select();
        due.column((ident("m"), ident("user_key")))
            .from_as(self.table("memberships"), ident("m"))
            .and_where(col("m", "bucket_id").eq(self.bucket_id))
            .and_where(col("m", "next_check_at").lte(var("p_now")));
        parts.push(due);
        for part in parts {
            q.union(UnionType::Distinct, part);
        }
        q
    }

    /// Renders all three statements.
    pub fn build(&self, criteria: &Pred) -> MatcherSql {
        MatcherSql {
            match_candidates: render(&self.matcher(criteria, true)),
            match_all: render(&self.matcher(criteria, false)),
            candidates: render(&self.candidates()),
            changed: render(self.changed().distinct()),
        }
    }
}

/// Renders a statement: sea-query builds it with numbered placeholders, then each bound
/// value is written as a standard-conforming Postgres literal by [`sql_literal`].
pub fn render(statement: &SelectStatement) -> String {
    let (sql, values) = statement.build(PostgresQueryBuilder);
    inline_values(&unquote_identifiers(&sql), &values.0)
}

/// Identifiers the generated SQL uses that never need quotes (none is a keyword).
const PLAIN_IDENTIFIERS: &[&str] = &[
    "_hs_cand",
    "_hs_changed",
    "a",
    "anchor",
    "anchor_at",
    "bucket_id",
    "c",
    "clicked_at",
    "contacts",
    "deleted_at",
    "e",
    "e2",
    "event",
    "events",
    "m",
    "memberships",
    "messages",
    "next_check_at",
    "occurred_at",
    "opened_at",
    "properties",
    "template",
    "user_key",
];

/// Drops sea-query's quotes around identifiers that do not need them, for readable output.
/// Runs before values are inlined, so every `"` in `sql` is an identifier quote.
fn unquote_identifiers(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let plain = PLAIN_IDENTIFIERS.contains(&name)
            || (name.len() > 1
                && name.starts_with('a')
                && name[1..].bytes().all(|b| b.is_ascii_digit()))
            || is_plain_schema(name);
        if plain {
            out.push_str(name);
        } else {
            out.push('"');
            out.push_str(name);
            out.push('"');
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Schema names are validated `[a-z_][a-z0-9_]*` and never a reserved key word.
fn is_plain_schema(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && !crate::sql_keywords::is_reserved(name)
}

/// Replaces `$1`…`$n` (the only `$` sea-query emits) with the literals of `values`.
pub fn inline_values(sql: &str, values: &[Value]) -> String {
    let mut out = String::with_capacity(sql.len() + values.len() * 8);
    let mut rest = sql;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse::<usize>() {
            Ok(n) if n >= 1 && n <= values.len() => {
                out.push_str(&sql_literal(&values[n - 1]));
                rest = &after[digits..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One value as a Postgres literal (`standard_conforming_strings`: only `'` is doubled).
pub fn sql_literal(value: &Value) -> String {
    match value {
        Value::String(Some(s)) => format!("'{}'", s.replace('\'', "''")),
        Value::Bool(Some(b)) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Value::Int(Some(n)) => n.to_string(),
        Value::BigInt(Some(n)) => n.to_string(),
        Value::Unsigned(Some(n)) => n.to_string(),
        Value::BigUnsigned(Some(n)) => n.to_string(),
        other => panic!("internal compiler error: unexpected SQL value {other:?}"),
    }
}

fn atom_key(atom: &EventAtom) -> String {
    Pred::Event(EventAtom {
        test: EventTest::Exists,
        ..atom.clone()
    })
    .canonical()
}
