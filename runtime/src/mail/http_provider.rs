//! The `http` provider: a Resend-compatible JSON API.
//!
//! One `POST {base_url}/emails` per message with `from`, `to`, `subject`, `html`, `text`,
//! `reply_to` and `headers` (`List-Unsubscribe`, `List-Unsubscribe-Post`, `List-Id`), the API
//! key as a bearer token, and an `Idempotency-Key` stable per message: a message sent again
//! after a crash (accepted by the provider, status not yet written) is recognised by the
//! provider, which answers with the id of the first send instead of sending twice.
//!
//! What an answer means ([`classify`]): 2xx is accepted (its `id` becomes the message's
//! `provider_id`); 429, 408, 5xx, 401/403 (the daemon's key, not the message) and a 409 for a
//! request with the same key still in progress are transient — retried later, after at
//! least the `Retry-After` the provider asked for; a 409 saying the key was used with
//! another payload means an earlier attempt was accepted (the message went out); any other
//! 4xx (422 a refused address or payload, 400 …) is permanent.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request, Uri};
use serde_json::{json, Map, Value};

use super::http_client::{client, HttpClient};
use super::provider::{Outgoing, SendError};
use super::settings::HttpSettings;

/// The largest answer read (an id or an error object is far smaller).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A configured Resend-compatible API.
#[derive(Clone)]
pub struct HttpProvider {
    client: HttpClient,
    endpoint: Uri,
    authorization: HeaderValue,
}

impl HttpProvider {
    /// The provider of `settings`, keeping up to `concurrency` connections alive.
    pub fn new(settings: &HttpSettings, concurrency: usize) -> Result<HttpProvider, String> {
        let endpoint: Uri = format!("{}/emails", settings.base_url)
            .parse()
            .map_err(|e| format!("invalid http_url: {e}"))?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", settings.api_key))
            .map_err(|_| "the API key holds characters a header cannot carry".to_string())?;
        authorization.set_sensitive(true);
        Ok(HttpProvider {
            client: client(concurrency),
            endpoint,
            authorization,
        })
    }

    /// Posts one message; the provider's id for it, when the answer carries one.
    pub async fn send(
        &self,
        m: &Outgoing,
        idempotency_key: &str,
    ) -> Result<Option<String>, SendError> {
        let body = request_body(m).to_string();
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", idempotency_key)
            .header("User-Agent", concat!("hogsend/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Permanent(format!("cannot build the request: {e}")))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| SendError::transient(format!("the API is unreachable: {e}")))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let answer = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        classify(status, retry_after, &answer)
    }
}

/// The JSON body of `POST /emails`.
fn request_body(m: &Outgoing) -> Value {
    let mut body = json!({
        "from": m.from,
        "to": [m.to],
        "subject": m.subject,
        "text": m.text,
    });
    if let Some(html) = &m.html {
        body["html"] = json!(html);
    }
    if let Some(reply_to) = &m.reply_to {
        body["reply_to"] = json!(reply_to);
    }
    if !m.headers.is_empty() {
        let headers: Map<String, Value> = m
            .headers
            .iter()
            .map(|(name, value)| ((*name).to_string(), json!(value)))
            .collect();
        body["headers"] = Value::Object(headers);
    }
    body
}

/// `Retry-After`: seconds, or an HTTP date (then the time until it).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// What the provider's answer means for the message (see the module's comment).
pub fn classify(
    status: u16,
    retry_after: Option<Duration>,
    answer: &[u8],
) -> Result<Option<String>, SendError> {
    let parsed: Option<Value> = serde_json::from_slice(answer).ok();
    if (200..300).contains(&status) {
        let id = parsed
            .as_ref()
            .and_then(|v| v.get("id"))
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string);
        return Ok(id);
    }
    let name = parsed
        .as_ref()
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map_or_else(
            || String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned(),
            str::to_string,
        );
    let described = if name.is_empty() {
        format!("HTTP {status}: {message}")
    } else {
        format!("HTTP {status} {name}: {message}")
    };
    match status {
        409 if name == "invalid_idempotent_request" => Ok(None),
        409 | 408 | 429 | 401 | 403 | 500..=599 => Err(SendError::Transient {
            message: described,
            retry_after,
        }),
        _ => Err(SendError::Permanent(described)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(200, None, br#"{"id": "re_1"}"#),
            Ok(Some("re_1".into()))
        );
        assert_eq!(classify(202, None, b"ok"), Ok(None));
        assert_eq!(
            classify(
                409,
                None,
                br#"{"name": "invalid_idempotent_request", "message": "x"}"#
            ),
            Ok(None),
            "an earlier attempt with this key was accepted"
        );
        let after = Some(Duration::from_secs(2));
        for status in [429, 500, 503, 408, 401, 403, 409] {
            match classify(status, after, br#"{"message": "busy"}"#) {
                Err(SendError::Transient {
                    message,
                    retry_after,
                }) => {
                    assert_eq!(retry_after, after);
                    assert!(message.contains("busy"), "{message}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        assert_eq!(
            classify(
                422,
                None,
                br#"{"statusCode": 422, "name": "validation_error", "message": "Invalid `to` field"}"#
            ),
            Err(SendError::Permanent(
                "HTTP 422 validation_error: Invalid `to` field".into()
            ))
        );
        assert!(matches!(
            classify(400, None, b"<html>"),
            Err(SendError::Permanent(m)) if m.contains("<html>")
        ));
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(80) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn the_body_carries_every_part() {
        let m = Outgoing {
            message_id: "<1.hogsend@acme.test>".into(),
            idempotency_key: "hogsend:x:1".into(),
            from: "Acme <hello@acme.test>".into(),
            reply_to: Some("help@acme.test".into()),
            to: "ada@x.test".into(),
            subject: "Hi".into(),
            html: Some("<p>Hi</p>".into()),
            text: "Hi".into(),
            headers: vec![("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into())],
        };
        assert_eq!(
            request_body(&m),
            json!({"from": "Acme <hello@acme.test>", "to": ["ada@x.test"], "subject": "Hi",
                   "text": "Hi", "html": "<p>Hi</p>", "reply_to": "help@acme.test",
                   "headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}})
        );
    }
}
