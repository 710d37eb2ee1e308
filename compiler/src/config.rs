//! `hogsend.toml`: the project configuration (CONTRACT.md §1), read with serde + toml.
//!
//! Every key is optional and has a default. An unknown key or a bad value becomes a
//! diagnostic pointing into `hogsend.toml` (toml's own error spans). Environment overrides
//! (`DATABASE_URL`, `HOGSEND_LISTEN`, …) are applied by the binary, not here: this module
//! only reads the text it is given.

use std::fmt;
use std::net::SocketAddr;

use hogsend_dsl::text::DurationError;
use serde::{Deserialize, Deserializer};

use crate::diagnostics::{Code, Diagnostic, Label, Span};
use crate::source::{SourceFile, SourceSet};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub project: ProjectConfig,
    pub database: DatabaseConfig,
    pub schedule: ScheduleConfig,
    pub api: ApiConfig,
    pub email: EmailConfig,
}

/// `[project]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectConfig {
    /// A display name for the project.
    pub name: Option<String>,
    /// The IANA time zone used by `wait until 09:00` when a contact has none. Default `UTC`.
    pub timezone: String,
}

impl Default for ProjectConfig {
    fn default() -> Self {
        ProjectConfig {
            name: None,
            timezone: "UTC".into(),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// The Postgres URL. Its password is redacted in `Debug`.
    pub url: Option<RedactedUrl>,
    /// The schema hogsend owns. Default `hogsend`.
    pub schema: SchemaName,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            schema: SchemaName("hogsend".into()),
        }
    }
}

/// `[schedule]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// How often the scheduler ticks. Default 30 seconds.
    pub tick_every: TickEvery,
    /// How often the daemon runs the real-time pass over the contacts touched by ingest
    /// since the previous run, in milliseconds. Default 250.
    pub realtime_flush_ms: u64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            tick_every: TickEvery { seconds: 30 },
            realtime_flush_ms: 250,
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

/// `[email]`
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// Where mail goes. Default `log` (written to the log, never sent).
    pub provider: EmailProvider,
    /// The `From:` header, e.g. `Acme <hello@acme.test>`.
    pub from: Option<String>,
    /// `smtp://user:pass@host:port` for the `smtp` provider (password redacted in `Debug`).
    pub smtp_url: Option<RedactedUrl>,
    /// The endpoint of the `http` provider (credentials redacted in `Debug`).
    pub http_url: Option<RedactedUrl>,
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

/// A Postgres schema name: `[a-z_][a-z0-9_]*`, at most 63 bytes, never needing quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaName(String);

impl SchemaName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, String> {
        let mut chars = name.chars();
        let ok_first = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let ok_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if crate::sql_keywords::is_reserved(name) {
            Err(format!(
                "{SCHEMA_ERROR_PREFIX} `{name}`: a reserved SQL key word; choose another name"
            ))
        } else if ok_first && ok_rest && name.len() <= 63 && !name.starts_with("pg_") {
            Ok(SchemaName(name.to_string()))
        } else {
            Err(format!(
                "{SCHEMA_ERROR_PREFIX} `{name}`: expected [a-z_][a-z0-9_]*, at most 63 characters, not starting with `pg_`"
            ))
        }
    }
}

const SCHEMA_ERROR_PREFIX: &str = "invalid schema name";

impl<'de> Deserialize<'de> for SchemaName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SchemaName::new(&s).map_err(serde::de::Error::custom)
    }
}

/// `[schedule] tick_every`: a duration string (`"30s"`, `"1m"`, `"1m30s"`), positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickEvery {
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

/// Parses a positive duration written as in the language (`30s`, `15m`, `1h30m`) with the
/// language's own rules ([`hogsend_dsl::text::parse_duration`]).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    hogsend_dsl::text::parse_duration(text).map_err(|e| match e {
        DurationError::NotPositive => format!("invalid duration `{text}`: must be positive"),
        DurationError::Invalid(_) | DurationError::Malformed => {
            format!("invalid duration `{text}`: expected e.g. \"30s\", \"5m\" or \"1h30m\"")
        }
    })
}

