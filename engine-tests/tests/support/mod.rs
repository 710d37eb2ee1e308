//! Helpers shared by the bucket-engine tests: IR builders, deploying a hand-built program,
//! an in-memory model of the data evaluated by the compiler's reference evaluator
//! (`hogsend_compiler::eval`, which the generated SQL must agree with), and readers of the SQL surface (`bucket_members`, `bucket_transitions`, `bucket:*` events).
//!
//! Instants are integers: microseconds since [`base`] (2026-03-01T00:00:00Z), so that
//! window edges like `T - D - 1µs` are exact on both sides.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use hogsend_compiler::eval;
use hogsend_compiler::ir::{
    Bucket, BucketId, CmpOp, DwellKind, DwellRule, EntryPolicy, EventAtom, EventPred, EventTest,
    Origin, Pred, Program, Prop, PropTest, Scalar, Seconds, Window,
};
use hogsend_compiler::plan::{self, PlanOptions};
use hogsend_runtime::migrate::{self, MigrateReport};
use serde_json::Value;
use sqlx::{PgConnection, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

// ------------------------------------------------------------------------------------------
// Time
// ------------------------------------------------------------------------------------------

/// Microseconds since [`base`].
pub(crate) type Us = i64;
pub(crate) const US: Us = 1;
pub(crate) const SEC: Us = 1_000_000;
pub(crate) const MIN: Us = 60 * SEC;
pub(crate) const HOUR: Us = 60 * MIN;
pub(crate) const DAY: Us = 24 * HOUR;

/// The origin of test time.
pub(crate) fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// An instant as a timestamp.
pub(crate) fn ts(us: Us) -> DateTime<Utc> {
    base() + chrono::Duration::microseconds(us)
}

/// A timestamp as an instant.
pub(crate) fn us_of(t: DateTime<Utc>) -> Us {
    (t - base())
        .num_microseconds()
        .expect("test instants fit in i64 µs")
}

/// An instant, readable (`+10d 02:00:00.000001`).
pub(crate) fn show_us(us: Us) -> String {
    let sign = if us < 0 { "-" } else { "+" };
    let a = us.unsigned_abs() as i64;
    let days = a / DAY;
    let rest = a % DAY;
    let (h, m, s, micro) = (rest / HOUR, rest % HOUR / MIN, rest % MIN / SEC, rest % SEC);
    if micro == 0 {
        format!("{sign}{days}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{sign}{days}d {h:02}:{m:02}:{s:02}.{micro:06}")
    }
}

/// Seconds as microseconds.
pub(crate) fn secs(s: Seconds) -> Us {
    s * SEC
}

// ------------------------------------------------------------------------------------------
// IR builders
// ------------------------------------------------------------------------------------------

pub(crate) fn did(event: &str, window: Window) -> Pred {
    Pred::Event(EventAtom {
        event: event.into(),
        filter: None,
        window,
        test: EventTest::Exists,
    })
}

pub(crate) fn did_where(event: &str, filter: EventPred, window: Window) -> Pred {
    Pred::Event(EventAtom {
        event: event.into(),
        filter: Some(filter),
        window,
        test: EventTest::Exists,
    })
}

pub(crate) fn count(event: &str, window: Window, op: CmpOp, n: i64) -> Pred {
    Pred::Event(EventAtom {
        event: event.into(),
        filter: None,
        window,
        test: EventTest::Count(op, n),
    })
}

pub(crate) fn prop(path: &[&str], test: PropTest) -> Prop {
    Prop {
        path: path.iter().map(ToString::to_string).collect(),
        test,
    }
}

/// `contact.path OP value`
pub(crate) fn cmp(path: &[&str], op: CmpOp, value: Scalar) -> Pred {
    Pred::Prop(prop(path, PropTest::Compare(op, value)))
}

pub(crate) fn not(p: Pred) -> Pred {
    Pred::Not(Box::new(p))
}

pub(crate) fn and(ps: Vec<Pred>) -> Pred {
    Pred::And(ps)
}

pub(crate) fn or(ps: Vec<Pred>) -> Pred {
    Pred::Or(ps)
}

pub(crate) fn s(v: &str) -> Scalar {
    Scalar::String(v.into())
}

pub(crate) fn n(v: &str) -> Scalar {
    Scalar::Number(v.into())
}

pub(crate) fn within(seconds: Seconds) -> Window {
    Window::Within(seconds)
}

/// A bucket with no policy (entry unlimited, no dwell limits, enabled).
pub(crate) fn bucket(id: &str, criteria: Pred) -> Bucket {
    Bucket {
        id: BucketId::new(id).expect("a valid bucket id"),
        name: None,
        description: None,
        criteria,
        entry: EntryPolicy::Unlimited,
        min_dwell: None,
        max_dwell: None,
        enabled: true,
        dwell: vec![],
        reactions: vec![],
        origin: Origin {
            file: "buckets/test.hog".into(),
            line: 1,
        },
    }
}

/// A dwell rule with the default label (`after_<secs>s` / `every_<secs>s`).
pub(crate) fn dwell(kind: DwellKind, period: Seconds) -> DwellRule {
    let label = match kind {
        DwellKind::After => format!("after_{}", plan::text::duration_text(period)),
        DwellKind::Every => format!("every_{}", plan::text::duration_text(period)),
    };
    DwellRule {
        label,
        kind,
        period,
    }
}

/// A program of these buckets (sorted by id, as the checker delivers them).
pub(crate) fn program(mut buckets: Vec<Bucket>) -> Program {
    buckets.sort_by(|a, b| a.id.cmp(&b.id));
    Program {
        buckets,
        ..Default::default()
    }
}

/// Plans, emits and migrates `program` into `schema`.
pub(crate) async fn deploy(
    conn: &mut PgConnection,
    schema: &str,
    program: &Program,
) -> MigrateReport {
    let plan = plan::plan(
        program,
        &PlanOptions {
            schema: schema.to_owned(),
            ..PlanOptions::default()
        },
    );
    let files = hogsend_compiler::emit::emit(&plan);
    let schema = hogsend_schema::SchemaName::new(schema).unwrap_or_else(|e| panic!("{e}"));
    migrate::migrate(conn, &schema, &files)
        .await
        .unwrap_or_else(|e| panic!("migrate failed: {e}"))
}

/// The criteria in `.hog` syntax.
pub(crate) fn hog(p: &Pred) -> String {
    plan::text::pred_text(p)
}

/// A bucket's definition in `.hog` syntax (criteria and policies).
pub(crate) fn hog_bucket(b: &Bucket) -> String {
    let mut out = format!("bucket {} {{ criteria {}", b.id, hog(&b.criteria));
    if b.entry != EntryPolicy::Unlimited {
        let _ = write!(out, "  entry {}", plan::text::entry_text(b.entry));
    }
    if let Some(d) = b.min_dwell {
        let _ = write!(out, "  min_dwell {}", plan::text::duration_text(d));
    }
    if let Some(d) = b.max_dwell {
        let _ = write!(out, "  max_dwell {}", plan::text::duration_text(d));
    }
    for r in &b.dwell {
        let kind = match r.kind {
            DwellKind::After => "after",
            DwellKind::Every => "every",
        };
        let _ = write!(
            out,
            "  on dwell {kind} {} as {} {{}}",
            plan::text::duration_text(r.period),
            r.label
        );
    }
    if !b.enabled {
        out.push_str("  enabled false");
    }
    out.push_str(" }");
    out
}

// ------------------------------------------------------------------------------------------
// The reference evaluator over an in-memory model of the data
// ------------------------------------------------------------------------------------------

/// A contact as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Contact {
    pub key: String,
    /// Always a JSON object.
    pub props: Value,
    pub deleted: bool,
}

