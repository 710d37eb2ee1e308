//! Providers: where a rendered message goes. `log` writes it to the log; `smtp` sends it
//! with lettre over pooled connections (STARTTLS, TLS or plain; auth when configured).

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use hogsend_schema::settings::SmtpTls;

use super::settings::{ProviderSettings, SmtpSettings};

/// A message ready for the wire.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `Message-ID`, with its angle brackets: stable per outbox row.
    pub message_id: String,
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
    /// Worth retrying: SMTP 4xx, a timeout, a lost connection.
    #[error("transient: {0}")]
    Transient(String),
    /// Never worth retrying: SMTP 5xx, an address or message the provider refuses.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A configured provider.
#[derive(Clone)]
pub enum Provider {
    /// The log.
    Log,
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Provider {
    /// The provider of the settings. Fails on an SMTP URL or TLS setup lettre refuses.
    pub fn new(settings: &ProviderSettings, concurrency: usize) -> Result<Provider, String> {
        match settings {
            ProviderSettings::Log => Ok(Provider::Log),
            ProviderSettings::Smtp(smtp) => smtp_transport(smtp, concurrency).map(Provider::Smtp),
        }
    }

    /// Sends one message; returns the provider's id for it (the `Message-ID` for SMTP).
    pub async fn send(&self, m: &Outgoing, timeout: Duration) -> Result<String, SendError> {
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
                Ok(m.message_id.clone())
            }
            Provider::Smtp(transport) => {
                let message = build_message(m).map_err(SendError::Permanent)?;
                match tokio::time::timeout(timeout, transport.send(message)).await {
                    Err(_) => Err(SendError::Transient(format!(
                        "no answer from the SMTP server within {timeout:?}"
                    ))),
                    Ok(Ok(_)) => Ok(m.message_id.clone()),
                    Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                    Ok(Err(e)) => Err(SendError::Transient(e.to_string())),
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
