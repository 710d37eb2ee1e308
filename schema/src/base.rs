//! The base schema: what every hogsend database holds whatever the project.
//!
//! Two kinds of SQL, with two lifecycles (ARCHITECTURE.md, "Schema lifecycle"):
//!
//! - **Migrations** (`schema/sql/migrations/NNNN_name.sql`): tables, indexes, types and
//!   sequences. Append-only and frozen once committed: each is applied once, in version
//!   order, and recorded in `schema_migrations` with the SHA-256 of its text ([`Migration`]).
//!   A database whose recorded checksum differs from the binary's, or that holds a version
//!   the binary does not know, is refused by `migrate`.
//! - **Engine files** (`schema/sql/engine/*.sql`): every function, trigger and view, written
//!   `create or replace`. Every `migrate` re-applies all of them, in the same transaction as
//!   the generated project SQL, so a database always runs the engine code of the binary that
//!   last migrated it.
//!
//! Both are templates with two placeholders: `{{ s }}`, the schema name (a [`SchemaName`],
//! validated, written bare), and `{{ lock_key }}`, the schema's pass lock key.

use crate::{lock_key, SchemaName};
use sha2::{Digest, Sha256};

/// The migrations, in version order: (version, name, template text).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "base", include_str!("../sql/migrations/0001_base.sql")),
    (
        2,
        "messaging",
        include_str!("../sql/migrations/0002_messaging.sql"),
    ),
    (
        3,
        "journeys",
        include_str!("../sql/migrations/0003_journeys.sql"),
    ),
    (
        4,
        "realtime",
        include_str!("../sql/migrations/0004_realtime.sql"),
    ),
    (
        5,
        "journey_engine",
        include_str!("../sql/migrations/0005_journey_engine.sql"),
    ),
    (
        6,
        "publishable_keys",
        include_str!("../sql/migrations/0006_publishable_keys.sql"),
    ),
    (7, "email", include_str!("../sql/migrations/0007_email.sql")),
    (
        8,
        "campaigns",
        include_str!("../sql/migrations/0008_campaigns.sql"),
    ),
    (
        9,
        "journey_inbox_slots",
        include_str!("../sql/migrations/0009_journey_inbox_slots.sql"),
    ),
    (
        10,
        "email_provider",
        include_str!("../sql/migrations/0010_email_provider.sql"),
    ),
    (
        11,
        "event_summaries",
        include_str!("../sql/migrations/0011_event_summaries.sql"),
    ),
];

/// The engine files, in the order they are applied: (name, template text). Views and
/// functions reference only tables (plpgsql bodies are resolved at call time), triggers
/// the functions above them in their file.
const ENGINE: &[(&str, &str)] = &[
    ("views", include_str!("../sql/engine/views.sql")),
    ("capture", include_str!("../sql/engine/capture.sql")),
    ("pass", include_str!("../sql/engine/pass.sql")),
    ("project", include_str!("../sql/engine/project.sql")),
    ("identity", include_str!("../sql/engine/identity.sql")),
    ("messaging", include_str!("../sql/engine/messaging.sql")),
    ("journeys", include_str!("../sql/engine/journeys.sql")),
    ("campaigns", include_str!("../sql/engine/campaigns.sql")),
];

/// One numbered base-schema migration, rendered for a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Its number: 1, 2, … with no gaps.
    pub version: i32,
    /// A short name (the file name without number and extension).
    pub name: &'static str,
    /// The hex SHA-256 of the migration's template text (independent of the schema name):
    /// what `schema_migrations.checksum` records.
    pub checksum: String,
    /// The SQL for the schema.
    pub sql: String,
}

/// One engine file, rendered for a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineFile {
    /// The file name without extension.
    pub name: &'static str,
    /// The SQL for the schema.
    pub sql: String,
}

/// Every migration of this build for `schema`, in version order.
pub fn migrations(schema: &SchemaName) -> Vec<Migration> {
    MIGRATIONS
        .iter()
        .map(|&(version, name, text)| Migration {
            version,
            name,
            checksum: checksum(text),
            sql: render(text, schema),
        })
        .collect()
}

