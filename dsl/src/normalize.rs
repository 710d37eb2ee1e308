//! Walking every span of a tree: span-free copies, to compare what two sources *mean* (the
//! formatter's meaning-preservation property, parser tests), and span listings for checks.

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

    /// Every span in the definitions (not the comments), in no particular order. For tests
    /// and tools that check spans, e.g. that each lies inside the source.
    pub fn all_spans(&self) -> Vec<Span> {
        let mut copy = self.items.clone();
        let mut spans = Vec::new();
        copy.visit_spans(&mut |s| spans.push(*s));
        spans
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

/// Visits every span in a node.
trait VisitSpans {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span));

    /// Sets every span in the node to `0..0`.
    fn zero_spans(&mut self) {
        self.visit_spans(&mut |s| *s = Span::default());
    }
}

impl VisitSpans for Span {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        visit(self);
    }
}

impl<T: VisitSpans> VisitSpans for Vec<T> {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        self.iter_mut().for_each(|x| x.visit_spans(visit));
    }
}

impl<T: VisitSpans> VisitSpans for Option<T> {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        if let Some(x) = self {
            x.visit_spans(visit);
        }
    }
}

impl<T: VisitSpans> VisitSpans for Box<T> {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        (**self).visit_spans(visit);
    }
}

/// Nodes whose only span is a `span` field.
macro_rules! span_only {
    ($($t:ty),*) => {$(
        impl VisitSpans for $t {
            fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
                self.span.visit_spans(visit);
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

impl VisitSpans for Item {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        match self {
            Item::Bucket(b) => {
                b.id.visit_spans(visit);
                b.members.visit_spans(visit);
                b.span.visit_spans(visit);
            }
            Item::Journey(j) => {
                j.id.visit_spans(visit);
                j.members.visit_spans(visit);
                j.span.visit_spans(visit);
            }
            Item::Test(t) => t.visit_spans(visit),
            Item::List(l) => {
                l.id.visit_spans(visit);
                for f in &mut l.fields {
                    f.keyword_span.visit_spans(visit);
                    f.span.visit_spans(visit);
                    match &mut f.kind {
                        ListFieldKind::Name(s) | ListFieldKind::Description(s) => {
                            s.visit_spans(visit);
                        }
                        ListFieldKind::Default(d) => d.span.visit_spans(visit),
                    }
                }
                l.span.visit_spans(visit);
            }
            Item::Campaign(c) => {
                c.id.visit_spans(visit);
                for f in &mut c.fields {
                    f.keyword_span.visit_spans(visit);
                    f.span.visit_spans(visit);
                    match &mut f.kind {
                        CampaignFieldKind::Name(s) => s.visit_spans(visit),
                        CampaignFieldKind::Audience(a) => a.id.visit_spans(visit),
                        CampaignFieldKind::Template(t) => t.visit_spans(visit),
                        CampaignFieldKind::SendAt(
                            SendAt::Instant { at, span, .. } | SendAt::Local { at, span, .. },
                        ) => {
                            at.span.visit_spans(visit);
                            span.visit_spans(visit);
                        }
                    }
                }
                c.span.visit_spans(visit);
            }
        }
    }
}

impl VisitSpans for Literal {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        match self {
            Literal::String(s) => s.visit_spans(visit),
            Literal::Number(n) => n.visit_spans(visit),
            Literal::Bool(b) => b.visit_spans(visit),
        }
    }
}

impl VisitSpans for Duration {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        self.span.visit_spans(visit);
    }
}

impl VisitSpans for Path {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        self.root_span.visit_spans(visit);
        self.segments.visit_spans(visit);
        self.span.visit_spans(visit);
    }
}

impl VisitSpans for Filter {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        self.expr.visit_spans(visit);
        self.span.visit_spans(visit);
    }
}

impl VisitSpans for Window {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        if let WindowKind::Within(d) = &mut self.kind {
            d.visit_spans(visit);
        }
        self.span.visit_spans(visit);
    }
}

