//! Differential property test of the journey engine: a naive simulator written from
//! docs/language.md ("Runs and how they move") alone — per contact, per pass instant, one
//! run and one step at a time, conditions through the reference evaluator `compiler::eval` —
//! against the compiled SQL, over random small journeys × random event streams × random
//! tick schedules. Compared after the last tick: every run's status, exit reason and path
//! (the steps it executed with their outcomes), the messages with their steps, status and
//! skip reason, and the skipped enrolments by reason. `PROPTEST_CASES=N` runs a longer campaign.

mod support;

use std::collections::BTreeMap;

use hogsend_compiler::eval;
use hogsend_compiler::ir::{
    CmpOp, EntryPolicy, EventAtom, EventPred, EventTest, Journey, JourneyTrigger, Origin, Pred,
    Program, Prop, PropTest, Scalar, Step, Window,
};
use proptest::prelude::*;
use serde_json::Value;
use sqlx::Row;
use support::*;

const KEYS: [&str; 3] = ["k1", "k2", "k3"];
const MAX_AGE: Us = DAY;

// ------------------------------------------------------------------------------------------
// Generators
// ------------------------------------------------------------------------------------------

fn atom(event: &str, window: Window, test: EventTest) -> Pred {
    Pred::Event(EventAtom {
        event: event.to_owned(),
        filter: None,
        window,
        test,
    })
}

fn cond() -> impl Strategy<Value = Pred> {
    prop_oneof![
        Just(atom("x", Window::SinceEntry, EventTest::Exists)),
        Just(atom("x", Window::Within(DAY / SEC), EventTest::Exists)),
        Just(Pred::Not(Box::new(atom(
            "y",
            Window::Within(DAY / SEC),
            EventTest::Exists
        )))),
        Just(atom(
            "x",
            Window::SinceEntry,
            EventTest::Count(CmpOp::Ge, 2)
        )),
        Just(atom("y", Window::Ever, EventTest::Exists)),
        Just(Pred::Prop(Prop {
            path: vec!["vip".to_owned()],
            test: PropTest::Compare(CmpOp::Eq, Scalar::Bool(true)),
        })),
        // The triggering event's properties (`{"k": 0 | 1}`).
        Just(Pred::Trigger(Prop {
            path: vec!["k".to_owned()],
            test: PropTest::Compare(CmpOp::Eq, Scalar::Number("1".to_owned())),
        })),
        Just(Pred::Not(Box::new(Pred::Trigger(Prop {
            path: vec!["k".to_owned()],
            test: PropTest::Compare(CmpOp::Ge, Scalar::Number("1".to_owned())),
        })))),
    ]
}

fn leaf_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "c"]).prop_map(|t| Step::Send(t.to_owned())),
        2 => prop::sample::select(vec![6 * 3600, 86_400]).prop_map(Step::Wait),
        2 => (cond(), prop::sample::select(vec![86_400i64, 2 * 86_400]))
            .prop_map(|(cond, at_most)| Step::WaitUntil { cond, at_most }),
        1 => Just(Step::Exit),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let branch = || prop::collection::vec(leaf_step(), 0..3);
    let step = prop_oneof![
        4 => leaf_step(),
        1 => (cond(), branch(), prop::option::of(cond()), branch(), branch())
            .prop_map(|(c1, then, c2, elif, otherwise)| {
                let mut branches = vec![(c1, then)];
                if let Some(c2) = c2 {
                    branches.push((c2, elif));
                }
                Step::If { branches, otherwise }
            }),
    ];
    prop::collection::vec(step, 1..5)
}

