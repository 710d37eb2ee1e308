//! The plain data types of the `hogsend.toml` sections the daemon reads (`[schedule]`,
//! `[api]`) and the values both sides handle (a URL with secrets, durations).
//!
//! They live here, not in the compiler, so that the runtime can take them without depending
//! on the compiler; the compiler's `config` module composes them into the whole file and
//! turns deserialization errors into diagnostics (E04xx).

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::SocketAddr;

/// `[schedule]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// How often the scheduler ticks. Default 30 seconds.
    pub tick_every: TickEvery,
    /// How often the daemon runs the real-time pass over the contacts touched by ingest
    /// since the previous run, in milliseconds. Default 250.
    pub realtime_flush_ms: u64,
    /// `/readyz` fails while the oldest change waiting for the real-time pass is older than
    /// this, in milliseconds (the pass is not keeping up). 0 turns the check off. Default
    /// 60,000.
    pub realtime_max_backlog_age_ms: u64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            tick_every: TickEvery { seconds: 30 },
            realtime_flush_ms: 250,
            realtime_max_backlog_age_ms: 60_000,
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// The address the HTTP API listens on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes. Default 1 MiB.
    pub max_body_bytes: u64,
    /// Requests per second allowed per API key (token bucket refill). Default 100.
    pub rate_limit_per_second: u32,
    /// Burst size of the per-key token bucket. Default 200.
    pub rate_limit_burst: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
        }
    }
}

/// `[email]` (docs/operations.md#email).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Where mail goes. Default `log` (written to the log, never sent).
    pub provider: EmailProvider,
    /// The `From:` header, e.g. `Acme <hello@acme.test>` (a template's `from` wins).
    pub from: Option<String>,
    /// The base URL of unsubscribe, preferences and tracking links, e.g.
    /// `https://mail.acme.test` (default: `http://` + the API's listen address).
    pub public_url: Option<String>,
    /// The mailbox of the `mailto:` unsubscribe (default: `unsubscribe@` + the From domain).
    pub unsubscribe_mailto: Option<String>,
    /// SMTP server host (the `smtp` provider).
    pub host: Option<String>,
    /// SMTP server port (default by `tls`: 587 starttls, 465 tls, 25 none).
    pub port: Option<u16>,
    /// SMTP transport security.
    pub tls: SmtpTls,
    /// SMTP user name; the password comes from `HOGSEND_SMTP_PASSWORD`.
    pub username: Option<String>,
    /// `smtp://user:pass@host:port` (lettre's URL form), instead of `host`/`port`/`tls`
    /// (password redacted in `Debug`).
    pub smtp_url: Option<RedactedUrl>,
    /// The base URL of the `http` provider, a Resend-compatible JSON API (messages are
    /// posted to `{http_url}/emails`); default `https://api.resend.com`. Also accepted as
    /// `endpoint`. Credentials redacted in `Debug`.
    #[serde(alias = "endpoint")]
    pub http_url: Option<RedactedUrl>,
    /// The environment variable holding the `http` provider's API key (sent as a bearer
    /// token). Default `HOGSEND_EMAIL_API_KEY`.
    pub api_key_env: Option<String>,
    /// The environment variable holding the signing secret(s) of the provider's webhooks
    /// (`whsec_…`, comma-separated to rotate). Default `HOGSEND_EMAIL_WEBHOOK_SECRET`.
    pub webhook_secret_env: Option<String>,
    /// How long a claimed message is reserved for the worker that claimed it; a message
    /// still `sending` after it (its worker died) is claimed again. Default `5m`.
    pub lease: Option<Seconds>,
    /// Messages claimed per delivery round. Default 500.
    pub batch_size: Option<u32>,
    /// Messages sent at once (and SMTP/HTTP connections kept open). Default 32.
    pub concurrency: Option<u32>,
    /// The most messages sent per second, e.g. `"50/s"`, `"3000/m"` (default: no limit).
    pub rate: Option<SendRate>,
    /// At most N non-transactional messages per contact within a duration, e.g. `"3/1d"`;
    /// messages over it are `skipped` (`frequency_cap`). Default: no cap.
    pub max_per_contact: Option<FrequencyCap>,
    /// Open and click tracking, `tracking = { opens = true, clicks = true }` (default: off).
    pub tracking: TrackingConfig,
    /// DKIM signing of the `smtp` provider's messages,
    /// `dkim = { selector = "s1", domain = "acme.test", private_key_env = "HOGSEND_DKIM_KEY" }`
    /// (default: unsigned; the `http` provider's API signs for itself).
    pub dkim: Option<DkimConfig>,
}

/// `[email] dkim` (docs/operations.md#dkim).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// The selector (`s=`): the public key is published at `{selector}._domainkey.{domain}`.
    pub selector: String,
    /// The signing domain (`d=`), normally the `From:` domain or a parent of it.
    pub domain: String,
    /// The environment variable holding the private key: RSA in PEM (PKCS#1 or PKCS#8), or
    /// Ed25519 in PEM (PKCS#8) or as the base64 of its 32 bytes. Default `HOGSEND_DKIM_KEY`.
    pub private_key_env: Option<String>,
}

