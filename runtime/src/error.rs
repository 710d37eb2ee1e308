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
    /// The database holds something hogsend never writes (e.g. an invalid bucket id).
    #[error("unexpected database content: {0}")]
    Corrupt(String),
    /// A tick was asked for an instant before the last tick.
    #[error("{0}")]
    TickRefused(String),
    /// The daemon's configuration cannot work (e.g. an email provider lettre refuses).
    #[error("configuration: {0}")]
    Config(String),
    /// The listener failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other database error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The runtime's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether the database is (transiently) out of reach: no connection could be had, the
    /// connection broke, or the server is shutting down, restarting, refusing connections
    /// or out of connection slots. The API answers these 503 with `Retry-After`: retrying
    /// later may succeed, and nothing was committed by a request that saw one (a commit
    /// whose answer was lost is safe to retry: message ids are idempotent).
    pub fn is_unavailable(&self) -> bool {
        let Error::Database(err) = self else {
            return false;
        };
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => true,
            sqlx::Error::Database(db) => {
                let code = db.code();
                let code = code.as_deref().unwrap_or("");
                // 08: connection exception; 57P01-57P03: terminated by an administrator,
                // crash or start-up/shut-down; 53300: too many connections; 55000 with this
                // message: the database does not accept connections (ALLOW_CONNECTIONS).
                code.starts_with("08")
                    || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
                    || (code == "55000" && db.message().contains("not currently accepting"))
            }
            _ => false,
        }
    }
}