#[derive(Debug, Clone)]
struct Case {
    journey: Journey,
    vip: [bool; 3],
    /// (contact index, name, k, minute)
    events: Vec<(usize, &'static str, i64, i64)>,
    /// Tick instants in minutes, ascending.
    ticks: Vec<i64>,
}

fn case() -> impl Strategy<Value = Case> {
    let entry = prop_oneof![
        Just(EntryPolicy::Once),
        Just(EntryPolicy::Unlimited),
        Just(EntryPolicy::OncePer(2 * 86_400)),
    ];
    let filter = prop::option::of(Just(EventPred::Prop(Prop {
        path: vec!["k".to_owned()],
        test: PropTest::Compare(CmpOp::Eq, Scalar::Number("1".to_owned())),
    })));
    let exit = prop::option::of(prop_oneof![
        Just(atom("stop", Window::Ever, EventTest::Exists)),
        Just(atom("y", Window::Within(DAY / SEC), EventTest::Exists)),
        Just(Pred::And(vec![
            atom("stop", Window::Ever, EventTest::Exists),
            Pred::Trigger(Prop {
                path: vec!["k".to_owned()],
                test: PropTest::Exists,
            }),
        ])),
    ]);
    let events = prop::collection::vec(
        (
            0..3usize,
            prop::sample::select(vec!["go", "go", "x", "y", "stop"]),
            0..2i64,
            0..(6 * 24 * 60i64),
        ),
        0..14,
    );
    let ticks = prop::collection::vec(1..(7 * 24 * 60i64), 2..9);
    (
        steps(),
        entry,
        filter,
        exit,
        any::<[bool; 3]>(),
        events,
        ticks,
    )
        .prop_map(
            |(steps, entry, filter, exit_when, vip, events, mut ticks)| {
                ticks.sort_unstable();
                ticks.dedup();
                ticks.push(8 * 24 * 60);
                Case {
                    journey: Journey {
                        id: "j".to_owned(),
                        name: None,
                        description: None,
                        trigger: JourneyTrigger::Event {
                            event: "go".to_owned(),
                            filter,
                        },
                        entry,
                        exit_when,
                        steps,
                        origin: Origin {
                            file: "j.hog".to_owned(),
                            line: 1,
                        },
                    },
                    vip,
                    events,
                    ticks,
                }
            },
        )
}

// ------------------------------------------------------------------------------------------
// The simulator
// ------------------------------------------------------------------------------------------

/// A flattened step: id, the step, where a run goes next.
struct Node<'a> {
    id: String,
    step: &'a Step,
    next: Option<String>,
    /// For an `if`: (label, condition, target) per branch, then the fallback.
    branches: Vec<(String, Option<&'a Pred>, Option<String>)>,
}

/// Step ids by position, as docs/language.md ("Step ids") defines them.
fn flatten<'a>(steps: &'a [Step], prefix: &str, after: Option<&str>, out: &mut Vec<Node<'a>>) {
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
        let mut node = Node {
            id: id.clone(),
            step,
            next: if matches!(step, Step::Exit) {
                None
            } else {
                next.clone()
            },
            branches: Vec::new(),
        };
        if let Step::If {
            branches,
            otherwise,
        } = step
        {
            for (k, (c, body)) in branches.iter().enumerate() {
                let label = if k == 0 {
                    "then".to_owned()
                } else {
                    format!("elif{k}")
                };
                let target = if body.is_empty() {
                    next.clone()
                } else {
                    Some(format!("{id}.{label}.s1"))
                };
                node.branches.push((label, Some(c), target));
            }
            if otherwise.is_empty() {
                node.branches.push(("none".to_owned(), None, next.clone()));
            } else {
                node.branches
                    .push(("else".to_owned(), None, Some(format!("{id}.else.s1"))));
            }
            out.push(node);
            for (k, (_, body)) in branches.iter().enumerate() {
                let label = if k == 0 {
                    "then".to_owned()
                } else {
                    format!("elif{k}")
                };
                flatten(body, &format!("{id}.{label}"), next.as_deref(), out);
            }
            flatten(otherwise, &format!("{id}.else"), next.as_deref(), out);
        } else {
            out.push(node);
        }
    }
}

#[derive(Debug, Clone)]
struct SimRun {
    key: usize,
    status: &'static str,
    step: Option<String>,
    reason: Option<&'static str>,
    entered: Us,
    arrived: Us,
    wake: Option<Us>,
    path: Vec<String>,
    /// The properties of the event that started the run.
    trigger: Value,
}

struct Sim<'a> {
    nodes: Vec<Node<'a>>,
    case: &'a Case,
    props: Vec<Value>,
    /// (contact, name, props, at) in insertion (id) order.
    events: Vec<(usize, String, Value, Us)>,
    processed: Vec<bool>,
    runs: Vec<SimRun>,
    /// (contact, run index, step id, template)
    messages: Vec<(usize, usize, String, String)>,
    skips: BTreeMap<String, u64>,
}

