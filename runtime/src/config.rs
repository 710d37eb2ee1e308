//! The daemon's configuration: `hogsend.toml`'s values, then environment overrides.
//!
//! The binary resolves the database URL (`--database-url`, `DATABASE_URL`, `hogsend.toml`),
//! compiles the project and hands over the daemon's sections of `hogsend.toml` (`[api]`,
//! `[schedule]`, the schema): plain data types from `hogsend-schema`, validated by the
//! compiler, which also reports their diagnostics. This module adds the environment
//! overrides and the daemon's own knobs. Secrets (the database
//! URL's password) are redacted in `Debug`, so the config can be logged as is.

use hogsend_schema::settings::{parse_duration, ApiConfig, RedactedUrl, ScheduleConfig};
use hogsend_schema::{GeneratedFile, SchemaName};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything [`crate::launch`] needs.
#[derive(Clone)]
pub struct RuntimeConfig {
    /// Where Postgres is (password redacted in `Debug`).
    pub database_url: RedactedUrl,
    /// The schema hogsend owns.
    pub schema: SchemaName,
    /// The address to listen on (used by the binary to bind; tests bind port 0 themselves).
    pub listen: SocketAddr,
    /// How often the scheduler ticks.
    pub tick_every: Duration,
    /// How often touched contacts are re-evaluated in real time.
    pub realtime_flush: Duration,
    /// `/readyz` fails while the real-time backlog's oldest change is older than this
    /// (`None`: never).
    pub realtime_max_backlog_age: Option<Duration>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Per-key token bucket: tokens refilled per second (0: no limit).
    pub rate_limit_per_second: u32,
    /// Per-key token bucket: its size (the burst a key may send at once).
    pub rate_limit_burst: u32,
    /// Per-source-IP token bucket of publishable keys: tokens per second (0: no limit).
    pub ip_rate_limit_per_second: u32,
    /// Per-source-IP token bucket of publishable keys: its size.
    pub ip_rate_limit_burst: u32,
    /// The request header naming the client's address when a proxy stands in front
    /// (`X-Forwarded-For`: its last entry, the one the proxy added); none: the peer address.
    pub client_ip_header: Option<String>,
    /// Database connections in the daemon's pool.
    pub pool_size: u32,
    /// Whether this daemon runs the scheduler (ticks). Tests turn it off to drive time.
    pub scheduler: bool,
    /// A request head must arrive within this (idle keep-alive connections close then).
    pub header_timeout: Duration,
    /// A request body must arrive within this (else 408).
    pub body_timeout: Duration,
    /// A request must be answered within this (else 503).
    pub request_timeout: Duration,
    /// On SIGTERM, the longest the daemon waits for requests in flight before closing
    /// their connections.
    pub shutdown_grace: Duration,
    /// Origins browsers may call the ingest routes from (CORS); `*` for any, empty for none.
    pub cors_origins: Vec<String>,
    /// The compiled project, applied by `migrate` on start.
    pub generated: Vec<GeneratedFile>,
    /// Email delivery (`[email]`, `HOGSEND_SECRET`, …); the `log` provider by default. Set
    /// by [`RuntimeConfig::with_email`].
    pub mail: crate::mail::MailSettings,
}

/// The sections of `hogsend.toml` the daemon reads.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// `[database] schema`.
    pub schema: &'a SchemaName,
    /// `[api]`.
    pub api: &'a ApiConfig,
    /// `[schedule]`.
    pub schedule: &'a ScheduleConfig,
}

