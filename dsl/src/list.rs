//! List bodies (docs/language.md#lists): a subscription category's fields.
//!
//! ```text
//! list_field := "name" STRING | "description" STRING
//!             | "default" ("subscribed" | "unsubscribed")
//! ```

use nom::combinator::cut;

use crate::ast::{ListDefault, ListField, ListFieldKind};
use crate::lexical::{string_lit, word};
use crate::nom_error::{expected, failure, unexpected, PResult};
use crate::recover::BodyKind;
use crate::span::Span;
use crate::state;

/// True for the words that start a list field.
pub(crate) fn is_list_keyword(word: &str) -> bool {
    matches!(word, "name" | "description" | "default")
}

/// The body of a list, for recovery.
pub(crate) const LIST_FIELDS: BodyKind = BodyKind {
    is_member_keyword: is_list_keyword,
    expected: &["a list field"],
};

// list_field := "name" STRING | "description" STRING | "default" list_default
/// One field of a list body.
pub(crate) fn list_field(i: &str) -> PResult<'_, ListField> {
    let (i, (kw, keyword_span)) = word(i)?;
    let (i, kind) = match kw {
        "name" => cut(string_lit)(i).map(|(i, s)| (i, ListFieldKind::Name(s)))?,
        "description" => cut(string_lit)(i).map(|(i, s)| (i, ListFieldKind::Description(s)))?,
        "default" => list_default(i).map(|(i, d)| (i, ListFieldKind::Default(d)))?,
        _ => return expected(i, LIST_FIELDS.expected),
    };
    let span = Span::new(keyword_span.start, state::offset(i));
    Ok((
        i,
        ListField {
            kind,
            keyword_span,
            span,
        },
    ))
}

// list_default := "subscribed" | "unsubscribed"
fn list_default(i: &str) -> PResult<'_, ListDefault> {
    match word(i) {
        Ok((rest, ("subscribed", span))) => Ok((
            rest,
            ListDefault {
                subscribed: true,
                span,
            },
        )),
        Ok((rest, ("unsubscribed", span))) => Ok((
            rest,
            ListDefault {
                subscribed: false,
                span,
            },
        )),
        _ => failure(unexpected(i, &["`subscribed`", "`unsubscribed`"])),
    }
}
