//! The command line, end to end: exit code, stdout and stderr of `hogsend` runs,
//! snapshotted with `insta_cmd` under `snapshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use insta_cmd::{assert_cmd_snapshot, get_cargo_bin};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `hogsend ARGS` run from the repository root, with colour decided by flags only.
fn hogsend(args: &[&str]) -> Command {
    let mut cmd = Command::new(get_cargo_bin("hogsend"));
    cmd.current_dir(root()).args(args).env_remove("NO_COLOR");
    cmd
}

macro_rules! snapshot {
    ($name:literal, $cmd:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots", omit_expression => true }, {
            assert_cmd_snapshot!($name, $cmd);
        })
    };
}

#[test]
fn check_the_example_project() {
    snapshot!("check_ok", hogsend(&["check", "examples/saas"]));
}

#[test]
fn check_reports_errors_and_warnings() {
    snapshot!("check_errors", hogsend(&["check", "tests/cli/errors"]));
}

#[test]
fn check_color_never_and_always() {
    snapshot!(
        "check_color_never",
        hogsend(&["check", "--color", "never", "tests/cli/errors"])
    );
    snapshot!(
        "check_color_always",
        hogsend(&["check", "--color", "always", "tests/cli/errors"])
    );
}

#[test]
fn check_json() {
    snapshot!(
        "check_json",
        hogsend(&["--format", "json", "check", "tests/cli/errors"])
    );
}

#[test]
fn check_warnings_pass_unless_warnings_as_errors() {
    snapshot!("check_warnings", hogsend(&["check", "tests/cli/warnings"]));
    snapshot!(
        "check_warnings_as_errors",
        hogsend(&["check", "--warnings-as-errors", "tests/cli/warnings"])
    );
}

#[test]
fn check_bad_config() {
    snapshot!(
        "check_bad_config_key",
        hogsend(&["check", "tests/cli/bad_config_key"])
    );
    snapshot!(
        "check_bad_config_value",
        hogsend(&["check", "tests/cli/bad_config_value"])
    );
}

#[test]
fn check_missing_directory() {
    snapshot!(
        "check_missing_directory",
        hogsend(&["check", "tests/cli/does_not_exist"])
    );
}

#[test]
fn fmt_check() {
    snapshot!(
        "fmt_check_clean",
        hogsend(&["fmt", "--check", "tests/cli/formatted"])
    );
    snapshot!(
        "fmt_check_would_change",
        hogsend(&["fmt", "--check", "tests/cli/unformatted"])
    );
    snapshot!(
        "fmt_check_parse_error",
        hogsend(&["fmt", "--check", "tests/cli/broken"])
    );
}

#[test]
fn fmt_writes_files_in_place_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let messy = root().join("tests/cli/unformatted/messy.hog");
    let target = dir.path().join("messy.hog");
    std::fs::copy(&messy, &target).unwrap();
    let first = hogsend(&["fmt", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(first.status.success(), "{first:?}");
    assert_eq!(
        String::from_utf8_lossy(&first.stdout),
        "reformatted messy.hog\n1 file reformatted\n"
    );
    let formatted = std::fs::read_to_string(&target).unwrap();
    assert_eq!(
        formatted,
        std::fs::read_to_string(root().join("tests/cli/formatted/tidy.hog")).unwrap()
    );
    let second = hogsend(&["fmt", "--check", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(second.status.success(), "{second:?}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), formatted);
}

#[test]
fn explain() {
    snapshot!("explain_known", hogsend(&["explain", "E0301"]));
    snapshot!("explain_lowercase", hogsend(&["explain", "w0101"]));
    snapshot!("explain_unknown", hogsend(&["explain", "E9999"]));
    snapshot!("explain_list", hogsend(&["explain"]));
}

#[test]
fn help() {
    snapshot!("help", hogsend(&["--help"]));
}

/// The loader reads every `.hog` file recursively but skips dot directories and the
/// root's `generated/` and `target/`.
#[test]
fn check_skips_generated_target_and_dot_directories() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("a/b/deep.hog", "bucket deep {\n  criteria did x\n}\n");
    for skipped in [
        "generated/x.hog",
        "target/y.hog",
        ".git/z.hog",
        "a/.cache/w.hog",
    ] {
        write(skipped, "this is not hog {");
    }
    let out = hogsend(&["check", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "checked 1 file: 1 bucket, 0 journeys, 0 lists, 0 campaigns, 0 templates\n"
    );
}

/// A copy of the example project in a temporary directory, to compile into.
fn example_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root().join("examples/saas"), tmp.path());
    let _ = std::fs::remove_dir_all(tmp.path().join("generated"));
    tmp
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// `hogsend ARGS` run inside `dir`.
fn hogsend_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(get_cargo_bin("hogsend"));
    cmd.current_dir(dir).args(args).env_remove("NO_COLOR");
    cmd
}

#[test]
fn compile_then_check_is_clean() {
    let tmp = example_copy();
    snapshot!("compile_writes", hogsend_in(tmp.path(), &["compile"]));
    snapshot!(
        "compile_check_clean",
        hogsend_in(tmp.path(), &["compile", "--check"])
    );
}

#[test]
fn compile_check_names_stale_missing_and_leftover_files() {
    let tmp = example_copy();
    snapshot!(
        "compile_check_missing",
        hogsend_in(tmp.path(), &["compile", "--check"])
    );
    assert!(hogsend_in(tmp.path(), &["compile"])
        .status()
        .unwrap()
        .success());
    let generated = tmp.path().join("generated");
    let stale = generated.join("buckets/went_dormant.sql");
    let text = std::fs::read_to_string(&stale).unwrap();
    std::fs::write(&stale, text.replace("within 7d", "within 8d")).unwrap();
    std::fs::remove_file(generated.join("tick.sql")).unwrap();
    std::fs::write(generated.join("buckets/old_bucket.sql"), "-- gone\n").unwrap();
    snapshot!(
        "compile_check_stale",
        hogsend_in(tmp.path(), &["compile", "--check", "--diff"])
    );
    // compiling again repairs everything and removes the leftover
    assert!(hogsend_in(tmp.path(), &["compile"])
        .status()
        .unwrap()
        .success());
    assert!(!generated.join("buckets/old_bucket.sql").exists());
    assert!(hogsend_in(tmp.path(), &["compile", "--check"])
        .status()
        .unwrap()
        .success());
}

#[test]
fn compile_refuses_a_project_with_errors() {
    snapshot!(
        "compile_errors",
        hogsend(&["compile", "--check", "tests/cli/errors"])
    );
}

#[test]
fn preview_renders_a_template_without_a_database() {
    snapshot!(
        "preview_props",
        hogsend(&[
            "preview",
            "tips_1",
            "examples/saas",
            "--props",
            r#"{"first_name": "Ada <& co>", "email": "ada@x.test"}"#,
        ])
    );
    snapshot!(
        "preview_unknown_template",
        hogsend(&["preview", "tips_one", "examples/saas"])
    );
    snapshot!(
        "preview_bad_props",
        hogsend(&["preview", "tips_1", "examples/saas", "--props", "[1]"])
    );
}
