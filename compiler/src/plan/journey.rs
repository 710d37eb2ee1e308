//! Journeys and bucket reactions → step programs with stable step ids, and the SQL of their
//! conditions and triggers (docs/language.md, "Step ids").
//!
//! A program is a flat list of steps. A step's id is its position path: `s1`, `s2`, … at
//! the top level; the steps of an `if`'s branches are `<if id>.then.s1`, `<if id>.elif1.s1`
//! (the first `else if`), …, `<if id>.else.s1`. Each step names the step a run moves to next
//! (`null`: the run completes). The journey-independent engine (`schema/sql/engine/
//! journeys.sql`) advances every run at a step of one kind with one statement; what is
//! specific to a journey — its conditions (`exit when`, `wait until`, `if`) and its trigger
//! filter — is generated here as INSERTs into the pass's work tables.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::matcher::{count_test, event_pred, prop_test, MatcherBuilder, MAX_SECONDS};
use super::sql::{Expr, JoinKind, Op, Select, Source};
use super::text;
use crate::ir::{
    EntryPolicy, EventAtom, EventTest, Journey, JourneyTrigger, LeaveReason, Pred, Program,
    ReactionOn, Step, Weekday, Window,
};

/// One journey's (or reaction's) plan.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyPlan {
    /// The journey id; a reaction's is `<bucket>.<reaction>` (e.g. `went_dormant.on_enter`).
    pub id: String,
    /// The stem of its generated functions' names: `j_<id>`, or `r_<bucket>_<n>` for the
    /// n-th reaction of a bucket.
    pub func: String,
    /// Where it is defined (`file:line`).
    pub source: String,
    /// The step outline shown in the generated file: (step id, step in `.hog` syntax).
    pub outline: Vec<(String, String)>,
    /// The trigger in `.hog` syntax.
    pub trigger_text: String,
    /// INSERT statements filling `_hs_jexit`, `_hs_jtrue`, `_hs_jbranch` for the runs in
    /// `_hs_jrun` (empty when the journey has no condition).
    pub conditions: Vec<String>,
    /// INSERT statements turning the pass's trigger events (`_hs_jinbox`) into enrolment
    /// requests (`_hs_jcand`).
    pub candidates: Vec<String>,
    /// The event names that trigger it.
    pub triggers: Vec<String>,
    /// The event names its conditions read (sorted, distinct).
    pub condition_events: Vec<String>,
    /// The registry entry `_sync_journeys` receives.
    pub registry: Value,
}

/// One step of a flattened program.
#[derive(Debug, Clone, PartialEq)]
struct StepRow {
    id: String,
    kind: &'static str,
    next: Option<String>,
    text: String,
    template: Option<String>,
    category: Option<String>,
    target: Option<String>,
    event: Option<String>,
    seconds: Option<i64>,
    hour: Option<u8>,
    minute: Option<u8>,
    days: Vec<u8>,
    zone_path: Option<Vec<String>>,
}

impl StepRow {
    fn new(id: String, kind: &'static str, next: Option<String>, text: String) -> Self {
        StepRow {
            id,
            kind,
            next,
            text,
            template: None,
            category: None,
            target: None,
            event: None,
            seconds: None,
            hour: None,
            minute: None,
            days: Vec::new(),
            zone_path: None,
        }
    }

    fn json(&self) -> Value {
        json!({
            "step_id": self.id,
            "kind": self.kind,
            "next_step": self.next,
            "template": self.template,
            "category": self.category,
            "target": self.target,
            "event": self.event,
            "seconds": self.seconds,
            "hour": self.hour,
            "minute": self.minute,
            "days": self.days,
            "zone_path": self.zone_path,
        })
    }
}

