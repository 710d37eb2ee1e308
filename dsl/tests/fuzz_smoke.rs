//! A short mutation fuzzer that runs with `cargo test`: the fixtures, damaged by random
//! insertions (bytes and tokens), deletions, duplications, truncations and deep nesting.
//! The parser must not panic and must return in-bounds spans; whenever the damaged text still
//! parses cleanly, the formatter's properties must hold. (The long-running fuzzer is the
//! cargo-fuzz target in `fuzz/`; see FUZZING.md.)

use std::path::Path;

use hogsend_dsl::{format, parse, Span};
use proptest::prelude::*;

/// Pieces worth inserting: punctuation, keywords, and tokens at the edges of the grammar.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "\"",
    "\\",
    "//",
    "\n",
    "\r",
    "\t",
    " ",
    "-",
    "==",
    "!=",
    ">=",
    "<",
    "=",
    "@",
    "$",
    "\0",
    "é",
    "\u{feff}",
    "7d",
    "1d12h",
    "1h1d",
    "3",
    "2.5",
    "09:00",
    "25:00",
    "\\u{1F600}",
    "\\q",
    "bucket x {",
    "journey j {",
    "did",
    "count",
    "not",
    "and",
    "or",
    "all {",
    "any {",
    "where (",
    "within",
    "since entry",
    "contact.",
    "event.",
    "exists",
    "contains",
    "in [",
    "opened",
    "clicked",
    "on enter {",
    "on leave because",
    "on dwell after",
    "every",
    "as",
    "if",
    "else",
    "send a",
    "wait",
    "until",
    ", at most 1d",
    "start",
    "emit",
    "exit",
    "when",
    "trigger",
    "entry once per",
    "criteria",
    "name",
    "min_dwell",
    "enabled",
    "on",
    "weekdays",
    "mon,",
];

/// One way to damage the input.
#[derive(Debug, Clone)]
enum Mutation {
    InsertToken {
        at: usize,
        token: usize,
    },
    InsertByte {
        at: usize,
        byte: u8,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Duplicate {
        at: usize,
        len: usize,
        to: usize,
    },
    Truncate {
        at: usize,
    },
    Nest {
        at: usize,
        opener: usize,
        depth: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::InsertToken { at, token }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::InsertByte { at, byte }),
        3 => (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<usize>(), 1usize..80, any::<usize>()).prop_map(|(at, len, to)| Mutation::Duplicate { at, len, to }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<usize>(), 0usize..4, 1usize..300).prop_map(|(at, opener, depth)| Mutation::Nest { at, opener, depth }),
    ]
}

/// Applies `m` to `bytes` (positions taken modulo the length).
fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match *m {
        Mutation::InsertToken { at, token } => {
            let at = pos(at, bytes.len());
            bytes.splice(at..at, TOKENS[token].bytes());
        }
        Mutation::InsertByte { at, byte } => {
            let at = pos(at, bytes.len());
            bytes.insert(at, byte);
        }
        Mutation::Delete { at, len } => {
            let at = pos(at, bytes.len());
            let end = (at + len).min(bytes.len());
            bytes.drain(at..end);
        }
        Mutation::Duplicate { at, len, to } => {
            let at = pos(at, bytes.len());
            let end = (at + len).min(bytes.len());
            let slice: Vec<u8> = bytes[at..end].to_vec();
            let to = pos(to, bytes.len());
            bytes.splice(to..to, slice);
        }
        Mutation::Truncate { at } => {
            let at = pos(at, bytes.len());
            bytes.truncate(at);
        }
        Mutation::Nest { at, opener, depth } => {
            let opener = ["(", "not ", "all { ", "if did a { "][opener];
            let at = pos(at, bytes.len());
            bytes.splice(at..at, opener.repeat(depth).into_bytes());
        }
    }
}

fn fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hog"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("readable fixture"))
        .collect()
}

/// Everything that must hold for any input.
fn check_any_input(source: &str) -> Result<(), TestCaseError> {
    let parsed = parse(source);
    let in_bounds = |s: Span| {
        s.start <= s.end && source.is_char_boundary(s.start) && source.is_char_boundary(s.end)
    };
    for e in &parsed.errors {
        prop_assert!(in_bounds(e.span), "{:?} for {:?}", e, source);
        if let Some((span, _)) = e.secondary() {
            prop_assert!(in_bounds(span));
        }
        prop_assert!(!e.message().is_empty() && !e.label().is_empty());
    }
    for span in parsed.file.all_spans() {
        prop_assert!(in_bounds(span), "node span {:?} for {:?}", span, source);
    }
    if !parsed.errors.is_empty() {
        prop_assert!(format(source).is_err());
        return Ok(());
    }
    let once = format(source).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    let reparsed = parse(&once);
    prop_assert!(
        reparsed.errors.is_empty(),
        "{:?}\n{}",
        reparsed.errors,
        once
    );
    prop_assert_eq!(reparsed.file.without_spans(), parsed.file.without_spans());
    let texts = |f: &hogsend_dsl::ast::SourceFile| -> Vec<String> {
        f.comments
            .iter()
            .map(|c| c.text.trim_end().to_string())
            .collect()
    };
    prop_assert_eq!(texts(&reparsed.file), texts(&parsed.file));
    let twice = format(&once).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert_eq!(twice, once);
    Ok(())
}

/// 300 cases by default; set `PROPTEST_CASES` for a longer run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn damaged_fixtures_never_break_the_parser(
        which in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let all = fixtures();
        let mut bytes = all[which % all.len()].clone().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_any_input(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn arbitrary_text_never_breaks_the_parser(text in "\\PC{0,200}|[{}()\\[\\],.\" a-z0-9\\n/]{0,200}") {
        check_any_input(&text)?;
    }
}

#[test]
fn huge_inputs_parse_in_reasonable_time() {
    // Linear-time guard: 20k members, 20k broken members, 20k lines of garbage. A quadratic
    // step anywhere would take minutes here.
    let good = "bucket b {\n".to_string()
        + &"  criteria did a and not did b within 7d\n".repeat(20_000)
        + "}\n";
    let bad = "journey j {\n".to_string() + &"  send a b c\n  wait 3\n".repeat(10_000) + "}\n";
    let garbage = "} ) ] @ \" x\n".repeat(20_000);
    for input in [good, bad, garbage] {
        let started = std::time::Instant::now();
        let parsed = parse(&input);
        assert!(parsed.file.items.len() <= 1);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_comment_anywhere_survives_formatting() {
    // Systematic rather than random: a comment (own-line or trailing) at every character
    // boundary of two fixtures; every placement that still parses must format stably.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut checked = 0;
    for name in ["everything.hog", "messy_comments.hog"] {
        let source = std::fs::read_to_string(dir.join(name)).expect("readable fixture");
        for at in (0..=source.len()).filter(|&at| source.is_char_boundary(at)) {
            let comment = if at % 2 == 0 { "// x\n" } else { "\n// y\n\n" };
            let text = format!("{}{comment}{}", &source[..at], &source[at..]);
            if parse(&text).errors.is_empty() {
                check_any_input(&text).unwrap_or_else(|e| panic!("at {at} in {name}: {e}"));
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "only {checked} placements parsed");
}