/// `[email] tracking` (docs/operations.md#tracking): what the delivery worker adds to the
/// HTML of a message. Everything is off by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// Add an open pixel (`/o/{token}`) to HTML messages.
    pub opens: bool,
    /// Rewrite every `http(s)` link of HTML messages to a signed redirect (`/c/{token}`).
    pub clicks: bool,
    /// Track transactional messages too (receipts, password resets); default: only
    /// messages of a list.
    pub transactional: bool,
}

/// `[email] max_per_contact`: `"N/DURATION"`, e.g. `"3/1d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    /// At most this many messages…
    pub count: u32,
    /// …within this many seconds.
    pub seconds: u64,
}

impl<'de> Deserialize<'de> for FrequencyCap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_frequency_cap(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses `"3/1d"`: a positive count, `/`, a duration.
pub fn parse_frequency_cap(text: &str) -> Result<FrequencyCap, String> {
    let bad = || format!("invalid cap `{text}`: expected e.g. \"3/1d\" (at most 3 per day)");
    let (n, d) = text.trim().split_once('/').ok_or_else(bad)?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(bad());
    }
    let seconds = parse_duration(d.trim()).map_err(|_| bad())?;
    Ok(FrequencyCap { count, seconds })
}

/// The email providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailProvider {
    #[default]
    Log,
    Smtp,
    Http,
}

/// How the `smtp` provider secures its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required), port 587.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS), port 465.
    Tls,
    /// No encryption (a local relay or a test server only).
    None,
}

/// `[email] rate`: `"N/s"`, `"N/m"` or `"N/h"`, N a positive integer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendRate {
    /// Messages per second.
    pub per_second: f64,
}

impl Eq for SendRate {}

impl<'de> Deserialize<'de> for SendRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_rate(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses `"50/s"`, `"3000/m"`, `"100/h"`.
pub fn parse_rate(text: &str) -> Result<SendRate, String> {
    let bad = || format!("invalid rate `{text}`: expected e.g. \"50/s\", \"3000/m\" or \"100/h\"");
    let (n, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    Ok(SendRate {
        per_second: f64::from(n) / per,
    })
}

/// A positive duration written as in the language (`"30s"`, `"5m"`), in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(Seconds)
            .map_err(serde::de::Error::custom)
    }
}

/// `[schedule] tick_every`: a duration string (`"30s"`, `"1m"`, `"1m30s"`), positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickEvery {
    /// The period in seconds (at least 1).
    pub seconds: u64,
}

impl<'de> Deserialize<'de> for TickEvery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(|seconds| TickEvery { seconds })
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a positive duration written as in the language (`30s`, `15m`, `1h30m`): units
/// `s`, `m`, `h`, `d`, `w`, each at most once, largest first, at most `i64::MAX` seconds.
/// Returns seconds. (The compiler tests that it agrees with the language's parser.)
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid duration `{text}`: expected e.g. \"30s\", \"5m\" or \"1h30m\"");
    let mut total: u64 = 0;
    let mut rest = text;
    let mut last_unit = u64::MAX;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = match rest[digits..].chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3_600,
            Some('d') => 86_400,
            Some('w') => 604_800,
            _ => return Err(bad()),
        };
        if unit >= last_unit {
            return Err(bad());
        }
        last_unit = unit;
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[digits + 1..];
    }
    // The language's limit: a duration fits Postgres's bigint seconds.
    if total > i64::MAX.unsigned_abs() {
        return Err(bad());
    }
    if total == 0 {
        return Err(format!("invalid duration `{text}`: must be positive"));
    }
    Ok(total)
}

/// A URL that may carry credentials. `Debug` and `Display` replace the password (and
/// `password=`/`token=`/`key=`/`secret=` query values) with `***`; `expose()` gives the
/// real text.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedactedUrl(url.into())
    }

    /// The URL with its secrets, for actually connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with secrets replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    // scheme://user:password@host → scheme://user:***@host
    if let Some(scheme_end) = out.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = out[authority_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| authority_start + i);
        if let Some(at) = out[authority_start..authority_end].rfind('@') {
            let userinfo = &out[authority_start..authority_start + at];
            if let Some(colon) = userinfo.find(':') {
                let pw_start = authority_start + colon + 1;
                out.replace_range(pw_start..authority_start + at, "***");
            }
        }
    }
    // ?password=… &token=… → ***
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _))
                    if ["password", "token", "key", "secret", "api_key", "apikey"]
                        .contains(&k.to_ascii_lowercase().as_str()) =>
                {
                    format!("{k}=***")
                }
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999w").is_err());
    }

    #[test]
    fn redaction() {
        let url = RedactedUrl::new("postgres://app:hunter2@db:5432/acme?token=abc&x=1");
        assert_eq!(
            url.to_string(),
            "postgres://app:***@db:5432/acme?token=***&x=1"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.expose().contains("hunter2"));
    }
}
