//! The per-contact baseline: what a per-contact engine (like the one hogsend replaces) does
//! on each sweep, in a loop in this process, on the same data and the same 20 buckets.
//!
//! For each live contact (read in pages of 1,000 with their properties and current
//! memberships — generous to the baseline: the reference reads them one by one), for each
//! bucket, the criteria is evaluated in the process by the compiler's reference evaluator
//! (`hogsend_compiler::eval`) with short-circuiting (property tests first); every event
//! atom it needs costs one query (`exists` for `did`, `count(*)` for `count`, the matching
//! events when the atom has a filter, which the evaluator then applies), as does every
//! `opened` / `clicked` atom. Each changed membership
//! is one write (an upsert on join, an update on leave) into `bench.baseline_members`, in
//! autocommit. Policies (entry, dwell) are not applied: this is a lower bound of such an
//! engine's cost.
//!
//! At `--baseline-sample` contacts or fewer the loop covers every live contact; above, it
//! covers an evenly spaced sample (every k-th contact in key order) and the time is
//! extrapolated linearly to all live contacts — the report says which.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use chrono::{DateTime, TimeZone, Utc};
use hogsend_compiler::eval::{self, Atom, Micros};
use hogsend_compiler::ir::{Bucket, EventTest};
use serde_json::{json, Value};
use sqlx::{Executor, PgConnection, Row};

use crate::measure::{Samples, Stopwatch};

const PAGE: i64 = 1000;

/// One pass of the loop: its duration and what it did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Pass {
    pub contacts: u64,
    pub queries: u64,
    pub writes: u64,
}

/// The baseline's figures.
#[derive(Debug, Default)]
pub(crate) struct Baseline {
    pub live_contacts: i64,
    pub sampled_contacts: i64,
    /// First pass over an empty membership table (every match is a write).
    pub cold: Samples,
    /// A pass with nothing changed since the previous one (no writes).
    pub warm: Samples,
    pub cold_pass: Pass,
    pub warm_pass: Pass,
    /// Rows (bucket, contact) where the baseline and the compiled backfill disagree.
    pub differing: i64,
    pub members: i64,
}

impl Baseline {
    /// Whether the loop covered a sample only.
    pub(crate) fn sampled(&self) -> bool {
        self.sampled_contacts < self.live_contacts
    }

    /// The factor from the measured loop to all live contacts.
    pub(crate) fn scale(&self) -> f64 {
        if self.sampled_contacts == 0 {
            1.0
        } else {
            self.live_contacts as f64 / self.sampled_contacts as f64
        }
    }

    /// The baseline section of the report.
    pub(crate) fn to_json(&self) -> Value {
        let pass = |p: &Pass| {
            json!({
                "contacts": p.contacts,
                "queries": p.queries,
                "writes": p.writes,
                "queries_per_contact": if p.contacts == 0 { 0.0 } else { p.queries as f64 / p.contacts as f64 },
            })
        };
        json!({
            "live_contacts": self.live_contacts,
            "measured_contacts": self.sampled_contacts,
            "sampled": self.sampled(),
            "extrapolation_factor": self.scale(),
            "cold_measured": self.cold.to_json(),
            "warm_measured": self.warm.to_json(),
            "cold_estimated_all_ms": self.cold.median() * self.scale(),
            "warm_estimated_all_ms": self.warm.median() * self.scale(),
            "cold_pass": pass(&self.cold_pass),
            "warm_pass": pass(&self.warm_pass),
            "members_found": self.members,
            "rows_differing_from_compiled": self.differing,
        })
    }
}

/// An atom's identity within one evaluation (its address in the program).
fn atom_id(atom: Atom<'_>) -> (u8, usize) {
    match atom {
        Atom::Event(a) => (0, a as *const _ as usize),
        Atom::Opened(t) => (1, t.as_ptr() as usize),
        Atom::Clicked(t) => (2, t.as_ptr() as usize),
    }
}

/// An instant as the evaluator's microseconds.
fn micros(t: DateTime<Utc>) -> Micros {
    t.timestamp_micros()
}

