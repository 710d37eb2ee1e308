//! Runs one test on its own schema: migrate the project there, settle the first tick (the
//! backfill of the new buckets, on an empty database), create the contacts, then at each
//! instant record its events and property changes, `tick(T)`, and check its expectations.

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
pub struct Outcome {
    /// Every expectation that did not hold, in order.
    pub failures: Vec<Failure>,
    /// The test could not run (the database refused something): the reason.
    pub error: Option<String>,
    pub elapsed: Duration,
}

/// Runs `test` in `schema` of the database at `url`, with the project's files compiled for
/// that schema; drops the schema afterwards when `drop_schema`.
pub async fn run(
    url: &str,
    schema: &SchemaName,
    files: &[GeneratedFile],
    test: &TestCase,
    drop_schema: bool,
) -> Outcome {
    let started = Instant::now();
    let result = run_inner(url, schema, files, test, drop_schema).await;
    let (failures, error) = match result {
        Ok(failures) => (failures, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    Outcome {
        failures,
        error,
        elapsed: started.elapsed(),
    }
}

async fn run_inner(
    url: &str,
    schema: &SchemaName,
    files: &[GeneratedFile],
    test: &TestCase,
    drop_schema: bool,
) -> Result<Vec<Failure>> {
    let mut conn = crate::database::connect(url, schema).await?;
    let result = steps(&mut conn, schema, files, test).await;
    if drop_schema {
        let _ = conn
            .execute(format!("drop schema if exists {schema} cascade").as_str())
            .await;
    }
    result
}

fn instant(seconds: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, 0).context("an instant out of range")
}

async fn steps(
    conn: &mut PgConnection,
    schema: &SchemaName,
    files: &[GeneratedFile],
    test: &TestCase,
) -> Result<Vec<Failure>> {
    hogsend_runtime::migrate::migrate(conn, schema, files)
        .await
        .context("could not migrate the test's schema")?;
    let Some(first) = test.steps.first() else {
        return Ok(Vec::new());
    };
    // Settle the new buckets' backfill before anything exists, so every join the test
    // causes is a real one (with its reactions).
    hogsend_runtime::db::tick(conn, schema, Some(instant(first.at - 1)?)).await?;
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
            let kept: Map<String, Value> =
                kept.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
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
    }
    Ok(())
}
