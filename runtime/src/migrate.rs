//! `hogsend migrate`: the base schema, then the compiled project, in one transaction.

use crate::db::schema_ident;
use crate::{Error, Result};
use hogsend_compiler::emit::{apply_order, base_migrations, GeneratedFile, VERSION};
use hogsend_compiler::plan::lock_key;
use serde::Serialize;
use sqlx::{Connection, Executor, PgConnection, Row};

/// What a migration did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrateReport {
    /// Base schema version before (0: none) and after.
    pub base_from: i32,
    pub base_to: i32,
    /// Bucket ids added, changed (criteria or policy) and removed by this deploy.
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// The base schema version the connected database holds (0 when none).
pub async fn base_version(conn: &mut PgConnection, schema: &str) -> Result<i32> {
    let exists: bool = sqlx::query_scalar("select to_regclass($1) is not null")
        .bind(format!("{}.schema_migrations", schema_ident(schema)))
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(0);
    }
    let sql = format!(
        "select coalesce(max(version), 0) from {}.schema_migrations",
        schema_ident(schema)
    );
    Ok(sqlx::query_scalar(&sql).fetch_one(&mut *conn).await?)
}

/// Applies the base schema migrations the database lacks and then every generated file, in
/// one transaction, serialized with ticks. Idempotent. Refuses a database whose base schema
/// is newer than this build's.
pub async fn migrate(
    conn: &mut PgConnection,
    schema: &str,
    generated: &[GeneratedFile],
) -> Result<MigrateReport> {
    let mut tx = conn.begin().await?;
    let report = apply(&mut tx, schema, generated).await?;
    tx.commit().await?;
    Ok(report)
}

/// What deploying a project would change, computed by applying it in a transaction that is
/// rolled back: the migration report plus, for every new or changed bucket, how many
/// contacts match it now and how many are members today.
pub async fn plan(
    conn: &mut PgConnection,
    schema: &str,
    generated: &[GeneratedFile],
) -> Result<PlanReport> {
    let mut tx = conn.begin().await?;
    let migration = apply(&mut tx, schema, generated).await?;
    let mut buckets = Vec::new();
    for id in migration.added.iter().chain(&migration.changed) {
        let matching = crate::db::count_matching(&mut tx, schema, id).await?;
        let members = crate::db::count_members(&mut tx, schema, id).await?;
        buckets.push(BucketPlan {
            id: id.clone(),
            matching_now: matching,
            members_now: members,
        });
    }
    tx.rollback().await?;
    Ok(PlanReport { migration, buckets })
}

/// The result of [`plan`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanReport {
    pub migration: MigrateReport,
    pub buckets: Vec<BucketPlan>,
}

/// A new or changed bucket in a [`PlanReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketPlan {
    pub id: String,
    /// Contacts matching the new criteria at the database's `now()` (the backfill's joins
    /// plus the members who stay).
    pub matching_now: i64,
    /// Active members today (0 for a new bucket).
    pub members_now: i64,
}

async fn apply(
    tx: &mut PgConnection,
    schema: &str,
    generated: &[GeneratedFile],
) -> Result<MigrateReport> {
    let s = schema_ident(schema);
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(lock_key(schema))
        .execute(&mut *tx)
        .await?;
    let bootstrap = format!(
        "create schema if not exists {s};
         create table if not exists {s}.schema_migrations (
           version         integer primary key,
           name            text not null,
           hogsend_version text not null,
           applied_at      timestamptz not null default now()
         );"
    );
    (&mut *tx).execute(sqlx::raw_sql(&bootstrap)).await?;
    let base_from = base_version(&mut *tx, schema).await?;
    let migrations = base_migrations(schema);
    let supported = migrations.iter().map(|m| m.version).max().unwrap_or(0);
    if base_from > supported {
        return Err(Error::NewerSchema {
            schema: schema.to_owned(),
            found: base_from,
            supported,
        });
    }
    let pending: Vec<_> = migrations
        .into_iter()
        .filter(|m| m.version > base_from)
        .collect();
    // `Executor::execute(raw_sql)` rather than `raw_sql().execute()`: the latter makes the
    // future not provably `Send` (sqlx higher-ranked lifetimes), and the daemon spawns it.
    for migration in pending {
        (&mut *tx).execute(sqlx::raw_sql(&migration.sql)).await?;
        sqlx::query(&format!(
            "insert into {s}.schema_migrations (version, name, hogsend_version) values ($1, $2, $3)"
        ))
        .bind(migration.version)
        .bind(migration.name)
        .bind(VERSION)
        .execute(&mut *tx)
        .await?;
    }
    let mut sync = serde_json::Value::Null;
    let ordered: Vec<(String, String)> = apply_order(generated)
        .into_iter()
        .map(|f| (f.path.clone(), f.contents.clone()))
        .collect();
    for (path, contents) in ordered {
        let rows = (&mut *tx).fetch_all(sqlx::raw_sql(&contents)).await?;
        if path == "project.sql" {
            if let Some(row) = rows.last() {
                sync = row.try_get::<serde_json::Value, _>(0)?;
            }
        }
    }
    let list = |key: &str| -> Vec<String> {
        sync.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(MigrateReport {
        base_from,
        base_to: base_from.max(supported),
        added: list("added"),
        changed: list("changed"),
        removed: list("removed"),
    })
}