fn instant(us: Micros) -> DateTime<Utc> {
    Utc.timestamp_micros(us)
        .single()
        .expect("an instant of the dataset")
}

/// One query for one atom of one contact: the events inside the atom's window (as the
/// evaluator defines it) counted by Postgres, or fetched for the evaluator when the atom
/// has a filter.
async fn fetch_atom(
    conn: &mut PgConnection,
    key: &str,
    atom: Atom<'_>,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(match atom {
        Atom::Event(a) => {
            // All time: before anything the dataset holds.
            let from = eval::window_start(a.window, micros(now), None).map_or_else(
                || Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0).unwrap(),
                instant,
            );
            match &a.filter {
                None if a.test == EventTest::Exists => sqlx::query_scalar::<_, bool>(
                    "select exists (select 1 from hogsend.events where user_key = $1 and event = $2
                                       and occurred_at <= $3 and occurred_at >= $4)",
                )
                .bind(key)
                .bind(&a.event)
                .bind(now)
                .bind(from)
                .fetch_one(&mut *conn)
                .await?,
                None => {
                    let count: i64 = sqlx::query_scalar(
                        "select count(*) from hogsend.events where user_key = $1 and event = $2
                        and occurred_at <= $3 and occurred_at >= $4",
                    )
                    .bind(key)
                    .bind(&a.event)
                    .bind(now)
                    .bind(from)
                    .fetch_one(&mut *conn)
                    .await?;
                    eval::count_holds(a.test, count)
                }
                Some(_) => {
                    let rows: Vec<(Value, DateTime<Utc>)> = sqlx::query_as(
                        "select properties, occurred_at from hogsend.events
                          where user_key = $1 and event = $2
                            and occurred_at <= $3 and occurred_at >= $4",
                    )
                    .bind(key)
                    .bind(&a.event)
                    .bind(now)
                    .bind(from)
                    .fetch_all(&mut *conn)
                    .await?;
                    let events: Vec<eval::Event<'_>> = rows
                        .iter()
                        .map(|(properties, at)| eval::Event {
                            name: &a.event,
                            properties,
                            occurred_at: micros(*at),
                        })
                        .collect();
                    eval::event_atom_holds(a, &events, micros(now), None)
                }
            }
        }
        Atom::Opened(t) | Atom::Clicked(t) => {
            let column = if matches!(atom, Atom::Opened(_)) {
                "opened_at"
            } else {
                "clicked_at"
            };
            sqlx::query_scalar(&format!(
                "select exists (select 1 from hogsend.messages
                                 where user_key = $1 and template = $2 and {column} is not null)"
            ))
            .bind(key)
            .bind(t)
            .fetch_one(&mut *conn)
            .await?
        }
    })
}

/// Evaluates one bucket for one contact, one query per atom needed.
async fn matches<'a>(
    conn: &mut PgConnection,
    bucket: &'a Bucket,
    key: &str,
    props: &Value,
    now: DateTime<Utc>,
    pass: &mut Pass,
) -> Result<bool> {
    let mut known: HashMap<(u8, usize), bool> = HashMap::new();
    loop {
        let mut facts = |a: Atom<'a>| known.get(&atom_id(a)).copied();
        match eval::evaluate(&bucket.criteria, props, &mut facts) {
            Ok(v) => return Ok(v),
            Err(atom) => {
                let value = fetch_atom(conn, key, atom, now).await?;
                pass.queries += 1;
                known.insert(atom_id(atom), value);
            }
        }
    }
}

