//! The hogsend runtime: applies compiled projects to Postgres and runs them.
//!
//! This crate never parses `.hog`: it receives generated SQL from the compiler and calls the
//! generated functions through [`db`], the one module that knows their names.

pub mod db;
pub mod error;
pub mod migrate;
pub mod pgcluster;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{Error, Result};