/// An event row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub key: String,
    pub name: String,
    /// Raw JSON text of the properties object (kept raw so that `2.50` reaches Postgres as
    /// written); parsed for evaluation.
    pub props: String,
    pub at: Us,
}

/// A message row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Message {
    pub key: String,
    pub template: String,
    pub opened_at: Option<Us>,
    pub clicked_at: Option<Us>,
}

/// What one contact looks like to the evaluator: its data, event properties parsed.
pub(crate) struct View<'a> {
    pub props: &'a Value,
    pub events: Vec<(&'a Event, Value)>,
    pub messages: Vec<&'a Message>,
}

impl View<'_> {
    /// The contact as the reference evaluator reads it.
    pub(crate) fn contact(&self) -> eval::Contact<'_> {
        eval::Contact {
            properties: self.props,
            events: self
                .events
                .iter()
                .map(|(e, props)| eval::Event {
                    name: &e.name,
                    properties: props,
                    occurred_at: e.at,
                })
                .collect(),
            messages: self
                .messages
                .iter()
                .map(|m| eval::Message {
                    template: &m.template,
                    opened: m.opened_at.is_some(),
                    clicked: m.clicked_at.is_some(),
                })
                .collect(),
            entered_at: None,
            trigger: &Value::Null,
        }
    }
}

