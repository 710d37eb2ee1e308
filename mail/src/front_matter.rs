//! Template front matter: `key: value` lines between two `---` lines at the top of a file.
//!
//! ```text
//! ---
//! subject: Welcome, {{ contact.first_name | default("friend") }}
//! category: onboarding
//! from: Acme <hello@acme.test>
//! reply_to: support@acme.test
//! preheader: Three things to try first
//! ---
//! <p>Hi …
//! ```
//!
//! Values run to the end of the line, trimmed; a value may be wrapped in double quotes
//! (then `\"` and `\\` are its escapes). `subject` and `category` are required; an unknown
//! or repeated key is an error. Every error carries the byte range it is about.

use std::ops::Range;

/// The parsed front matter of one template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrontMatter {
    /// The subject (a Jinja template), with the byte range of its value in the file.
    pub subject: Option<(String, Range<usize>)>,
    /// The category (a list id or `transactional`), with its value's byte range.
    pub category: Option<(String, Range<usize>)>,
    /// The `From:` header, overriding `[email] from`.
    pub from: Option<String>,
    /// The `Reply-To:` header.
    pub reply_to: Option<String>,
    /// The preview text mail clients show after the subject.
    pub preheader: Option<String>,
    /// Where the body starts (after the closing `---` line); 0 when there is no front matter.
    pub body_start: usize,
}

/// A problem in a template's front matter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontMatterError {
    /// The file does not start with a `---` line.
    #[error("the template has no front matter")]
    Missing,
    /// `---` opens it but no `---` line closes it.
    #[error("the front matter is not closed by a `---` line")]
    Unclosed { at: Range<usize> },
    /// A line that is not `key: value`.
    #[error("expected `key: value`")]
    NotKeyValue { at: Range<usize> },
    /// A key other than subject, category, from, reply_to, preheader.
    #[error("unknown front matter key `{key}`")]
    UnknownKey { key: String, at: Range<usize> },
    /// A key given twice.
    #[error("`{key}` is given more than once")]
    Duplicate { key: String, at: Range<usize> },
    /// A required key is absent.
    #[error("the front matter has no `{key}`")]
    MissingKey { key: &'static str, at: Range<usize> },
    /// A quoted value without its closing quote.
    #[error("unterminated quoted value")]
    BadQuote { at: Range<usize> },
}

impl FrontMatterError {
    /// The byte range the problem is about (the first line for [`FrontMatterError::Missing`]).
    pub fn range(&self, text: &str) -> Range<usize> {
        match self {
            FrontMatterError::Missing => 0..text.find('\n').unwrap_or(text.len()).max(1),
            FrontMatterError::Unclosed { at }
            | FrontMatterError::NotKeyValue { at }
            | FrontMatterError::UnknownKey { at, .. }
            | FrontMatterError::Duplicate { at, .. }
            | FrontMatterError::MissingKey { at, .. }
            | FrontMatterError::BadQuote { at } => at.clone(),
        }
    }
}

/// The known keys, for messages.
pub const KEYS: &[&str] = &["subject", "category", "from", "reply_to", "preheader"];

