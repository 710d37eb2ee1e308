//! The `hogsend-bench` binary as a user runs it (the engine suite needs a Postgres server and
//! minutes; `.ci/run` runs it at a tiny size).

use std::path::Path;
use std::process::Command;

fn bench(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hogsend-bench"));
    cmd.args(args);
    cmd
}

/// The generator writes a project that checks cleanly (the command fails otherwise), and
/// the old subcommand name still works.
#[test]
fn check_generates_a_project_that_checks() {
    for name in ["check", "bench-check"] {
        let dir = tempfile::tempdir().unwrap();
        let out = bench(&[
            name,
            "--buckets",
            "30",
            "--journeys",
            "8",
            "--files",
            "4",
            "--runs",
            "1",
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("generated 30 buckets and 8 journeys"),
            "{stdout}"
        );
        assert!(
            stdout.contains("check (load + parse + check), 1 runs"),
            "{stdout}"
        );
        assert!(Path::new(&dir.path().join("hogsend.toml")).exists());
        assert!(dir.path().join("defs/part_000.hog").exists());
    }
}

/// The help lists both benchmarks.
#[test]
fn help_lists_the_benchmarks() {
    let out = bench(&["--help"]).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("engine"), "{stdout}");
    assert!(stdout.contains("check"), "{stdout}");
}
