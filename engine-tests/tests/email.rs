//! Email delivery end to end on a real SMTP server (aiosmtpd, `support/smtp_sink.py`): the
//! daemon's worker claims queued messages, checks who may receive them, renders the
//! deployed templates and sends them; the test reads what the server received. Headers
//! (From, Message-ID, List-Unsubscribe with HTTPS and mailto, List-Unsubscribe-Post,
//! List-Id), multipart/alternative, rendered content and the preheader; transactional mail
//! without unsubscribe headers; unsubscribed, opted-out and suppressed contacts get
//! nothing; SMTP 4xx is retried, 5xx fails at once.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};
use hogsend_runtime::mail::dkim::Dkim;
use hogsend_runtime::mail::links::Signer;
use hogsend_runtime::mail::settings::{ProviderSettings, SmtpSettings};
use hogsend_runtime::mail::MailSettings;
use hogsend_runtime::testkit::{TestDaemon, TestDatabase};
use hogsend_schema::settings::SmtpTls;
use serde_json::Value;
use sqlx::PgConnection;

/// The SMTP server, stopped (its stdin closed) on drop.
struct Sink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sink {
    fn start() -> Sink {
        let dir = std::env::temp_dir().join(format!(
            "hogsend-smtp-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (aiosmtpd is installed by .ci/run)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("the SMTP sink did not start (is aiosmtpd installed?): {line:?}")
        });
        Sink { child, port, dir }
    }

    /// Every message received so far, in order.
    fn received(&self) -> Vec<Value> {
        let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "json").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn header<'a>(m: &'a Value, name: &str) -> Option<&'a str> {
    m["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .and_then(|h| h[1].as_str())
}

fn part<'a>(m: &'a Value, content_type: &str) -> Option<&'a str> {
    m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == content_type)
        .and_then(|p| p["body"].as_str())
}

const LISTS: &str = r#"
list news {
  name "Product news"
}
list offers {
  name    "Offers"
  default unsubscribed
}
"#;

