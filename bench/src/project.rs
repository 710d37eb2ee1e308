//! The projects the benchmark compiles: the standard 20-bucket project (`standard.hog`)
//! that every database phase runs, and a generated 1,000-bucket project whose compile time
//! is measured. Both go through `hogsend_compiler::compile`, exactly like a user's project.

use std::time::Instant;

use anyhow::{bail, Result};
use hogsend_compiler::emit::GeneratedFile;
use hogsend_compiler::ir::Program;
use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};

use crate::check_bench;
use crate::measure::Samples;

/// The schema the benchmark migrates the standard project into.
pub(crate) const SCHEMA: &str = "hogsend";

/// The standard project's text.
pub(crate) const STANDARD_HOG: &str = include_str!("standard.hog");

/// The templates `standard.hog` sends.
const STANDARD_TEMPLATES: &[&str] = &[
    "dormant_nudge",
    "invite_your_team",
    "power_user_welcome",
    "vip_thank_you",
    "welcome",
];

/// A compiled project: its checked program (the baseline and the floor read its criteria)
/// and the generated files `migrate` applies.
pub(crate) struct CompiledProject {
    pub program: Program,
    pub files: Vec<GeneratedFile>,
}

fn template(id: &str) -> TemplateSource {
    TemplateSource {
        id: id.to_owned(),
        html: Some(SourceFile::new(
            format!("templates/{id}.html"),
            format!("---\nsubject: {id}\ncategory: transactional\n---\n<p>Hello {{{{ contact.email }}}}</p>\n"),
        )),
        text: None,
    }
}

/// The standard project as the project loader would read it.
pub(crate) fn standard_source() -> SourceSet {
    SourceSet {
        files: vec![SourceFile::new("buckets/standard.hog", STANDARD_HOG)],
        templates: STANDARD_TEMPLATES.iter().map(|id| template(id)).collect(),
        config: None,
    }
}

/// Compiles a project; an error (with the first diagnostic) when it does not compile.
pub(crate) fn compile(set: &SourceSet) -> Result<CompiledProject> {
    let compiled = hogsend_compiler::compile(set);
    match (compiled.files, compiled.checked.program) {
        (Some(files), Some(program)) => Ok(CompiledProject { program, files }),
        _ => bail!(
            "the benchmark project does not compile: {}",
            compiled
                .checked
                .diagnostics
                .first()
                .map(|d| d.message.clone())
                .unwrap_or_default()
        ),
    }
}

/// The generated 1,000-bucket project (the same generator as `hogsend-bench check`), in
/// memory: `.hog` files, templates and `hogsend.toml`.
pub(crate) fn large_source(buckets: usize) -> SourceSet {
    check_bench::source_set(check_bench::generate(buckets, 0, 100))
}

/// Times `compile` (check + plan + emit, in process, sources already in memory) of a
/// generated project of `buckets` buckets, `runs` times. Returns the timings, the number of
/// generated files and their total size in bytes.
pub(crate) fn time_compile(buckets: usize, runs: usize) -> Result<(Samples, usize, usize)> {
    let set = large_source(buckets);
    let mut samples = Samples::default();
    let mut shape = (0, 0);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let compiled = compile(&set)?;
        samples.push(start.elapsed());
        shape = (
            compiled.files.len(),
            compiled.files.iter().map(|f| f.contents.len()).sum(),
        );
    }
    Ok((samples, shape.0, shape.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_project_compiles_to_twenty_buckets() {
        let project = compile(&standard_source()).expect("compiles");
        assert_eq!(project.program.buckets.len(), 20);
    }

    #[test]
    fn the_large_project_compiles() {
        let (samples, files, _) = time_compile(50, 1).expect("compiles");
        assert_eq!(samples.runs(), 1);
        assert!(files > 50);
    }
}
