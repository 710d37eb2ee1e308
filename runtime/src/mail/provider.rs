//! Providers: where a rendered message goes. `log` writes it to the log; `smtp` sends it
//! with lettre over pooled connections (STARTTLS, TLS or plain; auth when configured;
//! DKIM-signed when `[email] dkim` is set);
//! `http` posts it to a Resend-compatible API (`http_provider.rs`).

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use hogsend_schema::settings::SmtpTls;

use super::dkim::Dkim;
use super::http_provider::HttpProvider;
use super::settings::{ProviderSettings, SmtpSettings};

/// A message ready for the wire.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `Message-ID`, with its angle brackets: stable per outbox row.
    pub message_id: String,
    /// The `http` provider's `Idempotency-Key`: stable per outbox row and unique across
    /// installations (`hogsend:<installation id>:<message id>`).
    pub idempotency_key: String,
    pub from: String,
    pub reply_to: Option<String>,
    pub to: String,
    pub subject: String,
    pub html: Option<String>,
    pub text: String,
    /// Extra headers (`List-Unsubscribe`, `List-Unsubscribe-Post`, `List-Id`).
    pub headers: Vec<(&'static str, String)>,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: SMTP 4xx, HTTP 429/5xx, a timeout, a lost connection.
    #[error("transient: {message}")]
    Transient {
        /// What happened.
        message: String,
        /// The least wait the provider asked for (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Never worth retrying: SMTP 5xx, an address or message the provider refuses.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SendError {
    /// A transient failure with no `Retry-After`.
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
}

/// A configured provider.
#[derive(Clone)]
pub enum Provider {
    /// The log.
    Log,
    /// An SMTP server, and the DKIM key that signs what is sent to it.
    Smtp(AsyncSmtpTransport<Tokio1Executor>, Option<Dkim>),
    /// A Resend-compatible JSON API.
    Http(Box<HttpProvider>),
}

impl Provider {
    /// The provider of the settings. Fails on an SMTP URL or TLS setup lettre refuses.
    pub fn new(
        settings: &ProviderSettings,
        concurrency: usize,
        dkim: Option<Dkim>,
    ) -> Result<Provider, String> {
        match settings {
            ProviderSettings::Log => Ok(Provider::Log),
            ProviderSettings::Smtp(smtp) => {
                smtp_transport(smtp, concurrency).map(|t| Provider::Smtp(t, dkim))
            }
            ProviderSettings::Http(http) => {
                HttpProvider::new(http, concurrency).map(|p| Provider::Http(Box::new(p)))
            }
        }
    }

    /// Sends one message; returns the provider's id for it (the `Message-ID` for SMTP; the
    /// API's id for `http`, none when its answer carried none).
    pub async fn send(&self, m: &Outgoing, timeout: Duration) -> Result<Option<String>, SendError> {
        match self {
            Provider::Log => {
                tracing::info!(
                    message_id = %m.message_id,
                    to = %m.to,
                    from = %m.from,
                    subject = %m.subject,
                    headers = ?m.headers,
                    text = %m.text,
                    "email (log provider: not sent)"
                );
                Ok(Some(m.message_id.clone()))
            }
            Provider::Http(http) => {
                match tokio::time::timeout(timeout, http.send(m, &m.idempotency_key)).await {
                    Err(_) => Err(SendError::transient(format!(
                        "no answer from the API within {timeout:?}"
                    ))),
                    Ok(result) => result,
                }
            }
            Provider::Smtp(transport, dkim) => {
                let mut message = build_message(m).map_err(SendError::Permanent)?;
                if let Some(dkim) = dkim {
                    dkim.sign(&mut message);
                }
                match tokio::time::timeout(timeout, transport.send(message)).await {
                    Err(_) => Err(SendError::transient(format!(
                        "no answer from the SMTP server within {timeout:?}"
                    ))),
                    Ok(Ok(_)) => Ok(Some(m.message_id.clone())),
                    Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                    Ok(Err(e)) => Err(SendError::transient(e.to_string())),
                }
            }
        }
    }
}

fn smtp_transport(
    s: &SmtpSettings,
    concurrency: usize,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = match &s.url {
        Some(url) => {
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| e.to_string())?
        }
        None => {
            let tls = match s.tls {
                SmtpTls::None => Tls::None,
                SmtpTls::Starttls => {
                    Tls::Required(TlsParameters::new(s.host.clone()).map_err(|e| e.to_string())?)
                }
                SmtpTls::Tls => {
                    Tls::Wrapper(TlsParameters::new(s.host.clone()).map_err(|e| e.to_string())?)
                }
            };
            let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
                .port(s.port)
                .tls(tls);
            if let Some((user, password)) = &s.credentials {
                b = b.credentials(Credentials::new(user.clone(), password.clone()));
            }
            b
        }
    };
    let max = u32::try_from(concurrency.max(1)).unwrap_or(8);
    Ok(builder
        .timeout(Some(Duration::from_secs(30)))
        .pool_config(PoolConfig::new().max_size(max))
        .build())
}

fn mailbox(what: &str, text: &str) -> Result<Mailbox, String> {
    text.parse::<Mailbox>()
        .map_err(|e| format!("invalid {what} address {text:?}: {e}"))
}

/// The MIME message: multipart/alternative (text, then HTML) or text alone.
pub fn build_message(m: &Outgoing) -> Result<Message, String> {
    let mut b = Message::builder()
        .from(mailbox("From", &m.from)?)
        .to(mailbox("To", &m.to)?)
        .subject(m.subject.clone())
        .message_id(Some(m.message_id.clone()));
    if let Some(r) = &m.reply_to {
        b = b.reply_to(mailbox("Reply-To", r)?);
    }
    for (name, value) in &m.headers {
        let name = HeaderName::new_from_ascii_str(name);
        b = b.raw_header(HeaderValue::new(name, value.clone()));
    }
    let built = match &m.html {
        Some(html) => b.multipart(MultiPart::alternative_plain_html(
            m.text.clone(),
            html.clone(),
        )),
        None => b.singlepart(SinglePart::plain(m.text.clone())),
    };
    built.map_err(|e| e.to_string())
}
