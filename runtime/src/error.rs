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
