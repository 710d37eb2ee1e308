//! Authentication (Bearer, or HTTP basic with the key as user name as Segment SDKs send),
//! scope checks, and the token-bucket rate limits: per key, and per source IP for
//! publishable keys (which may only use the event routes, [`Events`]).

use super::error::{ApiError, ErrorCode};
use super::AppState;
use crate::keys::{self, Caller, Scope};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The scope a route requires, as a type.
pub trait Required {
    /// The scope (an `admin` key passes every check).
    const SCOPE: Scope;
    /// Whether a publishable key may use the route (only the event routes).
    const PUBLISHABLE: bool = false;
}

/// The event routes (`/v1/events`, Segment's, PostHog's capture API): the `ingest` scope,
/// and open to publishable keys.
pub struct Events;
/// Routes that write contacts directly (`PUT /v1/contacts/{key}`, the PostHog webhook with
/// its person properties): the `ingest` scope, secret keys only.
pub struct Ingest;
/// Routes that read.
pub struct Read;
/// Routes that delete.
pub struct Admin;

impl Required for Events {
    const SCOPE: Scope = Scope::Ingest;
    const PUBLISHABLE: bool = true;
}
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
        let client = client_ip(parts, state);
        let caller = authorize::<R>(state, &key, client).await?;
        Ok(Auth(caller, PhantomData))
    }
}

/// The client's address: the last entry of the configured client-IP header
/// (`HOGSEND_CLIENT_IP_HEADER`, the address the proxy in front appended) when it is an
/// address, else the peer address of the connection. `None` when neither is known.
pub fn client_ip(parts: &Parts, state: &AppState) -> Option<IpAddr> {
    if let Some(name) = &state.config.client_ip_header {
        // Only the very last entry is the proxy's: when it is unreadable, the peer address
        // is used, never an earlier entry (the client wrote those).
        let from_header = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(parse_ip);
        if from_header.is_some() {
            return from_header;
        }
    }
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// What one rate-limit bucket of source addresses stands for: an IPv4 address, or the /64
/// network of an IPv6 address (one host usually holds a whole /64).
fn ip_bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client's address ([`client_ip`]), for handlers that authorize by hand.
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(ClientIp(client_ip(parts, state)))
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

fn rate_limited(state: &AppState, wait: u64, message: String) -> ApiError {
    state.metrics.rate_limited.fetch_add(1, Ordering::Relaxed);
    let mut err = ApiError::new(ErrorCode::RateLimited, message);
    err.retry_after = Some(wait);
    err
}

/// Verifies `key`, checks it allows route `R` (its scope; and whether a publishable key may
/// use it), and takes a token from its rate limits: the key's, and for a publishable key
/// also the client address's (`client`, from [`client_ip`]).
pub async fn authorize<R: Required>(
    state: &AppState,
    key: &str,
    client: Option<IpAddr>,
) -> Result<Caller, ApiError> {
    let scope = R::SCOPE;
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
    if caller.publishable && !R::PUBLISHABLE {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this is a publishable key: it may only send events (`POST /v1/events`, the \
             Segment routes, PostHog's capture API); use a secret key for this route",
        ));
    }
    if caller.publishable {
        if let Some(ip) = client {
            if let Err(wait) = state.ip_limiter.check(ip_bucket(ip)) {
                return Err(rate_limited(
                    state,
                    wait,
                    format!(
                        "too many requests from this address for a publishable key; retry in \
                         {wait} s (`HOGSEND_IP_RATE_LIMIT_PER_SECOND`)"
                    ),
                ));
            }
        }
    }
    if let Err(wait) = state.limiter.check(caller.key_id) {
        return Err(rate_limited(
            state,
            wait,
            format!(
                "too many requests for this key; retry in {wait} s (`[api] rate_limit_per_second`)"
            ),
        ));
    }
    Ok(caller)
}

/// The most source addresses (or keys) a limiter tracks at once: its memory is bounded.
const MAX_TRACKED: usize = 100_000;

/// Token buckets per key (an API key id, or a source address): `per_second` tokens refill
/// each second up to `burst`; a request takes one. `per_second = 0` turns the limit off.
///
/// At most [`MAX_TRACKED`] buckets are kept: when full, buckets that have refilled (they
/// hold no information) are dropped, at most once a second; a new key that still finds no
/// room is refused for a second, so a flood from more addresses than that cannot grow the
/// daemon's memory.
pub struct RateLimiter<K = i64> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<Buckets<K>>,
}

struct Buckets<K> {
    map: HashMap<K, (f64, Instant)>,
    pruned: Option<Instant>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// A limiter with these settings.
    pub fn new(per_second: u32, burst: u32) -> RateLimiter<K> {
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                pruned: None,
            }),
        }
    }

    /// Takes a token for `key`, or says how many whole seconds until one is available.
    pub fn check(&self, key: K) -> Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let Ok(mut guard) = self.buckets.lock() else {
            return Ok(());
        };
        let buckets = &mut *guard;
        if buckets.map.len() >= MAX_TRACKED && !buckets.map.contains_key(&key) {
            let due = buckets
                .pruned
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1));
            if due {
                let refill = Duration::from_secs_f64(self.burst / self.per_second);
                buckets
                    .map
                    .retain(|_, (_, last)| now.duration_since(*last) < refill);
                buckets.pruned = Some(now);
            }
            if buckets.map.len() >= MAX_TRACKED {
                return Err(1);
            }
        }
        let (tokens, last) = buckets.map.entry(key).or_insert((self.burst, now));
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

    #[test]
    fn ipv6_clients_are_limited_per_64_and_addresses_parse_as_proxies_write_them() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(ip_bucket(a), ip_bucket(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_bucket(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(parse_ip(" 10.1.2.3:443"), Some("10.1.2.3".parse().unwrap()));
        assert_eq!(
            parse_ip("[2001:db8::1]:443"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_ip("unknown"), None);
    }

    #[test]
    fn the_limiter_tracks_a_bounded_number_of_clients() {
        let limiter: RateLimiter<u32> = RateLimiter::new(1, 5);
        for k in 0..MAX_TRACKED as u32 {
            assert!(limiter.check(k).is_ok());
        }
        // Full, and every bucket has just been used: a new client waits.
        assert_eq!(limiter.check(u32::MAX), Err(1));
        assert!(limiter.check(0).is_ok(), "known clients keep their bucket");
        assert!(limiter.buckets.lock().unwrap().map.len() <= MAX_TRACKED);
    }
}
