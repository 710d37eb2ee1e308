//! The hogsend compiler.

pub mod emit;
pub mod ir;
pub mod plan;
