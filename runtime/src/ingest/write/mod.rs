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
use sqlx::PgPool;

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
            Err(Error::Database(sqlx::Error::Database(db)))
                if attempt < 6
                    && (matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
                        || matches!(
                            db.constraint(),
                            Some("events_message_id_key" | "contacts_user_key_key")
                        )) =>
            {
                tracing::debug!(attempt, "ingest transaction retried: {}", db.message());
                // Two writers that collided (a deadlock between identity locks taken out of
                // order) would likely collide again at once: spread the retries.
                let jitter = u64::from(received.timestamp_subsec_micros() % 7) + attempt * 5;
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            other => return other,
        }
    }
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
