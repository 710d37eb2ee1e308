//! Campaigns (broadcasts): create (idempotent on a key), read with progress, cancel and
//! start. The sending itself is the campaign pass's (`_campaign_pass`, run by every tick);
//! these statements only write the campaign's row, or cancel its queued messages.

use crate::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::PgPool;
use utoipa::ToSchema;

/// A campaign with its progress.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Campaign {
    /// A `campaign` block's id, or a uuid for one created through the API.
    pub id: String,
    pub name: String,
    /// `scheduled`, `sending`, `sent`, `cancelled` or `failed`.
    pub status: String,
    /// `code` (a `campaign` block) or `api`.
    pub source: String,
    /// `bucket` or `list`.
    pub audience_kind: String,
    /// The bucket or list id.
    pub audience_id: String,
    /// The template it sends.
    pub template: String,
    /// When it is due (an instant), if it has one.
    pub send_at: Option<DateTime<Utc>>,
    /// When it is due as a wall-clock time in each recipient's zone
    /// (`2027-03-01T09:00:00`), if it is a local-time campaign.
    pub send_at_local: Option<String>,
    /// The contact property naming each recipient's zone (`timezone`), for a local-time
    /// campaign.
    pub zone_property: Option<String>,
    /// True when it waits for `POST /v1/campaigns/{id}/start` (a code campaign with no
    /// `send_at`, or one whose `send_at` was past when it was deployed).
    pub held: bool,
    /// Its frozen audience: one message per recipient, skipped ones included (0 until it
    /// starts).
    pub recipients: i64,
    /// Messages not yet delivered (queued, or being sent).
    pub queued: i64,
    /// Messages handed to the provider.
    pub sent: i64,
    /// Messages skipped (who may not receive them), in all.
    pub skipped: i64,
    /// Skipped messages by reason (`no_email`, `suppressed`, `unsubscribed_all`,
    /// `unsubscribed:<list>`, `not_subscribed:<list>`).
    #[schema(value_type = Object)]
    pub skipped_by_reason: Json<Map<String, Value>>,
    /// Messages whose delivery failed for good.
    pub failed: i64,
    /// Messages cancelled before delivery (by a cancel).
    pub cancelled: i64,
    /// Failed attempts to start it (at 5 it ends `failed`).
    pub attempts: i32,
    /// The last error of a failed start.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When its audience was frozen.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (`sent`, `cancelled` or `failed`).
    pub completed_at: Option<DateTime<Utc>>,
}

macro_rules! campaign_select {
    () => {
        "select c.id, c.name, c.status, c.source, c.audience_kind, c.audience_id, c.template,
                c.send_at, to_char(c.send_at_local, 'YYYY-MM-DD\"T\"HH24:MI:SS') as send_at_local,
                array_to_string(c.zone_path, '.') as zone_property,
                (not c.auto_start and c.status = 'scheduled') as held,
                c.recipients, c.queued, c.sent, c.skipped,
                coalesce((select jsonb_object_agg(r.skip_reason, r.n)
                            from (select m.skip_reason, count(*) as n from messages m
                                   where m.campaign_id = c.id and m.status = 'skipped'
                                   group by 1) r), '{}') as skipped_by_reason,
                c.failed, c.cancelled, c.attempts, c.last_error, c.created_at, c.started_at,
                c.completed_at
           from campaigns c"
    };
}

