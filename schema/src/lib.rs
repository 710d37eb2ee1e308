//! What the hogsend compiler and runtime share, and nothing else: the base schema SQL
//! (append-only migrations and re-applied engine files, [`base`]), the generated files the
//! compiler hands the runtime ([`GeneratedFile`]), validated identifiers that stay typed
//! until they are written into SQL ([`SchemaName`], [`BucketId`], [`JourneyId`]), the
//! advisory lock keys ([`lock_key`]), SQL text helpers ([`sql`]) and the plain settings
//! types of `hogsend.toml` that the daemon reads ([`settings`]).
//!
//! **Invariant:** this crate knows nothing of `.hog` (no parser, no checker, no templates
//! engine): the runtime depends on it, and not on the compiler.

pub mod base;
mod files;
mod ident;
pub mod settings;
pub mod sql;
pub mod sql_keywords;

pub use files::{apply_order, GeneratedFile};
pub use ident::{BucketId, IdentError, JourneyId, SchemaName, SCHEMA_ERROR_PREFIX};

use sha2::{Digest, Sha256};

/// The advisory lock key derived from `name` (a schema name, or `<schema>/<purpose>` for a
/// lock of its own): the first 8 bytes of SHA-256(`hogsend:<name>`), big-endian. The pass
/// lock of a schema is `lock_key(schema)`; every writer of `transitions` holds it.
pub fn lock_key(name: &str) -> i64 {
    let digest = Sha256::digest(format!("hogsend:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

/// The lock key of the scheduler's leader election for `schema` (distinct from the pass
/// lock).
pub fn scheduler_lock_key(schema: &SchemaName) -> i64 {
    lock_key(&format!("{schema}/scheduler"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        // Changing the derivation would let an old and a new daemon tick concurrently.
        assert_eq!(lock_key("hogsend"), lock_key("hogsend"));
        assert_ne!(lock_key("hogsend"), lock_key("other"));
        let s = SchemaName::new("hogsend").unwrap();
        assert_ne!(scheduler_lock_key(&s), lock_key("hogsend"));
        assert_eq!(scheduler_lock_key(&s), lock_key("hogsend/scheduler"));
    }
}
