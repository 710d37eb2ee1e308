//! Span-free copies of trees, to compare what two sources *mean* (the formatter's
//! meaning-preservation property, parser tests).

use crate::ast::*;
use crate::span::Span;

impl SourceFile {
    /// A copy with every span set to `0..0` and the comments dropped.
    pub fn without_spans(&self) -> SourceFile {
        let mut copy = SourceFile {
            items: self.items.clone(),
            comments: Vec::new(),
        };
        copy.items.zero_spans();
        copy
    }
}

impl Expr {
    /// A copy with every span set to `0..0`.
    pub fn without_spans(&self) -> Expr {
        let mut copy = self.clone();
        copy.zero_spans();
        copy
    }
}

/// Sets every span in a node to `0..0`.
trait ZeroSpans {
    fn zero_spans(&mut self);
}

impl ZeroSpans for Span {
    fn zero_spans(&mut self) {
        *self = Span::default();
    }
}

impl<T: ZeroSpans> ZeroSpans for Vec<T> {
    fn zero_spans(&mut self) {
        self.iter_mut().for_each(ZeroSpans::zero_spans);
    }
}

impl<T: ZeroSpans> ZeroSpans for Option<T> {
    fn zero_spans(&mut self) {
        if let Some(x) = self {
            x.zero_spans();
        }
    }
}

impl<T: ZeroSpans> ZeroSpans for Box<T> {
    fn zero_spans(&mut self) {
        (**self).zero_spans();
    }
}

/// Nodes whose only span is a `span` field.
macro_rules! span_only {
    ($($t:ty),*) => {$(
        impl ZeroSpans for $t {
            fn zero_spans(&mut self) {
                self.span.zero_spans();
            }
        }
    )*};
}

span_only!(
    Ident,
    StringLit,
    BoolLit,
    NumberLit,
    EventName,
    PathSegment,
    IntLit,
    TimeOfDay
);

impl ZeroSpans for Item {
    fn zero_spans(&mut self) {
        match self {
            Item::Bucket(b) => {
                b.id.zero_spans();
                b.members.zero_spans();
                b.span.zero_spans();
            }
            Item::Journey(j) => {
                j.id.zero_spans();
                j.members.zero_spans();
                j.span.zero_spans();
            }
        }
    }
}

impl ZeroSpans for Literal {
    fn zero_spans(&mut self) {
        match self {
            Literal::String(s) => s.zero_spans(),
            Literal::Number(n) => n.zero_spans(),
            Literal::Bool(b) => b.zero_spans(),
        }
    }
}

impl ZeroSpans for Duration {
    fn zero_spans(&mut self) {
        self.span.zero_spans();
    }
}

impl ZeroSpans for Path {
    fn zero_spans(&mut self) {
        self.root_span.zero_spans();
        self.segments.zero_spans();
        self.span.zero_spans();
    }
}

impl ZeroSpans for Filter {
    fn zero_spans(&mut self) {
        self.expr.zero_spans();
        self.span.zero_spans();
    }
}

impl ZeroSpans for Window {
    fn zero_spans(&mut self) {
        if let WindowKind::Within(d) = &mut self.kind {
            d.zero_spans();
        }
        self.span.zero_spans();
    }
}

impl ZeroSpans for Expr {
    fn zero_spans(&mut self) {
        self.span.zero_spans();
        match &mut self.kind {
            ExprKind::Or(es) | ExprKind::And(es) | ExprKind::All(es) | ExprKind::Any(es) => {
                es.zero_spans()
            }
            ExprKind::Not(e) | ExprKind::Paren(e) => e.zero_spans(),
            ExprKind::Did {
                event,
                filter,
                window,
            } => {
                event.zero_spans();
                filter.zero_spans();
                window.zero_spans();
            }
            ExprKind::Count {
                event,
                filter,
                window,
                op: _,
                value,
            } => {
                event.zero_spans();
                filter.zero_spans();
                window.zero_spans();
                value.zero_spans();
            }
            ExprKind::Compare { path, op: _, value } => {
                path.zero_spans();
                value.zero_spans();
            }
            ExprKind::Exists(p) => p.zero_spans(),
            ExprKind::Contains(p, s) => {
                p.zero_spans();
                s.zero_spans();
            }
            ExprKind::In(p, values) => {
                p.zero_spans();
                values.zero_spans();
            }
            ExprKind::Opened(t) | ExprKind::Clicked(t) => t.zero_spans(),
        }
    }
}

