//! The layout of definitions, members and steps.

use crate::ast::{
    Block, Bucket, BucketField, BucketFieldKind, BucketMember, Campaign, CampaignFieldKind, Item,
    Journey, JourneyHeader, JourneyHeaderKind, JourneyMember, LeaveReason, List, ListField,
    ListFieldKind, Reaction, ReactionTrigger, SendAt, SourceFile, Step, StepKind, Trigger,
};
use crate::format::expr::{expr_frags, flat, push_filter, width, Frag};
use crate::format::printer::{Printer, CLOSE, MAX_WIDTH, MEMBER};
use crate::format::text;

/// Bucket field values start this many columns after the keyword's indentation.
const BUCKET_FIELD_WIDTH: usize = 12;
/// Journey header values start this many columns after the keyword's indentation.
const JOURNEY_HEADER_WIDTH: usize = 8;

/// The whole file: definitions separated by one blank line.
pub(crate) fn file(p: &mut Printer<'_>, file: &SourceFile) {
    for (n, item) in file.items.iter().enumerate() {
        if n > 0 {
            p.force_blank_line();
        }
        match item {
            Item::Bucket(b) => bucket(p, b),
            Item::Journey(j) => journey(p, j),
            Item::Test(t) => crate::format::test_block::test_block(p, t),
            Item::List(l) => list(p, l),
            Item::Campaign(c) => campaign(p, c),
        }
    }
}

/// `list id { … }`: fields aligned like a bucket's.
fn list(p: &mut Printer<'_>, l: &List) {
    let open_end = p.src.open_brace_end(l.id.span.end);
    if l.fields.is_empty() && !p.src.has_comment_between(open_end, l.span.end) {
        let line = format!("list {} {{}}", l.id.name);
        p.line(0, &line, l.span.start, l.span.end, MEMBER);
        return;
    }
    p.line(
        0,
        &format!("list {} {{", l.id.name),
        l.span.start,
        open_end,
        MEMBER,
    );
    for f in &l.fields {
        list_field(p, 1, f);
    }
    p.line(0, "}", l.span.end.saturating_sub(1), l.span.end, CLOSE);
}

/// `name        "Onboarding"`, `default     subscribed`, …
fn list_field(p: &mut Printer<'_>, indent: usize, f: &ListField) {
    let (keyword, value) = match &f.kind {
        ListFieldKind::Name(s) => ("name", text::quote(&s.value)),
        ListFieldKind::Description(s) => ("description", text::quote(&s.value)),
        ListFieldKind::Default(d) => (
            "default",
            if d.subscribed {
                "subscribed"
            } else {
                "unsubscribed"
            }
            .to_string(),
        ),
    };
    let line = format!("{}{value}", padded(keyword, BUCKET_FIELD_WIDTH));
    p.line(indent, &line, f.span.start, f.span.end, MEMBER);
}

/// Campaign field values start this many columns after the keyword's indentation.
const CAMPAIGN_FIELD_WIDTH: usize = 9;

/// `campaign id { … }`: fields aligned.
fn campaign(p: &mut Printer<'_>, c: &Campaign) {
    let open_end = p.src.open_brace_end(c.id.span.end);
    if c.fields.is_empty() && !p.src.has_comment_between(open_end, c.span.end) {
        let line = format!("campaign {} {{}}", c.id.name);
        p.line(0, &line, c.span.start, c.span.end, MEMBER);
        return;
    }
    p.line(
        0,
        &format!("campaign {} {{", c.id.name),
        c.span.start,
        open_end,
        MEMBER,
    );
    for f in &c.fields {
        let (keyword, value) = match &f.kind {
            CampaignFieldKind::Name(s) => ("name", text::quote(&s.value)),
            CampaignFieldKind::Audience(a) => (
                "audience",
                format!(
                    "{} {}",
                    if a.is_list { "list" } else { "bucket" },
                    a.id.name
                ),
            ),
            CampaignFieldKind::Template(t) => ("template", t.name.clone()),
            CampaignFieldKind::SendAt(s) => ("send_at", send_at(s)),
        };
        let line = format!("{}{value}", padded(keyword, CAMPAIGN_FIELD_WIDTH));
        p.line(1, &line, f.span.start, f.span.end, MEMBER);
    }
    p.line(0, "}", c.span.end.saturating_sub(1), c.span.end, CLOSE);
}

