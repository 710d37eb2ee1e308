//! `hogsend.toml`: the project configuration (docs/operations.md#configuration), read with serde + toml.
//!
//! Every key is optional and has a default. An unknown key or a bad value becomes a
//! diagnostic pointing into `hogsend.toml` (toml's own error spans). Environment overrides
//! (`DATABASE_URL`, `HOGSEND_LISTEN`, …) are applied by the binary, not here: this module
//! only reads the text it is given.

use hogsend_dsl::text::DurationError;
use serde::Deserialize;

use crate::diagnostics::{Code, Diagnostic, Label, Span};
use crate::source::{SourceFile, SourceSet};

// The daemon's sections and the shared value types live in `hogsend-schema` (the runtime
// takes them from there, without the compiler); this module composes the whole file.
pub use hogsend_schema::settings::{
    ApiConfig, EmailConfig, EmailProvider, RedactedUrl, ScheduleConfig, SendRate, SmtpTls,
    TickEvery,
};
pub use hogsend_schema::SchemaName;
use hogsend_schema::SCHEMA_ERROR_PREFIX;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub project: ProjectConfig,
    pub database: DatabaseConfig,
    pub schedule: ScheduleConfig,
    pub api: ApiConfig,
    pub email: EmailConfig,
    pub journeys: JourneysConfig,
}

/// `[journeys]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JourneysConfig {
    /// An event older than this (before the pass that processes it) triggers no journey,
    /// in seconds; written as a duration (`24h`, the default). Events recorded by `emit`
    /// are exempt.
    #[serde(deserialize_with = "duration_setting")]
    pub trigger_max_age: u64,
}

impl Default for JourneysConfig {
    fn default() -> Self {
        JourneysConfig {
            trigger_max_age: 86_400,
        }
    }
}

fn duration_setting<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
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
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// The Postgres URL. Its password is redacted in `Debug`.
    pub url: Option<RedactedUrl>,
    /// The schema hogsend owns. Default `hogsend` (`SchemaName::default`).
    pub schema: SchemaName,
}

/// Parses a positive duration written as in the language (`30s`, `15m`, `1h30m`) with the
/// language's own rules ([`hogsend_dsl::text::parse_duration`]). The settings types of
/// `hogsend-schema` (which cannot depend on the language front end) carry their own copy,
/// held to the same rule by a test below.
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
    fn journeys_trigger_max_age_is_a_duration() {
        assert_eq!(load(None).0.journeys.trigger_max_age, 86_400);
        let (c, d) = load_text("[journeys]\ntrigger_max_age = \"72h\"\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.journeys.trigger_max_age, 3 * 86_400);
        let (_, d) = load_text("[journeys]\ntrigger_max_age = \"soon\"\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, Code::E0403);
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
realtime_max_backlog_age_ms = 5000
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
tracking = { opens = true, clicks = true }
"#,
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.schedule.tick_every.seconds, 90);
        assert_eq!(c.schedule.realtime_flush_ms, 100);
        assert_eq!(c.schedule.realtime_max_backlog_age_ms, 5000);
        assert_eq!(c.email.provider, EmailProvider::Smtp);
        assert!(c.email.tracking.opens && c.email.tracking.clicks);
        assert!(!c.email.tracking.transactional, "off unless asked for");
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

    /// `[schedule] tick_every` and `HOGSEND_TICK_EVERY` are read by `hogsend-schema`'s
    /// parser: it must accept exactly what the language does, with the same messages.
    #[test]
    fn settings_durations_follow_the_language() {
        for text in [
            "30s",
            "1m",
            "1h30m",
            "2w",
            "1w2d3h4m5s",
            "0s",
            "0m0s",
            "",
            "s",
            "30",
            "30x",
            "30m1h",
            "1h1h",
            "1m 30s",
            " 1m",
            "-1s",
            "1.5h",
            "007s",
            "99999999999999999999w",
            "18446744073709551615s",
            "9223372036854775807s",
            "9223372036854775808s",
            "30S",
        ] {
            assert_eq!(
                hogsend_schema::settings::parse_duration(text),
                parse_duration(text),
                "{text:?}"
            );
        }
    }
}
