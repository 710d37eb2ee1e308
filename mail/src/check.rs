//! A template's compile-time checks: front matter, Jinja syntax, unknown top-level
//! variables. Each problem carries the part (`.html` or `.txt`) and byte range it is about,
//! so the compiler can point a diagnostic into the template file.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::front_matter::{self, FrontMatter, FrontMatterError};
use crate::render::environment;
use crate::VARIABLES;

/// Which file of a template a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplatePart {
    /// `templates/ID.html`
    Html,
    /// `templates/ID.txt`
    Text,
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The front matter is missing, unclosed or has a bad line or key.
    FrontMatter(FrontMatterError),
    /// Jinja could not parse the body or the subject.
    Syntax(String),
    /// A top-level variable that is none of [`VARIABLES`].
    UnknownVariable(String),
}

/// One problem of a template, located in one of its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateProblem {
    pub part: TemplatePart,
    pub range: Range<usize>,
    pub kind: ProblemKind,
}

/// Names Jinja itself provides (globals), never unknown.
const JINJA_GLOBALS: &[&str] = &["range", "dict", "namespace", "debug", "loop", "self"];

/// Checks a template from its parts' text. The front matter is read from the `.html` part
/// when there is one, else from the `.txt` part. Returns the front matter (what could be
/// read) and every problem.
pub fn check_template(
    html: Option<&str>,
    text: Option<&str>,
) -> (FrontMatter, Vec<TemplateProblem>) {
    let (fm_part, fm_text) = match (html, text) {
        (Some(h), _) => (TemplatePart::Html, h),
        (None, Some(t)) => (TemplatePart::Text, t),
        (None, None) => return (FrontMatter::default(), Vec::new()),
    };
    let (fm, fm_errors) = front_matter::parse(fm_text);
    let mut problems: Vec<TemplateProblem> = fm_errors
        .into_iter()
        .map(|e| TemplateProblem {
            part: fm_part,
            range: e.range(fm_text),
            kind: ProblemKind::FrontMatter(e),
        })
        .collect();
    if let Some((subject, at)) = &fm.subject {
        problems.extend(check_source(
            fm_part,
            fm_text,
            subject,
            at.start,
            "subject.txt",
        ));
    }
    if let Some(h) = html {
        let start = fm.body_start;
        problems.extend(check_source(
            TemplatePart::Html,
            h,
            &h[start..],
            start,
            "body.html",
        ));
    }
    if let Some(t) = text {
        let start = if html.is_some() { 0 } else { fm.body_start };
        problems.extend(check_source(
            TemplatePart::Text,
            t,
            &t[start..],
            start,
            "body.txt",
        ));
    }
    (fm, problems)
}

/// Checks one Jinja source that starts at byte `offset` of `file_text`.
fn check_source(
    part: TemplatePart,
    file_text: &str,
    source: &str,
    offset: usize,
    name: &str,
) -> Vec<TemplateProblem> {
    let env = environment();
    let template = match env.template_from_named_str(name, source) {
        Ok(t) => t,
        Err(e) => {
            let range = e
                .range()
                .map(|r| r.start.min(source.len())..r.end.min(source.len()))
                .or_else(|| e.line().map(|line| line_range(source, line)))
                .unwrap_or(0..source.len().min(1));
            let range = widen(file_text, offset + range.start..offset + range.end);
            let message = e
                .detail()
                .map_or_else(|| e.kind().to_string(), str::to_string);
            return vec![TemplateProblem {
                part,
                range,
                kind: ProblemKind::Syntax(message),
            }];
        }
    };
    let unknown: BTreeSet<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !VARIABLES.contains(&v.as_str()) && !JINJA_GLOBALS.contains(&v.as_str()))
        .collect();
    unknown
        .into_iter()
        .map(|name| {
            let at = find_variable(source, &name).unwrap_or(0..source.len().min(1));
            TemplateProblem {
                part,
                range: widen(file_text, offset + at.start..offset + at.end),
                kind: ProblemKind::UnknownVariable(name),
            }
        })
        .collect()
}

