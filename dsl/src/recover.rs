//! Error recovery: parse the members of a `{ … }` body one by one, and when one is broken,
//! record the error and skip to where the next member starts, so one run reports every error.
//!
//! Skipping works on coarse tokens (see `token`), so strings and comments never confuse it;
//! it tracks braces so a member's own blocks are skipped whole. **Invariant:** every skip
//! consumes at least one token, so recovery always makes progress and parsing stays linear.

use crate::error::{ParseError, ParseErrorKind};
use crate::nom_error::{into_parse_error, unexpected, PResult};
use crate::span::Span;
use crate::state::{self, span_between};
use crate::token::{self, Token, TokenKind, Tokens};

/// What a body holds: which words start a member, and how to name a member in errors.
pub(crate) struct BodyKind {
    /// True for the words that start a member of this body.
    pub is_member_keyword: fn(&str) -> bool,
    /// "a step", or "a bucket field" and "a reaction", …
    pub expected: &'static [&'static str],
}

/// A parsed body: the members that parsed, the rest of the input, and the end offset of the
/// body (after its `}`, or after its last member when it is unclosed).
pub(crate) struct Body<'a, T> {
    pub rest: &'a str,
    pub members: Vec<T>,
    pub end: usize,
}

// body := member* "}"            (the `{` at `open` is already consumed)
/// Parses members up to the `}` closing the body opened at `open`. Never fails: a broken
/// member is reported and skipped; an unclosed body is reported as
/// [`ParseErrorKind::UnclosedDelimiter`] and ends at the end of input or at the next line that
/// starts a definition.
pub(crate) fn body<'a, T>(
    mut i: &'a str,
    open: Span,
    kind: &BodyKind,
    mut member: impl FnMut(&'a str) -> PResult<'a, T>,
) -> Body<'a, T> {
    let mut members = Vec::new();
    let mut end = open.end;
    loop {
        let Some(tok) = token::peek(i) else {
            let eof = state::offset(token::skip_trivia(i).0);
            report_unclosed(open, Span::new(eof, eof));
            return Body {
                rest: token::skip_trivia(i).0,
                members,
                end,
            };
        };
        if tok.is_punct("}") {
            let rest = tok.rest();
            return Body {
                rest,
                members,
                end: state::offset(rest),
            };
        }
        if tok.line_start && is_definition_start(&tok) {
            report_unclosed(open, span_between(tok.at, tok.rest()));
            return Body {
                rest: tok.at,
                members,
                end,
            };
        }
        if tok.kind != TokenKind::Word || !(kind.is_member_keyword)(tok.text) {
            let mut what = kind.expected.to_vec();
            what.push("`}`");
            state::report(unexpected(i, &what));
            i = skip_member(tok.at, kind);
            continue;
        }
        match member(i) {
            Ok((rest, m)) => {
                members.push(m);
                end = state::offset(rest);
                i = rest;
            }
            Err(e) => {
                state::report(into_parse_error(e));
                i = skip_member(tok.at, kind);
            }
        }
    }
}

/// Reports the `{` at `open` as never closed, the closer being expected at `at`.
fn report_unclosed(open: Span, at: Span) {
    state::report(ParseError::new(
        ParseErrorKind::UnclosedDelimiter {
            open: '{',
            open_span: open,
        },
        at,
    ));
}

/// Skips from `from` (the first token of a broken member) to the next member: a line that
/// starts with a member keyword outside the member's own braces, the `}` closing the body, a
/// line that starts a definition, or the end of input.
pub(crate) fn skip_member<'a>(from: &'a str, kind: &BodyKind) -> &'a str {
    let mut depth = 0usize;
    for tok in Tokens::new(from).skip(1) {
        if tok.is_punct("{") {
            depth += 1;
        } else if tok.is_punct("}") {
            if depth == 0 {
                return tok.at;
            }
            depth -= 1;
        } else if tok.line_start
            && tok.kind == TokenKind::Word
            && (is_definition_start(&tok) || (depth == 0 && (kind.is_member_keyword)(tok.text)))
        {
            return tok.at;
        }
    }
    ""
}

/// Skips from `from` (a token that cannot start a definition, or the first token of a
/// definition whose header is broken) to the next `bucket`/`journey` keyword outside braces,
/// or to a line that plainly starts a definition (`bucket ID {`) whatever the braces say.
pub(crate) fn skip_to_definition(from: &str) -> &str {
    let mut depth = 0usize;
    for tok in Tokens::new(from).skip(1) {
        if tok.is_punct("{") {
            depth += 1;
        } else if tok.is_punct("}") {
            depth = depth.saturating_sub(1);
        } else if (is_definition_keyword(&tok) || tok.is_word("test"))
            && (depth == 0 || (tok.line_start && is_definition_start(&tok)))
        {
            return tok.at;
        }
    }
    ""
}

/// True when `tok` is a word that starts a definition with an id (`bucket`, `journey`,
/// `list`, `campaign`); `test` blocks, named by a string, are told apart by the caller.
pub(crate) fn is_definition_keyword(tok: &Token<'_>) -> bool {
    tok.is_word("bucket")
        || tok.is_word("journey")
        || tok.is_word("list")
        || tok.is_word("campaign")
}

/// True when `tok` starts `bucket ID {`, `journey ID {`, `list ID {` or `test "…" {`.
pub(crate) fn is_definition_start(tok: &Token<'_>) -> bool {
    let name = if tok.is_word("test") {
        TokenKind::String
    } else if is_definition_keyword(tok) {
        TokenKind::Word
    } else {
        return false;
    };
    let mut next = Tokens::new(tok.rest());
    matches!(next.next(), Some(t) if t.kind == name)
        && matches!(next.next(), Some(t) if t.is_punct("{"))
}

/// The input at the first `{` on the rest of the current line, if there is one: after a broken
/// definition header, the body can still be parsed for its errors.
pub(crate) fn brace_on_this_line(from: &str) -> Option<&str> {
    Tokens::new(from)
        .take_while(|t| !t.line_start)
        .find(|t| t.is_punct("{"))
        .map(|t| t.at)
}