/// Is `p` true for the empty contact (no properties, no events, no messages)?
pub(crate) fn eval_empty(p: &Pred) -> bool {
    eval::holds_for_empty_contact(p)
}

/// Is `p` true for this contact at `t`? (The reference evaluator, `hogsend_compiler::eval`:
/// instants are test microseconds, the same epoch for every input.)
pub(crate) fn eval(p: &Pred, v: &View, t: Us) -> bool {
    eval::holds(p, &v.contact(), t)
}

/// The whole dataset, as the test believes the database holds it.
#[derive(Debug, Clone, Default)]
pub(crate) struct World {
    /// By contact key.
    pub contacts: BTreeMap<String, Contact>,
    pub events: Vec<Event>,
    pub messages: Vec<Message>,
}

impl World {
    /// Records events; an event for an unknown key creates the contact (empty properties).
    pub(crate) fn add_events(&mut self, events: &[Event]) {
        for e in events {
            self.contacts
                .entry(e.key.clone())
                .or_insert_with(|| Contact {
                    key: e.key.clone(),
                    props: Value::Object(Default::default()),
                    deleted: false,
                });
            self.events.push(e.clone());
        }
    }

    pub(crate) fn view(&self, key: &str) -> Option<(View<'_>, bool)> {
        let c = self.contacts.get(key)?;
        let events = self
            .events
            .iter()
            .filter(|e| e.key == key)
            .map(|e| {
                let props: Value = serde_json::from_str(&e.props).expect("event props json");
                (e, props)
            })
            .collect();
        let messages = self.messages.iter().filter(|m| m.key == key).collect();
        Some((
            View {
                props: &c.props,
                events,
                messages,
            },
            c.deleted,
        ))
    }

    /// Does contact `key` satisfy `p` at `t`? (False for deleted and unknown contacts.)
    pub(crate) fn holds(&self, p: &Pred, key: &str, t: Us) -> bool {
        match self.view(key) {
            Some((view, deleted)) => !deleted && eval(p, &view, t),
            None => false,
        }
    }

    /// Every live contact for which `p` holds at `t`.
    pub(crate) fn matching(&self, p: &Pred, t: Us) -> BTreeSet<String> {
        self.contacts
            .keys()
            .filter(|k| self.holds(p, k, t))
            .cloned()
            .collect()
    }

    /// A readable dump of one contact's data (for failure messages).
    pub(crate) fn describe(&self, key: &str) -> String {
        let mut out = String::new();
        match self.contacts.get(key) {
            Some(c) => {
                let _ = write!(
                    out,
                    "contact {key:?}{} props {}",
                    if c.deleted { " (deleted)" } else { "" },
                    c.props
                );
            }
            None => {
                let _ = write!(out, "no contact {key:?}");
            }
        }
        for e in self.events.iter().filter(|e| e.key == key) {
            let _ = write!(
                out,
                "\n    event {:?} at {} props {}",
                e.name,
                show_us(e.at),
                e.props
            );
        }
        for m in self.messages.iter().filter(|m| m.key == key) {
            let _ = write!(
                out,
                "\n    message {:?} opened {:?} clicked {:?}",
                m.template,
                m.opened_at.map(show_us),
                m.clicked_at.map(show_us)
            );
        }
        out
    }
}

