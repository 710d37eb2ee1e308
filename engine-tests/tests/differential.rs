//! Differential property test of the bucket engine: random criteria trees (every atom of
//! docs/language.md#conditions) over random data mutated between 3+ ticks (INSERTs, COPYs, late, future
//! and window-edge events, property updates, soft-deletes, opens/clicks, real-time
//! `apply_keys` passes); after every tick each bucket's `bucket_members` must be exactly the
//! contacts a naive evaluator written from the spec says match at that instant, and a
//! retried tick must change nothing.

mod support;

use hogsend_compiler::ir::{
    CmpOp, EventAtom, EventPred, EventTest, Pred, Prop, PropTest, Scalar, Window,
};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::BTreeSet;
use std::fmt;
use std::fmt::Write as _;
use support::*;

// ------------------------------------------------------------------------------------------
// Universes: small, so that generated criteria and data collide often
// ------------------------------------------------------------------------------------------

/// Event names: plain, spaced, `$`-prefixed, and one with quotes, a backslash and `$1`.
const EVENTS: [&str; 4] = [
    "app_opened",
    "Order Completed",
    "$pageview",
    "it's \"ü\" \\ $1",
];
/// Window lengths in seconds (30m, 2h, 1d, 3d); tick gaps and edge events use the same.
const WINDOWS: [i64; 4] = [1800, 7200, 86_400, 3 * 86_400];
const TEMPLATES: [&str; 2] = ["welcome", "digest"];
/// Top-level contact property keys.
const TOP_KEYS: [&str; 8] = [
    "plan",
    "age",
    "first name",
    "flag",
    "address",
    "o'k \"q\"",
    "ünï",
    "$1",
];
/// Keys used inside nested objects.
const INNER_KEYS: [&str; 4] = ["country", "geo", "lat", "tier"];
const CONTACT_PATHS: &[&[&str]] = &[
    &["plan"],
    &["age"],
    &["first name"],
    &["flag"],
    &["address"],
    &["address", "country"],
    &["address", "geo", "lat"],
    // runs through a string (or a number) most of the time
    &["plan", "tier"],
    &["o'k \"q\""],
    &["ünï"],
    &["$1"],
];
const EVENT_KEYS: [&str; 4] = ["amount", "plan", "meta", "it's"];
const EVENT_PATHS: &[&[&str]] = &[
    &["amount"],
    &["plan"],
    &["meta"],
    &["meta", "country"],
    &["it's"],
];
/// JSON numbers as stored (valid JSON spellings).
const DATA_NUMBERS: [&str; 12] = [
    "5", "5.0", "2.50", "2.5", "-0", "-0.0", "0", "7", "-3", "100", "1e2", "0.5E1",
];
/// Number literals as the checker hands them over (decimal text, any spelling).
const LIT_NUMBERS: [&str; 10] = [
    "5", "5.0", "007", "-0", "2.50", "2.5", "7", "-3", "100", "0",
];
const STRINGS: [&str; 12] = [
    "5",
    "pro",
    "Pro",
    "pro plan",
    "",
    "café",
    "true",
    "$1",
    "it's",
    "Paris",
    "a\\b",
    "say \"hi\"",
];
const NEEDLES: [&str; 9] = ["pro", "Pro", "", "é", "'", "5", "ari", "\\", "\""];

// ------------------------------------------------------------------------------------------
// Generated data
// ------------------------------------------------------------------------------------------

/// A JSON value from the small universes above.
#[derive(Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(&'static str),
    Str(&'static str),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    fn text(&self) -> String {
        match self {
            J::Null => "null".into(),
            J::Bool(b) => b.to_string(),
            J::Num(n) => (*n).into(),
            J::Str(s) => Value::String(s.to_string()).to_string(),
            J::Arr(items) => format!(
                "[{}]",
                items.iter().map(J::text).collect::<Vec<_>>().join(", ")
            ),
            J::Obj(pairs) => {
                let mut seen = BTreeSet::new();
                let fields: Vec<String> = pairs
                    .iter()
                    .filter(|(k, _)| seen.insert(*k))
                    .map(|(k, v)| format!("{}: {}", Value::String(k.to_string()), v.text()))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
        }
    }

    fn value(&self) -> Value {
        serde_json::from_str(&self.text()).expect("generated JSON parses")
    }
}

impl fmt::Debug for J {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

fn scalar_json() -> impl Strategy<Value = J> {
    prop_oneof![
        1 => Just(J::Null),
        1 => any::<bool>().prop_map(J::Bool),
        3 => select(&DATA_NUMBERS[..]).prop_map(J::Num),
        3 => select(&STRINGS[..]).prop_map(J::Str),
    ]
}

fn json_value() -> impl Strategy<Value = J> {
    scalar_json().prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            3 => prop::collection::vec((select(&INNER_KEYS[..]), inner.clone()), 0..3)
                .prop_map(J::Obj),
            1 => prop::collection::vec(inner, 0..3).prop_map(J::Arr),
        ]
    })
}

fn object(keys: &'static [&'static str]) -> impl Strategy<Value = J> {
    prop::collection::vec(prop::option::weighted(0.45, json_value()), keys.len()).prop_map(
        move |values| {
            J::Obj(
                keys.iter()
                    .zip(values)
                    .filter_map(|(k, v)| v.map(|v| (*k, v)))
                    .collect(),
            )
        },
    )
}

fn contact_props() -> impl Strategy<Value = J> {
    object(&TOP_KEYS)
}

fn event_props() -> impl Strategy<Value = J> {
    object(&EVENT_KEYS)
}

/// An instant relative to one of the case's ticks (index taken modulo the tick count).
#[derive(Clone, Copy, Debug, PartialEq)]
enum TimeSpec {
    Rel {
        tick: usize,
        offset: Us,
    },
    /// `T - D + delta` for a window length `D` of [`WINDOWS`]: on the edge and 1µs around it.
    Edge {
        tick: usize,
        window: usize,
        delta: Us,
    },
}

