//! Publishable keys (docs/api.md, "Publishable keys"): an `ingest` key meant for browsers and
//! apps. It may only send events (every event route, no contact reads or writes, no
//! webhook), cannot set a contact's email or fold an identified contact, and is rate limited
//! per source address as well as per key; browsers reach it through CORS.

use hogsend_engine_tests::compile;
use hogsend_runtime::keys;
use hogsend_runtime::testkit::{request, Response, TestDaemon, TestDatabase};
use serde_json::{json, Value};

const PROJECT: &str = "bucket pro {\n  criteria contact.plan == \"pro\"\n}\n";

async fn publishable_key(tdb: &TestDatabase) -> String {
    let mut conn = tdb.connect().await;
    let (info, key) = keys::create_publishable(&mut conn, "hogsend", Some("web"))
        .await
        .unwrap();
    assert!(info.publishable);
    assert_eq!(info.scope, keys::Scope::Ingest);
    key
}

/// A JSON request with a Bearer key and extra headers.
async fn call(
    d: &TestDaemon,
    method: &str,
    path: &str,
    key: &str,
    extra: &[(&str, &str)],
    body: Option<&Value>,
) -> Response {
    let mut headers = vec![("Authorization".to_owned(), format!("Bearer {key}"))];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let body = body.map(|b| {
        headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        b.to_string().into_bytes()
    });
    request(d.addr, method, path, &headers, body.as_deref()).await
}

async fn scalar(tdb: &TestDatabase, sql: &str) -> Value {
    let mut conn = tdb.connect().await;
    sqlx::query_scalar::<_, Value>(&format!("select to_jsonb(({sql}))"))
        .fetch_one(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], code, "{}", r.body);
    assert!(r.json()["error"]["message"].is_string(), "{}", r.body);
}

