//! Snapshot hygiene: `snapshots/` holds no pending snapshot (`.snap.new`, `.pending-snap`)
//! and no snapshot that no test produces. `.ci/run` additionally runs
//! `cargo insta test --unreferenced=reject`; this test needs no extra tool.

use std::path::{Path, PathBuf};

fn snapshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots")
}

#[test]
fn no_pending_or_unreferenced_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cli_tests = std::fs::read_to_string(root.join("tests/cli.rs")).unwrap();
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(snapshots_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".snap.new") || name.ends_with(".pending-snap") {
            problems.push(format!(
                "pending snapshot {name}: review it with `cargo insta review`"
            ));
            continue;
        }
        let Some(stem) = name.strip_suffix(".snap") else {
            problems.push(format!("unexpected file {name} in snapshots/"));
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let referenced = if let Some(cli) = stem.strip_prefix("cli__") {
            cli_tests.contains(&format!("\"{cli}\""))
        } else if stem.starts_with("fixtures__") {
            // Glob snapshots name their input file in the header.
            text.lines()
                .find_map(|l| l.strip_prefix("input_file: "))
                .is_some_and(|input| root.join(input).exists())
        } else {
            false
        };
        if !referenced {
            problems.push(format!("unreferenced snapshot {name}: delete it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
