//! Lowering checked pieces of the AST to the IR: conditions, durations, paths, literals and
//! journey steps. Each function reports what is wrong and still returns a value, so that
//! one run finds every problem; the program is discarded when any error was reported.

use hogsend_dsl::ast::{self, ExprKind, PathRoot, StepKind, WindowKind};
use hogsend_dsl::Span;

use super::error::{CheckError, LiteralKind, TriggerPathPlace};
use super::Checker;
use crate::ir;

/// Durations are limited to 100 years so timestamp arithmetic stays far inside Postgres's
/// range.
pub(crate) const MAX_DURATION_SECONDS: u64 = 36_500 * 86_400;

/// Where a condition is written, which decides what it may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CondCtx {
    /// A bucket's `criteria`: no `since entry`, no reserved event names.
    Criteria,
    /// A journey's or reaction's `if`, `wait until` or `exit when`.
    Journey,
}

/// What a journey body does, collected while lowering its steps.
#[derive(Debug, Default)]
pub(crate) struct BodyFacts {
    /// `start` steps: target journey id and where.
    pub starts: Vec<(String, Span)>,
    /// Some `send`, `start` or `emit`.
    pub has_effect: bool,
}

/// Reserved prefixes of event names hogsend records itself.
pub(crate) fn is_reserved_event(name: &str) -> bool {
    name.starts_with("bucket:") || name.starts_with("hogsend:")
}

fn scalar(lit: &ast::Literal) -> ir::Scalar {
    match lit {
        ast::Literal::String(s) => ir::Scalar::String(s.value.clone()),
        ast::Literal::Number(n) => ir::Scalar::Number(n.raw.clone()),
        ast::Literal::Bool(b) => ir::Scalar::Bool(b.value),
    }
}

fn weekday(d: ast::Weekday) -> ir::Weekday {
    match d {
        ast::Weekday::Mon => ir::Weekday::Mon,
        ast::Weekday::Tue => ir::Weekday::Tue,
        ast::Weekday::Wed => ir::Weekday::Wed,
        ast::Weekday::Thu => ir::Weekday::Thu,
        ast::Weekday::Fri => ir::Weekday::Fri,
        ast::Weekday::Sat => ir::Weekday::Sat,
        ast::Weekday::Sun => ir::Weekday::Sun,
    }
}

/// The canonical text of a duration (`1d12h`), used for default dwell labels.
pub(crate) fn duration_text(d: &ast::Duration) -> String {
    d.parts_text()
}

/// Pushes `pred` into `out`, splicing in the children of a nested node of the same kind.
fn flatten_into(out: &mut Vec<ir::Pred>, pred: ir::Pred, and: bool) {
    match pred {
        ir::Pred::And(xs) if and => out.extend(xs),
        ir::Pred::Or(xs) if !and => out.extend(xs),
        p => out.push(p),
    }
}

fn flatten_event_into(out: &mut Vec<ir::EventPred>, pred: ir::EventPred, and: bool) {
    match pred {
        ir::EventPred::And(xs) if and => out.extend(xs),
        ir::EventPred::Or(xs) if !and => out.extend(xs),
        p => out.push(p),
    }
}

impl<'a> Checker<'a> {
    /// A positive duration in seconds, reporting zero, negative and too-long ones.
    pub(crate) fn duration(&mut self, d: &ast::Duration) -> ir::Seconds {
        match d.total_seconds() {
            _ if d.negative => {
                self.report(CheckError::NonPositiveDuration {
                    negative: true,
                    at: self.loc(d.span),
                });
                1
            }
            Some(0) => {
                self.report(CheckError::NonPositiveDuration {
                    negative: false,
                    at: self.loc(d.span),
                });
                1
            }
            Some(s) if s <= MAX_DURATION_SECONDS => s as ir::Seconds,
            _ => {
                self.report(CheckError::DurationTooLong {
                    at: self.loc(d.span),
                });
                1
            }
        }
    }

