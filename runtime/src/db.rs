//! Calls into the SQL surface: the one place that names generated functions and tables.
//!
//! Runtime statements (here and in `queries`, `ingest`, `http` and `mail`) are static text
//! (`&'static str`), so sqlx prepares each once per connection and reuses it. They name
//! objects unqualified: every connection the runtime uses (the daemon's pool, the CLI's
//! connections, the test harness's) is opened by [`connect`] or [`connect_one`], which set
//! the connection's `search_path` to the hogsend schema (and `migrate` sets it for its own
//! transaction). The only statements built at run time name a bucket's generated function
//! ([`count_matching`], [`why`]) from a validated `BucketId`.
//! Generated and engine SQL qualify every name with the schema, so they do not depend on
//! the `search_path` at all. A statement run on a connection opened otherwise finds no
//! hogsend objects and fails as [`Error::NotMigrated`].

use crate::{Error, Result};
use chrono::{DateTime, Utc};
use hogsend_schema::{BucketId, SchemaName};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};
use std::str::FromStr;
use std::time::Duration;

/// Replaces the database name (the path) of a Postgres URL, keeping any query string.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The options of a runtime connection to `url`: `search_path` is `schema` (a validated
/// name, never quoted), so the runtime's static statements find the schema's objects.
pub fn connect_options(url: &str, schema: &SchemaName) -> Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)?
        .application_name("hogsend")
        .options([("search_path", schema.as_str())]))
}

/// One connection to `url` for `schema` (see [`connect_options`]).
pub async fn connect_one(url: &str, schema: &SchemaName) -> Result<PgConnection> {
    Ok(PgConnection::connect_with(&connect_options(url, schema)?).await?)
}

/// Connects a pool to `url` for `schema` (see [`connect_options`]).
pub async fn connect(url: &str, schema: &SchemaName, max_connections: u32) -> Result<PgPool> {
    let options = connect_options(url, schema)?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?)
}

/// A missing table or function of the schema (`42P01`, `42883`): the schema is not
/// migrated (or the connection's `search_path` is not the schema).
pub(crate) fn not_migrated(schema: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |err| match &err {
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("42P01" | "42883")) => {
            Error::NotMigrated(schema.to_owned())
        }
        _ => err.into(),
    }
}

/// Runs `tick(now)` and returns its JSON summary. With `None` the tick's instant is the
/// database's clock once the tick holds the pass lock (see the generated `tick`).
pub async fn tick(
    conn: &mut PgConnection,
    schema: &str,
    now: Option<DateTime<Utc>>,
) -> Result<serde_json::Value> {
    let result = sqlx::query_scalar::<_, serde_json::Value>("select tick($1)")
        .bind(now)
        .fetch_one(&mut *conn)
        .await;
    match result {
        Ok(summary) => Ok(summary),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("22023") => {
            Err(Error::TickRefused(db.message().to_owned()))
        }
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42883") => {
            Err(Error::NotMigrated(schema.to_owned()))
        }
        Err(err) => Err(err.into()),
    }
}

/// Runs the real-time pass for `keys` (see `apply_keys` in the generated tick.sql): every
/// bucket evaluates every given key, so afterwards their memberships are exact at `now`.
pub async fn apply_keys(
    conn: &mut PgConnection,
    schema: &str,
    keys: &[String],
    now: Option<DateTime<Utc>>,
) -> Result<serde_json::Value> {
    call_pass(conn, schema, "select apply_keys($1, $2)", keys, now).await
}

/// The daemon's real-time pass (`apply_changes` in the generated tick.sql): drains `keys`'
/// entries from the change queue and evaluates each bucket only for the keys whose changes
/// it can see, at `now`, or when `None` at the database's clock once the pass lock is held.
/// Safe because the function takes the pass lock before the drain (no tick is running),
/// every drained entry was committed before the evaluation's statements start (so the
/// evaluation sees each change it drops), and it drains only entries ready at its instant
/// (`changed_keys.ready_at`: an event after the instant stays queued); entries committed
/// later stay queued for the next pass or tick. The summary's `wait_ms` is the time spent
/// waiting for the lock.
pub async fn apply_changes(
    conn: &mut PgConnection,
    schema: &str,
    keys: &[String],
    now: Option<DateTime<Utc>>,
) -> Result<serde_json::Value> {
    call_pass(conn, schema, "select apply_changes($1, $2)", keys, now).await
}

