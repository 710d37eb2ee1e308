//! Authentication (Bearer, or HTTP basic with the key as user name as Segment SDKs send),
//! scope checks and the per-key token-bucket rate limit.

use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::keys::{self, Caller, Scope};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Instant;

/// The scope a route requires, as a type.
pub trait Required {
    /// The scope (an `admin` key passes every check).
    const SCOPE: Scope;
}

/// Routes that write events and contacts.
pub struct Ingest;
/// Routes that read.
pub struct Read;
/// Routes that delete.
pub struct Admin;

impl Required for Ingest {
    const SCOPE: Scope = Scope::Ingest;
}
impl Required for Read {
    const SCOPE: Scope = Scope::Read;
}
impl Required for Admin {
    const SCOPE: Scope = Scope::Admin;
}

/// An authenticated, authorized, rate-limited caller.
pub struct Auth<R>(pub Caller, PhantomData<R>);

/// The key presented in `Authorization`: `Bearer <key>` or `Basic base64(<key>:)`.
fn presented(headers: &HeaderMap) -> Result<String, ApiError> {
    let unauthorized = |message: &str| ApiError::new(ErrorCode::Unauthorized, message.to_owned());
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing API key: send `Authorization: Bearer <key>`"))?
        .to_str()
        .map_err(|_| unauthorized("unreadable Authorization header"))?
        .trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Ok(rest.trim().to_owned()),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| unauthorized("malformed basic credentials"))?;
            Ok(decoded.split(':').next().unwrap_or("").to_owned())
        }
        _ => Err(unauthorized(
            "unsupported Authorization scheme: use `Bearer <key>`",
        )),
    }
}

impl<R: Required> FromRequestParts<AppState> for Auth<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = presented(&parts.headers)?;
        let caller = authorize(state, &key, R::SCOPE).await?;
        Ok(Auth(caller, PhantomData))
    }
}

/// The key in `Authorization`, if the request sends that header (PostHog's capture API
/// may carry its key in the body instead).
pub fn header_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        presented(headers).map(Some)
    } else {
        Ok(None)
    }
}

/// Verifies `key`, checks it allows `scope` and takes a token from its rate limit.
pub async fn authorize(state: &AppState, key: &str, scope: Scope) -> Result<Caller, ApiError> {
    let mut conn = state.pool.acquire().await.map_err(crate::Error::from)?;
    let caller = keys::verify(&mut conn, &state.config.schema, key)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "invalid or revoked API key"))?;
    if !caller.scope.allows(scope) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "this key has scope `{}`; this route needs `{scope}` (or `admin`)",
                caller.scope,
            ),
        ));
    }
    if let Err(wait) = state.limiter.check(caller.key_id) {
        state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
        let mut err = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "too many requests for this key; retry in {wait} s (`[api] rate_limit_per_second`)"
            ),
        );
        err.retry_after = Some(wait);
        return Err(err);
    }
    Ok(caller)
}

/// Token buckets per key id: `per_second` tokens refill each second up to `burst`; a
/// request takes one. `per_second = 0` turns the limit off.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter with these settings.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`, or says how many whole seconds until one is available.
    pub fn check(&self, key: i64) -> Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (tokens, last) = buckets.entry(key).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_refuses() {
        let limiter = RateLimiter::new(1, 3);
        assert!(limiter.check(1).is_ok());
        assert!(limiter.check(1).is_ok());
        assert!(limiter.check(1).is_ok());
        assert_eq!(limiter.check(1), Err(1));
        assert!(limiter.check(2).is_ok(), "keys have their own buckets");
        assert!(RateLimiter::new(0, 0).check(1).is_ok());
    }
}
