//! The candidates' event counts read from the per-contact summaries (`event_summaries`,
//! migration 11: per key and event name the count, first and last `occurred_at`, kept equal
//! to an aggregate over `events` by the events triggers) instead of from their events.
//!
//! A summary decides an atom without a `where` filter for a contact when its events of that
//! name all fall on one side of the window's bounds, or all inside it: `did E` (ever) always
//! (the first occurrence is at or before `p_now`); `did E within D` when the first or last
//! occurrence is inside `[p_now - D, p_now]`, or none can be (first after `p_now`, last before
//! the window); a count when every event is inside, or none is. Otherwise (an event later
//! than `p_now` next to earlier ones, or events on both sides of the window's lower bound)
//! the column is NULL, and that contact's events are read as before — for it alone, by a
//! `LATERAL` aggregate whose WHERE holds only when some column is undecided (Postgres makes
//! it a one-time filter, so decided contacts read no event). Atoms with a `where` filter
//! need the events' properties: a criteria with one keeps the events aggregate.

use crate::ir::Window;
use crate::plan::matcher::{ago, coalesce, col, var, AtomColumn, MatcherBuilder, Shape};
use crate::plan::sql::{Expr, JoinKind, Op, Select, Source};

fn case(cond: Expr, then: Expr, otherwise: Expr) -> Expr {
    Expr::Case(Box::new(cond), Box::new(then), Box::new(otherwise))
}

fn between(value: &Expr, low: &Expr, high: &Expr) -> Expr {
    Expr::all([
        value.clone().binary(Op::Ge, low.clone()),
        value.clone().binary(Op::Le, high.clone()),
    ])
}

/// Whether the summary decides `column` for every contact (`did E`, ever).
fn always_decided(column: &AtomColumn) -> bool {
    !column.counted && column.atom.window == Window::Ever
}

/// One summary row's value for `column`: the count of its events the atom sees (or, when no
/// atom of the column counts, 1 for some and 0 for none), NULL when the summary cannot tell.
fn row_value(column: &AtomColumn) -> Expr {
    let first = col("es", "first_at");
    let last = col("es", "last_at");
    let now = var("p_now");
    let some = if column.counted {
        col("es", "n")
    } else {
        Expr::Int(1)
    };
    match column.atom.window {
        Window::Within(seconds) => {
            let from = ago("p_now", seconds);
            let none = Expr::any([
                first.clone().binary(Op::Gt, now.clone()),
                last.clone().binary(Op::Lt, from.clone()),
            ]);
            let decided_some = if column.counted {
                Expr::all([
                    first.binary(Op::Ge, from.clone()),
                    last.binary(Op::Le, now.clone()),
                ])
            } else {
                Expr::any([between(&first, &from, &now), between(&last, &from, &now)])
            };
            case(
                decided_some,
                some,
                case(none, Expr::Int(0), Expr::Null("bigint")),
            )
        }
        // (`since entry` is never in criteria: the checker rejects it)
        Window::Ever | Window::SinceEntry => {
            if column.counted {
                case(
                    first.binary(Op::Gt, now.clone()),
                    Expr::Int(0),
                    case(last.binary(Op::Le, now), some, Expr::Null("bigint")),
                )
            } else {
                case(first.binary(Op::Le, now), some, Expr::Int(0))
            }
        }
    }
}

impl MatcherBuilder<'_> {
    /// Whether the candidates' matcher reads the summaries: the criteria has event atoms and
    /// none of them filters on the events' properties.
    pub(super) fn summarizable(&self) -> bool {
        !self.atoms.is_empty()
            && self.atoms.iter().all(|a| {
                a.atom.filter.is_none() && matches!(a.atom.window, Window::Ever | Window::Within(_))
            })
    }

    /// `SELECT <a0>, … ` for the contact `c` (one row, for a `LATERAL` join): each column
    /// from `c`'s summaries when they decide it, else from `c`'s events.
    pub(super) fn summary_counts(&self) -> Select {
        let mut summary = Select::from(self.table("event_summaries", "es"));
        for a in &self.atoms {
            let of_event = col("es", "event").eq(Expr::text(&a.atom.event));
            let value = Expr::Filter(
                Box::new(Expr::Call("max", vec![row_value(a)])),
                Box::new(of_event.clone()),
            );
            let value = if always_decided(a) {
                coalesce(value, Expr::Int(0))
            } else {
                let rows = Expr::Filter(Box::new(Expr::CountStar), Box::new(of_event));
                case(rows.eq(Expr::Int(0)), Expr::Int(0), value)
            };
            summary = summary.item_as(value, &a.column);
        }
        summary = summary
            .filter(col("es", "user_key").eq(col("c", "user_key")))
            .filter(Self::name_condition("es", &self.event_names()));

        let undecided: Vec<Expr> = self
            .atoms
            .iter()
            .filter(|a| !always_decided(a))
            .map(|a| Expr::IsNull(Box::new(col("s", &a.column)), false))
            .collect();
        if undecided.is_empty() {
            return summary;
        }
        let events = self
            .aggregate(Shape::PerContact, false)
            .filter(Expr::any(undecided));
        let mut q = Select::from(Source::Subquery(Box::new(summary), "s".to_owned())).join(
            JoinKind::LeftLateral,
            Source::Subquery(Box::new(events), "ev".to_owned()),
            Expr::Bool(true),
        );
        for a in &self.atoms {
            let value = if always_decided(a) {
                col("s", &a.column)
            } else {
                coalesce(col("s", &a.column), col("ev", &a.column))
            };
            q = q.item_as(value, &a.column);
        }
        q
    }
}
