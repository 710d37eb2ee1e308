//! The formatter: one canonical layout for `.hog` files that keeps every comment.
//!
//! Layout: 2-space indentation; one blank line between definitions; at most one blank line
//! between members or steps where the source had some, none at the start or end of a block;
//! bucket field values aligned at column 12 and journey header values at column 8; one-step
//! blocks and `all`/`any` blocks on one line when they fit in 100 columns and hold no comment.
//!
//! **Invariants:** `format` is idempotent, and `parse(format(x))` means the same as
//! `parse(x)` (equal trees up to spans). Every comment is printed exactly once, in order;
//! a comment inside a construct printed on one line moves to its own line above it.

mod expr;
mod items;
mod printer;
mod source;
mod test_block;
mod text;

use crate::ast::{Expr, SourceFile};
use crate::error::ParseError;
use source::SourceInfo;

/// Formats a whole file canonically. Refuses (returning the errors) when it does not parse.
pub fn format(source: &str) -> Result<String, Vec<ParseError>> {
    let parsed = crate::parse(source);
    if !parsed.errors.is_empty() {
        return Err(parsed.errors);
    }
    let info = SourceInfo {
        text: source,
        comments: &parsed.file.comments,
    };
    Ok(print(&parsed.file, info))
}

/// Prints a tree built in memory (its spans and comments are ignored) in the canonical
/// layout. For a tree parsed from source, prefer [`format()`], which keeps comments.
pub fn format_ast(file: &SourceFile) -> String {
    let info = SourceInfo {
        text: "",
        comments: &[],
    };
    let bare = SourceFile {
        items: file.items.clone(),
        comments: Vec::new(),
    };
    print(&bare, info)
}

/// A condition on one line, as the formatter prints it (for diagnostics and help texts).
pub fn format_expr(expr: &Expr) -> String {
    let info = SourceInfo {
        text: "",
        comments: &[],
    };
    expr::flat(&expr::expr_frags(expr, &info))
}

/// One action of a `test` block on one line, as the formatter prints it (`expect u1 in b`).
pub fn format_test_action(action: &crate::ast::TestAction) -> String {
    test_block::action(action)
}

/// Prints `file` with the comments and blank lines of `info`.
fn print(file: &SourceFile, info: SourceInfo<'_>) -> String {
    let mut printer = printer::Printer::new(info);
    items::file(&mut printer, file);
    printer.finish()
}
