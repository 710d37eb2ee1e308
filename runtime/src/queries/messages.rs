//! Reads of the outbox (`messages`): one message, a run's messages, a contact's messages
//! (keyset pages by id), and the counts by status for `/metrics`.

use crate::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

/// A message of the outbox, as a journey's `send` step or a campaign created it.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Message {
    /// Its id: increasing in creation order, the cursor of message lists.
    pub id: i64,
    /// The contact's key.
    pub key: String,
    /// The journey whose run sent it (null for a campaign).
    pub journey_id: Option<String>,
    /// The run that sent it (null for a campaign).
    pub run_id: Option<i64>,
    /// The `send` step that created it (its stable id).
    pub step: Option<String>,
    /// The campaign that sent it (null for a journey).
    pub campaign_id: Option<String>,
    /// The template.
    pub template: String,
    /// The template's category: a list id or `transactional`.
    pub category: Option<String>,
    /// The address it goes (went) to.
    pub to_email: Option<String>,
    /// `queued`, `sending`, `sent`, `skipped`, `failed`, `bounced`, `complained` or
    /// `cancelled`.
    pub status: String,
    /// Why a `skipped` message was not sent: `no_email`, `suppressed`, `unsubscribed_all`,
    /// `unsubscribed:<list>`, `not_subscribed:<list>`.
    pub skip_reason: Option<String>,
    /// The rendered subject (once delivery rendered it).
    pub subject: Option<String>,
    /// The provider's message id (SMTP Message-ID or the HTTP provider's id).
    pub provider_id: Option<String>,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// The earliest instant delivery tries again (null: as soon as it can).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// When it was created (the pass instant of its `send`).
    pub created_at: DateTime<Utc>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// When it was first opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// When a link in it was first clicked.
    pub clicked_at: Option<DateTime<Utc>>,
    /// When its row last changed.
    pub updated_at: DateTime<Utc>,
}

/// The select list of [`Message`]'s columns of `messages m` (a macro, so each
/// statement that uses it is one static string).
macro_rules! message_columns {
    () => {
        "m.id, m.user_key as key, m.journey_id, m.run_id,
  m.step_id as step, m.campaign_id, m.template, m.category, m.to_email, m.status,
  m.skip_reason, m.subject, m.provider_id, m.attempts, m.next_attempt_at, m.last_error,
  m.created_at, m.sent_at, m.opened_at, m.clicked_at, m.updated_at"
    };
}

/// One message.
pub async fn message(pool: &PgPool, id: i64) -> Result<Option<Message>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        message_columns!(),
        " from messages m where m.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The messages run `id` created, by id.
pub async fn run_messages(pool: &PgPool, id: i64) -> Result<Vec<Message>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        message_columns!(),
        " from messages m where m.run_id = $1 order by m.id"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// A page of a contact's messages by id, after id `after`.
pub async fn contact_messages(
    pool: &PgPool,
    key: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<Message>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        message_columns!(),
        " from messages m
          where m.user_key = $1 and m.id > $2 order by m.id limit $3"
    ))
    .bind(key)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Messages per status (for `/metrics`).
pub async fn status_counts(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("select status, count(*) from messages group by 1 order by 1")
            .fetch_all(pool)
            .await?,
    )
}
