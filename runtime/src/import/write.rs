//! One batch of an import, in one transaction: the contacts through the upsert
//! `PUT /v1/contacts/{key}` uses ([`ingest::upsert_contacts`]), then the subscriptions in
//! one statement. Rows that change nothing write nothing.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, HashSet};

use super::row::ImportRow;
use crate::ingest::{self, Item};
use crate::Result;

/// What a batch did.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Rows whose contact was created or changed, or whose subscriptions changed.
    pub upserted: u64,
    /// Rows that changed nothing.
    pub unchanged: u64,
    /// The keys changed (for the real-time pass).
    pub keys: Vec<String>,
}

/// Writes `rows` (already validated) in one transaction, retried on a deadlock or a key
/// collision with a concurrent writer like every ingest write. All or nothing.
pub async fn write_batch(
    pool: &PgPool,
    rows: &[ImportRow],
    received: DateTime<Utc>,
) -> Result<BatchOutcome> {
    let mut attempt: u64 = 0;
    loop {
        attempt += 1;
        let once = async {
            let mut tx = pool.begin().await?;
            let done = write_in(&mut tx, rows, received).await?;
            tx.commit().await?;
            Ok(done)
        };
        match once.await {
            Err(err) if ingest::should_retry(&err, attempt) => {
                ingest::backoff(attempt, received).await;
            }
            other => return other,
        }
    }
}

async fn write_in(
    conn: &mut PgConnection,
    rows: &[ImportRow],
    received: DateTime<Utc>,
) -> Result<BatchOutcome> {
    let items: Vec<Item> = rows
        .iter()
        .map(|r| Item {
            user_id: Some(r.key.clone()),
            email: r.email.clone(),
            contact: r.properties.clone(),
            ..Item::default()
        })
        .collect();
    let upserted = ingest::upsert_contacts(conn, &items, received).await?;
    // The last choice per (contact, list) wins: one statement may not update a row twice.
    let mut choices: BTreeMap<(&str, &str), bool> = BTreeMap::new();
    for (row, key) in rows.iter().zip(&upserted.keys) {
        for (list, subscribed) in &row.subscriptions {
            choices.insert((key.as_str(), list.as_str()), *subscribed);
        }
    }
    let mut changed: HashSet<String> = upserted.changed.into_iter().collect();
    if !choices.is_empty() {
        let (mut ks, mut ls, mut ss) = (vec![], vec![], vec![]);
        for ((k, l), s) in &choices {
            ks.push(*k);
            ls.push(*l);
            ss.push(if *s { "subscribed" } else { "unsubscribed" });
        }
        let subs: Vec<String> = sqlx::query_scalar(
            "insert into subscriptions (user_key, list_id, status, source, changed_at)
             select t.k, t.l, t.s, 'import', $4
               from unnest($1::text[], $2::text[], $3::text[]) as t(k, l, s)
             on conflict (user_key, list_id) do update
                set status = excluded.status, source = excluded.source,
                    changed_at = excluded.changed_at
              where subscriptions.status <> excluded.status
             returning user_key",
        )
        .bind(&ks)
        .bind(&ls)
        .bind(&ss)
        .bind(received)
        .fetch_all(&mut *conn)
        .await?;
        changed.extend(subs);
    }
    let mut outcome = BatchOutcome::default();
    for key in &upserted.keys {
        if changed.contains(key) {
            outcome.upserted += 1;
        } else {
            outcome.unchanged += 1;
        }
    }
    let mut keys: Vec<String> = changed.into_iter().collect();
    keys.sort();
    outcome.keys = keys;
    Ok(outcome)
}