/// A condition to compile, with where it applies.
enum CondUse<'a> {
    /// `wait until C` at this step.
    WaitUntil(String, &'a Pred),
    /// An `if` at this step: the branch labels with their conditions, the label taken when
    /// none holds (`else`, or `none` without one), and each label's target.
    If {
        step: String,
        branches: Vec<(String, &'a Pred)>,
        otherwise: String,
        targets: Vec<(String, Option<String>)>,
    },
}

fn secs(s: i64) -> i64 {
    s.clamp(1, MAX_SECONDS)
}

fn weekday_number(d: Weekday) -> u8 {
    match d {
        Weekday::Mon => 1,
        Weekday::Tue => 2,
        Weekday::Wed => 3,
        Weekday::Thu => 4,
        Weekday::Fri => 5,
        Weekday::Sat => 6,
        Weekday::Sun => 7,
    }
}

fn weekday_text(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

/// Flattens `steps` (ids under `prefix`) into `rows`; `after` is where the last one goes.
fn flatten<'a>(
    steps: &'a [Step],
    prefix: &str,
    after: Option<&str>,
    categories: &BTreeMap<&str, Option<&str>>,
    rows: &mut Vec<StepRow>,
    conds: &mut Vec<CondUse<'a>>,
) {
    let id_of = |i: usize| {
        if prefix.is_empty() {
            format!("s{}", i + 1)
        } else {
            format!("{prefix}.s{}", i + 1)
        }
    };
    for (i, step) in steps.iter().enumerate() {
        let id = id_of(i);
        let next = if i + 1 < steps.len() {
            Some(id_of(i + 1))
        } else {
            after.map(str::to_owned)
        };
        match step {
            Step::Send(template) => {
                let mut row = StepRow::new(id, "send", next, format!("send {template}"));
                row.template = Some(template.clone());
                row.category = categories
                    .get(template.as_str())
                    .copied()
                    .flatten()
                    .map(str::to_owned);
                rows.push(row);
            }
            Step::Wait(s) => {
                let mut row = StepRow::new(
                    id,
                    "wait",
                    next,
                    format!("wait {}", text::duration_text(*s)),
                );
                row.seconds = Some(secs(*s));
                rows.push(row);
            }
            Step::WaitUntil { cond, at_most } => {
                let mut row = StepRow::new(
                    id.clone(),
                    "wait_until",
                    next,
                    format!(
                        "wait until {}, at most {}",
                        text::pred_text(cond),
                        text::duration_text(*at_most)
                    ),
                );
                row.seconds = Some(secs(*at_most));
                rows.push(row);
                conds.push(CondUse::WaitUntil(id, cond));
            }
            Step::WaitUntilTime {
                hour,
                minute,
                days,
                zone,
            } => {
                let mut t = format!("wait until {hour:02}:{minute:02}");
                if !days.is_empty() {
                    let names: Vec<&str> = days.iter().map(|d| weekday_text(*d)).collect();
                    t.push_str(&format!(" on {}", names.join(", ")));
                }
                if let Some(path) = zone {
                    t.push_str(&format!(" in contact.{}", path.join(".")));
                }
                let mut row = StepRow::new(id, "wait_time", next, t);
                row.hour = Some(*hour);
                row.minute = Some(*minute);
                let mut numbers: Vec<u8> = days.iter().map(|d| weekday_number(*d)).collect();
                numbers.sort_unstable();
                numbers.dedup();
                row.days = numbers;
                row.zone_path = zone.clone();
                rows.push(row);
            }
            Step::If {
                branches,
                otherwise,
            } => {
                let first = branches
                    .first()
                    .map(|(c, _)| text::pred_text(c))
                    .unwrap_or_default();
                rows.push(StepRow::new(
                    id.clone(),
                    "if",
                    next.clone(),
                    format!("if {first}"),
                ));
                let mut labelled = Vec::new();
                let mut targets = Vec::new();
                for (k, (cond, body)) in branches.iter().enumerate() {
                    let label = if k == 0 {
                        "then".to_owned()
                    } else {
                        format!("elif{k}")
                    };
                    let sub = format!("{id}.{label}");
                    let target = if body.is_empty() {
                        next.clone()
                    } else {
                        Some(format!("{sub}.s1"))
                    };
                    targets.push((label.clone(), target));
                    labelled.push((label, cond, body));
                }
                let else_label = if otherwise.is_empty() { "none" } else { "else" };
                let else_target = if otherwise.is_empty() {
                    next.clone()
                } else {
                    Some(format!("{id}.else.s1"))
                };
                targets.push((else_label.to_owned(), else_target));
                conds.push(CondUse::If {
                    step: id.clone(),
                    branches: labelled.iter().map(|(l, c, _)| (l.clone(), *c)).collect(),
                    otherwise: else_label.to_owned(),
                    targets,
                });
                for (label, _, body) in labelled {
                    flatten(
                        body,
                        &format!("{id}.{label}"),
                        next.as_deref(),
                        categories,
                        rows,
                        conds,
                    );
                }
                if !otherwise.is_empty() {
                    flatten(
                        otherwise,
                        &format!("{id}.else"),
                        next.as_deref(),
                        categories,
                        rows,
                        conds,
                    );
                }
            }
            Step::Start(journey) => {
                let mut row = StepRow::new(id, "start", next, format!("start {journey}"));
                row.target = Some(journey.clone());
                rows.push(row);
            }
            Step::Emit(event) => {
                let mut row = StepRow::new(id, "emit", next, format!("emit {event}"));
                row.event = Some(event.clone());
                rows.push(row);
            }
            Step::Exit => rows.push(StepRow::new(id, "exit", None, "exit".to_owned())),
        }
    }
}

/// `COALESCE(a = b, FALSE)`.
fn eq_json(a: Expr, b: Expr) -> Expr {
    Expr::Call("COALESCE", vec![a.eq(b), Expr::Bool(false)])
}

fn col(table: &str, column: &str) -> Expr {
    Expr::column(table, column)
}

/// Compiles a run condition over `x` (the run, in `_hs_jrun`) and `c` (its contact).
struct RunCondition<'a> {
    schema: &'a str,
    /// Inside `exit when`: an unwindowed event atom means `since entry`.
    exit: bool,
}

