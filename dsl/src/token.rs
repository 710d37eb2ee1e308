//! A tiny tokenizer over the source: whitespace and comments, and the shape of the next token.
//!
//! The productions do their own precise lexing; this module answers the coarse questions
//! around them: "what did the parser find here?" (for error messages) and "where does the next
//! member start?" (for recovery). It follows the same lexical rules as the productions (a
//! string ends at its closing quote or at the end of its line), so comments found here are the
//! comments the parser skipped.

use crate::state;

/// The coarse kind of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// `[A-Za-z_][A-Za-z0-9_]*`
    Word,
    /// `-?[0-9][A-Za-z0-9_.:]*`: numbers, durations, times of day.
    Number,
    /// `"…"` (possibly unterminated).
    String,
    /// `{ } ( ) [ ] , . == != >= <= > <`
    Punct,
    /// A character that cannot start a token.
    Invalid(char),
}

/// One token: its kind, its text, and the input from its first byte on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    pub text: &'a str,
    /// The input starting at this token.
    pub at: &'a str,
    /// A newline (or the start of the input) separates this token from the previous one.
    pub line_start: bool,
}

impl<'a> Token<'a> {
    /// The input right after this token.
    pub(crate) fn rest(&self) -> &'a str {
        &self.at[self.text.len()..]
    }

    /// True for the word `w`.
    pub(crate) fn is_word(&self, w: &str) -> bool {
        self.kind == TokenKind::Word && self.text == w
    }

    /// True for the punctuation `p`.
    pub(crate) fn is_punct(&self, p: &str) -> bool {
        self.kind == TokenKind::Punct && self.text == p
    }

    /// How an error message names this token: "`{`", "identifier `foo`", "a string".
    pub(crate) fn describe(&self) -> String {
        match self.kind {
            TokenKind::Word if is_keyword(self.text) => format!("`{}`", self.text),
            TokenKind::Word => format!("identifier `{}`", shorten(self.text)),
            TokenKind::Number => format!("`{}`", shorten(self.text)),
            TokenKind::String => "a string".to_string(),
            TokenKind::Punct => format!("`{}`", self.text),
            TokenKind::Invalid(ch) => format!("character {ch:?}"),
        }
    }
}

/// Shortens long token text for messages.
fn shorten(text: &str) -> String {
    if text.chars().count() > 32 {
        let head: String = text.chars().take(30).collect();
        format!("{head}…")
    } else {
        text.to_string()
    }
}

/// Every word that is a keyword somewhere in the language (keywords are contextual).
pub(crate) fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "bucket"
            | "journey"
            | "list"
            | "default"
            | "subscribed"
            | "unsubscribed"
            | "name"
            | "description"
            | "criteria"
            | "entry"
            | "unlimited"
            | "once"
            | "per"
            | "min_dwell"
            | "max_dwell"
            | "enabled"
            | "true"
            | "false"
            | "on"
            | "enter"
            | "first"
            | "leave"
            | "because"
            | "dwell"
            | "after"
            | "every"
            | "as"
            | "trigger"
            | "event"
            | "exit"
            | "when"
            | "send"
            | "wait"
            | "until"
            | "at"
            | "most"
            | "if"
            | "else"
            | "start"
            | "emit"
            | "did"
            | "count"
            | "where"
            | "within"
            | "since"
            | "and"
            | "or"
            | "not"
            | "all"
            | "any"
            | "opened"
            | "clicked"
            | "contact"
            | "exists"
            | "contains"
            | "in"
            | "weekdays"
            | "weekends"
            | "mon"
            | "tue"
            | "wed"
            | "thu"
            | "fri"
            | "sat"
            | "sun"
    )
}

/// True for the characters that may continue a word.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// True for the characters that may start a word.
pub(crate) fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

/// Skips whitespace and comments. Returns the rest and whether a newline was skipped.
///
/// ```text
/// ws := ([ \t\r\n] | "//" [^\n]*)*
/// ```
pub(crate) fn skip_trivia(i: &str) -> (&str, bool) {
    let mut rest = i;
    let mut newline = false;
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n']);
        newline |= rest.len() != trimmed.len() && rest[..rest.len() - trimmed.len()].contains('\n');
        rest = trimmed;
        if rest.starts_with("//") {
            rest = rest.find('\n').map_or("", |n| &rest[n..]);
        } else {
            return (rest, newline);
        }
    }
}