// ------------------------------------------------------------------------------------------
// The SQL surface
// ------------------------------------------------------------------------------------------

/// `"schema"` quoted (the tests' own SQL names the schema; the runtime's relies on the
/// connection's `search_path`).
pub(crate) fn q(schema: &str) -> String {
    format!("\"{}\"", schema.replace('"', "\"\""))
}

/// Runs `tick(t)`; panics on error.
pub(crate) async fn tick(conn: &mut PgConnection, schema: &str, t: Us) -> Value {
    hogsend_runtime::db::tick(conn, schema, Some(ts(t)))
        .await
        .unwrap_or_else(|e| panic!("tick at {} failed: {e}", show_us(t)))
}

/// Runs raw SQL; panics on error.
pub(crate) async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"));
}

/// The active members of every bucket: bucket → keys.
pub(crate) async fn members(
    conn: &mut PgConnection,
    schema: &str,
) -> BTreeMap<String, BTreeSet<String>> {
    let rows = sqlx::query(&format!(
        "select bucket_id, user_key from {}.bucket_members",
        q(schema)
    ))
    .fetch_all(&mut *conn)
    .await
    .expect("read bucket_members");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in rows {
        out.entry(row.get(0)).or_default().insert(row.get(1));
    }
    out
}

/// One row of `bucket_members`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Member {
    pub bucket: String,
    pub key: String,
    pub entered_at: Us,
    pub entry_count: i32,
}

pub(crate) async fn member_rows(conn: &mut PgConnection, schema: &str) -> Vec<Member> {
    let rows = sqlx::query(&format!(
        "select bucket_id, user_key, entered_at, entry_count from {}.bucket_members \
         order by bucket_id, user_key",
        q(schema)
    ))
    .fetch_all(&mut *conn)
    .await
    .expect("read bucket_members");
    rows.into_iter()
        .map(|r| Member {
            bucket: r.get(0),
            key: r.get(1),
            entered_at: us_of(r.get(2)),
            entry_count: r.get(3),
        })
        .collect()
}

/// One row of `bucket_transitions`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Transition {
    pub occurred_at: Us,
    pub bucket: String,
    pub key: String,
    pub kind: String,
    pub reason: Option<String>,
    pub label: Option<String>,
    pub ordinal: Option<i64>,
    pub entry_count: i32,
    pub source: String,
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {:?} {} #{}",
            show_us(self.occurred_at),
            self.bucket,
            self.key,
            self.kind,
            self.entry_count
        )?;
        if let Some(r) = &self.reason {
            write!(f, " reason={r}")?;
        }
        if let Some(l) = &self.label {
            write!(f, " label={l}")?;
        }
        if let Some(o) = self.ordinal {
            write!(f, " ordinal={o}")?;
        }
        write!(f, " source={}", self.source)
    }
}

/// Every transition, in id order.
pub(crate) async fn transitions(conn: &mut PgConnection, schema: &str) -> Vec<Transition> {
    let rows = sqlx::query(&format!(
        "select occurred_at, bucket_id, user_key, kind, reason, label, ordinal, entry_count, source \
         from {}.bucket_transitions order by id",
        q(schema)
    ))
    .fetch_all(&mut *conn)
    .await
    .expect("read bucket_transitions");
    rows.into_iter()
        .map(|r| Transition {
            occurred_at: us_of(r.get(0)),
            bucket: r.get(1),
            key: r.get(2),
            kind: r.get(3),
            reason: r.get(4),
            label: r.get(5),
            ordinal: r.get::<Option<i64>, _>(6),
            entry_count: r.get(7),
            source: r.get(8),
        })
        .collect()
}

/// One `bucket:*` event the engine recorded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BucketEvent {
    pub occurred_at: Us,
    pub key: String,
    pub event: String,
    pub props: String,
}

/// Every `bucket:*` event, in id order.
pub(crate) async fn bucket_events(conn: &mut PgConnection, schema: &str) -> Vec<BucketEvent> {
    let rows = sqlx::query(&format!(
        "select occurred_at, user_key, event, properties::text from {}.events \
         where event like 'bucket:%' order by id",
        q(schema)
    ))
    .fetch_all(&mut *conn)
    .await
    .expect("read bucket events");
    rows.into_iter()
        .map(|r| BucketEvent {
            occurred_at: us_of(r.get(0)),
            key: r.get(1),
            event: r.get(2),
            props: r.get(3),
        })
        .collect()
}

