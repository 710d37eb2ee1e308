//! The delivery worker: claims due messages, checks again who may receive them, renders,
//! sends and records the outcome.
//!
//! A round: `claim_messages(batch, lease)` (engine file `messaging.sql`: `FOR UPDATE SKIP
//! LOCKED`, status `sending` with a lease, attempts + 1), so daemons claim disjoint sets and
//! a dead worker's claims come back when their lease runs out. Each claimed message is
//! then, in one statement, joined with its contact, deployed template, run and list, and
//! given its skip reason (`message_skip_reason`: the contact may have unsubscribed or
//! been suppressed since the message was queued). Sends run concurrently (at most
//! `concurrency` at once, paced by `[email] rate`); each outcome is one `UPDATE … WHERE
//! status = 'sending'`: `sent` (provider id, rendered subject), `skipped`, `queued` again
//! with `next_attempt_at` (transient failure: exponential backoff with jitter), or
//! `failed` (permanent failure, or transient ones `max_attempts` times).
//!
//! Exactly once, as far as the wire allows: the window is between the provider accepting a
//! message and the `sent` update. A worker killed there leaves the row `sending`; when the
//! lease runs out it is sent again with the same `Message-ID` (SMTP has no idempotency:
//! at most one duplicate per crash, which receivers may collapse by `Message-ID`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::{watch, Mutex, Semaphore};

use hogsend_mail::{render, DeployedTemplate, RenderContext, TRANSACTIONAL};

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
}

/// A claimed message with everything needed to send it.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: i64,
    user_key: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    email: Option<String>,
    properties: Value,
    definition: Option<Value>,
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

    async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
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
        let provider = Provider::new(&mail.settings.provider, mail.settings.concurrency)?;
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
            "select m.id, m.user_key, m.attempts, m.created_at,
                    case when c.user_key is not null then coalesce(c.email, m.to_email) end as email,
                    coalesce(c.properties, '{}') as properties,
                    t.definition,
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
        let gate = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for row in rows {
            let permit = gate.clone().acquire_owned().await;
            let job = self.job(installation.clone());
            tasks.spawn(async move {
                let _permit = permit;
                job.deliver(row).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(Outcome::Sent)) => round.sent += 1,
                Ok(Ok(Outcome::Skipped)) => round.skipped += 1,
                Ok(Ok(Outcome::Retry)) => round.retried += 1,
                Ok(Ok(Outcome::Failed)) => round.failed += 1,
                Ok(Err(e)) => tracing::warn!(error = %e, "recording a delivery failed"),
                Err(e) => tracing::error!(error = %e, "a delivery task panicked"),
            }
        }
        Ok(round)
    }

    fn job(&self, installation: Arc<str>) -> Job {
        Job {
            installation,
            pool: self.pool.clone(),
            schema: self.schema.clone(),
            mail: self.mail.clone(),
            provider: self.provider.clone(),
            metrics: self.metrics.clone(),
            pace: self.pace.clone(),
        }
    }
}

/// What became of one message.
enum Outcome {
    Sent,
    Skipped,
    Retry,
    Failed,
}

/// One message's delivery (owned, so it can run on its own task).
struct Job {
    /// The installation's id (idempotency keys).
    installation: Arc<str>,
    pool: PgPool,
    schema: String,
    mail: Arc<MailState>,
    provider: Provider,
    metrics: Arc<Metrics>,
    pace: Arc<Pace>,
}

impl Job {
    async fn deliver(&self, row: Claimed) -> Result<Outcome, sqlx::Error> {
        let settings = &self.mail.settings;
        if let Some(reason) = &row.skip_reason {
            sqlx::query(
                "update messages set status = 'skipped', skip_reason = $2,
                        next_attempt_at = null, updated_at = now()
                  where id = $1 and status = 'sending'",
            )
            .bind(row.id)
            .bind(reason)
            .execute(&self.pool)
            .await?;
            self.metrics
                .email_skipped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(Outcome::Skipped);
        }
        let outgoing = match self.prepare(&row).await {
            Ok(o) => o,
            Err(problem) => return self.fail(&row, &problem).await,
        };
        self.pace.wait().await;
        match self.provider.send(&outgoing, settings.send_timeout).await {
            Ok(provider_id) => {
                sqlx::query(
                    "update messages set status = 'sent', sent_at = now(), provider_id = $2,
                            subject = $3, to_email = $4, next_attempt_at = null,
                            last_error = null, updated_at = now()
                      where id = $1 and status = 'sending'",
                )
                .bind(row.id)
                .bind(&provider_id)
                .bind(&outgoing.subject)
                .bind(&outgoing.to)
                .execute(&self.pool)
                .await?;
                self.metrics
                    .email_sent
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let latency = (Utc::now() - row.created_at).to_std().unwrap_or_default();
                self.metrics.email_latency.observe(latency);
                Ok(Outcome::Sent)
            }
            Err(SendError::Permanent(e)) => self.fail(&row, &e).await,
            Err(SendError::Transient { message: e, .. })
                if row.attempts >= settings.max_attempts =>
            {
                self.fail(&row, &format!("{e} (after {} attempts)", row.attempts))
                    .await
            }
            Err(SendError::Transient {
                message: e,
                retry_after,
            }) => {
                // At least what the provider asked for (`Retry-After`), at most 6 hours.
                let delay = backoff(settings.retry_base, row.attempts)
                    .max(retry_after.unwrap_or_default())
                    .min(Duration::from_secs(6 * 3600));
                sqlx::query(
                    "update messages set status = 'queued', last_error = $2,
                            next_attempt_at = now() + make_interval(secs => $3),
                            updated_at = now()
                      where id = $1 and status = 'sending'",
                )
                .bind(row.id)
                .bind(&e)
                .bind(delay.as_secs_f64())
                .execute(&self.pool)
                .await?;
                self.metrics
                    .email_retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Outcome::Retry)
            }
        }
    }

    async fn fail(&self, row: &Claimed, problem: &str) -> Result<Outcome, sqlx::Error> {
        tracing::warn!(message = row.id, error = %problem, "message failed");
        sqlx::query(
            "update messages set status = 'failed', last_error = $2,
                    next_attempt_at = null, updated_at = now()
              where id = $1 and status = 'sending'",
        )
        .bind(row.id)
        .bind(problem)
        .execute(&self.pool)
        .await?;
        self.metrics
            .email_failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Outcome::Failed)
    }

    /// Renders the message and lays out its headers.
    async fn prepare(&self, row: &Claimed) -> Result<Outgoing, String> {
        let settings = &self.mail.settings;
        let template: DeployedTemplate = match &row.definition {
            Some(d) => serde_json::from_value(d.clone())
                .map_err(|e| format!("the deployed template is unreadable: {e}"))?,
            None => return Err("the template is not deployed".into()),
        };
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
        let mut rendered = render(&template, &ctx).map_err(|e| e.to_string())?;
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

/// Marks the messages over `[email] max_per_contact` as skipped (`frequency_cap`): per
/// contact, the ones sent within the window plus this round's earlier ones (oldest first)
/// count against the cap.
fn apply_frequency_cap(mut rows: Vec<Claimed>, cap: Option<i64>) -> Vec<Claimed> {
    let Some(cap) = cap else {
        return rows;
    };
    rows.sort_by_key(|r| r.id);
    let mut used: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
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
