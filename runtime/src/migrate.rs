//! `hogsend migrate`: the base schema, its engine code and the compiled project, in one
//! transaction.
//!
//! The base schema has two parts with two lifecycles (ARCHITECTURE.md, "Schema lifecycle";
//! `hogsend_schema::base`): numbered migrations (tables, indexes), applied once each and
//! recorded with their checksum, and engine files (functions, triggers, views), re-applied by
//! every migrate so that the database always runs this binary's engine code.

use crate::{Error, Result};
use hogsend_schema::{apply_order, base, lock_key, BucketId, GeneratedFile, SchemaName};
use serde::Serialize;
use sqlx::{Connection, Executor, PgConnection, Row};

/// The hogsend version recorded with each applied migration.
const VERSION: &str = env!("CARGO_PKG_VERSION");

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
    /// Campaigns this deploy added or changed whose `send_at` is already past: held, not
    /// sent automatically (`POST /v1/campaigns/{id}/start` sends them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_campaigns: Vec<HeldCampaign>,
}

/// A campaign held at deploy because its `send_at` is past.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HeldCampaign {
    pub id: String,
    /// The `send_at` as deployed (RFC 3339, or the local time).
    pub send_at: String,
}

/// The highest base-schema migration the database holds (0 when none). `conn` is a
/// runtime connection for the schema (`db::connect`, `db::connect_one`).
pub async fn base_version(conn: &mut PgConnection) -> Result<i32> {
    let exists: bool = sqlx::query_scalar("select to_regclass('schema_migrations') is not null")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(0);
    }
    Ok(
        sqlx::query_scalar("select coalesce(max(version), 0) from schema_migrations")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// The highest base-schema migration this build knows: a database below it needs `migrate`.
pub fn supported_version() -> i32 {
    base::latest_version()
}

/// Applies the base schema migrations the database lacks, every engine file and then every
/// generated file, in one transaction, serialized with ticks. Idempotent. Refuses a
/// database holding a migration this build does not know (a downgrade) or one whose
/// recorded checksum differs from this build's.
pub async fn migrate(
    conn: &mut PgConnection,
    schema: &SchemaName,
    generated: &[GeneratedFile],
) -> Result<MigrateReport> {
    let mut tx = conn.begin().await?;
    let (report, _) = apply(&mut tx, schema, generated).await?;
    tx.commit().await?;
    Ok(report)
}

/// What deploying a project would change, computed by applying it in a transaction that is
/// rolled back: the migration report plus, for every new or changed bucket, how many
/// contacts match it now and how many are members today.
pub async fn plan(
    conn: &mut PgConnection,
    schema: &SchemaName,
    generated: &[GeneratedFile],
) -> Result<PlanReport> {
    let mut tx = conn.begin().await?;
    let (migration, journey_sync) = apply(&mut tx, schema, generated).await?;
    let mut buckets = Vec::new();
    for id in migration.added.iter().chain(&migration.changed) {
        // Ids come back from `_sync_project`, which stores only the compiler's valid ids.
        let bucket = BucketId::new(id).map_err(|e| Error::Corrupt(e.to_string()))?;
        let matching = crate::db::count_matching(&mut tx, schema, &bucket).await?;
        let members = crate::db::count_members(&mut tx, schema, id).await?;
        buckets.push(BucketPlan {
            id: id.clone(),
            matching_now: matching,
            members_now: members,
        });
    }
    let journeys = journey_changes(&mut tx, &journey_sync).await?;
    let campaigns = campaign_reach(&mut tx).await?;
    tx.rollback().await?;
    Ok(PlanReport {
        migration,
        buckets,
        journeys,
        campaigns,
    })
}

/// Every campaign not yet started, with the audience it would reach now (inside the
/// deploy's transaction).
async fn campaign_reach(tx: &mut PgConnection) -> Result<Vec<CampaignPlan>> {
    let rows: Vec<(String, String, String, bool, i64, i64)> = sqlx::query_as(
        "select b.id, b.audience_kind, b.audience_id, b.auto_start, a.n, a.eligible
           from broadcasts b
          cross join lateral (
            select count(*) as n,
                   count(*) filter (where message_skip_reason(k.email, k.user_key,
                     case when b.audience_kind = 'list' then b.audience_id
                          else (select t.category from templates t where t.id = b.template) end)
                     is null) as eligible
              from contacts k
             where k.deleted_at is null
               and case when b.audience_kind = 'bucket'
                        then exists (select 1 from memberships m where m.bucket_id = b.audience_id
                                        and m.user_key = k.user_key and m.active)
                        when exists (select 1 from lists l where l.id = b.audience_id
                                        and l.default_subscribed)
                        then not exists (select 1 from subscriptions u where u.user_key = k.user_key
                                            and u.list_id = b.audience_id and u.status = 'unsubscribed')
                        else exists (select 1 from subscriptions u where u.user_key = k.user_key
                                        and u.list_id = b.audience_id and u.status = 'subscribed') end
          ) a
          where b.status = 'scheduled'
          order by b.id",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, kind, audience, auto_start, n, eligible)| CampaignPlan {
                id,
                audience: format!("{kind} {audience}"),
                held: !auto_start,
                audience_now: n,
                eligible_now: eligible,
            },
        )
        .collect())
}

