//! One module per `hogsend` subcommand. Each has an `Args` (clap) and a
//! `run(args, Output) -> anyhow::Result<ExitCode>`.

pub(crate) mod check;
pub(crate) mod compile;
pub(crate) mod dev;
pub(crate) mod explain;
pub(crate) mod fmt;
pub(crate) mod import;
pub(crate) mod keys;
pub(crate) mod migrate;
pub(crate) mod plan;
pub(crate) mod preview;
pub(crate) mod serve;
pub(crate) mod test;
pub(crate) mod tick;
pub(crate) mod why;
