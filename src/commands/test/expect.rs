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
pub(crate) struct Failure {
    pub expectation: TestExpectation,
    /// The instant of the tick it was checked after.
    pub at: DateTime<Utc>,
    /// What held instead (the label under the expectation).
    pub actual: String,
    /// The `hogsend why` explanation, for membership expectations.
    pub why: Option<String>,
}

/// The last transition id so far: transitions after it happened at the next instant.
pub(super) async fn transition_watermark(conn: &mut PgConnection) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select coalesce(max(id), 0) from transitions")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Checks `e` after the tick at `at`; `since` is the transition watermark before the instant.
pub(super) async fn check(
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
        ExpectationKind::Received(t)
        | ExpectationKind::ReceivedTimes { template: t, .. }
        | ExpectationKind::Skipped { template: t, .. } => {
            let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                "select status, skip_reason from messages \
                 where user_key = $1 and template = $2 order by id",
            )
            .bind(key)
            .bind(t)
            .fetch_all(&mut *conn)
            .await?;
            let received = |status: &str| !matches!(status, "skipped" | "cancelled");
            let holds = if let ExpectationKind::ReceivedTimes { times, .. } = &e.kind {
                rows.iter().filter(|(status, _)| received(status)).count() as i64 == *times
            } else {
                rows.iter().any(|(status, reason)| match &e.kind {
                    ExpectationKind::Received(_) => received(status),
                    ExpectationKind::Skipped { reason: want, .. } => {
                        status == "skipped"
                            && want.as_ref().is_none_or(|w| reason.as_ref() == Some(w))
                    }
                    _ => false,
                })
            };
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
        ExpectationKind::Subscription { list, subscribed } => {
            // (the explicit row for the list, the row for every list, the list's default)
            let (row, all, default): (Option<String>, Option<String>, Option<bool>) =
                sqlx::query_as(
                    "select (select status from subscriptions where user_key = $1 and list_id = $2), \
                            (select status from subscriptions where user_key = $1 and list_id = '*'), \
                            (select default_subscribed from lists where id = $2)",
                )
                .bind(key)
                .bind(list.as_deref().unwrap_or("*"))
                .fetch_one(&mut *conn)
                .await?;
            let all_off = all.as_deref() == Some("unsubscribed");
            let (holds, actual) = match list {
                None => (
                    all_off != *subscribed,
                    if all_off {
                        format!("{key} is unsubscribed from every list")
                    } else {
                        format!("{key} is not unsubscribed from every list")
                    },
                ),
                Some(l) => {
                    let state = match row.as_deref() {
                        Some(s) => format!("{s} to {l}"),
                        None if default == Some(false) => {
                            format!("not subscribed to {l} (an opt-in list)")
                        }
                        None => format!("subscribed to {l} (by the list's default)"),
                    };
                    let holds = if *subscribed {
                        !all_off
                            && match row.as_deref() {
                                Some(s) => s == "subscribed",
                                None => default != Some(false),
                            }
                    } else {
                        row.as_deref() == Some("unsubscribed")
                    };
                    let also = if all_off {
                        ", and unsubscribed from every list"
                    } else {
                        ""
                    };
                    (holds, format!("{key} is {state}{also}"))
                }
            };
            (holds, actual, None)
        }
        ExpectationKind::InJourney(j) | ExpectationKind::JourneyStatus { journey: j, .. } => {
            type Run = (String, Option<String>, Option<DateTime<Utc>>);
            let rows: Vec<Run> = sqlx::query_as(
                "select status, step_id, wake_at from runs where journey_id = $1 and user_key = $2 \
                 order by id desc",
            )
            .bind(j)
            .bind(key)
            .fetch_all(&mut *conn)
            .await?;
            let holds = match &e.kind {
                ExpectationKind::InJourney(_) => rows
                    .iter()
                    .any(|(s, _, _)| matches!(s.as_str(), "active" | "waiting")),
                ExpectationKind::JourneyStatus {
                    status,
                    step,
                    wake_at,
                    ..
                } => rows.first().is_some_and(|(s, at_step, at_wake)| {
                    s == status
                        && step.as_ref().is_none_or(|w| at_step.as_ref() == Some(w))
                        && wake_at.is_none_or(|w| at_wake.map(|t| t.timestamp()) == Some(w))
                }),
                _ => false,
            };
            let actual = match rows.first() {
                None => format!("{key} has no run of {j}"),
                Some((s, step, wake)) => format!(
                    "{key}'s latest run of {j} is {s}{}{} ({} run{} in all)",
                    step.as_ref()
                        .map(|st| format!(" at \"{st}\""))
                        .unwrap_or_default(),
                    wake.map(|w| format!(" until {}", stamp(w)))
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
pub(super) fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    //! Each expectation kind against rows written by hand (the journey engine and delivery
    //! fill `runs` and `messages`; these check the reads, whoever writes them).

    use super::*;
    use hogsend_compiler::source::{SourceFile, SourceSet};
    use hogsend_compiler::test_suite::{ExpectationKind as K, TestExpectation};
    use hogsend_runtime::testkit::TestDatabase;
    use sqlx::Executor;

    fn expectation(negated: bool, kind: K) -> TestExpectation {
        TestExpectation {
            key: "u1".into(),
            negated,
            kind,
            span: hogsend_dsl::Span::default(),
            text: String::new(),
        }
    }

    #[test]
    fn every_expectation_kind_reads_its_table() {
        crate::database::runtime()
            .expect("runtime")
            .block_on(async {
                let tdb = TestDatabase::new().await;
                let set = SourceSet::from_files([SourceFile::new(
                    "b.hog",
                    "bucket b {\n  criteria did a within 7d\n}\n",
                )]);
                let compiled = hogsend_compiler::compile(&set);
                let files = compiled.files.expect("compiles");
                let schema = SchemaName::default();
                let mut conn = tdb.connect_to(&schema).await;
                hogsend_runtime::migrate::migrate(&mut conn, &schema, &files)
                    .await
                    .expect("migrates");
                let t0 = DateTime::from_timestamp(1_800_000_000, 0).expect("instant");
                hogsend_runtime::db::tick(&mut conn, &schema, Some(t0))
                    .await
                    .expect("tick");
                let since = transition_watermark(&mut conn).await.expect("watermark");
                conn.execute(
                    "insert into contacts (external_id) values ('u1');
                     insert into events (user_key, event, occurred_at)
                       values ('u1', 'a', '2027-01-15T08:00:00Z');
                     insert into messages (user_key, template, status) values
                       ('u1', 'welcome', 'queued'),
                       ('u1', 'nudge', 'skipped');
                     update messages set skip_reason = 'unsubscribed:weekly'
                       where template = 'nudge';
                     insert into runs (journey_id, user_key, status, step_id, entered_at,
                                       arrived_at, wake_at, trigger_kind)
                       values ('j', 'u1', 'completed', '3', now(), now(), null, 'event'),
                              ('j', 'u1', 'waiting', '1', now(), now(),
                               '2027-02-01T00:00:00Z', 'event');",
                )
                .await
                .expect("rows");
                let at = t0 + chrono::Duration::hours(1);
                hogsend_runtime::db::tick(&mut conn, &schema, Some(at))
                    .await
                    .expect("tick");
                let cases = [
                    (K::InBucket("b".into()), true),
                    (K::Entered("b".into()), true),
                    (
                        K::Left {
                            bucket: "b".into(),
                            reason: None,
                        },
                        false,
                    ),
                    (
                        K::Dwell {
                            bucket: "b".into(),
                            label: "x".into(),
                        },
                        false,
                    ),
                    (K::Received("welcome".into()), true),
                    (K::Received("nudge".into()), false),
                    (
                        K::Skipped {
                            template: "nudge".into(),
                            reason: None,
                        },
                        true,
                    ),
                    (
                        K::Skipped {
                            template: "nudge".into(),
                            reason: Some("unsubscribed:weekly".into()),
                        },
                        true,
                    ),
                    (
                        K::Skipped {
                            template: "nudge".into(),
                            reason: Some("no_email".into()),
                        },
                        false,
                    ),
                    (K::InJourney("j".into()), true),
                    (K::InJourney("other".into()), false),
                    (
                        K::JourneyStatus {
                            journey: "j".into(),
                            status: "waiting".into(),
                            step: Some("1".into()),
                            wake_at: None,
                        },
                        true,
                    ),
                    (
                        K::JourneyStatus {
                            journey: "j".into(),
                            status: "waiting".into(),
                            step: None,
                            wake_at: Some(1_801_440_000),
                        },
                        true,
                    ),
                    (
                        K::JourneyStatus {
                            journey: "j".into(),
                            status: "waiting".into(),
                            step: None,
                            wake_at: Some(1_801_440_001),
                        },
                        false,
                    ),
                    (
                        K::ReceivedTimes {
                            template: "welcome".into(),
                            times: 1,
                        },
                        true,
                    ),
                    (
                        K::ReceivedTimes {
                            template: "welcome".into(),
                            times: 2,
                        },
                        false,
                    ),
                    (
                        K::ReceivedTimes {
                            template: "nudge".into(),
                            times: 0,
                        },
                        true,
                    ),
                    (
                        K::JourneyStatus {
                            journey: "j".into(),
                            status: "completed".into(),
                            step: None,
                            wake_at: None,
                        },
                        false,
                    ),
                ];
                for (kind, holds) in cases {
                    for negated in [false, true] {
                        let e = expectation(negated, kind.clone());
                        let failure = check(&mut conn, &schema, &e, at, since)
                            .await
                            .expect("check runs");
                        assert_eq!(
                            failure.is_none(),
                            holds != negated,
                            "{kind:?} negated={negated}: {failure:?}"
                        );
                        if let Some(f) = failure {
                            assert!(!f.actual.is_empty());
                            // Only membership failures carry the explanation.
                            assert_eq!(f.why.is_some(), matches!(kind, K::InBucket(_)));
                        }
                    }
                }
            });
    }
}
