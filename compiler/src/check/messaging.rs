//! Lists and templates (docs/language.md#lists, #templates): duplicate lists and list
//! fields, each template's front matter, Jinja syntax and variables (checked by
//! `hogsend-mail`, located in the template's files), and its `category`, which must be a
//! declared list or `transactional`.

use std::collections::HashMap;

use hogsend_dsl::ast::{self, ListFieldKind};
use hogsend_dsl::Span;
use hogsend_mail::check::{ProblemKind, TemplatePart};
use hogsend_mail::{check_template, DeployedTemplate, TRANSACTIONAL};

use super::error::{CheckError, DefKind, Loc};
use super::{closest, Checker, Def};
use crate::ir;
use crate::source::TemplateSource;

impl<'a> Checker<'a> {
    /// Pass 1: registers a list id, reporting a duplicate.
    pub(super) fn define_list(&mut self, file: usize, l: &'a ast::List) {
        if let Some(first) = self.lists.get(l.id.name.as_str()) {
            let first = Loc {
                file: self.set.files[first.file].path.clone(),
                span: first.node.id.span,
            };
            self.report(CheckError::DuplicateDefinition {
                kind: DefKind::List,
                id: l.id.name.clone(),
                at: self.loc(l.id.span),
                first,
            });
        } else {
            self.lists.insert(&l.id.name, Def { file, node: l });
        }
    }

    /// Checks and lowers one list.
    pub(super) fn list(&mut self, l: &ast::List) -> ir::List {
        let mut seen = HashMap::new();
        let mut out = ir::List {
            id: l.id.name.clone(),
            name: None,
            description: None,
            default_subscribed: true,
            origin: self.origin(l.span),
        };
        for f in &l.fields {
            let name = match &f.kind {
                ListFieldKind::Name(s) => {
                    out.name = Some(s.value.clone());
                    "name"
                }
                ListFieldKind::Description(s) => {
                    out.description = Some(s.value.clone());
                    "description"
                }
                ListFieldKind::Default(d) => {
                    out.default_subscribed = d.subscribed;
                    "default"
                }
            };
            self.once(&mut seen, DefKind::List, name, f.keyword_span);
        }
        out
    }

    /// Checks every template and lowers it to what `migrate` deploys.
    pub(super) fn templates(&mut self) -> Vec<ir::Template> {
        let set = self.set;
        set.templates.iter().map(|t| self.template(t)).collect()
    }

    fn template(&mut self, t: &TemplateSource) -> ir::Template {
        let html = t.html.as_ref().map(|f| f.text.as_str());
        let text = t.text.as_ref().map(|f| f.text.as_str());
        let (fm, problems) = check_template(html, text);
        let path = |part: TemplatePart| {
            let file = match part {
                TemplatePart::Html => t.html.as_ref(),
                TemplatePart::Text => t.text.as_ref(),
            };
            file.map_or_else(|| format!("templates/{}", t.id), |f| f.path.clone())
        };
        let fm_part = if html.is_some() {
            TemplatePart::Html
        } else {
            TemplatePart::Text
        };
        for p in problems {
            let at = Loc {
                file: path(p.part),
                span: Span::new(p.range.start, p.range.end),
            };
            self.report(match p.kind {
                ProblemKind::FrontMatter(e) => CheckError::TemplateFrontMatter {
                    message: e.to_string(),
                    at,
                },
                ProblemKind::Syntax(message) => CheckError::TemplateSyntax { message, at },
                ProblemKind::UnknownVariable(name) => {
                    CheckError::UnknownTemplateVariable { name, at }
                }
            });
        }
        if let Some((category, range)) = &fm.category {
            if category != TRANSACTIONAL
                && !self.lists.contains_key(category.as_str())
                && !self.parse_failed
            {
                let candidates = self
                    .lists
                    .keys()
                    .copied()
                    .chain(std::iter::once(TRANSACTIONAL));
                let suggestion = closest(category, candidates);
                self.report(CheckError::UnknownList {
                    name: category.clone(),
                    at: Loc {
                        file: path(fm_part),
                        span: Span::new(range.start, range.end),
                    },
                    suggestion,
                });
            }
        }
        let body =
            |text: Option<&str>, start: usize| text.map(|s| s[start.min(s.len())..].to_string());
        let deployed = DeployedTemplate {
            id: t.id.clone(),
            subject: fm.subject.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
            category: fm
                .category
                .as_ref()
                .map(|c| c.0.clone())
                .unwrap_or_default(),
            from: fm.from.clone(),
            reply_to: fm.reply_to.clone(),
            preheader: fm.preheader.clone(),
            html: body(html, fm.body_start),
            text: body(text, if html.is_some() { 0 } else { fm.body_start }),
        };
        ir::Template {
            id: t.id.clone(),
            has_html: t.html.is_some(),
            has_text: t.text.is_some(),
            category: fm.category.map(|c| c.0),
            deployed,
        }
    }
}
