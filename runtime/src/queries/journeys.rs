//! Reads and the two writes behind the journey and run routes: deployed journeys with
//! their run counts, runs (keyset pages by id), a run's history, pausing a journey and
//! cancelling a run under the pass lock.

use crate::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use utoipa::ToSchema;

/// The statuses a run can have (docs/language.md, "Runs"): in flight `active`, `waiting`;
/// final `completed`, `exited`, `failed`.
pub const RUN_STATUSES: [&str; 5] = ["active", "waiting", "completed", "exited", "failed"];

/// How many runs of a journey have each status.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct RunCounts {
    /// About to execute a step.
    pub active: i64,
    /// Parked at a wait.
    pub waiting: i64,
    /// Ran off the last step.
    pub completed: i64,
    /// Ended early (`exit_reason` says why).
    pub exited: i64,
    /// Ended by an error.
    pub failed: i64,
}

impl RunCounts {
    fn add(&mut self, status: &str, n: i64) {
        match status {
            "active" => self.active += n,
            "waiting" => self.waiting += n,
            "completed" => self.completed += n,
            "exited" => self.exited += n,
            "failed" => self.failed += n,
            _ => {}
        }
    }
}

/// How many runs are at one step (in flight there, or ended there), by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepCounts {
    /// The step's stable id.
    pub step: String,
    /// The runs at that step, by status.
    pub runs: RunCounts,
}

/// A deployed journey (or bucket reaction) with its run counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct Journey {
    /// Its id (`<bucket>.<reaction>` for a bucket reaction).
    pub id: String,
    /// `journey` or `reaction`.
    pub kind: String,
    /// `enabled` as the code says (default true).
    pub enabled: bool,
    /// Paused through the API (`PATCH /v1/journeys/{id}`).
    pub paused: bool,
    /// Whether it enrols contacts now: enabled in the code and not paused.
    pub enrolling: bool,
    /// Its entry policy: `once`, `once_per` or `unlimited`.
    pub entry: String,
    /// For `once_per`: the period in seconds.
    pub entry_period_seconds: Option<i64>,
    /// Its definition as deployed: name, description, trigger, steps with their stable ids.
    #[schema(value_type = Object)]
    pub definition: Json<Value>,
    /// When its current definition was deployed.
    pub deployed_at: DateTime<Utc>,
    /// Its runs by status.
    pub runs: RunCounts,
    /// Its runs by the step they are at (or ended at), by step id; runs at no step are not
    /// listed.
    pub steps: Vec<StepCounts>,
}

#[derive(sqlx::FromRow)]
struct JourneyRow {
    id: String,
    kind: String,
    enabled: bool,
    paused: bool,
    entry_kind: String,
    entry_period_seconds: Option<i64>,
    definition: Json<Value>,
    deployed_at: DateTime<Utc>,
}

/// The select of a journey row from `journeys j` (a macro, so each
/// statement that uses it is one static string).
macro_rules! journey_select {
    () => {
        "select j.id, j.kind, j.enabled, j.paused, j.entry_kind,
  extract(epoch from j.entry_period)::bigint as entry_period_seconds, j.definition,
  j.deployed_at from journeys j"
    };
}

/// Every deployed journey with its run counts, by id.
pub async fn journeys(pool: &PgPool) -> Result<Vec<Journey>> {
    let rows: Vec<JourneyRow> = sqlx::query_as(concat!(journey_select!(), " order by j.id"))
        .fetch_all(pool)
        .await?;
    let counts: Vec<(String, Option<String>, String, i64)> = sqlx::query_as(
        "select r.journey_id, r.step_id, r.status, count(*) from runs r
          group by 1, 2, 3 order by 1, 2, 3",
    )
    .fetch_all(pool)
    .await?;
    let mut by_journey: std::collections::HashMap<String, Vec<(Option<String>, String, i64)>> =
        std::collections::HashMap::new();
    for (journey, step, status, n) in counts {
        by_journey
            .entry(journey)
            .or_default()
            .push((step, status, n));
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let counts = by_journey.remove(&row.id).unwrap_or_default();
            with_counts(row, counts)
        })
        .collect())
}