/// Parses the front matter at the top of `text`. Every problem is returned (not only the
/// first); the front matter is returned with what could be read.
pub fn parse(text: &str) -> (FrontMatter, Vec<FrontMatterError>) {
    let mut fm = FrontMatter::default();
    let mut errors = Vec::new();
    let text_bom = text.strip_prefix('\u{feff}').map_or(0, |_| 3);
    let mut lines = lines_with_offsets(text).skip_while(|(start, _)| *start < text_bom);
    let Some((open_start, first)) = lines.next() else {
        return (fm, vec![FrontMatterError::Missing]);
    };
    if first.trim_end() != "---" {
        return (fm, vec![FrontMatterError::Missing]);
    }
    let open = open_start..open_start + first.trim_end().len();
    let mut closed = false;
    for (start, line) in lines {
        let content = line.trim_end_matches(['\n', '\r']);
        if content.trim_end() == "---" {
            fm.body_start = start + line.len();
            closed = true;
            break;
        }
        if content.trim().is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        let line_range = start..start + content.len();
        let Some(colon) = content.find(':') else {
            errors.push(FrontMatterError::NotKeyValue { at: line_range });
            continue;
        };
        let key = content[..colon].trim();
        let key_start = start + content[..colon].find(key).unwrap_or(0);
        let key_range = key_start..key_start + key.len().max(1);
        let raw = &content[colon + 1..];
        let lead = raw.len() - raw.trim_start().len();
        let value_start = start + colon + 1 + lead;
        let raw = raw.trim();
        let value_range = value_start..value_start + raw.len();
        let value = match unquote(raw) {
            Some(v) => v,
            None => {
                errors.push(FrontMatterError::BadQuote { at: value_range });
                continue;
            }
        };
        let slot_taken = match key {
            "subject" => fm.subject.replace((value, value_range)).is_some(),
            "category" => fm.category.replace((value, value_range)).is_some(),
            "from" => fm.from.replace(value).is_some(),
            "reply_to" => fm.reply_to.replace(value).is_some(),
            "preheader" => fm.preheader.replace(value).is_some(),
            _ => {
                errors.push(FrontMatterError::UnknownKey {
                    key: key.to_string(),
                    at: key_range,
                });
                continue;
            }
        };
        if slot_taken {
            errors.push(FrontMatterError::Duplicate {
                key: key.to_string(),
                at: key_range,
            });
        }
    }
    if !closed {
        errors.push(FrontMatterError::Unclosed { at: open.clone() });
        return (fm, errors);
    }
    for (key, present) in [
        ("subject", fm.subject.is_some()),
        ("category", fm.category.is_some()),
    ] {
        if !present {
            errors.push(FrontMatterError::MissingKey {
                key,
                at: open.clone(),
            });
        }
    }
    (fm, errors)
}

/// Each line with its byte offset, line ends included.
fn lines_with_offsets(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').scan(0, |offset, line| {
        let start = *offset;
        *offset += line.len();
        Some((start, line))
    })
}

/// A value as written: bare, or in double quotes with `\"` and `\\` escapes.
fn unquote(raw: &str) -> Option<String> {
    let Some(inner) = raw.strip_prefix('"') else {
        return Some(raw.to_string());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().trim().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_and_the_body_start() {
        let text = "---\nsubject: Hi {{ contact.name }}\ncategory: onboarding\nfrom: \"A <a@x.test>\"\nreply_to: r@x.test\npreheader: Pre\n---\n<p>body</p>\n";
        let (fm, errors) = parse(text);
        assert!(errors.is_empty(), "{errors:?}");
        let (subject, at) = fm.subject.unwrap();
        assert_eq!(subject, "Hi {{ contact.name }}");
        assert_eq!(&text[at], "Hi {{ contact.name }}");
        assert_eq!(fm.category.unwrap().0, "onboarding");
        assert_eq!(fm.from.as_deref(), Some("A <a@x.test>"));
        assert_eq!(fm.reply_to.as_deref(), Some("r@x.test"));
        assert_eq!(fm.preheader.as_deref(), Some("Pre"));
        assert_eq!(&text[fm.body_start..], "<p>body</p>\n");
    }

    #[test]
    fn reports_every_problem_with_its_range() {
        let text = "---\nsubjet: x\nsubject: a\nsubject: b\nnonsense\n---\n";
        let (_, errors) = parse(text);
        let ranges: Vec<&str> = errors.iter().map(|e| &text[e.range(text)]).collect();
        assert_eq!(ranges, ["subjet", "subject", "nonsense", "---"]);
        assert!(matches!(
            errors[3],
            FrontMatterError::MissingKey {
                key: "category",
                ..
            }
        ));
        assert_eq!(
            parse("<p>no front matter</p>").1,
            [FrontMatterError::Missing]
        );
        assert!(matches!(
            parse("---\nsubject: a\n").1[0],
            FrontMatterError::Unclosed { .. }
        ));
        assert!(matches!(
            parse("---\nsubject: \"a\n---\n").1[0],
            FrontMatterError::BadQuote { .. }
        ));
        assert_eq!(parse("").1, [FrontMatterError::Missing]);
    }
}
