//! What the formatter needs to know about the original text: where comments are, where
//! blank lines were, and where the `{` of a block sits.

use crate::ast::Comment;
use crate::token;

/// The original text of the file being formatted and its comments (in source order). Both
/// are empty when printing a tree built in memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceInfo<'a> {
    pub text: &'a str,
    pub comments: &'a [Comment],
}

impl SourceInfo<'_> {
    /// True when a comment starts in `start..end`.
    pub(super) fn has_comment_between(&self, start: usize, end: usize) -> bool {
        let first = self.comments.partition_point(|c| c.span.start < start);
        self.comments.get(first).is_some_and(|c| c.span.start < end)
    }

    /// The offset just after the first `{` at or after `from` (skipping trivia), or `from`
    /// when there is none.
    pub(super) fn open_brace_end(&self, from: usize) -> usize {
        let Some(after) = self.text.get(from..) else {
            return from;
        };
        let (rest, _) = token::skip_trivia(after);
        if rest.starts_with('{') {
            self.text.len() - rest.len() + 1
        } else {
            from
        }
    }

    /// The number of line breaks in `start..end` (0 when the range is empty or reversed).
    pub(super) fn newlines_between(&self, start: usize, end: usize) -> usize {
        self.text
            .get(start..end)
            .map_or(0, |gap| gap.bytes().filter(|&b| b == b'\n').count())
    }

    /// True when `start..end` holds nothing but spaces and tabs (same line, no tokens).
    pub(super) fn only_spaces_between(&self, start: usize, end: usize) -> bool {
        start <= end
            && self
                .text
                .get(start..end)
                .is_some_and(|gap| gap.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')))
    }
}
