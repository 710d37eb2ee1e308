//! The hogsend compiler.

pub mod config;
pub mod diagnostics;
pub mod ir;
pub mod source;