impl RunCondition<'_> {
    fn expr(&self, pred: &Pred) -> Expr {
        match pred {
            Pred::And(children) => Expr::all(children.iter().map(|p| self.expr(p))),
            Pred::Or(children) => Expr::any(children.iter().map(|p| self.expr(p))),
            Pred::Not(inner) => self.expr(inner).not(),
            Pred::Prop(prop) => prop_test(col("c", "properties"), prop),
            // The run's stored trigger event properties (`{}` for a run not started by an
            // event, so every `trigger.` path is missing there).
            Pred::Trigger(prop) => prop_test(col("x", "trigger_properties"), prop),
            Pred::Event(atom) => self.event(atom),
            Pred::Opened(t) => self.message(t, "opened_at"),
            Pred::Clicked(t) => self.message(t, "clicked_at"),
        }
    }

    fn event(&self, atom: &EventAtom) -> Expr {
        let window = match atom.window {
            Window::Ever if self.exit => Window::SinceEntry,
            w => w,
        };
        let mut q = Select::from(Source::table(self.schema, "events", "e"))
            .filter(col("e", "user_key").eq(col("x", "user_key")))
            .filter(MatcherBuilder::atom_condition(atom, "e", true))
            .filter(col("e", "occurred_at").binary(Op::Le, Expr::name("p_now")));
        if window == Window::SinceEntry {
            q = q
                .filter(col("e", "occurred_at").binary(Op::Ge, col("x", "entered_at")))
                .filter(Expr::any([
                    Expr::IsNull(Box::new(col("x", "trigger_event_id")), false),
                    col("e", "id").binary(Op::Ne, col("x", "trigger_event_id")),
                ]));
        }
        match atom.test {
            EventTest::Exists => Expr::Exists(Box::new(q.item(Expr::Int(1)))),
            test @ EventTest::Count(..) => {
                count_test(Expr::Subquery(Box::new(q.item(Expr::CountStar))), test)
            }
        }
    }

    fn message(&self, template: &str, column: &str) -> Expr {
        let q = Select::from(Source::table(self.schema, "messages", "m"))
            .item(Expr::Int(1))
            .filter(col("m", "user_key").eq(col("c", "user_key")))
            .filter(col("m", "template").eq(Expr::text(template)))
            .filter(Expr::IsNull(Box::new(col("m", column)), true));
        Expr::Exists(Box::new(q))
    }
}