/// The byte range of 1-based `line` of `source` (without its line end).
fn line_range(source: &str, line: usize) -> Range<usize> {
    let start: usize = source
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let len = source[start..].find('\n').unwrap_or(source.len() - start);
    start..start + len
}

/// At least one byte, within the text, on char boundaries.
fn widen(text: &str, r: Range<usize>) -> Range<usize> {
    let mut start = r.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = r.end.clamp(start, text.len());
    if end == start && end < text.len() {
        end += 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// The first use of `name` as a whole identifier inside a `{{ … }}` or `{% … %}` tag.
fn find_variable(source: &str, name: &str) -> Option<Range<usize>> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(open) = source[from..].find(['{']).map(|i| from + i) {
        let rest = &source[open..];
        let close = if rest.starts_with("{{") {
            "}}"
        } else if rest.starts_with("{%") {
            "%}"
        } else {
            from = open + 1;
            continue;
        };
        let end = rest.find(close).map_or(source.len(), |i| open + i);
        let tag = &source[open + 2..end];
        let mut search = 0;
        while let Some(i) = tag[search..].find(name).map(|i| search + i) {
            let before = tag[..i].chars().next_back();
            let after = tag[i + name.len()..].chars().next();
            let quoted = tag[..i].matches(['"', '\'']).count() % 2 == 1;
            if !before.is_some_and(|c| is_ident(c) || c == '.')
                && !after.is_some_and(is_ident)
                && !quoted
            {
                let at = open + 2 + i;
                return Some(at..at + name.len());
            }
            search = i + name.len();
        }
        from = end.max(open + 1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(html: &str) -> Vec<(String, String)> {
        let (_, p) = check_template(Some(html), None);
        p.into_iter()
            .map(|p| {
                let what = match p.kind {
                    ProblemKind::FrontMatter(e) => e.to_string(),
                    ProblemKind::Syntax(s) => format!("syntax: {s}"),
                    ProblemKind::UnknownVariable(v) => format!("unknown: {v}"),
                };
                (html[p.range].to_string(), what)
            })
            .collect()
    }

    const FM: &str = "---\nsubject: Hi {{ contact.first_name }}\ncategory: news\n---\n";

    #[test]
    fn a_good_template_has_no_problems() {
        let html = format!(
            "{FM}{{% for x in contact.items %}}{{{{ x }}}}{{% endfor %}}{{{{ event.plan | default('free') }}}} {{{{ journey.name }}}} <a href=\"{{{{ unsubscribe_url }}}}\">u</a>{{{{ preferences_url }}}}{{{{ campaign.id }}}}{{% set y = 1 %}}{{{{ y }}}}{{{{ range(3) | list }}}}"
        );
        assert_eq!(problems(&html), Vec::<(String, String)>::new());
    }

    #[test]
    fn unknown_variables_point_at_their_first_use() {
        let html = format!("{FM}<p>{{{{ user.name }}}} {{{{ 'user' }}}} {{{{ user }}}}</p>");
        assert_eq!(
            problems(&html),
            [("user".to_string(), "unknown: user".to_string())]
        );
        let p = check_template(Some(&html), None).1;
        assert_eq!(p[0].range.start, FM.len() + 6);
    }

    #[test]
    fn syntax_errors_point_into_the_body_or_the_subject() {
        let html = format!("{FM}<p>\n{{% if contact.plan %}}\n</p>");
        let p = problems(&html);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.starts_with("syntax:"), "{p:?}");
        let html = "---\nsubject: Hi {{ contact.name \ncategory: news\n---\n<p></p>";
        let p = problems(html);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.starts_with("syntax:"));
    }

    #[test]
    fn a_text_only_template_has_its_front_matter_in_the_text() {
        let (fm, p) = check_template(None, Some("---\nsubject: s\ncategory: c\n---\n{{ nope }}"));
        assert_eq!(fm.category.unwrap().0, "c");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].part, TemplatePart::Text);
        assert_eq!(p[0].kind, ProblemKind::UnknownVariable("nope".into()));
    }
}