impl ZeroSpans for EntryPolicy {
    fn zero_spans(&mut self) {
        if let EntryPolicy::OncePer(d) = self {
            d.zero_spans();
        }
    }
}

impl ZeroSpans for BucketMember {
    fn zero_spans(&mut self) {
        match self {
            BucketMember::Field(f) => {
                f.keyword_span.zero_spans();
                f.span.zero_spans();
                match &mut f.kind {
                    BucketFieldKind::Name(s) | BucketFieldKind::Description(s) => s.zero_spans(),
                    BucketFieldKind::Criteria(e) => e.zero_spans(),
                    BucketFieldKind::Entry(p) => p.zero_spans(),
                    BucketFieldKind::MinDwell(d) | BucketFieldKind::MaxDwell(d) => d.zero_spans(),
                    BucketFieldKind::Enabled(b) => b.zero_spans(),
                }
            }
            BucketMember::Reaction(r) => {
                match &mut r.trigger {
                    ReactionTrigger::Enter { .. } | ReactionTrigger::Leave { .. } => {}
                    ReactionTrigger::DwellAfter { after: d, label }
                    | ReactionTrigger::DwellEvery { every: d, label } => {
                        d.zero_spans();
                        label.zero_spans();
                    }
                }
                r.trigger_span.zero_spans();
                r.body.zero_spans();
                r.span.zero_spans();
            }
        }
    }
}

impl ZeroSpans for JourneyMember {
    fn zero_spans(&mut self) {
        match self {
            JourneyMember::Header(h) => {
                h.keyword_span.zero_spans();
                h.span.zero_spans();
                match &mut h.kind {
                    JourneyHeaderKind::Name(s) | JourneyHeaderKind::Description(s) => {
                        s.zero_spans()
                    }
                    JourneyHeaderKind::Trigger(t) => match t {
                        Trigger::Event { event, filter } => {
                            event.zero_spans();
                            filter.zero_spans();
                        }
                        Trigger::Enter(b) | Trigger::Leave(b) => b.zero_spans(),
                        Trigger::Dwell { bucket, label } => {
                            bucket.zero_spans();
                            label.zero_spans();
                        }
                    },
                    JourneyHeaderKind::Entry(p) => p.zero_spans(),
                    JourneyHeaderKind::ExitWhen(e) => e.zero_spans(),
                }
            }
            JourneyMember::Step(s) => s.zero_spans(),
        }
    }
}

impl ZeroSpans for Block {
    fn zero_spans(&mut self) {
        self.steps.zero_spans();
        self.span.zero_spans();
    }
}

impl ZeroSpans for IfBranch {
    fn zero_spans(&mut self) {
        self.cond.zero_spans();
        self.body.zero_spans();
        self.span.zero_spans();
    }
}

impl ZeroSpans for Step {
    fn zero_spans(&mut self) {
        self.span.zero_spans();
        match &mut self.kind {
            StepKind::Send(t) | StepKind::Start(t) => t.zero_spans(),
            StepKind::Wait(d) => d.zero_spans(),
            StepKind::WaitUntil { cond, at_most } => {
                cond.zero_spans();
                at_most.zero_spans();
            }
            StepKind::WaitUntilTime {
                time,
                days: _,
                days_span,
                zone,
            } => {
                time.zero_spans();
                days_span.zero_spans();
                zone.zero_spans();
            }
            StepKind::If {
                branches,
                else_block,
            } => {
                branches.zero_spans();
                else_block.zero_spans();
            }
            StepKind::Emit(e) => e.zero_spans(),
            StepKind::Exit => {}
        }
    }
}