impl TimeSpec {
    fn resolve(&self, ticks: &[Us]) -> Us {
        match *self {
            TimeSpec::Rel { tick, offset } => ticks[tick % ticks.len()] + offset,
            TimeSpec::Edge {
                tick,
                window,
                delta,
            } => ticks[tick % ticks.len()] - secs(WINDOWS[window]) + delta,
        }
    }
}

fn time_spec() -> impl Strategy<Value = TimeSpec> {
    let offset = prop_oneof![
        3 => (-6 * 24 * 60..24 * 60i64).prop_map(|m| m * MIN),
        3 => (-3 * 60..60i64).prop_map(|m| m * MIN),
        1 => Just(0),
        1 => Just(1),
        1 => Just(-1),
        1 => -6 * DAY..DAY,
    ];
    prop_oneof![
        3 => (0..8usize, offset).prop_map(|(tick, offset)| TimeSpec::Rel { tick, offset }),
        2 => (0..8usize, 0..WINDOWS.len(), select(&[-1i64, 0, 1][..]))
            .prop_map(|(tick, window, delta)| TimeSpec::Edge { tick, window, delta }),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// `external_id` = a key with spaces, quotes, unicode or `$`.
    External,
    /// `anonymous_id` only.
    Anonymous,
    /// `email` only: the key is the contact's uuid.
    EmailOnly,
    /// No contact row: the first event creates it.
    EventOnly,
}

#[derive(Clone, Debug)]
struct Slot {
    kind: Kind,
    /// The step before whose tick the contact is created (EventOnly: never).
    created_step: usize,
    props: J,
}

fn slot() -> impl Strategy<Value = Slot> {
    (
        prop_oneof![
            4 => Just(Kind::External),
            2 => Just(Kind::Anonymous),
            1 => Just(Kind::EmailOnly),
            2 => Just(Kind::EventOnly),
        ],
        prop_oneof![3 => Just(0usize), 1 => 1..4usize],
        prop_oneof![1 => Just(J::Obj(vec![])), 4 => contact_props()],
    )
        .prop_map(|(kind, created_step, props)| Slot {
            kind,
            created_step,
            props,
        })
}

#[derive(Clone, Debug)]
struct Ev {
    slot: usize,
    name: usize,
    props: J,
    at: TimeSpec,
}

#[derive(Clone, Debug)]
enum Mutation {
    Events {
        copy: bool,
        events: Vec<Ev>,
    },
    SetProps {
        slot: usize,
        props: J,
    },
    Patch {
        slot: usize,
        key: &'static str,
        value: Option<J>,
    },
    Delete {
        slot: usize,
    },
    Message {
        slot: usize,
        template: usize,
        opened: Option<TimeSpec>,
        clicked: Option<TimeSpec>,
    },
    Open {
        message: usize,
        click: bool,
        at: TimeSpec,
    },
    /// Re-deploy with one bucket's criteria replaced by another of the case's (the next tick
    /// backfills it).
    Redeploy {
        bucket: usize,
        criteria: usize,
    },
    /// TRUNCATE the events (the next tick re-derives every bucket).
    TruncateEvents,
    /// DELETE a message (a retention purge).
    DeleteMessage {
        message: usize,
    },
    /// UPDATE an event's `occurred_at` (the n-th event, modulo the count).
    MoveEvent {
        event: usize,
        at: TimeSpec,
    },
    /// DELETE an event.
    DeleteEvent {
        event: usize,
    },
    /// DELETE the contact row itself (its events stay; a later event re-creates it).
    HardDelete {
        slot: usize,
    },
    /// An anonymous contact is identified: its `external_id` is set, so its key changes
    /// (events under the old key stay there).
    Identify {
        slot: usize,
    },
}

fn event() -> impl Strategy<Value = Ev> {
    (
        0..64usize,
        0..EVENTS.len(),
        prop_oneof![1 => Just(J::Obj(vec![])), 3 => event_props()],
        time_spec(),
    )
        .prop_map(|(slot, name, props, at)| Ev {
            slot,
            name,
            props,
            at,
        })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        32 => (any::<bool>(), prop::collection::vec(event(), 1..16))
            .prop_map(|(copy, events)| Mutation::Events { copy, events }),
        8 => (0..64usize, contact_props()).prop_map(|(slot, props)| Mutation::SetProps { slot, props }),
        12 => (0..64usize, select(&TOP_KEYS[..]), prop::option::weighted(0.8, json_value()))
            .prop_map(|(slot, key, value)| Mutation::Patch { slot, key, value }),
        4 => (0..64usize).prop_map(|slot| Mutation::Delete { slot }),
        8 => (
            0..64usize,
            0..TEMPLATES.len(),
            prop::option::weighted(0.4, time_spec()),
            prop::option::weighted(0.3, time_spec()),
        )
            .prop_map(|(slot, template, opened, clicked)| Mutation::Message {
                slot,
                template,
                opened,
                clicked,
            }),
        4 => (0..64usize, any::<bool>(), time_spec())
            .prop_map(|(message, click, at)| Mutation::Open { message, click, at }),
        4 => (0..64usize).prop_map(|message| Mutation::DeleteMessage { message }),
        4 => (0..8usize, 0..16usize).prop_map(|(bucket, criteria)| Mutation::Redeploy { bucket, criteria }),
        // rare: it empties most of the data
        1 => Just(Mutation::TruncateEvents),
        4 => (0..256usize, time_spec()).prop_map(|(event, at)| Mutation::MoveEvent { event, at }),
        4 => (0..256usize).prop_map(|event| Mutation::DeleteEvent { event }),
        4 => (0..64usize).prop_map(|slot| Mutation::HardDelete { slot }),
        4 => (0..64usize).prop_map(|slot| Mutation::Identify { slot }),
    ]
}