const WELCOME: &str = "---
subject: Welcome, {{ contact.first_name | default(\"friend\") }}
category: news
preheader: Three things to try first
reply_to: Support <support@acme.test>
---
<html><body><p>Hi {{ contact.first_name }} ({{ contact.plan }}{{ contact.missing }})</p>
<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a> · <a href=\"{{ preferences_url }}\">Preferences</a></p>
</body></html>
";

const RECEIPT: &str = "---
subject: Your receipt
category: transactional
---
Thanks {{ contact.first_name }}, you paid {{ contact.amount }}.
";

const OFFER: &str = "---
subject: An offer
category: offers
---
<p>Half price</p>
";

fn files() -> Vec<hogsend_compiler::emit::GeneratedFile> {
    let set = SourceSet {
        files: vec![SourceFile::new("lists.hog", LISTS)],
        templates: vec![
            TemplateSource {
                id: "offer".into(),
                html: Some(SourceFile::new("templates/offer.html", OFFER)),
                text: None,
            },
            TemplateSource {
                id: "receipt".into(),
                html: None,
                text: Some(SourceFile::new("templates/receipt.txt", RECEIPT)),
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
        public_url: "https://mail.acme.test".into(),
        unsubscribe_mailto: "unsubscribe@acme.test".into(),
        signer: Signer::from_env_value("test-secret"),
        poll: Duration::from_millis(50),
        retry_base: Duration::from_millis(200),
        max_attempts: 3,
        ..MailSettings::default()
    }
}

async fn sql(conn: &mut PgConnection, text: &str) {
    sqlx::raw_sql(text)
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

/// Queues a message; returns its id.
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

/// A message row: (id, status, skip_reason, attempts, last_error).
type Row = (i64, String, Option<String>, i32, Option<String>);

/// Waits until no message is queued or being sent; returns every message row.
async fn settled(conn: &mut PgConnection) -> Vec<Row> {
    settled_within(conn, Duration::from_secs(30)).await
}

/// [`settled`], waiting at most `limit`.
async fn settled_within(conn: &mut PgConnection, limit: Duration) -> Vec<Row> {
    let start = Instant::now();
    loop {
        let rows: Vec<Row> = sqlx::query_as(
            "select id, status, skip_reason, attempts, last_error from hogsend.messages order by id",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        if rows.iter().all(|r| r.1 != "queued" && r.1 != "sending") {
            return rows;
        }
        if start.elapsed() > limit {
            let pending: Vec<&Row> = rows
                .iter()
                .filter(|r| r.1 == "queued" || r.1 == "sending")
                .collect();
            panic!(
                "{} of {} not delivered, e.g. {:?}",
                pending.len(),
                rows.len(),
                pending.first()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_worker_delivers_to_a_real_smtp_server_and_respects_who_may_receive() {
    let sink = Sink::start();
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let daemon = TestDaemon::start(&db, files(), |c| c.mail = smtp_settings(sink.port)).await;
    sql(
        &mut conn,
        r#"
        insert into hogsend.contacts (external_id, email, properties) values
          ('ada', 'ada@x.test', '{"first_name": "Ada", "plan": "pro & co", "amount": "9 EUR"}'),
          ('bob', 'bob@x.test', '{"first_name": "Bob"}'),
          ('cyd', 'cyd@x.test', '{"first_name": "Cyd"}'),
          ('dan', 'dan@x.test', '{"first_name": "Dan", "amount": "5 EUR"}'),
          ('eve', 'eve@x.test', '{}'),
          ('fay', null, '{}'),
          ('gus', 'tempfail@x.test', '{}'),
          ('hal', 'reject@x.test', '{}');
        insert into hogsend.subscriptions (user_key, list_id, status) values
          ('bob', 'news', 'unsubscribed'), ('dan', '*', 'unsubscribed');
        insert into hogsend.suppressions (email, reason) values ('cyd@x.test', 'bounce');
        "#,
    )
    .await;
    let ada = queue(&mut conn, "ada", "welcome", "news").await;
    let bob = queue(&mut conn, "bob", "welcome", "news").await;
    let cyd = queue(&mut conn, "cyd", "receipt", "transactional").await;
    let dan = queue(&mut conn, "dan", "receipt", "transactional").await;
    let dan_news = queue(&mut conn, "dan", "welcome", "news").await;
    let eve = queue(&mut conn, "eve", "offer", "offers").await;
    let fay = queue(&mut conn, "fay", "welcome", "news").await;
    let gus = queue(&mut conn, "gus", "receipt", "transactional").await;
    let hal = queue(&mut conn, "hal", "receipt", "transactional").await;

    let rows = settled(&mut conn).await;
    let status = |id: i64| {
        let r = rows.iter().find(|r| r.0 == id).unwrap();
        (r.1.as_str(), r.2.as_deref())
    };
    assert_eq!(status(ada), ("sent", None));
    assert_eq!(status(bob), ("skipped", Some("unsubscribed:news")));
    assert_eq!(
        status(cyd),
        ("skipped", Some("suppressed")),
        "suppression holds for transactional mail"
    );
    assert_eq!(
        status(dan),
        ("sent", None),
        "transactional mail ignores unsubscribe-all"
    );
    assert_eq!(status(dan_news), ("skipped", Some("unsubscribed_all")));
    assert_eq!(status(eve), ("skipped", Some("not_subscribed:offers")));
    assert_eq!(status(fay), ("skipped", Some("no_email")));
    let gus_row = rows.iter().find(|r| r.0 == gus).unwrap();
    assert_eq!(
        gus_row.1, "failed",
        "4xx is retried, then fails: {gus_row:?}"
    );
    assert_eq!(gus_row.3, 3, "three attempts");
    let hal_row = rows.iter().find(|r| r.0 == hal).unwrap();
    assert_eq!(
        (hal_row.1.as_str(), hal_row.3),
        ("failed", 1),
        "5xx fails at once: {hal_row:?}"
    );
    assert!(
        hal_row.4.as_deref().unwrap_or("").contains("550"),
        "{hal_row:?}"
    );

    let received = sink.received();
    let to: Vec<&str> = received
        .iter()
        .map(|m| m["rcpt_tos"][0].as_str().unwrap())
        .collect();
    assert_eq!(to.len(), 2, "only ada and dan get mail: {to:?}");
    let welcome = received
        .iter()
        .find(|m| m["rcpt_tos"][0] == "ada@x.test")
        .unwrap();
    assert_eq!(header(welcome, "From"), Some("Acme <hello@acme.test>"));
    assert_eq!(
        header(welcome, "Reply-To"),
        Some("Support <support@acme.test>")
    );
    assert_eq!(header(welcome, "Subject"), Some("Welcome, Ada"));
    assert_eq!(
        header(welcome, "Message-ID"),
        Some(format!("<{ada}.hogsend@acme.test>").as_str())
    );
    let list_unsubscribe = header(welcome, "List-Unsubscribe").unwrap();
    assert!(
        list_unsubscribe.starts_with("<https://mail.acme.test/u/"),
        "{list_unsubscribe}"
    );
    assert!(
        list_unsubscribe.contains("<mailto:unsubscribe@acme.test?subject="),
        "{list_unsubscribe}"
    );
    assert_eq!(
        header(welcome, "List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert_eq!(
        header(welcome, "List-Id"),
        Some("\"Product news\" <news.acme.test>")
    );
    assert_eq!(welcome["content_type"], "multipart/alternative");
    let html = part(welcome, "text/html").unwrap();
    let text = part(welcome, "text/plain").unwrap();
    assert!(html.contains("<p>Hi Ada (pro &amp; co)</p>"), "{html}");
    assert!(
        html.contains("Three things to try first"),
        "preheader: {html}"
    );
    assert!(html.contains("https://mail.acme.test/p/"), "{html}");
    assert!(text.contains("Hi Ada (pro & co)"), "{text}");
    assert!(
        !text.contains("Three things"),
        "the hidden preheader is not in the text: {text}"
    );
    let url = list_unsubscribe[1..].split('>').next().unwrap();
    assert!(
        html.contains(url),
        "the body's unsubscribe_url is the header's: {html}"
    );

    let receipt = received
        .iter()
        .find(|m| m["rcpt_tos"][0] == "dan@x.test")
        .unwrap();
    assert_eq!(
        header(receipt, "List-Unsubscribe"),
        None,
        "transactional: no unsubscribe headers"
    );
    assert_eq!(header(receipt, "List-Unsubscribe-Post"), None);
    assert_eq!(receipt["content_type"], "text/plain");
    assert_eq!(
        part(receipt, "text/plain").unwrap().trim(),
        "Thanks Dan, you paid 5 EUR."
    );

    let (subject, provider_id): (Option<String>, Option<String>) =
        sqlx::query_as("select subject, provider_id from hogsend.messages where id = $1")
            .bind(ada)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(subject.as_deref(), Some("Welcome, Ada"));
    assert_eq!(provider_id, Some(format!("<{ada}.hogsend@acme.test>")));
    daemon.stop().await.unwrap();
}

/// The path of a `List-Unsubscribe` header's HTTPS link (the daemon's public URL is a
/// stand-in host; the test calls the daemon itself).
fn unsubscribe_path(list_unsubscribe: &str) -> String {
    let url = list_unsubscribe[1..].split('>').next().unwrap();
    url.strip_prefix("https://mail.acme.test")
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn one_click_unsubscribe_end_to_end_and_the_subscription_api() {
    let sink = Sink::start();
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let daemon = TestDaemon::start(&db, files(), |c| c.mail = smtp_settings(sink.port)).await;
    sql(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email, properties) values
             ('ada', 'ada@x.test', '{"first_name": "Ada"}')"#,
    )
    .await;
    let first = queue(&mut conn, "ada", "welcome", "news").await;
    settled(&mut conn).await;
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let path = unsubscribe_path(header(&received[0], "List-Unsubscribe").unwrap());

    // A link scanner's GET shows a page and changes nothing.
    let page = daemon.call("GET", &path, None, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(page.body.contains("Product news") && page.body.contains("<form method=\"post\">"));
    let count: i64 = sqlx::query_scalar("select count(*) from hogsend.subscriptions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(count, 0, "GET never unsubscribes");

    // RFC 8058 one-click: POST with List-Unsubscribe=One-Click.
    let headers = vec![(
        "Content-Type".to_string(),
        "application/x-www-form-urlencoded".to_string(),
    )];
    let post = hogsend_runtime::testkit::request(
        daemon.addr,
        "POST",
        &path,
        &headers,
        Some(b"List-Unsubscribe=One-Click"),
    )
    .await;
    assert_eq!(post.status, 200, "{}", post.body);
    let (status, source): (String, String) = sqlx::query_as(
        "select status, source from hogsend.subscriptions where user_key = 'ada' and list_id = 'news'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), source.as_str()),
        ("unsubscribed", "one_click")
    );

    // The next send of that list is skipped; nothing more reaches the server.
    let second = queue(&mut conn, "ada", "welcome", "news").await;
    let rows = settled(&mut conn).await;
    assert_eq!(rows.iter().find(|r| r.0 == first).unwrap().1, "sent");
    let r = rows.iter().find(|r| r.0 == second).unwrap();
    assert_eq!(
        (r.1.as_str(), r.2.as_deref()),
        ("skipped", Some("unsubscribed:news"))
    );
    assert_eq!(sink.received().len(), 1);

    // A forged or mangled token is refused, as JSON with a registered code.
    for bad in [
        "/u/nope",
        &format!("{path}x"),
        "/u/bm9wZQ.AAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = daemon.call("POST", bad, None, None).await;
        assert_eq!(r.status, 404, "{bad}");
        assert_eq!(r.json()["error"]["code"], "invalid_link", "{bad}");
    }

    // The subscription API sees the choice and can undo it.
    let (read, admin, ingest) = (&daemon.read_key, &daemon.admin_key, &daemon.ingest_key);
    let subs = daemon
        .call("GET", "/v1/contacts/ada/subscriptions", Some(read), None)
        .await;
    assert_eq!(subs.status, 200, "{}", subs.body);
    let body = subs.json();
    assert_eq!(body["unsubscribed_all"], false);
    assert_eq!(body["lists"][0]["list_id"], "news");
    assert_eq!(body["lists"][0]["subscribed"], false);
    assert_eq!(body["lists"][0]["source"], "one_click");
    assert_eq!(body["lists"][1]["list_id"], "offers");
    assert_eq!(body["lists"][1]["subscribed"], false, "opt-in default");
    assert_eq!(body["lists"][1]["status"], Value::Null);
    let put = daemon
        .call(
            "PUT",
            "/v1/contacts/ada/subscriptions",
            Some(ingest),
            Some(&serde_json::json!({"news": true, "offers": true, "*": false})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.json()["unsubscribed_all"], true);
    assert_eq!(
        put.json()["lists"][0]["subscribed"],
        false,
        "unsubscribed from all"
    );
    let put = daemon
        .call(
            "PUT",
            "/v1/contacts/ada/subscriptions",
            Some(ingest),
            Some(&serde_json::json!({"*": true})),
        )
        .await;
    assert_eq!(put.json()["lists"][0]["subscribed"], true);
    assert_eq!(put.json()["lists"][1]["subscribed"], true);
    let bad = daemon
        .call(
            "PUT",
            "/v1/contacts/ada/subscriptions",
            Some(ingest),
            Some(&serde_json::json!({"newz": true, "news": "yes"})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "invalid_request");
    assert_eq!(bad.json()["error"]["details"].as_array().unwrap().len(), 2);
    let missing = daemon
        .call("GET", "/v1/contacts/zed/subscriptions", Some(read), None)
        .await;
    assert_eq!(missing.json()["error"]["code"], "contact_not_found");
    let no_key = daemon
        .call("GET", "/v1/contacts/ada/subscriptions", None, None)
        .await;
    assert_eq!(no_key.status, 401);

    let lists = daemon.call("GET", "/v1/lists", Some(read), None).await;
    assert_eq!(lists.status, 200);
    let lists = lists.json();
    assert_eq!(lists["lists"][0]["id"], "news");
    assert_eq!(lists["lists"][0]["name"], "Product news");
    assert_eq!(lists["lists"][0]["subscribed"], 1);
    assert_eq!(lists["lists"][1]["default_subscribed"], false);

    // Suppression by hand: the next message is skipped; lifting it lets mail through again.
    let s = daemon
        .call(
            "POST",
            "/v1/suppressions",
            Some(admin),
            Some(&serde_json::json!({"email": " ADA@x.test "})),
        )
        .await;
    assert_eq!(s.status, 200, "{}", s.body);
    assert_eq!(s.json()["email"], "ada@x.test");
    assert_eq!(s.json()["reason"], "manual");
    let forbidden = daemon
        .call(
            "POST",
            "/v1/suppressions",
            Some(read),
            Some(&serde_json::json!({"email": "a@x.test"})),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    let invalid = daemon
        .call(
            "POST",
            "/v1/suppressions",
            Some(admin),
            Some(&serde_json::json!({"email": "nope", "reason": "spite", "x": 1})),
        )
        .await;
    assert_eq!(invalid.status, 400);
    assert_eq!(
        invalid.json()["error"]["details"].as_array().unwrap().len(),
        3
    );
    let third = queue(&mut conn, "ada", "receipt", "transactional").await;
    let rows = settled(&mut conn).await;
    let r = rows.iter().find(|r| r.0 == third).unwrap();
    assert_eq!(r.2.as_deref(), Some("suppressed"));
    let lifted = daemon
        .call("DELETE", "/v1/suppressions/ada@x.test", Some(admin), None)
        .await;
    assert_eq!(lifted.status, 204);
    let again = daemon
        .call("DELETE", "/v1/suppressions/ada@x.test", Some(admin), None)
        .await;
    assert_eq!(again.json()["error"]["code"], "not_suppressed");
    let fourth = queue(&mut conn, "ada", "receipt", "transactional").await;
    let rows = settled(&mut conn).await;
    assert_eq!(rows.iter().find(|r| r.0 == fourth).unwrap().1, "sent");
    assert_eq!(sink.received().len(), 2);
    daemon.stop().await.unwrap();
}

/// `n` contacts `c1…cn`, each with one queued transactional `receipt`.
async fn queue_receipts(conn: &mut PgConnection, n: i64) {
    sql(
        conn,
        &format!(
            r#"insert into hogsend.contacts (external_id, email, properties)
               select 'c' || i, 'c' || i || '@x.test', '{{}}' from generate_series(1, {n}) i;
               insert into hogsend.messages (user_key, template, category, to_email)
               select 'c' || i, 'receipt', 'transactional', 'c' || i || '@x.test'
                 from generate_series(1, {n}) i"#
        ),
    )
    .await;
}

/// Asserts that the sink received `n` messages, each `Message-ID` once.
fn assert_each_received_once(sink: &Sink, n: usize) {
    let received = sink.received();
    let mut ids: Vec<&str> = received
        .iter()
        .map(|m| header(m, "Message-ID").unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n);
    assert_eq!(received.len(), n, "each message once");
}

#[tokio::test]
async fn two_daemons_deliver_each_message_once() {
    let sink = Sink::start();
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let files = files();
    let mut settings = smtp_settings(sink.port);
    settings.batch_size = 7;
    let first = TestDaemon::start(&db, files.clone(), |c| c.mail = settings.clone()).await;
    let second = TestDaemon::start(&db, files, |c| c.mail = settings.clone()).await;
    queue_receipts(&mut conn, 80).await;
    let rows = settled(&mut conn).await;
    assert_eq!(rows.len(), 80);
    assert!(rows.iter().all(|r| r.1 == "sent" && r.3 == 1), "{rows:?}");
    assert_each_received_once(&sink, 80);
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_sent_once() {
    let sink = Sink::start();
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    // Migrate without a worker, then play a worker that claims and dies.
    let daemon = TestDaemon::start(&db, files(), |c| {
        c.mail = smtp_settings(sink.port);
        c.mail.worker = false;
    })
    .await;
    daemon.stop().await.unwrap();
    sql(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email) values ('ada', 'ada@x.test'), ('bob', 'bob@x.test')"#,
    )
    .await;
    let a = queue(&mut conn, "ada", "receipt", "transactional").await;
    let b = queue(&mut conn, "bob", "receipt", "transactional").await;
    let claimed: Vec<i64> = sqlx::query_scalar("select id from hogsend.claim_messages(1, 2)")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(claimed, vec![a], "oldest first, one per the limit");
    let again: Vec<i64> = sqlx::query_scalar("select id from hogsend.claim_messages(10, 2)")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(again, vec![b], "a leased message is not claimed twice");
    // Both "workers" died. A live daemon takes them over when the leases run out.
    let started = Instant::now();
    let daemon = TestDaemon::start(&db, files(), |c| c.mail = smtp_settings(sink.port)).await;
    let rows = settled(&mut conn).await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the lease ends"
    );
    assert!(
        rows.iter().all(|r| r.1 == "sent" && r.3 == 2),
        "second attempt each: {rows:?}"
    );
    assert_eq!(sink.received().len(), 2);
    daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_round_longer_than_its_lease_hands_back_what_it_cannot_send_in_time() {
    // Two daemons; each claims up to 40 messages but sends 5 a second under a 2 s lease, so
    // a round cannot send its whole claim before the lease ends. Without handing back what
    // it cannot start a whole send timeout before the lease ends, the other daemon claims
    // those messages when the lease runs out and both send them.
    let sink = Sink::start();
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let files = files();
    let mut settings = smtp_settings(sink.port);
    settings.batch_size = 40;
    settings.lease = Duration::from_secs(2);
    settings.send_timeout = Duration::from_secs(1);
    settings.rate_per_second = Some(5.0);
    let first = TestDaemon::start(&db, files.clone(), |c| c.mail = settings.clone()).await;
    let second = TestDaemon::start(&db, files, |c| c.mail = settings.clone()).await;
    queue_receipts(&mut conn, 24).await;
    let rows = settled_within(&mut conn, Duration::from_secs(60)).await;
    assert_eq!(rows.len(), 24);
    assert!(rows.iter().all(|r| r.1 == "sent"), "{rows:?}");
    assert!(
        rows.iter().all(|r| r.3 == 1),
        "a message handed back did not count as an attempt: {rows:?}"
    );
    assert_each_received_once(&sink, 24);
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
/// A batch is delivered whole, each message once, through both providers; the rate is
/// printed (never asserted). `HOGSEND_EMAIL_BENCH=N … -- --nocapture` measures a larger batch.
async fn delivery_throughput() {
    let n: i64 = std::env::var("HOGSEND_EMAIL_BENCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let sink = Sink::start();
    for provider in ["log", "smtp"] {
        let db = TestDatabase::new().await;
        let mut conn = db.connect().await;
        let daemon = TestDaemon::start(&db, files(), |c| {
            c.mail = smtp_settings(sink.port);
            c.mail.worker = false;
        })
        .await;
        daemon.stop().await.unwrap();
        sql(
            &mut conn,
            &format!(
                r#"insert into hogsend.contacts (external_id, email, properties)
                   select 'c' || i, 'c' || i || '@x.test', '{{"first_name": "C"}}' from generate_series(1, {n}) i;
                   insert into hogsend.messages (user_key, template, category, to_email)
                   select 'c' || i, 'welcome', 'news', 'c' || i || '@x.test' from generate_series(1, {n}) i"#
            ),
        )
        .await;
        let started = Instant::now();
        let daemon = TestDaemon::start(&db, files(), |c| {
            c.mail = smtp_settings(sink.port);
            if provider == "log" {
                c.mail.provider = ProviderSettings::Log;
                c.mail.provider_name = "log";
            }
        })
        .await;
        let rows = settled_within(&mut conn, Duration::from_secs(600)).await;
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(rows.len() as i64, n);
        assert!(rows.iter().all(|r| r.1 == "sent"), "{provider}: {rows:?}");
        if provider == "smtp" {
            // The log provider sends nothing: the sink holds exactly the SMTP batch, once each.
            let received = sink.received();
            let mut to: Vec<&str> = received
                .iter()
                .map(|m| m["rcpt_tos"][0].as_str().unwrap())
                .collect();
            to.sort_unstable();
            to.dedup();
            assert_eq!((received.len() as i64, to.len() as i64), (n, n));
        }
        println!(
            "{provider}: {n} messages in {secs:.2} s = {:.0} messages/s",
            n as f64 / secs
        );
        daemon.stop().await.unwrap();
    }
}

#[tokio::test]
async fn the_frequency_cap_skips_non_transactional_mail_over_it() {
    let sink = Sink::start();
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    let daemon = TestDaemon::start(&db, files(), |c| {
        c.mail = smtp_settings(sink.port);
        c.mail.worker = false;
    })
    .await;
    daemon.stop().await.unwrap();
    sql(
        &mut conn,
        r#"insert into hogsend.contacts (external_id, email) values ('ada', 'ada@x.test'), ('bob', 'bob@x.test');
           -- one sent an hour ago (counts), one two days ago (outside the window)
           insert into hogsend.messages (user_key, template, category, to_email, status, sent_at) values
             ('ada', 'welcome', 'news', 'ada@x.test', 'sent', now() - interval '1 hour'),
             ('ada', 'welcome', 'news', 'ada@x.test', 'sent', now() - interval '2 days')"#,
    )
    .await;
    let news: Vec<i64> = [
        queue(&mut conn, "ada", "welcome", "news").await,
        queue(&mut conn, "ada", "welcome", "news").await,
        queue(&mut conn, "ada", "welcome", "news").await,
    ]
    .to_vec();
    let receipt = queue(&mut conn, "ada", "receipt", "transactional").await;
    let bob = queue(&mut conn, "bob", "welcome", "news").await;
    let daemon = TestDaemon::start(&db, files(), |c| {
        c.mail = smtp_settings(sink.port);
        c.mail.frequency_cap = Some((2, 86_400));
    })
    .await;
    let rows = settled(&mut conn).await;
    let status = |id: i64| {
        let r = rows.iter().find(|r| r.0 == id).unwrap();
        (r.1.clone(), r.2.clone())
    };
    assert_eq!(status(news[0]), ("sent".into(), None));
    for id in &news[1..] {
        assert_eq!(
            status(*id),
            ("skipped".into(), Some("frequency_cap".into()))
        );
    }
    assert_eq!(
        status(receipt),
        ("sent".into(), None),
        "transactional mail is not capped"
    );
    assert_eq!(status(bob), ("sent".into(), None), "the cap is per contact");
    assert_eq!(sink.received().len(), 3);
    daemon.stop().await.unwrap();
}

/// Runs `openssl ARGS`; its standard output.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `[email] dkim` with an RSA key (PKCS#8 PEM, as `openssl genpkey` writes it) and an
/// Ed25519 key: what the SMTP server received carries a `DKIM-Signature` with the configured
/// `d=` and `s=` that dkimpy verifies against the public key; the same message with its
/// body changed does not verify.
#[tokio::test]
async fn dkim_signed_messages_verify() {
    let sink = Sink::start();
    let dir = std::env::temp_dir().join(format!(
        "hogsend-dkim-{}-{}",
        std::process::id(),
        uuid_like()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let verifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/dkim_verify.py");
    for (algorithm, genpkey) in [
        (
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
        ),
        ("ed25519", &["-algorithm", "ed25519"][..]),
    ] {
        let key_path = dir.join(format!("{algorithm}.pem"));
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genpkey);
        args.extend(["-out", key_path.to_str().unwrap()]);
        openssl(&args);
        let public = dir.join(format!("{algorithm}.der"));
        openssl(&[
            "pkey",
            "-in",
            key_path.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            public.to_str().unwrap(),
        ]);
        let pem = std::fs::read_to_string(&key_path).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem:.40}");
        let selector = format!("sel-{algorithm}");
        let config = hogsend_schema::settings::DkimConfig {
            selector: selector.clone(),
            domain: "acme.test".into(),
            private_key_env: Some("TEST_DKIM_KEY".into()),
        };
        let dkim = Dkim::load(&config, |name| {
            (name == "TEST_DKIM_KEY").then(|| pem.clone())
        })
        .expect("the key loads");
        assert_eq!(dkim.algorithm, algorithm);

        let db = TestDatabase::new().await;
        let mut conn = db.connect().await;
        let daemon = TestDaemon::start(&db, files(), |c| {
            c.mail = smtp_settings(sink.port);
            c.mail.dkim = Some(dkim.clone());
        })
        .await;
        sql(
            &mut conn,
            &format!(
                r#"insert into hogsend.contacts (external_id, email, properties)
                   values ('{algorithm}', '{algorithm}@x.test', '{{"first_name": "Ada", "plan": "pro"}}')"#
            ),
        )
        .await;
        queue(&mut conn, algorithm, "welcome", "news").await;
        let rows = settled(&mut conn).await;
        assert!(rows.iter().all(|r| r.1 == "sent"), "{rows:?}");
        daemon.stop().await.unwrap();

        let received = sink.received();
        let m = received
            .iter()
            .find(|m| m["rcpt_tos"][0] == format!("{algorithm}@x.test"))
            .expect("the message arrived");
        let signature = header(m, "DKIM-Signature").expect("a DKIM-Signature header");
        let tags: Vec<String> = signature
            .split(';')
            .map(|t| t.split_whitespace().collect::<String>())
            .collect();
        for tag in [
            "v=1".to_string(),
            format!("a={algorithm}-sha256"),
            "d=acme.test".into(),
            format!("s={selector}"),
            "c=relaxed/relaxed".into(),
        ] {
            assert!(tags.contains(&tag), "{tag} in {signature}");
        }
        let signed = tags.iter().find(|t| t.starts_with("h=")).unwrap();
        for name in ["from", "to", "subject", "message-id", "list-unsubscribe"] {
            assert!(
                signed
                    .to_ascii_lowercase()
                    .split([':', '='])
                    .any(|h| h == name),
                "{name} signed: {signed}"
            );
        }

        let raw: Vec<u8> = m["raw"]
            .as_str()
            .expect("the raw message")
            .chars()
            .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
            .collect();
        let verify = |bytes: &[u8]| {
            let path = dir.join(format!("{algorithm}.eml"));
            std::fs::write(&path, bytes).unwrap();
            Command::new("python3")
                .arg(&verifier)
                .arg(&path)
                .arg(&public)
                .arg(algorithm)
                .output()
                .expect("python3 runs (dkimpy and pynacl are installed by .ci/run)")
        };
        let out = verify(&raw);
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{algorithm}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.starts_with(&format!("verified {selector}._domainkey.acme.test")),
            "{said}"
        );
        let text = String::from_utf8(raw).unwrap();
        let body_at = text.find("\r\n\r\n").expect("headers, then the body");
        let tampered = format!(
            "{}{}",
            &text[..body_at],
            text[body_at..].replacen("Ada", "Eve", 1)
        );
        assert_ne!(tampered, text, "the body names the contact");
        let out = verify(tampered.as_bytes());
        assert!(
            !out.status.success(),
            "a changed body must not verify: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
