//! A small typed SQL printer: the expressions and SELECTs the matchers need, printed as
//! reviewable Postgres text in one pass.
//!
//! Generated SQL is built as values of [`Expr`] and [`Select`] and printed here; nothing
//! rewrites the text afterwards. Three functions own the lexical rules: [`literal`] quotes a
//! value, [`ident`] writes an identifier (bare when that is safe, quoted otherwise), and the
//! precedence rules in [`Expr::write`] decide every parenthesis. The layout (one clause per
//! line, a WHERE's conjuncts one per line, long select lists one item per line, subqueries
//! as indented blocks) is decided by the statement's structure, never by scanning text.

use std::fmt::Write as _;

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `-` (timestamp minus interval).
    Sub,
    /// `->` (a JSON object's field).
    Field,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Sub => "-",
            Op::Field => "->",
        }
    }

    fn precedence(self) -> u8 {
        match self {
            Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge => CMP,
            Op::Field => OTHER,
            Op::Sub => ADD,
        }
    }
}

// Binding strength, after Postgres' operator precedence table (higher binds tighter).
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const IS: u8 = 4;
const CMP: u8 = 5;
const IN: u8 = 6;
/// Any other operator (`->`, `#>>`).
const OTHER: u8 = 7;
const ADD: u8 = 8;
const ATOM: u8 = 10;

