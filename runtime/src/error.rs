//! Errors of the runtime library.

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database holds base-schema migrations this hogsend does not know: it was
    /// migrated by a newer build (a downgrade).
    #[error(
        "the database schema `{schema}` has base migration {found} applied, newer than this \
         hogsend knows (its latest is {supported}): it was migrated by a newer hogsend; run \
         that version (or newer) instead of downgrading"
    )]
    NewerSchema {
        /// The schema.
        schema: String,
        /// The highest version the database holds.
        found: i32,
        /// The highest version this build knows.
        supported: i32,
    },
    /// An applied base-schema migration's recorded checksum differs from this build's text
    /// of the same migration: one of them was edited after it was applied.
    #[error(
        "the database schema `{schema}` has base migration {version} ({name}) applied with \
         checksum {found}, but this hogsend's migration {version} has checksum {expected}: \
         applied migrations are frozen, so either the database was migrated by a build whose \
         migration {version} was edited, or this build's was; refusing to migrate (use the \
         build that created the database, or restore the database from a backup)"
    )]
    MigrationChecksum {
        /// The schema.
        schema: String,
        /// The migration's version.
        version: i32,
        /// Its name as recorded in the database.
        name: String,
        /// The checksum the database recorded.
        found: String,
        /// This build's checksum.
        expected: String,
    },
    /// The schema's migrations table predates checksums (a pre-release layout).
    #[error(
        "the database schema `{0}` was created by a pre-release hogsend whose migrations table \
         records no checksums; drop the schema (`drop schema {0} cascade`) and migrate again"
    )]
    UnversionedSchema(String),
    /// The project has not been migrated into this database yet.
    #[error("the schema `{0}` has no hogsend objects yet; run `hogsend migrate` first")]
    NotMigrated(String),
    /// A tick was asked for an instant before the last tick.
    #[error("{0}")]
    TickRefused(String),
    /// The listener failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other database error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The runtime's result type.
pub type Result<T> = std::result::Result<T, Error>;
