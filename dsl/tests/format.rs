//! Formatter tests: the canonical layout, comments, and the fixtures under `tests/fixtures`
//! (`messy_X.hog` formats to `X.hog`; every other fixture is already canonical).

mod support;

use std::path::{Path, PathBuf};

use hogsend_dsl::{format, parse};

/// Asserts that `input` formats to `expected`, and that `expected` is a fixed point.
#[track_caller]
fn check_format(input: &str, expected: &str) {
    let formatted = format(input).unwrap_or_else(|e| panic!("{input:?} does not parse: {e:?}"));
    assert_eq!(formatted, expected, "formatting {input:?}");
    let again = format(&formatted).expect("formatted output parses");
    assert_eq!(again, formatted, "not idempotent for {input:?}");
}

/// The formatter's three properties on one input: it formats, idempotently, without changing
/// the meaning or the comments.
#[track_caller]
pub fn check_properties(input: &str) {
    let parsed = parse(input);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let once = format(input).expect("formats");
    let twice = format(&once).expect("formatted output formats");
    assert_eq!(once, twice, "not idempotent");
    let reparsed = parse(&once);
    assert_eq!(reparsed.file.without_spans(), parsed.file.without_spans());
    let texts = |f: &hogsend_dsl::ast::SourceFile| -> Vec<String> {
        f.comments
            .iter()
            .map(|c| c.text.trim_end().to_string())
            .collect()
    };
    assert_eq!(texts(&reparsed.file), texts(&parsed.file));
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hog"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "fixtures missing from {dir:?}");
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[test]
fn canonical_fixtures_are_unchanged_and_messy_ones_format_to_their_twin() {
    for path in fixtures() {
        let source = read(&path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let formatted = format(&source).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let expected = match name.strip_prefix("messy_") {
            Some(twin) => read(&path.with_file_name(twin)),
            None => source.clone(),
        };
        assert_eq!(formatted, expected, "{name}");
    }
}

#[test]
fn fixtures_keep_their_meaning_and_comments() {
    for path in fixtures() {
        check_properties(&read(&path));
    }
}

#[test]
fn the_language_examples_are_canonical_modulo_comment_alignment() {
    // The bucket and journey examples of the language reference as written, with `{ … }` filled in: the only differences the
    // formatter makes are the hand-aligned trailing comments and the double space in
    // `on dwell after 3d  {`.
    let spec = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spec_bucket.hog"));
    let hand_aligned = spec
        .replace(
            "\"Went dormant\" // optional",
            "\"Went dormant\"                 // optional",
        )
        .replace("on dwell after 3d {", "on dwell after 3d  {");
    assert_eq!(format(&hand_aligned).expect("parses"), spec);
}

#[test]
fn bucket_fields_are_aligned_at_column_12() {
    check_format(
        "bucket b { name \"x\" description \"y\" criteria did a entry once per 14d min_dwell 1h max_dwell 30d enabled true }",
        "bucket b {
  name        \"x\"
  description \"y\"
  criteria    did a
  entry       once per 14d
  min_dwell   1h
  max_dwell   30d
  enabled     true
}
",
    );
}

#[test]
fn journey_headers_are_aligned_at_column_8() {
    check_format(
        "journey j { name \"x\" description \"y\" trigger enter b entry unlimited exit when did z send a }",
        "journey j {
  name    \"x\"
  description \"y\"
  trigger enter b
  entry   unlimited
  exit when did z
  send a
}
",
    );
}

#[test]
fn definitions_are_separated_by_one_blank_line() {
    check_format(
        "\n\n\nbucket a {}\n\n\n\njourney b {}bucket c {}\n\n",
        "bucket a {}\n\njourney b {}\n\nbucket c {}\n",
    );
    check_format("", "");
    check_format("\n\n", "");
}

#[test]
fn blank_lines_are_kept_once_and_never_at_block_edges() {
    check_format(
        "journey j {\n\n\n  send a\n\n\n\n  send b\n  send c\n\n}",
        "journey j {\n  send a\n\n  send b\n  send c\n}\n",
    );
    check_format(
        "bucket b {\n  on enter {\n\n    send a\n\n    send b\n\n  }\n}",
        "bucket b {\n  on enter {\n    send a\n\n    send b\n  }\n}\n",
    );
}

#[test]
fn one_step_blocks_go_on_one_line_when_they_fit() {
    check_format(
        "bucket b { on enter {\n send a\n } on leave { if did x { send y } } }",
        "bucket b {
  on enter { send a }
  on leave {
    if did x { send y }
  }
}
",
    );
    // Exactly 100 columns still fits; 101 does not.
    let name = "y".repeat(100 - "  on enter { emit  }".len());
    check_format(
        &format!("bucket b {{ on enter {{ emit {name} }} }}"),
        &format!("bucket b {{\n  on enter {{ emit {name} }}\n}}\n"),
    );
    check_format(
        &format!("bucket b {{ on enter {{ emit {name}z }} }}"),
        &format!("bucket b {{\n  on enter {{\n    emit {name}z\n  }}\n}}\n"),
    );
}

#[test]
fn if_with_else_is_always_multi_line() {
    check_format(
        "journey j { if did a { send x } else if did b {} else { exit } }",
        "journey j {
  if did a {
    send x
  } else if did b {
  } else {
    exit
  }
}
",
    );
}

