//! Steps 2 to 4 of an ingest: the set-based write of a validated [`Payload`], in one
//! transaction and a handful of statements whatever the request's size.
//!
//! 1. [`replays`]: items whose message id is known (or repeated in the request) are
//!    dropped whole, contact patch included;
//! 2. [`identities`]: the identity locks of the ids named, identify/alias merges in
//!    request order, then the key of every item (what its user id, else its anonymous id,
//!    resolves to);
//! 3. [`contacts`]: unknown contacts created, then the patches applied;
//! 4. [`events`]: the events inserted in one statement.
//!
//! The keys whose data changed come back in [`Outcome::keys`] for the real-time pass.

mod contacts;
mod events;
mod identities;
mod replays;

use super::{Item, Outcome, Payload};

/// What an id resolves to now: the key of the contact a write under it reaches.
pub async fn resolve_key(pool: &PgPool, id: &str) -> Result<String> {
    identities::resolve_key(pool, id).await
}
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// Writes validated items in one transaction. Retried on a deadlock or serialization
/// failure (concurrent requests creating the same contacts), and on a message-id collision
/// with a concurrent request: the retry's duplicate check then sees the other request's
/// events and skips them, so a replay racing its original still stores each event once;
/// and on a contact-key collision (a contact created by a writer outside the identity locks,
/// e.g. SQL): the retry sees it.
pub async fn write(pool: &PgPool, payload: &Payload, received: DateTime<Utc>) -> Result<Outcome> {
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        match write_once(pool, payload, received).await {
            Err(err) if should_retry(&err, attempt) => backoff(attempt, received).await,
            other => return other,
        }
    }
}

/// Whether a failed write transaction is worth running again (attempt `attempt` failed): a
/// deadlock or serialization failure, or a unique-key collision with a concurrent writer
/// (a message id, a contact key) that the retry will see. At most five retries.
pub fn should_retry(err: &Error, attempt: u64) -> bool {
    match err {
        Error::Database(sqlx::Error::Database(db)) if attempt < 6 => {
            let retry = matches!(db.code().as_deref(), Some("40P01" | "40001"))
                || matches!(
                    db.constraint(),
                    Some("events_message_id_key" | "contacts_user_key_key")
                );
            if retry {
                tracing::debug!(attempt, "write transaction retried: {}", db.message());
            }
            retry
        }
        _ => false,
    }
}

/// The pause before retry `attempt + 1`: two writers that collided (a deadlock between
/// identity locks taken out of order) would likely collide again at once, so spread them.
pub async fn backoff(attempt: u64, received: DateTime<Utc>) {
    let jitter = u64::from(received.timestamp_subsec_micros() % 7) + attempt * 5;
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
}

/// [`upsert_contacts`] in a transaction of its own, retried like [`write`].
pub async fn upsert(pool: &PgPool, items: &[Item], received: DateTime<Utc>) -> Result<Upserted> {
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        let once = async {
            let mut tx = pool.begin().await?;
            let done = upsert_contacts(&mut tx, items, received).await?;
            tx.commit().await?;
            Ok(done)
        };
        match once.await {
            Err(err) if should_retry(&err, attempt) => backoff(attempt, received).await,
            other => return other,
        }
    }
}

/// What [`upsert_contacts`] did.
#[derive(Debug, Default)]
pub struct Upserted {
    /// The key each item reached, in item order (its user id, or the contact that absorbed
    /// it through an identify or alias).
    pub keys: Vec<String>,
    /// The keys created, brought back from deletion, or whose email or properties changed
    /// (sorted, once each): the others were left exactly as they were (`updated_at` too).
    pub changed: Vec<String>,
}

/// The contact upsert of `PUT /v1/contacts/{key}` and of imports, inside the caller's
/// transaction: every item names a user id (the key) and carries an email and a property
/// patch, nothing else. Takes the items' identity locks, brings back deleted contacts under
/// those keys, resolves each key (an id another contact absorbed reaches that contact),
/// creates the unknown contacts and patches the known ones (shallow merge, `null` removes a
/// key) in one statement each, writing only rows that change.
pub async fn upsert_contacts(
    conn: &mut PgConnection,
    items: &[Item],
    received: DateTime<Utc>,
) -> Result<Upserted> {
    let live: Vec<&Item> = items.iter().collect();
    identities::lock_items(conn, &live).await?;
    let ids: Vec<&str> = items.iter().filter_map(|i| i.user_id.as_deref()).collect();
    let mut changed: Vec<String> = sqlx::query_scalar(
        "update contacts set deleted_at = null, updated_at = $2
          where user_key = any($1) and deleted_at is not null
         returning user_key",
    )
    .bind(&ids)
    .bind(received)
    .fetch_all(&mut *conn)
    .await?;
    let resolved = identities::resolve(conn, &live).await?;
    changed.extend(contacts::apply(conn, &live, &resolved, received).await?);
    changed.sort();
    changed.dedup();
    let keys = resolved
        .into_iter()
        .zip(items)
        .map(|(k, item)| k.or_else(|| item.user_id.clone()).unwrap_or_default())
        .collect();
    Ok(Upserted { keys, changed })
}

/// One attempt: the four steps in one transaction.
async fn write_once(pool: &PgPool, payload: &Payload, received: DateTime<Utc>) -> Result<Outcome> {
    let mut tx = pool.begin().await?;
    let live: Vec<&Item> = replays::live_items(&mut tx, &payload.items).await?;
    identities::lock_items(&mut tx, &live).await?;
    let mut touched = identities::merge(&mut tx, &live, payload.publishable).await?;
    let keys = identities::resolve(&mut tx, &live).await?;
    touched.extend(contacts::apply(&mut tx, &live, &keys, received).await?);
    let stored = events::insert(&mut tx, &live, &keys, received).await?;
    touched.extend(stored.keys);
    tx.commit().await?;
    touched.sort();
    touched.dedup();
    let events_in_request = payload.items.iter().filter(|i| i.event.is_some()).count() as u64;
    Ok(Outcome {
        accepted: payload.items.len() + payload.ignored,
        stored: stored.count,
        duplicates: events_in_request.saturating_sub(stored.count),
        keys: touched,
    })
}
