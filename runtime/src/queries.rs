//! Reads behind the query API, each one statement returning typed rows: the rows are the
//! API's response items as they are serialized and described in the OpenAPI document.
//!
//! Pagination is keyset everywhere (`after` a key or id, ascending), so pages stay stable
//! while members join and leave: a page never repeats a row and never skips one that was
//! present for the whole walk.

pub mod campaigns;
pub mod journeys;
pub mod messages;

use crate::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::PgPool;
use utoipa::ToSchema;

/// A live contact.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Contact {
    /// The contact's key: its external id, else its anonymous id, else its id.
    pub key: String,
    /// The contact's internal id.
    #[schema(format = "uuid")]
    pub id: String,
    /// The user id it was given, if any.
    pub external_id: Option<String>,
    /// The anonymous id it was first seen with, if any.
    pub anonymous_id: Option<String>,
    /// Lower-cased and trimmed.
    pub email: Option<String>,
    /// Its properties (a JSON object).
    #[schema(value_type = Object)]
    pub properties: Json<Map<String, Value>>,
    /// When it was first seen.
    pub created_at: DateTime<Utc>,
    /// When its data last changed.
    pub updated_at: DateTime<Utc>,
}

/// The live contact with key `key`.
pub async fn contact(pool: &PgPool, key: &str) -> Result<Option<Contact>> {
    Ok(sqlx::query_as(
        "select c.user_key as key, c.id::text as id, c.external_id, c.anonymous_id, c.email,
                c.properties, c.created_at, c.updated_at
           from contacts c where c.user_key = $1 and c.deleted_at is null",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

/// Soft-deletes a contact and ends its memberships silently (`delete_contact` in the base
/// schema). False when there is no live contact `key`.
pub async fn delete_contact(pool: &PgPool, key: &str) -> Result<bool> {
    Ok(sqlx::query_scalar("select delete_contact($1)")
        .bind(key)
        .fetch_one(pool)
        .await?)
}

/// One of a contact's current memberships.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct ContactMembership {
    /// The bucket.
    pub bucket_id: String,
    /// When the contact entered it this time.
    pub entered_at: DateTime<Utc>,
    /// How many times the contact has entered it (this entry included).
    pub entry_count: i32,
}

/// The buckets a live contact is in now.
pub async fn contact_buckets(pool: &PgPool, key: &str) -> Result<Vec<ContactMembership>> {
    Ok(sqlx::query_as(
        "select m.bucket_id, m.entered_at, m.entry_count
           from memberships m where m.user_key = $1 and m.active order by m.bucket_id",
    )
    .bind(key)
    .fetch_all(pool)
    .await?)
}

/// A stored event.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct StoredEvent {
    /// Its id: increasing in insertion order, the cursor of the event list.
    pub id: i64,
    /// Its name.
    pub event: String,
    /// Its properties (a JSON object).
    #[schema(value_type = Object)]
    pub properties: Json<Value>,
    /// When it happened (sender's clock corrected, never after `received_at`).
    pub occurred_at: DateTime<Utc>,
    /// When hogsend received it.
    pub received_at: DateTime<Utc>,
    /// Its idempotency key, if it had one.
    pub message_id: Option<String>,
}

/// A page of a contact's events, oldest first, after event id `after`.
pub async fn contact_events(
    pool: &PgPool,
    key: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>> {
    Ok(sqlx::query_as(
        "select e.id, e.event, e.properties, e.occurred_at, e.received_at, e.message_id
           from events e where e.user_key = $1 and e.id > $2 order by e.id limit $3",
    )
    .bind(key)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A deployed bucket: its definition as written and its live member count.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Bucket {
    /// The bucket's id.
    pub id: String,
    /// Its display name, if it has one.
    pub name: Option<String>,
    /// Its description, if it has one.
    pub description: Option<String>,
    /// Its criteria, printed in `.hog` syntax.
    pub criteria: Option<String>,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Its entry policy (`unlimited`, `once`, `once per 30d`).
    pub entry: Option<String>,
    /// Its minimum dwell, if any (`3d`).
    pub min_dwell: Option<String>,
    /// Its maximum dwell, if any.
    pub max_dwell: Option<String>,
    /// The labels of its dwell reactions.
    #[schema(value_type = Vec<String>)]
    pub dwell: Json<Vec<String>>,
    /// Where it is defined (`file:line`).
    pub source: Option<String>,
    /// Whether its backfill after the last deploy of a changed definition is done.
    pub settled: bool,
    /// When its current definition was deployed.
    pub deployed_at: DateTime<Utc>,
    /// Its live member count.
    pub members: i64,
}

/// The select list and source of [`buckets`] and [`bucket`] (a macro, so each statement is
/// one static string).
macro_rules! bucket_select {
    () => {
        "select b.id, b.definition->>'name' as name,
  b.definition->>'description' as description, b.definition->>'criteria' as criteria,
  b.enabled, b.definition->>'entry' as entry, b.definition->>'min_dwell' as min_dwell,
  b.definition->>'max_dwell' as max_dwell,
  coalesce(b.definition->'dwell', '[]') as dwell, b.definition->>'source' as source,
  b.settled_fingerprint is not distinct from b.fingerprint as settled, b.deployed_at,
  (select count(*) from memberships m where m.bucket_id = b.id and m.active) as members
  from buckets b"
    };
}

/// Every deployed bucket with its live member count.
pub async fn buckets(pool: &PgPool) -> Result<Vec<Bucket>> {
    Ok(sqlx::query_as(concat!(bucket_select!(), " order by b.id"))
        .fetch_all(pool)
        .await?)
}

/// One bucket, if deployed.
pub async fn bucket(pool: &PgPool, id: &str) -> Result<Option<Bucket>> {
    Ok(
        sqlx::query_as(concat!(bucket_select!(), " where b.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Whether bucket `id` is deployed.
pub async fn bucket_exists(pool: &PgPool, id: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from buckets where id = $1)")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

/// An active member of a bucket.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Member {
    /// The contact's key: the cursor of the member list.
    pub key: String,
    /// When it entered this time.
    pub entered_at: DateTime<Utc>,
    /// How many times it has entered (this entry included).
    pub entry_count: i32,
}

/// A page of a bucket's active members by key, after key `after`.
pub async fn members(pool: &PgPool, bucket: &str, after: &str, limit: i64) -> Result<Vec<Member>> {
    Ok(sqlx::query_as(
        "select m.user_key as key, m.entered_at, m.entry_count
           from memberships m
          where m.bucket_id = $1 and m.active and m.user_key > $2
          order by m.user_key limit $3",
    )
    .bind(bucket)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A contact's active membership of a bucket.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Membership {
    /// The bucket.
    pub bucket_id: String,
    /// The contact's key.
    pub key: String,
    /// When it entered this time.
    pub entered_at: DateTime<Utc>,
    /// How many times it has entered (this entry included).
    pub entry_count: i32,
    /// What made it enter: `tick`, `realtime`, `backfill`, …
    pub source: String,
}

/// A contact's active membership of a bucket.
pub async fn member(pool: &PgPool, bucket: &str, key: &str) -> Result<Option<Membership>> {
    Ok(sqlx::query_as(
        "select m.bucket_id, m.user_key as key, m.entered_at, m.entry_count, m.source
           from memberships m where m.bucket_id = $1 and m.user_key = $2 and m.active",
    )
    .bind(bucket)
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

/// One entry of a bucket's transition feed.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Transition {
    /// Its id: increasing in commit order, the cursor of the feed.
    pub id: i64,
    /// The contact's key.
    pub key: String,
    /// `entered`, `left` or `dwell`.
    pub kind: String,
    /// Why a contact left (`criteria`, `max_dwell`, `deleted`, …); null otherwise.
    pub reason: Option<String>,
    /// The dwell reaction's label (`dwell` only).
    pub label: Option<String>,
    /// Which firing of an `every` dwell reaction (`dwell` only).
    pub ordinal: Option<i64>,
    /// The entry it belongs to.
    pub entry_count: i32,
    /// What caused it: `tick`, `realtime`, `backfill`, …
    pub source: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

/// A page of a bucket's transitions by id, after id `after`.
///
/// Every writer of transitions (tick, real-time pass, merge, deletion, migrate) holds the
/// schema's pass lock and the id sequence hands out ids in order (cache 1), so transactions
/// writing transitions commit one after another in id order: any snapshot sees a prefix of
/// the ids. A consumer that keeps the last id it saw therefore never misses or repeats one.
pub async fn transitions(
    pool: &PgPool,
    bucket: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<Transition>> {
    Ok(sqlx::query_as(
        "select t.id, t.user_key as key, t.kind, t.reason, t.label, t.ordinal, t.entry_count,
                t.source, t.occurred_at
           from bucket_transitions t
          where t.bucket_id = $1 and t.id > $2 order by t.id limit $3",
    )
    .bind(bucket)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Live member counts per deployed bucket (for `/metrics`).
pub async fn member_counts(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "select b.id, (select count(*) from memberships m where m.bucket_id = b.id and m.active)
           from buckets b order by b.id",
    )
    .fetch_all(pool)
    .await?)
}

/// When the last tick (by any daemon) ran, if ever.
pub async fn last_tick_at(pool: &PgPool) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar("select last_tick_at from tick_state")
        .fetch_one(pool)
        .await?)
}
