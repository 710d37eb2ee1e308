//! Fuzz target: `parse` never panics and returns in-bounds spans; when a file parses cleanly,
//! `format` succeeds, is idempotent, preserves the meaning of the file and keeps its comments.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    check(source);
});

fn check(source: &str) {
    let parsed = hogsend_dsl::parse(source);
    let in_bounds = |s: hogsend_dsl::Span| {
        s.start <= s.end && source.is_char_boundary(s.start) && source.is_char_boundary(s.end)
    };
    for e in &parsed.errors {
        assert!(in_bounds(e.span), "error span {:?} out of bounds", e.span);
        if let Some((span, _)) = e.secondary() {
            assert!(in_bounds(span), "secondary span {span:?} out of bounds");
        }
        let _ = (e.message(), e.label(), e.help());
    }
    for span in parsed.file.all_spans() {
        assert!(in_bounds(span), "node span {span:?} out of bounds");
    }
    if !parsed.errors.is_empty() {
        assert!(hogsend_dsl::format(source).is_err());
        return;
    }
    let once = hogsend_dsl::format(source).expect("a file that parses formats");
    let reparsed = hogsend_dsl::parse(&once);
    assert!(
        reparsed.errors.is_empty(),
        "formatted output does not parse: {:?}\n{once}",
        reparsed.errors
    );
    assert_eq!(
        reparsed.file.without_spans(),
        parsed.file.without_spans(),
        "formatting changed the meaning:\n{once}"
    );
    let texts = |f: &hogsend_dsl::ast::SourceFile| {
        f.comments
            .iter()
            .map(|c| c.text.trim_end().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        texts(&reparsed.file),
        texts(&parsed.file),
        "comments changed:\n{once}"
    );
    let twice = hogsend_dsl::format(&once).expect("formatted output formats");
    assert_eq!(once, twice, "formatting is not idempotent");
}
