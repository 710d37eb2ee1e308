//! The deterministic synthetic dataset: generated inside Postgres with `generate_series` and
//! a seeded `random()` (see `dataset.sql`), loaded into the migrated base schema's own tables.
//!
//! The load is the fast path a bulk import would take: the tables' triggers are disabled and
//! the secondary indexes of `events` are dropped for the load and re-created afterwards from
//! their catalog definitions, then everything is vacuumed and analyzed. Every measured phase
//! runs with the real triggers and indexes in place.

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::{Executor, PgConnection, Row};

/// The instant the dataset ends at and the cold backfill runs at.
pub(crate) fn t_end() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .expect("a valid instant")
        .with_timezone(&Utc)
}

/// Bumped whenever `dataset.sql` changes, so `--reuse` never measures stale data.
pub(crate) const DATASET_VERSION: i32 = 1;

/// The `setseed` value.
pub(crate) const SEED: f64 = 0.42;

const DATASET_SQL: &str = include_str!("dataset.sql");

/// The tables whose triggers are off during the load.
const LOADED_TABLES: &[&str] = &["contacts", "events", "messages"];

/// What was loaded (or found), and how long it took.
#[derive(Debug, Clone)]
pub(crate) struct DatasetInfo {
    pub contacts: i64,
    pub live_contacts: i64,
    pub events: i64,
    pub messages: i64,
    pub reused: bool,
    pub generate_s: f64,
    pub index_s: f64,
    pub vacuum_s: f64,
}

impl DatasetInfo {
    /// The dataset section of the report.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "contacts": self.contacts,
            "live_contacts": self.live_contacts,
            "events": self.events,
            "messages": self.messages,
            "reused": self.reused,
            "generate_s": self.generate_s,
            "index_s": self.index_s,
            "vacuum_analyze_s": self.vacuum_s,
            "version": DATASET_VERSION,
            "seed": SEED,
        })
    }
}

async fn ensure_meta(conn: &mut PgConnection) -> Result<()> {
    conn.execute(
        "create schema if not exists bench;
         create table if not exists bench.meta (
           contacts        bigint not null,
           dataset_version integer not null,
           t_end           timestamptz not null,
           seed            float8 not null,
           loaded_at       timestamptz not null default now()
         );
         alter table bench.meta add column if not exists base_schema text;",
    )
    .await?;
    Ok(())
}

/// A digest of the base schema this build installs: a kept database whose base schema was
/// created by a different build is loaded afresh (its migrations may differ, which
/// `migrate` would refuse; its engine code would be re-applied anyway).
fn base_schema_digest() -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let schema = hogsend_schema::SchemaName::new(crate::project::SCHEMA)
        .unwrap_or_else(|e| panic!("the bench schema name: {e}"));
    for m in hogsend_schema::base::migrations(&schema) {
        m.sql.hash(&mut hasher);
    }
    for e in hogsend_schema::base::engine(&schema) {
        e.sql.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

/// Whether this database already holds the dataset for `contacts` ending at `t_end`, under
/// this build's base schema.
pub(crate) async fn already_loaded(
    conn: &mut PgConnection,
    contacts: u64,
    t_end: DateTime<Utc>,
) -> Result<bool> {
    ensure_meta(conn).await?;
    Ok(sqlx::query_scalar(
        "select exists (select 1 from bench.meta
                         where contacts = $1 and dataset_version = $2 and t_end = $3 and seed = $4
                           and base_schema = $5)",
    )
    .bind(contacts as i64)
    .bind(DATASET_VERSION)
    .bind(t_end)
    .bind(SEED)
    .bind(base_schema_digest())
    .fetch_one(&mut *conn)
    .await?)
}

/// How the load ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterLoad {
    /// `VACUUM (ANALYZE)` of the loaded tables (every engine phase starts from that).
    VacuumAnalyze,
    /// Nothing: no statistics, no visibility map, no hint bits (`hogsend-bench fresh-load`).
    Nothing,
}