fn minutes(m: i64) -> Us {
    m * MIN
}

impl<'a> Sim<'a> {
    fn holds(&self, pred: &Pred, run: &SimRun, t: Us) -> bool {
        let (key, entered) = (run.key, run.entered);
        let events = self
            .events
            .iter()
            .filter(|e| e.0 == key)
            .map(|e| eval::Event {
                name: &e.1,
                properties: &e.2,
                occurred_at: e.3,
            })
            .collect();
        let contact = eval::Contact {
            properties: &self.props[key],
            events,
            messages: Vec::new(),
            entered_at: Some(entered),
            trigger: &run.trigger,
        };
        eval::holds(pred, &contact, t)
    }

    fn exit_holds(&self, run: &SimRun, t: Us) -> bool {
        // Inside `exit when`, an unwindowed event atom means `since entry`.
        fn since_entry(p: &Pred) -> Pred {
            match p {
                Pred::And(c) => Pred::And(c.iter().map(since_entry).collect()),
                Pred::Or(c) => Pred::Or(c.iter().map(since_entry).collect()),
                Pred::Not(i) => Pred::Not(Box::new(since_entry(i))),
                Pred::Event(a) if a.window == Window::Ever => Pred::Event(EventAtom {
                    window: Window::SinceEntry,
                    ..a.clone()
                }),
                other => other.clone(),
            }
        }
        self.case
            .journey
            .exit_when
            .as_ref()
            .is_some_and(|c| self.holds(&since_entry(c), run, t))
    }

    /// Moves one run as far as it goes at `t`.
    fn advance(&mut self, r: usize, t: Us) {
        loop {
            let run = self.runs[r].clone();
            if run.status != "active" && run.status != "waiting" {
                return;
            }
            if self.exit_holds(&run, t) {
                let run = &mut self.runs[r];
                run.status = "exited";
                run.reason = Some("exit_when");
                run.wake = None;
                return;
            }
            let Some(node) = self.nodes.iter().find(|n| Some(&n.id) == run.step.as_ref()) else {
                return;
            };
            let id = node.id.clone();
            let mut next = node.next.clone();
            let outcome: String;
            match node.step {
                Step::Send(template) => {
                    self.messages
                        .push((run.key, r, id.clone(), template.clone()));
                    outcome = template.clone();
                }
                Step::Wait(d) => {
                    let wake = run.arrived + secs(*d);
                    if wake > t {
                        self.park(r, wake);
                        return;
                    }
                    outcome = "elapsed".to_owned();
                }
                Step::WaitUntil { cond, at_most } => {
                    if self.holds(cond, &run, t) {
                        outcome = "condition".to_owned();
                    } else {
                        let wake = run.arrived + secs(*at_most);
                        if wake > t {
                            self.park(r, wake);
                            return;
                        }
                        outcome = "timeout".to_owned();
                    }
                }
                Step::If { .. } => {
                    let (label, target) = node
                        .branches
                        .iter()
                        .find(|(_, c, _)| c.is_none_or(|c| self.holds(c, &run, t)))
                        .map(|(l, _, target)| (l.clone(), target.clone()))
                        .unwrap_or_default();
                    outcome = label;
                    next = target;
                }
                Step::Exit => {
                    let run = &mut self.runs[r];
                    run.path.push(format!("{id}:"));
                    run.status = "exited";
                    run.reason = Some("exit_step");
                    run.wake = None;
                    return;
                }
                Step::WaitUntilTime { .. } | Step::Start(_) | Step::Emit(_) => {
                    unreachable!("not generated")
                }
            }
            let run = &mut self.runs[r];
            run.path.push(format!("{id}:{outcome}"));
            run.arrived = t;
            run.wake = None;
            match next {
                Some(n) => {
                    run.step = Some(n);
                    run.status = "active";
                }
                None => {
                    run.status = "completed";
                    return;
                }
            }
        }
    }

    fn park(&mut self, r: usize, wake: Us) {
        let run = &mut self.runs[r];
        run.status = "waiting";
        run.wake = Some(wake);
    }

    fn skip(&mut self, reason: &str) {
        *self.skips.entry(reason.to_owned()).or_default() += 1;
    }