/// The journeys a deploy adds, changes or removes, with the runs each change affects, from
/// `_sync_journeys`' result (inside the deploy's transaction).
async fn journey_changes(
    tx: &mut PgConnection,
    sync: &serde_json::Value,
) -> Result<Vec<JourneyChange>> {
    let ids = |key: &str| -> Vec<String> {
        sync.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let ended = |id: &str| -> i64 {
        sync.get("runs_ended_by_journey")
            .and_then(|m| m.get(id))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0)
    };
    let mut out = Vec::new();
    for (change, key) in [
        ("add", "added"),
        ("change", "changed"),
        ("remove", "removed"),
    ] {
        for id in ids(key) {
            let in_flight: i64 = sqlx::query_scalar(
                "select count(*) from runs where journey_id = $1 and status in ('active', 'waiting')",
            )
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
            out.push(JourneyChange {
                runs_ended: ended(&id),
                id,
                change,
                runs_in_flight: in_flight,
            });
        }
    }
    Ok(out)
}

/// A journey (or reaction) a deploy adds, changes or removes, in a [`PlanReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JourneyChange {
    pub id: String,
    /// `add`, `change` or `remove`.
    pub change: &'static str,
    /// Runs in flight that stay (at a step id the new program still has).
    pub runs_in_flight: i64,
    /// Runs in flight that the deploy ends `exited` (`step_removed`).
    pub runs_ended: i64,
}

/// The result of [`plan`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanReport {
    pub migration: MigrateReport,
    pub buckets: Vec<BucketPlan>,
    /// Journeys and reactions added, changed or removed, with the runs each affects.
    pub journeys: Vec<JourneyChange>,
    /// The campaigns not yet started, with the audience each would reach now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub campaigns: Vec<CampaignPlan>,
}

/// A campaign not yet started, in a [`PlanReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignPlan {
    pub id: String,
    /// `bucket ID` or `list ID`.
    pub audience: String,
    /// Waits for `POST /v1/campaigns/{id}/start`.
    pub held: bool,
    /// Contacts in the audience now.
    pub audience_now: i64,
    /// Of those, the ones who may receive it now (the others would be skipped).
    pub eligible_now: i64,
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

/// One row of `schema_migrations`.
struct Applied {
    version: i32,
    name: String,
    checksum: String,
}

/// Compares the database's applied migrations with this build's: every applied one must be
/// known, with the same checksum.
fn verify(schema: &SchemaName, applied: &[Applied], known: &[base::Migration]) -> Result<()> {
    let supported = known.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(newest) = applied.iter().map(|a| a.version).max() {
        if newest > supported {
            return Err(Error::NewerSchema {
                schema: schema.to_string(),
                found: newest,
                supported,
            });
        }
    }
    for a in applied {
        match known.iter().find(|m| m.version == a.version) {
            Some(m) if m.checksum == a.checksum => {}
            Some(m) => {
                return Err(Error::MigrationChecksum {
                    schema: schema.to_string(),
                    version: a.version,
                    name: a.name.clone(),
                    found: a.checksum.clone(),
                    expected: m.checksum.clone(),
                })
            }
            // Versions are consecutive from 1, so a version at most `supported` is known.
            None => {
                return Err(Error::NewerSchema {
                    schema: schema.to_string(),
                    found: a.version,
                    supported,
                })
            }
        }
    }
    Ok(())
}