/// The highest migration version this build knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
}

/// Every engine file of this build for `schema`, in apply order.
pub fn engine(schema: &SchemaName) -> Vec<EngineFile> {
    ENGINE
        .iter()
        .map(|&(name, text)| EngineFile {
            name,
            sql: render(text, schema),
        })
        .collect()
}

/// The statements that create the schema and its migrations table when missing. Run by
/// `migrate` before it reads the table.
pub fn bootstrap(schema: &SchemaName) -> String {
    render(
        "create schema if not exists {{ s }};
create table if not exists {{ s }}.schema_migrations (
  version         integer primary key,
  name            text not null,
  checksum        text not null,
  hogsend_version text not null,
  applied_at      timestamptz not null default now()
);
",
        schema,
    )
}

/// `set local search_path` to `schema`: for a transaction that runs static statements.
pub fn set_local_search_path(schema: &SchemaName) -> String {
    format!("set local search_path to {schema}")
}

/// The hex SHA-256 of `text`.
fn checksum(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Substitutes the two placeholders. The schema name is validated (never needs quotes) and
/// the lock key is a number, so plain substitution cannot produce unintended SQL.
fn render(text: &str, schema: &SchemaName) -> String {
    text.replace("{{ s }}", schema.as_str())
        .replace("{{ lock_key }}", &lock_key(schema.as_str()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.0).unwrap(), i + 1, "{}", m.1);
        }
        assert_eq!(latest_version(), i32::try_from(MIGRATIONS.len()).unwrap());
    }

    #[test]
    fn every_placeholder_is_filled() {
        let s = SchemaName::new("hs_x").unwrap();
        let texts = migrations(&s)
            .into_iter()
            .map(|m| m.sql)
            .chain(engine(&s).into_iter().map(|e| e.sql))
            .chain([bootstrap(&s)]);
        for sql in texts {
            assert!(!sql.contains("{{") && !sql.contains("}}"), "{sql}");
            assert!(sql.contains("hs_x."), "{sql}");
        }
    }

    /// Migrations hold tables, indexes, types and sequences; engine files hold functions,
    /// triggers and views, each replaceable. A statement in the wrong kind of file would be
    /// applied once (and go stale) or fail on the second `migrate`. The one exception: a
    /// function a table needs (a column default) is created by the migration and re-created
    /// by an engine file, so that the engine's copy is the one that runs.
    #[test]
    fn each_kind_of_object_is_in_its_kind_of_file() {
        let engine_text: String = ENGINE.iter().map(|e| e.1).collect();
        for &(_, name, text) in MIGRATIONS {
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("create function ") {
                    let function = rest.split('(').next().unwrap_or(rest);
                    assert!(
                        engine_text.contains(&format!("create or replace function {function}(")),
                        "migration {name}: {function} is not re-created by an engine file"
                    );
                    continue;
                }
                for object in ["function", "trigger", "view", "procedure"] {
                    assert!(
                        !line.contains(&format!("create {object}"))
                            && !line.contains(&format!("create or replace {object}")),
                        "migration {name}: {line}"
                    );
                }
            }
        }
        for &(name, text) in ENGINE {
            for line in text.lines().filter(|l| l.starts_with("create")) {
                assert!(
                    line.starts_with("create or replace function")
                        || line.starts_with("create or replace trigger")
                        || line.starts_with("create or replace view"),
                    "engine file {name}: {line}"
                );
            }
        }
    }

    #[test]
    fn checksums_do_not_depend_on_the_schema() {
        let a = migrations(&SchemaName::new("a").unwrap());
        let b = migrations(&SchemaName::new("b").unwrap());
        assert_eq!(a[0].checksum, b[0].checksum);
        assert_ne!(a[0].sql, b[0].sql);
        assert_eq!(a[0].checksum.len(), 64);
    }
}