/// One sweep over the measured contacts at `now`.
async fn sweep(conn: &mut PgConnection, buckets: &[Bucket], now: DateTime<Utc>) -> Result<Pass> {
    let mut pass = Pass::default();
    let mut after = String::new();
    loop {
        let page: Vec<(String, Value)> = sqlx::query(
            "select c.user_key, c.properties from hogsend.contacts as c
              where c.deleted_at is null and c.user_key > $1
                and c.user_key in (select user_key from bench.baseline_sample)
              order by c.user_key limit $2",
        )
        .bind(&after)
        .bind(PAGE)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = last.clone();
        let keys: Vec<&str> = page.iter().map(|(k, _)| k.as_str()).collect();
        let active: HashSet<(String, String)> = sqlx::query_as(
            "select bucket_id, user_key from bench.baseline_members where active and user_key = any($1)",
        )
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        for (key, props) in &page {
            pass.contacts += 1;
            for bucket in buckets {
                let now_in = matches(conn, bucket, key, props, now, &mut pass).await?;
                let was_in = active.contains(&(bucket.id.to_string(), key.clone()));
                if now_in && !was_in {
                    sqlx::query(
                        "insert into bench.baseline_members (bucket_id, user_key, active, changed_at)
                         values ($1, $2, true, $3)
                         on conflict (bucket_id, user_key) do update
                            set active = true, changed_at = excluded.changed_at",
                    )
                    .bind(bucket.id.as_str())
                    .bind(key)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    pass.writes += 1;
                } else if was_in && !now_in {
                    sqlx::query(
                        "update bench.baseline_members set active = false, changed_at = $3
                          where bucket_id = $1 and user_key = $2",
                    )
                    .bind(bucket.id.as_str())
                    .bind(key)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    pass.writes += 1;
                }
            }
        }
    }
    Ok(pass)
}

/// Runs the baseline: `runs` cold passes (each over an emptied membership table) and `runs`
/// warm passes, over every live contact or an evenly spaced sample of `sample` of them.
/// Compares its members with the compiled backfill's snapshot (`bench.compiled_members`).
pub(crate) async fn measure(
    conn: &mut PgConnection,
    buckets: &[Bucket],
    runs: usize,
    sample: i64,
    now: DateTime<Utc>,
) -> Result<Baseline> {
    let live: i64 =
        sqlx::query_scalar("select count(*) from hogsend.contacts where deleted_at is null")
            .fetch_one(&mut *conn)
            .await?;
    let step = if live > sample {
        (live + sample - 1) / sample.max(1)
    } else {
        1
    };
    conn.execute(
        "create schema if not exists bench;
         drop table if exists bench.baseline_sample, bench.baseline_members;
         create table bench.baseline_members (
           bucket_id text not null, user_key text not null, active boolean not null,
           changed_at timestamptz not null, primary key (bucket_id, user_key));",
    )
    .await?;
    sqlx::query(
        "create table bench.baseline_sample as
           select user_key from (
             select user_key, row_number() over (order by user_key) as n
               from hogsend.contacts where deleted_at is null) as s
            where n % $1 = 0",
    )
    .bind(step)
    .execute(&mut *conn)
    .await?;
    conn.execute("alter table bench.baseline_sample add primary key (user_key); analyze bench.baseline_sample;")
        .await?;
    let sampled: i64 = sqlx::query_scalar("select count(*) from bench.baseline_sample")
        .fetch_one(&mut *conn)
        .await?;
    let mut result = Baseline {
        live_contacts: live,
        sampled_contacts: sampled,
        ..Baseline::default()
    };
    for _ in 0..runs.max(1) {
        conn.execute("truncate bench.baseline_members").await?;
        let watch = Stopwatch::start();
        result.cold_pass = sweep(conn, buckets, now).await?;
        result.cold.push_lap(watch.lap());
    }
    conn.execute("vacuum (analyze) bench.baseline_members")
        .await?;
    for _ in 0..runs.max(1) {
        let watch = Stopwatch::start();
        result.warm_pass = sweep(conn, buckets, now).await?;
        result.warm.push_lap(watch.lap());
    }
    result.differing = sqlx::query_scalar(
        "select count(*) from (
           (select bucket_id, user_key from bench.baseline_members where active
            except all
            select m.bucket_id, m.user_key from bench.compiled_members as m
              join bench.baseline_sample as s on s.user_key = m.user_key)
           union all
           (select m.bucket_id, m.user_key from bench.compiled_members as m
              join bench.baseline_sample as s on s.user_key = m.user_key
            except all
            select bucket_id, user_key from bench.baseline_members where active)) as d",
    )
    .fetch_one(&mut *conn)
    .await?;
    result.members = sqlx::query_scalar("select count(*) from bench.baseline_members where active")
        .fetch_one(&mut *conn)
        .await?;
    Ok(result)
}