/// `2027-03-01T09:00:00Z`, `2027-03-01T09:00:00+02:00`, `2027-03-01 09:00 in contact.timezone`.
fn send_at(s: &SendAt) -> String {
    match s {
        SendAt::Instant {
            at, offset_minutes, ..
        } => {
            let (h, m, sec) = at.time.unwrap_or((0, 0, 0));
            let offset = if *offset_minutes == 0 {
                "Z".to_string()
            } else {
                let sign = if *offset_minutes < 0 { '-' } else { '+' };
                let o = offset_minutes.unsigned_abs();
                format!("{sign}{:02}:{:02}", o / 60, o % 60)
            };
            format!(
                "{:04}-{:02}-{:02}T{h:02}:{m:02}:{sec:02}{offset}",
                at.year, at.month, at.day
            )
        }
        SendAt::Local { at, zone, .. } => {
            let (h, m, sec) = at.time.unwrap_or((0, 0, 0));
            let time = if sec == 0 {
                format!("{h:02}:{m:02}")
            } else {
                format!("{h:02}:{m:02}:{sec:02}")
            };
            format!(
                "{:04}-{:02}-{:02} {time} in contact.{}",
                at.year,
                at.month,
                at.day,
                zone.join(".")
            )
        }
    }
}

/// `keyword` padded so the value starts `width` columns in (at least one space after it).
fn padded(keyword: &str, width: usize) -> String {
    format!("{keyword:<w$} ", w = width - 1)
}

/// `bucket id { … }`.
fn bucket(p: &mut Printer<'_>, b: &Bucket) {
    let open_end = p.src.open_brace_end(b.id.span.end);
    if b.members.is_empty() && !p.src.has_comment_between(open_end, b.span.end) {
        let line = format!("bucket {} {{}}", b.id.name);
        p.line(0, &line, b.span.start, b.span.end, MEMBER);
        return;
    }
    p.line(
        0,
        &format!("bucket {} {{", b.id.name),
        b.span.start,
        open_end,
        MEMBER,
    );
    for member in &b.members {
        match member {
            BucketMember::Field(f) => bucket_field(p, 1, f),
            BucketMember::Reaction(r) => reaction(p, 1, r),
        }
    }
    p.line(0, "}", b.span.end.saturating_sub(1), b.span.end, CLOSE);
}

/// `criteria    did x`, `entry       once per 14d`, …
fn bucket_field(p: &mut Printer<'_>, indent: usize, f: &BucketField) {
    let (keyword, value) = match &f.kind {
        BucketFieldKind::Name(s) => ("name", text::quote(&s.value)),
        BucketFieldKind::Description(s) => ("description", text::quote(&s.value)),
        BucketFieldKind::Criteria(e) => {
            let mut frags = vec![Frag::glue(padded("criteria", BUCKET_FIELD_WIDTH))];
            frags.extend(expr_frags(e, &p.src));
            p.logical_line(indent, &frags, f.span.start, MEMBER);
            return;
        }
        BucketFieldKind::Entry(policy) => ("entry", text::entry_policy(policy)),
        BucketFieldKind::MinDwell(d) => ("min_dwell", text::duration(d)),
        BucketFieldKind::MaxDwell(d) => ("max_dwell", text::duration(d)),
        BucketFieldKind::Enabled(b) => ("enabled", b.value.to_string()),
    };
    let line = format!("{}{value}", padded(keyword, BUCKET_FIELD_WIDTH));
    p.line(indent, &line, f.span.start, f.span.end, MEMBER);
}

