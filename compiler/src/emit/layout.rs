//! Lays out sea-query's one-line statements for review: one clause per line, `AND`s of a
//! WHERE on their own lines, select lists one item per line when long, and every
//! `(SELECT …)` subquery as an indented block.

/// Clause keywords that start a new line at the statement's own depth.
const CLAUSES: [&str; 6] = [
    " FROM ",
    " INNER JOIN ",
    " LEFT JOIN ",
    " WHERE ",
    " GROUP BY ",
    " UNION ",
];

/// Select lists longer than this go one item per line.
const LONG_SELECT: usize = 60;

/// Lays out `sql` (one statement, as sea-query writes it); continuation lines are indented
/// by `indent` spaces.
pub fn layout(sql: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let select_len = sql.find(" FROM ").unwrap_or(sql.len());
    let long_select = sql.starts_with("SELECT ") && select_len > LONG_SELECT;
    let mut out = String::with_capacity(sql.len() + 64);
    let mut depth = 0usize;
    let mut in_select = sql.starts_with("SELECT ");
    let mut i = 0;
    while i < sql.len() {
        let rest = &sql[i..];
        if rest.starts_with('\'') {
            let end = string_end(sql, i);
            out.push_str(&sql[i..end]);
            i = end;
            continue;
        }
        if rest.starts_with("(SELECT ") {
            let close = matching_paren(sql, i);
            let inner = layout(&sql[i + 1..close], indent + 4);
            out.push_str(&format!("(\n{pad}    {inner}\n{pad}  )"));
            i = close + 1;
            continue;
        }
        if depth == 0 {
            if let Some(clause) = CLAUSES.iter().find(|c| rest.starts_with(**c)) {
                let word = clause.trim_start();
                out.push('\n');
                out.push_str(&pad);
                out.push_str(word);
                in_select = false;
                i += clause.len();
                continue;
            }
            if rest.starts_with(" AND ") && !in_select {
                out.push('\n');
                out.push_str(&pad);
                out.push_str("  AND ");
                i += " AND ".len();
                continue;
            }
            if rest.starts_with(", ") && in_select && long_select {
                out.push_str(",\n");
                out.push_str(&pad);
                out.push_str("       ");
                i += 2;
                continue;
            }
        }
        match rest.as_bytes()[0] {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        let ch = rest.chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The index just past the string literal starting at `start` (`''` is an escaped quote).
fn string_end(sql: &str, start: usize) -> usize {
    let bytes = sql.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// The index of the `)` matching the `(` at `open` (skipping string literals).
fn matching_paren(sql: &str, open: usize) -> usize {
    let bytes = sql.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                i = string_end(sql, i);
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_and_subqueries() {
        let sql = "SELECT c.user_key FROM t AS c LEFT JOIN (SELECT e.user_key FROM e WHERE x = ' FROM ' AND y GROUP BY e.user_key) AS a ON a.k = c.k WHERE p AND (q AND r)";
        assert_eq!(
            layout(sql, 2),
            "SELECT c.user_key\n  FROM t AS c\n  LEFT JOIN (\n      SELECT e.user_key\n      FROM e\n      WHERE x = ' FROM '\n        AND y\n      GROUP BY e.user_key\n    ) AS a ON a.k = c.k\n  WHERE p\n    AND (q AND r)"
        );
    }

    #[test]
    fn strings_with_parens_and_quotes_are_opaque() {
        let sql = "SELECT 'it''s (SELECT' FROM t WHERE a = ')'";
        assert_eq!(
            layout(sql, 0),
            "SELECT 'it''s (SELECT'\nFROM t\nWHERE a = ')'"
        );
    }
}