/// Generates and loads the dataset into the (migrated, empty) schema `hogsend`.
pub(crate) async fn load(
    conn: &mut PgConnection,
    contacts: u64,
    t_end: DateTime<Utc>,
    after: AfterLoad,
) -> Result<DatasetInfo> {
    ensure_meta(conn).await?;
    conn.execute("set max_parallel_workers_per_gather = 0; set maintenance_work_mem = '512MB';")
        .await?;
    for table in LOADED_TABLES {
        conn.execute(format!("alter table hogsend.{table} disable trigger user").as_str())
            .await?;
    }
    let indexes: Vec<(String, String)> = sqlx::query(
        "select indexname::text, indexdef from pg_indexes
          where schemaname = 'hogsend' and tablename = 'events' and indexname <> 'events_pkey'
          order by indexname",
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    for (name, _) in &indexes {
        conn.execute(format!("drop index hogsend.\"{name}\"").as_str())
            .await?;
    }

    let start = Instant::now();
    sqlx::query("select setseed($1)")
        .bind(SEED)
        .execute(&mut *conn)
        .await?;
    for statement in DATASET_SQL.split("\n-- ;;\n") {
        let (sql, names) = number_parameters(statement, &["$contacts", "$t_end"]);
        let mut query = sqlx::query(&sql);
        for name in names {
            query = match name {
                "$contacts" => query.bind(contacts as i64),
                _ => query.bind(t_end),
            };
        }
        query.execute(&mut *conn).await.with_context(|| {
            format!(
                "generating the dataset: {}",
                statement.lines().last().unwrap_or("")
            )
        })?;
    }
    let generate_s = start.elapsed().as_secs_f64();

    let start = Instant::now();
    for (_, def) in &indexes {
        conn.execute(def.as_str()).await?;
    }
    let index_s = start.elapsed().as_secs_f64();
    for table in LOADED_TABLES {
        conn.execute(format!("alter table hogsend.{table} enable trigger user").as_str())
            .await?;
    }
    // The triggers that keep the event summaries were off: count them once.
    conn.execute("select hogsend.rebuild_event_summaries()")
        .await?;
    conn.execute("reset max_parallel_workers_per_gather; reset maintenance_work_mem;")
        .await?;

    let start = Instant::now();
    if after == AfterLoad::VacuumAnalyze {
        conn.execute("vacuum (analyze) hogsend.contacts, hogsend.events, hogsend.messages")
            .await?;
    }
    let vacuum_s = start.elapsed().as_secs_f64();

    sqlx::query("delete from bench.meta")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "insert into bench.meta (contacts, dataset_version, t_end, seed, base_schema)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(contacts as i64)
    .bind(DATASET_VERSION)
    .bind(t_end)
    .bind(SEED)
    .bind(base_schema_digest())
    .execute(&mut *conn)
    .await?;
    let mut info = counts(conn).await?;
    info.generate_s = generate_s;
    info.index_s = index_s;
    info.vacuum_s = vacuum_s;
    Ok(info)
}

/// Replaces the named parameters of `sql` (`$contacts`) by positional ones (`$1`), numbered
/// in order of first use; returns the SQL and the names in bind order. Names inside `--`
/// comments are replaced too, harmlessly.
pub(crate) fn number_parameters<'a>(sql: &str, names: &[&'a str]) -> (String, Vec<&'a str>) {
    let mut used: Vec<(usize, &'a str)> = names
        .iter()
        .filter_map(|n| sql.find(n).map(|at| (at, *n)))
        .collect();
    used.sort();
    let mut out = sql.to_owned();
    for (i, (_, name)) in used.iter().enumerate() {
        out = out.replace(name, &format!("${}", i + 1));
    }
    (out, used.into_iter().map(|(_, n)| n).collect())
}

/// Counts what the database holds.
pub(crate) async fn counts(conn: &mut PgConnection) -> Result<DatasetInfo> {
    let row = sqlx::query(
        "select (select count(*) from hogsend.contacts),
                (select count(*) from hogsend.contacts where deleted_at is null),
                (select count(*) from hogsend.events where event not like 'bucket:%'),
                (select count(*) from hogsend.messages)",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(DatasetInfo {
        contacts: row.try_get(0)?,
        live_contacts: row.try_get(1)?,
        events: row.try_get(2)?,
        messages: row.try_get(3)?,
        reused: false,
        generate_s: 0.0,
        index_s: 0.0,
        vacuum_s: 0.0,
    })
}

/// Puts the engine's state back to "just migrated": no memberships, transitions or
/// engine-recorded events, no queued keys, every bucket unsettled, no tick yet. The data
/// (contacts, events, messages) is untouched.
pub(crate) async fn reset_state(conn: &mut PgConnection) -> Result<()> {
    conn.execute(
        "truncate hogsend.memberships, hogsend.transitions;
         delete from hogsend.events
          where event >= 'bucket:' and event < 'bucket;' and event like 'bucket:%';
         truncate hogsend.changed_keys;
         update hogsend.buckets set settled_fingerprint = null, settled_at = null;
         update hogsend.tick_state set last_tick_at = null, ticks = 0;",
    )
    .await?;
    vacuum_after_rollback(conn).await
}

/// Forces a checkpoint, so that the write-back of a large write (the load, a backfill) does
/// not overlap the next measurement. Needs superuser or `pg_checkpoint`; without, the next
/// figures may include some of that write-back.
pub(crate) async fn checkpoint(conn: &mut PgConnection) -> Result<()> {
    if let Err(err) = conn.execute("checkpoint").await {
        eprintln!("warning: no CHECKPOINT between phases ({err})");
    }
    Ok(())
}

/// Clears the dead rows a rolled-back repetition left behind in the tables a tick writes, so
/// the next repetition starts from the same physical state (cheap: only the pages the
/// repetition touched are visited). The session's temporary work tables are emptied too: a
/// committed tick empties them (`on commit delete rows`), a rolled-back one leaves their dead
/// rows behind for the next repetition to scan.
pub(crate) async fn vacuum_after_rollback(conn: &mut PgConnection) -> Result<()> {
    conn.execute(
        "vacuum hogsend.events, hogsend.contacts, hogsend.memberships, hogsend.transitions,
                hogsend.changed_keys, hogsend.tick_state, hogsend.buckets, hogsend.runs,
                hogsend.run_steps, hogsend.messages, hogsend.journey_inbox,
                hogsend.journey_skips",
    )
    .await?;
    let temp: Vec<String> = sqlx::query_scalar(
        "select format('%I', relname) from pg_class
          where relnamespace = pg_my_temp_schema() and relkind = 'r' order by relname",
    )
    .fetch_all(&mut *conn)
    .await?;
    if !temp.is_empty() {
        conn.execute(format!("truncate {}", temp.join(", ")).as_str())
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_parameters_are_numbered_by_first_use() {
        let (sql, names) =
            number_parameters("select $t_end, $contacts, $t_end", &["$contacts", "$t_end"]);
        assert_eq!(sql, "select $1, $2, $1");
        assert_eq!(names, ["$t_end", "$contacts"]);
        let (sql, names) = number_parameters("select $t_end", &["$contacts", "$t_end"]);
        assert_eq!((sql.as_str(), names), ("select $1", vec!["$t_end"]));
    }
}
