//! Output flags shared by every command (`--format`, `--color`) and the helpers that print
//! diagnostics with them.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use hogsend_compiler::diagnostics::{self, Diagnostic};
use hogsend_compiler::source::SourceSet;

/// How results and diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum Format {
    /// For people: rustc-style diagnostics on stderr.
    #[default]
    Human,
    /// For machines: one JSON document on stdout (`format_version` 1).
    Json,
}

/// When to use colour in human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum ColorChoice {
    /// When stderr is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    Always,
    Never,
}

/// The `--format` flag's values: the formats every command has, plus `junit` (only
/// `hogsend test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub(crate) enum FormatArg {
    /// For people: rustc-style diagnostics on stderr.
    #[default]
    Human,
    /// For machines: one JSON document on stdout (`format_version` 1).
    Json,
    /// JUnit XML on stdout (`hogsend test` only).
    Junit,
}

/// The global output flags (accepted before or after the subcommand).
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t)]
    format: FormatArg,
    /// When to colour human output
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    color: ColorChoice,
}

impl OutputArgs {
    /// Decides colour once, from the flag and the environment.
    pub(crate) fn resolve(&self) -> Output {
        let color = match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        };
        let format = match self.format {
            FormatArg::Json => Format::Json,
            FormatArg::Human | FormatArg::Junit => Format::Human,
        };
        Output {
            format,
            color,
            junit: self.format == FormatArg::Junit,
        }
    }
}

/// The resolved output settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub format: Format,
    pub color: bool,
    /// `--format junit` (`hogsend test` prints JUnit XML; `format` is then `Human`, for the
    /// compile diagnostics).
    pub junit: bool,
}

impl Output {
    /// Prints human diagnostics to stderr.
    pub(crate) fn eprint_diagnostics(self, diagnostics: &[Diagnostic], sources: &SourceSet) {
        eprint!(
            "{}",
            diagnostics::render_human(diagnostics, sources, self.color)
        );
    }

    /// `error: …` / `warning: …` summary prefixes, coloured like codespan's headers.
    pub(crate) fn severity_prefix(self, error: bool) -> String {
        match (error, self.color) {
            (true, true) => "\x1b[1m\x1b[38;5;9merror\x1b[0m\x1b[1m:\x1b[0m".into(),
            (false, true) => "\x1b[1m\x1b[38;5;11mwarning\x1b[0m\x1b[1m:\x1b[0m".into(),
            (true, false) => "error:".into(),
            (false, false) => "warning:".into(),
        }
    }

    /// Reports a command's failure (`{"format_version", "error"}` on stdout under
    /// `--format json`, `error: …` on stderr otherwise) and returns exit code 1.
    pub(crate) fn fail(self, err: &dyn std::fmt::Display) -> std::process::ExitCode {
        match self.format {
            Format::Json => println!(
                "{}",
                serde_json::json!({
                    "format_version": diagnostics::JSON_FORMAT_VERSION,
                    "error": err.to_string(),
                })
            ),
            Format::Human => eprintln!("{} {err}", self.severity_prefix(true)),
        }
        std::process::ExitCode::from(1)
    }
}

/// `1 error`, `2 errors`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}