/// The event names `pred`'s atoms read, appended to `out`.
fn event_names(pred: &Pred, out: &mut Vec<String>) {
    match pred {
        Pred::And(c) | Pred::Or(c) => c.iter().for_each(|p| event_names(p, out)),
        Pred::Not(inner) => event_names(inner, out),
        Pred::Event(atom) => out.push(atom.event.clone()),
        Pred::Prop(_) | Pred::Trigger(_) | Pred::Opened(_) | Pred::Clicked(_) => {}
    }
}

/// Whether the clock alone can change `pred`'s truth value for a waiting run (a `within`
/// window moves with the pass instant).
fn time_dependent(pred: &Pred) -> bool {
    match pred {
        Pred::And(c) | Pred::Or(c) => c.iter().any(time_dependent),
        Pred::Not(inner) => time_dependent(inner),
        Pred::Event(atom) => matches!(atom.window, Window::Within(_)),
        Pred::Prop(_) | Pred::Trigger(_) | Pred::Opened(_) | Pred::Clicked(_) => false,
    }
}

fn steps_time_dependent(steps: &[Step]) -> bool {
    steps.iter().any(|s| match s {
        Step::WaitUntil { cond, .. } => time_dependent(cond),
        Step::If {
            branches,
            otherwise,
        } => {
            branches.iter().any(|(_, b)| steps_time_dependent(b)) || steps_time_dependent(otherwise)
        }
        _ => false,
    })
}

/// `_hs_jrun x JOIN contacts c` restricted to one journey (and step).
fn runs_of(schema: &str, journey: &str, step: Option<&str>) -> Select {
    let mut q = Select::from(Source::Table {
        schema: None,
        name: "_hs_jrun".to_owned(),
        alias: Some("x".to_owned()),
    })
    .join(
        JoinKind::Inner,
        Source::table(schema, "contacts", "c"),
        col("c", "user_key").eq(col("x", "user_key")),
    )
    .filter(col("x", "journey_id").eq(Expr::text(journey)));
    if let Some(step) = step {
        q = q.filter(col("x", "step_id").eq(Expr::text(step)));
    }
    q
}

/// What a program is made of, whichever kind it is.
struct ProgramSource<'a> {
    id: String,
    func: String,
    kind: &'static str,
    bucket_id: Option<&'a str>,
    enabled: bool,
    name: Option<&'a str>,
    description: Option<&'a str>,
    entry: EntryPolicy,
    exit_when: Option<&'a Pred>,
    steps: &'a [Step],
    source: String,
    trigger: Trigger<'a>,
}

enum Trigger<'a> {
    Event(&'a JourneyTrigger),
    Reaction(&'a str, &'a ReactionOn),
}

/// The reaction ids of a bucket, in source order: `on_enter`, `on_enter_first`, `on_leave`,
/// `on_leave_criteria`, `on_leave_max_dwell`, `on_dwell_<label>`; a repeated one gets `_2`,
/// `_3`, … in order.
fn reaction_names(reactions: &[crate::ir::Reaction]) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    reactions
        .iter()
        .map(|r| {
            let base = match &r.on {
                ReactionOn::Enter { first_only: false } => "on_enter".to_owned(),
                ReactionOn::Enter { first_only: true } => "on_enter_first".to_owned(),
                ReactionOn::Leave { because: None } => "on_leave".to_owned(),
                ReactionOn::Leave {
                    because: Some(LeaveReason::Criteria),
                } => "on_leave_criteria".to_owned(),
                ReactionOn::Leave {
                    because: Some(LeaveReason::MaxDwell),
                } => "on_leave_max_dwell".to_owned(),
                ReactionOn::Dwell { label } => format!("on_dwell_{label}"),
            };
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                base
            } else {
                format!("{base}_{n}")
            }
        })
        .collect()
}

