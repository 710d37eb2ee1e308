//! Conditions (docs/language.md#conditions): `criteria`, `if`, `wait until`, `exit when` and event filters.
//!
//! ```text
//! expr   := or
//! or     := and ("or" and)*
//! and    := unary ("and" unary)*
//! unary  := "not" unary | atom
//! atom   := "(" expr ")" | "all" "{" expr+ "}" | "any" "{" expr+ "}"
//!         | "did" EVENT [filter] [window]
//!         | "count" EVENT [filter] [window] CMP INTEGER
//!         | PATH CMP LITERAL | PATH "exists" | PATH "contains" STRING
//!         | PATH "in" "[" LITERAL ("," LITERAL)* "]"
//!         | "opened" TEMPLATE | "clicked" TEMPLATE
//! filter := "where" "(" expr ")"
//! window := "within" DURATION | "since" "entry"
//! ```
//!
//! Newlines mean nothing: an expression ends at the first token that cannot continue it, so
//! `criteria did x` followed by `entry once` on the next line is two members.

use nom::combinator::{cut, opt};
use nom::multi::many0;
use nom::sequence::preceded;

use crate::ast::{CmpOp, Expr, ExprKind, Filter, Literal, Window, WindowKind};
use crate::lexical::{
    at_punct, duration, ident, integer, keyword, literal, peek_word, punct, string_lit, word, ws,
};
use crate::names::{at_trigger_path, event_name, path};
use crate::nom_error::{expected, failure, missing_closer, PError, PResult};
use crate::span::Span;
use crate::state;

/// The description of a condition in "expected …" messages.
pub(crate) const A_CONDITION: &str = "a condition";

// expr := or
/// A condition.
pub(crate) fn expr(i: &str) -> PResult<'_, Expr> {
    or(i)
}

// or := and ("or" and)*
fn or(i: &str) -> PResult<'_, Expr> {
    let (i, first) = and(i)?;
    let (i, rest) = many0(preceded(keyword("or"), cut(and)))(i)?;
    Ok((i, chain(first, rest, ExprKind::Or)))
}

// and := unary ("and" unary)*
fn and(i: &str) -> PResult<'_, Expr> {
    let (i, first) = unary(i)?;
    let (i, rest) = many0(preceded(keyword("and"), cut(unary)))(i)?;
    Ok((i, chain(first, rest, ExprKind::And)))
}

/// `first` alone, or `first op rest…` as one flat node.
fn chain(first: Expr, rest: Vec<Expr>, make: fn(Vec<Expr>) -> ExprKind) -> Expr {
    if rest.is_empty() {
        return first;
    }
    let span = first.span.to(rest[rest.len() - 1].span);
    let mut operands = Vec::with_capacity(rest.len() + 1);
    operands.push(first);
    operands.extend(rest);
    Expr {
        kind: make(operands),
        span,
    }
}

// unary := "not" unary | atom
fn unary(i: &str) -> PResult<'_, Expr> {
    let Ok((after_not, not_span)) = keyword("not")(i) else {
        return atom(i);
    };
    let _level = nest(not_span)?;
    let (rest, operand) = cut(unary)(after_not)?;
    let span = not_span.to(operand.span);
    let kind = ExprKind::Not(Box::new(operand));
    Ok((rest, Expr { kind, span }))
}

/// Enters one level of nesting, failing for good beyond the limit.
pub(crate) fn nest<'a>(at: Span) -> Result<state::NestingGuard, nom::Err<PError<'a>>> {
    state::enter_nesting(at).map_err(|e| nom::Err::Failure(PError::Built(e)))
}

// atom := paren | block | did | count | path_atom | engagement
fn atom(i: &str) -> PResult<'_, Expr> {
    if at_punct(i, "(") {
        return paren(i);
    }
    match peek_word(i) {
        Some("all" | "any") => block(i),
        Some("did") => did(i),
        Some("count") => count(i),
        Some("opened" | "clicked") => engagement(i),
        Some("contact" | "event") => path_atom(i),
        Some("trigger") if at_trigger_path(i) => path_atom(i),
        _ => expected(i, &[A_CONDITION]),
    }
}

