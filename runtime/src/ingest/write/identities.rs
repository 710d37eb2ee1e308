//! Identities: the identity locks, identify/alias merges, then the contact key of every
//! item.
//!
//! **The identity invariant** (ARCHITECTURE.md, "Identity under concurrency"): every event
//! is stored under the key its contact has when the transaction commits, and no contact is
//! created for an id another contact has absorbed. Ingest transactions and merges touching
//! the same ids therefore serialize on *identity locks*: every id a request names (user ids,
//! anonymous ids) maps to one of [`STRIPES`] transaction-scoped advisory locks; a request
//! takes them shared, and exclusive for the two ids of a merge, in ascending stripe order (so
//! two requests never wait on each other in a cycle; the rare out-of-order wait below is a
//! deadlock Postgres detects, and the write is retried). Requests that only add events never
//! wait for each other; a merge waits for the requests in flight on its ids and they wait
//! for it, after which they resolve their ids again and see the merge.

use crate::ingest::Item;
use crate::Result;
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

/// How many identity locks ids are spread over: enough that unrelated merges rarely meet,
/// few enough that a 1,000-item batch holds a bounded number of locks.
const STRIPES: i32 = 128;
/// The first key of the two-key advisory locks (`hs` in ASCII); the pass and scheduler locks
/// use the one-key form, so they never collide with these.
const LOCK_SPACE: i32 = 0x6873_0000;

/// Takes the identity locks of `ids` (exclusive where `exclusive` says so), in ascending
/// stripe order. Taking a lock the transaction holds already is a no-op.
async fn lock(conn: &mut PgConnection, ids: &[&str], exclusive: &[bool]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "select case when t.x then pg_advisory_xact_lock($3, t.stripe)::text
                     else pg_advisory_xact_lock_shared($3, t.stripe)::text end
           from (select hashtext(i) & ($4 - 1) as stripe, bool_or(x) as x
                   from unnest($1::text[], $2::bool[]) as u(i, x)
                  group by 1 order by 1) t",
    )
    .bind(ids)
    .bind(exclusive)
    .bind(LOCK_SPACE)
    .bind(STRIPES)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes the identity locks of every id the items name: exclusive for the ids of a merge.
pub(super) async fn lock_items(conn: &mut PgConnection, live: &[&Item]) -> Result<()> {
    let mut modes: HashMap<&str, bool> = HashMap::new();
    for item in live {
        for id in [&item.user_id, &item.anonymous_id].into_iter().flatten() {
            let merging = item.merge && item.user_id.is_some() && item.anonymous_id.is_some();
            *modes.entry(id.as_str()).or_default() |= merging;
        }
    }
    let (ids, exclusive): (Vec<&str>, Vec<bool>) = modes.into_iter().unzip();
    lock(conn, &ids, &exclusive).await
}

/// Folds the anonymous contact into the user's for every merging item with both ids, in
/// request order, each pair once (`merge_contacts` in the base schema). The user id is
/// first resolved like any id, so a merge into an id another contact absorbed goes to that
/// contact instead of re-creating it. With `anonymous_only` (a publishable key's request) an
/// identified contact ([`identified`]) is never folded: such a pair merges nothing. Returns
/// the keys merged into.
pub(super) async fn merge(
    conn: &mut PgConnection,
    live: &[&Item],
    anonymous_only: bool,
) -> Result<Vec<String>> {
    let mut touched = Vec::new();
    let mut linked: HashSet<(&str, &str)> = HashSet::new();
    for item in live {
        if let (true, Some(user), Some(anon)) = (item.merge, &item.user_id, &item.anonymous_id) {
            if linked.insert((user, anon)) {
                if anonymous_only && identified(conn, anon).await? {
                    continue;
                }
                let target = resolve_ids(conn, &[user.as_str()])
                    .await?
                    .remove(user.as_str())
                    .unwrap_or_else(|| user.clone());
                let key: String = sqlx::query_scalar("select merge_contacts($1, $2)")
                    .bind(&target)
                    .bind(anon)
                    .fetch_one(&mut *conn)
                    .await?;
                touched.push(key);
            }
        }
    }
    Ok(touched)
}

/// Whether the live contact keyed by `id` is *identified*, which a publishable key may not
/// fold into another: it has a user id (an external id) and an email address, or has
/// absorbed another id (an earlier identify or alias). A contact only events created (a
/// PostHog anonymous distinct id is a user id to hogsend) is not.
async fn identified(conn: &mut PgConnection, id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (
           select 1 from contacts c
            where c.user_key = $1 and c.deleted_at is null and c.external_id is not null
              and (c.email is not null or c.anonymous_id is not null
                   or exists (select 1 from contact_aliases a where a.contact_id = c.id)))",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?)
}

/// What each id resolves to (`resolve_anonymous`): the live contact whose key it is, else
/// the contact it was merged into, else itself.
async fn resolve_ids(conn: &mut PgConnection, ids: &[&str]) -> Result<HashMap<String, String>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = sqlx::query_as("select * from resolve_anonymous($1)")
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// The key of every item, in order: what its user id, else its anonymous id, resolves to.
/// A key other than the id it came from is locked too (shared) and the ids resolved again,
/// so a merge of that key committed meanwhile is seen.
pub(super) async fn resolve(
    conn: &mut PgConnection,
    live: &[&Item],
) -> Result<Vec<Option<String>>> {
    let ids: Vec<&str> = live
        .iter()
        .filter_map(|i| i.user_id.as_deref().or(i.anonymous_id.as_deref()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut resolved = resolve_ids(conn, &ids).await?;
    let mut locked: HashSet<String> = ids.iter().map(|i| (*i).to_owned()).collect();
    for _ in 0..3 {
        let extra: Vec<&str> = resolved
            .values()
            .filter(|k| !locked.contains(k.as_str()))
            .map(String::as_str)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if extra.is_empty() {
            break;
        }
        lock(conn, &extra, &vec![false; extra.len()]).await?;
        locked.extend(extra.iter().map(|k| (*k).to_owned()));
        resolved = resolve_ids(conn, &ids).await?;
    }
    Ok(live
        .iter()
        .map(|item| {
            let id = item.user_id.as_ref().or(item.anonymous_id.as_ref())?;
            Some(resolved.get(id).cloned().unwrap_or_else(|| id.clone()))
        })
        .collect())
}

/// What one id resolves to now (outside any transaction): for reading back what a write
/// under that id changed.
pub(super) async fn resolve_key(pool: &sqlx::PgPool, id: &str) -> Result<String> {
    let mut conn = pool.acquire().await?;
    Ok(resolve_ids(&mut conn, &[id])
        .await?
        .remove(id)
        .unwrap_or_else(|| id.to_owned()))
}