#[derive(Clone, Debug)]
struct Step {
    /// Time from the previous tick to this step's tick (ignored for the first).
    gap: Us,
    mutations: Vec<Mutation>,
    /// A real-time pass, halfway between the previous tick and this one, for these slots
    /// (plus a key that has no contact).
    apply_keys: Option<Vec<usize>>,
    /// That pass is the daemon's `apply_changes` (drains the queue, narrowed per bucket)
    /// rather than `apply_keys`.
    drain: bool,
}

fn step() -> impl Strategy<Value = Step> {
    let gap = prop_oneof![
        1 => Just(1i64),
        1 => Just(SEC),
        2 => select(&WINDOWS[..]).prop_map(secs),
        3 => (1..4 * 24 * 60i64).prop_map(|m| m * MIN),
        1 => 1..2 * DAY,
    ];
    (
        gap,
        prop::collection::vec(mutation(), 0..6),
        prop::option::weighted(0.35, prop::collection::vec(0..64usize, 1..6)),
        any::<bool>(),
    )
        .prop_map(|(gap, mutations, apply_keys, drain)| Step {
            gap,
            mutations,
            apply_keys,
            drain,
        })
}

// ------------------------------------------------------------------------------------------
// Generated criteria
// ------------------------------------------------------------------------------------------

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    select(
        &[
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Gt,
            CmpOp::Ge,
            CmpOp::Lt,
            CmpOp::Le,
        ][..],
    )
}

fn scalar() -> impl Strategy<Value = Scalar> {
    prop_oneof![
        3 => select(&STRINGS[..]).prop_map(|s| Scalar::String(s.into())),
        3 => select(&LIT_NUMBERS[..]).prop_map(|n| Scalar::Number(n.into())),
        1 => any::<bool>().prop_map(Scalar::Bool),
    ]
}

fn prop_test() -> impl Strategy<Value = PropTest> {
    prop_oneof![
        5 => (cmp_op(), scalar()).prop_map(|(op, v)| PropTest::Compare(op, v)),
        1 => Just(PropTest::Exists),
        1 => select(&NEEDLES[..]).prop_map(|s| PropTest::Contains(s.into())),
        1 => prop::collection::vec(scalar(), 1..4).prop_map(PropTest::In),
    ]
}

fn path(paths: &'static [&'static [&'static str]]) -> impl Strategy<Value = Vec<String>> {
    select(paths).prop_map(|p| p.iter().map(ToString::to_string).collect())
}

fn event_filter() -> impl Strategy<Value = EventPred> {
    (path(EVENT_PATHS), prop_test())
        .prop_map(|(path, test)| EventPred::Prop(Prop { path, test }))
        .prop_recursive(2, 6, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..=3).prop_map(EventPred::And),
                prop::collection::vec(inner.clone(), 2..=3).prop_map(EventPred::Or),
                inner.prop_map(|x| EventPred::Not(Box::new(x))),
            ]
        })
}

fn atom() -> impl Strategy<Value = Pred> {
    let window = prop_oneof![
        1 => Just(Window::Ever),
        2 => select(&WINDOWS[..]).prop_map(Window::Within),
    ];
    let test = prop_oneof![
        2 => Just(EventTest::Exists),
        1 => (cmp_op(), -1..4i64).prop_map(|(op, n)| EventTest::Count(op, n)),
    ];
    let event = (
        select(&EVENTS[..]),
        prop::option::weighted(0.35, event_filter()),
        window,
        test,
    )
        .prop_map(|(event, filter, window, test)| {
            Pred::Event(EventAtom {
                event: event.into(),
                filter,
                window,
                test,
            })
        });
    let contact =
        (path(CONTACT_PATHS), prop_test()).prop_map(|(path, test)| Pred::Prop(Prop { path, test }));
    prop_oneof![
        5 => event,
        4 => contact,
        1 => select(&TEMPLATES[..]).prop_map(|t| Pred::Opened(t.into())),
        1 => select(&TEMPLATES[..]).prop_map(|t| Pred::Clicked(t.into())),
    ]
}

fn tree() -> impl Strategy<Value = Pred> {
    atom().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..=3).prop_map(Pred::And),
            prop::collection::vec(inner.clone(), 2..=3).prop_map(Pred::Or),
            inner.prop_map(not),
        ]
    })
}

/// A criteria the checker would accept: one that is false for the empty contact (a tree
/// true for it is conjoined with an atom that is false for it).
fn criteria() -> impl Strategy<Value = Pred> {
    (
        tree(),
        atom().prop_filter("false for the empty contact", |a| !eval_empty(a)),
    )
        .prop_map(|(p, guard)| {
            if eval_empty(&p) {
                and(vec![p, guard])
            } else {
                p
            }
        })
}

// ------------------------------------------------------------------------------------------
// A case
// ------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Case {
    buckets: Vec<Pred>,
    slots: Vec<Slot>,
    steps: Vec<Step>,
}

impl Case {
    fn ticks(&self) -> Vec<Us> {
        let mut t = 10 * DAY;
        let mut out = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                t += step.gap;
            }
            out.push(t);
        }
        out
    }

    /// The contact key of a slot that needs no database round trip.
    fn static_key(&self, slot: usize) -> Option<String> {
        let tag = ["u", "u ü ", "o'k\"", "$1-"][slot % 4];
        match self.slots[slot].kind {
            Kind::External => Some(format!("{tag}{slot}")),
            Kind::Anonymous => Some(format!("anon {slot}")),
            Kind::EventOnly => Some(format!("ev-{slot}")),
            Kind::EmailOnly => None,
        }
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(criteria(), 6..=10),
        prop::collection::vec(slot(), 5..=30),
        prop::collection::vec(step(), 3..=5),
    )
        .prop_map(|(buckets, slots, steps)| Case {
            buckets,
            slots,
            steps,
        })
}

