//! Validated identifiers. Each is checked once, where it enters the program, and written into
//! SQL only through its type: none ever needs quoting, so SQL text may name it bare.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The start of every [`SchemaName`] error message (the compiler maps it to its own code).
pub const SCHEMA_ERROR_PREFIX: &str = "invalid schema name";

/// An identifier that failed validation; the message says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IdentError(String);

/// A Postgres schema name: `[a-z_][a-z0-9_]*`, at most 63 bytes, not starting with `pg_`,
/// not a reserved SQL key word. Never needs quotes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SchemaName(String);

impl SchemaName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<Self, IdentError> {
        let mut chars = name.chars();
        let ok_first = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let ok_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if crate::sql_keywords::is_reserved(name) {
            Err(IdentError(format!(
                "{SCHEMA_ERROR_PREFIX} `{name}`: a reserved SQL key word; choose another name"
            )))
        } else if ok_first && ok_rest && name.len() <= 63 && !name.starts_with("pg_") {
            Ok(SchemaName(name.to_owned()))
        } else {
            Err(IdentError(format!(
                "{SCHEMA_ERROR_PREFIX} `{name}`: expected [a-z_][a-z0-9_]*, at most 63 characters, not starting with `pg_`"
            )))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `hogsend`, the default schema.
impl Default for SchemaName {
    fn default() -> Self {
        SchemaName("hogsend".to_owned())
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A schema name is used wherever a `&str` is (it is one, validated).
impl std::ops::Deref for SchemaName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SchemaName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SchemaName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SchemaName::new(&s).map_err(serde::de::Error::custom)
    }
}

/// `[a-z][a-z0-9_]*`, at most 48 bytes: the rule for bucket and journey ids (the database
/// checks the same rule on `buckets.id`), so that `b_<id>_match` stays within Postgres's
/// 63-byte identifier limit.
fn valid_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && id.len() <= 48
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        /// Shown as the string it is, so that debug dumps of the checked program read the
        /// same as when ids were plain strings.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl $name {
            /// Validates `id`.
            pub fn new(id: &str) -> Result<Self, IdentError> {
                if valid_id(id) {
                    Ok($name(id.to_owned()))
                } else {
                    Err(IdentError(format!(
                        concat!("invalid ", $what, " id `{}`: expected [a-z][a-z0-9_]*, at most 48 characters"),
                        id
                    )))
                }
            }

            /// The id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// An id is used wherever a `&str` is (it is one, validated).
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

id_type!(
    /// A bucket id, as declared in `.hog` and stored in `buckets.id`.
    BucketId,
    "bucket"
);
id_type!(
    /// A journey id, as declared in `.hog`.
    JourneyId,
    "journey"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for ok in ["hogsend", "_x", "hs_1", &"a".repeat(63)] {
            assert_eq!(SchemaName::new(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "Hog",
            "1x",
            "a-b",
            "a\"b",
            "pg_x",
            "select",
            "user",
            &"a".repeat(64),
        ] {
            let err = SchemaName::new(bad).unwrap_err().to_string();
            assert!(err.starts_with(SCHEMA_ERROR_PREFIX), "{bad}: {err}");
        }
        assert_eq!(SchemaName::default().as_str(), "hogsend");
    }

    #[test]
    fn bucket_and_journey_ids() {
        assert!(BucketId::new("trial_users").is_ok());
        assert!(BucketId::new(&"a".repeat(48)).is_ok());
        for bad in ["", "_a", "A", "a-b", "a b", "x'", &"a".repeat(49)] {
            assert!(BucketId::new(bad).is_err(), "{bad}");
            assert!(JourneyId::new(bad).is_err(), "{bad}");
        }
        let id = BucketId::new("trial_users").unwrap();
        assert_eq!(format!("{id:?}"), "\"trial_users\"");
        assert!(id == "trial_users" && id.len() == 11);
        assert!(BucketId::new("9")
            .unwrap_err()
            .to_string()
            .starts_with("invalid bucket id"));
    }
}
