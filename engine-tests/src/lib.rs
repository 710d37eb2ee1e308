//! Helpers of the engine tests (`tests/`): what needs the compiler. The runtime's test kit
//! (`hogsend_runtime::testkit`) provides databases and daemons; this crate compiles the
//! projects they run.

use hogsend_compiler::source::{SourceFile, SourceSet};
use hogsend_schema::GeneratedFile;

/// Compiles `.hog` source text (one file) into the generated SQL files, for tests that run a
/// daemon on a small project. Panics on a project with errors.
pub fn compile(hog: &str) -> Vec<GeneratedFile> {
    let set = SourceSet {
        files: vec![SourceFile::new("test.hog", hog)],
        ..Default::default()
    };
    let compiled = hogsend_compiler::compile(&set);
    match compiled.files {
        Some(files) => files,
        None => panic!(
            "test project has errors: {:#?}",
            compiled.checked.diagnostics
        ),
    }
}
