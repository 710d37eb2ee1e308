//! Rendering diagnostics: human (codespan-reporting, rustc/Gleam style) and JSON.

use std::collections::HashMap;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
use serde_json::{json, Value};

use super::{count, Diagnostic, Label, Severity};
use crate::source::SourceSet;

/// The `format_version` of the JSON output. Bumped only on incompatible changes.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// Error and warning counts, for summary lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
}

impl Summary {
    /// Counts `diagnostics`.
    pub fn of(diagnostics: &[Diagnostic]) -> Self {
        let (errors, warnings) = count(diagnostics);
        Summary { errors, warnings }
    }
}

/// The files of a source set, registered with codespan-reporting by path.
struct Files<'a> {
    files: SimpleFiles<&'a str, &'a str>,
    ids: HashMap<&'a str, usize>,
}

impl<'a> Files<'a> {
    fn new(sources: &'a SourceSet, diagnostics: &'a [Diagnostic]) -> Self {
        let mut files = SimpleFiles::new();
        let mut ids = HashMap::new();
        for f in sources.all_files() {
            ids.entry(f.path.as_str())
                .or_insert_with(|| files.add(f.path.as_str(), f.text.as_str()));
        }
        // A label naming a file the set does not hold still renders (as an empty file).
        for d in diagnostics {
            for l in std::iter::once(&d.primary).chain(&d.secondary) {
                ids.entry(l.file.as_str())
                    .or_insert_with(|| files.add(l.file.as_str(), ""));
            }
        }
        Files { files, ids }
    }

    fn text(&self, id: usize) -> &'a str {
        self.files.get(id).map_or("", |f| *f.source())
    }

    /// The file id and a span clamped to the text and to char boundaries, so that no
    /// diagnostic can make the renderer fail.
    fn locate(&self, label: &Label) -> (usize, std::ops::Range<usize>) {
        let id = self.ids[label.file.as_str()];
        let text = self.text(id);
        let clamp = |mut i: usize| {
            i = i.min(text.len());
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let start = clamp(label.span.start);
        let end = clamp(label.span.end.max(start));
        (id, start..end)
    }
}

/// Renders `diagnostics` the way rustc and Gleam do (LANGUAGE.md §5), with ANSI colours
/// when `color` is true. Each diagnostic ends with a blank line.
pub fn render_human(diagnostics: &[Diagnostic], sources: &SourceSet, color: bool) -> String {
    let files = Files::new(sources, diagnostics);
    let config = term::Config::default();
    let mut buffer = if color {
        termcolor::Buffer::ansi()
    } else {
        termcolor::Buffer::no_color()
    };
    for d in diagnostics {
        let diagnostic = to_codespan(d, &files);
        // Spans are clamped above, so emitting into memory cannot fail.
        term::emit(&mut buffer, &config, &files.files, &diagnostic)
            .expect("rendering a diagnostic into memory");
    }
    String::from_utf8_lossy(buffer.as_slice()).into_owned()
}

fn to_codespan(d: &Diagnostic, files: &Files<'_>) -> cs::Diagnostic<usize> {
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let (id, range) = files.locate(&d.primary);
    let mut labels = vec![cs::Label::primary(id, range).with_message(&d.primary.text)];
    for l in &d.secondary {
        let (id, range) = files.locate(l);
        labels.push(cs::Label::secondary(id, range).with_message(&l.text));
    }
    let mut notes: Vec<String> = d.notes.iter().map(|n| format!("note: {n}")).collect();
    if let Some(help) = &d.help {
        notes.push(format!("help: {help}"));
    }
    cs::Diagnostic::new(severity)
        .with_code(d.code.as_str())
        .with_message(&d.message)
        .with_labels(labels)
        .with_notes(notes)
}

/// 1-based line and column (in characters, as codespan-reporting counts) of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

fn label_json(label: &Label, primary: bool, sources: &SourceSet) -> Value {
    let text = sources.text_of(&label.file).unwrap_or("");
    let (line, column) = line_column(text, label.span.start);
    let (end_line, end_column) = line_column(text, label.span.end);
    json!({
        "file": label.file,
        "line": line,
        "column": column,
        "end_line": end_line,
        "end_column": end_column,
        "span": { "start": label.span.start, "end": label.span.end },
        "primary": primary,
        "text": label.text,
    })
}

/// One diagnostic as a JSON object: code, severity, message, the primary location
/// (file, 1-based line/column, byte span), every label, help and notes.
pub(super) fn diagnostic_json(d: &Diagnostic, sources: &SourceSet) -> Value {
    let text = sources.text_of(&d.primary.file).unwrap_or("");
    let (line, column) = line_column(text, d.primary.span.start);
    let mut labels = vec![label_json(&d.primary, true, sources)];
    labels.extend(d.secondary.iter().map(|l| label_json(l, false, sources)));
    json!({
        "code": d.code.as_str(),
        "severity": d.severity.as_str(),
        "title": d.code.title(),
        "message": d.message,
        "file": d.primary.file,
        "line": line,
        "column": column,
        "span": { "start": d.primary.span.start, "end": d.primary.span.end },
        "labels": labels,
        "help": d.help,
        "notes": d.notes,
    })
}

/// The whole JSON document for a list of diagnostics:
/// `{"format_version": 1, "diagnostics": [...], "summary": {"errors": n, "warnings": m}}`.
pub fn render_json(diagnostics: &[Diagnostic], sources: &SourceSet) -> Value {
    let summary = Summary::of(diagnostics);
    json!({
        "format_version": JSON_FORMAT_VERSION,
        "diagnostics": diagnostics.iter().map(|d| diagnostic_json(d, sources)).collect::<Vec<_>>(),
        "summary": { "errors": summary.errors, "warnings": summary.warnings },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{Code, Span};
    use crate::source::SourceFile;

    #[test]
    fn renders_the_language_md_example_byte_for_byte() {
        let text = "bucket engagement {\n  name \"Engagement\"\n  criteria not did app_opened within 7d\n}\n";
        let sources = SourceSet::from_files([SourceFile::new("buckets/engagement.hog", text)]);
        let start = text.find("not did").unwrap();
        let end = text.find("7d").unwrap() + 2;
        let d = Diagnostic::new(
            Code::E0301,
            "this bucket would contain every contact",
            Label::new(
                "buckets/engagement.hog",
                Span::new(start, end),
                "true for a contact with no events",
            ),
        )
        .with_help(
            "add a positive condition, e.g. `did app_opened and not did app_opened within 7d`",
        );
        // LANGUAGE.md §5 shows 27 carets under the 28-character expression (a typo in the
        // spec); everything else here is the spec's text byte for byte.
        let expected = "\
error[E0301]: this bucket would contain every contact
  ┌─ buckets/engagement.hog:3:12
  │
3 │   criteria not did app_opened within 7d
  │            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^ true for a contact with no events
  │
  = help: add a positive condition, e.g. `did app_opened and not did app_opened within 7d`

";
        assert_eq!(render_human(&[d], &sources, false), expected);
    }

    #[test]
    fn out_of_range_spans_do_not_panic() {
        let sources = SourceSet::from_files([SourceFile::new("a.hog", "é")]);
        let d = Diagnostic::new(Code::E0101, "x", Label::new("a.hog", Span::new(1, 99), ""))
            .with_secondary(Label::new("missing.hog", Span::new(3, 4), "y"));
        render_human(std::slice::from_ref(&d), &sources, true);
        let v = render_json(&[d], &sources);
        assert_eq!(v["diagnostics"][0]["line"], 1);
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("", 5), (1, 1));
    }
}