fn show_time(t: &TimeSpec, ticks: &[Us]) -> String {
    let at = show_us(t.resolve(ticks));
    match t {
        TimeSpec::Rel { tick, .. } => format!("{at} (near tick {})", tick % ticks.len()),
        TimeSpec::Edge {
            tick,
            window,
            delta,
        } => format!(
            "{at} (= tick {} - {}s {:+}µs)",
            tick % ticks.len(),
            WINDOWS[*window],
            delta
        ),
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ticks = self.ticks();
        let n = self.slots.len();
        writeln!(f, "Case {{")?;
        for (i, p) in self.buckets.iter().enumerate() {
            writeln!(f, "  bucket b{i} {{ criteria {} }}", hog(p))?;
        }
        for (i, s) in self.slots.iter().enumerate() {
            writeln!(
                f,
                "  slot {i}: {:?} key {:?}, created before tick {}, props {}",
                s.kind,
                self.static_key(i).unwrap_or_else(|| "<uuid>".into()),
                s.created_step,
                s.props.text()
            )?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "  before tick {i} at {}:", show_us(ticks[i]))?;
            for m in &step.mutations {
                match m {
                    Mutation::Events { copy, events } => {
                        writeln!(f, "    {}:", if *copy { "COPY" } else { "INSERT" })?;
                        for e in events {
                            writeln!(
                                f,
                                "      slot {} {:?} at {} props {}",
                                e.slot % n,
                                EVENTS[e.name],
                                show_time(&e.at, &ticks),
                                e.props.text()
                            )?;
                        }
                    }
                    Mutation::SetProps { slot, props } => {
                        writeln!(f, "    set slot {} props = {}", slot % n, props.text())?;
                    }
                    Mutation::Patch { slot, key, value } => writeln!(
                        f,
                        "    patch slot {} {key:?} = {}",
                        slot % n,
                        value.as_ref().map_or("<removed>".into(), J::text)
                    )?,
                    Mutation::Delete { slot } => writeln!(f, "    delete slot {}", slot % n)?,
                    Mutation::Message {
                        slot,
                        template,
                        opened,
                        clicked,
                    } => writeln!(
                        f,
                        "    message slot {} {:?} opened {:?} clicked {:?}",
                        slot % n,
                        TEMPLATES[*template],
                        opened.map(|t| show_time(&t, &ticks)),
                        clicked.map(|t| show_time(&t, &ticks))
                    )?,
                    Mutation::Open { message, click, at } => writeln!(
                        f,
                        "    {} message #{message} (mod count) at {}",
                        if *click { "click" } else { "open" },
                        show_time(at, &ticks)
                    )?,
                    Mutation::MoveEvent { event, at } => writeln!(
                        f,
                        "    move event #{event} (mod count) to {}",
                        show_time(at, &ticks)
                    )?,
                    Mutation::DeleteEvent { event } => {
                        writeln!(f, "    delete event #{event} (mod count)")?;
                    }
                    Mutation::DeleteMessage { message } => {
                        writeln!(f, "    delete message #{message} (mod count)")?;
                    }
                    Mutation::Redeploy { bucket, criteria } => writeln!(
                        f,
                        "    redeploy: deployed bucket #{bucket} (mod count) gets criteria {}",
                        hog(&self.buckets[criteria % self.buckets.len()])
                    )?,
                    Mutation::TruncateEvents => writeln!(f, "    TRUNCATE events")?,
                    Mutation::HardDelete { slot } => {
                        writeln!(f, "    DELETE contact of slot {}", slot % n)?;
                    }
                    Mutation::Identify { slot } => writeln!(
                        f,
                        "    identify slot {} (if anonymous) as \"id-{}\"",
                        slot % n,
                        slot % n
                    )?,
                }
            }
            if let (Some(keys), true) = (&step.apply_keys, i > 0) {
                writeln!(
                    f,
                    "    apply_keys slots {:?} + a ghost key",
                    keys.iter().map(|k| k % n).collect::<Vec<_>>()
                )?;
            }
        }
        write!(f, "}}")
    }
}

// ------------------------------------------------------------------------------------------
// The model side of a case: the data as the test believes the database holds it
// ------------------------------------------------------------------------------------------

struct Model<'a> {
    case: &'a Case,
    ticks: Vec<Us>,
    world: World,
    /// Resolved contact key per slot (email-only ones once created).
    keys: Vec<Option<String>>,
}

impl<'a> Model<'a> {
    fn new(case: &'a Case) -> Self {
        Model {
            case,
            ticks: case.ticks(),
            world: World::default(),
            keys: (0..case.slots.len()).map(|i| case.static_key(i)).collect(),
        }
    }

    fn key(&self, slot: usize) -> Option<String> {
        self.keys[slot % self.keys.len()].clone()
    }

    fn events(&self, events: &[Ev]) -> Vec<Event> {
        events
            .iter()
            .filter_map(|e| {
                Some(Event {
                    key: self.key(e.slot)?,
                    name: EVENTS[e.name].into(),
                    props: e.props.text(),
                    at: e.at.resolve(&self.ticks),
                })
            })
            .collect()
    }

    /// Creates slot `i`'s contact under `key`; false when it existed (an event created it),
    /// in which case its properties are replaced instead.
    fn create(&mut self, i: usize, key: String) -> bool {
        let props = self.case.slots[i].props.value();
        self.keys[i] = Some(key.clone());
        if let Some(c) = self.world.contacts.get_mut(&key) {
            c.props = props;
            return false;
        }
        self.world.contacts.insert(
            key.clone(),
            Contact {
                key,
                props,
                deleted: false,
            },
        );
        true
    }

