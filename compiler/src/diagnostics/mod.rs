//! Diagnostics: the one registry of stable codes, the `Diagnostic` value every stage
//! produces, and its two renderings (human, via codespan-reporting, and JSON).
//!
//! A diagnostic is plain data pointing into the project's files by path and byte span; the
//! renderers take the [`SourceSet`](crate::source::SourceSet) to turn spans into lines and
//! columns. Nothing here prints: rendering produces a `String` or a `serde_json::Value`.

mod registry;
mod render;

pub use hogsend_dsl::Span;
pub use registry::Code;
pub use render::{render_human, render_json, Summary, JSON_FORMAT_VERSION};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The project cannot be compiled.
    Error,
    /// The project compiles, but something is almost certainly not what the author meant.
    Warning,
}

impl Severity {
    /// `"error"` / `"warning"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A span in one file, with the text shown under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The file's path relative to the project root (`/` separators).
    pub file: String,
    /// Byte range into that file.
    pub span: Span,
    /// Shown next to the carets; may be empty.
    pub text: String,
}

impl Label {
    /// A label on `span` of `file` reading `text`.
    pub fn new(file: impl Into<String>, span: Span, text: impl Into<String>) -> Self {
        Label {
            file: file.into(),
            span,
            text: text.into(),
        }
    }
}

/// One problem found in a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The stable code (`E0301`); its registry entry holds the title and explanation.
    pub code: Code,
    /// Usually `code.severity()`; `--warnings-as-errors` promotes warnings.
    pub severity: Severity,
    /// The one-line headline: lowercase, no trailing period.
    pub message: String,
    /// Where the problem is.
    pub primary: Label,
    /// Related places (the first definition of a duplicate, the other end of a cycle…).
    pub secondary: Vec<Label>,
    /// One suggestion, rendered as `= help: …`.
    pub help: Option<String>,
    /// Further facts, full sentences, rendered as `= note: …`.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity and a primary label.
    pub fn new(code: Code, message: impl Into<String>, primary: Label) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            primary,
            secondary: Vec::new(),
            help: None,
            notes: Vec::new(),
        }
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, label: Label) -> Self {
        self.secondary.push(label);
        self
    }

    /// Sets the `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a `note:` line.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// True for errors (including promoted warnings).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Counts of errors and warnings in a list of diagnostics.
pub fn count(diagnostics: &[Diagnostic]) -> (usize, usize) {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    (errors, diagnostics.len() - errors)
}

/// Promotes every warning to an error (`--warnings-as-errors`); the code is kept.
pub fn promote_warnings(diagnostics: &mut [Diagnostic]) {
    for d in diagnostics {
        if d.severity == Severity::Warning {
            d.severity = Severity::Error;
            d.notes
                .push("This warning is an error because `--warnings-as-errors` is set.".into());
        }
    }
}
