//! One module per `hogsend` subcommand. Each has an `Args` (clap) and a
//! `run(args, &Output) -> anyhow::Result<ExitCode>`.

pub mod check;
pub mod compile;
pub mod dev;
pub mod explain;
pub mod fmt;
pub mod import;
pub mod keys;
pub mod migrate;
pub mod plan;
pub mod preview;
pub mod serve;
pub mod test;
pub mod tick;
pub mod why;