// paren := "(" expr ")"
fn paren(i: &str) -> PResult<'_, Expr> {
    let (i, open) = punct("(")(i)?;
    let _level = nest(open)?;
    let (i, inner) = cut(expr)(i)?;
    let (i, close) = close_paren(i, open)?;
    let kind = ExprKind::Paren(Box::new(inner));
    Ok((
        i,
        Expr {
            kind,
            span: open.to(close),
        },
    ))
}

/// The `)` closing the `(` at `open`.
fn close_paren(i: &str, open: Span) -> PResult<'_, Span> {
    match punct(")")(i) {
        Ok(ok) => Ok(ok),
        Err(_) => missing_closer(i, '(', open, &["`and`", "`or`", "`)`"]),
    }
}

// block := ("all" | "any") "{" expr+ "}"
fn block(i: &str) -> PResult<'_, Expr> {
    let (after_kw, (kw, kw_span)) = word(i)?;
    let all = kw == "all";
    let (mut i, open) = cut(punct("{"))(after_kw)?;
    let _level = nest(open)?;
    let mut operands = Vec::new();
    let close = loop {
        if let Ok((rest, close)) = punct("}")(i) {
            if operands.is_empty() {
                return failure(crate::nom_error::unexpected(i, &["at least one condition"]));
            }
            i = rest;
            break close;
        }
        if !operands.is_empty() && !starts_condition(i) {
            let what = &["`and`", "`or`", A_CONDITION, "`}`"];
            return missing_closer(i, '{', open, what);
        }
        let (rest, operand) = match expr(i) {
            Ok(ok) => ok,
            Err(nom::Err::Error(_)) => {
                return missing_closer(i, '{', open, &[A_CONDITION, "`}`"]);
            }
            Err(e) => return Err(e),
        };
        operands.push(operand);
        i = rest;
    };
    let kind = if all {
        ExprKind::All(operands)
    } else {
        ExprKind::Any(operands)
    };
    Ok((
        i,
        Expr {
            kind,
            span: kw_span.to(close),
        },
    ))
}

/// True when the next token can start a condition.
fn starts_condition(i: &str) -> bool {
    at_punct(i, "(")
        || at_trigger_path(i)
        || matches!(
            peek_word(i),
            Some(
                "not"
                    | "all"
                    | "any"
                    | "did"
                    | "count"
                    | "opened"
                    | "clicked"
                    | "contact"
                    | "event"
            )
        )
}

// did := "did" EVENT [filter] [window]
fn did(i: &str) -> PResult<'_, Expr> {
    let (i, did_span) = keyword("did")(i)?;
    let (i, event) = cut(event_name)(i)?;
    let (i, filter) = opt(filter)(i)?;
    let (i, window) = opt(window)(i)?;
    let span = span_between_spans(did_span, i);
    let kind = ExprKind::Did {
        event,
        filter,
        window,
    };
    Ok((i, Expr { kind, span }))
}

// count := "count" EVENT [filter] [window] CMP INTEGER
fn count(i: &str) -> PResult<'_, Expr> {
    let (i, count_span) = keyword("count")(i)?;
    let (i, event) = cut(event_name)(i)?;
    let (i, filter) = opt(filter)(i)?;
    let (i, window) = opt(window)(i)?;
    let (i, op) = match cmp_op(i) {
        Ok(ok) => ok,
        Err(_) => {
            let mut what = vec!["a comparison operator"];
            if filter.is_none() && window.is_none() {
                what.push("`where`");
            }
            if window.is_none() {
                what.extend(["`within`", "`since`"]);
            }
            return failure(crate::nom_error::unexpected(i, &what));
        }
    };
    let (i, value) = cut(integer)(i)?;
    let span = count_span.to(value.span);
    let kind = ExprKind::Count {
        event,
        filter,
        window,
        op,
        value,
    };
    Ok((i, Expr { kind, span }))
}

// filter := "where" "(" expr ")"
/// An event filter. Fails without consuming when there is no `where`.
pub(crate) fn filter(i: &str) -> PResult<'_, Filter> {
    let (i, where_span) = keyword("where")(i)?;
    let (i, open) = cut(punct("("))(i)?;
    let _level = nest(open)?;
    let (i, inner) = cut(expr)(i)?;
    let (i, close) = close_paren(i, open)?;
    Ok((
        i,
        Filter {
            expr: Box::new(inner),
            span: where_span.to(close),
        },
    ))
}

