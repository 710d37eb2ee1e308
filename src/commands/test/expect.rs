//! Checking one expectation after a tick, by reading the engine's tables: `memberships`,
//! `transitions`, `messages`, `runs` (docs/language.md#tests says what each one means).
//! When it does not hold, the [`Failure`] says what held instead; a membership failure carries
//! the bucket's explanation (`b_<id>_why`) at that instant.

use anyhow::Result;
use chrono::{DateTime, Utc};
use hogsend_compiler::test_suite::{ExpectationKind, TestExpectation};
use hogsend_runtime::db::Why;
use hogsend_schema::SchemaName;
use sqlx::PgConnection;

/// `active, entered_at, left_at, leave_reason` of a membership.
type MembershipRow = (bool, DateTime<Utc>, Option<DateTime<Utc>>, Option<String>);

/// An expectation that did not hold.
#[derive(Debug, Clone)]
pub struct Failure {
    pub expectation: TestExpectation,
    /// The instant of the tick it was checked after.
    pub at: DateTime<Utc>,
    /// What held instead (the label under the expectation).
    pub actual: String,
    /// The `hogsend why` explanation, for membership expectations.
    pub why: Option<String>,
}

/// The last transition id so far: transitions after it happened at the next instant.
pub async fn transition_watermark(conn: &mut PgConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select coalesce(max(id), 0) from transitions")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Checks `e` after the tick at `at`; `since` is the transition watermark before the instant.
pub async fn check(
    conn: &mut PgConnection,
    schema: &SchemaName,
    e: &TestExpectation,
    at: DateTime<Utc>,
    since: i64,
) -> Result<Option<Failure>> {
    let key = e.key.as_str();
    let (holds, actual, why_bucket) = match &e.kind {
        ExpectationKind::InBucket(b) => {
            let row: Option<MembershipRow> = sqlx::query_as(
                "select active, entered_at, left_at, leave_reason from memberships \
                     where bucket_id = $1 and user_key = $2",
            )
            .bind(b)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
            let actual = match &row {
                Some((true, entered, _, _)) => {
                    format!("{key} is a member of {b} (since {})", stamp(*entered))
                }
                Some((false, _, Some(left), reason)) => format!(
                    "{key} is not a member of {b} (left at {}, {})",
                    stamp(*left),
                    reason.as_deref().unwrap_or("?")
                ),
                _ => format!("{key} has never been a member of {b}"),
            };
            (row.is_some_and(|r| r.0), actual, Some(b.as_str()))
        }
        ExpectationKind::Entered(b)
        | ExpectationKind::Left { bucket: b, .. }
        | ExpectationKind::Dwell { bucket: b, .. } => {
            let rows: Vec<(String, Option<String>, String)> = sqlx::query_as(
                "select kind, reason, label from transitions \
                 where bucket_id = $1 and user_key = $2 and id > $3 order by id",
            )
            .bind(b)
            .bind(key)
            .bind(since)
            .fetch_all(&mut *conn)
            .await?;
            let holds = rows.iter().any(|(kind, reason, label)| match &e.kind {
                ExpectationKind::Entered(_) => kind == "entered",
                ExpectationKind::Left { reason: want, .. } => {
                    kind == "left" && want.as_ref().is_none_or(|w| reason.as_ref() == Some(w))
                }
                ExpectationKind::Dwell { label: want, .. } => kind == "dwell" && label == want,
                _ => false,
            });
            let seen: Vec<String> = rows
                .iter()
                .map(|(kind, reason, label)| match kind.as_str() {
                    "left" => format!("left because {}", reason.as_deref().unwrap_or("?")),
                    "dwell" => format!("dwell {b}.{label}"),
                    other => other.to_string(),
                })
                .collect();
            let actual = if seen.is_empty() {
                format!("no transition of {key} in {b} at this instant")
            } else {
                format!(
                    "{key}'s transitions in {b} at this instant: {}",
                    seen.join(", ")
                )
            };
            (holds, actual, None)
        }
        ExpectationKind::Received(t) | ExpectationKind::Skipped { template: t, .. } => {
            let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                "select status, skip_reason from messages \
                 where user_key = $1 and template = $2 order by id",
            )
            .bind(key)
            .bind(t)
            .fetch_all(&mut *conn)
            .await?;
            let holds = rows.iter().any(|(status, reason)| match &e.kind {
                ExpectationKind::Received(_) => !matches!(status.as_str(), "skipped" | "cancelled"),
                ExpectationKind::Skipped { reason: want, .. } => {
                    status == "skipped" && want.as_ref().is_none_or(|w| reason.as_ref() == Some(w))
                }
                _ => false,
            });
            let seen: Vec<String> = rows
                .iter()
                .map(|(status, reason)| match reason {
                    Some(r) => format!("{status} ({r})"),
                    None => status.clone(),
                })
                .collect();
            let actual = if seen.is_empty() {
                format!("no message from {t} to {key}")
            } else {
                format!("messages from {t} to {key}: {}", seen.join(", "))
            };
            (holds, actual, None)
        }
        ExpectationKind::InJourney(j) | ExpectationKind::JourneyStatus { journey: j, .. } => {
            let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                "select status, step_id from runs where journey_id = $1 and user_key = $2 \
                 order by id desc",
            )
            .bind(j)
            .bind(key)
            .fetch_all(&mut *conn)
            .await?;
            let holds = match &e.kind {
                ExpectationKind::InJourney(_) => rows
                    .iter()
                    .any(|(s, _)| matches!(s.as_str(), "active" | "waiting")),
                ExpectationKind::JourneyStatus { status, step, .. } => {
                    rows.first().is_some_and(|(s, at_step)| {
                        s == status && step.as_ref().is_none_or(|w| at_step.as_ref() == Some(w))
                    })
                }
                _ => false,
            };
            let actual = match rows.first() {
                None => format!("{key} has no run of {j}"),
                Some((s, step)) => format!(
                    "{key}'s latest run of {j} is {s}{} ({} run{} in all)",
                    step.as_ref()
                        .map(|st| format!(" at \"{st}\""))
                        .unwrap_or_default(),
                    rows.len(),
                    if rows.len() == 1 { "" } else { "s" }
                ),
            };
            (holds, actual, None)
        }
    };
    if holds != e.negated {
        return Ok(None);
    }
    let why = match why_bucket {
        Some(b) => match hogsend_runtime::db::why(conn, schema, b, key, Some(at)).await? {
            Why::Explained(w) => Some(crate::commands::why::human(&w)),
            Why::UnknownBucket | Why::UnknownContact => None,
        },
        None => None,
    };
    Ok(Some(Failure {
        expectation: e.clone(),
        at,
        actual,
        why,
    }))
}

/// An instant as RFC 3339 in UTC, to the second.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
