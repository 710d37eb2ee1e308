//! The `hogsend` command line: a thin edge over the compiler and the runtime.

fn main() {}
