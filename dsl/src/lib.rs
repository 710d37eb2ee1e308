//! The hogsend language front end: source text → [`ast::SourceFile`], and back (the formatter).
//!
//! This crate knows nothing of SQL, the file system or the clock. Parsing never fails as a
//! whole: it returns the tree it could build plus every error it found, recovering at
//! member and definition boundaries so one run reports every problem in a file.
//!
//! Code map:
//! - `token`, `lexical`, `names`: the lexical layer (trivia, words, strings, numbers,
//!   durations, event names, property paths).
//! - `expr`: conditions; `step`: journey steps and blocks; `bucket`, `journey`: definition
//!   bodies; `test_block` (tree in `test_ast`): `test` blocks; `source_file`: the top level.
//! - `recover`: member-level and definition-level error recovery; `state`: per-parse state
//!   (offsets, reported errors, nesting depth); `nom_error`: the nom error type.
//! - [`error`]: the public error data; [`mod@format`]: the formatter; [`text`]: the
//!   canonical text of leaves (strings, names, durations), shared with the compiler; `normalize`:
//!   [`ast::SourceFile::without_spans`].
//!
//! **Invariant:** [`parse`] never panics, never loops, and takes time linear in its input.

pub mod ast;
mod bucket;
mod campaign;
pub mod error;
mod expr;
pub mod format;
mod journey;
mod lexical;
mod list;
mod names;
mod nom_error;
mod normalize;
mod recover;
mod source_file;
pub mod span;
mod state;
mod step;
mod test_ast;
mod test_block;
pub mod text;
mod token;

pub use error::{DurationProblem, IdentProblem, NumberProblem, ParseError, ParseErrorKind};
pub use format::{format, format_ast, format_expr, format_test_action};
pub use lexical::MAX_IDENT_LEN;
pub use span::Span;

/// The deepest nesting of parentheses, `all`/`any`, `not`, filters and blocks the parser
/// accepts; deeper input is a [`ParseErrorKind::NestingTooDeep`] error, never a stack overflow.
pub const MAX_NESTING: usize = 64;

/// The result of parsing one file: the tree that could be built, and every error found.
/// When `errors` is empty, `file` is exactly what the source says.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseResult {
    pub file: ast::SourceFile,
    /// Sorted by position.
    pub errors: Vec<ParseError>,
}

/// Parses one `.hog` file. Never panics and never fails as a whole: definitions with broken
/// headers are left out, broken members are left out of their definition, and every problem
/// is listed in `errors`.
pub fn parse(source: &str) -> ParseResult {
    // A byte-order mark is allowed at the very start, and only there.
    let body_start = if source.starts_with('\u{feff}') { 3 } else { 0 };
    let (items, errors) =
        state::with_source(source, || source_file::source_file(&source[body_start..]));
    let comments = token::comments(source, body_start);
    ParseResult {
        file: ast::SourceFile { items, comments },
        errors,
    }
}
