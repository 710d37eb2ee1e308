//! Robustness: no input makes `check` (parse, check, render) panic. Inputs are the fixture
//! files mutated at random: bytes deleted, duplicated, replaced or spliced from other
//! fixtures, so most runs get deep into the checker with a partly broken tree.

use std::path::Path;

use hogsend_compiler::diagnostics::{render_human, render_json};
use hogsend_compiler::source::{SourceFile, SourceSet};
use proptest::prelude::*;

fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "hog") {
                out.push(std::fs::read_to_string(path).unwrap());
            }
        }
    }
    out.sort();
    out
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Duplicate(usize, usize),
    Replace(usize, u8),
    Splice(usize, usize, usize),
}

fn apply(text: &str, other: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for e in edits {
        let n = bytes.len().max(1);
        match *e {
            Edit::Delete(at, len) => {
                let at = at % n;
                let end = (at + len % 16).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Duplicate(at, len) => {
                let at = at % n;
                let end = (at + len % 64).min(bytes.len());
                let chunk: Vec<u8> = bytes.get(at..end).unwrap_or_default().to_vec();
                let pos = end.min(bytes.len());
                bytes.splice(pos..pos, chunk);
            }
            Edit::Replace(at, b) => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    const ALPHABET: &[u8] = b"{}()[]\"\\ \n.:,-0123456789aeznotdwc";
                    bytes[at] = ALPHABET[b as usize % ALPHABET.len()];
                }
            }
            Edit::Splice(at, from, len) => {
                let o = other.as_bytes();
                if !o.is_empty() {
                    let from = from % o.len();
                    let end = (from + len % 80).min(o.len());
                    let at = (at % n).min(bytes.len());
                    bytes.splice(at..at, o[from..end].iter().copied());
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Delete(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Duplicate(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Replace(a, b)),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(a, b, c)| Edit::Splice(a, b, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn check_never_panics_on_mutated_fixtures(
        pick in any::<usize>(),
        other in any::<usize>(),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let corpus = corpus();
        let text = apply(&corpus[pick % corpus.len()], &corpus[other % corpus.len()], &edits);
        let set = SourceSet::from_files([
            SourceFile::new("a.hog", text.clone()),
            SourceFile::new("b.hog", corpus[other % corpus.len()].clone()),
        ])
        .with_templates(["welcome", "nudge", "thanks"]);
        let checked = hogsend_compiler::check(&set);
        render_human(&checked.diagnostics, &set, true);
        render_json(&checked.diagnostics, &set);
        // A checked program exists exactly when there is no error.
        prop_assert_eq!(
            checked.program.is_some(),
            !checked.diagnostics.iter().any(hogsend_compiler::diagnostics::Diagnostic::is_error)
        );
    }
}
