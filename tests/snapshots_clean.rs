//! Snapshot hygiene: `snapshots/` holds no pending snapshot (`.snap.new`, `.pending-snap`)
//! and no snapshot that no test produces. `.ci/run` additionally runs
//! `cargo insta test --unreferenced=reject`; this test needs no extra tool.

use std::path::{Path, PathBuf};

fn snapshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots")
}

/// The value of a `key: value` line of a snapshot's header.
fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .skip(1)
        .take_while(|l| *l != "---")
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().trim_matches('"')))
}

#[test]
fn no_pending_or_unreferenced_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
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
        // Every snapshot names the test file that asserts it; a glob snapshot also names
        // its input file. A named snapshot is referenced when its test file still asserts
        // that name; a glob snapshot when its input still exists.
        let source = header(&text, "source:").map(|s| root.join(s));
        let referenced = match (header(&text, "input_file:"), source) {
            (Some(input), _) => root.join(input).exists(),
            (None, Some(source)) => {
                // The stem is `<module path>__<name>`, the module path itself `__`-joined
                // (`hogsend__commands__why__tests__why_human_tree`): any `__`-suffix may be
                // the name.
                let names: Vec<&str> = stem
                    .match_indices("__")
                    .map(|(i, _)| &stem[i + 2..])
                    .collect();
                std::fs::read_to_string(&source).is_ok_and(|code| {
                    names
                        .iter()
                        .any(|name| code.contains(&format!("\"{name}\"")))
                })
            }
            (None, None) => false,
        };
        if !referenced {
            problems.push(format!("unreferenced snapshot {name}: delete it"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
