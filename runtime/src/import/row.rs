//! What a line of an import becomes: a validated [`ImportRow`], or a [`RowError`] naming the
//! line. The CSV header's columns ([`Header`]) and an NDJSON object's fields map to the same
//! row (docs/cli.md#hogsend-import-contacts):
//!
//! - the key: `key`, or one of the aliases `user_id`, `external_id`, `distinct_id`, `id`;
//! - `email` (trimmed, lower-cased, checked);
//! - `timezone`: the `timezone` property, which must be an IANA zone name Postgres knows;
//! - `lists` (ids separated by `;` or `,`; a JSON array in NDJSON): subscribed to each;
//!   `subscribed:<list>` columns (`true`/`false`; a JSON object `subscriptions` in NDJSON);
//! - every other column a property: a string, unless the header says `name:number`,
//!   `name:boolean` or `name:json`. NDJSON values keep their JSON types.
//!
//! An empty CSV cell leaves what is stored; a JSON `null` removes a property (as in
//! `PUT /v1/contacts/{key}`).

use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::ingest::{normalize_email, validate};

/// The column names accepted for the contact key, `key` first.
pub const KEY_COLUMNS: [&str; 5] = ["key", "user_id", "external_id", "distinct_id", "id"];

/// The longest key, in characters (as `PUT /v1/contacts/{key}`).
const MAX_KEY_CHARS: usize = 255;

/// One contact to upsert.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    /// The line it came from (1-based; a CSV record's first line).
    pub line: u64,
    /// The contact key (trimmed).
    pub key: String,
    /// The email, normalized; `None` leaves the stored one.
    pub email: Option<String>,
    /// A shallow patch of the properties; `null` removes a key.
    pub properties: Map<String, Value>,
    /// Subscription choices, by list id: true subscribed, false unsubscribed.
    pub subscriptions: BTreeMap<String, bool>,
}

/// A line that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The line (1-based).
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// What rows are checked against: the declared lists and the zone names Postgres knows.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Declared list ids.
    pub lists: HashSet<String>,
    /// IANA zone names (`pg_timezone_names`).
    pub zones: Arc<HashSet<String>>,
}

/// The zone names, read once per process: `pg_timezone_names` reads the server's zone files
/// (~150 ms), and they change only with the server's time zone data.
static ZONES: tokio::sync::OnceCell<Arc<HashSet<String>>> = tokio::sync::OnceCell::const_new();

impl Catalog {
    /// Reads the declared lists and the zone names.
    pub async fn load(conn: &mut sqlx::PgConnection) -> crate::Result<Catalog> {
        let lists: Vec<String> = sqlx::query_scalar("select id from lists")
            .fetch_all(&mut *conn)
            .await?;
        let zones = ZONES
            .get_or_try_init(|| async {
                let zones: Vec<String> = sqlx::query_scalar("select name from pg_timezone_names")
                    .fetch_all(&mut *conn)
                    .await?;
                Ok::<_, crate::Error>(Arc::new(zones.into_iter().collect()))
            })
            .await?
            .clone();
        Ok(Catalog {
            lists: lists.into_iter().collect(),
            zones,
        })
    }

    fn list(&self, id: &str) -> Result<(), String> {
        if self.lists.contains(id) {
            Ok(())
        } else {
            Err(format!("`{id}` is not a declared list"))
        }
    }

    fn zone(&self, name: &str) -> Result<(), String> {
        if self.zones.contains(name) {
            Ok(())
        } else {
            Err(format!(
                "`{name}` is not a time zone name (an IANA name such as `Europe/Paris`)"
            ))
        }
    }
}

/// The type a CSV column's values are read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Boolean,
    Json,
}

/// What one CSV column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Key,
    Email,
    Timezone,
    Lists,
    Subscribed(String),
    Property(String, Kind),
}

/// A CSV header, read once: what each column holds.
#[derive(Debug, Clone)]
pub struct Header {
    columns: Vec<Column>,
}