impl VisitSpans for Expr {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        self.span.visit_spans(visit);
        match &mut self.kind {
            ExprKind::Or(es) | ExprKind::And(es) | ExprKind::All(es) | ExprKind::Any(es) => {
                es.visit_spans(visit);
            }
            ExprKind::Not(e) | ExprKind::Paren(e) => e.visit_spans(visit),
            ExprKind::Did {
                event,
                filter,
                window,
            } => {
                event.visit_spans(visit);
                filter.visit_spans(visit);
                window.visit_spans(visit);
            }
            ExprKind::Count {
                event,
                filter,
                window,
                op: _,
                value,
            } => {
                event.visit_spans(visit);
                filter.visit_spans(visit);
                window.visit_spans(visit);
                value.visit_spans(visit);
            }
            ExprKind::Compare { path, op: _, value } => {
                path.visit_spans(visit);
                value.visit_spans(visit);
            }
            ExprKind::Exists(p) => p.visit_spans(visit),
            ExprKind::Contains(p, s) => {
                p.visit_spans(visit);
                s.visit_spans(visit);
            }
            ExprKind::In(p, values) => {
                p.visit_spans(visit);
                values.visit_spans(visit);
            }
            ExprKind::Opened(t) | ExprKind::Clicked(t) => t.visit_spans(visit),
        }
    }
}

impl VisitSpans for EntryPolicy {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        if let EntryPolicy::OncePer(d) = self {
            d.visit_spans(visit);
        }
    }
}

impl VisitSpans for BucketMember {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        match self {
            BucketMember::Field(f) => {
                f.keyword_span.visit_spans(visit);
                f.span.visit_spans(visit);
                match &mut f.kind {
                    BucketFieldKind::Name(s) | BucketFieldKind::Description(s) => {
                        s.visit_spans(visit);
                    }
                    BucketFieldKind::Criteria(e) => e.visit_spans(visit),
                    BucketFieldKind::Entry(p) => p.visit_spans(visit),
                    BucketFieldKind::MinDwell(d) | BucketFieldKind::MaxDwell(d) => {
                        d.visit_spans(visit);
                    }
                    BucketFieldKind::Enabled(b) => b.visit_spans(visit),
                }
            }
            BucketMember::Reaction(r) => {
                match &mut r.trigger {
                    ReactionTrigger::Enter { .. } | ReactionTrigger::Leave { .. } => {}
                    ReactionTrigger::DwellAfter { after: d, label }
                    | ReactionTrigger::DwellEvery { every: d, label } => {
                        d.visit_spans(visit);
                        label.visit_spans(visit);
                    }
                }
                r.trigger_span.visit_spans(visit);
                r.body.visit_spans(visit);
                r.span.visit_spans(visit);
            }
        }
    }
}

impl VisitSpans for JourneyMember {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        match self {
            JourneyMember::Header(h) => {
                h.keyword_span.visit_spans(visit);
                h.span.visit_spans(visit);
                match &mut h.kind {
                    JourneyHeaderKind::Name(s) | JourneyHeaderKind::Description(s) => {
                        s.visit_spans(visit);
                    }
                    JourneyHeaderKind::Trigger(t) => match t {
                        Trigger::Event { event, filter } => {
                            event.visit_spans(visit);
                            filter.visit_spans(visit);
                        }
                        Trigger::Enter(b) | Trigger::Leave(b) => b.visit_spans(visit),
                        Trigger::Dwell { bucket, label } => {
                            bucket.visit_spans(visit);
                            label.visit_spans(visit);
                        }
                    },
                    JourneyHeaderKind::Entry(p) => p.visit_spans(visit),
                    JourneyHeaderKind::ExitWhen(e) => e.visit_spans(visit),
                }
            }
            JourneyMember::Step(s) => s.visit_spans(visit),
        }
    }
}

impl VisitSpans for Block {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        self.steps.visit_spans(visit);
        self.span.visit_spans(visit);
    }
}

impl VisitSpans for IfBranch {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        self.cond.visit_spans(visit);
        self.body.visit_spans(visit);
        self.span.visit_spans(visit);
    }
}