/// `on enter { … }`, `on dwell after 3d as nudge { … }`, …
fn reaction(p: &mut Printer<'_>, indent: usize, r: &Reaction) {
    let head = match &r.trigger {
        ReactionTrigger::Enter { first: false } => "on enter".to_string(),
        ReactionTrigger::Enter { first: true } => "on enter first".to_string(),
        ReactionTrigger::Leave { because: None } => "on leave".to_string(),
        ReactionTrigger::Leave {
            because: Some(LeaveReason::Criteria),
        } => "on leave because criteria".to_string(),
        ReactionTrigger::Leave {
            because: Some(LeaveReason::MaxDwell),
        } => "on leave because max_dwell".to_string(),
        ReactionTrigger::DwellAfter { after: d, label } => {
            dwell_head("after", &text::duration(d), label.as_ref())
        }
        ReactionTrigger::DwellEvery { every: d, label } => {
            dwell_head("every", &text::duration(d), label.as_ref())
        }
    };
    block_after(p, indent, vec![Frag::glue(head)], &r.body, r.span.start);
}

/// `on dwell after 3d [as label]`.
fn dwell_head(how: &str, duration: &str, label: Option<&crate::ast::Ident>) -> String {
    match label {
        Some(label) => format!("on dwell {how} {duration} as {}", label.name),
        None => format!("on dwell {how} {duration}"),
    }
}

/// `head { … }`: on one line when the block is empty, or is a single step without a block of
/// its own, holds no comment, and fits; otherwise one step per line.
fn block_after(p: &mut Printer<'_>, indent: usize, head: Vec<Frag>, block: &Block, start: usize) {
    let commented = p.src.has_comment_between(block.span.start, block.span.end);
    if !commented {
        let one_line = match block.steps.as_slice() {
            [] => Some(format!("{} {{}}", flat(&head))),
            [step] if !matches!(step.kind, StepKind::If { .. }) => Some(format!(
                "{} {{ {} }}",
                flat(&head),
                flat(&step_frags(p, step))
            )),
            _ => None,
        };
        if let Some(line) = one_line.filter(|l| 2 * indent + width(l) <= MAX_WIDTH) {
            p.line(indent, &line, start, block.span.end, MEMBER);
            return;
        }
    }
    let mut frags = head;
    frags.push(Frag::text(" {", block.span.start + 1));
    p.logical_line(indent, &frags, start, MEMBER);
    steps(p, indent + 1, block);
    p.line(
        indent,
        "}",
        block.span.end.saturating_sub(1),
        block.span.end,
        CLOSE,
    );
}

/// The steps of a block, one per line.
fn steps(p: &mut Printer<'_>, indent: usize, block: &Block) {
    for s in &block.steps {
        step(p, indent, s);
    }
}

/// One step.
fn step(p: &mut Printer<'_>, indent: usize, s: &Step) {
    let StepKind::If {
        branches,
        else_block,
    } = &s.kind
    else {
        let frags = step_frags(p, s);
        p.logical_line(indent, &frags, s.span.start, MEMBER);
        return;
    };
    if let ([branch], None) = (branches.as_slice(), else_block) {
        let mut head = vec![Frag::glue("if ")];
        head.extend(expr_frags(&branch.cond, &p.src));
        block_after(p, indent, head, &branch.body, s.span.start);
        return;
    }
    let mut previous_end = s.span.start;
    for (n, branch) in branches.iter().enumerate() {
        let (keyword, kind, start) = if n == 0 {
            ("if ", MEMBER, s.span.start)
        } else {
            ("} else if ", CLOSE, previous_end.saturating_sub(1))
        };
        let mut frags = vec![Frag::glue(keyword)];
        frags.extend(expr_frags(&branch.cond, &p.src));
        frags.push(Frag::text(" {", branch.body.span.start + 1));
        p.logical_line(indent, &frags, start, kind);
        steps(p, indent + 1, &branch.body);
        previous_end = branch.body.span.end;
    }
    if let Some(block) = else_block {
        let start = previous_end.saturating_sub(1);
        p.line(indent, "} else {", start, block.span.start + 1, CLOSE);
        steps(p, indent + 1, block);
    }
    p.line(indent, "}", s.span.end.saturating_sub(1), s.span.end, CLOSE);
}