/// Plans every journey and every bucket reaction of a program, sorted by id.
pub(crate) fn plan_journeys(program: &Program, schema: &str) -> Vec<JourneyPlan> {
    let categories: BTreeMap<&str, Option<&str>> = program
        .templates
        .iter()
        .map(|t| (t.id.as_str(), t.category.as_deref()))
        .collect();
    let mut sources = Vec::new();
    for j in &program.journeys {
        sources.push(journey_source(j));
    }
    for b in &program.buckets {
        for (k, (r, name)) in b
            .reactions
            .iter()
            .zip(reaction_names(&b.reactions))
            .enumerate()
        {
            sources.push(ProgramSource {
                id: format!("{}.{name}", b.id),
                func: format!("r_{}_{}", b.id, k + 1),
                kind: "reaction",
                bucket_id: Some(&b.id),
                enabled: b.enabled,
                name: None,
                description: None,
                entry: EntryPolicy::Unlimited,
                exit_when: None,
                steps: &r.steps,
                source: format!("{}:{}", b.origin.file, b.origin.line),
                trigger: Trigger::Reaction(&b.id, &r.on),
            });
        }
    }
    let mut plans: Vec<JourneyPlan> = sources
        .iter()
        .map(|s| plan_one(s, schema, &categories))
        .collect();
    plans.sort_by(|a, b| a.id.cmp(&b.id));
    plans
}

fn journey_source(j: &Journey) -> ProgramSource<'_> {
    ProgramSource {
        id: j.id.clone(),
        func: format!("j_{}", j.id),
        kind: "journey",
        bucket_id: None,
        enabled: true,
        name: j.name.as_deref(),
        description: j.description.as_deref(),
        entry: j.entry,
        exit_when: j.exit_when.as_ref(),
        steps: &j.steps,
        source: format!("{}:{}", j.origin.file, j.origin.line),
        trigger: Trigger::Event(&j.trigger),
    }
}

/// `(event name, trigger kind, filter over i.properties, text)` of a trigger.
fn trigger_parts(trigger: &Trigger<'_>) -> (String, &'static str, Expr, String) {
    let props = col("i", "properties");
    let field = |name: &str| props.clone().binary(Op::Field, Expr::text(name));
    let json = |v: &str| Expr::Text(v.to_owned()).cast("jsonb");
    match trigger {
        Trigger::Event(JourneyTrigger::Event { event, filter }) => {
            let f = filter
                .as_ref()
                .map_or(Expr::Bool(true), |f| event_pred(f, &props));
            let mut t = format!("event {event}");
            if filter.is_some() {
                t.push_str(" where (…)");
            }
            (event.clone(), "event", f, t)
        }
        Trigger::Event(JourneyTrigger::Enter(b)) => (
            format!("bucket:entered:{b}"),
            "enter",
            Expr::Bool(true),
            format!("enter {b}"),
        ),
        Trigger::Event(JourneyTrigger::Leave(b)) => (
            format!("bucket:left:{b}"),
            "leave",
            Expr::Bool(true),
            format!("leave {b}"),
        ),
        Trigger::Event(JourneyTrigger::Dwell { bucket, label }) => (
            format!("bucket:dwell:{bucket}:{label}"),
            "dwell",
            Expr::Bool(true),
            format!("dwell {bucket}.{label}"),
        ),
        Trigger::Reaction(b, ReactionOn::Enter { first_only }) => (
            format!("bucket:entered:{b}"),
            "enter",
            if *first_only {
                eq_json(field("entry_count"), json("1"))
            } else {
                Expr::Bool(true)
            },
            format!("on enter{}", if *first_only { " first" } else { "" }),
        ),
        Trigger::Reaction(b, ReactionOn::Leave { because }) => {
            let (f, t) = match because {
                None => (Expr::Bool(true), "on leave".to_owned()),
                Some(LeaveReason::Criteria) => (
                    eq_json(field("reason"), json("\"criteria\"")),
                    "on leave because criteria".to_owned(),
                ),
                Some(LeaveReason::MaxDwell) => (
                    eq_json(field("reason"), json("\"max_dwell\"")),
                    "on leave because max_dwell".to_owned(),
                ),
            };
            (format!("bucket:left:{b}"), "leave", f, t)
        }
        Trigger::Reaction(b, ReactionOn::Dwell { label }) => (
            format!("bucket:dwell:{b}:{label}"),
            "dwell",
            Expr::Bool(true),
            format!("on dwell {label}"),
        ),
    }
}

