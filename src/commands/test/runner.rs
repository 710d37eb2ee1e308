//! Runs tests: a [`Worker`] migrates the project into a fresh schema once, then runs tests one
//! after another, each inside a transaction rolled back at its end, so every test starts from
//! the freshly migrated and settled schema (its first tick, the backfill of the new buckets,
//! ran on the empty schema at 1969-12-31T23:59:59Z). A test creates its contacts, then at each instant records its
//! events and property changes, runs `tick(T)` and checks its expectations.
//!
//! **Decision:** a schema per worker and a rolled-back transaction per test, rather than a
//! schema per test: migrating costs about 0.5 s, a test's ticks a few tens of milliseconds.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use hogsend_compiler::emit::GeneratedFile;
use hogsend_compiler::test_suite::{TestCase, TestChange};
use hogsend_schema::SchemaName;
use serde_json::{Map, Value};
use sqlx::{Executor, PgConnection};

use super::expect::{self, Failure};

/// What running one test found.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Every expectation that did not hold, in order.
    pub failures: Vec<Failure>,
    /// The test could not run (the database refused something): the reason.
    pub error: Option<String>,
    pub elapsed: Duration,
}

/// A connection to a schema holding the migrated project, that runs tests one after another.
pub(super) struct Worker {
    conn: PgConnection,
    schema: SchemaName,
}

impl Worker {
    /// Connects to `url` and migrates `files` (the project compiled for `schema`) into a fresh
    /// `schema`.
    pub(super) async fn start(
        url: &str,
        schema: SchemaName,
        files: &[GeneratedFile],
    ) -> Result<Worker> {
        let mut conn = crate::database::connect(url, &schema).await?;
        hogsend_runtime::migrate::migrate(&mut conn, &schema, files)
            .await
            .context("could not migrate the tests' schema")?;
        // Settle the new buckets' backfill once, on the empty schema, before any instant a
        // test may name (they are from 1970 on), so every join a test causes is a real one
        // (with its reactions). Committed: each test's rollback comes back to this state.
        let settle = instant(-1)?;
        hogsend_runtime::db::tick(&mut conn, &schema, Some(settle)).await?;
        Ok(Worker { conn, schema })
    }

    /// Runs `test` inside a transaction that is rolled back, so the schema is as migrated
    /// again for the next test (sequences aside: ids keep growing, which no check reads).
    pub(super) async fn run(&mut self, test: &TestCase) -> Outcome {
        let started = Instant::now();
        let result = match self.conn.execute("begin").await {
            Ok(_) => steps(&mut self.conn, &self.schema, test).await,
            Err(e) => Err(e.into()),
        };
        let rolled_back = self.conn.execute("rollback").await;
        let (failures, error) = match (result, rolled_back) {
            (Ok(failures), Ok(_)) => (failures, None),
            (Err(e), _) => (Vec::new(), Some(format!("{e:#}"))),
            (Ok(_), Err(e)) => (Vec::new(), Some(format!("could not roll back: {e}"))),
        };
        Outcome {
            failures,
            error,
            elapsed: started.elapsed(),
        }
    }

    /// Drops the schema.
    pub(super) async fn stop(mut self) -> Result<()> {
        // `schema` is a validated name of [a-z0-9_].
        self.conn
            .execute(format!("drop schema if exists {} cascade", self.schema).as_str())
            .await
            .context("could not drop the tests' schema")?;
        Ok(())
    }
}

fn instant(seconds: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0).context("an instant out of range")
}

async fn steps(
    conn: &mut PgConnection,
    schema: &SchemaName,
    test: &TestCase,
) -> Result<Vec<Failure>> {
    for c in &test.contacts {
        sqlx::query("insert into contacts (external_id, email, properties) values ($1, $2, $3)")
            .bind(&c.key)
            .bind(&c.email)
            .bind(Value::Object(c.properties.clone()))
            .execute(&mut *conn)
            .await
            .with_context(|| format!("could not create the contact `{}`", c.key))?;
    }
    let mut failures = Vec::new();
    let mut watermark = expect::transition_watermark(conn).await?;
    for step in &test.steps {
        let at = instant(step.at)?;
        for change in &step.changes {
            apply(conn, change, at).await?;
        }
        hogsend_runtime::db::tick(conn, schema, Some(at)).await?;
        for e in &step.expectations {
            if let Some(f) = expect::check(conn, schema, e, at, watermark).await? {
                failures.push(f);
            }
        }
        watermark = expect::transition_watermark(conn).await?;
    }
    Ok(failures)
}

/// Records one event or property change at `at`.
async fn apply(conn: &mut PgConnection, change: &TestChange, at: DateTime<Utc>) -> Result<()> {
    match change {
        TestChange::Event {
            key,
            event,
            properties,
        } => {
            sqlx::query(
                "insert into events (user_key, event, properties, occurred_at, received_at) \
                 values ($1, $2, $3, $4, $4)",
            )
            .bind(key)
            .bind(event)
            .bind(Value::Object(properties.clone()))
            .bind(at)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("could not record `{key} did {event}`"))?;
        }
        TestChange::Set {
            key,
            email,
            properties,
        } => {
            let (removed, kept): (Vec<_>, Vec<_>) =
                properties.iter().partition(|(_, v)| v.is_null());
            let removed: Vec<String> = removed.into_iter().map(|(k, _)| k.clone()).collect();
            let kept: Map<String, Value> = kept
                .into_iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            sqlx::query(
                "update contacts set properties = (properties || $2) - $3::text[], \
                 email = case when $4 then $5 else email end, updated_at = $6 \
                 where user_key = $1",
            )
            .bind(key)
            .bind(Value::Object(kept))
            .bind(&removed)
            .bind(email.is_some())
            .bind(email.clone().flatten())
            .bind(at)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("could not change the properties of `{key}`"))?;
        }
        TestChange::Subscription {
            key,
            list_id,
            subscribed,
        } => {
            let status = if *subscribed {
                "subscribed"
            } else {
                "unsubscribed"
            };
            sqlx::query(
                "insert into subscriptions (user_key, list_id, status, changed_at, source) \
                 values ($1, $2, $3, $4, 'sql') on conflict (user_key, list_id) \
                 do update set status = excluded.status, changed_at = excluded.changed_at",
            )
            .bind(key)
            .bind(list_id)
            .bind(status)
            .bind(at)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("could not record `{key}`'s {status} to `{list_id}`"))?;
        }
        TestChange::Suppress { key, reason } => {
            let inserted = sqlx::query(
                "insert into suppressions (email, reason, created_at) \
                 select lower(btrim(email)), $2, $3 from contacts \
                 where user_key = $1 and email is not null and btrim(email) <> '' \
                 on conflict (email) do nothing",
            )
            .bind(key)
            .bind(reason)
            .bind(at)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("could not suppress `{key}`'s address"))?;
            if inserted.rows_affected() == 0 {
                anyhow::bail!("`{key} suppress {reason}`: the contact has no address to suppress");
            }
        }
    }
    Ok(())
}