/// Inserts events with one plain multi-row INSERT.
pub(crate) async fn insert_events(conn: &mut PgConnection, schema: &str, events: &[Event]) {
    if events.is_empty() {
        return;
    }
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    let props: Vec<&str> = events.iter().map(|e| e.props.as_str()).collect();
    let times: Vec<DateTime<Utc>> = events.iter().map(|e| ts(e.at)).collect();
    sqlx::query(&format!(
        "insert into {}.events (user_key, event, properties, occurred_at) \
         select k, e, p::jsonb, t from unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) \
         as u(k, e, p, t)",
        q(schema)
    ))
    .bind(keys)
    .bind(names)
    .bind(props)
    .bind(times)
    .execute(&mut *conn)
    .await
    .expect("insert events");
}

/// A CSV field, always quoted.
fn csv(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

/// Loads events with `COPY … FROM STDIN` (CSV).
pub(crate) async fn copy_events(conn: &mut PgConnection, schema: &str, events: &[Event]) {
    let mut data = String::new();
    for e in events {
        let _ = writeln!(
            data,
            "{},{},{},{}",
            csv(&e.key),
            csv(&e.name),
            csv(&e.props),
            csv(&ts(e.at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        );
    }
    let mut copy = conn
        .copy_in_raw(&format!(
            "copy {}.events (user_key, event, properties, occurred_at) from stdin with (format csv)",
            q(schema)
        ))
        .await
        .expect("start COPY");
    copy.send(data.into_bytes()).await.expect("COPY data");
    copy.finish().await.expect("finish COPY");
}

/// Creates a contact keyed by `external_id` with these properties (JSON object text).
pub(crate) async fn create_contact(conn: &mut PgConnection, schema: &str, key: &str, props: &str) {
    sqlx::query(&format!(
        "insert into {}.contacts (external_id, properties) values ($1, $2::jsonb)",
        q(schema)
    ))
    .bind(key)
    .bind(props)
    .execute(&mut *conn)
    .await
    .expect("create contact");
}

/// Replaces a contact's properties.
pub(crate) async fn set_props(conn: &mut PgConnection, schema: &str, key: &str, props: &str) {
    sqlx::query(&format!(
        "update {}.contacts set properties = $2::jsonb, updated_at = now() where user_key = $1",
        q(schema)
    ))
    .bind(key)
    .bind(props)
    .execute(&mut *conn)
    .await
    .expect("update contact");
}

/// Soft-deletes a contact.
pub(crate) async fn soft_delete(conn: &mut PgConnection, schema: &str, key: &str) {
    sqlx::query(&format!(
        "update {}.contacts set deleted_at = now() where user_key = $1",
        q(schema)
    ))
    .bind(key)
    .execute(&mut *conn)
    .await
    .expect("delete contact");
}

/// A JSON object text from pairs of (key, raw JSON value text).
pub(crate) fn obj(pairs: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}: {v}", Value::String(k.to_string()));
    }
    out.push('}');
    out
}

/// Set differences as a readable line.
pub(crate) fn set_diff(expected: &BTreeSet<String>, actual: &BTreeSet<String>) -> String {
    let missing: Vec<&String> = expected.difference(actual).collect();
    let extra: Vec<&String> = actual.difference(expected).collect();
    format!("missing (should be members): {missing:?}; extra (should not be): {extra:?}")
}

/// The backfill dwell anchor (docs/language.md): the latest `occurred_at <= t` among the
/// events the criteria's windowed atoms name (with their filters, ignoring the window),
/// `None` when the criteria has no windowed atom or the contact no such event.
pub(crate) fn backfill_anchor(p: &Pred, view: &View, t: Us) -> Option<Us> {
    fn windowed<'p>(p: &'p Pred, out: &mut Vec<&'p EventAtom>) {
        match p {
            Pred::And(c) | Pred::Or(c) => c.iter().for_each(|p| windowed(p, out)),
            Pred::Not(x) => windowed(x, out),
            Pred::Event(a) if matches!(a.window, Window::Within(_)) => out.push(a),
            _ => {}
        }
    }
    let mut atoms = Vec::new();
    windowed(p, &mut atoms);
    view.events
        .iter()
        .filter(|(e, props)| {
            e.at <= t
                && atoms.iter().any(|a| {
                    a.event == e.name
                        && a.filter
                            .as_ref()
                            .is_none_or(|f| eval::event_pred_holds(props, f))
                })
        })
        .map(|(e, _)| e.at)
        .max()
}

