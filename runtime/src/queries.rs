//! Reads behind the query API, each one statement returning JSON built by Postgres.
//!
//! Pagination is keyset everywhere (`after` a key or id, ascending), so pages stay stable
//! while members join and leave: a page never repeats a row and never skips one that was
//! present for the whole walk.

use crate::db::schema_ident;
use crate::Result;
use serde_json::Value;
use sqlx::PgPool;

const CONTACT_JSON: &str =
    "jsonb_build_object('key', c.user_key, 'id', c.id, 'external_id', c.external_id,
  'anonymous_id', c.anonymous_id, 'email', c.email, 'properties', c.properties,
  'created_at', c.created_at, 'updated_at', c.updated_at)";

/// The live contact with key `key`.
pub async fn contact(pool: &PgPool, schema: &str, key: &str) -> Result<Option<Value>> {
    let s = schema_ident(schema);
    Ok(sqlx::query_scalar(&format!(
        "select {CONTACT_JSON} from {s}.contacts c where c.user_key = $1 and c.deleted_at is null"
    ))
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

/// Brings a soft-deleted contact back (a `PUT` on it); true if it was deleted.
pub async fn undelete_contact(pool: &PgPool, schema: &str, key: &str) -> Result<bool> {
    let s = schema_ident(schema);
    let done = sqlx::query(&format!(
        "update {s}.contacts set deleted_at = null, updated_at = now()
          where user_key = $1 and deleted_at is not null"
    ))
    .bind(key)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Soft-deletes a contact and ends its memberships silently (`delete_contact` in the base
/// schema). False when there is no live contact `key`.
pub async fn delete_contact(pool: &PgPool, schema: &str, key: &str) -> Result<bool> {
    let s = schema_ident(schema);
    Ok(
        sqlx::query_scalar(&format!("select {s}.delete_contact($1)"))
            .bind(key)
            .fetch_one(pool)
            .await?,
    )
}

/// The buckets a live contact is in now.
pub async fn contact_buckets(pool: &PgPool, schema: &str, key: &str) -> Result<Value> {
    let s = schema_ident(schema);
    Ok(sqlx::query_scalar(&format!(
        "select coalesce(jsonb_agg(jsonb_build_object('bucket_id', m.bucket_id,
                  'entered_at', m.entered_at, 'entry_count', m.entry_count) order by m.bucket_id), '[]')
           from {s}.memberships m where m.user_key = $1 and m.active"
    ))
    .bind(key)
    .fetch_one(pool)
    .await?)
}

/// A page of a contact's events, oldest first, after event id `after`.
pub async fn contact_events(
    pool: &PgPool,
    schema: &str,
    key: &str,
    after: i64,
    limit: i64,
) -> Result<Value> {
    let s = schema_ident(schema);
    Ok(sqlx::query_scalar(&format!(
        "select coalesce(jsonb_agg(jsonb_build_object('id', e.id, 'event', e.event,
                  'properties', e.properties, 'occurred_at', e.occurred_at,
                  'received_at', e.received_at, 'message_id', e.message_id) order by e.id), '[]')
           from (select * from {s}.events where user_key = $1 and id > $2 order by id limit $3) e"
    ))
    .bind(key)
    .bind(after)
    .bind(limit)
    .fetch_one(pool)
    .await?)
}

const BUCKET_JSON: &str = "jsonb_build_object('id', b.id, 'name', b.definition->'name',
  'description', b.definition->'description', 'criteria', b.definition->'criteria',
  'enabled', b.enabled, 'entry', b.definition->'entry', 'min_dwell', b.definition->'min_dwell',
  'max_dwell', b.definition->'max_dwell', 'dwell', b.definition->'dwell',
  'source', b.definition->'source', 'settled', b.settled_fingerprint is not distinct from b.fingerprint,
  'deployed_at', b.deployed_at,
  'members', (select count(*) from {s}.memberships m where m.bucket_id = b.id and m.active))";

/// Every deployed bucket with its live member count.
pub async fn buckets(pool: &PgPool, schema: &str) -> Result<Value> {
    let s = schema_ident(schema);
    let json = BUCKET_JSON.replace("{s}", &s);
    Ok(sqlx::query_scalar(&format!(
        "select coalesce(jsonb_agg({json} order by b.id), '[]') from {s}.buckets b"
    ))
    .fetch_one(pool)
    .await?)
}

