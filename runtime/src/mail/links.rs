//! Signed links: unsubscribe (`/u/{token}`), preferences (`/p/{token}`), open pixel
//! (`/o/{token}`) and click (`/c/{token}`) tokens.
//!
//! An unsubscribe or preferences token binds a contact key and a list id (`*` for the
//! preferences page); a tracking token binds a message id and, for a click, the target URL
//! (so the redirect can only go where the message linked: never an open redirect). Tokens
//! never expire, so a year-old email's link still works. A token is
//! `base64url(kind NUL list NUL key) "." base64url(HMAC-SHA256(secret, payload)[..16])`
//! (for tracking: `kind NUL message id NUL target`).
//! `HOGSEND_SECRET` may hold several secrets separated by commas: the first signs, every
//! one verifies, so a rotation (new secret first, the old one kept after it) leaves the
//! links already sent working.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC kept in a token (128 bits).
const MAC_LEN: usize = 16;

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Unsubscribe from one list.
    Unsubscribe,
    /// Manage every list.
    Preferences,
    /// Record that a message was opened (the pixel).
    Open,
    /// Record a click on a message's link and redirect to it.
    Click,
}

impl LinkKind {
    fn tag(self) -> &'static str {
        match self {
            LinkKind::Unsubscribe => "u",
            LinkKind::Preferences => "p",
            LinkKind::Open => "o",
            LinkKind::Click => "c",
        }
    }
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    /// The contact's key.
    pub user_key: String,
    /// The list id (`*` for the preferences page).
    pub list: String,
}

/// What a verified tracking token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingClaims {
    /// The message's id.
    pub message_id: i64,
    /// The link's target (empty for the open pixel).
    pub target: String,
}

/// Signs and verifies tokens with the configured secrets.
#[derive(Clone)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} key(s), redacted)", self.keys.len())
    }
}

impl Signer {
    /// A signer over `keys` (the first signs). Empty keys are ignored; `None` when none is
    /// left.
    pub fn new(keys: impl IntoIterator<Item = Vec<u8>>) -> Option<Signer> {
        let keys: Vec<Vec<u8>> = keys.into_iter().filter(|k| !k.is_empty()).collect();
        (!keys.is_empty()).then_some(Signer { keys })
    }

    /// The secrets of `HOGSEND_SECRET`'s value: comma-separated, trimmed.
    pub fn from_env_value(value: &str) -> Option<Signer> {
        Signer::new(value.split(',').map(|k| k.trim().as_bytes().to_vec()))
    }

    fn mac(key: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(payload);
        mac.finalize().into_bytes()[..MAC_LEN].to_vec()
    }

    /// The token of a link of `kind` for `user_key` and `list`.
    pub fn token(&self, kind: LinkKind, user_key: &str, list: &str) -> String {
        let payload = format!("{}\0{list}\0{user_key}", kind.tag());
        let mac = Signer::mac(&self.keys[0], payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// The claims of a token of `kind`, when one of the secrets signed it.
    pub fn verify(&self, kind: LinkKind, token: &str) -> Option<LinkClaims> {
        let (payload, mac) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        if mac.len() != MAC_LEN {
            return None;
        }
        let valid = self.keys.iter().any(|key| {
            let expected = Signer::mac(key, &payload);
            subtle::ConstantTimeEq::ct_eq(expected.as_slice(), mac.as_slice()).into()
        });
        if !valid {
            return None;
        }
        let text = String::from_utf8(payload).ok()?;
        let mut parts = text.splitn(3, '\0');
        let (tag, list, key) = (parts.next()?, parts.next()?, parts.next()?);
        (tag == kind.tag()).then(|| LinkClaims {
            user_key: key.to_string(),
            list: list.to_string(),
        })
    }
}

impl Signer {
    /// The token of a tracking link of `kind` (`Open`, `Click`) for message `message_id`
    /// and, for a click, its `target` URL.
    pub fn tracking_token(&self, kind: LinkKind, message_id: i64, target: &str) -> String {
        self.token(kind, target, &message_id.to_string())
    }

    /// The claims of a tracking token of `kind`, when one of the secrets signed it.
    pub fn verify_tracking(&self, kind: LinkKind, token: &str) -> Option<TrackingClaims> {
        let claims = self.verify(kind, token)?;
        Some(TrackingClaims {
            message_id: claims.list.parse().ok()?,
            target: claims.user_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let s = Signer::from_env_value("new-secret").unwrap();
        let t = s.token(LinkKind::Unsubscribe, "user:1/é", "news");
        let claims = s.verify(LinkKind::Unsubscribe, &t).unwrap();
        assert_eq!(claims.user_key, "user:1/é");
        assert_eq!(claims.list, "news");
        assert!(
            s.verify(LinkKind::Preferences, &t).is_none(),
            "kind is bound"
        );
        let forged = t.replacen('A', "B", 1);
        assert!(forged == t || s.verify(LinkKind::Unsubscribe, &forged).is_none());
        let other = Signer::from_env_value("other").unwrap();
        assert!(other.verify(LinkKind::Unsubscribe, &t).is_none());
        for junk in ["", ".", "a.b", "!!.??", &t[..t.len() - 2]] {
            assert!(s.verify(LinkKind::Unsubscribe, junk).is_none(), "{junk:?}");
        }
    }

    #[test]
    fn tracking_tokens_bind_the_message_and_the_target() {
        let s = Signer::from_env_value("k").unwrap();
        let url = "https://acme.test/a?b=1&c=%20";
        let t = s.tracking_token(LinkKind::Click, 42, url);
        assert_eq!(
            s.verify_tracking(LinkKind::Click, &t),
            Some(TrackingClaims {
                message_id: 42,
                target: url.into()
            })
        );
        assert!(s.verify_tracking(LinkKind::Open, &t).is_none());
        let open = s.tracking_token(LinkKind::Open, 7, "");
        assert_eq!(
            s.verify_tracking(LinkKind::Open, &open).unwrap().message_id,
            7
        );
        // Another target under the same MAC does not verify.
        let (_, mac) = t.split_once('.').unwrap();
        let payload = URL_SAFE_NO_PAD.encode(b"c\x0042\x00https://evil.test");
        assert!(s
            .verify_tracking(LinkKind::Click, &format!("{payload}.{mac}"))
            .is_none());
    }

    #[test]
    fn a_rotation_keeps_old_links_working() {
        let old = Signer::from_env_value("old").unwrap();
        let t = old.token(LinkKind::Unsubscribe, "k", "l");
        let rotated = Signer::from_env_value("new, old").unwrap();
        assert!(rotated.verify(LinkKind::Unsubscribe, &t).is_some());
        assert_ne!(
            rotated.token(LinkKind::Unsubscribe, "k", "l"),
            t,
            "the new secret signs"
        );
        assert!(Signer::from_env_value(" , ").is_none());
    }
}