impl VisitSpans for Step {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        self.span.visit_spans(visit);
        match &mut self.kind {
            StepKind::Send(t) | StepKind::Start(t) => t.visit_spans(visit),
            StepKind::Wait(d) => d.visit_spans(visit),
            StepKind::WaitUntil { cond, at_most } => {
                cond.visit_spans(visit);
                at_most.visit_spans(visit);
            }
            StepKind::WaitUntilTime {
                time,
                days: _,
                days_span,
                zone,
            } => {
                time.visit_spans(visit);
                days_span.visit_spans(visit);
                zone.visit_spans(visit);
            }
            StepKind::If {
                branches,
                else_block,
            } => {
                branches.visit_spans(visit);
                else_block.visit_spans(visit);
            }
            StepKind::Emit(e) => e.visit_spans(visit),
            StepKind::Exit => {}
        }
    }
}

// ---- test blocks ----

impl VisitSpans for TestBlock {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        self.name.visit_spans(visit);
        self.members.visit_spans(visit);
        self.span.visit_spans(visit);
    }
}

impl VisitSpans for Instant {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        match self {
            Instant::Absolute(d) => d.span.visit_spans(visit),
            Instant::Relative { after, span } => {
                after.visit_spans(visit);
                span.visit_spans(visit);
            }
        }
    }
}

impl VisitSpans for TestMember {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        match self {
            TestMember::Contact(c) => {
                c.id.visit_spans(visit);
                c.properties.visit_spans(visit);
                c.span.visit_spans(visit);
            }
            TestMember::At(a) => {
                a.at.visit_spans(visit);
                a.actions.visit_spans(visit);
                a.body_span.visit_spans(visit);
                a.span.visit_spans(visit);
            }
        }
    }
}

impl VisitSpans for ObjectLit {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        for f in &mut self.fields {
            f.key.visit_spans(visit);
            f.value.visit_spans(visit);
            f.span.visit_spans(visit);
        }
        self.span.visit_spans(visit);
    }
}

impl VisitSpans for Value {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        match self {
            Value::Literal(l) => l.visit_spans(visit),
            Value::Null(s) => s.visit_spans(visit),
            Value::Object(o) => o.visit_spans(visit),
            Value::List(items, s) => {
                items.visit_spans(visit);
                s.visit_spans(visit);
            }
        }
    }
}

impl VisitSpans for TestAction {
    fn visit_spans(&mut self, visit: &mut dyn FnMut(&mut Span)) {
        match &mut self.kind {
            TestActionKind::Did {
                contact,
                event,
                properties,
            } => {
                contact.visit_spans(visit);
                event.visit_spans(visit);
                properties.visit_spans(visit);
            }
            TestActionKind::Set {
                contact,
                properties,
            } => {
                contact.visit_spans(visit);
                properties.visit_spans(visit);
            }
            TestActionKind::Subscription {
                contact,
                list,
                list_span,
                ..
            } => {
                contact.visit_spans(visit);
                list.visit_spans(visit);
                visit(list_span);
            }
            TestActionKind::Suppress { contact, reason } => {
                contact.visit_spans(visit);
                reason.visit_spans(visit);
            }
            TestActionKind::Expect(e) => {
                e.contact.visit_spans(visit);
                match &mut e.what {
                    Expect::InBucket(x)
                    | Expect::InJourney(x)
                    | Expect::Entered(x)
                    | Expect::Received(x) => x.visit_spans(visit),
                    Expect::ReceivedTimes { template, times } => {
                        template.visit_spans(visit);
                        visit(&mut times.span);
                    }
                    Expect::Left { bucket, .. } => bucket.visit_spans(visit),
                    Expect::Dwell { bucket, label } => {
                        bucket.visit_spans(visit);
                        label.visit_spans(visit);
                    }
                    Expect::Skipped { template, because } => {
                        template.visit_spans(visit);
                        if let Some(r) = because {
                            r.reason.visit_spans(visit);
                            r.list.visit_spans(visit);
                            r.span.visit_spans(visit);
                        }
                    }
                    Expect::Subscription {
                        list, list_span, ..
                    } => {
                        list.visit_spans(visit);
                        visit(list_span);
                    }
                    Expect::JourneyStatus {
                        journey,
                        step,
                        until,
                        ..
                    } => {
                        journey.visit_spans(visit);
                        step.visit_spans(visit);
                        if let Some(u) = until {
                            u.visit_spans(visit);
                        }
                    }
                }
            }
        }
        self.span.visit_spans(visit);
    }
}