/// The length in bytes of the string token at the start of `i` (which starts with `"`): up to
/// and including the closing quote, or up to (not including) the end of the line.
pub(crate) fn string_token_len(i: &str) -> usize {
    let mut chars = i.char_indices().skip(1);
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return at + 1,
            '\n' => return at,
            '\\' => {
                if let Some((at, '\n')) = chars.next() {
                    return at;
                }
            }
            _ => {}
        }
    }
    i.len()
}

/// The token at the very start of `i` (no trivia skipped), or `None` at the end of input.
pub(crate) fn token_at(i: &str, line_start: bool) -> Option<Token<'_>> {
    let first = i.chars().next()?;
    let len_of = |pred: fn(char) -> bool, from: usize| {
        i[from..]
            .char_indices()
            .find(|&(_, c)| !pred(c))
            .map_or(i.len(), |(n, _)| from + n)
    };
    let second = i[first.len_utf8()..].chars().next();
    let (kind, len) = if is_word_start(first) {
        (TokenKind::Word, len_of(is_word_char, 0))
    } else if first.is_ascii_digit() || (first == '-' && second.is_some_and(|c| c.is_ascii_digit()))
    {
        let number_char = |c: char| is_word_char(c) || c == '.' || c == ':';
        (TokenKind::Number, len_of(number_char, 1))
    } else if first == '"' {
        (TokenKind::String, string_token_len(i))
    } else if ["==", "!=", ">=", "<="].iter().any(|p| i.starts_with(p)) {
        (TokenKind::Punct, 2)
    } else if "{}()[],.<>".contains(first) {
        (TokenKind::Punct, 1)
    } else {
        (TokenKind::Invalid(first), first.len_utf8())
    };
    Some(Token {
        kind,
        text: &i[..len],
        at: i,
        line_start,
    })
}

/// The next token after any trivia, or `None` at the end of input.
pub(crate) fn peek(i: &str) -> Option<Token<'_>> {
    let (rest, newline) = skip_trivia(i);
    token_at(rest, newline || state::offset(rest) == 0)
}

/// Iterates over the tokens of some input, skipping trivia.
pub(crate) struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    /// Tokens from `i` on.
    pub(crate) fn new(i: &'a str) -> Self {
        Tokens { rest: i }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let token = peek(self.rest)?;
        self.rest = token.rest();
        Some(token)
    }
}

/// Every `//` comment in `source`, in order, with its byte span.
pub(crate) fn comments(source: &str, from: usize) -> Vec<crate::ast::Comment> {
    let mut found = Vec::new();
    let mut at = from;
    let bytes = source.as_bytes();
    while at < bytes.len() {
        match bytes[at] {
            b'"' => at += string_token_len(&source[at..]),
            b'/' if bytes.get(at + 1) == Some(&b'/') => {
                let end = source[at..].find('\n').map_or(source.len(), |n| at + n);
                let text = source[at + 2..end].trim_end_matches('\r');
                found.push(crate::ast::Comment {
                    text: text.to_string(),
                    span: crate::Span::new(at, at + 2 + text.len()),
                });
                at = end;
            }
            _ => at += 1,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokenKind, &str)> {
        Tokens::new(src).map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn splits_the_coarse_tokens() {
        use TokenKind::*;
        assert_eq!(
            kinds("did a.b >= -3 \"x // y\" 1d12h 09:00 // c\n@{"),
            vec![
                (Word, "did"),
                (Word, "a"),
                (Punct, "."),
                (Word, "b"),
                (Punct, ">="),
                (Number, "-3"),
                (String, "\"x // y\""),
                (Number, "1d12h"),
                (Number, "09:00"),
                (Invalid('@'), "@"),
                (Punct, "{"),
            ]
        );
    }

    #[test]
    fn strings_end_at_the_end_of_their_line() {
        assert_eq!(string_token_len("\"abc\ndef\""), 4);
        assert_eq!(string_token_len("\"a\\\"b\" c"), 6);
        assert_eq!(string_token_len("\"a\\"), 3);
        assert_eq!(string_token_len("\"a\\\nb"), 3);
    }

    #[test]
    fn finds_comments_outside_strings() {
        let src = "a // one\n\"// not\" // two\r\n//";
        let found = comments(src, 0);
        let texts: Vec<_> = found.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec![" one", " two", ""]);
        assert_eq!(&src[found[1].span.range()], "// two");
    }
}