// ------------------------------------------------------------------------------------------
// A deployed project in a database of its own, for hand-written scenarios
// ------------------------------------------------------------------------------------------

/// One test's database with a project deployed in schema `hogsend`.
pub(crate) struct Env {
    pub db: hogsend_runtime::testkit::TestDatabase,
    pub conn: PgConnection,
    pub schema: String,
}

impl Env {
    /// A fresh database with these buckets deployed (not yet ticked).
    pub(crate) async fn new(buckets: Vec<Bucket>) -> Env {
        let db = hogsend_runtime::testkit::TestDatabase::new().await;
        let conn = db.connect().await;
        let mut env = Env {
            db,
            conn,
            schema: "hogsend".into(),
        };
        env.deploy(buckets).await;
        env
    }

    /// Deploys (migrates) this set of buckets.
    pub(crate) async fn deploy(&mut self, buckets: Vec<Bucket>) -> MigrateReport {
        deploy(&mut self.conn, &self.schema, &program(buckets)).await
    }

    pub(crate) async fn tick(&mut self, t: Us) -> Value {
        tick(&mut self.conn, &self.schema, t).await
    }

    pub(crate) async fn sql(&mut self, sql: &str) {
        exec(
            &mut self.conn,
            &sql.replace("hs.", &format!("{}.", q(&self.schema))),
        )
        .await;
    }

    pub(crate) async fn contact(&mut self, key: &str, props: &str) {
        create_contact(&mut self.conn, &self.schema, key, props).await;
    }

    pub(crate) async fn set_props(&mut self, key: &str, props: &str) {
        set_props(&mut self.conn, &self.schema, key, props).await;
    }

    pub(crate) async fn delete(&mut self, key: &str) {
        soft_delete(&mut self.conn, &self.schema, key).await;
    }

    /// Inserts events `(key, name, at)` with empty properties.
    pub(crate) async fn events(&mut self, events: &[(&str, &str, Us)]) {
        let rows: Vec<Event> = events
            .iter()
            .map(|(k, e, at)| Event {
                key: k.to_string(),
                name: e.to_string(),
                props: "{}".into(),
                at: *at,
            })
            .collect();
        insert_events(&mut self.conn, &self.schema, &rows).await;
    }

    /// The sorted member keys of one bucket.
    pub(crate) async fn members(&mut self, bucket: &str) -> Vec<String> {
        members(&mut self.conn, &self.schema)
            .await
            .remove(bucket)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    }

    pub(crate) async fn member_rows(&mut self) -> Vec<Member> {
        member_rows(&mut self.conn, &self.schema).await
    }

    pub(crate) async fn transitions(&mut self) -> Vec<Transition> {
        transitions(&mut self.conn, &self.schema).await
    }

    pub(crate) async fn bucket_events(&mut self) -> Vec<BucketEvent> {
        bucket_events(&mut self.conn, &self.schema).await
    }

    /// `(event, key)` of every `bucket:*` event, in order.
    pub(crate) async fn bucket_event_names(&mut self) -> Vec<(String, String)> {
        self.bucket_events()
            .await
            .into_iter()
            .map(|e| (e.event, e.key))
            .collect()
    }

