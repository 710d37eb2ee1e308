//! API keys: minted once, stored as a SHA-256 hash, checked in constant time.
//!
//! A key reads `hs_<prefix>_<secret>`: the 12-hex-digit prefix is public (it names the key in
//! `hogsend keys list` and finds its row), the 48-hex-digit secret holds at least 180 random bits. Only
//! the hash of the whole text is stored, so a database dump holds no usable key.
//!
//! An `ingest` key may be minted *publishable* ([`create_publishable`]): meant to be shipped
//! in a browser or mobile app, it may only send events, and is rate limited per source IP
//! as well as per key (docs/api.md, "Publishable keys").

use crate::db::not_migrated;
use crate::Result;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;

/// What a key may do. `admin` may do everything; `read` only reads; `ingest` only writes
/// events and contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Writes events and contacts.
    Ingest,
    /// Reads.
    Read,
    /// Everything.
    Admin,
}

impl Scope {
    /// Whether a key of this scope may use a route that requires `required`.
    pub fn allows(self, required: Scope) -> bool {
        self == Scope::Admin || self == required
    }

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Scope, String> {
        match s {
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope `{other}`: expected ingest, read or admin"
            )),
        }
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// The row id.
    pub id: i64,
    /// The public part of the key.
    pub prefix: String,
    /// A name to recognise it by.
    pub name: Option<String>,
    /// What it may do.
    pub scope: Scope,
    /// Whether it is a publishable `ingest` key (events only; limited per source IP).
    pub publishable: bool,
    /// When it was minted.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The caller a presented key authenticates.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's row id (the rate limit is per key).
    pub key_id: i64,
    /// What the key may do.
    pub scope: Scope,
    /// A publishable key: it may only send events, and is rate limited per source IP too.
    pub publishable: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn random_hex(len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        // v4 UUIDs come from the OS random source; 122 of their 128 bits are random.
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out.truncate(len);
    out
}

/// Mints a key: stores its hash and returns the stored row and the key text (shown once).
pub async fn create(
    executor: &mut PgConnection,
    schema: &str,
    scope: Scope,
    name: Option<&str>,
) -> Result<(KeyInfo, String)> {
    mint(executor, schema, scope, false, name).await
}

/// Mints a publishable `ingest` key (for browsers and mobile apps): like [`create`].
pub async fn create_publishable(
    executor: &mut PgConnection,
    schema: &str,
    name: Option<&str>,
) -> Result<(KeyInfo, String)> {
    mint(executor, schema, Scope::Ingest, true, name).await
}

async fn mint(
    executor: &mut PgConnection,
    schema: &str,
    scope: Scope,
    publishable: bool,
    name: Option<&str>,
) -> Result<(KeyInfo, String)> {
    let prefix = random_hex(12);
    let key = format!("hs_{prefix}_{}", random_hex(48));
    let (id, created_at): (i64, DateTime<Utc>) = sqlx::query_as(
        "insert into api_keys (prefix, hash, name, scope, publishable)
         values ($1, $2, $3, $4, $5)
         returning id, created_at",
    )
    .bind(&prefix)
    .bind(hash(&key))
    .bind(name)
    .bind(scope.as_str())
    .bind(publishable)
    .fetch_one(&mut *executor)
    .await
    .map_err(not_migrated(schema))?;
    let info = KeyInfo {
        id,
        prefix,
        name: name.map(str::to_owned),
        scope,
        publishable,
        created_at,
        revoked_at: None,
    };
    Ok((info, key))
}

/// A row of `api_keys` without the hash.
type KeyRow = (
    i64,
    String,
    Option<String>,
    String,
    bool,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// Every key, oldest first.
pub async fn list(executor: &mut PgConnection, schema: &str) -> Result<Vec<KeyInfo>> {
    let rows: Vec<KeyRow> = sqlx::query_as(
        "select id, prefix, name, scope, publishable, created_at, revoked_at
           from api_keys order by id",
    )
    .fetch_all(&mut *executor)
    .await
    .map_err(not_migrated(schema))?;
    Ok(rows
        .into_iter()
        .map(
            |(id, prefix, name, scope, publishable, created_at, revoked_at)| KeyInfo {
                id,
                prefix,
                name,
                scope: scope.parse().unwrap_or(Scope::Read),
                publishable,
                created_at,
                revoked_at,
            },
        )
        .collect())
}

/// Revokes the key with this id or prefix; false when there is no such live key.
pub async fn revoke(executor: &mut PgConnection, schema: &str, which: &str) -> Result<bool> {
    let done = sqlx::query(
        "update api_keys set revoked_at = now()
          where (prefix = $1 or id::text = $1) and revoked_at is null",
    )
    .bind(which)
    .execute(&mut *executor)
    .await
    .map_err(not_migrated(schema))?;
    Ok(done.rows_affected() > 0)
}

/// The caller `presented` authenticates, if it is a live key.
pub async fn verify(
    executor: &mut PgConnection,
    schema: &str,
    presented: &str,
) -> Result<Option<Caller>> {
    // A key is short ASCII: anything with U+0000 (which Postgres text cannot hold) or
    // longer than any key is unknown without asking the database.
    if presented.contains('\0') || presented.len() > 200 {
        return Ok(None);
    }
    let Some(prefix) = presented
        .strip_prefix("hs_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(prefix, _)| prefix)
    else {
        return Ok(None);
    };
    let row: Option<(i64, String, String, bool)> = sqlx::query_as(
        "select id, hash, scope, publishable from api_keys
          where prefix = $1 and revoked_at is null",
    )
    .bind(prefix)
    .fetch_optional(&mut *executor)
    .await
    .map_err(not_migrated(schema))?;
    Ok(row.and_then(|(id, stored, scope, publishable)| {
        let matches: bool = hash(presented).as_bytes().ct_eq(stored.as_bytes()).into();
        matches.then(|| Caller {
            key_id: id,
            scope: scope.parse().unwrap_or(Scope::Read),
            publishable,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert!(Scope::Admin.allows(Scope::Read));
        assert!(Scope::Admin.allows(Scope::Ingest));
        assert!(!Scope::Ingest.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Ingest));
        assert!(!Scope::Read.allows(Scope::Admin));
        assert_eq!("ingest".parse::<Scope>(), Ok(Scope::Ingest));
        assert!("root".parse::<Scope>().is_err());
    }

    #[test]
    fn random_parts_have_their_length() {
        assert_eq!(random_hex(48).len(), 48);
        assert_ne!(random_hex(48), random_hex(48));
        assert_eq!(hash("x").len(), 64);
    }
}