/// The fragments of a step other than `if`.
fn step_frags(p: &Printer<'_>, s: &Step) -> Vec<Frag> {
    let end = s.span.end;
    let line = match &s.kind {
        StepKind::Send(t) => format!("send {}", t.name),
        StepKind::Wait(d) => format!("wait {}", text::duration(d)),
        StepKind::WaitUntil { cond, at_most } => {
            let mut frags = vec![Frag::glue("wait until ")];
            frags.extend(expr_frags(cond, &p.src));
            let tail = format!(", at most {}", text::duration(at_most));
            frags.push(Frag::text(tail, end));
            return frags;
        }
        StepKind::WaitUntilTime {
            time,
            days,
            days_span: _,
            zone,
        } => {
            let mut line = format!("wait until {}", text::time_of_day(time));
            if let Some(days) = days {
                line.push_str(" on ");
                line.push_str(&text::days(days));
            }
            if let Some(zone) = zone {
                line.push_str(" in ");
                line.push_str(&text::path(zone));
            }
            line
        }
        StepKind::Start(j) => format!("start {}", j.name),
        StepKind::Emit(e) => format!("emit {}", text::event_name(e)),
        StepKind::Exit => "exit".to_string(),
        StepKind::If { branches, .. } => {
            // Only reached for a one-line rendering, which `block_after` never asks of `if`.
            let mut frags = vec![Frag::glue("if ")];
            if let Some(branch) = branches.first() {
                frags.extend(expr_frags(&branch.cond, &p.src));
            }
            frags.push(Frag::text(" { … }", end));
            return frags;
        }
    };
    vec![Frag::text(line, end)]
}

/// `journey id { … }`.
fn journey(p: &mut Printer<'_>, j: &Journey) {
    let open_end = p.src.open_brace_end(j.id.span.end);
    if j.members.is_empty() && !p.src.has_comment_between(open_end, j.span.end) {
        let line = format!("journey {} {{}}", j.id.name);
        p.line(0, &line, j.span.start, j.span.end, MEMBER);
        return;
    }
    p.line(
        0,
        &format!("journey {} {{", j.id.name),
        j.span.start,
        open_end,
        MEMBER,
    );
    for member in &j.members {
        match member {
            JourneyMember::Header(h) => journey_header(p, 1, h),
            JourneyMember::Step(s) => step(p, 1, s),
        }
    }
    p.line(0, "}", j.span.end.saturating_sub(1), j.span.end, CLOSE);
}

/// `name    "…"`, `trigger event x where (…)`, `entry   once`, `exit when …`.
fn journey_header(p: &mut Printer<'_>, indent: usize, h: &JourneyHeader) {
    let end = h.span.end;
    let frags = match &h.kind {
        JourneyHeaderKind::Name(s) => vec![Frag::text(
            format!(
                "{}{}",
                padded("name", JOURNEY_HEADER_WIDTH),
                text::quote(&s.value)
            ),
            end,
        )],
        JourneyHeaderKind::Description(s) => vec![Frag::text(
            format!(
                "{}{}",
                padded("description", JOURNEY_HEADER_WIDTH),
                text::quote(&s.value)
            ),
            end,
        )],
        JourneyHeaderKind::Entry(policy) => vec![Frag::text(
            format!(
                "{}{}",
                padded("entry", JOURNEY_HEADER_WIDTH),
                text::entry_policy(policy)
            ),
            end,
        )],
        JourneyHeaderKind::ExitWhen(e) => {
            let mut frags = vec![Frag::glue("exit when ")];
            frags.extend(expr_frags(e, &p.src));
            frags
        }
        JourneyHeaderKind::Trigger(t) => {
            let trigger = padded("trigger", JOURNEY_HEADER_WIDTH);
            match t {
                Trigger::Event { event, filter } => {
                    let head = format!("{trigger}event {}", text::event_name(event));
                    let mut frags = vec![Frag::text(head, event.span.end)];
                    push_filter(&mut frags, filter.as_ref(), &p.src);
                    frags
                }
                Trigger::Enter(b) => vec![Frag::text(format!("{trigger}enter {}", b.name), end)],
                Trigger::Leave(b) => vec![Frag::text(format!("{trigger}leave {}", b.name), end)],
                Trigger::Dwell { bucket, label } => vec![Frag::text(
                    format!("{trigger}dwell {}.{}", bucket.name, label.name),
                    end,
                )],
            }
        }
    };
    p.logical_line(indent, &frags, h.span.start, MEMBER);
}
