//! The delivery worker's settings: `[email]` of `hogsend.toml` plus the environment
//! (`HOGSEND_SECRET`, `HOGSEND_SMTP_PASSWORD`, the `http` provider's API key and webhook
//! secret from the variables `[email]` names).

use std::time::Duration;

use hogsend_schema::settings::{EmailConfig, EmailProvider, SmtpTls, TrackingConfig};

use super::links::Signer;
use crate::config::ConfigError;

/// How the worker reaches an SMTP server.
#[derive(Clone)]
pub struct SmtpSettings {
    /// `host`, or the host of `smtp_url`.
    pub host: String,
    /// The port (default by `tls`).
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// User name and password (`HOGSEND_SMTP_PASSWORD`), when the server wants auth.
    pub credentials: Option<(String, String)>,
    /// `smtp_url`, used as is (lettre's URL form) when given.
    pub url: Option<String>,
}

/// How the worker reaches a Resend-compatible JSON API.
#[derive(Clone)]
pub struct HttpSettings {
    /// The API's base URL, without a trailing `/` (messages go to `{base_url}/emails`).
    pub base_url: String,
    /// The bearer token.
    pub api_key: String,
}

/// Which provider sends.
#[derive(Clone)]
pub enum ProviderSettings {
    /// Written to the log, never sent.
    Log,
    /// An SMTP server.
    Smtp(SmtpSettings),
    /// A Resend-compatible JSON API.
    Http(HttpSettings),
}

/// The default base URL of the `http` provider.
pub const DEFAULT_HTTP_URL: &str = "https://api.resend.com";
/// The default variable of the `http` provider's API key.
pub const DEFAULT_API_KEY_ENV: &str = "HOGSEND_EMAIL_API_KEY";
/// The default variable of the provider webhooks' signing secret.
pub const DEFAULT_WEBHOOK_SECRET_ENV: &str = "HOGSEND_EMAIL_WEBHOOK_SECRET";

/// Everything the delivery worker and the link routes need.
#[derive(Clone)]
pub struct MailSettings {
    /// Run the delivery worker (tests drive delivery themselves when false).
    pub worker: bool,
    /// The provider.
    pub provider: ProviderSettings,
    /// The provider's name, for the log and metrics (`log`, `smtp`, `http`).
    pub provider_name: &'static str,
    /// The provider webhooks' signing secrets (`whsec_…`; several while rotating): a
    /// webhook verifies when any of them signed it. Empty: webhooks are refused.
    pub webhook_secrets: Vec<String>,
    /// The default `From:`.
    pub from: String,
    /// The base of unsubscribe and preferences links, without a trailing `/`.
    pub public_url: String,
    /// The `mailto:` unsubscribe mailbox.
    pub unsubscribe_mailto: String,
    /// Open and click tracking (`[email] tracking`; off by default).
    pub tracking: TrackingConfig,
    /// Signs links; `None` until the worker or a link route loads the database's dev
    /// secret (no `HOGSEND_SECRET`, `log` provider only).
    pub signer: Option<Signer>,
    /// At most this many messages per second (none: no limit).
    pub rate_per_second: Option<f64>,
    /// At most (count, within seconds) non-transactional messages per contact.
    pub frequency_cap: Option<(i64, i64)>,
    /// Messages claimed per round.
    pub batch_size: i32,
    /// Messages sent at once within a round.
    pub concurrency: usize,
    /// How long a claim holds before another worker may take the message.
    pub lease: Duration,
    /// How long the worker sleeps when the outbox is empty.
    pub poll: Duration,
    /// Attempts before a transiently failing message is `failed`.
    pub max_attempts: i32,
    /// The first retry's delay (doubled per attempt, with jitter).
    pub retry_base: Duration,
    /// A send (connect + transfer) that takes longer is a transient failure.
    pub send_timeout: Duration,
    /// `[email] dkim`: signs the `smtp` provider's messages.
    pub dkim: Option<super::dkim::Dkim>,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            worker: true,
            provider: ProviderSettings::Log,
            provider_name: "log",
            webhook_secrets: Vec::new(),
            from: "hogsend <hogsend@localhost>".into(),
            public_url: "http://127.0.0.1:8080".into(),
            unsubscribe_mailto: "unsubscribe@localhost".into(),
            tracking: TrackingConfig::default(),
            signer: None,
            rate_per_second: None,
            frequency_cap: None,
            batch_size: 500,
            concurrency: 32,
            lease: Duration::from_secs(300),
            poll: Duration::from_millis(500),
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            dkim: None,
        }
    }
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("provider", &self.provider_name)
            .field("from", &self.from)
            .field("public_url", &self.public_url)
            .field("signer", &self.signer)
            .field("rate_per_second", &self.rate_per_second)
            .field("dkim", &self.dkim)
            .finish_non_exhaustive()
    }
}

