//! DKIM signing of the `smtp` provider's messages (`[email] dkim`): the key is read once at
//! startup from the environment variable the config names; lettre signs each message
//! (relaxed/relaxed canonicalization, SHA-256) just before it is handed to the server.
//!
//! Keys: RSA in PEM, PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`, what
//! `openssl genrsa` writes); Ed25519 in PEM (PKCS#8, `openssl genpkey -algorithm ed25519`)
//! or as the base64 of its 32 bytes. The algorithm follows from the key.

use std::sync::Arc;

use base64::Engine;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;

/// The default variable of the private key.
pub const DEFAULT_KEY_ENV: &str = "HOGSEND_DKIM_KEY";

/// The headers signed (those a message lacks are signed as absent, so they cannot be added
/// later): the addresses, subject, date and id, and the unsubscribe headers mailbox
/// providers require to be signed for one-click unsubscribe. Not `Content-Type`: lettre
/// writes a multipart message's `Content-Type` with the body, after signing, so a
/// signature over it would never verify (the body hash covers the parts).
const SIGNED: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
];

/// Why a DKIM key cannot be used (a startup error; never shows the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimError {
    /// The variable is unset or empty.
    #[error("the DKIM private key is not in the environment variable {0}")]
    Missing(String),
    /// The key is neither RSA nor Ed25519 in a form we read.
    #[error(
        "the DKIM private key in {env} is unreadable ({problem}): expected an RSA key in PEM \
         (PKCS#1 or PKCS#8) or an Ed25519 key in PEM (PKCS#8) or as base64 of its 32 bytes"
    )]
    Unreadable {
        /// The variable.
        env: String,
        /// What the parser said.
        problem: String,
    },
    /// The selector or domain is empty or not a DNS name.
    #[error("[email] dkim {what} {value:?} is not a DNS label or name")]
    BadName {
        /// `selector` or `domain`.
        what: &'static str,
        /// The value.
        value: String,
    },
}

/// A loaded signing configuration (shared by every send).
#[derive(Clone)]
pub struct Dkim {
    config: Arc<DkimConfig>,
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// `rsa` or `ed25519`.
    pub algorithm: &'static str,
}

impl std::fmt::Debug for Dkim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dkim")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn dns_name(what: &'static str, value: &str) -> Result<String, DkimError> {
    let v = value.trim().trim_end_matches('.');
    let ok = !v.is_empty()
        && v.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(DkimError::BadName {
            what,
            value: value.to_string(),
        })
    }
}

/// The DER of an Ed25519 PKCS#8 private key is this prefix and the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The body of a PEM block, decoded.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// The signing key of `text`, and its algorithm.
fn signing_key(text: &str) -> Result<(DkimSigningKey, &'static str), String> {
    let text = text.trim();
    let err = |e: lettre::message::dkim::DkimSigningKeyError| e.to_string();
    let ed25519 = |seed: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(seed);
        DkimSigningKey::new(&b64, DkimSigningAlgorithm::Ed25519)
            .map(|k| (k, "ed25519"))
            .map_err(err)
    };
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        return DkimSigningKey::new(text, DkimSigningAlgorithm::Rsa)
            .map(|k| (k, "rsa"))
            .map_err(err);
    }
    if text.contains("-----BEGIN PRIVATE KEY-----") {
        if let Ok(rsa) = rsa::RsaPrivateKey::from_pkcs8_pem(text) {
            let pkcs1 = rsa
                .to_pkcs1_pem(rsa::pkcs8::LineEnding::LF)
                .map_err(|e| e.to_string())?;
            return DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
                .map(|k| (k, "rsa"))
                .map_err(err);
        }
        return match pem_der(text) {
            Some(der) if der.len() == 48 && der[..16] == ED25519_PKCS8_PREFIX => {
                ed25519(&der[16..])
            }
            _ => Err("a PKCS#8 key that is neither RSA nor Ed25519".into()),
        };
    }
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Ok(bytes) if bytes.len() == 32 => ed25519(&bytes),
        Ok(bytes) => Err(format!("{} bytes of base64, not 32", bytes.len())),
        Err(_) => Err("neither PEM nor base64".into()),
    }
}

impl Dkim {
    /// Loads `[email] dkim` with the key from the environment (`env` reads a variable).
    pub fn load(
        config: &hogsend_schema::settings::DkimConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Dkim, DkimError> {
        let selector = dns_name("selector", &config.selector)?;
        let domain = dns_name("domain", &config.domain)?;
        let key_env = config
            .private_key_env
            .clone()
            .unwrap_or_else(|| DEFAULT_KEY_ENV.to_string());
        let text = env(&key_env)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| DkimError::Missing(key_env.clone()))?;
        // Keys passed through an environment file often carry `\n` escapes.
        let text = text.replace("\\n", "\n");
        let (key, algorithm) = signing_key(&text).map_err(|problem| DkimError::Unreadable {
            env: key_env.clone(),
            problem,
        })?;
        let config = DkimConfig::new(
            selector.clone(),
            domain.clone(),
            key,
            SIGNED
                .iter()
                .map(|h| HeaderName::new_from_ascii_str(h))
                .collect(),
            DkimCanonicalization {
                header: DkimCanonicalizationType::Relaxed,
                body: DkimCanonicalizationType::Relaxed,
            },
        );
        Ok(Dkim {
            config: Arc::new(config),
            domain,
            selector,
            algorithm,
        })
    }

    /// Adds the `DKIM-Signature` header to `message`.
    pub fn sign(&self, message: &mut lettre::Message) {
        message.sign(&self.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hogsend_schema::settings::DkimConfig as Config;

    fn config() -> Config {
        Config {
            selector: "s1".into(),
            domain: "Acme.test".into(),
            private_key_env: Some("KEY".into()),
        }
    }

    #[test]
    fn a_missing_or_bad_key_is_an_error_that_never_shows_the_key() {
        let err = Dkim::load(&config(), |_| None).unwrap_err();
        assert_eq!(err, DkimError::Missing("KEY".into()));
        let err = Dkim::load(&config(), |_| Some("sekrit-not-a-key".into())).unwrap_err();
        assert!(matches!(err, DkimError::Unreadable { .. }), "{err}");
        assert!(!err.to_string().contains("sekrit"), "{err}");
        let err = Dkim::load(&config(), |_| {
            Some("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----".into())
        })
        .unwrap_err();
        assert!(matches!(err, DkimError::Unreadable { .. }), "{err}");
        let mut bad = config();
        bad.selector = "s 1".into();
        assert!(matches!(
            Dkim::load(&bad, |_| None).unwrap_err(),
            DkimError::BadName {
                what: "selector",
                ..
            }
        ));
    }

    #[test]
    fn ed25519_keys_load_raw_and_as_pkcs8() {
        let seed = [7u8; 32];
        let raw = base64::engine::general_purpose::STANDARD.encode(seed);
        let d = Dkim::load(&config(), |_| Some(raw.clone())).unwrap();
        assert_eq!(
            (d.algorithm, d.domain.as_str(), d.selector.as_str()),
            ("ed25519", "acme.test", "s1")
        );
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        );
        let d = Dkim::load(&config(), |_| Some(pem.replace('\n', "\\n"))).unwrap();
        assert_eq!(d.algorithm, "ed25519");
        assert!(!format!("{d:?}").contains(&raw));
    }
}