#[tokio::test]
async fn a_publishable_key_sends_events_and_nothing_else() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    let key = publishable_key(&tdb).await;

    // Every event route takes it.
    let r = call(
        &d,
        "POST",
        "/v1/events",
        &key,
        &[],
        Some(&json!({"anonymous_id": "visitor", "event": "app_opened"})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = call(
        &d,
        "POST",
        "/v1/track",
        &key,
        &[],
        Some(&json!({"anonymousId": "visitor", "event": "viewed_pricing"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let capture = json!({"api_key": key, "batch": [
        {"event": "$pageview", "distinct_id": "visitor", "properties": {"$current_url": "/"}}]});
    let r = request(
        d.addr,
        "POST",
        "/batch/",
        &[("Content-Type".to_owned(), "application/json".to_owned())],
        Some(capture.to_string().as_bytes()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        scalar(
            &tdb,
            "select count(*) from hogsend.events where user_key = 'visitor'"
        )
        .await,
        3
    );

    // No reads, no contact writes, no webhook (it carries person properties), no deletes.
    for (method, path, body) in [
        ("GET", "/v1/contacts/visitor", None),
        ("GET", "/v1/contacts/visitor/events", None),
        ("GET", "/v1/buckets", None),
        ("GET", "/v1/buckets/pro/members", None),
        ("DELETE", "/v1/contacts/visitor", None),
        (
            "PUT",
            "/v1/contacts/visitor",
            Some(json!({"properties": {"plan": "pro"}})),
        ),
        (
            "POST",
            "/v1/webhooks/posthog",
            Some(json!({"event": "x", "distinct_id": "visitor"})),
        ),
    ] {
        let r = call(&d, method, path, &key, &[], body.as_ref()).await;
        assert_error(&r, 403, "forbidden");
    }
    let r = call(
        &d,
        "PUT",
        "/v1/contacts/visitor",
        &key,
        &[],
        Some(&json!({"properties": {"plan": "pro"}})),
    )
    .await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("publishable")),
        "{}",
        r.body
    );
    assert_eq!(
        scalar(
            &tdb,
            "select properties from hogsend.contacts where user_key = 'visitor'"
        )
        .await,
        json!({}),
        "the refused PUT changed nothing"
    );
    // A revoked publishable key is a 401 like any other.
    let mut conn = tdb.connect().await;
    let prefix = key.split('_').nth(1).unwrap().to_owned();
    assert!(keys::revoke(&mut conn, "hogsend", &prefix).await.unwrap());
    let r = call(
        &d,
        "POST",
        "/v1/events",
        &key,
        &[],
        Some(&json!({"anonymous_id": "visitor", "event": "app_opened"})),
    )
    .await;
    assert_error(&r, 401, "unauthorized");
    d.stop().await.unwrap();
}

#[tokio::test]
async fn a_publishable_key_patches_properties_but_not_emails_or_identified_contacts() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |_| {}).await;
    let key = publishable_key(&tdb).await;
    // A known customer, created by the server with a secret key.
    let r = d
        .call(
            "PUT",
            "/v1/contacts/victim",
            Some(&d.ingest_key),
            Some(&json!({"email": "victim@example.com", "properties": {"plan": "free"}})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // identify from the browser: the anonymous visitor is folded into the user, traits are
    // stored as properties, but the email address is not set.
    let r = call(
        &d,
        "POST",
        "/v1/track",
        &key,
        &[],
        Some(&json!({"anonymousId": "anon-1", "event": "viewed_pricing"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &d,
        "POST",
        "/v1/identify",
        &key,
        &[],
        Some(&json!({"userId": "web-user", "anonymousId": "anon-1",
                     "traits": {"email": "spam-target@example.com", "plan": "pro"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        scalar(
            &tdb,
            "select jsonb_agg(jsonb_build_object('key', user_key, 'anon', anonymous_id,
                    'email', email, 'plan', properties->>'plan', 'trait', properties->>'email')
                    order by user_key)
               from hogsend.contacts where deleted_at is null"
        )
        .await,
        json!([
            {"key": "victim", "anon": null, "email": "victim@example.com", "plan": "free", "trait": null},
            {"key": "web-user", "anon": "anon-1", "email": null, "plan": "pro",
             "trait": "spam-target@example.com"}
        ])
    );
    assert_eq!(
        scalar(
            &tdb,
            "select count(*) from hogsend.events where event = 'viewed_pricing' and user_key = 'web-user'"
        )
        .await,
        1,
        "the anonymous event moved to the user"
    );

    // alias / $create_alias / $identify naming an identified contact as the anonymous side
    // fold nothing: the victim keeps its history, key and email.
    let r = call(
        &d,
        "POST",
        "/v1/alias",
        &key,
        &[],
        Some(&json!({"userId": "attacker", "previousId": "victim"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let capture = json!({"api_key": key, "batch": [
        {"event": "$identify", "distinct_id": "attacker",
         "properties": {"$anon_distinct_id": "victim"}},
        {"event": "$create_alias", "distinct_id": "victim",
         "properties": {"alias": "attacker"}}]});
    let r = request(
        d.addr,
        "POST",
        "/batch/",
        &[("Content-Type".to_owned(), "application/json".to_owned())],
        Some(capture.to_string().as_bytes()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        scalar(
            &tdb,
            "select jsonb_build_object('key', user_key, 'email', email, 'deleted', deleted_at is not null)
               from hogsend.contacts where user_key = 'victim'"
        )
        .await,
        json!({"key": "victim", "email": "victim@example.com", "deleted": false})
    );
    assert_eq!(
        scalar(
            &tdb,
            "select count(*) from hogsend.contact_aliases where alias = 'victim'"
        )
        .await,
        0
    );
    // web-user absorbed anon-1 above: identified too, whatever its email.
    let r = call(
        &d,
        "POST",
        "/v1/alias",
        &key,
        &[],
        Some(&json!({"userId": "attacker", "previousId": "web-user"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        scalar(
            &tdb,
            "select count(*) from hogsend.contacts where user_key = 'web-user' and deleted_at is null"
        )
        .await,
        1
    );
    // posthog-js's login: its anonymous distinct id is a user id to hogsend, and the contact
    // its events created holds nothing else, so $identify folds it.
    let capture = json!({"api_key": key, "batch": [
        {"event": "$pageview", "distinct_id": "ph-anon-uuid"},
        {"event": "$identify", "distinct_id": "ph-user",
         "properties": {"$anon_distinct_id": "ph-anon-uuid", "$set": {"plan": "pro"}}}]});
    let r = request(
        d.addr,
        "POST",
        "/batch/",
        &[("Content-Type".to_owned(), "application/json".to_owned())],
        Some(capture.to_string().as_bytes()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        scalar(
            &tdb,
            "select jsonb_agg(user_key order by user_key) from hogsend.events
              where user_key like 'ph-%'"
        )
        .await,
        json!(["ph-user", "ph-user"])
    );
    // The same alias with a secret key (the server vouches for it) does merge.
    let r = d
        .call(
            "POST",
            "/v1/alias",
            Some(&d.ingest_key),
            Some(&json!({"userId": "web-user", "previousId": "victim"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        scalar(
            &tdb,
            "select count(*) from hogsend.contacts where user_key = 'victim' and deleted_at is null"
        )
        .await,
        0
    );
    d.stop().await.unwrap();
}

#[tokio::test]
async fn a_publishable_key_is_rate_limited_per_source_address_and_per_key() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| {
        c.ip_rate_limit_per_second = 1;
        c.ip_rate_limit_burst = 3;
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 8;
        c.client_ip_header = Some("x-forwarded-for".to_owned());
    })
    .await;
    let key = publishable_key(&tdb).await;
    let event = json!({"anonymous_id": "v", "event": "app_opened"});
    let from = |ip: &'static str| [("X-Forwarded-For", ip)];
    // The last entry is the address the proxy saw; what the client wrote before it is not
    // trusted.
    for _ in 0..3 {
        let r = call(
            &d,
            "POST",
            "/v1/events",
            &key,
            &from("6.6.6.6, 10.0.0.1"),
            Some(&event),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.body);
    }
    let r = call(
        &d,
        "POST",
        "/v1/events",
        &key,
        &from("7.7.7.7, 10.0.0.1"),
        Some(&event),
    )
    .await;
    assert_error(&r, 429, "rate_limited");
    assert!(r
        .header("retry-after")
        .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1)));
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("address")),
        "{}",
        r.body
    );
    // Another address has its own budget, on every event route.
    let r = call(
        &d,
        "POST",
        "/v1/events",
        &key,
        &from("10.0.0.2"),
        Some(&event),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    let capture = json!({"api_key": key, "event": "x", "distinct_id": "v"});
    let r = request(
        d.addr,
        "POST",
        "/e/",
        &[
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Forwarded-For".to_owned(), "10.0.0.3".to_owned()),
        ],
        Some(capture.to_string().as_bytes()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // IPv6 clients share a budget per /64.
    for (i, ip) in [
        "2001:db8:0:1::1",
        "2001:db8:0:1::2",
        "2001:db8:0:1::3",
        "2001:db8:0:1::4",
    ]
    .into_iter()
    .enumerate()
    {
        let r = call(&d, "POST", "/v1/events", &key, &from(ip), Some(&event)).await;
        assert_eq!(r.status, if i < 3 { 202 } else { 429 }, "{ip}: {}", r.body);
    }
    // A secret key is not limited per address: the limited address still gets through.
    let r = call(
        &d,
        "POST",
        "/v1/events",
        &d.ingest_key,
        &from("10.0.0.1"),
        Some(&event),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    // The per-key bucket (8) is nearly spent by now across addresses: fresh addresses are
    // soon refused for the key's sake.
    let mut key_limited = None;
    for n in 0..20 {
        let ip = format!("10.9.0.{n}");
        let r = call(
            &d,
            "POST",
            "/v1/events",
            &key,
            &[("X-Forwarded-For", &ip)],
            Some(&event),
        )
        .await;
        if r.status == 429 {
            key_limited = Some(r);
            break;
        }
    }
    let r = key_limited.expect("the per-key limit applies to a publishable key");
    assert_error(&r, 429, "rate_limited");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("this key")),
        "{}",
        r.body
    );
    assert!(r.header("retry-after").is_some());
    d.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_proxy_header_the_peer_address_is_limited() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| {
        c.ip_rate_limit_per_second = 1;
        c.ip_rate_limit_burst = 2;
    })
    .await;
    let key = publishable_key(&tdb).await;
    let event = json!({"anonymous_id": "v", "event": "app_opened"});
    // A forged header is ignored when none is configured: every request is 127.0.0.1.
    let statuses: Vec<u16> = {
        let mut s = Vec::new();
        for ip in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
            let r = call(
                &d,
                "POST",
                "/v1/events",
                &key,
                &[("X-Forwarded-For", ip)],
                Some(&event),
            )
            .await;
            s.push(r.status);
        }
        s
    };
    assert_eq!(statuses, [202, 202, 429]);
    d.stop().await.unwrap();
}

#[tokio::test]
async fn a_browser_origin_preflights_and_sends_with_a_publishable_key() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(&tdb, compile(PROJECT), |c| {
        c.cors_origins = vec!["https://shop.example".to_owned()];
    })
    .await;
    let key = publishable_key(&tdb).await;
    let preflight = |origin: &str, path: &str| {
        let origin = origin.to_owned();
        let path = path.to_owned();
        let addr = d.addr;
        async move {
            request(
                addr,
                "OPTIONS",
                &path,
                &[
                    ("Origin".to_owned(), origin),
                    (
                        "Access-Control-Request-Method".to_owned(),
                        "POST".to_owned(),
                    ),
                    (
                        "Access-Control-Request-Headers".to_owned(),
                        "authorization,content-type".to_owned(),
                    ),
                ],
                None,
            )
            .await
        }
    };
    for path in ["/v1/events", "/v1/batch", "/i/v0/e/"] {
        let r = preflight("https://shop.example", path).await;
        assert!(r.status < 300, "{path}: {} {}", r.status, r.body);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://shop.example"),
            "{path}"
        );
        let allowed = r
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{path}: {allowed}"
        );
        assert!(r
            .header("access-control-allow-methods")
            .is_some_and(|m| m.contains("POST")));
    }
    // Another origin gets no CORS grant; neither do the contact routes.
    let r = preflight("https://evil.example", "/v1/events").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = preflight("https://shop.example", "/v1/contacts/v").await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    // The browser's request itself.
    let r = call(
        &d,
        "POST",
        "/v1/events",
        &key,
        &[("Origin", "https://shop.example")],
        Some(&json!({"anonymous_id": "browser", "event": "app_opened"})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert!(
        r.header("access-control-expose-headers")
            .is_some_and(|h| h.to_ascii_lowercase().contains("retry-after")),
        "a page can read Retry-After"
    );
    // An error answer carries the grant too, so the page can read it.
    let r = call(
        &d,
        "POST",
        "/v1/events",
        &key,
        &[("Origin", "https://shop.example")],
        Some(&json!({"event": "no_id"})),
    )
    .await;
    assert_error(&r, 400, "invalid_request");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    d.stop().await.unwrap();
}