/// One bucket, if deployed.
pub async fn bucket(pool: &PgPool, schema: &str, id: &str) -> Result<Option<Value>> {
    let s = schema_ident(schema);
    let json = BUCKET_JSON.replace("{s}", &s);
    Ok(
        sqlx::query_scalar(&format!("select {json} from {s}.buckets b where b.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Whether bucket `id` is deployed.
pub async fn bucket_exists(pool: &PgPool, schema: &str, id: &str) -> Result<bool> {
    let s = schema_ident(schema);
    Ok(sqlx::query_scalar(&format!(
        "select exists (select 1 from {s}.buckets where id = $1)"
    ))
    .bind(id)
    .fetch_one(pool)
    .await?)
}

/// A page of a bucket's active members by key, after key `after`.
pub async fn members(
    pool: &PgPool,
    schema: &str,
    bucket: &str,
    after: &str,
    limit: i64,
) -> Result<Value> {
    let s = schema_ident(schema);
    Ok(sqlx::query_scalar(&format!(
        "select coalesce(jsonb_agg(jsonb_build_object('key', m.user_key, 'entered_at', m.entered_at,
                  'entry_count', m.entry_count) order by m.user_key), '[]')
           from (select * from {s}.memberships
                  where bucket_id = $1 and active and user_key > $2
                  order by user_key limit $3) m"
    ))
    .bind(bucket)
    .bind(after)
    .bind(limit)
    .fetch_one(pool)
    .await?)
}

/// A contact's active membership of a bucket.
pub async fn member(pool: &PgPool, schema: &str, bucket: &str, key: &str) -> Result<Option<Value>> {
    let s = schema_ident(schema);
    Ok(sqlx::query_scalar(&format!(
        "select jsonb_build_object('bucket_id', m.bucket_id, 'key', m.user_key,
                'entered_at', m.entered_at, 'entry_count', m.entry_count, 'source', m.source)
           from {s}.memberships m where m.bucket_id = $1 and m.user_key = $2 and m.active"
    ))
    .bind(bucket)
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

/// A page of a bucket's transitions by id, after id `after`.
///
/// Every writer of transitions (tick, real-time pass, merge, deletion, migrate) holds the
/// schema's pass lock and the id sequence hands out ids in order (cache 1), so transactions
/// writing transitions commit one after another in id order: any snapshot sees a prefix of
/// the ids. A consumer that keeps the last id it saw therefore never misses or repeats one.
pub async fn transitions(
    pool: &PgPool,
    schema: &str,
    bucket: &str,
    after: i64,
    limit: i64,
) -> Result<Value> {
    let s = schema_ident(schema);
    Ok(sqlx::query_scalar(&format!(
        "select coalesce(jsonb_agg(jsonb_build_object('id', t.id, 'key', t.user_key, 'kind', t.kind,
                  'reason', t.reason, 'label', t.label, 'ordinal', t.ordinal,
                  'entry_count', t.entry_count, 'source', t.source, 'occurred_at', t.occurred_at)
                  order by t.id), '[]')
           from (select * from {s}.bucket_transitions
                  where bucket_id = $1 and id > $2 order by id limit $3) t"
    ))
    .bind(bucket)
    .bind(after)
    .bind(limit)
    .fetch_one(pool)
    .await?)
}

/// Live member counts per deployed bucket (for `/metrics`).
pub async fn member_counts(pool: &PgPool, schema: &str) -> Result<Vec<(String, i64)>> {
    let s = schema_ident(schema);
    Ok(sqlx::query_as(&format!(
        "select b.id, (select count(*) from {s}.memberships m where m.bucket_id = b.id and m.active)
           from {s}.buckets b order by b.id"
    ))
    .fetch_all(pool)
    .await?)
}

/// When the last tick (by any daemon) ran, if ever.
pub async fn last_tick_at(
    pool: &PgPool,
    schema: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let s = schema_ident(schema);
    Ok(
        sqlx::query_scalar(&format!("select last_tick_at from {s}.tick_state"))
            .fetch_one(pool)
            .await?,
    )
}