/// A SQL expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `alias.column`.
    Column(String, String),
    /// A bare name: a column of the only table, or a PL/pgSQL variable of the function.
    Name(String),
    /// A text literal.
    Text(String),
    Int(i64),
    Bool(bool),
    /// `NULL::type`.
    Null(&'static str),
    /// `CAST(expr AS type)`.
    Cast(Box<Expr>, &'static str),
    /// `name(args…)`.
    Call(&'static str, Vec<Expr>),
    /// `count(*)`.
    CountStar,
    /// `make_interval(secs => n)`.
    Seconds(i64),
    Binary(Box<Expr>, Op, Box<Expr>),
    /// `expr #>> '{}'`: a JSON value as text.
    JsonText(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `expr IS NULL` (`false`) or `expr IS NOT NULL` (`true`).
    IsNull(Box<Expr>, bool),
    In(Box<Expr>, Vec<Expr>),
    /// `CASE WHEN cond THEN a ELSE b END`.
    Case(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `aggregate FILTER (WHERE cond)`.
    Filter(Box<Expr>, Box<Expr>),
    Exists(Box<Select>),
    /// A scalar subquery.
    Subquery(Box<Select>),
}

impl Expr {
    pub(crate) fn column(alias: &str, column: &str) -> Expr {
        Expr::Column(alias.to_owned(), column.to_owned())
    }

    pub(crate) fn name(name: &str) -> Expr {
        Expr::Name(name.to_owned())
    }

    pub(crate) fn text(value: &str) -> Expr {
        Expr::Text(value.to_owned())
    }

    pub(crate) fn cast(self, ty: &'static str) -> Expr {
        Expr::Cast(Box::new(self), ty)
    }

    pub(crate) fn binary(self, op: Op, rhs: Expr) -> Expr {
        Expr::Binary(Box::new(self), op, Box::new(rhs))
    }

    pub(crate) fn eq(self, rhs: Expr) -> Expr {
        self.binary(Op::Eq, rhs)
    }

    pub(crate) fn not(self) -> Expr {
        Expr::Not(Box::new(self))
    }

    /// `a AND b AND …` (`TRUE` when empty, the item itself when alone).
    pub(crate) fn all(items: impl IntoIterator<Item = Expr>) -> Expr {
        let mut items: Vec<Expr> = items.into_iter().collect();
        match items.len() {
            0 => Expr::Bool(true),
            1 => items.remove(0),
            _ => Expr::And(items),
        }
    }

    /// `a OR b OR …` (`FALSE` when empty, the item itself when alone).
    pub(crate) fn any(items: impl IntoIterator<Item = Expr>) -> Expr {
        let mut items: Vec<Expr> = items.into_iter().collect();
        match items.len() {
            0 => Expr::Bool(false),
            1 => items.remove(0),
            _ => Expr::Or(items),
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(_) => OR,
            Expr::And(_) => AND,
            Expr::Not(_) => NOT,
            Expr::IsNull(..) => IS,
            Expr::In(..) => IN,
            Expr::Binary(_, op, _) => op.precedence(),
            Expr::JsonText(_) => OTHER,
            // A negative number is a unary minus applied to a literal.
            Expr::Int(n) if *n < 0 => ADD,
            _ => ATOM,
        }
    }

    /// Writes `self`, parenthesized when its binding is weaker than `min` requires.
    fn write_operand(&self, out: &mut String, indent: usize, min: u8) {
        if self.precedence() < min {
            out.push('(');
            self.write(out, indent);
            out.push(')');
        } else {
            self.write(out, indent);
        }
    }

    /// Writes the expression; subqueries are laid out as blocks whose closing line is
    /// indented by `indent` (the enclosing statement's continuation indent).
    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Expr::Column(alias, column) => {
                out.push_str(&ident(alias));
                out.push('.');
                out.push_str(&ident(column));
            }
            Expr::Name(name) => out.push_str(&ident(name)),
            Expr::Text(value) => out.push_str(&literal(value)),
            Expr::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Expr::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
            Expr::Null(ty) => {
                let _ = write!(out, "NULL::{ty}");
            }
            Expr::Cast(inner, ty) => {
                out.push_str("CAST(");
                inner.write(out, indent);
                let _ = write!(out, " AS {ty})");
            }
            Expr::Call(name, args) => {
                out.push_str(name);
                out.push('(');
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    arg.write(out, indent);
                }
                out.push(')');
            }
            Expr::CountStar => out.push_str("count(*)"),
            Expr::Seconds(n) => {
                let _ = write!(out, "make_interval(secs => {n})");
            }
            Expr::Binary(lhs, op, rhs) => {
                let p = op.precedence();
                // Operators associate to the left. Comparisons do not associate, and for the
                // reader their operands are parenthesized unless atoms or `-` expressions.
                let (left_min, right_min) = if p == CMP { (ADD, ADD) } else { (p, p + 1) };
                lhs.write_operand(out, indent, left_min);
                let _ = write!(out, " {} ", op.text());
                rhs.write_operand(out, indent, right_min);
            }
            Expr::JsonText(inner) => {
                inner.write_operand(out, indent, OTHER);
                out.push_str(" #>> '{}'");
            }
            Expr::And(items) | Expr::Or(items) => {
                let (word, p) = match self {
                    Expr::And(_) => (" AND ", AND),
                    _ => (" OR ", OR),
                };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(word);
                    }
                    // Nested AND/OR are always parenthesized, for the reader.
                    item.write_operand(out, indent, AND.max(p) + 1);
                }
            }
            Expr::Not(inner) => {
                out.push_str("NOT ");
                // Anything but an atom is parenthesized, for the reader.
                inner.write_operand(out, indent, ATOM);
            }
            Expr::IsNull(inner, negated) => {
                // `a = b IS NULL` is `(a = b) IS NULL`; written so for the reader.
                inner.write_operand(out, indent, ADD);
                out.push_str(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            Expr::In(lhs, items) => {
                lhs.write_operand(out, indent, ADD);
                out.push_str(" IN (");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, indent);
                }
                out.push(')');
            }
            Expr::Case(when, then, otherwise) => {
                out.push_str("CASE WHEN ");
                when.write(out, indent);
                out.push_str(" THEN ");
                then.write(out, indent);
                out.push_str(" ELSE ");
                otherwise.write(out, indent);
                out.push_str(" END");
            }
            Expr::Filter(aggregate, cond) => {
                aggregate.write(out, indent);
                out.push_str(" FILTER (WHERE ");
                cond.write(out, indent);
                out.push(')');
            }
            Expr::Exists(select) => {
                out.push_str("EXISTS ");
                write_block(out, select, indent);
            }
            Expr::Subquery(select) => write_block(out, select, indent),
        }
    }
}

/// `(` + the statement indented by four + `)` on its own line, indented by two.
fn write_block(out: &mut String, select: &Select, indent: usize) {
    let pad = " ".repeat(indent);
    out.push_str("(\n");
    out.push_str(&pad);
    out.push_str("    ");
    select.write(out, indent + 4);
    out.push('\n');
    out.push_str(&pad);
    out.push_str("  )");
}

