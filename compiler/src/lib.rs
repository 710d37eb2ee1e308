//! The hogsend compiler.

pub mod check;
pub mod config;
pub mod diagnostics;
pub mod ir;
pub mod source;

pub use check::{check_parsed, Checked, ParsedFile};
