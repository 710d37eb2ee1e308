//! Campaigns (docs/language.md#campaigns): duplicate campaigns and fields, the required
//! `audience` and `template`, and the bucket, list and template they name (each unknown one
//! with its closest known id).

use std::collections::HashMap;

use hogsend_dsl::ast::{self, CampaignFieldKind};

use super::error::{CheckError, DefKind, Loc};
use super::{closest, Checker, Def};
use crate::ir;
use crate::test_suite::epoch_seconds;

impl<'a> Checker<'a> {
    /// Pass 1: registers a campaign id, reporting a duplicate.
    pub(super) fn define_campaign(&mut self, file: usize, c: &'a ast::Campaign) {
        if let Some(first) = self.campaigns.get(c.id.name.as_str()) {
            let first = Loc {
                file: self.set.files[first.file].path.clone(),
                span: first.node.id.span,
            };
            self.report(CheckError::DuplicateDefinition {
                kind: DefKind::Campaign,
                id: c.id.name.clone(),
                at: self.loc(c.id.span),
                first,
            });
        } else {
            self.campaigns.insert(&c.id.name, Def { file, node: c });
        }
    }

    /// Checks and lowers one campaign.
    pub(super) fn campaign(&mut self, c: &ast::Campaign) -> ir::Campaign {
        let mut seen = HashMap::new();
        let mut out = ir::Campaign {
            id: c.id.name.clone(),
            name: c.id.name.clone(),
            audience: ir::Audience::Bucket(String::new()),
            template: String::new(),
            send_at: None,
            origin: self.origin(c.span),
        };
        let (mut has_audience, mut has_template) = (false, false);
        for f in &c.fields {
            let name = match &f.kind {
                CampaignFieldKind::Name(s) => {
                    out.name = s.value.clone();
                    "name"
                }
                CampaignFieldKind::Audience(a) => {
                    has_audience = true;
                    out.audience = if a.is_list {
                        self.list_ref(&a.id);
                        ir::Audience::List(a.id.name.clone())
                    } else {
                        self.bucket_ref(&a.id);
                        ir::Audience::Bucket(a.id.name.clone())
                    };
                    "audience"
                }
                CampaignFieldKind::Template(t) => {
                    has_template = true;
                    self.template_ref(t);
                    out.template = t.name.clone();
                    "template"
                }
                CampaignFieldKind::SendAt(s) => {
                    out.send_at = Some(send_at(s));
                    "send_at"
                }
            };
            self.once(&mut seen, DefKind::Campaign, name, f.keyword_span);
        }
        for (has, field, example) in [
            (has_audience, "audience", "audience list product_updates"),
            (has_template, "template", "template spring_launch"),
        ] {
            if !has {
                self.report(CheckError::MissingField {
                    owner: DefKind::Campaign,
                    id: c.id.name.clone(),
                    field,
                    example,
                    at: self.loc(c.id.span),
                });
            }
        }
        out
    }

    /// Reports a bucket campaign whose template's category is `transactional`: its messages
    /// would reach members who unsubscribed from everything.
    pub(super) fn transactional_broadcast(
        &mut self,
        c: &ast::Campaign,
        templates: &[ir::Template],
    ) {
        // An unknown bucket is reported already (E0202).
        let audience = c.fields.iter().find_map(|f| match &f.kind {
            CampaignFieldKind::Audience(a)
                if !a.is_list && self.buckets.contains_key(a.id.name.as_str()) =>
            {
                Some(f.span)
            }
            _ => None,
        });
        let template = c.fields.iter().find_map(|f| match &f.kind {
            CampaignFieldKind::Template(t) => Some(t),
            _ => None,
        });
        let (Some(audience), Some(template)) = (audience, template) else {
            return;
        };
        let transactional = templates.iter().any(|t| {
            t.id == template.name && t.category.as_deref() == Some(hogsend_mail::TRANSACTIONAL)
        });
        if transactional {
            self.report(CheckError::TransactionalBroadcast {
                campaign: c.id.name.clone(),
                template: template.name.clone(),
                at: self.loc(template.span),
                audience: self.loc(audience),
            });
        }
    }

    /// Resolves a list id named by a campaign audience.
    fn list_ref(&mut self, id: &ast::Ident) {
        if self.lists.contains_key(id.name.as_str()) || self.parse_failed {
            return;
        }
        let suggestion = closest(&id.name, self.lists.keys().copied());
        self.report(CheckError::UnknownList {
            name: id.name.clone(),
            at: self.loc(id.span),
            suggestion,
        });
    }
}

/// The IR of a `send_at` (the parser validated the date and time).
fn send_at(s: &ast::SendAt) -> ir::SendAt {
    match s {
        ast::SendAt::Instant {
            at, offset_minutes, ..
        } => {
            let (h, m, sec) = at.time.unwrap_or((0, 0, 0));
            let local = epoch_seconds(
                i64::from(at.year),
                u32::from(at.month),
                u32::from(at.day),
                u32::from(h),
                u32::from(m),
                u32::from(sec),
            );
            ir::SendAt::Instant(local - i64::from(*offset_minutes) * 60)
        }
        ast::SendAt::Local { at, zone, .. } => {
            let (h, m, sec) = at.time.unwrap_or((0, 0, 0));
            ir::SendAt::Local {
                local: format!(
                    "{:04}-{:02}-{:02} {h:02}:{m:02}:{sec:02}",
                    at.year, at.month, at.day
                ),
                zone: zone.clone(),
            }
        }
    }
}