/// The readiness bound on the real-time backlog's age: `ms` milliseconds, 0 for none.
fn max_backlog_age(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// A bad environment override.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

impl RuntimeConfig {
    /// The daemon's settings from `hogsend.toml` (already checked), the resolved database
    /// URL, the compiled project and the environment (`HOGSEND_LISTEN`, `HOGSEND_TICK_EVERY`,
    /// `HOGSEND_REALTIME_FLUSH_MS`, `HOGSEND_REALTIME_MAX_BACKLOG_AGE_MS`,
    /// `HOGSEND_MAX_BODY_BYTES`, `HOGSEND_RATE_LIMIT_PER_SECOND`,
    /// `HOGSEND_RATE_LIMIT_BURST`, `HOGSEND_IP_RATE_LIMIT_PER_SECOND`,
    /// `HOGSEND_IP_RATE_LIMIT_BURST`, `HOGSEND_CLIENT_IP_HEADER`, `HOGSEND_DB_POOL_SIZE`,
    /// `HOGSEND_CORS_ORIGINS`, and the durations
    /// `HOGSEND_HEADER_TIMEOUT`, `HOGSEND_BODY_TIMEOUT`, `HOGSEND_REQUEST_TIMEOUT`,
    /// `HOGSEND_SHUTDOWN_GRACE`, e.g. `30s`).
    pub fn from_settings(
        settings: Settings<'_>,
        database_url: &str,
        generated: Vec<GeneratedFile>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<RuntimeConfig, ConfigError> {
        let Settings {
            schema,
            api,
            schedule,
        } = settings;
        let mut rc = RuntimeConfig {
            database_url: RedactedUrl::new(database_url),
            schema: schema.clone(),
            listen: api.listen,
            tick_every: Duration::from_secs(schedule.tick_every.seconds),
            realtime_flush: Duration::from_millis(schedule.realtime_flush_ms.max(1)),
            realtime_max_backlog_age: max_backlog_age(schedule.realtime_max_backlog_age_ms),
            max_body_bytes: usize::try_from(api.max_body_bytes).unwrap_or(usize::MAX),
            rate_limit_per_second: api.rate_limit_per_second,
            rate_limit_burst: api.rate_limit_burst,
            ip_rate_limit_per_second: 10,
            ip_rate_limit_burst: 50,
            client_ip_header: None,
            pool_size: 10,
            scheduler: true,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(15),
            cors_origins: Vec::new(),
            generated,
            mail: crate::mail::MailSettings {
                public_url: format!("http://{}", api.listen),
                ..crate::mail::MailSettings::default()
            },
        };
        let get = |name: &'static str| env(name).filter(|v| !v.trim().is_empty());
        let bad = |name: &'static str, value: &str, problem: String| ConfigError {
            name,
            value: value.to_owned(),
            problem,
        };
        if let Some(v) = get("HOGSEND_LISTEN") {
            rc.listen = v.trim().parse().map_err(|e| {
                bad(
                    "HOGSEND_LISTEN",
                    &v,
                    format!("{e}; expected e.g. 127.0.0.1:8080"),
                )
            })?;
        }
        if let Some(v) = get("HOGSEND_TICK_EVERY") {
            rc.tick_every = Duration::from_secs(
                parse_duration(v.trim()).map_err(|e| bad("HOGSEND_TICK_EVERY", &v, e))?,
            );
        }
        for (name, field) in [
            ("HOGSEND_HEADER_TIMEOUT", &mut rc.header_timeout),
            ("HOGSEND_BODY_TIMEOUT", &mut rc.body_timeout),
            ("HOGSEND_REQUEST_TIMEOUT", &mut rc.request_timeout),
            ("HOGSEND_SHUTDOWN_GRACE", &mut rc.shutdown_grace),
        ] {
            if let Some(v) = get(name) {
                let secs = parse_duration(v.trim()).map_err(|e| bad(name, &v, e))?;
                if secs == 0 && name != "HOGSEND_SHUTDOWN_GRACE" {
                    return Err(bad(name, &v, "must be at least 1s".to_owned()));
                }
                *field = Duration::from_secs(secs);
            }
        }
        let number =
            |name: &'static str| -> Result<Option<u64>, ConfigError> {
                match get(name) {
                    None => Ok(None),
                    Some(v) => v.trim().parse::<u64>().map(Some).map_err(|e| {
                        bad(name, &v, format!("{e}; expected a non-negative integer"))
                    }),
                }
            };
        if let Some(ms) = number("HOGSEND_REALTIME_FLUSH_MS")? {
            rc.realtime_flush = Duration::from_millis(ms.max(1));
        }
        if let Some(ms) = number("HOGSEND_REALTIME_MAX_BACKLOG_AGE_MS")? {
            rc.realtime_max_backlog_age = max_backlog_age(ms);
        }
        if let Some(n) = number("HOGSEND_MAX_BODY_BYTES")? {
            rc.max_body_bytes = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(n) = number("HOGSEND_RATE_LIMIT_PER_SECOND")? {
            rc.rate_limit_per_second = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number("HOGSEND_RATE_LIMIT_BURST")? {
            rc.rate_limit_burst = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number("HOGSEND_IP_RATE_LIMIT_PER_SECOND")? {
            rc.ip_rate_limit_per_second = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(n) = number("HOGSEND_IP_RATE_LIMIT_BURST")? {
            rc.ip_rate_limit_burst = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(v) = get("HOGSEND_CLIENT_IP_HEADER") {
            let name = v.trim().to_ascii_lowercase();
            axum::http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                bad(
                    "HOGSEND_CLIENT_IP_HEADER",
                    &v,
                    format!("{e}; expected a header name such as x-forwarded-for"),
                )
            })?;
            rc.client_ip_header = Some(name);
        }
        if let Some(n) = number("HOGSEND_DB_POOL_SIZE")? {
            rc.pool_size = u32::try_from(n.clamp(2, 1000)).unwrap_or(10);
        }
        if let Some(v) = get("HOGSEND_CORS_ORIGINS") {
            rc.cors_origins = v
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect();
            if let Some(o) = rc.cors_origins.iter().find(|o| {
                *o != "*" && (!o.contains("://") || axum::http::HeaderValue::from_str(o).is_err())
            }) {
                return Err(bad(
                    "HOGSEND_CORS_ORIGINS",
                    &v,
                    format!("`{o}` is not an origin such as https://app.example.com (or `*`)"),
                ));
            }
        }
        Ok(rc)
    }
}

impl RuntimeConfig {
    /// Adds the `[email]` settings and their environment (`HOGSEND_SECRET`,
    /// `HOGSEND_SMTP_PASSWORD`); links default to the listen address.
    pub fn with_email(
        mut self,
        email: &hogsend_schema::settings::EmailConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<RuntimeConfig, ConfigError> {
        self.mail = crate::mail::MailSettings::from_config(email, self.listen, env)?;
        Ok(self)
    }
}

impl fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("database_url", &self.database_url)
            .field("schema", &self.schema)
            .field("listen", &self.listen)
            .field("tick_every", &self.tick_every)
            .field("realtime_flush", &self.realtime_flush)
            .field("realtime_max_backlog_age", &self.realtime_max_backlog_age)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rate_limit_per_second", &self.rate_limit_per_second)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .field("ip_rate_limit_per_second", &self.ip_rate_limit_per_second)
            .field("ip_rate_limit_burst", &self.ip_rate_limit_burst)
            .field("client_ip_header", &self.client_ip_header)
            .field("pool_size", &self.pool_size)
            .field("scheduler", &self.scheduler)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("generated_files", &self.generated.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_and_redaction() {
        let (schema, api, schedule) = Default::default();
        let config = Settings {
            schema: &schema,
            api: &api,
            schedule: &schedule,
        };
        let env = |name: &str| match name {
            "HOGSEND_LISTEN" => Some("0.0.0.0:9999".to_owned()),
            "HOGSEND_TICK_EVERY" => Some("5s".to_owned()),
            "HOGSEND_REALTIME_FLUSH_MS" => Some("100".to_owned()),
            "HOGSEND_REALTIME_MAX_BACKLOG_AGE_MS" => Some("0".to_owned()),
            _ => None,
        };
        let rc =
            RuntimeConfig::from_settings(config, "postgres://u:hunter2@h/db", vec![], env).unwrap();
        assert_eq!(rc.listen.to_string(), "0.0.0.0:9999");
        assert_eq!(rc.tick_every, Duration::from_secs(5));
        assert_eq!(rc.realtime_flush, Duration::from_millis(100));
        assert_eq!(rc.realtime_max_backlog_age, None, "0 turns the check off");
        let defaults = RuntimeConfig::from_settings(config, "x", vec![], |_: &str| None).unwrap();
        assert_eq!(
            defaults.realtime_max_backlog_age,
            Some(Duration::from_secs(60))
        );
        let debug = format!("{rc:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let bad = RuntimeConfig::from_settings(config, "x", vec![], |n: &str| {
            (n == "HOGSEND_TICK_EVERY").then(|| "soon".to_owned())
        });
        assert!(bad.unwrap_err().to_string().contains("HOGSEND_TICK_EVERY"));
        assert_eq!(
            (
                rc.ip_rate_limit_per_second,
                rc.ip_rate_limit_burst,
                &rc.client_ip_header
            ),
            (10, 50, &None),
            "publishable keys are limited per address by default"
        );
        let proxied = RuntimeConfig::from_settings(config, "x", vec![], |n: &str| match n {
            "HOGSEND_IP_RATE_LIMIT_PER_SECOND" => Some("3".to_owned()),
            "HOGSEND_IP_RATE_LIMIT_BURST" => Some("7".to_owned()),
            "HOGSEND_CLIENT_IP_HEADER" => Some(" X-Forwarded-For ".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (
                proxied.ip_rate_limit_per_second,
                proxied.ip_rate_limit_burst,
                proxied.client_ip_header.as_deref()
            ),
            (3, 7, Some("x-forwarded-for"))
        );
        let bad = RuntimeConfig::from_settings(config, "x", vec![], |n: &str| {
            (n == "HOGSEND_CLIENT_IP_HEADER").then(|| "not a header".to_owned())
        });
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("HOGSEND_CLIENT_IP_HEADER"));
    }
}
