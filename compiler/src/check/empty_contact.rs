//! The empty-contact rule's diagnostic (`docs/language.md`): a bucket's criteria must be
//! false for a contact with no properties, no events and no messages, else the bucket would
//! hold every contact ever seen.
//!
//! Whether the criteria hold for that contact is decided on the lowered IR by the reference
//! evaluator ([`crate::eval::holds_for_empty_contact`]), the same semantics the property
//! tests hold the generated SQL to. This module builds what the diagnostic says about the
//! source: the label under the criteria and the `help:` suggestion, which need the AST's
//! spans and the file's text.

use hogsend_dsl::ast::{Expr, ExprKind};

/// What kinds of atom an expression reads.
#[derive(Default)]
struct Reads<'e> {
    properties: bool,
    events: bool,
    messages: bool,
    first_event: Option<&'e Expr>,
    first_property: Option<&'e Expr>,
}

fn reads<'e>(expr: &'e Expr, r: &mut Reads<'e>) {
    match &expr.kind {
        ExprKind::Or(xs) | ExprKind::Any(xs) | ExprKind::And(xs) | ExprKind::All(xs) => {
            xs.iter().for_each(|x| reads(x, r));
        }
        ExprKind::Not(x) | ExprKind::Paren(x) => reads(x, r),
        ExprKind::Did { .. } | ExprKind::Count { .. } => {
            r.events = true;
            r.first_event.get_or_insert(expr);
        }
        ExprKind::Compare { .. }
        | ExprKind::Exists(_)
        | ExprKind::Contains(..)
        | ExprKind::In(..) => {
            r.properties = true;
            r.first_property.get_or_insert(expr);
        }
        ExprKind::Opened(_) | ExprKind::Clicked(_) => r.messages = true,
    }
}

/// The label under the criteria: "true for a contact with no events" (or properties, or
/// both).
pub(crate) fn label(expr: &Expr) -> String {
    let mut r = Reads::default();
    reads(expr, &mut r);
    let mut parts = Vec::new();
    if r.properties {
        parts.push("no properties");
    }
    if r.events {
        parts.push("no events");
    }
    if r.messages {
        parts.push("no messages");
    }
    let list = match parts.as_slice() {
        [] => "nothing".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    format!("true for a contact with {list}")
}

/// A positive version of the criteria built from the user's own atoms: `did E and …` with
/// the first event the criteria name, else `contact.p exists and …` with the first property.
/// `source` is the text of the criteria's file.
pub(crate) fn suggestion(expr: &Expr, source: &str) -> Option<String> {
    let mut r = Reads::default();
    reads(expr, &mut r);
    let text = |span: hogsend_dsl::Span| source.get(span.range()).map(str::trim);
    let whole = text(expr.span)?;
    let whole = match expr.kind {
        ExprKind::Or(_) => format!("({whole})"),
        _ => whole.to_string(),
    };
    if let Some(atom) = r.first_event {
        let event = match &atom.kind {
            ExprKind::Did { event, .. } | ExprKind::Count { event, .. } => text(event.span)?,
            _ => return None,
        };
        return Some(format!("did {event} and {whole}"));
    }
    if let Some(atom) = r.first_property {
        let path = match &atom.kind {
            ExprKind::Compare { path, .. }
            | ExprKind::Exists(path)
            | ExprKind::Contains(path, _)
            | ExprKind::In(path, _) => text(path.span)?,
            _ => return None,
        };
        return Some(format!("{path} exists and {whole}"));
    }
    None
}