    fn apply(&mut self, m: &Mutation) {
        match m {
            Mutation::Events { events, .. } => {
                let rows = self.events(events);
                self.world.add_events(&rows);
            }
            Mutation::SetProps { slot, props } => {
                if let Some(c) = self
                    .key(*slot)
                    .and_then(|k| self.world.contacts.get_mut(&k))
                {
                    c.props = props.value();
                }
            }
            Mutation::Patch {
                slot,
                key: field,
                value,
            } => {
                if let Some(c) = self
                    .key(*slot)
                    .and_then(|k| self.world.contacts.get_mut(&k))
                {
                    let o = c.props.as_object_mut().expect("object");
                    match value {
                        Some(v) => {
                            o.insert(field.to_string(), v.value());
                        }
                        None => {
                            o.remove(*field);
                        }
                    }
                }
            }
            Mutation::Delete { slot } => {
                if let Some(c) = self
                    .key(*slot)
                    .and_then(|k| self.world.contacts.get_mut(&k))
                {
                    c.deleted = true;
                }
            }
            Mutation::Message {
                slot,
                template,
                opened,
                clicked,
            } => {
                if let Some(key) = self.key(*slot) {
                    self.world.messages.push(Message {
                        key,
                        template: TEMPLATES[*template].into(),
                        opened_at: opened.map(|t| t.resolve(&self.ticks)),
                        clicked_at: clicked.map(|t| t.resolve(&self.ticks)),
                    });
                }
            }
            Mutation::Open { message, click, at } => {
                if self.world.messages.is_empty() {
                    return;
                }
                let at = at.resolve(&self.ticks);
                let index = message % self.world.messages.len();
                let m = &mut self.world.messages[index];
                let slot = if *click {
                    &mut m.clicked_at
                } else {
                    &mut m.opened_at
                };
                slot.get_or_insert(at);
            }
            Mutation::MoveEvent { event, at } => {
                if !self.world.events.is_empty() {
                    let index = event % self.world.events.len();
                    self.world.events[index].at = at.resolve(&self.ticks);
                }
            }
            Mutation::Redeploy { .. } => {}
            Mutation::TruncateEvents => self.world.events.clear(),
            Mutation::DeleteMessage { message } => {
                if !self.world.messages.is_empty() {
                    let index = message % self.world.messages.len();
                    self.world.messages.remove(index);
                }
            }
            Mutation::DeleteEvent { event } => {
                if !self.world.events.is_empty() {
                    let index = event % self.world.events.len();
                    self.world.events.remove(index);
                }
            }
            Mutation::HardDelete { slot } => {
                if let Some(key) = self.key(*slot) {
                    self.world.contacts.remove(&key);
                }
            }
            Mutation::Identify { slot } => {
                if let Some((old, new)) = self.identify_keys(*slot) {
                    if let Some(mut c) = self.world.contacts.remove(&old) {
                        c.key = new.clone();
                        self.world.contacts.insert(new.clone(), c);
                        let i = slot % self.keys.len();
                        self.keys[i] = Some(new);
                    }
                }
            }
        }
    }

    /// For an anonymous slot not yet identified: its current and its identified key.
    fn identify_keys(&self, slot: usize) -> Option<(String, String)> {
        let i = slot % self.keys.len();
        let old = self.keys[i].clone()?;
        (self.case.slots[i].kind == Kind::Anonymous && old.starts_with("anon "))
            .then(|| (old, format!("id-{i}")))
    }
}

/// Which of the case's criteria are worth deploying: those that hold for some contact at
/// some tick (random trees are often unsatisfiable on small data). Runs the case on the
/// model alone, with stand-in keys for email-only contacts.
fn interesting(case: &Case) -> Vec<usize> {
    let mut model = Model::new(case);
    let mut hits = vec![0usize; case.buckets.len()];
    let mut flips = vec![0usize; case.buckets.len()];
    let mut previous: Vec<BTreeSet<String>> = vec![BTreeSet::new(); case.buckets.len()];
    for (i, step) in case.steps.iter().enumerate() {
        for j in 0..case.slots.len() {
            let slot = &case.slots[j];
            if slot.kind != Kind::EventOnly && slot.created_step == i {
                let key = model.key(j).unwrap_or_else(|| format!("email-only-{j}"));
                model.create(j, key);
            }
        }
        for m in &step.mutations {
            model.apply(m);
        }
        for (b, p) in case.buckets.iter().enumerate() {
            let now = model.world.matching(p, model.ticks[i]);
            hits[b] += now.len();
            flips[b] += now.symmetric_difference(&previous[b]).count();
            previous[b] = now;
        }
    }
    // The liveliest first: most joins and leaves, then most members.
    let mut chosen: Vec<usize> = (0..case.buckets.len()).filter(|b| hits[*b] > 0).collect();
    chosen.sort_by_key(|b| {
        (
            std::cmp::Reverse(flips[*b]),
            std::cmp::Reverse(hits[*b]),
            *b,
        )
    });
    chosen.truncate(5);
    // Keep one that never matches, too: staying empty is also behaviour.
    if let Some(b) = (0..case.buckets.len()).find(|b| hits[*b] == 0) {
        chosen.push(b);
    }
    chosen
}

// ------------------------------------------------------------------------------------------
// Running a case against Postgres and the model
// ------------------------------------------------------------------------------------------

const SCHEMA: &str = "hs_diff";

struct Run<'a> {
    model: Model<'a>,
    conn: PgConnection,
    /// The deployed buckets: (id, criteria).
    buckets: Vec<(String, Pred)>,
    /// Buckets the next tick backfills (the real-time pass skips them until then).
    unsettled: BTreeSet<String>,
    /// The last tick before the last TRUNCATE of events (whose `bucket:*` events it removed).
    events_truncated_after: Option<Us>,
    /// The last tick's instant.
    last_tick: Option<Us>,
    /// What happened so far, for failure messages.
    log: String,
}

