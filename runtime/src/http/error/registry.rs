//! The registry of API error codes: every `error.code` the daemon can answer with, its
//! HTTP status and what it means.
//!
//! Codes are stable: once released, a code keeps its meaning and status forever, and a
//! retired code is never reused. Clients branch on the code, not on the message.

use axum::http::StatusCode;

macro_rules! registry {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, $status:ident, $description:literal; )*) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in registry order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The code as sent: `invalid_request`.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The HTTP status every answer with this code has.
            pub fn status(self) -> StatusCode {
                match self { $( ErrorCode::$variant => StatusCode::$status, )* }
            }

            /// What the code means and what to do about it, for people.
            pub fn description(self) -> &'static str {
                match self { $( ErrorCode::$variant => $description, )* }
            }
        }
    };
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A stable, machine-readable error code; its HTTP status never changes.",
            ))
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

registry! {
    // ---- 400: the request is wrong; sending it again fails again ----
    /// A body that parsed but does not validate.
    InvalidRequest => "invalid_request", BAD_REQUEST,
        "The body is JSON but some items are invalid; `details` has one entry per problem \
         (`index` of the item, `field`, `message`). Nothing was stored.";
    /// A query parameter out of range or unparsable.
    InvalidParameter => "invalid_parameter", BAD_REQUEST,
        "A query or path parameter is malformed or out of range (e.g. `limit` outside \
         1 to 1000); `details` names it.";
    /// A path segment that does not parse.
    InvalidPath => "invalid_path", BAD_REQUEST,
        "A path segment could not be read as the route expects.";
    /// A body that is not JSON.
    MalformedJson => "malformed_json", BAD_REQUEST,
        "The body is not valid JSON; `details` gives the line and column.";
    /// A body that could not be read or decoded.
    UnreadableBody => "unreadable_body", BAD_REQUEST,
        "The request body could not be read (a broken connection or a body that does not \
         decode as its `Content-Encoding` says).";
    // ---- 401 / 403: the key ----
    /// No key, an unreadable one, or one that is unknown or revoked.
    Unauthorized => "unauthorized", UNAUTHORIZED,
        "No API key, a malformed `Authorization` header, or a key that is unknown or \
         revoked. Send `Authorization: Bearer <key>` (or HTTP basic auth with the key as \
         user name).";
    /// A provider webhook whose signature does not verify.
    InvalidSignature => "invalid_signature", UNAUTHORIZED,
        "A provider webhook (`POST /v1/webhooks/email/{provider}`) whose `svix-signature` \
         matches no configured secret, whose `svix-*` headers are missing, whose \
         `svix-timestamp` is more than 5 minutes from now (a replay), or that arrived while no \
         secret is configured. Nothing was recorded.";
    /// A valid key whose scope does not cover the route.
    Forbidden => "forbidden", FORBIDDEN,
        "The key is valid but its scope does not allow this route (`ingest` writes, `read` \
         reads, `admin` everything).";
    // ---- 404 / 405 ----
    /// No route at this path.
    NotFound => "not_found", NOT_FOUND,
        "There is no route at this path.";
    /// Webhooks of a provider hogsend does not understand.
    UnknownProvider => "unknown_provider", NOT_FOUND,
        "`POST /v1/webhooks/email/{provider}` takes `resend` (the `http` provider's events).";
    /// An unsubscribe or preferences link whose token does not verify.
    InvalidLink => "invalid_link", NOT_FOUND,
        "The unsubscribe or preferences link is not one hogsend signed (mistyped, cut off \
         by a mail client, or signed with a secret no longer in HOGSEND_SECRET).";
    /// `DELETE /v1/suppressions/{email}` for an address that is not suppressed.
    NotSuppressed => "not_suppressed", NOT_FOUND,
        "The address is not suppressed.";
    /// No live contact with the key.
    ContactNotFound => "contact_not_found", NOT_FOUND,
        "There is no live contact with this key (never seen, or deleted).";
    /// No deployed bucket with the id.
    BucketNotFound => "bucket_not_found", NOT_FOUND,
        "No bucket with this id is deployed.";
    /// No declared list with the id.
    ListNotFound => "list_not_found", NOT_FOUND,
        "No list with this id is declared in the deployed project.";
    /// The contact is not a member of the bucket now.
    NotAMember => "not_a_member", NOT_FOUND,
        "The contact is not an active member of the bucket.";
    /// No deployed journey with the id.
    JourneyNotFound => "journey_not_found", NOT_FOUND,
        "No journey (or bucket reaction) with this id is deployed.";
    /// No run with the id.
    RunNotFound => "run_not_found", NOT_FOUND,
        "No journey run has this id.";
    /// No message with the id.
    MessageNotFound => "message_not_found", NOT_FOUND,
        "No message has this id.";
    /// No campaign with the id.
    CampaignNotFound => "campaign_not_found", NOT_FOUND,
        "No campaign has this id.";
    /// The route exists but not with this method.
    MethodNotAllowed => "method_not_allowed", METHOD_NOT_ALLOWED,
        "The route exists but does not take this HTTP method.";
    // ---- 409: the state does not allow it ----
    /// Cancelling a run that has already ended.
    RunEnded => "run_ended", CONFLICT,
        "The run has already ended (`completed`, `exited` or `failed`); only an `active` \
         or `waiting` run can be cancelled.";
    /// Cancelling or starting a campaign whose status does not allow it.
    CampaignFinished => "campaign_finished", CONFLICT,
        "The campaign has already ended (`sent`, `cancelled` or `failed`), or, for a start, \
         has already started.";
    /// An `Idempotency-Key` reused with a different campaign.
    IdempotencyKeyReused => "idempotency_key_reused", CONFLICT,
        "The `Idempotency-Key` created a campaign with a different body; use a new key for a \
         new campaign.";
    // ---- 408 / 413 / 415 ----
    /// The body did not arrive within the body timeout.
    BodyTimeout => "body_timeout", REQUEST_TIMEOUT,
        "The request body did not arrive within `HOGSEND_BODY_TIMEOUT` (30 s by default); \
         nothing was stored.";
    /// A body over `[api] max_body_bytes`.
    PayloadTooLarge => "payload_too_large", PAYLOAD_TOO_LARGE,
        "The body is larger than `[api] max_body_bytes`. Nothing was stored; send smaller \
         batches.";
    /// A body whose `Content-Type` is not JSON.
    UnsupportedMediaType => "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE,
        "The route takes `Content-Type: application/json`.";
    // ---- 429: retry later ----
    /// The key's token bucket is empty.
    RateLimited => "rate_limited", TOO_MANY_REQUESTS,
        "Too many requests for this key (`[api] rate_limit_per_second`, \
         `rate_limit_burst`); retry after the `Retry-After` seconds.";
    // ---- 5xx: the daemon; retry ----
    /// `/readyz`: a check failed.
    NotReady => "not_ready", SERVICE_UNAVAILABLE,
        "`/readyz`: the daemon cannot serve yet; `details` lists the failed checks \
         (`database`, `migrated`, `scheduler`).";
    /// The database is busy or unreachable.
    Unavailable => "unavailable", SERVICE_UNAVAILABLE,
        "The database is busy or unreachable; retry shortly.";
    /// The request was not answered within the request timeout.
    Timeout => "timeout", SERVICE_UNAVAILABLE,
        "The request was not answered within `HOGSEND_REQUEST_TIMEOUT` (60 s by default); \
         it may or may not have been stored: retry with the same message ids.";
    /// A bug or an unexpected failure, logged with an incident id.
    Internal => "internal", INTERNAL_SERVER_ERROR,
        "An unexpected failure. The message carries an incident id; the details are in \
         the server log, never in the answer.";
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_errors() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "`{s}` twice in the registry");
            assert!(
                s.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "`{s}` is not snake_case"
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
            assert!(!code.description().is_empty());
        }
    }
}
