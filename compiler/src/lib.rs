//! The hogsend compiler: checked `.hog` sources → typed IR (and, in a later stage, SQL).
//!
//! ```text
//!   SourceSet (files read by the binary)
//!       │  parse::parse_file      (hogsend_dsl::parse on each file; E01xx)
//!       ▼
//!   ast::SourceFile + parse diagnostics
//!       │  check::check_parsed    (names, references, semantics; E02xx, E03xx, W01xx)
//!       ▼                         config::load (hogsend.toml; E04xx)
//!   Checked { program: Option<ir::Program>, diagnostics, config }
//!       │  plan / emit            (later stage: SQL plan, generated files)
//!       ▼
//!   generated/*.sql
//! ```
//!
//! **Invariant:** this crate does no IO and reads no clock: the binary reads files into a
//! [`source::SourceSet`] and prints what [`diagnostics`] renders into strings.

pub mod check;
pub mod config;
pub mod diagnostics;
pub mod emit;
pub mod ir;
pub mod parse;
pub mod plan;
pub mod source;

pub use check::{check_parsed, Checked, ParsedFile};

/// Parses and checks a whole project: every `.hog` file, the templates and `hogsend.toml`.
pub fn check(set: &source::SourceSet) -> Checked {
    let parsed: Vec<ParsedFile> = set.files.iter().map(parse::parse_file).collect();
    check_parsed(set, &parsed)
}