fn plan_one(
    src: &ProgramSource<'_>,
    schema: &str,
    categories: &BTreeMap<&str, Option<&str>>,
) -> JourneyPlan {
    let mut rows = Vec::new();
    let mut conds = Vec::new();
    flatten(src.steps, "", None, categories, &mut rows, &mut conds);

    let mut conditions = Vec::new();
    if let Some(exit) = src.exit_when {
        let cond = RunCondition { schema, exit: true }.expr(exit);
        let q = runs_of(schema, &src.id, None)
            .item(col("x", "run_id"))
            .filter(cond);
        conditions.push(format!("INSERT INTO _hs_jexit (run_id)\n  {}", q.render(2)));
    }
    let run_cond = RunCondition {
        schema,
        exit: false,
    };
    for c in &conds {
        match c {
            CondUse::WaitUntil(step, pred) => {
                let q = runs_of(schema, &src.id, Some(step))
                    .item(col("x", "run_id"))
                    .filter(run_cond.expr(pred));
                conditions.push(format!("INSERT INTO _hs_jtrue (run_id)\n  {}", q.render(2)));
            }
            CondUse::If {
                step,
                branches,
                otherwise,
                targets,
            } => {
                let label =
                    branches
                        .iter()
                        .rev()
                        .fold(Expr::text(otherwise), |rest, (label, pred)| {
                            Expr::Case(
                                Box::new(run_cond.expr(pred)),
                                Box::new(Expr::text(label)),
                                Box::new(rest),
                            )
                        });
                let inner = runs_of(schema, &src.id, Some(step))
                    .item(col("x", "run_id"))
                    .item_as(label, "branch");
                let target =
                    targets
                        .iter()
                        .rev()
                        .fold(Expr::Null("text"), |rest, (label, target)| {
                            Expr::Case(
                                Box::new(col("v", "branch").eq(Expr::text(label))),
                                Box::new(target.as_deref().map_or(Expr::Null("text"), Expr::text)),
                                Box::new(rest),
                            )
                        });
                let q = Select::from(Source::Subquery(Box::new(inner), "v".to_owned()))
                    .item(col("v", "run_id"))
                    .item(col("v", "branch"))
                    .item(target);
                conditions.push(format!(
                    "INSERT INTO _hs_jbranch (run_id, branch, next_step)\n  {}",
                    q.render(2)
                ));
            }
        }
    }

    let mut condition_events = Vec::new();
    if let Some(exit) = src.exit_when {
        event_names(exit, &mut condition_events);
    }
    for c in &conds {
        match c {
            CondUse::WaitUntil(_, pred) => event_names(pred, &mut condition_events),
            CondUse::If { branches, .. } => {
                branches
                    .iter()
                    .for_each(|(_, p)| event_names(p, &mut condition_events));
            }
        }
    }
    condition_events.sort();
    condition_events.dedup();

    let (event, trigger_kind, filter, trigger_text) = trigger_parts(&src.trigger);
    let reaction_or_transition = trigger_kind != "event";
    let inbox = Source::Table {
        schema: None,
        name: "_hs_jinbox".to_owned(),
        alias: Some("i".to_owned()),
    };
    let properties = if reaction_or_transition {
        Expr::Text("{}".to_owned()).cast("jsonb")
    } else {
        col("i", "properties")
    };
    let entry_count = if reaction_or_transition {
        Expr::JsonText(Box::new(
            col("i", "properties").binary(Op::Field, Expr::text("entry_count")),
        ))
        .cast("integer")
    } else {
        Expr::Null("integer")
    };
    let exempt = if reaction_or_transition {
        Expr::Bool(true)
    } else {
        col("i", "exempt")
    };
    let q = Select::from(inbox)
        .item(col("i", "user_key"))
        .item(Expr::text(&src.id))
        .item(Expr::text(trigger_kind))
        .item(col("i", "event_id"))
        .item(col("i", "occurred_at"))
        .item(properties)
        .item(entry_count)
        .item(filter)
        .item(exempt)
        .filter(col("i", "event").eq(Expr::text(&event)));
    let candidates = vec![format!(
        "INSERT INTO _hs_jcand (user_key, journey_id, trigger_kind, event_id, occurred_at,\n    properties, entry_count, filter_ok, exempt)\n  {}",
        q.render(2)
    )];

    let (entry_kind, entry_period) = match src.entry {
        EntryPolicy::Unlimited => ("unlimited", None),
        EntryPolicy::Once => ("once", None),
        EntryPolicy::OncePer(s) => ("once_per", Some(secs(s))),
    };
    let polls = src.exit_when.is_some_and(time_dependent) || steps_time_dependent(src.steps);
    let outline: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.id.clone(), r.text.clone()))
        .collect();
    let registry = json!({
        "id": src.id,
        "kind": src.kind,
        "bucket_id": src.bucket_id,
        "enabled": src.enabled,
        "entry_kind": entry_kind,
        "entry_period": entry_period,
        "polls": polls,
        "triggers": [event],
        "definition": {
            "name": src.name,
            "description": src.description,
            "trigger": trigger_text,
            "entry": text::entry_text(src.entry),
            "exit_when": src.exit_when.map(text::pred_text),
            "source": src.source,
            "steps": rows.iter().map(|r| json!({"id": r.id, "kind": r.kind, "text": r.text})).collect::<Vec<_>>(),
        },
        "steps": rows.iter().map(StepRow::json).collect::<Vec<_>>(),
    });
    JourneyPlan {
        id: src.id.clone(),
        func: src.func.clone(),
        source: src.source.clone(),
        outline,
        trigger_text,
        conditions,
        candidates,
        triggers: vec![event],
        condition_events,
        registry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_follow_positions() {
        let steps = vec![
            Step::Send("a".into()),
            Step::If {
                branches: vec![
                    (Pred::Opened("a".into()), vec![Step::Send("b".into())]),
                    (Pred::Clicked("a".into()), vec![]),
                ],
                otherwise: vec![Step::Wait(60), Step::Exit],
            },
            Step::Emit("x.done".into()),
        ];
        let mut rows = Vec::new();
        let mut conds = Vec::new();
        flatten(&steps, "", None, &BTreeMap::new(), &mut rows, &mut conds);
        let ids: Vec<(&str, Option<&str>)> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.next.as_deref()))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("s1", Some("s2")),
                ("s2", Some("s3")),
                ("s2.then.s1", Some("s3")),
                ("s2.else.s1", Some("s2.else.s2")),
                ("s2.else.s2", None),
                ("s3", None),
            ]
        );
        match &conds[0] {
            CondUse::If { targets, .. } => assert_eq!(
                targets,
                &vec![
                    ("then".to_owned(), Some("s2.then.s1".to_owned())),
                    ("elif1".to_owned(), Some("s3".to_owned())),
                    ("else".to_owned(), Some("s2.else.s1".to_owned())),
                ]
            ),
            CondUse::WaitUntil(..) => panic!("expected an if"),
        }
    }
}
