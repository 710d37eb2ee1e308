//! The error type every nom production returns, and helpers that build "expected X, found Y".

use nom::error::ErrorKind;
use nom::IResult;

use crate::error::{ParseError, ParseErrorKind};
use crate::span::Span;
use crate::state;
use crate::token::{self, TokenKind};

/// A nom error carrying one of our [`ParseError`]s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PError(pub ParseError);

/// What every production returns.
pub(crate) type PResult<'a, T> = IResult<&'a str, T, PError>;

impl<'a> nom::error::ParseError<&'a str> for PError {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        PError(unexpected(input, &[]))
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }

    /// Two alternatives failed: keep the one that got further, and when both stopped at the
    /// same token, merge what they expected.
    fn or(self, other: Self) -> Self {
        match (self.0.kind, other.0.kind) {
            (
                ParseErrorKind::Unexpected {
                    mut expected,
                    found,
                },
                ParseErrorKind::Unexpected {
                    expected: more,
                    found: _,
                },
            ) if self.0.span == other.0.span => {
                for e in more {
                    if !expected.contains(&e) {
                        expected.push(e);
                    }
                }
                PError(ParseError::new(
                    ParseErrorKind::Unexpected { expected, found },
                    self.0.span,
                ))
            }
            (kind, other_kind) => {
                if other.0.span.start >= self.0.span.start {
                    PError(ParseError::new(other_kind, other.0.span))
                } else {
                    PError(ParseError::new(kind, self.0.span))
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
                    expected: expected.iter().map(|e| e.to_string()).collect(),
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
                    expected: expected.iter().map(|e| e.to_string()).collect(),
                    found: tok.describe(),
                },
            };
            ParseError::new(kind, span)
        }
    }
}

/// Fails (recoverably, so alternatives may be tried) with "expected …, found …" at `i`.
pub(crate) fn expected<'a, T>(i: &'a str, what: &[&str]) -> PResult<'a, T> {
    Err(nom::Err::Error(PError(unexpected(i, what))))
}

/// Fails for good with `error`.
pub(crate) fn failure<'a, T>(error: ParseError) -> PResult<'a, T> {
    Err(nom::Err::Failure(PError(error)))
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
pub(crate) fn into_parse_error(e: nom::Err<PError>) -> ParseError {
    match e {
        nom::Err::Error(PError(e)) | nom::Err::Failure(PError(e)) => e,
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
