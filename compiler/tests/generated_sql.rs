//! The generated SQL, reviewed like code: the whole file set of `examples/saas` and of every
//! `ok` fixture is snapshotted under `snapshots/` (one text per project, `-- //// path`
//! headers), and compiling twice gives byte-identical output.

use std::path::Path;

use hogsend_compiler::emit::GeneratedFile;
use hogsend_compiler::project;

fn compile(dir: &Path) -> Vec<GeneratedFile> {
    let set = project::load(dir).expect("project loads");
    let compiled = hogsend_compiler::compile(&set);
    compiled
        .files
        .unwrap_or_else(|| panic!("{} has errors", dir.display()))
}

fn as_text(files: &[GeneratedFile]) -> String {
    files
        .iter()
        .map(|f| format!("-- //// {}\n{}", f.path, f.contents))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn example_project_sql() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/saas");
    let files = compile(&dir);
    assert_eq!(
        files,
        compile(&dir),
        "compiling twice must give the same bytes"
    );
    insta::with_settings!({ snapshot_path => "../../snapshots", omit_expression => true }, {
        insta::assert_snapshot!("saas_generated_sql", as_text(&files));
    });
}

#[test]
fn committed_example_sql_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/saas");
    for file in compile(&dir) {
        let committed = std::fs::read_to_string(dir.join("generated").join(&file.path))
            .unwrap_or_else(|_| panic!("examples/saas/generated/{} is missing", file.path));
        assert!(
            committed == file.contents,
            "examples/saas/generated/{} is stale: run `hogsend compile examples/saas`",
            file.path
        );
    }
}