#[test]
fn all_and_any_blocks_break_when_too_long_or_commented() {
    check_format(
        "bucket b { criteria all { did a did b } and any { did c } }",
        "bucket b {\n  criteria    all { did a did b } and any { did c }\n}\n",
    );
    let long = "e".repeat(40);
    check_format(
        &format!("bucket b {{ criteria all {{ did {long} any {{ did {long} did x }} }} }}"),
        &format!(
            "bucket b {{
  criteria    all {{
    did {long}
    any {{ did {long} did x }}
  }}
}}
"
        ),
    );
    check_format(
        "bucket b { criteria any { did a // why\n did b } and did c }",
        "bucket b {
  criteria    any {
    did a // why
    did b
  } and did c
}
",
    );
}

#[test]
fn spacing_quoting_and_escaping_are_canonical() {
    check_format(
        "bucket b{criteria did \"user.signed_up\"where(event.\"plan\"==\"a\\u{41}\\u{9}\")within 1d12h and contact.\"first name\" in[1,2,]}",
        "bucket b {\n  criteria    did user.signed_up where (event.plan == \"aA\\t\") within 1d12h and contact.\"first name\" in [1, 2]\n}\n",
    );
    check_format(
        "journey j { emit \"$pageview\" wait until 9:00 on mon,tue trigger dwell b.l }",
        "journey j {\n  emit \"$pageview\"\n  wait until 09:00 on mon, tue\n  trigger dwell b.l\n}\n",
    );
    check_format(
        "bucket b { criteria contact.x == -0.50 or count y < -01 min_dwell 01h }",
        "bucket b {\n  criteria    contact.x == -0.50 or count y < -1\n  min_dwell   1h\n}\n",
    );
}

#[test]
fn comments_inside_one_line_constructs_move_above_them() {
    check_format(
        "bucket b {\n  criteria did a // one\n    and did b // two\n}",
        "bucket b {\n  // one\n  criteria    did a and did b // two\n}\n",
    );
    check_format(
        "journey j {\n  if did a { send x } // t\n  else { exit }\n}",
        "journey j {\n  if did a {\n    send x\n    // t\n  } else {\n    exit\n  }\n}\n",
    );
}

#[test]
fn formatting_refuses_files_with_errors() {
    let errors = format("bucket b { criteria }").expect_err("does not parse");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message(), "expected a condition, found `}`");
}

#[test]
fn format_ast_and_format_expr_print_trees_built_in_memory() {
    let parsed = parse("bucket b { // c\n criteria did a and (did b or not did c) }");
    let text = hogsend_dsl::format_ast(&parsed.file);
    assert_eq!(
        text,
        "bucket b {\n  criteria    did a and (did b or not did c)\n}\n"
    );
    let hogsend_dsl::ast::Item::Bucket(b) = &parsed.file.items[0] else {
        panic!("not a bucket")
    };
    let hogsend_dsl::ast::BucketMember::Field(f) = &b.members[0] else {
        panic!("not a field")
    };
    let hogsend_dsl::ast::BucketFieldKind::Criteria(e) = &f.kind else {
        panic!("not criteria")
    };
    assert_eq!(
        hogsend_dsl::format_expr(e),
        "did a and (did b or not did c)"
    );
}

#[test]
fn crlf_and_trailing_whitespace_in_comments_are_normalized() {
    check_format(
        "bucket b {\r\n  criteria did a // c  \r\n}\r\n",
        "bucket b {\n  criteria    did a // c\n}\n",
    );
}

#[test]
fn the_deepest_accepted_nesting_formats() {
    let limit = hogsend_dsl::MAX_NESTING;
    let parens = format!(
        "bucket b {{ criteria {}did a{} }}",
        "(".repeat(limit),
        ")".repeat(limit)
    );
    check_properties(&parens);
    let blocks = format!(
        "bucket b {{ criteria {}did a{} }}",
        "all { not ".repeat(limit / 2),
        " }".repeat(limit / 2)
    );
    check_properties(&blocks);
    let ifs = format!(
        "journey j {{ {}send a{} }}",
        "if did x { ".repeat(limit),
        " }".repeat(limit)
    );
    check_properties(&ifs);
}

#[test]
fn test_blocks_format_idempotently_and_keep_their_meaning() {
    check_format(
        "test \"t\"{contact u1{plan:\"pro\",n:1}\nat 2027-01-04 10:00:00{u1 did a}\nat +8d{expect u1 in b\nexpect u1 not left b because criteria}}",
        "test \"t\" {
  contact u1 { plan: \"pro\", n: 1 }
  at 2027-01-04 10:00 { u1 did a }
  at +8d {
    expect u1 in b
    expect u1 not left b because criteria
  }
}
",
    );
    check_properties(
        "test \"x\" {\n  contact u1\n  // before\n  at 2027-01-04 { u1 set { \"a b\": { c: [1, null] } } } // after\n}\n",
    );
}

#[test]
fn lists_align_their_fields_like_buckets() {
    check_format(
        "list   news{name \"News\"   default unsubscribed\n// why\ndescription \"Monthly\"}\nlist e {   }",
        "list news {\n  name        \"News\"\n  default     unsubscribed\n  // why\n  description \"Monthly\"\n}\n\nlist e {}\n",
    );
    check_properties("list a {\n  name \"A\" // trailing\n  default subscribed\n}\n");
}