impl Header {
    /// Reads the header record; a problem here refuses the whole file.
    pub fn parse(fields: &[String], catalog: &Catalog) -> Result<Header, String> {
        let mut columns = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for raw in fields {
            let name = raw.trim();
            if name.is_empty() {
                return Err(format!("column {} has no name", columns.len() + 1));
            }
            if !seen.insert(name.to_owned()) {
                return Err(format!("column `{name}` appears twice"));
            }
            let lower = name.to_lowercase();
            let column = if KEY_COLUMNS.contains(&lower.as_str()) {
                Column::Key
            } else if lower == "email" {
                Column::Email
            } else if lower == "timezone" {
                Column::Timezone
            } else if lower == "lists" {
                Column::Lists
            } else if let Some(list) = name.strip_prefix("subscribed:") {
                catalog.list(list)?;
                Column::Subscribed(list.to_owned())
            } else if let Some((prop, kind)) = name.rsplit_once(':') {
                let kind = match kind {
                    "string" => Kind::String,
                    "number" => Kind::Number,
                    "boolean" => Kind::Boolean,
                    "json" => Kind::Json,
                    other => {
                        return Err(format!(
                            "column `{name}`: unknown type `{other}` (expected string, number, boolean or json)"
                        ))
                    }
                };
                if prop.is_empty() {
                    return Err(format!("column `{name}` has no property name"));
                }
                Column::Property(prop.to_owned(), kind)
            } else {
                Column::Property(name.to_owned(), Kind::String)
            };
            if let Some(problem) = validate::parameter(name, false) {
                return Err(format!("column `{name}`: {problem}"));
            }
            columns.push(column);
        }
        match columns.iter().filter(|c| **c == Column::Key).count() {
            1 => {}
            0 => {
                return Err(format!(
                    "no key column (name one of {})",
                    KEY_COLUMNS.map(|k| format!("`{k}`")).join(", ")
                ))
            }
            _ => {
                return Err(format!(
                    "more than one key column (keep one of {})",
                    KEY_COLUMNS.map(|k| format!("`{k}`")).join(", ")
                ))
            }
        }
        let mut props = HashSet::new();
        for c in &columns {
            if let Column::Property(p, _) = c {
                if !props.insert(p.clone())
                    || (p == "timezone" && columns.contains(&Column::Timezone))
                {
                    return Err(format!("property `{p}` is set by two columns"));
                }
            }
        }
        Ok(Header { columns })
    }

    /// One CSV record as a row.
    pub fn row(
        &self,
        line: u64,
        fields: &[String],
        catalog: &Catalog,
    ) -> Result<ImportRow, RowError> {
        let bad = |message: String| RowError { line, message };
        if fields.len() != self.columns.len() {
            return Err(bad(format!(
                "expected {} fields, found {}",
                self.columns.len(),
                fields.len()
            )));
        }
        let mut row = ImportRow {
            line,
            key: String::new(),
            email: None,
            properties: Map::new(),
            subscriptions: BTreeMap::new(),
        };
        for (column, cell) in self.columns.iter().zip(fields) {
            if cell.contains('\0') {
                return Err(bad("a field contains a NUL character (U+0000)".into()));
            }
            match column {
                Column::Key => row.key = key(cell).map_err(bad)?,
                _ if cell.trim().is_empty() => {} // an empty cell leaves what is stored
                Column::Email => row.email = Some(email(cell).map_err(bad)?),
                Column::Timezone => {
                    let zone = cell.trim();
                    catalog.zone(zone).map_err(bad)?;
                    row.properties.insert("timezone".into(), Value::from(zone));
                }
                Column::Lists => {
                    for id in cell
                        .split([';', ','])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                    {
                        catalog.list(id).map_err(bad)?;
                        row.subscriptions.insert(id.to_owned(), true);
                    }
                }
                Column::Subscribed(list) => {
                    let choice = boolean(cell).ok_or_else(|| {
                        bad(format!(
                            "`subscribed:{list}`: `{cell}` is not true or false"
                        ))
                    })?;
                    row.subscriptions.insert(list.clone(), choice);
                }
                Column::Property(name, kind) => {
                    let value = typed(cell, *kind).map_err(|m| bad(format!("`{name}`: {m}")))?;
                    row.properties.insert(name.clone(), value);
                }
            }
        }
        if let Some(p) = validate::nul_bytes(&Value::Object(row.properties.clone())).first() {
            return Err(bad(format!("`{}`: {}", p.field, p.message)));
        }
        Ok(row)
    }
}

