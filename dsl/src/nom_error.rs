//! The error type every nom production returns, and helpers that build "expected X, found Y".

use nom::error::ErrorKind;
use nom::IResult;

use crate::error::{ParseError, ParseErrorKind};
use crate::span::Span;
use crate::state;
use crate::token::{self, TokenKind};

/// A nom error. Failed attempts are frequent (every optional keyword that is not there), so
/// the common case only records where the parser was and what it wanted; the description of
/// what it found there is built when the error is reported.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PError<'a> {
    /// The parser wanted `what` at `at` (before trivia).
    Expected { at: &'a str, what: Expected },
    /// A finished error.
    Built(ParseError),
}

/// What the parser wanted, cheap to build.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expected {
    /// Human descriptions: "a condition", "`{`".
    List(&'static [&'static str]),
    /// One human description.
    One(&'static str),
    /// A keyword or punctuation, shown in backticks.
    Token(&'static str),
    /// The union of several alternatives.
    Merged(Vec<String>),
}

impl Expected {
    /// The descriptions, as in [`ParseErrorKind::Unexpected`].
    fn descriptions(&self) -> Vec<String> {
        match self {
            Expected::List(list) => list.iter().map(ToString::to_string).collect(),
            Expected::One(s) => vec![s.to_string()],
            Expected::Token(t) => vec![format!("`{t}`")],
            Expected::Merged(list) => list.clone(),
        }
    }
}

/// What every production returns.
pub(crate) type PResult<'a, T> = IResult<&'a str, T, PError<'a>>;

impl<'a> PError<'a> {
    /// The byte offset the error is about (after trivia), to compare alternatives.
    fn position(&self) -> usize {
        match self {
            PError::Expected { at, .. } => state::offset(token::skip_trivia(at).0),
            PError::Built(e) => e.span.start,
        }
    }
}

impl<'a> nom::error::ParseError<&'a str> for PError<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        PError::Expected {
            at: input,
            what: Expected::List(&[]),
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    /// Two alternatives failed: keep the one that got further, and when both stopped at the
    /// same place, merge what they expected.
    fn or(self, other: Self) -> Self {
        let (here, there) = (self.position(), other.position());
        match (self, other) {
            (PError::Expected { at, what }, PError::Expected { what: more, .. })
                if here == there =>
            {
                let mut merged = what.descriptions();
                for e in more.descriptions() {
                    if !merged.contains(&e) {
                        merged.push(e);
                    }
                }
                PError::Expected {
                    at,
                    what: Expected::Merged(merged),
                }
            }
            (mine, theirs) => {
                if there >= here {
                    theirs
                } else {
                    mine
                }
            }
        }
    }
}

/// The error for the token at `i` (after trivia) when the parser wanted one of `expected`.
pub(crate) fn unexpected(i: &str, expected: &[&str]) -> ParseError {
    let (rest, _) = token::skip_trivia(i);
    match token::token_at(rest, false) {
        None => {
            let end = state::offset(rest);
            ParseError::new(
                ParseErrorKind::Unexpected {
                    expected: expected.iter().map(ToString::to_string).collect(),
                    found: "end of file".to_string(),
                },
                Span::new(end, end),
            )
        }
        Some(tok) => {
            let span = state::span_between(tok.at, tok.rest());
            let kind = match tok.kind {
                TokenKind::Invalid(ch) => ParseErrorKind::UnexpectedCharacter { ch },
                _ => ParseErrorKind::Unexpected {
                    expected: expected.iter().map(ToString::to_string).collect(),
                    found: tok.describe(),
                },
            };
            ParseError::new(kind, span)
        }
    }
}

/// Fails (recoverably, so alternatives may be tried) with "expected …, found …" at `i`.
pub(crate) fn expected<'a, T>(i: &'a str, what: &'static [&'static str]) -> PResult<'a, T> {
    Err(nom::Err::Error(PError::Expected {
        at: i,
        what: Expected::List(what),
    }))
}

/// Like [`expected`], for one description given at run time ("a template name").
pub(crate) fn expected_one<'a, T>(i: &'a str, what: &'static str) -> PResult<'a, T> {
    Err(nom::Err::Error(PError::Expected {
        at: i,
        what: Expected::One(what),
    }))
}

/// Like [`expected`], for a keyword or punctuation (shown in backticks).
pub(crate) fn expected_token<'a, T>(i: &'a str, token: &'static str) -> PResult<'a, T> {
    Err(nom::Err::Error(PError::Expected {
        at: i,
        what: Expected::Token(token),
    }))
}

/// Fails for good with `error`.
pub(crate) fn failure<'a, T>(error: ParseError) -> PResult<'a, T> {
    Err(nom::Err::Failure(PError::Built(error)))
}

/// Fails for good at a closing delimiter that is missing: [`ParseErrorKind::UnclosedDelimiter`]
/// at the end of input, "expected …, found …" otherwise.
pub(crate) fn missing_closer<'a, T>(
    i: &'a str,
    open: char,
    open_span: Span,
    what: &[&str],
) -> PResult<'a, T> {
    let (rest, _) = token::skip_trivia(i);
    if rest.is_empty() {
        let end = state::offset(rest);
        failure(ParseError::new(
            ParseErrorKind::UnclosedDelimiter { open, open_span },
            Span::new(end, end),
        ))
    } else {
        failure(unexpected(i, what))
    }
}

/// The [`ParseError`] inside a nom error.
pub(crate) fn into_parse_error(e: nom::Err<PError<'_>>) -> ParseError {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => match e {
            PError::Expected { at, what } => {
                let what = what.descriptions();
                let what: Vec<&str> = what.iter().map(String::as_str).collect();
                unexpected(at, &what)
            }
            PError::Built(e) => e,
        },
        // Every production works on complete input.
        nom::Err::Incomplete(_) => ParseError::new(
            ParseErrorKind::Unexpected {
                expected: vec![],
                found: "end of file".to_string(),
            },
            Span::default(),
        ),
    }
}