/// `select <function>(keys, now)` (a NULL `now`: the clock once the pass lock is held);
/// `sql` is one of the two fixed calls above.
async fn call_pass(
    conn: &mut PgConnection,
    schema: &str,
    sql: &'static str,
    keys: &[String],
    now: Option<DateTime<Utc>>,
) -> Result<serde_json::Value> {
    sqlx::query_scalar::<_, serde_json::Value>(sql)
        .bind(keys)
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(not_migrated(schema))
}

/// Refreshes the planner's statistics of `memberships`. The passes' plans depend on how
/// many members a bucket has; after many real-time joins autovacuum may not have caught up
/// yet, and a pass planned for an empty bucket can take 100× longer (measured: 34 s instead
/// of 0.4 s for 10,000 contacts of a bucket that had grown from 0 to 180,000 members).
pub async fn analyze_memberships(conn: &mut PgConnection, schema: &str) -> Result<()> {
    conn.execute("analyze memberships")
        .await
        .map_err(not_migrated(schema))?;
    Ok(())
}

/// Refreshes planner statistics and visibility after a pass that rewrote many membership rows
/// (a backfill): VACUUM cannot run inside the tick's transaction, so the caller runs this
/// after commit.
pub async fn vacuum_state(conn: &mut PgConnection, schema: &str) -> Result<()> {
    for sql in [
        "vacuum (analyze) memberships",
        "vacuum (analyze) transitions",
    ] {
        conn.execute(sql).await.map_err(not_migrated(schema))?;
    }
    Ok(())
}

/// How many live contacts match bucket `id`'s criteria at the database's `now()` (runs the
/// generated backfill matcher; meant for `hogsend plan`, inside a transaction).
pub async fn count_matching(conn: &mut PgConnection, schema: &str, id: &BucketId) -> Result<i64> {
    sqlx::query("select _work_tables()")
        .execute(&mut *conn)
        .await
        .map_err(not_migrated(schema))?;
    sqlx::query("delete from _hs_match")
        .execute(&mut *conn)
        .await?;
    // One of the two statements naming a bucket's function (see also [`why`]): the id is a
    // validated `BucketId`, written bare like the compiler writes it.
    sqlx::query(&format!("select b_{id}_match_all(now())"))
        .execute(&mut *conn)
        .await?;
    Ok(sqlx::query_scalar("select count(*) from _hs_match")
        .fetch_one(&mut *conn)
        .await?)
}

/// The answer of [`why`].
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    /// The generated `b_<id>_why` function's JSON (see `docs/api.md`).
    Explained(serde_json::Value),
    /// No bucket with that id is deployed.
    UnknownBucket,
    /// No contact has that key.
    UnknownContact,
}

/// Why the contact `key` is (not) a member of bucket `id` at `at` (the database clock when
/// None), computed by the bucket's generated `b_<id>_why` function from the same criteria
/// SQL as the matcher.
pub async fn why(
    conn: &mut PgConnection,
    schema: &str,
    id: &str,
    key: &str,
    at: Option<DateTime<Utc>>,
) -> Result<Why> {
    let deployed: bool = sqlx::query_scalar("select exists (select 1 from buckets where id = $1)")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    if !deployed {
        return Ok(Why::UnknownBucket);
    }
    // Like [`count_matching`], this names a bucket's generated function: `id` is a deployed
    // bucket's id (checked `^[a-z][a-z0-9_]{0,47}$` by the table), validated again as a
    // `BucketId` and written bare like the compiler writes it.
    let Ok(id) = BucketId::new(id) else {
        return Ok(Why::UnknownBucket);
    };
    let result = sqlx::query_scalar::<_, Option<serde_json::Value>>(&format!(
        "select b_{id}_why($1, coalesce($2, now()))"
    ))
    .bind(key)
    .bind(at)
    .fetch_one(&mut *conn)
    .await;
    match result {
        Ok(Some(explanation)) => Ok(Why::Explained(explanation)),
        Ok(None) => Ok(Why::UnknownContact),
        // Deployed by a version that did not generate the explanation.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42883") => {
            Err(Error::NotMigrated(schema.to_owned()))
        }
        Err(err) => Err(err.into()),
    }
}

/// How many active members bucket `id` has.
pub async fn count_members(conn: &mut PgConnection, schema: &str, id: &str) -> Result<i64> {
    sqlx::query_scalar("select count(*) from memberships where bucket_id = $1 and active")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(not_migrated(schema))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "b"),
            "postgres://u:p@h:5432/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "b"), "postgres://h/b");
    }
}
