//! The hand-written comparison for the cold backfill: per bucket, a hand-written set-based
//! query (`handwritten.sql`) and a plain writer that stores exactly what the compiled
//! backfill stores — membership rows with their dwell anchor and next timer, one `entered`
//! transition each, and the dwell firings already due with their `bucket:dwell:…` events —
//! into the same tables, with the same indexes and triggers.
//!
//! Each run happens in a transaction that first empties `memberships` and `transitions` and
//! removes the engine's events (untimed), then times the 20 buckets, and is rolled back. The
//! last run checks, before rolling back, that the hand-written SQL produced exactly the
//! compiled backfill's members, anchors, timers and transition counts.

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use hogsend_compiler::ir::{Bucket, DwellKind};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

use crate::dataset;
use crate::measure::{Samples, Stopwatch};

const HANDWRITTEN_SQL: &str = include_str!("handwritten.sql");

/// The writer shared by the 20 hand-written queries (reads the session table
/// `bench_hw_match`).
const WRITER_SQL: &str = r#"
create or replace function bench.hw_write(p_bucket text, p_now timestamptz, p_rules jsonb,
                                          p_max_dwell interval)
returns bigint language plpgsql as $hw$
declare
  n bigint;
begin
  insert into hogsend.memberships
         (bucket_id, user_key, active, entry_count, entered_at, dwell_anchor, source, next_check_at)
  select p_bucket, x.user_key, true, 1, p_now, x.anchor, 'backfill',
         least(p_now + p_max_dwell,
               (select min(case when x.anchor + r.period * interval '1 second' > p_now
                                then x.anchor + r.period * interval '1 second'
                                when r.kind = 'every' then p_now + r.period * interval '1 second' end)
                  from jsonb_to_recordset(p_rules) as r(label text, kind text, period bigint)))
    from bench_hw_match as x;
  get diagnostics n = row_count;
  insert into hogsend.transitions (bucket_id, user_key, entry_count, kind, source, occurred_at)
  select p_bucket, x.user_key, 1, 'entered', 'backfill', p_now from bench_hw_match as x;
  if p_rules <> '[]'::jsonb then
    with due as (
      select x.user_key, r.label,
             case when r.kind = 'after' then 1
                  else floor(extract(epoch from p_now - x.anchor) / r.period)::bigint end as ordinal
        from bench_hw_match as x
       cross join jsonb_to_recordset(p_rules) as r(label text, kind text, period bigint)
       where x.anchor + r.period * interval '1 second' <= p_now),
    fired as (
      insert into hogsend.transitions
             (bucket_id, user_key, entry_count, kind, label, ordinal, source, occurred_at)
      select p_bucket, d.user_key, 1, 'dwell', d.label, d.ordinal, 'backfill', p_now from due as d)
    insert into hogsend.events (user_key, event, properties, occurred_at, received_at, message_id)
    select d.user_key, 'bucket:dwell:' || p_bucket || ':' || d.label,
           jsonb_build_object('bucket_id', p_bucket, 'entry_count', 1, 'label', d.label,
                              'ordinal', d.ordinal),
           p_now, p_now,
           'bucket:' || p_bucket || ':' || d.user_key || ':1:dwell:' || d.label || ':' || d.ordinal
      from due as d
    on conflict (message_id) where message_id is not null do nothing;
  end if;
  return n;
end $hw$;
"#;

/// One bucket's hand-written query and the policy its writer needs.
struct Query {
    id: String,
    sql: String,
    rules: Value,
    max_dwell_s: Option<i64>,
}

/// The sections of `handwritten.sql`, by bucket id.
fn sections() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in HANDWRITTEN_SQL.lines() {
        if let Some(id) = line.strip_prefix("-- bucket: ") {
            out.push((id.trim().to_owned(), String::new()));
        } else if let Some((_, sql)) = out.last_mut() {
            if !line.starts_with("--") {
                sql.push_str(line);
                sql.push('\n');
            }
        }
    }
    out
}

fn queries(buckets: &[Bucket]) -> Result<Vec<Query>> {
    let sections = sections();
    buckets
        .iter()
        .map(|b| {
            let sql = sections
                .iter()
                .find(|(id, _)| id.as_str() == b.id.as_str())
                .map(|(_, sql)| sql.trim().to_owned())
                .ok_or_else(|| anyhow!("no hand-written query for bucket {}", b.id))?;
            let rules: Vec<Value> = b
                .dwell
                .iter()
                .map(|r| {
                    json!({
                        "label": r.label,
                        "kind": match r.kind { DwellKind::After => "after", DwellKind::Every => "every" },
                        "period": r.period,
                    })
                })
                .collect();
            Ok(Query {
                id: b.id.to_string(),
                sql,
                rules: Value::Array(rules),
                max_dwell_s: b.max_dwell,
            })
        })
        .collect()
}