/// A key cell or field: trimmed, 1 to 255 characters.
fn key(text: &str) -> Result<String, String> {
    let key = text.trim();
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(format!("the key is longer than {MAX_KEY_CHARS} characters"));
    }
    if key.contains('\0') {
        return Err("the key contains a NUL character (U+0000)".into());
    }
    Ok(key.to_owned())
}

fn email(text: &str) -> Result<String, String> {
    normalize_email(text).ok_or_else(|| format!("`{}` is not an email address", text.trim()))
}

/// `true`/`false` and the usual spellings of spreadsheets.
fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "subscribed" => Some(true),
        "false" | "no" | "n" | "0" | "unsubscribed" => Some(false),
        _ => None,
    }
}

/// A cell read as its column's type.
fn typed(cell: &str, kind: Kind) -> Result<Value, String> {
    match kind {
        Kind::String => Ok(Value::from(cell)),
        Kind::Number => {
            let t = cell.trim();
            if let Ok(n) = t.parse::<i64>() {
                return Ok(Value::from(n));
            }
            t.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("`{t}` is not a number"))
        }
        Kind::Boolean => boolean(cell)
            .map(Value::Bool)
            .ok_or_else(|| format!("`{}` is not true or false", cell.trim())),
        Kind::Json => serde_json::from_str(cell).map_err(|e| format!("not JSON: {e}")),
    }
}

/// One NDJSON line as a row; `None` for a blank line.
pub fn ndjson_row(line: u64, text: &str, catalog: &Catalog) -> Option<Result<ImportRow, RowError>> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return None;
    }
    Some(ndjson_object(line, text, catalog).map_err(|message| RowError { line, message }))
}

