//! The recipient's side of email, end to end: the preferences page (`/p/{token}`) reached
//! from a delivered message's `preferences_url`, over HTTP and in headless Chromium, and
//! (in its own tests) open and click tracking.
//!
//! Messages go through the real delivery worker to a real SMTP server
//! (`support/smtp_sink.py`); the links in what the server received are called on the
//! daemon (the configured public URL is a stand-in host).

#[path = "support/smtp.rs"]
mod smtp;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::time::{Duration, Instant};

use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};
use hogsend_runtime::mail::links::{LinkKind, Signer};
use hogsend_runtime::mail::settings::{ProviderSettings, SmtpSettings};
use hogsend_runtime::mail::MailSettings;
use hogsend_runtime::testkit::{request, Response, TestDaemon, TestDatabase};
use hogsend_schema::settings::SmtpTls;
use smtp::{header, links, part, Sink};
use sqlx::PgConnection;

const PUBLIC_URL: &str = "https://mail.acme.test";

const LISTS: &str = r#"
list news {
  name        "Product news & <updates>"
  description "New features, about once a month"
}
list offers {
  name        "Offers"
  description "Discounts <b>only</b> for you"
  default     unsubscribed
}
list tips {
  default subscribed
}
"#;

const WELCOME: &str = "---
subject: Welcome
category: news
---
<html><head><style>p { color: #333; }</style></head><body>
<p>Hi {{ contact.first_name }}, read <a href=\"https://acme.test/docs?a=1&amp;b=2\">the docs</a>
or <a href=\"#top\">go up</a> or <a href=\"mailto:help@acme.test\">write to us</a>.</p>
<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a> · <a href=\"{{ preferences_url }}\">Preferences</a></p>
</body></html>
";

const RECEIPT: &str = "---
subject: Your receipt
category: transactional
---
<p>Thanks. <a href=\"https://acme.test/orders/1\">Your order</a></p>
";

fn project(extra_hog: &str) -> Vec<hogsend_compiler::emit::GeneratedFile> {
    let set = SourceSet {
        files: vec![
            SourceFile::new("lists.hog", LISTS),
            SourceFile::new("buckets.hog", extra_hog),
        ],
        templates: vec![
            TemplateSource {
                id: "receipt".into(),
                html: Some(SourceFile::new("templates/receipt.html", RECEIPT)),
                text: None,
            },
            TemplateSource {
                id: "welcome".into(),
                html: Some(SourceFile::new("templates/welcome.html", WELCOME)),
                text: None,
            },
        ],
        ..Default::default()
    };
    let compiled = hogsend_compiler::compile(&set);
    compiled
        .files
        .unwrap_or_else(|| panic!("{:#?}", compiled.checked.diagnostics))
}

fn smtp_settings(port: u16) -> MailSettings {
    MailSettings {
        provider: ProviderSettings::Smtp(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            credentials: None,
            url: None,
        }),
        provider_name: "smtp",
        from: "Acme <hello@acme.test>".into(),
        public_url: PUBLIC_URL.into(),
        unsubscribe_mailto: "unsubscribe@acme.test".into(),
        signer: Signer::from_env_value("test-secret"),
        poll: Duration::from_millis(50),
        ..MailSettings::default()
    }
}

