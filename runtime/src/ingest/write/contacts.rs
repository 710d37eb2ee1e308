//! Contacts: the request's patches folded per key, unknown contacts created with theirs,
//! known ones patched (shallow merge; `null` removes a key; the email replaced when given).

use crate::ingest::Item;
use crate::Result;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashSet};

/// The contact changes of one key, folded over the request's items in order.
#[derive(Default)]
struct ContactPatch {
    anonymous: bool,
    email: Option<String>,
    set: Map<String, Value>,
    remove: Vec<String>,
    /// Set only where the stored contact has no such key (the first value given wins).
    once: Map<String, Value>,
}

impl ContactPatch {
    /// Folds one item's email and properties in.
    fn fold(&mut self, item: &Item) {
        for (k, v) in &item.contact_once {
            if !v.is_null() && !self.once.contains_key(k) {
                self.once.insert(k.clone(), v.clone());
            }
        }
        if item.email.is_some() {
            self.email.clone_from(&item.email);
        }
        for (k, v) in &item.contact {
            if v.is_null() {
                self.set.remove(k);
                if !self.remove.contains(k) {
                    self.remove.push(k.clone());
                }
            } else {
                self.remove.retain(|r| r != k);
                self.set.insert(k.clone(), v.clone());
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.set.is_empty()
            && self.remove.is_empty()
            && self.once.is_empty()
    }
}

/// Creates and patches the contacts of `live` (`keys[i]` is item i's key). Returns the
/// keys created or changed.
pub(super) async fn apply(
    conn: &mut PgConnection,
    live: &[&Item],
    keys: &[Option<String>],
    received: DateTime<Utc>,
) -> Result<Vec<String>> {
    let patches = fold(live, keys);
    if patches.is_empty() {
        return Ok(Vec::new());
    }
    let created = create(conn, &patches).await?;
    let mut touched: Vec<String> = created.iter().cloned().collect();
    touched.extend(update(conn, &patches, &created, received).await?);
    Ok(touched)
}

/// The patch of every key, in key order. A user id with nothing to patch and an event to
/// store needs none: the events trigger creates the contacts of unknown keys (as external
/// ids), which saves a fifth of the work of a typical batch.
fn fold(live: &[&Item], keys: &[Option<String>]) -> BTreeMap<String, ContactPatch> {
    let mut patches: BTreeMap<String, ContactPatch> = BTreeMap::new();
    for (item, key) in live.iter().zip(keys) {
        let Some(key) = key else { continue };
        let plain = item.user_id.is_some()
            && item.event.is_some()
            && item.email.is_none()
            && item.contact.is_empty()
            && item.contact_once.is_empty();
        if plain && !patches.contains_key(key) {
            continue;
        }
        patches
            .entry(key.clone())
            .or_insert_with(|| ContactPatch {
                anonymous: item.user_id.is_none(),
                ..ContactPatch::default()
            })
            .fold(item);
    }
    patches
}

/// Inserts the contacts that do not exist yet, with their patch as initial data; returns
/// the keys created.
async fn create(
    conn: &mut PgConnection,
    patches: &BTreeMap<String, ContactPatch>,
) -> Result<HashSet<String>> {
    let (mut ks, mut anon, mut emails, mut sets) = (vec![], vec![], vec![], vec![]);
    for (k, p) in patches {
        ks.push(k.as_str());
        anon.push(p.anonymous);
        emails.push(p.email.as_deref());
        let mut initial = p.once.clone();
        initial.extend(p.set.clone());
        for k in &p.remove {
            initial.remove(k);
        }
        sets.push(Value::Object(initial));
    }
    let created: Vec<String> = sqlx::query_scalar(
        "insert into contacts (external_id, anonymous_id, email, properties)
         select case when t.anon then null else t.k end, case when t.anon then t.k end,
                t.e, t.p
           from unnest($1::text[], $2::bool[], $3::text[], $4::jsonb[]) as t(k, anon, e, p)
         on conflict (user_key) do nothing
         returning user_key",
    )
    .bind(&ks)
    .bind(&anon)
    .bind(&emails)
    .bind(&sets)
    .fetch_all(&mut *conn)
    .await?;
    Ok(created.into_iter().collect())
}

/// Patches the live contacts that existed before (not `created`); returns the keys whose
/// properties or email actually changed.
async fn update(
    conn: &mut PgConnection,
    patches: &BTreeMap<String, ContactPatch>,
    created: &HashSet<String>,
    received: DateTime<Utc>,
) -> Result<Vec<String>> {
    let (mut uk, mut ue, mut us, mut ur, mut uo) = (vec![], vec![], vec![], vec![], vec![]);
    for (k, p) in patches {
        if created.contains(k) || p.is_empty() {
            continue;
        }
        uk.push(k.as_str());
        ue.push(p.email.as_deref());
        us.push(Value::Object(p.set.clone()));
        ur.push(Value::from(p.remove.clone()));
        uo.push(Value::Object(p.once.clone()));
    }
    if uk.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar("with t as (
           select t.k, t.e,
                  (t.o || c.properties || t.p) - array(select jsonb_array_elements_text(t.r)) as props
             from unnest($1::text[], $2::text[], $3::jsonb[], $4::jsonb[], $6::jsonb[])
                  as t(k, e, p, r, o)
             join contacts c on c.user_key = t.k
            where c.deleted_at is null)
         update contacts c
            set properties = t.props, email = coalesce(t.e, c.email), updated_at = $5
           from t
          where c.user_key = t.k
            and (c.properties is distinct from t.props
                 or (t.e is not null and t.e is distinct from c.email))
         returning c.user_key")
    .bind(&uk)
    .bind(&ue)
    .bind(&us)
    .bind(&ur)
    .bind(received)
    .bind(&uo)
    .fetch_all(&mut *conn)
    .await?)
}
