//! Errors of the runtime library.

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database holds a base schema newer than this hogsend knows.
    #[error(
        "the database schema `{schema}` is at base version {found}, newer than this hogsend \
         supports (version {supported}); upgrade hogsend instead of downgrading the database"
    )]
    NewerSchema {
        schema: String,
        found: i32,
        supported: i32,
    },
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