/// Snapshots the compiled backfill's result (members with anchors and timers, transition
/// counts) for the cross-checks. Call right after the cold backfill.
pub(crate) async fn snapshot_compiled(conn: &mut PgConnection) -> Result<()> {
    conn.execute(
        "drop table if exists bench.compiled_members, bench.compiled_transitions;
         create table bench.compiled_members as
           select bucket_id, user_key, dwell_anchor, next_check_at
             from hogsend.memberships where active;
         create index on bench.compiled_members (user_key);
         create table bench.compiled_transitions as
           select bucket_id, kind, label, count(*) as n from hogsend.transitions group by 1, 2, 3;
         analyze bench.compiled_members;",
    )
    .await?;
    Ok(())
}

/// What the cross-check found: buckets whose hand-written rows differ from the compiled
/// backfill's (with the number of differing rows), and whether the transition counts agree.
#[derive(Debug, Default)]
pub(crate) struct Check {
    pub member_rows: i64,
    pub differing: Vec<(String, i64)>,
    pub transitions_agree: bool,
}

impl Check {
    /// The check as JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "member_rows": self.member_rows,
            "agrees_with_compiled": self.differing.is_empty() && self.transitions_agree,
            "differing_rows_by_bucket": self.differing.iter().map(|(b, n)| json!({"bucket": b, "rows": n})).collect::<Vec<_>>(),
            "transition_counts_agree": self.transitions_agree,
        })
    }
}

async fn check(conn: &mut PgConnection) -> Result<Check> {
    let differing: Vec<(String, i64)> = sqlx::query_as(
        "select bucket_id, count(*) from (
           (select bucket_id, user_key, dwell_anchor, next_check_at
              from hogsend.memberships where active
            except all
            select bucket_id, user_key, dwell_anchor, next_check_at from bench.compiled_members)
           union all
           (select bucket_id, user_key, dwell_anchor, next_check_at from bench.compiled_members
            except all
            select bucket_id, user_key, dwell_anchor, next_check_at
              from hogsend.memberships where active)) as d
         group by bucket_id order by bucket_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let transitions_agree: bool = sqlx::query_scalar(
        "select not exists (
           (select bucket_id, kind, label, count(*) from hogsend.transitions group by 1, 2, 3
            except select bucket_id, kind, label, n from bench.compiled_transitions)
           union all
           (select bucket_id, kind, label, n from bench.compiled_transitions
            except select bucket_id, kind, label, count(*) from hogsend.transitions group by 1, 2, 3))",
    )
    .fetch_one(&mut *conn)
    .await?;
    let member_rows: i64 =
        sqlx::query_scalar("select count(*) from hogsend.memberships where active")
            .fetch_one(&mut *conn)
            .await?;
    Ok(Check {
        member_rows,
        differing,
        transitions_agree,
    })
}

/// Times the hand-written backfill of every bucket `runs` times; checks the last run against
/// the compiled snapshot.
pub(crate) async fn measure(
    conn: &mut PgConnection,
    buckets: &[Bucket],
    runs: usize,
    now: DateTime<Utc>,
) -> Result<(Samples, Check)> {
    let queries = queries(buckets)?;
    conn.execute("create schema if not exists bench").await?;
    conn.execute(WRITER_SQL).await?;
    conn.execute(
        "create temp table if not exists bench_hw_match (user_key text primary key, anchor timestamptz)",
    )
    .await?;
    let mut samples = Samples::default();
    let mut result = Check::default();
    let runs = runs.max(1);
    for run in 0..runs {
        dataset::checkpoint(conn).await?;
        let mut tx = conn.begin().await?;
        tx.execute(
            "truncate hogsend.memberships, hogsend.transitions;
             delete from hogsend.events
              where event >= 'bucket:' and event < 'bucket;' and event like 'bucket:%';",
        )
        .await?;
        let watch = Stopwatch::start();
        for q in &queries {
            tx.execute("truncate bench_hw_match").await?;
            sqlx::query(&format!(
                "insert into bench_hw_match (user_key, anchor)
                 select q.user_key, least(coalesce(q.anchor, $1), $1)
                   from ({}) as q (user_key, anchor)",
                q.sql
            ))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("select bench.hw_write($1, $2, $3, make_interval(secs => $4))")
                .bind(&q.id)
                .bind(now)
                .bind(&q.rules)
                .bind(q.max_dwell_s.map(|s| s as f64))
                .execute(&mut *tx)
                .await?;
        }
        samples.push_lap(watch.lap());
        if run + 1 == runs {
            result = check(&mut tx).await?;
        }
        tx.rollback().await?;
        dataset::vacuum_after_rollback(conn).await?;
    }
    Ok((samples, result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{compile, standard_source};

    #[test]
    fn every_standard_bucket_has_a_hand_written_query() {
        let program = compile(&standard_source()).expect("compiles").program;
        let q = queries(&program.buckets).expect("all present");
        assert_eq!(q.len(), 20);
        assert!(q.iter().all(|q| q.sql.starts_with("select")));
        assert_eq!(sections().len(), 20);
    }
}