/// A page of campaigns, newest first (ties by id, descending): the `limit` after the
/// campaign `after` (its `created_at` and id), or from the newest.
pub async fn campaigns(
    pool: &PgPool,
    after: Option<&(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Campaign>> {
    Ok(sqlx::query_as(concat!(
        campaign_select!(),
        " where $1::timestamptz is null or (c.created_at, c.id) < ($1, $2)
          order by c.created_at desc, c.id desc
          limit $3"
    ))
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1.as_str()))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One campaign.
pub async fn campaign(pool: &PgPool, id: &str) -> Result<Option<Campaign>> {
    Ok(
        sqlx::query_as(concat!(campaign_select!(), " where c.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

/// A campaign to create through the API (already validated).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCampaign {
    pub name: String,
    /// `bucket` or `list`.
    pub audience_kind: &'static str,
    pub audience_id: String,
    pub template: String,
    /// None: as soon as the scheduler's next tick.
    pub send_at: Option<DateTime<Utc>>,
    /// A wall-clock time (`YYYY-MM-DD HH:MM:SS`) and the contact property path of the zone.
    pub send_at_local: Option<(String, Vec<String>)>,
    pub idempotency_key: Option<String>,
}

/// What [`create`] did.
#[derive(Debug)]
pub enum Created {
    /// A new campaign, with its id.
    New(String),
    /// The key was used before, for this campaign id, with this definition (`true` when
    /// it matches the request's).
    Replay(String, bool),
}

/// What a deployed bucket, list or template lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct References {
    /// The named bucket or list is not deployed.
    pub no_audience: bool,
    /// The named template is not deployed.
    pub no_template: bool,
    /// The template's category is `transactional`.
    pub transactional: bool,
}

/// Looks up the bucket or list and the template a campaign names.
pub async fn references(
    pool: &PgPool,
    audience_kind: &str,
    audience_id: &str,
    template: &str,
) -> Result<References> {
    let (audience, category): (bool, Option<String>) = sqlx::query_as(
        "select case when $1 = 'bucket'
                     then exists (select 1 from buckets where id = $2)
                     else exists (select 1 from lists where id = $2) end,
                (select category from templates where id = $3)",
    )
    .bind(audience_kind)
    .bind(audience_id)
    .bind(template)
    .fetch_one(pool)
    .await?;
    Ok(References {
        no_audience: !audience,
        no_template: category.is_none(),
        transactional: category.as_deref() == Some("transactional"),
    })
}

/// Creates an API campaign (`scheduled`, due at `send_at` or now), or finds the one created
/// earlier with the same idempotency key (a race on the key resolves to the first).
pub async fn create(pool: &PgPool, c: &NewCampaign) -> Result<Created> {
    let (local, zone) = match &c.send_at_local {
        Some((local, zone)) => (Some(local.as_str()), Some(zone.clone())),
        None => (None, None),
    };
    let definition = serde_json::json!({
        "name": c.name, "audience_kind": c.audience_kind, "audience_id": c.audience_id,
        "template": c.template, "send_at": c.send_at, "send_at_local": local, "zone_path": zone,
    });
    let id: Option<String> = sqlx::query_scalar(
        "insert into broadcasts (id, name, source, audience_kind, audience_id, template, send_at,
                                 send_at_local, zone_path, idempotency_key, definition)
         values (gen_random_uuid()::text, $1, 'api', $2, $3, $4,
                 case when $6::timestamp is null then coalesce($5, now()) end,
                 $6::timestamp, $7, $8, $9)
         on conflict (idempotency_key) do nothing
         returning id",
    )
    .bind(&c.name)
    .bind(c.audience_kind)
    .bind(&c.audience_id)
    .bind(&c.template)
    .bind(c.send_at)
    .bind(local)
    .bind(zone)
    .bind(&c.idempotency_key)
    .bind(&definition)
    .fetch_optional(pool)
    .await?;
    if let Some(id) = id {
        return Ok(Created::New(id));
    }
    let (id, stored): (String, Option<Value>) =
        sqlx::query_as("select id, definition from broadcasts where idempotency_key = $1")
            .bind(&c.idempotency_key)
            .fetch_one(pool)
            .await?;
    Ok(Created::Replay(id, stored.as_ref() == Some(&definition)))
}

/// What [`cancel`] and [`start`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Done.
    Done,
    /// No such campaign.
    Unknown,
    /// The campaign's status does not allow it (its current status).
    Refused(String),
}

/// Cancels a scheduled or sending campaign: its queued messages become `cancelled`; sent
/// ones stay sent.
pub async fn cancel(pool: &PgPool, id: &str) -> Result<Change> {
    let n: Option<i64> = sqlx::query_scalar("select cancel_campaign($1)")
        .bind(id)
        .fetch_one(pool)
        .await?;
    if n.is_some() {
        return Ok(Change::Done);
    }
    status_change(pool, id).await
}

/// Starts a held campaign (its `send_at`, when past or absent, becomes now: the next tick
/// sends it). A scheduled campaign that is not held is left as it is.
pub async fn start(pool: &PgPool, id: &str) -> Result<Change> {
    let done = sqlx::query(
        "update broadcasts
            set auto_start = true, updated_at = now(),
                send_at = case when send_at_local is null then least(coalesce(send_at, now()), now())
                               else send_at end
          where id = $1 and status = 'scheduled'",
    )
    .bind(id)
    .execute(pool)
    .await?
    .rows_affected();
    if done == 1 {
        return Ok(Change::Done);
    }
    status_change(pool, id).await
}

async fn status_change(pool: &PgPool, id: &str) -> Result<Change> {
    let status: Option<String> = sqlx::query_scalar("select status from broadcasts where id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(status.map_or(Change::Unknown, Change::Refused))
}
