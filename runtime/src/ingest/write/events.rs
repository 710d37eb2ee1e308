//! Events: every live item's event in one statement. No ON CONFLICT: replays were removed
//! before, and a concurrent request storing the same message id makes this fail and the
//! write retry (a plain insert is cheaper than a speculative one).

use crate::ingest::Item;
use crate::Result;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

/// What the insert did.
pub(super) struct Stored {
    /// Events inserted.
    pub(super) count: u64,
    /// Their contacts' keys.
    pub(super) keys: Vec<String>,
}

/// Inserts the events of `live` (`keys[i]` is item i's key); an event without a time
/// happened when it was received.
pub(super) async fn insert(
    conn: &mut PgConnection,
    live: &[&Item],
    keys: &[Option<String>],
    received: DateTime<Utc>,
) -> Result<Stored> {
    let (mut ek, mut en, mut ep, mut et, mut em) = (vec![], vec![], vec![], vec![], vec![]);
    for (item, key) in live.iter().zip(keys) {
        if let (Some(event), Some(key)) = (&item.event, key) {
            ek.push(key.as_str());
            en.push(event.as_str());
            ep.push(Value::Object(item.properties.clone()));
            et.push(item.occurred_at.unwrap_or(received));
            em.push(item.message_id.as_deref());
        }
    }
    if ek.is_empty() {
        return Ok(Stored {
            count: 0,
            keys: Vec::new(),
        });
    }
    let done = sqlx::query(
        "insert into events (user_key, event, properties, occurred_at, received_at, message_id)
         select t.k, t.e, t.p, t.t, $6, t.m
           from unnest($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[], $5::text[])
                as t(k, e, p, t, m)",
    )
    .bind(&ek)
    .bind(&en)
    .bind(&ep)
    .bind(&et)
    .bind(&em)
    .bind(received)
    .execute(&mut *conn)
    .await?;
    Ok(Stored {
        count: done.rows_affected(),
        keys: ek.iter().map(|k| (*k).to_owned()).collect(),
    })
}