/// A table of the FROM clause or of a join.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// `[schema.]name [AS alias]`.
    Table {
        schema: Option<String>,
        name: String,
        alias: Option<String>,
    },
    /// `(SELECT …) AS alias`.
    Subquery(Box<Select>, String),
}

impl Source {
    /// `schema.name AS alias`.
    pub(crate) fn table(schema: &str, name: &str, alias: &str) -> Source {
        Source::Table {
            schema: Some(schema.to_owned()),
            name: name.to_owned(),
            alias: Some(alias.to_owned()),
        }
    }

    /// An unqualified table (a session's temporary table), without alias.
    pub(crate) fn temp(name: &str) -> Source {
        Source::Table {
            schema: None,
            name: name.to_owned(),
            alias: None,
        }
    }

    fn write(&self, out: &mut String, indent: usize) {
        match self {
            Source::Table {
                schema,
                name,
                alias,
            } => {
                if let Some(schema) = schema {
                    out.push_str(&ident(schema));
                    out.push('.');
                }
                out.push_str(&ident(name));
                if let Some(alias) = alias {
                    out.push_str(" AS ");
                    out.push_str(&ident(alias));
                }
            }
            Source::Subquery(select, alias) => {
                write_block(out, select, indent);
                out.push_str(" AS ");
                out.push_str(&ident(alias));
            }
        }
    }
}

/// How a joined source is joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinKind {
    Inner,
    Left,
    LeftLateral,
}

#[derive(Debug, Clone, PartialEq)]
struct Join {
    kind: JoinKind,
    source: Source,
    on: Expr,
}

/// A SELECT statement (with the UNIONs that follow it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Select {
    distinct: bool,
    items: Vec<(Expr, Option<String>)>,
    from: Source,
    joins: Vec<Join>,
    /// Conjuncts, ANDed.
    filters: Vec<Expr>,
    group_by: Vec<Expr>,
    /// `UNION (…)` (duplicates removed), in order.
    unions: Vec<Select>,
}

/// Select lists longer than this (on one line) are written one item per line.
const LONG_SELECT: usize = 60;

impl Select {
    /// `SELECT … FROM from`, with an empty select list.
    pub(crate) fn from(from: Source) -> Select {
        Select {
            distinct: false,
            items: Vec::new(),
            from,
            joins: Vec::new(),
            filters: Vec::new(),
            group_by: Vec::new(),
            unions: Vec::new(),
        }
    }

    pub(crate) fn distinct(mut self) -> Select {
        self.distinct = true;
        self
    }

    pub(crate) fn item(mut self, expr: Expr) -> Select {
        self.items.push((expr, None));
        self
    }

    pub(crate) fn item_as(mut self, expr: Expr, alias: &str) -> Select {
        self.items.push((expr, Some(alias.to_owned())));
        self
    }

    pub(crate) fn join(mut self, kind: JoinKind, source: Source, on: Expr) -> Select {
        self.joins.push(Join { kind, source, on });
        self
    }

    /// Adds a conjunct to the WHERE clause.
    pub(crate) fn filter(mut self, cond: Expr) -> Select {
        self.filters.push(cond);
        self
    }

    pub(crate) fn group_by(mut self, expr: Expr) -> Select {
        self.group_by.push(expr);
        self
    }

    pub(crate) fn union(mut self, other: Select) -> Select {
        self.unions.push(other);
        self
    }

    /// The statement as text; continuation lines are indented by `indent` spaces (the first
    /// line is not: it continues the caller's line).
    pub(crate) fn render(&self, indent: usize) -> String {
        let mut out = String::new();
        self.write(&mut out, indent);
        out
    }