async fn sql(conn: &mut PgConnection, text: &str) {
    sqlx::raw_sql(text)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

/// Queues a message of `template` to `key`; returns its id.
async fn queue(conn: &mut PgConnection, key: &str, template: &str, category: &str) -> i64 {
    sqlx::query_scalar(
        "insert into hogsend.messages (user_key, template, category, to_email)
         select $1, $2, $3, c.email from (select 1) one
           left join hogsend.contacts c on c.user_key = $1
         returning id",
    )
    .bind(key)
    .bind(template)
    .bind(category)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Waits until message `id` left the outbox; its (status, skip reason).
async fn delivered(conn: &mut PgConnection, id: i64) -> (String, Option<String>) {
    let started = Instant::now();
    loop {
        let (status, reason): (String, Option<String>) =
            sqlx::query_as("select status, skip_reason from hogsend.messages where id = $1")
                .bind(id)
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        if status != "queued" && status != "sending" {
            return (status, reason);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "message {id} still {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The HTML part of the message the sink received for `to` (the last one).
fn html_to(sink: &Sink, to: &str) -> String {
    let received = sink.received();
    let m = received
        .iter()
        .rev()
        .find(|m| m["rcpt_tos"][0] == to)
        .unwrap_or_else(|| panic!("nothing received for {to}"));
    part(m, "text/html").unwrap().to_string()
}

/// The path of the link starting with `PUBLIC_URL/<prefix>` in `html`.
fn link_path(html: &str, prefix: &str) -> String {
    let start = format!("{PUBLIC_URL}{prefix}");
    let url = links(html)
        .into_iter()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no {start}… link in {html}"));
    url[PUBLIC_URL.len()..].to_string()
}

/// The contact's explicit choices: (list, status, source), by list.
async fn choices(conn: &mut PgConnection, key: &str) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "select list_id, status, source from hogsend.subscriptions where user_key = $1
          order by list_id",
    )
    .bind(key)
    .fetch_all(conn)
    .await
    .unwrap()
}

/// A form POST, as a browser sends it.
async fn post_form(daemon: &TestDaemon, path: &str, form: &str) -> Response {
    let headers = vec![(
        "Content-Type".to_string(),
        "application/x-www-form-urlencoded".to_string(),
    )];
    request(daemon.addr, "POST", path, &headers, Some(form.as_bytes())).await
}

fn assert_html(r: &Response, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        r.headers
    );
    assert!(r.body.starts_with("<!doctype html>"), "{}", r.body);
    assert!(r.body.contains("<html lang=\"en\">"), "{}", r.body);
}

#[tokio::test]
async fn the_preferences_page_lists_every_list_and_applies_each_form() {
    let sink = Sink::start();
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let daemon = TestDaemon::start(&db, project(""), |c| c.mail = smtp_settings(sink.port)).await;
    sql(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email, properties) values
             ('ada', 'ada@x.test', '{"first_name": "Ada"}'), ('bob', 'bob@x.test', '{}');
           insert into hogsend.subscriptions (user_key, list_id, status, source)
             values ('ada', 'tips', 'unsubscribed', 'api')"#,
    )
    .await;
    let id = queue(&mut conn, "ada", "welcome", "news").await;
    assert_eq!(delivered(&mut conn, id).await, ("sent".into(), None));
    let html = html_to(&sink, "ada@x.test");
    let path = link_path(&html, "/p/");

    // The page: every list with its state, names and descriptions escaped, labelled boxes.
    let page = daemon.call("GET", &path, None, None).await;
    assert_html(&page, 200);
    let body = &page.body;
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(body.contains("<h1>Email preferences</h1>"), "{body}");
    assert!(body.contains("<strong>ada@x.test</strong>"), "{body}");
    assert!(
        body.contains("Product news &amp; &lt;updates&gt;"),
        "names are escaped: {body}"
    );
    assert!(
        body.contains("Discounts &lt;b&gt;only&lt;/b&gt; for you"),
        "{body}"
    );
    assert!(
        !body.contains("<updates>") && !body.contains("<b>only"),
        "{body}"
    );
    assert!(body.contains("name=\"viewport\""), "{body}");
    assert!(!body.contains("<script"), "no JavaScript: {body}");
    for (list, checked, state) in [
        ("news", true, "Subscribed (default)"),
        ("offers", false, "Not subscribed (default)"),
        ("tips", false, "Unsubscribed"),
    ] {
        let at = body
            .find(&format!("value=\"{list}\""))
            .unwrap_or_else(|| panic!("{list}: {body}"));
        let input = &body[body[..at].rfind("<input").unwrap()..];
        let input = &input[..input.find('>').unwrap()];
        assert_eq!(input.contains(" checked"), checked, "{list}: {input}");
        let item = &body[at..];
        let item = &item[..item.find("</li>").unwrap()];
        assert!(item.contains(state), "{list}: {item}");
        assert!(item.contains("<label for=\"list-"), "{list}: {item}");
    }
    assert!(body.contains("Unsubscribe from all emails"), "{body}");

    // Save: untick news, tick offers (tips stays unsubscribed: not rewritten).
    let saved = post_form(
        &daemon,
        &path,
        "action=save&shown=news&shown=offers&shown=tips&list=offers",
    )
    .await;
    assert_html(&saved, 200);
    assert!(
        saved
            .body
            .contains("role=\"status\">Your preferences are saved."),
        "{}",
        saved.body
    );
    assert_eq!(
        choices(&mut conn, "ada").await,
        vec![
            ("news".into(), "unsubscribed".into(), "preferences".into()),
            ("offers".into(), "subscribed".into(), "preferences".into()),
            ("tips".into(), "unsubscribed".into(), "api".into()),
        ]
    );
    assert!(saved.body.contains("Unsubscribed"), "{}", saved.body);

    // Unsubscribe from everything, then resubscribe; the list choices are kept throughout.
    let all = post_form(&daemon, &path, "action=unsubscribe_all").await;
    assert_html(&all, 200);
    assert!(all.body.contains("You are unsubscribed from all emails."));
    assert!(all.body.contains("value=\"resubscribe\""), "{}", all.body);
    assert!(
        !all.body.contains("value=\"unsubscribe_all\""),
        "{}",
        all.body
    );
    let with_all = choices(&mut conn, "ada").await;
    assert_eq!(
        with_all[0],
        ("*".into(), "unsubscribed".into(), "preferences".into())
    );
    let skipped = queue(&mut conn, "ada", "welcome", "news").await;
    assert_eq!(
        delivered(&mut conn, skipped).await,
        ("skipped".into(), Some("unsubscribed_all".into()))
    );
    let receipt = queue(&mut conn, "ada", "receipt", "transactional").await;
    assert_eq!(
        delivered(&mut conn, receipt).await,
        ("sent".into(), None),
        "transactional mail still goes out"
    );
    let again = post_form(&daemon, &path, "action=resubscribe").await;
    assert_html(&again, 200);
    assert!(
        again.body.contains("You are subscribed again"),
        "{}",
        again.body
    );
    assert_eq!(
        choices(&mut conn, "ada").await.len(),
        3,
        "the * row is gone"
    );

    // Bad forms change nothing, in one transaction: a valid change next to a stale list.
    let before = choices(&mut conn, "ada").await;
    for form in [
        "action=save&shown=tips&list=tips&shown=ghost",
        "action=save&list=tips",
        "action=nuke",
        "",
    ] {
        let r = post_form(&daemon, &path, form).await;
        assert_html(&r, 400);
        assert!(r.body.contains("Nothing was changed"), "{form}: {}", r.body);
    }
    assert_eq!(choices(&mut conn, "ada").await, before);

    // Links that are not ours: HTML 404 pages, never JSON, and nothing written.
    let signer = Signer::from_env_value("test-secret").unwrap();
    let unsubscribe_token = signer.token(LinkKind::Unsubscribe, "ada", "news");
    let other_secret =
        Signer::from_env_value("other")
            .unwrap()
            .token(LinkKind::Preferences, "ada", "*");
    for bad in [
        "/p/nope".to_string(),
        format!("{path}x"),
        format!("/p/{unsubscribe_token}"),
        format!("/p/{other_secret}"),
        "/p/bm9wZQ.AAAAAAAAAAAAAAAAAAAAAA".to_string(),
    ] {
        let r = daemon.call("GET", &bad, None, None).await;
        assert_html(&r, 404);
        assert!(r.body.contains("This link is not valid"), "{bad}");
        let r = post_form(&daemon, &bad, "action=unsubscribe_all").await;
        assert_html(&r, 404);
    }
    assert_eq!(choices(&mut conn, "ada").await, before);
    assert!(choices(&mut conn, "bob").await.is_empty());

    // The unsubscribe confirm page answers a bad link with an HTML 404 page too.
    let r = daemon.call("GET", "/u/nope", None, None).await;
    assert_html(&r, 404);
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn the_preferences_page_works_in_headless_chromium() {
    let sink = Sink::start();
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let daemon = TestDaemon::start(&db, project(""), |c| c.mail = smtp_settings(sink.port)).await;
    sql(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email, properties)
             values ('ada', 'ada@x.test', '{"first_name": "Ada"}')"#,
    )
    .await;
    let first = queue(&mut conn, "ada", "welcome", "news").await;
    assert_eq!(delivered(&mut conn, first).await, ("sent".into(), None));
    let path = link_path(&html_to(&sink, "ada@x.test"), "/p/");

    // A phone-sized window: the page must work at narrow widths.
    let browser = webdriver::Browser::start(390, 844).await;
    browser.open(&format!("http://{}{path}", daemon.addr)).await;
    let title = browser.command("GET", "/title", None).await;
    assert_eq!(title, "Email preferences");
    let news = browser.find("input[type=checkbox][value=news]").await;
    assert!(browser.selected(&news).await, "news is on by default");
    let offers = browser.find("input[type=checkbox][value=offers]").await;
    assert!(!browser.selected(&offers).await, "offers is opt-in");
    // The label names the box (clicking the label toggles it), as assistive technology reads it.
    let label = browser.find("label[for=list-0]").await;
    let label_text = browser
        .command("GET", &format!("/element/{label}/text"), None)
        .await;
    assert!(!label_text.as_str().unwrap_or_default().is_empty());
    let overflow = browser
        .script("return document.documentElement.scrollWidth > window.innerWidth")
        .await;
    assert_eq!(
        overflow, false,
        "no horizontal scrolling on a phone-sized window"
    );

    // Untick news and submit, as a person would.
    browser.click(&news).await;
    assert!(!browser.selected(&news).await);
    let save = browser.find("form button[type=submit]").await;
    browser.click(&save).await;
    let started = Instant::now();
    loop {
        let status = browser
            .script("const s = document.querySelector('[role=status]'); return s ? s.textContent : null")
            .await;
        if status == "Your preferences are saved." {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no confirmation: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let news = browser.find("input[type=checkbox][value=news]").await;
    assert!(
        !browser.selected(&news).await,
        "the page shows the new state"
    );
    browser.screenshot("preferences.png").await;
    drop(browser);

    assert_eq!(
        choices(&mut conn, "ada").await,
        vec![("news".into(), "unsubscribed".into(), "preferences".into())]
    );
    // The next message of that list is skipped; nothing more reaches the server.
    let second = queue(&mut conn, "ada", "welcome", "news").await;
    assert_eq!(
        delivered(&mut conn, second).await,
        ("skipped".into(), Some("unsubscribed:news".into()))
    );
    assert_eq!(sink.received().len(), 1);
    assert!(header(&sink.received()[0], "List-Unsubscribe").is_some());
    daemon.stop().await.unwrap();
}

/// The active members of `bucket`, waiting (at most 20 s) until `wanted` holds.
async fn members_until(
    conn: &mut PgConnection,
    bucket: &str,
    wanted: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let members: Vec<String> = sqlx::query_scalar(
            "select user_key from hogsend.bucket_members where bucket_id = $1 order by user_key",
        )
        .bind(bucket)
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        if wanted(&members) {
            return members;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{bucket}: still {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The message's (opened_at, clicked_at).
type Instants = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

async fn instants(conn: &mut PgConnection, id: i64) -> Instants {
    sqlx::query_as("select opened_at, clicked_at from hogsend.messages where id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .unwrap()
}

/// The contact's `email.*` events: (event, properties), in order.
async fn email_events(conn: &mut PgConnection, key: &str) -> Vec<(String, serde_json::Value)> {
    sqlx::query_as(
        "select event, properties from hogsend.events
          where user_key = $1 and event like 'email.%' order by id",
    )
    .bind(key)
    .fetch_all(conn)
    .await
    .unwrap()
}

const ENGAGEMENT: &str = r#"
bucket opened_not_clicked {
  criteria opened welcome and not clicked welcome
}
"#;

#[tokio::test]
async fn opens_and_clicks_are_tracked_and_feed_the_opened_and_clicked_atoms() {
    let sink = Sink::start();
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let daemon = TestDaemon::start(&db, project(ENGAGEMENT), |c| {
        c.mail = smtp_settings(sink.port);
        c.mail.tracking.opens = true;
        c.mail.tracking.clicks = true;
    })
    .await;
    sql(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email, properties)
             values ('ada', 'ada@x.test', '{"first_name": "Ada"}'), ('bob', 'bob@x.test', '{}')"#,
    )
    .await;
    let welcome = queue(&mut conn, "ada", "welcome", "news").await;
    assert_eq!(delivered(&mut conn, welcome).await, ("sent".into(), None));
    let receipt = queue(&mut conn, "bob", "receipt", "transactional").await;
    assert_eq!(delivered(&mut conn, receipt).await, ("sent".into(), None));

    // What was sent: the pixel, the docs link tracked; anchors, mailto and our own pages not.
    let html = html_to(&sink, "ada@x.test");
    let all = links(&html);
    let tracked: Vec<&String> = all
        .iter()
        .filter(|l| l.starts_with(&format!("{PUBLIC_URL}/c/")))
        .collect();
    assert_eq!(tracked.len(), 1, "only the docs link: {html}");
    assert!(all.contains(&"#top".to_string()), "{html}");
    assert!(all.contains(&"mailto:help@acme.test".to_string()), "{html}");
    assert!(
        all.iter()
            .any(|l| l.starts_with(&format!("{PUBLIC_URL}/u/")))
            && all
                .iter()
                .any(|l| l.starts_with(&format!("{PUBLIC_URL}/p/"))),
        "unsubscribe and preferences links are left as they are: {html}"
    );
    assert!(!html.contains("https://acme.test/docs"), "{html}");
    let pixel = link_path(&html, "/o/");
    let click = link_path(&html, "/c/");
    let text = {
        let received = sink.received();
        let m = received
            .iter()
            .find(|m| m["rcpt_tos"][0] == "ada@x.test")
            .unwrap();
        part(m, "text/plain").unwrap().to_string()
    };
    assert!(
        text.contains("https://acme.test/docs?a=1&b=2"),
        "the text part keeps the plain link: {text}"
    );
    let receipt_html = html_to(&sink, "bob@x.test");
    assert!(
        !receipt_html.contains("/o/") && !receipt_html.contains("/c/"),
        "transactional mail is not tracked by default: {receipt_html}"
    );

    assert!(
        members_until(&mut conn, "opened_not_clicked", <[String]>::is_empty)
            .await
            .is_empty()
    );

    // The pixel: a GIF that is never cached; the contact joins at once (real-time pass).
    let hit = daemon.call("GET", &pixel, None, None).await;
    assert_eq!(hit.status, 200);
    assert_eq!(hit.header("content-type"), Some("image/gif"));
    assert!(hit.header("cache-control").unwrap().contains("no-store"));
    let (opened, clicked) = instants(&mut conn, welcome).await;
    assert!(opened.is_some() && clicked.is_none());
    members_until(&mut conn, "opened_not_clicked", |m| m == ["ada"]).await;
    let events = email_events(&mut conn, "ada").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "email.opened");
    assert_eq!(events[0].1["template"], "welcome");
    assert_eq!(events[0].1["message"], welcome);

    // Opening again keeps the first instant and records no second event.
    let again = daemon.call("GET", &pixel, None, None).await;
    assert_eq!(again.status, 200);
    assert_eq!(instants(&mut conn, welcome).await.0, opened);
    assert_eq!(email_events(&mut conn, "ada").await.len(), 1);

    // The click: a redirect to the original URL; the contact leaves.
    let hit = daemon.call("GET", &click, None, None).await;
    assert_eq!(hit.status, 302, "{}", hit.body);
    assert_eq!(
        hit.header("location"),
        Some("https://acme.test/docs?a=1&b=2")
    );
    let (opened_after, clicked) = instants(&mut conn, welcome).await;
    assert_eq!(opened_after, opened);
    assert!(clicked.is_some());
    members_until(&mut conn, "opened_not_clicked", <[String]>::is_empty).await;
    let events = email_events(&mut conn, "ada").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].0, "email.clicked");
    assert_eq!(events[1].1["url"], "https://acme.test/docs?a=1&b=2");
    let kinds: Vec<(String, Option<String>)> = sqlx::query_as(
        "select kind, reason from hogsend.bucket_transitions
          where bucket_id = 'opened_not_clicked' and user_key = 'ada' order by id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0].0, "entered");
    assert_eq!(kinds[1].0, "left");

    // Never an open redirect: another target under the same signature, garbage, or a
    // token of the other kind is a 404 page, and nothing is recorded.
    let token = &click["/c/".len()..];
    let (_, mac) = token.split_once('.').unwrap();
    let evil = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("c\0{welcome}\0https://evil.test/"))
    };
    let pixel_token = &pixel["/o/".len()..];
    for bad in [
        format!("/c/{evil}.{mac}"),
        "/c/nope".to_string(),
        format!("/c/{pixel_token}"),
        format!("/o/{token}"),
        "/o/bm9wZQ.AAAAAAAAAAAAAAAAAAAAAA".to_string(),
    ] {
        let r = daemon.call("GET", &bad, None, None).await;
        assert_eq!(r.status, 404, "{bad}");
        assert!(r.header("location").is_none(), "{bad}");
        assert!(r.body.contains("This link is not valid"), "{bad}");
    }
    assert_eq!(email_events(&mut conn, "ada").await.len(), 2);
    daemon.stop().await.unwrap();
}
