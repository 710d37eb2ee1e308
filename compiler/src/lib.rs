//! The hogsend compiler: checked `.hog` sources → typed IR (and, in a later stage, SQL).
//!
//! ```text
//!   SourceSet (files read by the binary)
//!       │  parse::parse_file      (hogsend_dsl::parse on each file; E01xx)
//!       ▼
//!   ast::SourceFile + parse diagnostics
//!       │  check::check_parsed    (names, references, semantics; E02xx, E03xx, W01xx;
//!       │                          the empty-contact rule through eval, the reference
//!       │                          evaluator of the IR)
//!       ▼                         config::load (hogsend.toml; E04xx)
//!   Checked { program: Option<ir::Program>, diagnostics, config }
//!       │  plan::plan             (criteria → typed SQL statements, fingerprints, registry)
//!       ▼
//!   plan::ProjectPlan
//!       │  emit::emit             (askama templates → deterministic files)
//!       ▼
//!   Vec<GeneratedFile>  →  generated/*.sql (written by the binary)
//! ```
//!
//! **Invariant:** this crate reads no clock, and does no IO outside [`project::load`], which
//! reads a project directory into a [`source::SourceSet`]; checking, planning and emitting
//! take values and return values, and the binary prints what [`diagnostics`] renders into
//! strings.

pub mod check;
pub mod config;
pub mod diagnostics;
pub mod emit;
pub mod eval;
pub mod ir;
pub mod parse;
pub mod plan;
pub mod project;
pub mod source;
pub mod test_suite;
pub use hogsend_schema::sql_keywords;

pub use check::{check_parsed, Checked, ParsedFile};

/// Parses and checks a whole project: every `.hog` file, the templates and `hogsend.toml`.
pub fn check(set: &source::SourceSet) -> Checked {
    let parsed: Vec<ParsedFile> = set.files.iter().map(parse::parse_file).collect();
    check_parsed(set, &parsed)
}

/// A compiled project: the check result and, when it has no error, the generated files.
#[derive(Debug)]
pub struct Compiled {
    pub checked: Checked,
    /// The generated SQL files, sorted by path; `None` when the project has errors.
    pub files: Option<Vec<emit::GeneratedFile>>,
}

/// The whole pipeline: check, plan for the configured schema, emit.
pub fn compile(set: &source::SourceSet) -> Compiled {
    let checked = check(set);
    let files = checked.program.as_ref().map(|program| {
        let options = plan::PlanOptions {
            schema: checked.config.database.schema.as_str().to_owned(),
            timezone: checked.config.project.timezone.clone(),
            trigger_max_age: checked.config.journeys.trigger_max_age,
        };
        emit::emit(&plan::plan(program, &options))
    });
    Compiled { checked, files }
}