    pub(crate) fn entry_policy(&mut self, e: &ast::EntryPolicy) -> ir::EntryPolicy {
        match e {
            ast::EntryPolicy::Unlimited => ir::EntryPolicy::Unlimited,
            ast::EntryPolicy::Once => ir::EntryPolicy::Once,
            ast::EntryPolicy::OncePer(d) => ir::EntryPolicy::OncePer(self.duration(d)),
        }
    }

    /// A condition over one contact.
    pub(crate) fn pred(&mut self, e: &ast::Expr, ctx: CondCtx) -> ir::Pred {
        match &e.kind {
            ExprKind::And(xs) | ExprKind::All(xs) => self.junction(xs, ctx, true),
            ExprKind::Or(xs) | ExprKind::Any(xs) => self.junction(xs, ctx, false),
            ExprKind::Not(x) => ir::Pred::Not(Box::new(self.pred(x, ctx))),
            ExprKind::Paren(x) => self.pred(x, ctx),
            ExprKind::Did {
                event,
                filter,
                window,
            } => self.event_atom(event, filter, window, ir::EventTest::Exists, ctx),
            ExprKind::Count {
                event,
                filter,
                window,
                op,
                value,
            } => {
                // A count is never negative, so some comparisons have one value for all.
                let n = value.value;
                let constant = match op {
                    ast::CmpOp::Eq | ast::CmpOp::Le if n < 0 => Some(false),
                    ast::CmpOp::Lt if n <= 0 => Some(false),
                    ast::CmpOp::Ne | ast::CmpOp::Gt if n < 0 => Some(true),
                    ast::CmpOp::Ge if n <= 0 => Some(true),
                    _ => None,
                };
                if let Some(always) = constant {
                    self.report(CheckError::ConstantCount {
                        always,
                        at: self.loc(e.span),
                    });
                }
                let test = ir::EventTest::Count(*op, value.value);
                self.event_atom(event, filter, window, test, ctx)
            }
            ExprKind::Compare { path, .. }
            | ExprKind::Exists(path)
            | ExprKind::Contains(path, _)
            | ExprKind::In(path, _) => {
                match path.root {
                    PathRoot::Contact => {}
                    PathRoot::Event => self.report(CheckError::EventPathOutsideFilter {
                        at: self.loc(path.span),
                        in_zone: false,
                    }),
                    PathRoot::Trigger => {
                        if ctx == CondCtx::Criteria {
                            self.report(CheckError::TriggerPathOutsideJourney {
                                at: self.loc(path.span),
                                place: TriggerPathPlace::Criteria,
                            });
                        }
                        return ir::Pred::Trigger(self.prop(&e.kind, path));
                    }
                }
                ir::Pred::Prop(self.prop(&e.kind, path))
            }
            ExprKind::Opened(t) => {
                self.template_ref(t);
                ir::Pred::Opened(t.name.clone())
            }
            ExprKind::Clicked(t) => {
                self.template_ref(t);
                ir::Pred::Clicked(t.name.clone())
            }
        }
    }

    fn junction(&mut self, xs: &[ast::Expr], ctx: CondCtx, and: bool) -> ir::Pred {
        let mut out = Vec::with_capacity(xs.len());
        for x in xs {
            let p = self.pred(x, ctx);
            flatten_into(&mut out, p, and);
        }
        match (out.len(), and) {
            (1, _) => out.pop().expect("one element"),
            (_, true) => ir::Pred::And(out),
            (_, false) => ir::Pred::Or(out),
        }
    }

    fn event_atom(
        &mut self,
        event: &ast::EventName,
        filter: &Option<ast::Filter>,
        window: &Option<ast::Window>,
        test: ir::EventTest,
        ctx: CondCtx,
    ) -> ir::Pred {
        if ctx == CondCtx::Criteria && is_reserved_event(&event.name) {
            self.report(CheckError::ReservedEvent {
                name: event.name.clone(),
                at: self.loc(event.span),
                in_emit: false,
            });
        }
        let filter = filter.as_ref().map(|f| self.event_pred(&f.expr, f.span));
        let window = match window.as_ref().map(|w| (&w.kind, w.span)) {
            None => ir::Window::Ever,
            Some((WindowKind::Within(d), _)) => ir::Window::Within(self.duration(d)),
            Some((WindowKind::SinceEntry, span)) => {
                if ctx == CondCtx::Criteria {
                    self.report(CheckError::SinceEntryOutsideJourney { at: self.loc(span) });
                }
                ir::Window::SinceEntry
            }
        };
        ir::Pred::Event(ir::EventAtom {
            event: event.name.clone(),
            filter,
            window,
            test,
        })
    }