async fn apply(
    tx: &mut PgConnection,
    schema: &SchemaName,
    generated: &[GeneratedFile],
) -> Result<(MigrateReport, serde_json::Value)> {
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(lock_key(schema.as_str()))
        .execute(&mut *tx)
        .await?;
    // `Executor::execute(raw_sql)` rather than `raw_sql().execute()`: the latter makes the
    // future not provably `Send` (sqlx higher-ranked lifetimes), and the daemon spawns it.
    (&mut *tx)
        .execute(sqlx::raw_sql(&base::bootstrap(schema)))
        .await?;
    // The statements below (and `plan`'s) are static: they run on the schema whatever the
    // connection's own `search_path`, which is back after the transaction.
    (&mut *tx)
        .execute(base::set_local_search_path(schema).as_str())
        .await?;
    let has_checksums: bool = sqlx::query_scalar(
        "select exists (select 1 from information_schema.columns
          where table_schema = $1 and table_name = 'schema_migrations' and column_name = 'checksum')",
    )
    .bind(schema.as_str())
    .fetch_one(&mut *tx)
    .await?;
    if !has_checksums {
        return Err(Error::UnversionedSchema(schema.to_string()));
    }
    let applied: Vec<Applied> =
        sqlx::query("select version, name, checksum from schema_migrations order by version")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| {
                Ok(Applied {
                    version: row.try_get(0)?,
                    name: row.try_get(1)?,
                    checksum: row.try_get(2)?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()?;
    let migrations = base::migrations(schema);
    verify(schema, &applied, &migrations)?;
    let base_from = applied.iter().map(|a| a.version).max().unwrap_or(0);
    for migration in migrations
        .iter()
        .filter(|m| applied.iter().all(|a| a.version != m.version))
    {
        (&mut *tx).execute(sqlx::raw_sql(&migration.sql)).await?;
        sqlx::query(
            "insert into schema_migrations (version, name, checksum, hogsend_version)
             values ($1, $2, $3, $4)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(&migration.checksum)
        .bind(VERSION)
        .execute(&mut *tx)
        .await?;
    }
    for file in base::engine(schema) {
        (&mut *tx).execute(sqlx::raw_sql(&file.sql)).await?;
    }
    let mut sync = serde_json::Value::Null;
    let mut journey_sync = serde_json::Value::Null;
    let mut campaign_sync = serde_json::Value::Null;
    let ordered: Vec<(String, String)> = apply_order(generated)
        .into_iter()
        .map(|f| (f.path.clone(), f.contents.clone()))
        .collect();
    for (path, contents) in ordered {
        let rows = (&mut *tx).fetch_all(sqlx::raw_sql(&contents)).await?;
        if path == "messaging.sql" {
            // `_sync_campaigns` runs last.
            if let Some(row) = rows.last() {
                campaign_sync = row
                    .try_get::<serde_json::Value, _>(0)
                    .unwrap_or(serde_json::Value::Null);
            }
        }
        if path == "project.sql" {
            if let Some(row) = rows.last() {
                sync = row.try_get::<serde_json::Value, _>(0)?;
            }
            // `_sync_journeys` runs first (its row comes first when there are two).
            if rows.len() > 1 {
                if let Some(row) = rows.first() {
                    journey_sync = row.try_get::<serde_json::Value, _>(0)?;
                }
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
    let report = MigrateReport {
        base_from,
        base_to: base_from.max(supported_version()),
        added: list("added"),
        changed: list("changed"),
        removed: list("removed"),
        held_campaigns: campaign_sync
            .get("held")
            .and_then(|h| serde_json::from_value(h.clone()).ok())
            .unwrap_or_default(),
    };
    Ok((report, journey_sync))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: i32, checksum: &str) -> Applied {
        Applied {
            version,
            name: "base".to_owned(),
            checksum: checksum.to_owned(),
        }
    }

    #[test]
    fn verify_refuses_unknown_and_edited_migrations() {
        let schema = SchemaName::default();
        let known = base::migrations(&schema);
        let good = known[0].checksum.clone();
        assert!(verify(&schema, &[], &known).is_ok());
        assert!(verify(&schema, &[applied(1, &good)], &known).is_ok());
        let err = verify(&schema, &[applied(1, "0000")], &known).unwrap_err();
        assert!(
            matches!(err, Error::MigrationChecksum { version: 1, .. }),
            "{err}"
        );
        let newer = supported_version() + 1;
        let err = verify(&schema, &[applied(1, &good), applied(newer, "x")], &known).unwrap_err();
        assert!(
            matches!(err, Error::NewerSchema { found, .. } if found == newer),
            "{err}"
        );
    }
}