    /// One scalar query.
    pub(crate) async fn scalar<T>(&mut self, sql: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        let sql = sql.replace("hs.", &format!("{}.", q(&self.schema)));
        sqlx::query_scalar::<_, T>(&sql)
            .fetch_one(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{sql}"))
    }
}

/// A transition as `(kind, key, reason-or-label, ordinal, entry_count, source, at)`, short.
pub(crate) fn short(t: &Transition) -> (String, String, String, i64, i32, String, Us) {
    (
        t.kind.clone(),
        t.key.clone(),
        t.reason.clone().or(t.label.clone()).unwrap_or_default(),
        t.ordinal.unwrap_or(0),
        t.entry_count,
        t.source.clone(),
        t.occurred_at,
    )
}

/// The transition log, the memberships and the `bucket:*` events agree: per (bucket,
/// contact) the log alternates `entered` (epochs 1, 2, 3…) and `left` of that epoch; the
/// open epochs are exactly `bucket_members` with their `entry_count`; every transition
/// that fires (joins but silent backfill ones, leaves for `criteria`/`max_dwell`, dwell)
/// has exactly one `bucket:*` event at its instant, and there is no other (events at or
/// before `events_after` are not compared: a TRUNCATE of `events` removed them).
pub(crate) async fn check_log(
    conn: &mut PgConnection,
    schema: &str,
    events_after: Option<Us>,
) -> Result<(), String> {
    let log = transitions(conn, schema).await;
    let mut open: BTreeMap<(String, String), (i32, bool)> = BTreeMap::new();
    let mut expected_events: Vec<(Us, String, String)> = Vec::new();
    for t in &log {
        let state = open
            .entry((t.bucket.clone(), t.key.clone()))
            .or_insert((0, false));
        match t.kind.as_str() {
            "entered" => {
                if state.1 || t.entry_count != state.0 + 1 {
                    return Err(format!("join out of sequence: {t} (state {state:?})"));
                }
                *state = (t.entry_count, true);
                if t.source != "backfill" {
                    expected_events.push((
                        t.occurred_at,
                        t.key.clone(),
                        format!("bucket:entered:{}", t.bucket),
                    ));
                }
            }
            "left" => {
                if !state.1 || t.entry_count != state.0 {
                    return Err(format!("leave out of sequence: {t} (state {state:?})"));
                }
                state.1 = false;
                if matches!(t.reason.as_deref(), Some("criteria" | "max_dwell")) {
                    expected_events.push((
                        t.occurred_at,
                        t.key.clone(),
                        format!("bucket:left:{}", t.bucket),
                    ));
                }
            }
            _ => {
                if !state.1 || t.entry_count != state.0 {
                    return Err(format!("dwell outside a membership: {t} (state {state:?})"));
                }
                let label = t.label.clone().unwrap_or_default();
                expected_events.push((
                    t.occurred_at,
                    t.key.clone(),
                    format!("bucket:dwell:{}:{label}", t.bucket),
                ));
            }
        }
    }
    let mut from_log: Vec<Member> = Vec::new();
    for ((bucket, key), (epoch, active)) in &open {
        if *active {
            from_log.push(Member {
                bucket: bucket.clone(),
                key: key.clone(),
                entered_at: 0,
                entry_count: *epoch,
            });
        }
    }
    let mut actual: Vec<Member> = member_rows(conn, schema)
        .await
        .into_iter()
        .map(|m| Member { entered_at: 0, ..m })
        .collect();
    actual.sort();
    if actual != from_log {
        return Err(format!(
            "bucket_members {actual:?} disagree with the transition log {from_log:?}"
        ));
    }
    let mut events: Vec<(Us, String, String)> = bucket_events(conn, schema)
        .await
        .into_iter()
        .map(|e| (e.occurred_at, e.key, e.event))
        .collect();
    if let Some(after) = events_after {
        events.retain(|e| e.0 > after);
        expected_events.retain(|e| e.0 > after);
    }
    events.sort();
    expected_events.sort();
    if events != expected_events {
        return Err(format!(
            "bucket:* events {events:?} disagree with the transition log {expected_events:?}"
        ));
    }
    Ok(())
}

/// The runtime the property tests drive their async cases on.
pub(crate) static RT: std::sync::LazyLock<tokio::runtime::Runtime> =
    std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    });

/// Property-test cases per run: `PROPTEST_CASES`, else 40.
pub(crate) fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}
