//! The line printer: indentation, blank lines, comments, and the breaking of `all`/`any`
//! blocks that do not fit.
//!
//! Every output line knows where its content starts and ends in the source. Before a line is
//! printed, every comment that starts before the end of its content is printed on its own line
//! (so comments inside a construct printed on one line move above it); after it, the next
//! comment is printed at the end of the line when nothing but spaces separates it from the
//! line's content in the source. Comments therefore come out exactly once and in order.

use crate::format::expr::{flat_block_width, width, BlockFrag, Frag};
use crate::format::source::SourceInfo;

/// The widest line the formatter aims for.
pub(crate) const MAX_WIDTH: usize = 100;

/// How a line relates to its neighbours.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineKind {
    /// A blank line of the source before it (or before its comments) is kept.
    pub keeps_blank: bool,
    /// It starts with `}`: its leading comments belong to the block it closes (one level
    /// deeper), and it never follows a blank line.
    pub closes: bool,
}

/// A member, step or definition line.
pub(crate) const MEMBER: LineKind = LineKind {
    keeps_blank: true,
    closes: false,
};
/// The `}` (or `} else {`) of a definition, reaction or `if`.
pub(crate) const CLOSE: LineKind = LineKind {
    keeps_blank: true,
    closes: true,
};
/// An operand of a multi-line `all`/`any` block.
const EXPR_CHILD: LineKind = LineKind {
    keeps_blank: false,
    closes: false,
};
/// The `}` of a multi-line `all`/`any` block.
const EXPR_CLOSE: LineKind = LineKind {
    keeps_blank: false,
    closes: true,
};

/// Accumulates the formatted text.
pub(crate) struct Printer<'a> {
    pub src: SourceInfo<'a>,
    next_comment: usize,
    out: String,
    /// The source offset where the last printed thing ends.
    last_end: usize,
    /// The last line printed ends with `{`.
    after_open: bool,
    /// The next thing printed is preceded by a blank line whatever the source says.
    force_blank: bool,
}

impl<'a> Printer<'a> {
    /// A printer for a file with this source information.
    pub(super) fn new(src: SourceInfo<'a>) -> Self {
        Printer {
            src,
            next_comment: 0,
            out: String::new(),
            last_end: 0,
            after_open: false,
            force_blank: false,
        }
    }

    /// Puts a blank line before the next thing printed (between definitions).
    pub(super) fn force_blank_line(&mut self) {
        self.force_blank = true;
    }

    /// Prints one line of `text` at `indent` levels, whose content spans `start..end` in the
    /// source, with the comments that belong before and after it.
    pub(super) fn line(
        &mut self,
        indent: usize,
        text: &str,
        start: usize,
        end: usize,
        kind: LineKind,
    ) {
        while let Some(comment) = self.src.comments.get(self.next_comment) {
            if comment.span.start >= end {
                break;
            }
            let at = if kind.closes { indent + 1 } else { indent };
            // A comment from inside this line's content counts blank lines up to the line.
            self.blank_line_if(kind.keeps_blank, comment.span.start.min(start));
            let comment_text = format!("//{}", comment.text.trim_end());
            self.write(at, &comment_text);
            self.last_end = self.last_end.max(comment.span.end);
            self.after_open = false;
            self.next_comment += 1;
        }
        self.blank_line_if(kind.keeps_blank && !kind.closes, start);
        let mut full = text.to_string();
        if let Some(comment) = self.src.comments.get(self.next_comment) {
            if self.src.only_spaces_between(end, comment.span.start) {
                full.push_str(" //");
                full.push_str(comment.text.trim_end());
                self.last_end = self.last_end.max(comment.span.end);
                self.next_comment += 1;
            }
        }
        self.write(indent, &full);
        self.last_end = self.last_end.max(end);
        self.after_open = text.ends_with('{');
    }

    /// Prints a logical line made of fragments, starting at source offset `start`: on one
    /// line when its blocks fit, otherwise breaking the blocks that do not.
    pub(super) fn logical_line(
        &mut self,
        indent: usize,
        frags: &[Frag],
        start: usize,
        kind: LineKind,
    ) {
        let mut current = String::new();
        let mut current_start = start;
        let mut current_end = start;
        let mut kind = kind;
        for (n, frag) in frags.iter().enumerate() {
            match frag {
                Frag::Text { text, end } => {
                    current.push_str(text);
                    current_end = current_end.max(*end);
                }
                Frag::Block(block) => {
                    let column = 2 * indent + width(&current);
                    let after = width_to_break(&frags[n + 1..]);
                    if !block.has_comment && column + flat_block_width(block) + after <= MAX_WIDTH {
                        current.push_str(&crate::format::expr::flat(std::slice::from_ref(frag)));
                        current_end = current_end.max(block.end);
                    } else {
                        current.push_str(block.keyword);
                        current.push_str(" {");
                        self.line(indent, &current, current_start, block.open_end, kind);
                        self.block_children(indent + 1, block);
                        current = "}".to_string();
                        current_start = block.end.saturating_sub(1);
                        current_end = block.end;
                        kind = EXPR_CLOSE;
                    }
                }
            }
        }
        self.line(indent, &current, current_start, current_end, kind);
    }

    /// The operands of a broken block, one per line.
    fn block_children(&mut self, indent: usize, block: &BlockFrag) {
        for child in &block.children {
            self.logical_line(indent, child, block.open_end, EXPR_CHILD);
        }
    }

    /// The output so far, with the comments left at the end of the file.
    pub(super) fn finish(mut self) -> String {
        while let Some(comment) = self.src.comments.get(self.next_comment) {
            self.blank_line_if(true, comment.span.start);
            let comment_text = format!("//{}", comment.text.trim_end());
            self.write(0, &comment_text);
            self.last_end = self.last_end.max(comment.span.end);
            self.next_comment += 1;
        }
        self.out
    }

    /// Writes a blank line when one is forced, or when `keep` and the source has one between
    /// the last printed thing and `upto` (never at the start of a block or of the file).
    fn blank_line_if(&mut self, keep: bool, upto: usize) {
        let in_source = keep && self.src.newlines_between(self.last_end, upto) >= 2;
        let wanted = self.force_blank || (in_source && !self.after_open);
        self.force_blank = false;
        if wanted && !self.out.is_empty() {
            self.out.push('\n');
        }
    }

    /// Writes one indented line.
    fn write(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }
}

/// The width of `frags` up to the first point where the line could break (the `{` of the next
/// block, included), or to the end.
fn width_to_break(frags: &[Frag]) -> usize {
    let mut total = 0;
    for frag in frags {
        match frag {
            Frag::Text { text, .. } => total += width(text),
            Frag::Block(block) => return total + width(block.keyword) + 2,
        }
    }
    total
}