    /// A condition over one event's properties (`where ( … )`).
    pub(crate) fn event_pred(&mut self, e: &ast::Expr, filter: Span) -> ir::EventPred {
        let junction = |this: &mut Self, xs: &[ast::Expr], and: bool| {
            let mut out = Vec::with_capacity(xs.len());
            for x in xs {
                let p = this.event_pred(x, filter);
                flatten_event_into(&mut out, p, and);
            }
            match (out.len(), and) {
                (1, _) => out.pop().expect("one element"),
                (_, true) => ir::EventPred::And(out),
                (_, false) => ir::EventPred::Or(out),
            }
        };
        let misplaced = |this: &mut Self, what: &'static str| {
            this.report(CheckError::EventAtomInFilter {
                what,
                at: this.loc(e.span),
                filter: this.loc(filter),
            });
            ir::EventPred::And(Vec::new())
        };
        match &e.kind {
            ExprKind::And(xs) | ExprKind::All(xs) => junction(self, xs, true),
            ExprKind::Or(xs) | ExprKind::Any(xs) => junction(self, xs, false),
            ExprKind::Not(x) => ir::EventPred::Not(Box::new(self.event_pred(x, filter))),
            ExprKind::Paren(x) => self.event_pred(x, filter),
            ExprKind::Did { .. } => misplaced(self, "did"),
            ExprKind::Count { .. } => misplaced(self, "count"),
            ExprKind::Opened(_) => misplaced(self, "opened"),
            ExprKind::Clicked(_) => misplaced(self, "clicked"),
            ExprKind::Compare { path, .. }
            | ExprKind::Exists(path)
            | ExprKind::Contains(path, _)
            | ExprKind::In(path, _) => {
                match path.root {
                    PathRoot::Event => {}
                    PathRoot::Contact => self.report(CheckError::ContactPathInFilter {
                        at: self.loc(path.span),
                        filter: self.loc(filter),
                    }),
                    PathRoot::Trigger => self.report(CheckError::TriggerPathOutsideJourney {
                        at: self.loc(path.span),
                        place: TriggerPathPlace::Filter(self.loc(filter)),
                    }),
                }
                ir::EventPred::Prop(self.prop(&e.kind, path))
            }
        }
    }

    /// A property test (the root was checked by the caller).
    fn prop(&mut self, kind: &ExprKind, path: &ast::Path) -> ir::Prop {
        let test = match kind {
            ExprKind::Compare { op, value, .. } => {
                let ordering = !matches!(op, ast::CmpOp::Eq | ast::CmpOp::Ne);
                let bad = match value {
                    ast::Literal::String(_) => Some(LiteralKind::String),
                    ast::Literal::Bool(_) => Some(LiteralKind::Bool),
                    ast::Literal::Number(_) => None,
                };
                if let (true, Some(kind)) = (ordering, bad) {
                    self.report(CheckError::NeverMatches {
                        op: op.as_str(),
                        kind,
                        at: self.loc(value.span()),
                    });
                }
                ir::PropTest::Compare(*op, scalar(value))
            }
            ExprKind::Exists(_) => ir::PropTest::Exists,
            ExprKind::Contains(_, s) => ir::PropTest::Contains(s.value.clone()),
            ExprKind::In(_, values) => ir::PropTest::In(values.iter().map(scalar).collect()),
            _ => unreachable!("prop() is called on property atoms only"),
        };
        ir::Prop {
            path: path.segments.iter().map(|s| s.name.clone()).collect(),
            test,
        }
    }

    /// Steps of a journey or reaction body. Returns the steps and whether every run
    /// through them ends at an `exit`.
    pub(crate) fn steps<'s>(
        &mut self,
        steps: impl IntoIterator<Item = &'s ast::Step>,
        facts: &mut BodyFacts,
    ) -> (Vec<ir::Step>, bool) {
        let mut out = Vec::new();
        let mut exited_at: Option<Span> = None;
        let mut warned = false;
        for step in steps {
            if let (Some(exit), false) = (exited_at, warned) {
                warned = true;
                self.report(CheckError::UnreachableStep {
                    at: self.loc(step.span),
                    exit: self.loc(exit),
                });
            }
            let (lowered, exits) = self.step(step, facts);
            out.push(lowered);
            if exits && exited_at.is_none() {
                exited_at = Some(step.span);
            }
        }
        (out, exited_at.is_some())
    }

    fn step(&mut self, step: &ast::Step, facts: &mut BodyFacts) -> (ir::Step, bool) {
        let lowered = match &step.kind {
            StepKind::Send(t) => {
                facts.has_effect = true;
                self.template_ref(t);
                ir::Step::Send(t.name.clone())
            }
            StepKind::Wait(d) => ir::Step::Wait(self.duration(d)),
            StepKind::WaitUntil { cond, at_most } => ir::Step::WaitUntil {
                cond: self.pred(cond, CondCtx::Journey),
                at_most: self.duration(at_most),
            },
            StepKind::WaitUntilTime {
                time, days, zone, ..
            } => {
                use ast::Weekday::*;
                let mut days: Vec<ir::Weekday> = match days {
                    None => Vec::new(),
                    Some(ast::DaySpec::Weekdays) => vec![Mon, Tue, Wed, Thu, Fri],
                    Some(ast::DaySpec::Weekends) => vec![Sat, Sun],
                    Some(ast::DaySpec::Days(ds)) => ds.clone(),
                }
                .into_iter()
                .map(weekday)
                .collect();
                days.sort();
                days.dedup();
                let zone = zone.as_ref().map(|p| {
                    match p.root {
                        PathRoot::Contact => {}
                        PathRoot::Event => self.report(CheckError::EventPathOutsideFilter {
                            at: self.loc(p.span),
                            in_zone: true,
                        }),
                        PathRoot::Trigger => self.report(CheckError::TriggerPathOutsideJourney {
                            at: self.loc(p.span),
                            place: TriggerPathPlace::Zone,
                        }),
                    }
                    p.segments.iter().map(|s| s.name.clone()).collect()
                });
                ir::Step::WaitUntilTime {
                    hour: time.hour,
                    minute: time.minute,
                    days,
                    zone,
                }
            }
            StepKind::If {
                branches,
                else_block,
            } => {
                let mut all_exit = true;
                let mut lowered = Vec::with_capacity(branches.len());
                for b in branches {
                    let cond = self.pred(&b.cond, CondCtx::Journey);
                    let (body, exits) = self.steps(&b.body.steps, facts);
                    all_exit &= exits;
                    lowered.push((cond, body));
                }
                let otherwise = match else_block {
                    Some(block) => {
                        let (body, exits) = self.steps(&block.steps, facts);
                        all_exit &= exits;
                        body
                    }
                    None => {
                        all_exit = false;
                        Vec::new()
                    }
                };
                return (
                    ir::Step::If {
                        branches: lowered,
                        otherwise,
                    },
                    all_exit,
                );
            }
            StepKind::Start(j) => {
                facts.has_effect = true;
                self.journey_ref(j);
                facts.starts.push((j.name.clone(), step.span));
                ir::Step::Start(j.name.clone())
            }
            StepKind::Emit(e) => {
                facts.has_effect = true;
                if is_reserved_event(&e.name) {
                    self.report(CheckError::ReservedEvent {
                        name: e.name.clone(),
                        at: self.loc(e.span),
                        in_emit: true,
                    });
                }
                ir::Step::Emit(e.name.clone())
            }
            StepKind::Exit => return (ir::Step::Exit, true),
        };
        (lowered, false)
    }
}
