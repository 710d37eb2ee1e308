//! Replays: an event whose message id is already stored, or repeated earlier in the same
//! request, is skipped whole (contact patch included), so a replayed request stores
//! nothing.

use crate::ingest::Item;
use crate::Result;
use sqlx::PgConnection;
use std::collections::HashSet;

/// The items to write: those that are not replays, in request order.
pub(super) async fn live_items<'a>(
    conn: &mut PgConnection,
    items: &'a [Item],
) -> Result<Vec<&'a Item>> {
    let mut duplicate = vec![false; items.len()];
    let mut first_seen: HashSet<&str> = HashSet::new();
    for (i, id) in event_ids(items) {
        if !first_seen.insert(id) {
            duplicate[i] = true;
        }
    }
    if !first_seen.is_empty() {
        let ids: Vec<&str> = first_seen.iter().copied().collect();
        let known: Vec<String> =
            sqlx::query_scalar("select message_id from events where message_id = any($1)")
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
        let known: HashSet<String> = known.into_iter().collect();
        for (i, id) in event_ids(items) {
            if known.contains(id) {
                duplicate[i] = true;
            }
        }
    }
    Ok(items
        .iter()
        .zip(&duplicate)
        .filter(|(_, dup)| !**dup)
        .map(|(item, _)| item)
        .collect())
}

/// The message ids of the items that carry an event, with their positions.
fn event_ids(items: &[Item]) -> impl Iterator<Item = (usize, &str)> {
    items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.event.is_some())
        .filter_map(|(i, item)| item.message_id.as_deref().map(|id| (i, id)))
}
