//! The parse stage as the compiler sees it: `hogsend_dsl::parse` on every file, and each
//! [`ParseErrorKind`] mapped to its own registry code (`E01xx`).
//!
//! The words (message, label, help, secondary label) come from the dsl crate's
//! `ParseError`; the code and the file path are added here.

use hogsend_dsl::{ParseError, ParseErrorKind};

use crate::check::ParsedFile;
use crate::diagnostics::{Code, Diagnostic, Label};
use crate::source::SourceFile;

/// The registry code of a parse error kind.
pub(crate) fn code_of(kind: &ParseErrorKind) -> Code {
    match kind {
        ParseErrorKind::Unexpected { .. } => Code::E0101,
        ParseErrorKind::UnterminatedString => Code::E0102,
        ParseErrorKind::InvalidEscape { .. } => Code::E0103,
        ParseErrorKind::InvalidNumber { .. } => Code::E0104,
        ParseErrorKind::InvalidDuration { .. } => Code::E0105,
        ParseErrorKind::InvalidIdentifier { .. } => Code::E0106,
        ParseErrorKind::UnclosedDelimiter { .. } => Code::E0107,
        ParseErrorKind::NestingTooDeep => Code::E0108,
        ParseErrorKind::InvalidTimeOfDay { .. } => Code::E0109,
        ParseErrorKind::UnexpectedCharacter { .. } => Code::E0110,
        ParseErrorKind::InvalidInstant { .. } => Code::E0150,
        ParseErrorKind::InvalidSendAt { .. } => Code::E0111,
    }
}

/// A parse error of the file at `path` as a diagnostic.
pub(crate) fn diagnostic(path: &str, error: &ParseError) -> Diagnostic {
    let mut d = Diagnostic::new(
        code_of(&error.kind),
        error.message(),
        Label::new(path, error.span, error.label()),
    );
    if let Some((span, text)) = error.secondary() {
        d = d.with_secondary(Label::new(path, span, text));
    }
    if let Some(help) = error.help() {
        d = d.with_help(help);
    }
    d
}

/// Parses one file into its tree and its parse errors as diagnostics.
pub(crate) fn parse_file(file: &SourceFile) -> ParsedFile {
    let result = hogsend_dsl::parse(&file.text);
    ParsedFile {
        ast: result.file,
        diagnostics: result
            .errors
            .iter()
            .map(|e| diagnostic(&file.path, e))
            .collect(),
    }
}

/// Formats one file canonically (`hogsend_dsl::format`); parse errors as diagnostics.
pub fn format_file(file: &SourceFile) -> Result<String, Vec<Diagnostic>> {
    hogsend_dsl::format(&file.text)
        .map_err(|errors| errors.iter().map(|e| diagnostic(&file.path, e)).collect())
}
