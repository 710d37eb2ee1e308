//! The generated SQL, reviewed like code: the whole file set of `examples/saas` and of every
//! `ok` fixture is snapshotted under `snapshots/` (one text per project, `-- //// path`
//! headers), compiling twice gives byte-identical output, and the committed `generated/`
//! directories of `examples/saas` and `examples/journeys` match a fresh compile.

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
    for example in ["saas", "journeys"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(example);
        let files = compile(&dir);
        for file in &files {
            let committed = std::fs::read_to_string(dir.join("generated").join(&file.path))
                .unwrap_or_else(|_| {
                    panic!("examples/{example}/generated/{} is missing", file.path)
                });
            assert!(
                committed == file.contents,
                "examples/{example}/generated/{} is stale: run `hogsend compile examples/{example}`",
                file.path
            );
        }
        // No file left over from a definition that is gone.
        let mut on_disk = Vec::new();
        collect_sql(&dir.join("generated"), &dir.join("generated"), &mut on_disk);
        let mut expected: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        expected.sort();
        on_disk.sort();
        assert_eq!(
            on_disk, expected,
            "examples/{example}/generated/ holds other files: run `hogsend compile examples/{example}`"
        );
    }
}

/// The `.sql` files under `dir`, as paths relative to `root` with `/` separators.
fn collect_sql(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("generated/ is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            collect_sql(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "sql") {
            let rel = path.strip_prefix(root).expect("under root");
            let parts: Vec<_> = rel.iter().map(|p| p.to_string_lossy()).collect();
            out.push(parts.join("/"));
        }
    }
}
