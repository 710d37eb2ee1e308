//! The delivery worker: claims due messages, checks again who may receive them, renders,
//! sends and records the outcome.
//!
//! A round: `claim_messages(batch, lease)` (engine file `messaging.sql`: `FOR UPDATE SKIP
//! LOCKED`, status `sending` with a lease, attempts + 1), so daemons claim disjoint sets and
//! a dead worker's claims come back when their lease runs out. Each claimed message is
//! then, in one statement, joined with its contact, deployed template, run and list, and
//! given its skip reason (`message_skip_reason`: the contact may have unsubscribed or
//! been suppressed since the message was queued). Each template of the batch is parsed
//! once (`Compiled`). Sends run concurrently (at most `concurrency` at once, paced by
//! `[email] rate`) and hand their outcomes to a recorder, which writes all that have
//! arrived in one `UPDATE … FROM unnest(…) WHERE status = 'sending'` and the claim's
//! `attempts` (a fencing token: a message claimed again after its lease ran out is the new
//! claimant's): `sent` (provider id,
//! rendered subject), `skipped`, `queued` again with `next_attempt_at` (transient failure:
//! exponential backoff with jitter), or `failed` (permanent failure, or transient ones
//! `max_attempts` times). A send starts only while a whole send timeout is left before the
//! lease ends; what a round cannot start in time is handed back to `queued` (its attempt
//! given back), so a round never outlives its lease.
//!
//! Exactly once, as far as the wire allows: the window is between the provider accepting a
//! message and the recorder's write that includes it (at most one write's duration after
//! the send returns, or the time of a write in progress). A worker killed there leaves the row `sending`; when the
//! lease runs out it is sent again with the same `Message-ID` (SMTP has no idempotency:
//! at most one duplicate per crash, which receivers may collapse by `Message-ID`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch, Mutex, Semaphore};

use hogsend_mail::{Compiled, DeployedTemplate, RenderContext, TRANSACTIONAL};

use super::links::LinkKind;
use super::provider::{Outgoing, Provider, SendError};
use super::settings::domain_of;
use super::MailState;
use crate::metrics::Metrics;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub claimed: usize,
    pub sent: usize,
    pub skipped: usize,
    pub retried: usize,
    pub failed: usize,
    /// Claimed but not sent because too little of the lease was left to send them: back to
    /// `queued` at once, for the next round (of this worker or another).
    pub released: usize,
}

/// A claimed message with everything needed to send it.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: i64,
    user_key: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    /// The template's id.
    template: String,
    email: Option<String>,
    properties: Value,
    category: Option<String>,
    list_name: Option<String>,
    skip_reason: Option<String>,
    /// Non-transactional messages sent to the contact within the cap's window (null: no
    /// cap, or a transactional message).
    sent_in_window: Option<i64>,
    event: Option<Value>,
    journey_id: Option<String>,
    journey_name: Option<String>,
    campaign_id: Option<String>,
}