impl Run<'_> {
    async fn create_slot(&mut self, i: usize) {
        let slot = &self.model.case.slots[i];
        let props = slot.props.text();
        let s = q(SCHEMA);
        if slot.kind == Kind::EmailOnly {
            let key: String = sqlx::query_scalar(&format!(
                "insert into {s}.contacts (email, properties) values ($1, $2::jsonb) returning user_key"
            ))
            .bind(format!("slot{i}@example.test"))
            .bind(&props)
            .fetch_one(&mut self.conn)
            .await
            .expect("create email-only contact");
            let _ = writeln!(self.log, "  slot {i} (email-only) has key {key:?}");
            self.model.create(i, key);
            return;
        }
        let key = self.model.key(i).expect("static key");
        if !self.model.create(i, key.clone()) {
            // An event created it already: the "creation" is an identify (a props update).
            set_props(&mut self.conn, SCHEMA, &key, &props).await;
            return;
        }
        let column = match slot.kind {
            Kind::Anonymous => "anonymous_id",
            _ => "external_id",
        };
        sqlx::query(&format!(
            "insert into {s}.contacts ({column}, properties) values ($1, $2::jsonb)"
        ))
        .bind(&key)
        .bind(&props)
        .execute(&mut self.conn)
        .await
        .expect("create contact");
    }

    async fn apply(&mut self, m: &Mutation) {
        let s = q(SCHEMA);
        let ticks = self.model.ticks.clone();
        match m {
            Mutation::Events { copy, events } => {
                let rows = self.model.events(events);
                if *copy {
                    copy_events(&mut self.conn, SCHEMA, &rows).await;
                } else {
                    insert_events(&mut self.conn, SCHEMA, &rows).await;
                }
            }
            Mutation::SetProps { slot, props } => {
                if let Some(key) = self.model.key(*slot) {
                    set_props(&mut self.conn, SCHEMA, &key, &props.text()).await;
                }
            }
            Mutation::Patch {
                slot,
                key: field,
                value,
            } => {
                if let Some(key) = self.model.key(*slot) {
                    let set = format!(
                        "update {s}.contacts set properties = properties || jsonb_build_object($2::text, $3::jsonb) \
                         where user_key = $1"
                    );
                    let remove = format!(
                        "update {s}.contacts set properties = properties - $2::text where user_key = $1"
                    );
                    let query = match value {
                        Some(v) => sqlx::query(&set).bind(key).bind(*field).bind(v.text()),
                        None => sqlx::query(&remove).bind(key).bind(*field),
                    };
                    query.execute(&mut self.conn).await.expect("patch");
                }
            }
            Mutation::Delete { slot } => {
                if let Some(key) = self.model.key(*slot) {
                    soft_delete(&mut self.conn, SCHEMA, &key).await;
                }
            }
            Mutation::Message {
                slot,
                template,
                opened,
                clicked,
            } => {
                if let Some(key) = self.model.key(*slot) {
                    sqlx::query(&format!(
                        "insert into {s}.messages (user_key, template, opened_at, clicked_at) values ($1, $2, $3, $4)"
                    ))
                    .bind(&key)
                    .bind(TEMPLATES[*template])
                    .bind(opened.map(|t| ts(t.resolve(&ticks))))
                    .bind(clicked.map(|t| ts(t.resolve(&ticks))))
                    .execute(&mut self.conn)
                    .await
                    .expect("insert message");
                }
            }
            Mutation::Open { message, click, at } => {
                let count = self.model.world.messages.len();
                if count > 0 {
                    let column = if *click { "clicked_at" } else { "opened_at" };
                    sqlx::query(&format!(
                        "update {s}.messages set {column} = coalesce({column}, $2) \
                         where id = (select id from {s}.messages order by id offset $1 limit 1)"
                    ))
                    .bind((message % count) as i64)
                    .bind(ts(at.resolve(&ticks)))
                    .execute(&mut self.conn)
                    .await
                    .expect("open message");
                }
            }
            // Events are addressed by their position in insertion (id) order, as in the model.
            Mutation::MoveEvent { event, at } => {
                let count = self.model.world.events.len();
                if count > 0 {
                    sqlx::query(&format!(
                        "update {s}.events set occurred_at = $2 \
                         where id = (select id from {s}.events where event not like 'bucket:%' \
                                     order by id offset $1 limit 1)"
                    ))
                    .bind((event % count) as i64)
                    .bind(ts(at.resolve(&ticks)))
                    .execute(&mut self.conn)
                    .await
                    .expect("move event");
                }
            }
            Mutation::DeleteEvent { event } => {
                let count = self.model.world.events.len();
                if count > 0 {
                    sqlx::query(&format!(
                        "delete from {s}.events \
                         where id = (select id from {s}.events where event not like 'bucket:%' \
                                     order by id offset $1 limit 1)"
                    ))
                    .bind((event % count) as i64)
                    .execute(&mut self.conn)
                    .await
                    .expect("delete event");
                }
            }
            Mutation::Redeploy {
                bucket: which,
                criteria,
            } => {
                let i = which % self.buckets.len();
                let p = self.model.case.buckets[criteria % self.model.case.buckets.len()].clone();
                let _ = writeln!(
                    self.log,
                    "  redeploy {} with criteria {}",
                    self.buckets[i].0,
                    hog(&p)
                );
                self.buckets[i].1 = p;
                let report = deploy(
                    &mut self.conn,
                    SCHEMA,
                    &program(
                        self.buckets
                            .iter()
                            .map(|(id, p)| bucket(id, p.clone()))
                            .collect(),
                    ),
                )
                .await;
                self.unsettled.extend(report.changed);
            }
            Mutation::TruncateEvents => {
                sqlx::query(&format!("truncate {s}.events"))
                    .execute(&mut self.conn)
                    .await
                    .expect("truncate");
                self.unsettled
                    .extend(self.buckets.iter().map(|(id, _)| id.clone()));
                self.events_truncated_after = self.last_tick;
                let _ = writeln!(self.log, "  TRUNCATE events");
            }
            Mutation::DeleteMessage { message } => {
                let count = self.model.world.messages.len();
                if count > 0 {
                    sqlx::query(&format!(
                        "delete from {s}.messages \
                         where id = (select id from {s}.messages order by id offset $1 limit 1)"
                    ))
                    .bind((message % count) as i64)
                    .execute(&mut self.conn)
                    .await
                    .expect("delete message");
                }
            }
            Mutation::HardDelete { slot } => {
                if let Some(key) = self.model.key(*slot) {
                    sqlx::query(&format!("delete from {s}.contacts where user_key = $1"))
                        .bind(key)
                        .execute(&mut self.conn)
                        .await
                        .expect("hard delete");
                }
            }
            Mutation::Identify { slot } => {
                if let Some((old, new)) = self.model.identify_keys(*slot) {
                    sqlx::query(&format!(
                        "update {s}.contacts set external_id = $2 where user_key = $1"
                    ))
                    .bind(&old)
                    .bind(&new)
                    .execute(&mut self.conn)
                    .await
                    .expect("identify");
                }
            }
        }
        self.model.apply(m);
    }

    fn fail(&self, what: &str, keys: &BTreeSet<String>) -> TestCaseError {
        let mut msg = format!("{what}\n");
        for k in keys {
            let _ = writeln!(msg, "  {}", self.model.world.describe(k));
        }
        let _ = write!(msg, "history:\n{}", self.log);
        TestCaseError::fail(msg)
    }

    /// Every bucket's members equal the model's matching contacts at `t`.
    async fn check_members(&mut self, t: Us, when: &str) -> Result<(), TestCaseError> {
        let actual = members(&mut self.conn, SCHEMA).await;
        for (id, p) in &self.buckets {
            let expected = self.model.world.matching(p, t);
            let got = actual.get(id).cloned().unwrap_or_default();
            if expected != got {
                let diff: BTreeSet<String> = expected.symmetric_difference(&got).cloned().collect();
                return Err(self.fail(
                    &format!(
                        "{when} at {}: bucket {id} {{ criteria {} }}\n  {}",
                        show_us(t),
                        hog(p),
                        set_diff(&expected, &got)
                    ),
                    &diff,
                ));
            }
        }
        let deleted_members: i64 = sqlx::query_scalar(&format!(
            "select count(*) from {s}.bucket_members m join {s}.contacts c using (user_key) \
             where c.deleted_at is not null",
            s = q(SCHEMA)
        ))
        .fetch_one(&mut self.conn)
        .await
        .expect("deleted members");
        prop_assert_eq!(deleted_members, 0, "deleted contacts are in no bucket");
        if let Err(e) = check_log(&mut self.conn, SCHEMA, self.events_truncated_after).await {
            return Err(self.fail(&format!("{when} at {}: {e}", show_us(t)), &BTreeSet::new()));
        }
        Ok(())
    }

    /// `hogsend why` agrees with the matcher and the naive evaluator: for every bucket and
    /// contact, its verdict at `t` is the contact's membership after the tick at `t` (these
    /// buckets have no policy), every node's value is the naive evaluator's for that node of
    /// the normalized criteria, and the next change by the clock alone is exactly the first
    /// instant at which the naive answer differs.
    async fn check_why(&mut self, t: Us) -> Result<(), TestCaseError> {
        let actual = members(&mut self.conn, SCHEMA).await;
        let keys: Vec<String> = self.model.world.contacts.keys().cloned().collect();
        for (id, p) in self.buckets.clone() {
            let normalized = hogsend_compiler::plan::normalize::normalize(&p);
            for key in &keys {
                let why =
                    match hogsend_runtime::db::why(&mut self.conn, SCHEMA, &id, key, Some(ts(t)))
                        .await
                        .expect("why")
                    {
                        hogsend_runtime::db::Why::Explained(why) => why,
                        other => panic!("why {id} {key:?}: {other:?}"),
                    };
                let member = actual.get(&id).is_some_and(|m| m.contains(key));
                let fail = |run: &Self, what: String| {
                    run.fail(
                        &format!(
                            "why {id} {key:?} at {}: {what}\n  criteria {}\n  why {why:#}",
                            show_us(t),
                            hog(&normalized)
                        ),
                        &BTreeSet::from([key.clone()]),
                    )
                };
                if why["matches"].as_bool() != Some(member) {
                    return Err(fail(self, format!("verdict is not membership ({member})")));
                }
                let Some((view, _)) = self.model.world.view(key) else {
                    continue;
                };
                if let Err(e) = why_node_agrees(&normalized, &why["criteria"], &view, t) {
                    return Err(fail(self, e));
                }
                let now = eval(&normalized, &view, t);
                if let Some(next) = why["next_change_at"].as_str() {
                    let next = us_of(
                        chrono::DateTime::parse_from_rfc3339(next)
                            .expect("instant")
                            .to_utc(),
                    );
                    if next <= t
                        || eval(&normalized, &view, next) == now
                        || eval(&normalized, &view, next - 1) != now
                    {
                        return Err(fail(
                            self,
                            format!("next_change_at {} is not the first change", show_us(next)),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A real-time pass for some keys at `at`. `apply_keys` (`drain` false) evaluates every
    /// bucket for every given key, so those keys' memberships become exact at `at` (the
    /// others are left to the next tick). The daemon's `apply_changes` (`drain` true) drains
    /// their queued changes and evaluates each bucket only for the keys whose changes it can
    /// see, so it need not make every membership exact — but every membership it changes
    /// must be right at `at`, it touches no other key, and the next tick (checked as always)
    /// must still see everything it drained.
    async fn real_time_pass(
        &mut self,
        slots: &[usize],
        at: Us,
        drain: bool,
    ) -> Result<(), TestCaseError> {
        let mut keys: Vec<String> = slots.iter().filter_map(|s| self.model.key(*s)).collect();
        keys.push("ghost key".into());
        let before = members(&mut self.conn, SCHEMA).await;
        let (name, summary) = if drain {
            let r = hogsend_runtime::db::apply_changes(&mut self.conn, SCHEMA, &keys, Some(ts(at)));
            ("apply_changes", r.await)
        } else {
            let r = hogsend_runtime::db::apply_keys(&mut self.conn, SCHEMA, &keys, Some(ts(at)));
            ("apply_keys", r.await)
        };
        let summary = summary.map_err(|e| TestCaseError::fail(format!("{name} failed: {e}")))?;
        let _ = writeln!(
            self.log,
            "  {name} {keys:?} at {}: {}",
            show_us(at),
            summary["buckets"]
        );
        let after = members(&mut self.conn, SCHEMA).await;
        for (id, p) in &self.buckets {
            if self.unsettled.contains(id) {
                continue;
            }
            let was = before.get(id).cloned().unwrap_or_default();
            let is = after.get(id).cloned().unwrap_or_default();
            let changed: BTreeSet<&String> = was.symmetric_difference(&is).collect();
            for key in &changed {
                prop_assert!(
                    keys.contains(key),
                    "{name} changed {key:?} in {id}, a key it was not given"
                );
            }
            let checked: Vec<&String> = if drain {
                changed.into_iter().collect()
            } else {
                keys.iter().collect()
            };
            for key in checked {
                let expected = self.model.world.holds(p, key, at);
                if expected != is.contains(key) {
                    return Err(self.fail(
                        &format!(
                            "after {name} at {}: bucket {id} {{ criteria {} }}: {key:?} should {}be a member",
                            show_us(at),
                            hog(p),
                            if expected { "" } else { "not " }
                        ),
                        &BTreeSet::from([key.clone()]),
                    ));
                }
            }
        }
        Ok(())
    }
}

async fn run_case(case: &Case) -> Result<(), TestCaseError> {
    let tdb = hogsend_runtime::testkit::TestDatabase::new().await;
    let mut conn = tdb
        .connect_to(&hogsend_schema::SchemaName::new(SCHEMA).unwrap())
        .await;
    let buckets: Vec<(String, Pred)> = interesting(case)
        .into_iter()
        .map(|i| (format!("b{i}"), case.buckets[i].clone()))
        .collect();
    deploy(
        &mut conn,
        SCHEMA,
        &program(
            buckets
                .iter()
                .map(|(id, p)| bucket(id, p.clone()))
                .collect(),
        ),
    )
    .await;
    let mut run = Run {
        model: Model::new(case),
        conn,
        buckets,
        unsettled: BTreeSet::new(),
        events_truncated_after: None,
        last_tick: None,
        log: String::new(),
    };
    let stats = std::env::var_os("DIFF_STATS").is_some();
    for (i, step) in case.steps.iter().enumerate() {
        let t = run.model.ticks[i];
        for j in 0..case.slots.len() {
            let slot = &case.slots[j];
            if slot.kind != Kind::EventOnly && slot.created_step == i {
                run.create_slot(j).await;
            }
        }
        for m in &step.mutations {
            run.apply(m).await;
        }
        if let (Some(slots), true) = (&step.apply_keys, i > 0) {
            let previous = run.model.ticks[i - 1];
            if t - previous >= 2 {
                let at = previous + (t - previous) / 2;
                run.real_time_pass(slots, at, step.drain).await?;
            }
        }
        let summary = tick(&mut run.conn, SCHEMA, t).await;
        run.unsettled.clear();
        run.last_tick = Some(t);
        let _ = writeln!(
            run.log,
            "  tick {i} at {}: {}",
            show_us(t),
            summary["buckets"]
        );
        run.check_members(t, &format!("after tick {i}")).await?;
        run.check_why(t).await?;
        if stats {
            let m = members(&mut run.conn, SCHEMA).await;
            let sizes: Vec<usize> = run
                .buckets
                .iter()
                .map(|(id, _)| m.get(id).map_or(0, BTreeSet::len))
                .collect();
            eprintln!(
                "STATS tick {i}: {} contacts, members {sizes:?}, passes {}",
                run.model.world.contacts.len(),
                summary["passes"]
            );
        }

        // A retried tick at the same instant changes nothing.
        let before = transitions(&mut run.conn, SCHEMA).await.len();
        let summary = tick(&mut run.conn, SCHEMA, t).await;
        let after = transitions(&mut run.conn, SCHEMA).await;
        if after.len() != before {
            let new: Vec<String> = after[before..].iter().map(ToString::to_string).collect();
            return Err(run.fail(
                &format!(
                    "a retried tick at {} recorded transitions: {new:#?}\n  summary {summary}",
                    show_us(t)
                ),
                &BTreeSet::new(),
            ));
        }
        run.check_members(t, &format!("after retrying tick {i}"))
            .await?;
    }
    Ok(())
}

/// Every node of `why`'s tree has the naive evaluator's value for the node of `p` it
/// explains, and event atoms count what the evaluator counts.
fn why_node_agrees(p: &Pred, node: &Value, view: &View, t: Us) -> Result<(), String> {
    let expected = eval(p, view, t);
    if node["value"].as_bool() != Some(expected) {
        return Err(format!("node `{}` is not {expected}", hog(p)));
    }
    match p {
        Pred::And(children) | Pred::Or(children) => {
            let nodes = node["children"].as_array().cloned().unwrap_or_default();
            if nodes.len() != children.len() {
                return Err(format!("node `{}` has other children", hog(p)));
            }
            for (child, n) in children.iter().zip(&nodes) {
                why_node_agrees(child, n, view, t)?;
            }
            Ok(())
        }
        Pred::Not(inner) => why_node_agrees(inner, &node["child"], view, t),
        Pred::Event(atom) => {
            let exists = Pred::Event(EventAtom {
                test: EventTest::Count(CmpOp::Ge, 0),
                ..atom.clone()
            });
            // The count is the largest n with `count >= n` true.
            let count = (0..=view.events.len() as i64)
                .filter(|n| {
                    let mut probe = exists.clone();
                    if let Pred::Event(a) = &mut probe {
                        a.test = EventTest::Count(CmpOp::Ge, *n);
                    }
                    eval(&probe, view, t)
                })
                .max()
                .unwrap_or(0);
            if node["count"].as_i64() != Some(count) {
                return Err(format!("`{}` counts {} not {count}", hog(p), node["count"]));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 400,
        ..ProptestConfig::default()
    })]

    #[test]
    fn buckets_match_the_naive_evaluator_after_every_tick(case in case()) {
        RT.block_on(run_case(&case))?;
    }
}