fn ndjson_object(line: u64, text: &str, catalog: &Catalog) -> Result<ImportRow, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(p) = validate::nul_bytes(&value).first() {
        return Err(format!("`{}`: {}", p.field, p.message));
    }
    let Value::Object(object) = value else {
        return Err("expected a JSON object".into());
    };
    let mut row = ImportRow {
        line,
        key: String::new(),
        email: None,
        properties: Map::new(),
        subscriptions: BTreeMap::new(),
    };
    let mut key_field: Option<&str> = None;
    for (field, value) in &object {
        let lower = field.to_lowercase();
        match (lower.as_str(), value) {
            (k, v) if KEY_COLUMNS.contains(&k) => {
                if let Some(first) = key_field {
                    return Err(format!("two key fields, `{first}` and `{field}`"));
                }
                key_field = Some(field);
                row.key = match v {
                    Value::String(s) => key(s)?,
                    Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                    _ => return Err(format!("`{field}`: expected a string")),
                };
            }
            ("email", Value::Null) => {}
            ("email", Value::String(s)) => row.email = Some(email(s)?),
            ("email", _) => return Err("`email`: expected a string".into()),
            ("timezone", Value::Null) => {
                row.properties.insert("timezone".into(), Value::Null);
            }
            ("timezone", Value::String(s)) => {
                catalog.zone(s.trim())?;
                row.properties
                    .insert("timezone".into(), Value::from(s.trim()));
            }
            ("timezone", _) => return Err("`timezone`: expected a string".into()),
            ("properties", Value::Object(m)) => {
                for (k, v) in m {
                    row.properties.insert(k.clone(), v.clone());
                }
            }
            ("properties", Value::Null) => {}
            ("properties", _) => return Err("`properties`: expected an object".into()),
            ("lists", Value::Array(ids)) => {
                for id in ids {
                    let Some(id) = id.as_str() else {
                        return Err("`lists`: expected an array of list ids".into());
                    };
                    catalog.list(id)?;
                    row.subscriptions.insert(id.to_owned(), true);
                }
            }
            ("lists", _) => return Err("`lists`: expected an array of list ids".into()),
            ("subscriptions", Value::Object(m)) => {
                for (id, choice) in m {
                    catalog.list(id)?;
                    let Some(choice) = choice.as_bool() else {
                        return Err(format!("`subscriptions.{id}`: expected true or false"));
                    };
                    row.subscriptions.insert(id.clone(), choice);
                }
            }
            ("subscriptions", _) => {
                return Err(
                    "`subscriptions`: expected an object of list ids to true or false".into(),
                )
            }
            _ => {
                row.properties.insert(field.clone(), value.clone());
            }
        }
    }
    if key_field.is_none() {
        return Err(format!(
            "no key (a field named one of {})",
            KEY_COLUMNS.map(|k| format!("`{k}`")).join(", ")
        ));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            lists: ["news".to_owned(), "tips".to_owned()].into(),
            zones: Arc::new(["Europe/Paris".to_owned()].into()),
        }
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn header_columns_and_typed_cells() {
        let c = catalog();
        let h = Header::parse(
            &strings(&[
                "user_id",
                "email",
                "timezone",
                "age:number",
                "vip:boolean",
                "plan",
                "lists",
                "subscribed:tips",
            ]),
            &c,
        )
        .unwrap();
        let row = h
            .row(
                2,
                &strings(&[
                    " u1 ",
                    "A@X.io",
                    "Europe/Paris",
                    "31",
                    "yes",
                    "pro",
                    "news",
                    "false",
                ]),
                &c,
            )
            .unwrap();
        assert_eq!(row.key, "u1");
        assert_eq!(row.email.as_deref(), Some("a@x.io"));
        assert_eq!(
            Value::Object(row.properties),
            serde_json::json!({"timezone": "Europe/Paris", "age": 31, "vip": true, "plan": "pro"})
        );
        assert_eq!(
            row.subscriptions,
            [("news".to_owned(), true), ("tips".to_owned(), false)].into()
        );
        let empty = h
            .row(3, &strings(&["u2", "", "", "", "", "", "", ""]), &c)
            .unwrap();
        assert!(
            empty.properties.is_empty() && empty.email.is_none() && empty.subscriptions.is_empty()
        );
    }

    #[test]
    fn header_problems() {
        let c = catalog();
        assert!(Header::parse(&strings(&["email"]), &c).is_err());
        assert!(Header::parse(&strings(&["key", "id"]), &c).is_err());
        assert!(Header::parse(&strings(&["key", "a", "a"]), &c).is_err());
        assert!(Header::parse(&strings(&["key", "subscribed:nope"]), &c).is_err());
        assert!(Header::parse(&strings(&["key", "n:integer"]), &c).is_err());
    }

    #[test]
    fn row_problems() {
        let c = catalog();
        let h = Header::parse(
            &strings(&["key", "email", "lists", "timezone", "n:number"]),
            &c,
        )
        .unwrap();
        for (cells, problem) in [
            (vec!["", "", "", "", ""], "key is empty"),
            (vec!["k", "nope", "", "", ""], "not an email"),
            (
                vec!["k", "", "news;gone", "", ""],
                "`gone` is not a declared list",
            ),
            (vec!["k", "", "", "Mars/Base", ""], "not a time zone"),
            (vec!["k", "", "", "", "x"], "not a number"),
            (vec!["k"], "expected 5 fields, found 1"),
        ] {
            let err = h.row(7, &strings(&cells), &c).unwrap_err();
            assert_eq!(err.line, 7);
            assert!(err.message.contains(problem), "{err:?} lacks {problem}");
        }
    }

    #[test]
    fn ndjson_rows() {
        let c = catalog();
        let row = ndjson_row(
            1,
            r#"{"id": 42, "email": "b@x.io", "plan": "pro", "n": 3, "gone": null, "properties": {"x": [1]}, "lists": ["news"], "subscriptions": {"tips": false}}"#,
            &c,
        )
        .unwrap()
        .unwrap();
        assert_eq!(row.key, "42");
        assert_eq!(
            Value::Object(row.properties),
            serde_json::json!({"plan": "pro", "n": 3, "gone": null, "x": [1]})
        );
        assert_eq!(
            row.subscriptions,
            [("news".to_owned(), true), ("tips".to_owned(), false)].into()
        );
        assert!(ndjson_row(2, "   ", &c).is_none());
        for bad in [
            r#"[1]"#,
            r#"{"email": "a@b.c"}"#,
            r#"{"key": "k", "lists": ["x"]}"#,
            "{",
            r#"{"key":"a","user_id":"b"}"#,
        ] {
            assert!(ndjson_row(3, bad, &c).unwrap().is_err(), "{bad}");
        }
    }
}
