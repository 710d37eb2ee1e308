//! The OpenAPI 3.1 document of the API, generated from the handlers' and response types'
//! annotations (utoipa), served at `GET /v1/openapi.json` without a key: it describes the
//! routes and shapes, nothing about the data, and clients generate code from it.

use super::error::{ErrorBody, ErrorCode, ErrorObject};
use super::{
    buckets, campaigns, contacts, email_webhooks, events, journeys, lists, messages, ops, posthog,
    preferences, runs, segment, subscriptions, tracking, unsubscribe, AppState,
};
use crate::ingest::{FieldError, Outcome};
use crate::queries::campaigns::Campaign;
use crate::queries::journeys::{Journey, Run, RunCounts, RunStep, StepCounts};
use crate::queries::messages::Message;
use crate::queries::{
    Bucket, Contact, ContactMembership, Member, Membership, StoredEvent, Transition,
};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/openapi.json", get(serve))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hogsend",
        description = "Ingest events, read contacts, buckets, members, the transition \
            feed, journeys, runs, messages and campaigns. Every error answers `{\"error\": {\"code\", \"message\", \"details\"}}` \
            with a code from one registry. Authenticate with `Authorization: Bearer <key>` \
            (or HTTP basic auth with the key as user name); a key's scope is `ingest`, \
            `read` or `admin`."
    ),
    paths(
        events::post_events,
        segment::batch, segment::import, segment::track, segment::identify, segment::alias,
        segment::page, segment::screen, segment::group,
        posthog::webhook, posthog::capture,
        contacts::get_contact, contacts::put_contact, contacts::delete_contact,
        contacts::import_contacts,
        contacts::contact_buckets, contacts::contact_events,
        buckets::list, buckets::one, buckets::members, buckets::member, buckets::why, buckets::transitions,
        journeys::list, journeys::one, journeys::patch, journeys::runs,
        runs::one, runs::cancel, runs::contact_runs,
        messages::one, messages::contact_messages,
        campaigns::list, campaigns::one, campaigns::create, campaigns::cancel, campaigns::start,
        lists::lists, lists::list_members, lists::subscribe_many, lists::unsubscribe_many,
        subscriptions::subscriptions, subscriptions::put_subscriptions,
        subscriptions::suppress, subscriptions::unsuppress,
        email_webhooks::email_provider_webhook,
        unsubscribe::confirm, unsubscribe::unsubscribe, preferences::show, preferences::apply,
        tracking::open, tracking::click,
        ops::healthz, ops::readyz, ops::metrics,
        serve,
    ),
    components(schemas(
        ErrorBody, ErrorObject, ErrorCode, FieldError, Outcome, Contact, ContactMembership,
        StoredEvent, Bucket, Member, Membership, Transition, Journey, RunCounts, StepCounts,
        Run, RunStep, Message, Campaign, campaigns::CampaignList, campaigns::CampaignRequest,
        lists::List, lists::Lists, lists::ListMember, lists::ListMemberPage,
        lists::KeysRequest, lists::BulkSubscription,
        crate::import::Summary, crate::import::RowError, subscriptions::Subscription,
        subscriptions::Subscriptions, subscriptions::Suppression,
        subscriptions::SuppressionRequest, email_webhooks::WebhookOutcome,
    )),
    modifiers(&Security),
    tags(
        (name = "ingest", description = "hogsend's own ingest route and PostHog's webhook destination"),
        (name = "posthog", description = "PostHog's capture API, for PostHog SDKs (also at /capture/, /e/, /i/v0/e/, /i/v1/analytics/events)"),
        (name = "segment", description = "The Segment HTTP tracking API, for Segment and RudderStack SDKs"),
        (name = "contacts", description = "Contacts: upsert, read, delete, their buckets, events, runs and messages"),
        (name = "buckets", description = "Buckets, their members and their transition feed"),
        (name = "journeys", description = "Journeys and bucket reactions, their runs, pausing and cancelling"),
        (name = "messages", description = "The outbox: messages created by journeys and campaigns"),
        (name = "campaigns", description = "Campaigns (broadcasts): create, follow, cancel, start"),
        (name = "email", description = "Lists, subscriptions, suppressions and the email provider's webhooks"),
        (name = "pages", description = "What recipients open, without a key: the unsubscribe and preferences pages and the open and click tracking links (signed tokens)"),
        (name = "operations", description = "Liveness, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

/// Declares the two ways to present a key.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document (OpenAPI 3.1); no key needed.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
