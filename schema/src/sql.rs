//! SQL text helpers: the one way a value or a name is written into SQL text when it cannot be
//! bound as a parameter (DDL, generated function bodies).

/// `value` as a string literal for a server with `standard_conforming_strings` on (the
/// default since PostgreSQL 9.1): only `'` is doubled. A NUL cannot be written (Postgres
/// text cannot hold it) and is refused by returning `None`.
pub fn quote_literal(value: &str) -> Option<String> {
    if value.contains('\0') {
        return None;
    }
    Some(format!("'{}'", value.replace('\'', "''")))
}

/// `name` as a quoted identifier: `"` doubled, wrapped in `"`. Validated identifiers
/// ([`crate::SchemaName`], [`crate::BucketId`]) never need this.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_identifiers() {
        assert_eq!(quote_literal("it's").as_deref(), Some("'it''s'"));
        assert_eq!(quote_literal(r"a\b").as_deref(), Some(r"'a\b'"));
        assert_eq!(quote_literal("a\0b"), None);
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