/// Reads `hogsend.toml` (or the defaults when there is none). On any problem the defaults
/// are returned together with the diagnostics.
pub fn load(file: Option<&SourceFile>) -> (Config, Vec<Diagnostic>) {
    let Some(file) = file else {
        return (Config::default(), Vec::new());
    };
    // toml's spans may run over a line end; keep the first line, and at least one byte.
    let span_of = |e: &toml::de::Error| {
        let r = e.span().unwrap_or(0..0);
        let line_end = file.text[r.start.min(file.text.len())..]
            .find('\n')
            .map_or(file.text.len(), |i| r.start + i);
        let end = r.end.min(line_end).max(r.start + 1).min(file.text.len());
        if end <= r.start + 1 && file.text[r.start.min(file.text.len())..].starts_with('\n') {
            // An error at a line end: point at the last character of the line instead.
            let start = file.text[..r.start]
                .trim_end_matches([' ', '\t', '\r'])
                .len();
            return Span::new(start.saturating_sub(1), start.max(1));
        }
        Span::new(r.start, end)
    };
    // toml's messages may have several lines: the first is the label, the rest notes.
    let split = |e: &toml::de::Error| {
        let mut lines = e.message().trim().lines();
        let first = lines.next().unwrap_or("").trim().to_string();
        let rest: Vec<String> = lines
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        (first, rest)
    };
    // Syntax first, so that a syntax error is not reported as a bad value.
    if let Err(e) = file.text.parse::<toml::Table>() {
        let (label, rest) = split(&e);
        let mut d = Diagnostic::new(
            Code::E0401,
            "hogsend.toml is not valid TOML",
            Label::new(SourceSet::CONFIG_PATH, span_of(&e), label),
        );
        for line in rest {
            d = d.with_note(capitalise(&line));
        }
        return (Config::default(), vec![d]);
    }
    match toml::from_str::<Config>(&file.text) {
        Ok(config) => (config, Vec::new()),
        Err(e) => {
            let (message, _) = split(&e);
            let (code, headline, help) = if message.starts_with("unknown field") {
                (
                    Code::E0402,
                    "unknown key in hogsend.toml",
                    Some("see `hogsend explain E0402` for every known key"),
                )
            } else if message.starts_with(SCHEMA_ERROR_PREFIX) {
                (
                    Code::E0404,
                    "invalid database schema name",
                    Some("use a lowercase name such as `hogsend`"),
                )
            } else {
                (Code::E0403, "invalid value in hogsend.toml", None)
            };
            let mut d = Diagnostic::new(
                code,
                headline,
                Label::new(SourceSet::CONFIG_PATH, span_of(&e), message),
            );
            if let Some(help) = help {
                d = d.with_help(help);
            }
            (Config::default(), vec![d])
        }
    }
}

/// `expected x` → `Expected x.` (notes are full sentences).
fn capitalise(line: &str) -> String {
    let mut chars = line.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.extend(chars);
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> (Config, Vec<Diagnostic>) {
        load(Some(&SourceFile::new("hogsend.toml", text)))
    }

    #[test]
    fn defaults_without_a_file() {
        let (c, d) = load(None);
        assert!(d.is_empty());
        assert_eq!(c.database.schema.as_str(), "hogsend");
        assert_eq!(c.schedule.tick_every.seconds, 30);
        assert_eq!(c.api.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.project.timezone, "UTC");
        assert_eq!(c.email.provider, EmailProvider::Log);
    }

    #[test]
    fn reads_every_key() {
        let (c, d) = load_text(
            r#"
[project]
name = "acme"
timezone = "Europe/Paris"
[database]
url = "postgres://app:hunter2@db:5432/acme"
schema = "hs_1"
[schedule]
tick_every = "1m30s"
realtime_flush_ms = 100
[api]
listen = "0.0.0.0:9000"
max_body_bytes = 10
rate_limit_per_second = 5
rate_limit_burst = 6
[email]
provider = "smtp"
from = "Acme <hello@acme.test>"
smtp_url = "smtp://u:p@mail:25"
http_url = "https://api.mail.test/send?token=abc&x=1"
"#,
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.schedule.tick_every.seconds, 90);
        assert_eq!(c.schedule.realtime_flush_ms, 100);
        assert_eq!(c.email.provider, EmailProvider::Smtp);
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("postgres://app:***@db:5432/acme"), "{debug}");
        assert!(!debug.contains("abc"), "{debug}");
        assert_eq!(
            c.database.url.unwrap().expose(),
            "postgres://app:hunter2@db:5432/acme"
        );
    }

    #[test]
    fn unknown_key_points_at_it() {
        let text = "[database]\nschemaa = \"x\"\n";
        let (_, d) = load_text(text);
        assert_eq!(d[0].code, Code::E0402);
        assert_eq!(&text[d[0].primary.span.range()], "schemaa");
    }

    #[test]
    fn bad_values() {
        for (text, code, at) in [
            (
                "[schedule]\ntick_every = \"soon\"\n",
                Code::E0403,
                "\"soon\"",
            ),
            ("[schedule]\ntick_every = 30\n", Code::E0403, "30"),
            (
                "[api]\nlisten = \"localhost\"\n",
                Code::E0403,
                "\"localhost\"",
            ),
            (
                "[email]\nprovider = \"pigeon\"\n",
                Code::E0403,
                "\"pigeon\"",
            ),
            (
                "[database]\nschema = \"Hog-Send\"\n",
                Code::E0404,
                "\"Hog-Send\"",
            ),
            ("[database\n", Code::E0401, ""),
        ] {
            let (_, d) = load_text(text);
            assert_eq!(d.len(), 1, "{text}");
            assert_eq!(d[0].code, code, "{text}: {d:?}");
            if !at.is_empty() {
                assert_eq!(&text[d[0].primary.span.range()], at, "{text}");
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999w").is_err());
    }
}