    fn write(&self, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        let start = out.len();
        out.push_str(if self.distinct {
            "SELECT DISTINCT "
        } else {
            "SELECT "
        });
        let items: Vec<String> = self
            .items
            .iter()
            .map(|(expr, alias)| {
                let mut text = String::new();
                expr.write(&mut text, indent);
                if let Some(alias) = alias {
                    text.push_str(" AS ");
                    text.push_str(&ident(alias));
                }
                text
            })
            .collect();
        let one_line = items.join(", ");
        if out.len() - start + one_line.len() > LONG_SELECT {
            out.push_str(&items.join(&format!(",\n{pad}       ")));
        } else {
            out.push_str(&one_line);
        }
        let _ = write!(out, "\n{pad}FROM ");
        self.from.write(out, indent);
        for join in &self.joins {
            out.push('\n');
            out.push_str(&pad);
            out.push_str(match join.kind {
                JoinKind::Inner => "INNER JOIN ",
                JoinKind::Left => "LEFT JOIN ",
                JoinKind::LeftLateral => "LEFT JOIN LATERAL ",
            });
            join.source.write(out, indent);
            out.push_str(" ON ");
            join.on.write(out, indent);
        }
        for (i, cond) in self.filters.iter().enumerate() {
            let _ = write!(out, "\n{pad}{}", if i == 0 { "WHERE " } else { "  AND " });
            // Each conjunct is an operand of the AND the lines spell.
            if self.filters.len() > 1 {
                cond.write_operand(out, indent, AND + 1);
            } else {
                cond.write(out, indent);
            }
        }
        if !self.group_by.is_empty() {
            let _ = write!(out, "\n{pad}GROUP BY ");
            for (i, expr) in self.group_by.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                expr.write(out, indent);
            }
        }
        for other in &self.unions {
            let _ = write!(out, "\n{pad}UNION ");
            write_block(out, other, indent);
        }
    }
}

/// A text value as a Postgres string literal: `'…'` with `'` doubled, which is exact under
/// `standard_conforming_strings = on` (the default since PostgreSQL 9.1, assumed by every
/// generated file). Postgres text cannot hold NUL: the checker rejects it, and should one
/// slip through, it is written as the JSON escape `\u0000` inside a jsonb literal, which
/// Postgres refuses loudly instead of truncating.
pub(crate) fn literal(value: &str) -> String {
    if value.contains('\0') {
        // serde_json writes NUL as `\u0000`: the JSON text holds no NUL itself.
        let json = serde_json::Value::String(value.to_owned()).to_string();
        return format!("(CAST('{}' AS jsonb) #>> '{{}}')", json.replace('\'', "''"));
    }
    format!("'{}'", value.replace('\'', "''"))
}