/// Paces sends to `[email] rate` (per daemon).
struct Pace {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pace {
    fn new(per_second: Option<f64>) -> Pace {
        Pace {
            interval: per_second
                .filter(|r| *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this send's turn; `false`, without taking a turn, when the turn would come
    /// after `deadline`.
    async fn wait(&self, deadline: Instant) -> bool {
        let Some(interval) = self.interval else {
            return Instant::now() <= deadline;
        };
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            if at > deadline {
                return false;
            }
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
        true
    }
}

/// The worker: a provider, the shared mail state and the pace.
pub struct Worker {
    pool: PgPool,
    schema: String,
    mail: Arc<MailState>,
    provider: Provider,
    metrics: Arc<Metrics>,
    pace: Arc<Pace>,
    installation: tokio::sync::OnceCell<Arc<str>>,
}

impl Worker {
    /// A worker for the configured provider.
    pub fn new(
        pool: PgPool,
        schema: &str,
        mail: Arc<MailState>,
        metrics: Arc<Metrics>,
    ) -> Result<Worker, String> {
        let provider = Provider::new(
            &mail.settings.provider,
            mail.settings.concurrency,
            mail.settings.dkim.clone(),
        )?;
        let pace = Arc::new(Pace::new(mail.settings.rate_per_second));
        Ok(Worker {
            pool,
            schema: schema.to_string(),
            mail,
            provider,
            metrics,
            pace,
            installation: tokio::sync::OnceCell::new(),
        })
    }

    /// Rounds until `stop` turns true; sleeps `poll` when the outbox is empty.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let idle = match self.round().await {
                Ok(r) => r.claimed == 0,
                Err(e) => {
                    tracing::warn!(error = %e, "delivery round failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    () = tokio::time::sleep(self.mail.settings.poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Claims one batch and delivers it.
    pub async fn round(&self) -> Result<Round, sqlx::Error> {
        let settings = &self.mail.settings;
        // The lease is counted from the claim; measured from before it, so this worker's
        // idea of its end is never later than the database's. A send may start only while
        // a whole send timeout is left before it: after the lease another worker may claim
        // the message, and both would send it.
        let send_by = Instant::now() + settings.lease.saturating_sub(settings.send_timeout);
        let ids: Vec<i64> = sqlx::query_scalar("select id from claim_messages($1, $2)")
            .bind(settings.batch_size)
            .bind(i32::try_from(settings.lease.as_secs()).unwrap_or(i32::MAX))
            .fetch_all(&self.pool)
            .await?;
        let mut round = Round {
            claimed: ids.len(),
            ..Round::default()
        };
        if ids.is_empty() {
            return Ok(round);
        }
        let rows: Vec<Claimed> = sqlx::query_as(
            "select m.id, m.user_key, m.attempts, m.created_at, m.template,
                    case when c.user_key is not null then coalesce(c.email, m.to_email) end as email,
                    coalesce(c.properties, '{}') as properties,
                    coalesce(m.category, t.category) as category,
                    l.name as list_name,
                    message_skip_reason(
                      case when c.user_key is not null then coalesce(c.email, m.to_email) end,
                      m.user_key,
                      coalesce(m.category, t.category, $4::text)) as skip_reason,
                    case when $2::bigint is not null
                          and coalesce(m.category, t.category, $4::text) <> $4::text
                         then (select count(*) from messages x
                                where x.user_key = m.user_key and x.status = 'sent'
                                  and x.category is distinct from $4::text
                                  and x.sent_at > now() - make_interval(secs => $3::bigint))
                    end as sent_in_window,
                    r.trigger_properties as event,
                    m.journey_id, j.definition->>'name' as journey_name, m.campaign_id
               from messages m
               left join contacts c on c.user_key = m.user_key and c.deleted_at is null
               left join templates t on t.id = m.template
               left join lists l on l.id = coalesce(m.category, t.category)
               left join runs r on r.user_key = m.user_key and r.id = m.run_id
               left join journeys j on j.id = m.journey_id
              where m.id = any($1) and m.status = 'sending'",
        )
        .bind(&ids)
        .bind(settings.frequency_cap.map(|c| c.0))
        .bind(settings.frequency_cap.map(|c| c.1))
        .bind(TRANSACTIONAL)
        .fetch_all(&self.pool)
        .await?;
        let rows = apply_frequency_cap(rows, settings.frequency_cap.map(|c| c.0));
        let templates = self.templates(&rows).await?;
        let installation = self
            .installation
            .get_or_try_init(|| async {
                sqlx::query_scalar::<_, String>("select id::text from installation")
                    .fetch_one(&self.pool)
                    .await
                    .map(Arc::from)
            })
            .await?
            .clone();
        // Sends run on their own tasks and hand their outcomes to the recorder, which writes
        // whatever has arrived in one statement: under load its batches are large, when
        // sends trickle in each is recorded as soon as the previous write is done.
        let (tx, rx) = mpsc::unbounded_channel::<Record>();
        let dispatch = async {
            let gate = Arc::new(Semaphore::new(settings.concurrency.max(1)));
            let mut tasks = tokio::task::JoinSet::new();
            for row in rows {
                let permit = gate.clone().acquire_owned().await;
                let job = self.job(installation.clone());
                let template = templates.get(&row.template).cloned();
                let tx = tx.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    let record = job.deliver(row, template, send_by).await;
                    let _ = tx.send(record);
                });
            }
            drop(tx);
            while let Some(done) = tasks.join_next().await {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a delivery task panicked");
                }
            }
        };
        let ((), recorded) = tokio::join!(dispatch, self.record(rx));
        round.sent = recorded.sent;
        round.skipped = recorded.skipped;
        round.retried = recorded.retried;
        round.failed = recorded.failed;
        Ok(round)
    }

    /// The deployed templates of `rows`, each parsed once for the round (an error: the
    /// template is not deployed, or its definition is unreadable; its messages fail).
    async fn templates(&self, rows: &[Claimed]) -> Result<Templates, sqlx::Error> {
        let mut ids: Vec<&str> = rows.iter().map(|r| r.template.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let deployed: Vec<(String, Value)> =
            sqlx::query_as("select id, definition from templates where id = any($1)")
                .bind(&ids)
                .fetch_all(&self.pool)
                .await?;
        let mut out: Templates = ids
            .iter()
            .map(|id| {
                (
                    (*id).to_string(),
                    Err(Arc::from("the template is not deployed")),
                )
            })
            .collect();
        for (id, definition) in deployed {
            let compiled = serde_json::from_value::<DeployedTemplate>(definition)
                .map_err(|e| format!("the deployed template is unreadable: {e}"))
                .and_then(|t| Compiled::new(t).map_err(|e| e.to_string()))
                .map(Arc::new)
                .map_err(Arc::from);
            out.insert(id, compiled);
        }
        Ok(out)
    }

    /// Writes the outcomes arriving on `rx`, as many per statement as have arrived, until
    /// every send of the round is done; counts what was written.
    async fn record(&self, mut rx: mpsc::UnboundedReceiver<Record>) -> Round {
        let mut round = Round::default();
        let mut pending = Vec::new();
        while let Some(first) = rx.recv().await {
            pending.push(first);
            while pending.len() < RECORD_BATCH {
                match rx.try_recv() {
                    Ok(r) => pending.push(r),
                    Err(_) => break,
                }
            }
            match record_outcomes(&self.pool, &pending).await {
                Ok(()) => {
                    for r in &pending {
                        self.count(r, &mut round);
                    }
                }
                // The messages stay `sending`: sent again when their lease runs out.
                Err(e) => tracing::warn!(
                    error = %e,
                    messages = pending.len(),
                    "recording deliveries failed"
                ),
            }
            pending.clear();
        }
        round
    }

    fn count(&self, r: &Record, round: &mut Round) {
        use std::sync::atomic::Ordering::Relaxed;
        let m = &self.metrics;
        match r.outcome {
            Outcome::Sent => {
                round.sent += 1;
                m.email_sent.fetch_add(1, Relaxed);
                if let Some(latency) = r.latency {
                    m.email_latency.observe(latency);
                }
            }
            Outcome::Skipped => {
                round.skipped += 1;
                m.email_skipped.fetch_add(1, Relaxed);
            }
            Outcome::Retry => {
                round.retried += 1;
                m.email_retries.fetch_add(1, Relaxed);
            }
            Outcome::Failed => {
                round.failed += 1;
                m.email_failed.fetch_add(1, Relaxed);
            }
            Outcome::Released => round.released += 1,
        }
    }

    fn job(&self, installation: Arc<str>) -> Job {
        Job {
            installation,
            pool: self.pool.clone(),
            schema: self.schema.clone(),
            mail: self.mail.clone(),
            provider: self.provider.clone(),
            pace: self.pace.clone(),
        }
    }
}

/// The parsed templates of a round, by id.
type Templates = HashMap<String, Result<Arc<Compiled>, Arc<str>>>;

/// At most this many outcomes per recording statement.
const RECORD_BATCH: usize = 1000;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Skipped,
    Retry,
    Failed,
    /// Not attempted: the lease would have run out during the send.
    Released,
}

impl Outcome {
    /// The message's status afterwards.
    fn status(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Skipped => "skipped",
            Outcome::Retry => "queued",
            Outcome::Failed => "failed",
            Outcome::Released => "released",
        }
    }
}

/// One message's outcome, to be recorded.
#[derive(Debug)]
struct Record {
    id: i64,
    /// The claim's attempt number: the outcome is recorded only while the message is still
    /// under this claim (not claimed again by another worker after the lease ran out).
    attempts: i32,
    outcome: Outcome,
    /// Sent: the provider's id, the rendered subject and the address.
    provider_id: Option<String>,
    subject: Option<String>,
    to: Option<String>,
    /// Skipped: the reason; retry and failed: the error.
    reason: Option<String>,
    /// Retry: seconds until the next attempt.
    delay: Option<f64>,
    /// Sent: queued → sent.
    latency: Option<Duration>,
}

impl Record {
    fn new(row: &Claimed, outcome: Outcome) -> Record {
        Record {
            id: row.id,
            attempts: row.attempts,
            outcome,
            provider_id: None,
            subject: None,
            to: None,
            reason: None,
            delay: None,
            latency: None,
        }
    }
}

/// Writes `records` in one statement. Only rows still `sending` under the same claim change
/// (`attempts` is the claim's fencing token): a message whose lease ran out and which
/// another worker claimed again is that worker's. A released message goes back to `queued`
/// with the attempt it did not make given back.
async fn record_outcomes(pool: &PgPool, records: &[Record]) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(records.len());
    let mut attempts = Vec::with_capacity(records.len());
    let mut statuses = Vec::with_capacity(records.len());
    let mut provider_ids = Vec::with_capacity(records.len());
    let mut subjects = Vec::with_capacity(records.len());
    let mut tos = Vec::with_capacity(records.len());
    let mut reasons = Vec::with_capacity(records.len());
    let mut delays = Vec::with_capacity(records.len());
    for r in records {
        ids.push(r.id);
        attempts.push(r.attempts);
        statuses.push(r.outcome.status());
        provider_ids.push(r.provider_id.as_deref());
        subjects.push(r.subject.as_deref());
        tos.push(r.to.as_deref());
        reasons.push(r.reason.as_deref());
        delays.push(r.delay);
    }
    sqlx::query(
        "update messages m
            set status = case when u.status = 'released' then 'queued' else u.status end,
                attempts = case when u.status = 'released' then m.attempts - 1
                                else m.attempts end,
                sent_at = case when u.status = 'sent' then now() else m.sent_at end,
                provider_id = case when u.status = 'sent' then u.provider_id else m.provider_id end,
                subject = case when u.status = 'sent' then u.subject else m.subject end,
                to_email = case when u.status = 'sent' then u.to_email else m.to_email end,
                skip_reason = case when u.status = 'skipped' then u.reason else m.skip_reason end,
                last_error = case when u.status = 'sent' then null
                                  when u.status in ('skipped', 'released') then m.last_error
                                  else u.reason end,
                next_attempt_at = case when u.status = 'queued'
                                       then now() + make_interval(secs => u.delay)
                                       when u.status = 'released' then now() end,
                updated_at = now()
           from unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                       $6::text[], $7::float8[], $8::int[])
                as u(id, status, provider_id, subject, to_email, reason, delay, attempts)
          where m.id = u.id and m.status = 'sending' and m.attempts = u.attempts",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&provider_ids)
    .bind(&subjects)
    .bind(&tos)
    .bind(&reasons)
    .bind(&delays)
    .bind(&attempts)
    .execute(pool)
    .await?;
    Ok(())
}

/// One message's delivery (owned, so it can run on its own task).
struct Job {
    /// The installation's id (idempotency keys).
    installation: Arc<str>,
    pool: PgPool,
    schema: String,
    mail: Arc<MailState>,
    provider: Provider,
    pace: Arc<Pace>,
}

impl Job {
    /// Renders and sends one message; what became of it, to be recorded.
    async fn deliver(
        &self,
        row: Claimed,
        template: Option<Result<Arc<Compiled>, Arc<str>>>,
        send_by: Instant,
    ) -> Record {
        let settings = &self.mail.settings;
        if let Some(reason) = &row.skip_reason {
            let mut r = Record::new(&row, Outcome::Skipped);
            r.reason = Some(reason.clone());
            return r;
        }
        let template = match template {
            Some(Ok(t)) => t,
            Some(Err(problem)) => return fail(&row, &problem),
            None => return fail(&row, "the template is not deployed"),
        };
        let outgoing = match self.prepare(&row, &template).await {
            Ok(o) => o,
            Err(problem) => return fail(&row, &problem),
        };
        if !self.pace.wait(send_by).await {
            return Record::new(&row, Outcome::Released);
        }
        match self.provider.send(&outgoing, settings.send_timeout).await {
            Ok(provider_id) => {
                let mut r = Record::new(&row, Outcome::Sent);
                r.provider_id = provider_id;
                r.latency = Some((Utc::now() - row.created_at).to_std().unwrap_or_default());
                r.subject = Some(outgoing.subject);
                r.to = Some(outgoing.to);
                r
            }
            Err(SendError::Permanent(e)) => fail(&row, &e),
            Err(SendError::Transient { message: e, .. })
                if row.attempts >= settings.max_attempts =>
            {
                fail(&row, &format!("{e} (after {} attempts)", row.attempts))
            }
            Err(SendError::Transient {
                message: e,
                retry_after,
            }) => {
                // At least what the provider asked for (`Retry-After`), at most 6 hours.
                let delay = backoff(settings.retry_base, row.attempts)
                    .max(retry_after.unwrap_or_default())
                    .min(Duration::from_secs(6 * 3600));
                let mut r = Record::new(&row, Outcome::Retry);
                r.reason = Some(e);
                r.delay = Some(delay.as_secs_f64());
                r
            }
        }
    }