// window := "within" DURATION | "since" "entry"
fn window(i: &str) -> PResult<'_, Window> {
    if let Ok((i, within)) = keyword("within")(i) {
        let (i, d) = cut(duration)(i)?;
        let span = within.to(d.span);
        return Ok((
            i,
            Window {
                kind: WindowKind::Within(d),
                span,
            },
        ));
    }
    let (i, since) = keyword("since")(i)?;
    let (i, entry) = cut(keyword("entry"))(i)?;
    Ok((
        i,
        Window {
            kind: WindowKind::SinceEntry,
            span: since.to(entry),
        },
    ))
}

// CMP := "==" | "!=" | ">=" | "<=" | ">" | "<"
/// A comparison operator.
pub(crate) fn cmp_op(i: &str) -> PResult<'_, CmpOp> {
    let start = ws(i);
    let ops = [
        ("==", CmpOp::Eq),
        ("!=", CmpOp::Ne),
        (">=", CmpOp::Ge),
        ("<=", CmpOp::Le),
        (">", CmpOp::Gt),
        ("<", CmpOp::Lt),
    ];
    for (text, op) in ops {
        if let Some(rest) = start.strip_prefix(text) {
            return Ok((rest, op));
        }
    }
    expected(i, &["a comparison operator"])
}

// path_atom := PATH (CMP LITERAL | "exists" | "contains" STRING | "in" list)
fn path_atom(i: &str) -> PResult<'_, Expr> {
    let (i, path) = path(i)?;
    if let Ok((i, op)) = cmp_op(i) {
        let (i, value) = cut(literal)(i)?;
        let span = path.span.to(value.span());
        let kind = ExprKind::Compare { path, op, value };
        return Ok((i, Expr { kind, span }));
    }
    match word(i) {
        Ok((i, ("exists", kw))) => {
            let span = path.span.to(kw);
            Ok((
                i,
                Expr {
                    kind: ExprKind::Exists(path),
                    span,
                },
            ))
        }
        Ok((i, ("contains", _))) => {
            let (i, s) = cut(string_lit)(i)?;
            let span = path.span.to(s.span);
            Ok((
                i,
                Expr {
                    kind: ExprKind::Contains(path, s),
                    span,
                },
            ))
        }
        Ok((i, ("in", _))) => {
            let (i, (values, close)) = cut(literal_list)(i)?;
            let span = path.span.to(close);
            Ok((
                i,
                Expr {
                    kind: ExprKind::In(path, values),
                    span,
                },
            ))
        }
        _ => failure(crate::nom_error::unexpected(
            i,
            &["a comparison operator", "`exists`", "`contains`", "`in`"],
        )),
    }
}

// list := "[" LITERAL ("," LITERAL)* [","] "]"
fn literal_list(i: &str) -> PResult<'_, (Vec<Literal>, Span)> {
    let (mut i, open) = punct("[")(i)?;
    let mut values = Vec::new();
    loop {
        let (rest, value) = cut(literal)(i)?;
        values.push(value);
        i = rest;
        let comma = punct(",")(i);
        if let Ok((rest, _)) = comma {
            i = rest;
        }
        if let Ok((rest, close)) = punct("]")(i) {
            return Ok((rest, (values, close)));
        }
        if comma.is_err() {
            return missing_closer(i, '[', open, &["`,`", "`]`"]);
        }
    }
}

// engagement := ("opened" | "clicked") TEMPLATE
fn engagement(i: &str) -> PResult<'_, Expr> {
    let (i, (kw, kw_span)) = word(i)?;
    let (i, template) = cut(ident("a template name"))(i)?;
    let span = kw_span.to(template.span);
    let kind = if kw == "opened" {
        ExprKind::Opened(template)
    } else {
        ExprKind::Clicked(template)
    };
    Ok((i, Expr { kind, span }))
}