/// The domain of an address like `Acme <hello@acme.test>` (`localhost` when none).
pub fn domain_of(from: &str) -> String {
    let addr = from
        .rsplit_once('<')
        .map_or(from, |(_, rest)| rest.trim_end_matches('>'));
    addr.rsplit_once('@')
        .map_or("localhost", |(_, d)| d)
        .trim()
        .trim_end_matches('>')
        .to_string()
}

impl MailSettings {
    /// `[email]` with the environment: `HOGSEND_SECRET` (required unless the provider is
    /// `log`), `HOGSEND_SMTP_PASSWORD`. `listen` is the API's address, the default base of
    /// links.
    pub fn from_config(
        email: &EmailConfig,
        listen: std::net::SocketAddr,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<MailSettings, ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut s = MailSettings {
            public_url: format!("http://{listen}"),
            ..MailSettings::default()
        };
        if let Some(from) = &email.from {
            s.from.clone_from(from);
        }
        if let Some(url) = &email.public_url {
            s.public_url = url.trim_end_matches('/').to_string();
        }
        s.unsubscribe_mailto = email
            .unsubscribe_mailto
            .clone()
            .unwrap_or_else(|| format!("unsubscribe@{}", domain_of(&s.from)));
        s.rate_per_second = email.rate.map(|r| r.per_second);
        s.tracking = email.tracking;
        s.frequency_cap = email.max_per_contact.map(|c| {
            (
                i64::from(c.count),
                i64::try_from(c.seconds).unwrap_or(i64::MAX),
            )
        });
        s.signer = get("HOGSEND_SECRET").and_then(|v| Signer::from_env_value(&v));
        let secret_env = email
            .webhook_secret_env
            .as_deref()
            .unwrap_or(DEFAULT_WEBHOOK_SECRET_ENV);
        s.webhook_secrets = get(secret_env)
            .map(|v| {
                v.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let Some(lease) = email.lease {
            s.lease = Duration::from_secs(lease.0.max(1));
        }
        // A send must give up before its lease ends, or a second worker could claim the
        // message while the first still waits for the provider.
        s.send_timeout = s
            .send_timeout
            .min(s.lease / 2)
            .max(Duration::from_millis(500));
        if let Some(n) = email.batch_size {
            s.batch_size = i32::try_from(n.clamp(1, 10_000)).unwrap_or(500);
        }
        if let Some(n) = email.concurrency {
            s.concurrency = usize::try_from(n.clamp(1, 1_000)).unwrap_or(32);
        }
        match email.provider {
            EmailProvider::Log => {}
            EmailProvider::Smtp => {
                let host = email.host.clone().unwrap_or_else(|| "127.0.0.1".into());
                let port = email.port.unwrap_or(match email.tls {
                    SmtpTls::Starttls => 587,
                    SmtpTls::Tls => 465,
                    SmtpTls::None => 25,
                });
                let credentials = email
                    .username
                    .clone()
                    .map(|u| (u, get("HOGSEND_SMTP_PASSWORD").unwrap_or_default()));
                s.provider = ProviderSettings::Smtp(SmtpSettings {
                    host,
                    port,
                    tls: email.tls,
                    credentials,
                    url: email.smtp_url.as_ref().map(|u| u.expose().to_string()),
                });
                s.provider_name = "smtp";
            }
            EmailProvider::Http => {
                let key_env = email.api_key_env.as_deref().unwrap_or(DEFAULT_API_KEY_ENV);
                let Some(api_key) = get(key_env) else {
                    return Err(ConfigError {
                        name: "[email] api_key_env",
                        value: key_env.to_string(),
                        problem: format!(
                            "the http provider needs its API key in the environment variable {key_env}"
                        ),
                    });
                };
                let base_url = email
                    .http_url
                    .as_ref()
                    .map_or(DEFAULT_HTTP_URL, |u| u.expose())
                    .trim_end_matches('/')
                    .to_string();
                if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
                    return Err(ConfigError {
                        name: "[email] http_url",
                        value: email
                            .http_url
                            .as_ref()
                            .map(hogsend_schema::settings::RedactedUrl::redacted)
                            .unwrap_or_default(),
                        problem: "expected an http:// or https:// URL".into(),
                    });
                }
                s.provider = ProviderSettings::Http(HttpSettings {
                    base_url,
                    api_key: api_key.trim().to_string(),
                });
                s.provider_name = "http";
            }
        }
        if let Some(dkim) = &email.dkim {
            // Loaded whatever the provider, so a bad key fails at startup, not at a send.
            let loaded = super::dkim::Dkim::load(dkim, get).map_err(|e| ConfigError {
                name: "[email] dkim",
                value: dkim
                    .private_key_env
                    .clone()
                    .unwrap_or_else(|| super::dkim::DEFAULT_KEY_ENV.into()),
                problem: e.to_string(),
            })?;
            if matches!(s.provider, ProviderSettings::Http(_)) {
                tracing::warn!(
                    "[email] dkim is ignored by the http provider: the API signs the messages \
                     with the domain set up there"
                );
            }
            s.dkim = Some(loaded);
        }
        if s.signer.is_none() && !matches!(s.provider, ProviderSettings::Log) {
            return Err(ConfigError {
                name: "HOGSEND_SECRET",
                value: String::new(),
                problem: "required when mail leaves the machine: it signs unsubscribe links".into(),
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_and_required_secret() {
        assert_eq!(domain_of("Acme <hello@acme.test>"), "acme.test");
        assert_eq!(domain_of("a@b.test"), "b.test");
        assert_eq!(domain_of("nobody"), "localhost");
        let listen = "127.0.0.1:9".parse().unwrap();
        let smtp = EmailConfig {
            provider: EmailProvider::Smtp,
            ..EmailConfig::default()
        };
        let err = MailSettings::from_config(&smtp, listen, |_| None).unwrap_err();
        assert_eq!(err.name, "HOGSEND_SECRET");
        let ok = MailSettings::from_config(&smtp, listen, |n| {
            (n == "HOGSEND_SECRET").then(|| "s3cret".to_string())
        })
        .unwrap();
        assert_eq!(ok.provider_name, "smtp");
        assert!(!format!("{ok:?}").contains("s3cret"));
        let http = EmailConfig {
            provider: EmailProvider::Http,
            http_url: Some(hogsend_schema::settings::RedactedUrl::new(
                "http://127.0.0.1:9/",
            )),
            api_key_env: Some("MY_KEY".into()),
            lease: Some(hogsend_schema::settings::Seconds(10)),
            ..EmailConfig::default()
        };
        let err = MailSettings::from_config(&http, listen, |n| {
            (n == "HOGSEND_SECRET").then(|| "s3cret".to_string())
        })
        .unwrap_err();
        assert_eq!(err.name, "[email] api_key_env");
        let ok = MailSettings::from_config(&http, listen, |n| match n {
            "HOGSEND_SECRET" => Some("s3cret".into()),
            "MY_KEY" => Some("re_123".into()),
            "HOGSEND_EMAIL_WEBHOOK_SECRET" => Some("whsec_a, whsec_b".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(ok.provider_name, "http");
        assert_eq!(ok.webhook_secrets, vec!["whsec_a", "whsec_b"]);
        assert_eq!(ok.lease, Duration::from_secs(10));
        assert_eq!(ok.send_timeout, Duration::from_secs(5), "half the lease");
        assert!(!format!("{ok:?}").contains("re_123"));
        match &ok.provider {
            ProviderSettings::Http(h) => assert_eq!(h.base_url, "http://127.0.0.1:9"),
            _ => panic!("http"),
        }
        let log = MailSettings::from_config(&EmailConfig::default(), listen, |_| None).unwrap();
        assert_eq!(log.public_url, "http://127.0.0.1:9");
        assert!(log.signer.is_none());
    }
}
