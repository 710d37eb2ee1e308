//! The hogsend language front end: source text → [`ast::SourceFile`], and back (the formatter).
//!
//! This crate knows nothing of SQL, the file system or the clock. Parsing never fails as a
//! whole: it returns the tree it could build plus every error it found, recovering at
//! definition boundaries so one run reports every problem in a file.

pub mod ast;
pub mod span;

pub use span::Span;