/// An identifier: bare when it is `[a-z_][a-z0-9_]*` and not a reserved key word, else
/// double-quoted with `"` doubled. Generated identifiers are fixed names and validated ids,
/// so the quoted form is a safety net, not an expected output.
pub(crate) fn ident(name: &str) -> String {
    let mut bytes = name.bytes();
    let plain = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && !crate::sql_keywords::is_reserved(name);
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(a: &str, c: &str) -> Expr {
        Expr::column(a, c)
    }

    fn print(e: &Expr) -> String {
        let mut out = String::new();
        e.write(&mut out, 0);
        out
    }

    #[test]
    fn literals_double_quotes_and_keep_backslashes() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\nb"), r"'a\nb'");
        assert_eq!(literal("' OR 1=1 --"), "''' OR 1=1 --'");
        assert_eq!(literal("$hs$"), "'$hs$'");
        assert_eq!(literal("a\nb"), "'a\nb'");
        assert_eq!(literal(""), "''");
    }

    #[test]
    fn nul_becomes_a_json_escape_postgres_refuses() {
        assert_eq!(literal("a\0b"), r#"(CAST('"a\u0000b"' AS jsonb) #>> '{}')"#);
    }

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(ident("user_key"), "user_key");
        assert_eq!(ident("a0"), "a0");
        assert_eq!(ident("order"), "\"order\"");
        assert_eq!(ident("Big"), "\"Big\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(ident("9a"), "\"9a\"");
    }

    #[test]
    fn parentheses_follow_precedence() {
        let field = col("c", "properties").binary(Op::Field, Expr::text("a"));
        let nested = field.clone().binary(Op::Field, Expr::text("b"));
        assert_eq!(print(&nested), "c.properties -> 'a' -> 'b'");
        let cmp = nested.clone().eq(Expr::Int(1));
        assert_eq!(print(&cmp), "(c.properties -> 'a' -> 'b') = 1");
        // `->` binds looser than `-`: the field is parenthesized as an operand of `-`.
        assert_eq!(
            print(&field.clone().binary(Op::Sub, Expr::Seconds(5))),
            "(c.properties -> 'a') - make_interval(secs => 5)"
        );
        assert_eq!(
            print(&Expr::name("p_now").binary(Op::Sub, Expr::Seconds(5))),
            "p_now - make_interval(secs => 5)"
        );
        // Comparisons do not associate.
        assert_eq!(
            print(&cmp.clone().eq(Expr::Bool(true))),
            "((c.properties -> 'a' -> 'b') = 1) = TRUE"
        );
        assert_eq!(
            print(&Expr::JsonText(Box::new(field))),
            "c.properties -> 'a' #>> '{}'"
        );
        assert_eq!(
            print(&Expr::IsNull(Box::new(cmp.clone()), true)),
            "((c.properties -> 'a' -> 'b') = 1) IS NOT NULL"
        );
        assert_eq!(
            print(&Expr::name("x").binary(Op::Sub, Expr::Int(-1))),
            "x - (-1)"
        );
    }

    #[test]
    fn logic_is_parenthesized_for_the_reader() {
        let a = col("a", "x").eq(Expr::Int(1));
        let b = Expr::IsNull(Box::new(col("a", "y")), false);
        let or = Expr::any([a.clone(), b.clone()]);
        let and = Expr::all([or.clone(), a.clone().not()]);
        assert_eq!(print(&and), "(a.x = 1 OR a.y IS NULL) AND NOT (a.x = 1)");
        assert_eq!(
            print(&Expr::any([Expr::all([a.clone(), b.clone()]), b.clone()])),
            "(a.x = 1 AND a.y IS NULL) OR a.y IS NULL"
        );
        assert_eq!(print(&Expr::all([])), "TRUE");
        assert_eq!(print(&Expr::any([])), "FALSE");
        assert_eq!(print(&Expr::all([a.clone()])), "a.x = 1");
        assert_eq!(print(&Expr::Not(Box::new(Expr::Bool(true)))), "NOT TRUE");
    }

    #[test]
    fn statements_are_laid_out_by_structure() {
        let inner = Select::from(Source::table("s", "events", "e"))
            .item(col("e", "user_key"))
            .filter(col("e", "event").eq(Expr::text(" FROM ' (SELECT")))
            .filter(Expr::any([Expr::Bool(true), Expr::Bool(false)]))
            .group_by(col("e", "user_key"));
        let outer = Select::from(Source::table("s", "contacts", "c"))
            .item(col("c", "user_key"))
            .join(
                JoinKind::Left,
                Source::Subquery(Box::new(inner), "a".into()),
                col("a", "user_key").eq(col("c", "user_key")),
            )
            .filter(Expr::all([Expr::Bool(true), Expr::Bool(false)]));
        assert_eq!(
            outer.render(2),
            "SELECT c.user_key\n  FROM s.contacts AS c\n  LEFT JOIN (\n      SELECT e.user_key\n      FROM s.events AS e\n      WHERE e.event = ' FROM '' (SELECT'\n        AND (TRUE OR FALSE)\n      GROUP BY e.user_key\n    ) AS a ON a.user_key = c.user_key\n  WHERE TRUE AND FALSE"
        );
    }

    #[test]
    fn long_select_lists_go_one_item_per_line_and_unions_are_blocks() {
        let s = Select::from(Source::temp("_hs_changed"))
            .distinct()
            .item_as(
                Expr::Filter(Box::new(Expr::CountStar), Box::new(Expr::Bool(true))),
                "a0",
            )
            .item_as(
                Expr::Filter(Box::new(Expr::CountStar), Box::new(Expr::Bool(false))),
                "a1",
            )
            .union(Select::from(Source::temp("t")).item(Expr::name("user_key")));
        assert_eq!(
            s.render(0),
            "SELECT DISTINCT count(*) FILTER (WHERE TRUE) AS a0,\n       count(*) FILTER (WHERE FALSE) AS a1\nFROM _hs_changed\nUNION (\n    SELECT user_key\n    FROM t\n  )"
        );
    }
}