/// One deployed journey with its run counts.
pub async fn journey(pool: &PgPool, id: &str) -> Result<Option<Journey>> {
    let Some(row): Option<JourneyRow> =
        sqlx::query_as(concat!(journey_select!(), " where j.id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
    else {
        return Ok(None);
    };
    let counts: Vec<(Option<String>, String, i64)> = sqlx::query_as(
        "select r.step_id, r.status, count(*) from runs r
          where r.journey_id = $1 group by 1, 2 order by 1, 2",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(Some(with_counts(row, counts)))
}

fn with_counts(
    row: JourneyRow,
    counts: impl IntoIterator<Item = (Option<String>, String, i64)>,
) -> Journey {
    let mut runs = RunCounts::default();
    let mut steps: Vec<StepCounts> = Vec::new();
    for (step, status, n) in counts {
        runs.add(&status, n);
        let Some(step) = step else { continue };
        // The counts come ordered by step, so one step's rows are adjacent.
        match steps.last_mut() {
            Some(last) if last.step == step => last.runs.add(&status, n),
            _ => {
                let mut by_status = RunCounts::default();
                by_status.add(&status, n);
                steps.push(StepCounts {
                    step,
                    runs: by_status,
                });
            }
        }
    }
    Journey {
        enrolling: row.enabled && !row.paused,
        id: row.id,
        kind: row.kind,
        enabled: row.enabled,
        paused: row.paused,
        entry: row.entry_kind,
        entry_period_seconds: row.entry_period_seconds,
        definition: row.definition,
        deployed_at: row.deployed_at,
        runs,
        steps,
    }
}

/// Whether journey `id` is deployed.
pub async fn journey_exists(pool: &PgPool, id: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from journeys where id = $1)")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

/// Pauses (`enabled` false) or resumes enrolment into journey `id`; false when it is not
/// deployed. Runs in flight are not touched.
pub async fn set_journey_enabled(pool: &PgPool, id: &str, enabled: bool) -> Result<bool> {
    let done = sqlx::query("update journeys set paused = not $2 where id = $1")
        .bind(id)
        .bind(enabled)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One contact's run of a journey.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Run {
    /// Its id: increasing in creation order, the cursor of run lists.
    pub id: i64,
    /// The journey (or `<bucket>.<reaction>`).
    pub journey_id: String,
    /// The contact's key.
    pub key: String,
    /// `active`, `waiting`, `completed`, `exited` or `failed`.
    pub status: String,
    /// The step it is at (about to execute, or waiting in); the last one once ended.
    pub step: Option<String>,
    /// Its entry instant: the trigger event's `occurred_at`, the transition's instant, or
    /// the pass instant of a `start`.
    pub entered_at: DateTime<Utc>,
    /// When it reached `step`.
    pub arrived_at: DateTime<Utc>,
    /// When time alone may move it on (waiting runs; null when only a condition can).
    pub wake_at: Option<DateTime<Utc>>,
    /// When it ended; null while in flight.
    pub ended_at: Option<DateTime<Utc>>,
    /// Why it exited: `exit_when`, `exit_step`, `membership_ended`, `contact_deleted`,
    /// `step_removed`, `cancelled`, `merged`.
    pub exit_reason: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// What started it: `event`, `enter`, `leave`, `dwell` or `start`.
    pub trigger: String,
    /// The triggering event's id (event-triggered runs).
    pub trigger_event_id: Option<i64>,
    /// The run whose `start` step started it.
    pub parent_run_id: Option<i64>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The select list of [`Run`]'s columns of `runs r` (a macro, so each
/// statement that uses it is one static string).
macro_rules! run_columns {
    () => {
        "r.id, r.journey_id, r.user_key as key, r.status, r.step_id as step,
  r.entered_at, r.arrived_at, r.wake_at, r.ended_at, r.exit_reason, r.error,
  r.trigger_kind as trigger, r.trigger_event_id, r.parent_run_id, r.updated_at"
    };
}

/// A page of a journey's runs by id, after id `after`, optionally of one status.
pub async fn journey_runs(
    pool: &PgPool,
    journey: &str,
    status: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<Run>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        run_columns!(),
        " from runs r
          where r.journey_id = $1 and ($2::text is null or r.status = $2) and r.id > $3
          order by r.id limit $4"
    ))
    .bind(journey)
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A page of a contact's runs (of every journey) by id, after id `after`.
pub async fn contact_runs(
    pool: &PgPool,
    key: &str,
    status: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<Run>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        run_columns!(),
        " from runs r
          where r.user_key = $1 and ($2::text is null or r.status = $2) and r.id > $3
          order by r.id limit $4"
    ))
    .bind(key)
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// One run.
pub async fn run(pool: &PgPool, id: i64) -> Result<Option<Run>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        run_columns!(),
        " from runs r where r.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// A step a run executed.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct RunStep {
    /// The step's stable id.
    pub step: String,
    /// `send`, `wait`, `wait_until`, `wait_time`, `if`, `start`, `emit`, `exit` or
    /// `complete`.
    pub kind: String,
    /// What happened: the branch taken, `condition` / `timeout`, the message id, …
    pub outcome: Option<String>,
    /// The instant of the pass that executed it.
    pub executed_at: DateTime<Utc>,
}

/// The steps run `id` executed, in the order they were executed: by instant, then (for the
/// steps one pass executed at the same instant) by step id.
pub async fn run_steps(pool: &PgPool, id: i64, key: &str) -> Result<Vec<RunStep>> {
    Ok(sqlx::query_as(
        "select st.step_id as step, st.kind, st.outcome, st.executed_at
           from run_steps st where st.user_key = $1 and st.run_id = $2
          order by st.executed_at, st.step_id",
    )
    .bind(key)
    .bind(id)
    .fetch_all(pool)
    .await?)
}

/// What [`cancel_run`] did.
#[derive(Debug)]
pub enum Cancel {
    /// The run was in flight and is now `exited` (`cancelled`).
    Cancelled(Box<Run>),
    /// The run had already ended, with this status.
    AlreadyEnded(String),
    /// No run has this id.
    Unknown,
}

/// Ends run `id` `exited` with reason `cancelled` if it is `active` or `waiting`. Takes the
/// schema's pass lock first (the lock every pass holds), so it never interleaves with a
/// tick or a real-time pass moving the same run: a pass either finished with the run before
/// (and the cancel sees where it left it) or starts after and finds it ended.
pub async fn cancel_run(pool: &PgPool, schema: &str, id: i64) -> Result<Cancel> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(hogsend_schema::lock_key(schema))
        .execute(&mut *tx)
        .await?;
    let cancelled: Option<Run> = sqlx::query_as(concat!(
        "with ended as (
           update runs set status = 'exited', exit_reason = 'cancelled', ended_at = now(),
                  wake_at = null, updated_at = now()
            where id = $1 and status in ('active', 'waiting')
           returning *)
         select ",
        run_columns!(),
        " from ended r"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match cancelled {
        Some(run) => Cancel::Cancelled(Box::new(run)),
        None => {
            let status: Option<String> = sqlx::query("select status from runs where id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.get(0));
            match status {
                Some(status) => Cancel::AlreadyEnded(status),
                None => Cancel::Unknown,
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Runs per journey and status (for `/metrics`), of every journey that has runs.
pub async fn run_counts(pool: &PgPool) -> Result<Vec<(String, String, i64)>> {
    Ok(sqlx::query_as(
        "select r.journey_id, r.status, count(*) from runs r
          group by 1, 2 order by 1, 2",
    )
    .fetch_all(pool)
    .await?)
}

/// Enrolments skipped per journey and reason (for `/metrics`).
pub async fn skip_counts(pool: &PgPool) -> Result<Vec<(String, String, i64)>> {
    Ok(
        sqlx::query_as("select journey_id, reason, count from journey_skips order by 1, 2")
            .fetch_all(pool)
            .await?,
    )
}
