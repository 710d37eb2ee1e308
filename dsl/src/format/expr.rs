//! Conditions as layout fragments: flat text, except `all { … }` / `any { … }` blocks, which
//! the printer lays out on one line when they fit and hold no comment, and over several lines
//! otherwise.

use crate::ast::{Expr, ExprKind, Filter, Window, WindowKind};
use crate::format::source::SourceInfo;
use crate::format::text;

/// A piece of a logical line.
#[derive(Debug, Clone)]
pub(crate) enum Frag {
    /// Text printed as is; `end` is the source offset where the text's content ends (0 when
    /// the text stands for no source, like an operator).
    Text { text: String, end: usize },
    /// An `all { … }` / `any { … }` block.
    Block(BlockFrag),
}

/// An `all { … }` / `any { … }` block.
#[derive(Debug, Clone)]
pub(crate) struct BlockFrag {
    /// `all` or `any`.
    pub keyword: &'static str,
    /// The source offset just after the `{`.
    pub open_end: usize,
    /// The source offset just after the `}`.
    pub end: usize,
    /// Each operand's fragments.
    pub children: Vec<Vec<Frag>>,
    /// A comment lies between the braces: the block must be printed over several lines.
    pub has_comment: bool,
}

impl Frag {
    /// Text standing for source that ends at `end`.
    pub(super) fn text(text: impl Into<String>, end: usize) -> Frag {
        Frag::Text {
            text: text.into(),
            end,
        }
    }

    /// Text standing for no particular source.
    pub(super) fn glue(text: impl Into<String>) -> Frag {
        Frag::text(text, 0)
    }
}

/// The fragments of a condition.
pub(crate) fn expr_frags(e: &Expr, src: &SourceInfo<'_>) -> Vec<Frag> {
    let mut out = Vec::new();
    push_expr(&mut out, e, src);
    out
}

/// Appends the fragments of `e` to `out`.
fn push_expr(out: &mut Vec<Frag>, e: &Expr, src: &SourceInfo<'_>) {
    let end = e.span.end;
    match &e.kind {
        ExprKind::Or(operands) | ExprKind::And(operands) => {
            let op = if matches!(e.kind, ExprKind::Or(_)) {
                " or "
            } else {
                " and "
            };
            for (n, operand) in operands.iter().enumerate() {
                if n > 0 {
                    out.push(Frag::glue(op));
                }
                push_expr(out, operand, src);
            }
        }
        ExprKind::Not(operand) => {
            out.push(Frag::glue("not "));
            push_expr(out, operand, src);
        }
        ExprKind::Paren(inner) => {
            out.push(Frag::glue("("));
            push_expr(out, inner, src);
            out.push(Frag::text(")", end));
        }
        ExprKind::All(operands) | ExprKind::Any(operands) => {
            let keyword = if matches!(e.kind, ExprKind::All(_)) {
                "all"
            } else {
                "any"
            };
            let open_end = src.open_brace_end(e.span.start + keyword.len());
            out.push(Frag::Block(BlockFrag {
                keyword,
                open_end,
                end,
                children: operands.iter().map(|o| expr_frags(o, src)).collect(),
                has_comment: src.has_comment_between(open_end, end),
            }));
        }
        ExprKind::Did {
            event,
            filter,
            window,
        } => {
            out.push(Frag::text(
                format!("did {}", text::event_name(event)),
                event.span.end,
            ));
            push_filter(out, filter.as_ref(), src);
            push_window(out, window.as_ref());
        }
        ExprKind::Count {
            event,
            filter,
            window,
            op,
            value,
        } => {
            out.push(Frag::text(
                format!("count {}", text::event_name(event)),
                event.span.end,
            ));
            push_filter(out, filter.as_ref(), src);
            push_window(out, window.as_ref());
            out.push(Frag::text(format!(" {} {}", op.as_str(), value.value), end));
        }
        ExprKind::Compare { path, op, value } => out.push(Frag::text(
            format!(
                "{} {} {}",
                text::path(path),
                op.as_str(),
                text::literal(value)
            ),
            end,
        )),
        ExprKind::Exists(path) => {
            out.push(Frag::text(format!("{} exists", text::path(path)), end));
        }
        ExprKind::Contains(path, s) => out.push(Frag::text(
            format!("{} contains {}", text::path(path), text::quote(&s.value)),
            end,
        )),
        ExprKind::In(path, values) => {
            let values: Vec<_> = values.iter().map(text::literal).collect();
            out.push(Frag::text(
                format!("{} in [{}]", text::path(path), values.join(", ")),
                end,
            ));
        }
        ExprKind::Opened(t) => out.push(Frag::text(format!("opened {}", t.name), end)),
        ExprKind::Clicked(t) => out.push(Frag::text(format!("clicked {}", t.name), end)),
    }
}

/// Appends ` where ( … )`.
pub(crate) fn push_filter(out: &mut Vec<Frag>, filter: Option<&Filter>, src: &SourceInfo<'_>) {
    if let Some(filter) = filter {
        out.push(Frag::glue(" where ("));
        push_expr(out, &filter.expr, src);
        out.push(Frag::text(")", filter.span.end));
    }
}

/// Appends ` within D` / ` since entry`.
fn push_window(out: &mut Vec<Frag>, window: Option<&Window>) {
    if let Some(window) = window {
        let text = match &window.kind {
            WindowKind::Within(d) => format!(" within {}", text::duration(d)),
            WindowKind::SinceEntry => " since entry".to_string(),
        };
        out.push(Frag::text(text, window.span.end));
    }
}

/// The fragments on one line, with every block inline.
pub(crate) fn flat(frags: &[Frag]) -> String {
    let mut out = String::new();
    push_flat(&mut out, frags);
    out
}

/// Appends the one-line rendering of `frags` to `out`.
fn push_flat(out: &mut String, frags: &[Frag]) {
    for frag in frags {
        match frag {
            Frag::Text { text, .. } => out.push_str(text),
            Frag::Block(block) => push_flat_block(out, block),
        }
    }
}

/// Appends `all { a b }`.
fn push_flat_block(out: &mut String, block: &BlockFrag) {
    out.push_str(block.keyword);
    out.push_str(" {");
    for child in &block.children {
        out.push(' ');
        push_flat(out, child);
    }
    out.push_str(" }");
}

/// The width of a block printed on one line.
pub(crate) fn flat_block_width(block: &BlockFrag) -> usize {
    let mut out = String::new();
    push_flat_block(&mut out, block);
    width(&out)
}

/// The printed width of some text, in characters.
pub(crate) fn width(text: &str) -> usize {
    text.chars().count()
}