    /// Renders the message and lays out its headers.
    async fn prepare(&self, row: &Claimed, compiled: &Compiled) -> Result<Outgoing, String> {
        let settings = &self.mail.settings;
        let template = compiled.template();
        let email = row.email.clone().unwrap_or_default();
        let category = row.category.clone().unwrap_or_else(|| TRANSACTIONAL.into());
        let transactional = category == TRANSACTIONAL;
        let signer = self
            .mail
            .signer(&self.pool)
            .await
            .map_err(|e| format!("no link secret: {e}"))?;
        let base = &settings.public_url;
        let preferences_url = format!(
            "{base}/p/{}",
            signer.token(LinkKind::Preferences, &row.user_key, "*")
        );
        let unsubscribe_token = signer.token(LinkKind::Unsubscribe, &row.user_key, &category);
        let unsubscribe_url = if transactional {
            String::new()
        } else {
            format!("{base}/u/{unsubscribe_token}")
        };
        let ctx = RenderContext {
            properties: row.properties.clone(),
            email: row.email.clone(),
            key: row.user_key.clone(),
            event: row.event.clone(),
            journey: row
                .journey_id
                .as_ref()
                .map(|id| json!({"id": id, "name": row.journey_name})),
            campaign: row.campaign_id.as_ref().map(|id| json!({"id": id})),
            unsubscribe_url: unsubscribe_url.clone(),
            preferences_url,
        };
        let mut rendered = compiled.render(&ctx).map_err(|e| e.to_string())?;
        rendered.html = rendered
            .html
            .map(|html| super::tracking::apply(settings, signer, row.id, transactional, html));
        let from = template
            .from
            .clone()
            .unwrap_or_else(|| settings.from.clone());
        let domain = domain_of(&from);
        let mut headers = Vec::new();
        if !transactional {
            headers.push((
                "List-Unsubscribe",
                format!(
                    "<{unsubscribe_url}>, <mailto:{}?subject=unsubscribe%20{unsubscribe_token}>",
                    settings.unsubscribe_mailto
                ),
            ));
            headers.push(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()));
            let name = row.list_name.clone().unwrap_or_else(|| category.clone());
            let name: String = name
                .chars()
                .filter(|c| !matches!(c, '<' | '>' | '"' | '\r' | '\n'))
                .collect();
            headers.push(("List-Id", format!("\"{name}\" <{category}.{domain}>")));
        }
        Ok(Outgoing {
            message_id: format!("<{}.{}@{domain}>", row.id, self.schema),
            idempotency_key: format!("hogsend:{}:{}", self.installation, row.id),
            from,
            reply_to: template.reply_to.clone(),
            to: email,
            subject: rendered.subject,
            html: rendered.html,
            text: rendered.text,
            headers,
        })
    }
}

