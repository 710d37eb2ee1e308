//! Svix-style webhook signatures, as Resend (and every provider on Svix) sends them.
//!
//! Headers `svix-id`, `svix-timestamp` (Unix seconds) and `svix-signature` — a space-separated
//! list of `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. The key is the base64 after
//! `whsec_` of the endpoint's secret. A request verifies when any listed signature matches
//! any configured secret (so a secret can be rotated) and its timestamp is within
//! [`TOLERANCE_SECONDS`] of now, either way: a captured request cannot be replayed later.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a timestamp may be from now: 5 minutes.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a webhook does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No secret is configured: every webhook is refused.
    #[error("no webhook signing secret is configured")]
    NoSecret,
    /// A `svix-*` header is missing or unreadable.
    #[error("the `{0}` header is missing or malformed")]
    MissingHeader(&'static str),
    /// The timestamp is too far from now.
    #[error("the timestamp is more than 5 minutes from now (a replay, or a clock off)")]
    Stale,
    /// No signature matches.
    #[error("no signature matches")]
    Mismatch,
}

fn key(secret: &str) -> Vec<u8> {
    let raw = secret.trim();
    match raw.strip_prefix("whsec_") {
        Some(b64) => STANDARD
            .decode(b64)
            .unwrap_or_else(|_| b64.as_bytes().to_vec()),
        None => raw.as_bytes().to_vec(),
    }
}

fn mac(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key(secret)).expect("HMAC takes a key of any size");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The `svix-signature` value `secret` gives this request: `v1,<base64>`.
pub fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(mac(secret, id, timestamp, body)))
}

/// Checks a request's `svix-*` headers against the secrets at `now` (Unix seconds).
pub fn verify(
    secrets: &[String],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let id = id
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::MissingHeader("svix-id"))?;
    let timestamp = timestamp.ok_or(SignatureError::MissingHeader("svix-timestamp"))?;
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::MissingHeader("svix-timestamp"))?;
    let signatures = signatures
        .filter(|v| !v.is_empty())
        .ok_or(SignatureError::MissingHeader("svix-signature"))?;
    if (now - at).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    let given: Vec<Vec<u8>> = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    for secret in secrets {
        let expected = mac(secret, id, timestamp, body);
        if given.iter().any(|g| bool::from(g.ct_eq(&expected))) {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of Svix's documentation: secret, id, timestamp, body and signature.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_documented_example_verifies() {
        assert_eq!(sign(SECRET, ID, TS, BODY), SIGNATURE);
        let secrets = vec!["whsec_old".to_string(), SECRET.to_string()];
        let now = 1_614_265_330 + 60;
        let ok = |sig: &str, body: &[u8], now: i64| {
            verify(&secrets, Some(ID), Some(TS), Some(sig), body, now)
        };
        assert_eq!(ok(SIGNATURE, BODY, now), Ok(()));
        assert_eq!(ok(&format!("v1,bm9wZQ== {SIGNATURE}"), BODY, now), Ok(()));
        assert_eq!(
            ok(SIGNATURE, br#"{"test": 1}"#, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            ok(SIGNATURE, BODY, now + 600),
            Err(SignatureError::Stale),
            "a replay ten minutes later"
        );
        assert_eq!(
            verify(&[], Some(ID), Some(TS), Some(SIGNATURE), BODY, now),
            Err(SignatureError::NoSecret)
        );
        assert_eq!(
            verify(&secrets, None, Some(TS), Some(SIGNATURE), BODY, now),
            Err(SignatureError::MissingHeader("svix-id"))
        );
    }
}
