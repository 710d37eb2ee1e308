//! Per-parse state the nom productions share: the source length (to turn remaining input into
//! byte offsets), the errors that do not stop parsing, and the nesting depth.
//!
//! Keeping this in a thread-local lets every production stay a plain
//! `fn(&str) -> IResult<&str, T, PError>` that composes with nom's combinators.
//!
//! **Invariant:** productions only run inside [`with_source`]; outside it offsets are 0.

use std::cell::{Cell, RefCell};

use crate::error::{ParseError, ParseErrorKind};
use crate::span::Span;

thread_local! {
    static SOURCE_LEN: Cell<usize> = const { Cell::new(0) };
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static ERRORS: RefCell<Vec<ParseError>> = const { RefCell::new(Vec::new()) };
    static UNCLOSED_REPORTED_AT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Runs `parse` with the state set up for `source`, and returns its result with every error
/// reported meanwhile (sorted by position, duplicates removed).
pub(crate) fn with_source<T>(source: &str, parse: impl FnOnce() -> T) -> (T, Vec<ParseError>) {
    struct Restore {
        len: usize,
        depth: usize,
        errors: Vec<ParseError>,
        unclosed: Option<usize>,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            SOURCE_LEN.set(self.len);
            DEPTH.set(self.depth);
            UNCLOSED_REPORTED_AT.set(self.unclosed);
            ERRORS.with(|e| *e.borrow_mut() = std::mem::take(&mut self.errors));
        }
    }
    let _restore = Restore {
        len: SOURCE_LEN.replace(source.len()),
        depth: DEPTH.replace(0),
        errors: ERRORS.with(|e| std::mem::take(&mut *e.borrow_mut())),
        unclosed: UNCLOSED_REPORTED_AT.replace(None),
    };
    let result = parse();
    let mut errors = ERRORS.with(|e| std::mem::take(&mut *e.borrow_mut()));
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    errors.dedup();
    (result, errors)
}

/// The byte offset of `rest` (a suffix of the source) in the source.
pub(crate) fn offset(rest: &str) -> usize {
    SOURCE_LEN.get().saturating_sub(rest.len())
}

/// The span from the start of `from` to the start of `to` (both suffixes of the source).
pub(crate) fn span_between(from: &str, to: &str) -> Span {
    Span::new(offset(from), offset(to))
}

/// Records an error that does not stop parsing (a bad escape, an uppercase identifier, …).
pub(crate) fn report(error: ParseError) {
    if let ParseErrorKind::UnclosedDelimiter { .. } = error.kind {
        // A missing `}` deep inside nested blocks leaves every enclosing block unclosed at the
        // same place; only the innermost one is worth reporting.
        if UNCLOSED_REPORTED_AT.get() == Some(error.span.start) {
            return;
        }
        UNCLOSED_REPORTED_AT.set(Some(error.span.start));
    }
    ERRORS.with(|e| e.borrow_mut().push(error));
}

/// Holds one level of nesting; dropping it leaves the level.
pub(crate) struct NestingGuard(());

impl Drop for NestingGuard {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get().saturating_sub(1));
    }
}

/// Enters one level of nesting for the construct at `at`, or fails with
/// [`ParseErrorKind::NestingTooDeep`] beyond [`crate::MAX_NESTING`].
pub(crate) fn enter_nesting(at: Span) -> Result<NestingGuard, ParseError> {
    let depth = DEPTH.get();
    if depth >= crate::MAX_NESTING {
        return Err(ParseError::new(ParseErrorKind::NestingTooDeep, at));
    }
    DEPTH.set(depth + 1);
    Ok(NestingGuard(()))
}