/// A message that failed for good (logged).
fn fail(row: &Claimed, problem: &str) -> Record {
    tracing::warn!(message = row.id, error = %problem, "message failed");
    let mut r = Record::new(row, Outcome::Failed);
    r.reason = Some(problem.to_string());
    r
}

/// Marks the messages over `[email] max_per_contact` as skipped (`frequency_cap`): per
/// contact, the ones sent within the window plus this round's earlier ones (oldest first)
/// count against the cap.
fn apply_frequency_cap(mut rows: Vec<Claimed>, cap: Option<i64>) -> Vec<Claimed> {
    let Some(cap) = cap else {
        return rows;
    };
    rows.sort_by_key(|r| r.id);
    let mut used: HashMap<String, i64> = HashMap::new();
    for row in &mut rows {
        let Some(sent) = row.sent_in_window else {
            continue;
        };
        if row.skip_reason.is_some() {
            continue;
        }
        let n = used.entry(row.user_key.clone()).or_insert(sent);
        if *n >= cap {
            row.skip_reason = Some("frequency_cap".into());
        } else {
            *n += 1;
        }
    }
    rows
}

/// The delay before retry number `attempts`: `base · 2^(attempts-1)`, at most 6 hours,
/// ±25 % jitter so that messages failing together do not retry together.
fn backoff(base: Duration, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let raw = base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(6 * 3600));
    let jitter: f64 = rand::thread_rng().gen_range(0.75..1.25);
    raw.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let base = Duration::from_secs(10);
        for (attempt, nominal) in [(1, 10.0), (2, 20.0), (3, 40.0), (30, 6.0 * 3600.0)] {
            let d = backoff(base, attempt).as_secs_f64();
            assert!(d >= nominal * 0.75 && d <= nominal * 1.25, "{attempt}: {d}");
        }
    }
}