    /// One pass at `t`.
    fn pass(&mut self, t: Us) {
        // 1. Runs in flight. A waiting run moves when released (condition or wake-up).
        for r in 0..self.runs.len() {
            let run = &self.runs[r];
            if run.status == "waiting" {
                let node = self.nodes.iter().find(|n| Some(&n.id) == run.step.as_ref());
                let released = run.wake.is_some_and(|w| w <= t)
                    || matches!(node.map(|n| n.step), Some(Step::WaitUntil { cond, .. })
                        if self.holds(cond, run, t));
                if released || self.exit_holds(run, t) {
                    // Re-enter the step: a released wait moves on below.
                    self.release(r, t);
                }
            } else if run.status == "active" {
                self.advance(r, t);
            }
        }
        // 2. Triggers in (occurred_at, id) order.
        let mut order: Vec<usize> = (0..self.events.len())
            .filter(|&i| !self.processed[i] && self.events[i].3 <= t)
            .collect();
        order.sort_by_key(|&i| (self.events[i].3, i));
        for i in order {
            self.processed[i] = true;
            let (key, name, props, at) = self.events[i].clone();
            if name != "go" {
                continue;
            }
            let j = &self.case.journey;
            if at < t - MAX_AGE {
                self.skip("too_old");
                continue;
            }
            if let JourneyTrigger::Event {
                filter: Some(f), ..
            } = &j.trigger
            {
                if !eval::event_pred_holds(&props, f) {
                    self.skip("filter");
                    continue;
                }
            }
            let mine: Vec<&SimRun> = self.runs.iter().filter(|r| r.key == key).collect();
            let in_flight = mine
                .iter()
                .any(|r| r.status == "active" || r.status == "waiting");
            let reason = match j.entry {
                EntryPolicy::Once if !mine.is_empty() => Some("entry_once"),
                EntryPolicy::OncePer(d) if mine.iter().any(|r| r.entered + secs(d) > at) => {
                    Some("entry_period")
                }
                EntryPolicy::Once | EntryPolicy::OncePer(_) if in_flight => Some("in_flight"),
                _ => None,
            };
            if let Some(reason) = reason {
                self.skip(reason);
                continue;
            }
            self.runs.push(SimRun {
                key,
                status: "active",
                step: self.nodes.first().map(|n| n.id.clone()),
                reason: None,
                entered: at,
                arrived: t,
                wake: None,
                path: Vec::new(),
                trigger: props,
            });
            let r = self.runs.len() - 1;
            if self.runs[r].step.is_none() {
                self.runs[r].status = "completed";
            }
            self.advance(r, t);
        }
    }

    /// A waiting run whose wait is over (or whose exit condition holds) at `t`.
    fn release(&mut self, r: usize, t: Us) {
        let run = self.runs[r].clone();
        if self.exit_holds(&run, t) {
            let run = &mut self.runs[r];
            run.status = "exited";
            run.reason = Some("exit_when");
            run.wake = None;
            return;
        }
        let node = self
            .nodes
            .iter()
            .find(|n| Some(&n.id) == run.step.as_ref())
            .expect("waiting at a known step");
        let outcome = match node.step {
            Step::Wait(_) => "elapsed",
            Step::WaitUntil { cond, .. } if self.holds(cond, &run, t) => "condition",
            _ => "timeout",
        };
        let id = node.id.clone();
        let next = node.next.clone();
        let run = &mut self.runs[r];
        run.path.push(format!("{id}:{outcome}"));
        run.arrived = t;
        run.wake = None;
        match next {
            Some(n) => {
                run.step = Some(n);
                run.status = "active";
                self.advance(r, t);
            }
            None => run.status = "completed",
        }
    }
}

// ------------------------------------------------------------------------------------------
// The comparison
// ------------------------------------------------------------------------------------------

