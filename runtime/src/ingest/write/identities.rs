//! Identities: identify/alias merges, then the contact key of every item.

use crate::ingest::Item;
use crate::Result;
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

/// Folds the anonymous contact into the user's for every merging item with both ids, in
/// request order, each pair once (`merge_contacts` in the base schema). Returns the keys
/// merged into.
pub(super) async fn merge(conn: &mut PgConnection, s: &str, live: &[&Item]) -> Result<Vec<String>> {
    let mut touched = Vec::new();
    let mut linked: HashSet<(&str, &str)> = HashSet::new();
    for item in live {
        if let (true, Some(user), Some(anon)) = (item.merge, &item.user_id, &item.anonymous_id) {
            if linked.insert((user, anon)) {
                let key: String = sqlx::query_scalar(&format!("select {s}.merge_contacts($1, $2)"))
                    .bind(user)
                    .bind(anon)
                    .fetch_one(&mut *conn)
                    .await?;
                touched.push(key);
            }
        }
    }
    Ok(touched)
}

/// The key of every item, in order: its user id, else what its anonymous id resolves to
/// (`resolve_anonymous`: the user it was merged into, else itself).
pub(super) async fn resolve(
    conn: &mut PgConnection,
    s: &str,
    live: &[&Item],
) -> Result<Vec<Option<String>>> {
    let anonymous: Vec<&str> = live
        .iter()
        .filter(|i| i.user_id.is_none())
        .filter_map(|i| i.anonymous_id.as_deref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut resolved: HashMap<String, String> = HashMap::new();
    if !anonymous.is_empty() {
        let rows: Vec<(String, String)> =
            sqlx::query_as(&format!("select * from {s}.resolve_anonymous($1)"))
                .bind(&anonymous)
                .fetch_all(&mut *conn)
                .await?;
        resolved.extend(rows);
    }
    Ok(live
        .iter()
        .map(|item| match (&item.user_id, &item.anonymous_id) {
            (Some(user), _) => Some(user.clone()),
            (None, Some(anon)) => Some(resolved.get(anon).cloned().unwrap_or(anon.clone())),
            (None, None) => None,
        })
        .collect())
}
