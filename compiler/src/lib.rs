//! The hogsend compiler.

pub mod ir;