async fn run_case(case: &Case) -> Result<(), TestCaseError> {
    let db = hogsend_runtime::testkit::TestDatabase::new().await;
    let mut conn = db.connect().await;
    let program = Program {
        journeys: vec![case.journey.clone()],
        ..Default::default()
    };
    deploy(&mut conn, "hogsend", &program).await;
    let mut props = Vec::new();
    for (i, key) in KEYS.iter().enumerate() {
        let p = serde_json::json!({ "vip": case.vip[i] });
        sqlx::query("insert into contacts (external_id, email, properties) values ($1, $2, $3)")
            .bind(key)
            // k3 has no address: its messages are recorded `skipped` (`no_email`).
            .bind((i < 2).then(|| format!("{key}@example.com")))
            .bind(&p)
            .execute(&mut conn)
            .await
            .expect("contact");
        props.push(p);
    }
    let mut sim = Sim {
        nodes: Vec::new(),
        case,
        props,
        events: Vec::new(),
        processed: Vec::new(),
        runs: Vec::new(),
        messages: Vec::new(),
        skips: BTreeMap::new(),
    };
    flatten(&case.journey.steps, "", None, &mut sim.nodes);
    // Every event is recorded before the first pass; each is processed by the first pass at
    // or after its occurred_at, and conditions see it only from then on.
    for (key, name, k, at) in &case.events {
        let p = serde_json::json!({ "k": k });
        sqlx::query(
            "insert into events (user_key, event, properties, occurred_at) values ($1, $2, $3, $4)",
        )
        .bind(KEYS[*key])
        .bind(*name)
        .bind(&p)
        .bind(ts(minutes(*at)))
        .execute(&mut conn)
        .await
        .expect("event");
        sim.events.push((*key, (*name).to_owned(), p, minutes(*at)));
        sim.processed.push(false);
    }
    for &m in &case.ticks {
        let t = minutes(m);
        tick(&mut conn, "hogsend", t).await;
        sim.pass(t);
    }

    // Runs, in creation order per contact (ids ascend with creation).
    let rows = sqlx::query(
        "select r.id, r.user_key, r.status, coalesce(r.exit_reason, '') as reason,
                coalesce((select string_agg(s.step_id || ':' || coalesce(s.outcome, ''), ' '
                                            order by s.executed_at, s.step_id)
                            from run_steps s where s.run_id = r.id and s.user_key = r.user_key), '') as path
           from runs r order by r.user_key, r.id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("runs");
    let sql_runs: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} [{}]",
                r.get::<String, _>("user_key"),
                r.get::<String, _>("status"),
                r.get::<String, _>("reason"),
                r.get::<String, _>("path"),
            )
        })
        .collect();
    let mut sim_order: Vec<usize> = (0..sim.runs.len()).collect();
    sim_order.sort_by_key(|&i| (sim.runs[i].key, i));
    let sim_runs: Vec<String> = sim_order
        .iter()
        .map(|&i| {
            let r = &sim.runs[i];
            format!(
                "{} {} {} [{}]",
                KEYS[r.key],
                r.status,
                r.reason.unwrap_or(""),
                r.path.join(" ")
            )
        })
        .collect();
    let mut sql_messages: Vec<String> = sqlx::query(
        "select m.user_key || ' ' || m.step_id || ' ' || m.template || ' ' || m.status
                || coalesce(' ' || m.skip_reason, '') as m
           from messages m order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("messages")
    .iter()
    .map(|r| r.get::<String, _>("m"))
    .collect();
    sql_messages.sort();
    let mut sim_messages: Vec<String> = sim
        .messages
        .iter()
        .map(|(k, _, step, t)| {
            let status = if *k < 2 { "queued" } else { "skipped no_email" };
            format!("{} {step} {t} {status}", KEYS[*k])
        })
        .collect();
    sim_messages.sort();
    let sql_skips: BTreeMap<String, u64> = sqlx::query("select reason, count from journey_skips")
        .fetch_all(&mut conn)
        .await
        .expect("skips")
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("reason"),
                r.get::<i64, _>("count") as u64,
            )
        })
        .collect();
    let context = || {
        format!(
            "journey: {:#?}\nevents: {:?}\nticks: {:?}",
            case.journey.steps, case.events, case.ticks
        )
    };
    prop_assert_eq!(sql_runs, sim_runs, "runs differ\n{}", context());
    prop_assert_eq!(sql_messages, sim_messages, "messages differ\n{}", context());
    prop_assert_eq!(sql_skips, sim.skips, "skips differ\n{}", context());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn journeys_match_the_simulator(case in case()) {
        RT.block_on(run_case(&case))?;
    }
}
