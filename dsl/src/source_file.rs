//! The top level of a file: `bucket`, `journey`, `list`, `campaign` and `test` definitions,
//! with recovery between them.
//!
//! ```text
//! source_file := definition*
//! definition  := ("bucket" | "journey" | "list" | "campaign") ID "{" member* "}" | test
//! ```

use crate::ast::{Bucket, Campaign, Item, Journey, List};
use crate::bucket::{bucket_member, BUCKET_MEMBERS};
use crate::campaign::{campaign_field, CAMPAIGN_FIELDS};
use crate::journey::{journey_member, JOURNEY_MEMBERS};
use crate::lexical::{ident, punct};
use crate::list::{list_field, LIST_FIELDS};
use crate::nom_error::{into_parse_error, unexpected, PResult};
use crate::recover::{body, brace_on_this_line, is_definition_keyword, skip_to_definition};
use crate::span::Span;
use crate::state::{self, span_between};
use crate::token::{self, Token};

// source_file := definition*
/// Every definition in the file that has a readable header. Errors go to `state::report`.
pub(crate) fn source_file(i: &str) -> Vec<Item> {
    let mut i = i;
    let mut items = Vec::new();
    while let Some(tok) = token::peek(i) {
        if is_definition_keyword(&tok) {
            let (rest, item) = definition(tok);
            items.extend(item);
            i = rest;
        } else if tok.is_word("test") {
            let kw_span = span_between(tok.at, tok.rest());
            match crate::test_block::test_definition(kw_span, tok.rest()) {
                Ok((rest, t)) => {
                    items.push(Item::Test(t));
                    i = rest;
                }
                Err(e) => {
                    state::report(into_parse_error(e));
                    i = skip_to_definition(tok.at);
                }
            }
        } else {
            state::report(unexpected(
                i,
                &["`bucket`", "`journey`", "`list`", "`campaign`", "`test`"],
            ));
            i = skip_to_definition(tok.at);
        }
    }
    items
}

// definition := ("bucket" | "journey" | "list" | "campaign") ID "{" member* "}"
/// The definition starting at the keyword `kw`. A definition whose header is broken is
/// dropped, but its body is still parsed (when its `{` is on the header line) so the errors
/// inside are reported too.
fn definition(kw: Token<'_>) -> (&str, Option<Item>) {
    let is_bucket = kw.is_word("bucket");
    let is_list = kw.is_word("list");
    let is_campaign = kw.is_word("campaign");
    let kw_span = span_between(kw.at, kw.rest());
    let what = if is_bucket {
        "a bucket id"
    } else if is_list {
        "a list id"
    } else if is_campaign {
        "a campaign id"
    } else {
        "a journey id"
    };
    let header: PResult<'_, _> = (|| {
        let (i, id) = ident(what)(kw.rest())?;
        let (i, open) = punct("{")(i)?;
        Ok((i, (id, open)))
    })();
    let (i, id, open) = match header {
        Ok((i, (id, open))) => (i, id, open),
        Err(e) => {
            state::report(into_parse_error(e));
            let Some(brace) = brace_on_this_line(kw.rest()) else {
                return (skip_to_definition(kw.at), None);
            };
            let open = span_between(brace, &brace[1..]);
            let rest = if is_bucket {
                body(&brace[1..], open, &BUCKET_MEMBERS, bucket_member).rest
            } else if is_list {
                body(&brace[1..], open, &LIST_FIELDS, list_field).rest
            } else if is_campaign {
                body(&brace[1..], open, &CAMPAIGN_FIELDS, campaign_field).rest
            } else {
                body(&brace[1..], open, &JOURNEY_MEMBERS, journey_member).rest
            };
            return (rest, None);
        }
    };
    if is_bucket {
        let parsed = body(i, open, &BUCKET_MEMBERS, bucket_member);
        let span = Span::new(kw_span.start, parsed.end);
        let bucket = Bucket {
            id,
            members: parsed.members,
            span,
        };
        (parsed.rest, Some(Item::Bucket(bucket)))
    } else if is_list {
        let parsed = body(i, open, &LIST_FIELDS, list_field);
        let span = Span::new(kw_span.start, parsed.end);
        let list = List {
            id,
            fields: parsed.members,
            span,
        };
        (parsed.rest, Some(Item::List(list)))
    } else if is_campaign {
        let parsed = body(i, open, &CAMPAIGN_FIELDS, campaign_field);
        let span = Span::new(kw_span.start, parsed.end);
        let campaign = Campaign {
            id,
            fields: parsed.members,
            span,
        };
        (parsed.rest, Some(Item::Campaign(campaign)))
    } else {
        let parsed = body(i, open, &JOURNEY_MEMBERS, journey_member);
        let span = Span::new(kw_span.start, parsed.end);
        let journey = Journey {
            id,
            members: parsed.members,
            span,
        };
        (parsed.rest, Some(Item::Journey(journey)))
    }
}