/// The span from the start of `from` to the end of what was parsed (`rest` follows it).
fn span_between_spans(from: Span, rest: &str) -> Span {
    Span::new(from.start, state::offset(rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    /// Parses `input` as one condition and renders it back in a compact prefix form.
    fn check(input: &str, expected_tree: &str) {
        let ((rest, tree), errors) = state::with_source(input, || match expr(input) {
            Ok((rest, e)) => (rest.to_string(), sexp(&e)),
            Err(e) => (
                String::new(),
                format!("error: {:?}", crate::nom_error::into_parse_error(e)),
            ),
        });
        assert!(errors.is_empty(), "{input:?}: {errors:?}");
        assert_eq!(tree, expected_tree, "{input:?}");
        assert!(ws(&rest).is_empty(), "{input:?} left {rest:?}");
    }

    /// A compact rendering of a condition, to compare trees in tests.
    fn sexp(e: &Expr) -> String {
        let list = |name: &str, es: &[Expr]| {
            let inner: Vec<_> = es.iter().map(sexp).collect();
            format!("({name} {})", inner.join(" "))
        };
        match &e.kind {
            ExprKind::Or(es) => list("or", es),
            ExprKind::And(es) => list("and", es),
            ExprKind::All(es) => list("all", es),
            ExprKind::Any(es) => list("any", es),
            ExprKind::Not(x) => format!("(not {})", sexp(x)),
            ExprKind::Paren(x) => format!("[{}]", sexp(x)),
            ExprKind::Did {
                event,
                filter,
                window,
            } => format!(
                "(did {}{}{})",
                event.name,
                filter
                    .as_ref()
                    .map(|f| format!(" where {}", sexp(&f.expr)))
                    .unwrap_or_default(),
                window.as_ref().map(show_window).unwrap_or_default()
            ),
            ExprKind::Count {
                event,
                filter,
                window,
                op,
                value,
            } => format!(
                "(count {}{}{} {} {})",
                event.name,
                filter
                    .as_ref()
                    .map(|f| format!(" where {}", sexp(&f.expr)))
                    .unwrap_or_default(),
                window.as_ref().map(show_window).unwrap_or_default(),
                op.as_str(),
                value.value
            ),
            ExprKind::Compare { path, op, value } => {
                format!("({} {} {})", show_path(path), op.as_str(), show_lit(value))
            }
            ExprKind::Exists(p) => format!("({} exists)", show_path(p)),
            ExprKind::Contains(p, s) => format!("({} contains {:?})", show_path(p), s.value),
            ExprKind::In(p, vs) => {
                let vs: Vec<_> = vs.iter().map(show_lit).collect();
                format!("({} in {})", show_path(p), vs.join(","))
            }
            ExprKind::Opened(t) => format!("(opened {})", t.name),
            ExprKind::Clicked(t) => format!("(clicked {})", t.name),
        }
    }

    fn show_window(w: &Window) -> String {
        match &w.kind {
            WindowKind::Within(d) => format!(" within {}", d.total_seconds().unwrap_or(0)),
            WindowKind::SinceEntry => " since entry".to_string(),
        }
    }

    fn show_path(p: &crate::ast::Path) -> String {
        let segs: Vec<_> = p.segments.iter().map(|s| s.name.as_str()).collect();
        format!("{:?}.{}", p.root, segs.join("."))
    }

    fn show_lit(l: &Literal) -> String {
        match l {
            Literal::String(s) => format!("{:?}", s.value),
            Literal::Number(n) => n.raw.clone(),
            Literal::Bool(b) => b.value.to_string(),
        }
    }

    /// Parses `input` as a condition and returns the errors (hard and soft).
    fn errors(input: &str) -> Vec<crate::error::ParseError> {
        let (hard, mut soft) = state::with_source(input, || {
            expr(input).err().map(crate::nom_error::into_parse_error)
        });
        soft.extend(hard);
        soft
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        check(
            "did a or did b and not did c",
            "(or (did a) (and (did b) (not (did c))))",
        );
        check("not not did a", "(not (not (did a)))");
        check("did a and did b and did c", "(and (did a) (did b) (did c))");
        check(
            "(did a or did b) and did c",
            "(and [(or (did a) (did b))] (did c))",
        );
    }

    #[test]
    fn newlines_do_not_matter() {
        check(
            "did a\n  and not did b within 7d",
            "(and (did a) (not (did b within 604800)))",
        );
        check("did a // why\n or did b", "(or (did a) (did b))");
    }

    #[test]
    fn event_atoms() {
        check("did app_opened", "(did app_opened)");
        check(
            "did user.signed_up within 1d12h",
            "(did user.signed_up within 129600)",
        );
        check(
            "did \"$pageview\" since entry",
            "(did $pageview since entry)",
        );
        check(
            "did \"Order Completed\" where (event.amount > 10) within 7d",
            "(did Order Completed where (Event.amount > 10) within 604800)",
        );
        check(
            "count app_opened within 7d >= 3",
            "(count app_opened within 604800 >= 3)",
        );
        check("count x < -1", "(count x < -1)");
        check(
            "count x where (event.a exists) != 0",
            "(count x where (Event.a exists) != 0)",
        );
        check(
            "did where where (event.a == 1)",
            "(did where where (Event.a == 1))",
        );
    }

    #[test]
    fn property_atoms() {
        check("contact.plan == \"pro\"", "(Contact.plan == \"pro\")");
        check(
            "contact.address.country != \"FR\"",
            "(Contact.address.country != \"FR\")",
        );
        check(
            "contact.\"first name\" exists",
            "(Contact.first name exists)",
        );
        check("contact.age >= 18.5", "(Contact.age >= 18.5)");
        check("contact.beta == true", "(Contact.beta == true)");
        check(
            "contact.email contains \"@\"",
            "(Contact.email contains \"@\")",
        );
        check(
            "contact.plan in [\"a\", 2, false,]",
            "(Contact.plan in \"a\",2,false)",
        );
        check("contact.x <= -3", "(Contact.x <= -3)");
        check("contact.x < 1", "(Contact.x < 1)");
        check("contact.x > 1", "(Contact.x > 1)");
    }

    #[test]
    fn blocks_and_engagement() {
        check(
            "all { did a did b or did c\n not opened t1 }",
            "(all (did a) (or (did b) (did c)) (not (opened t1)))",
        );
        check("any { clicked t2 }", "(any (clicked t2))");
    }

    #[test]
    fn spans_cover_the_whole_atom() {
        let src = "did a within 7d and contact.x exists";
        let (e, _) = state::with_source(src, || expr(src).map(|(_, e)| e).ok());
        let e = e.expect("parses");
        assert_eq!(e.span, Span::new(0, src.len()));
        let ExprKind::And(parts) = &e.kind else {
            panic!("not an and")
        };
        assert_eq!(&src[parts[0].span.range()], "did a within 7d");
        assert_eq!(&src[parts[1].span.range()], "contact.x exists");
    }

    #[test]
    fn errors_say_what_was_expected() {
        let e = errors("all { }");
        assert_eq!(e[0].message(), "expected at least one condition, found `}`");
        let e = errors("did");
        assert_eq!(e[0].message(), "expected an event name, found end of file");
        let e = errors("(did a did b)");
        assert_eq!(e[0].message(), "expected `and`, `or` or `)`, found `did`");
        let e = errors("contact.plan = 1");
        assert_eq!(e[0].kind, ParseErrorKind::UnexpectedCharacter { ch: '=' });
        let e = errors("contact.plan");
        assert!(e[0].message().starts_with("expected a comparison operator"));
        let e = errors("count x 3");
        assert!(e[0].message().starts_with("expected a comparison operator"));
        let e = errors("(did a");
        assert!(matches!(
            e[0].kind,
            ParseErrorKind::UnclosedDelimiter { open: '(', .. }
        ));
        let e = errors("contact.x in [1 2]");
        assert_eq!(e[0].message(), "expected `,` or `]`, found `2`");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "(".repeat(100_000) + "did a" + &")".repeat(100_000);
        let e = errors(&deep);
        assert_eq!(e[0].kind, ParseErrorKind::NestingTooDeep);
        let deep = "not ".repeat(100_000) + "did a";
        assert_eq!(errors(&deep)[0].kind, ParseErrorKind::NestingTooDeep);
        let ok = "(".repeat(crate::MAX_NESTING) + "did a" + &")".repeat(crate::MAX_NESTING);
        assert!(errors(&ok).is_empty());
    }
}
