//! Scenario tests of the journey engine (docs/language.md, "Runs and how they move"): every
//! step kind, the enrolment guards, exits, reactions, who receives a message, time-of-day
//! waits across DST changes, deploys, and exactly-once under retried, rolled-back and
//! concurrent passes. Each test compiles a small project and runs it on its own database.

use hogsend_compiler::source::{SourceFile, SourceSet, TemplateSource};
use hogsend_runtime::testkit::TestDatabase;
use serde_json::Value;
use sqlx::{Connection, PgConnection, Row};

/// A compiled project deployed in a database of its own (schema `hogsend`).
struct J {
    db: TestDatabase,
    conn: PgConnection,
}

/// Templates every test project has: `id` → category.
const TEMPLATES: &[(&str, &str)] = &[
    ("welcome", "onboarding"),
    ("nice_work", "onboarding"),
    ("need_help", "onboarding"),
    ("nudge", "onboarding"),
    ("tip", "onboarding"),
    ("done", "onboarding"),
    ("a", "onboarding"),
    ("b", "onboarding"),
    ("c", "onboarding"),
    ("news", "news"),
    ("receipt", "transactional"),
];

/// The lists the templates' categories name: `onboarding` opt-out, `news` opt-in.
const LISTS: &str = "list onboarding {}\nlist news { default unsubscribed }\n";

fn source_set(hog: &str, toml: Option<&str>) -> SourceSet {
    SourceSet {
        files: vec![
            SourceFile::new("project.hog", hog),
            SourceFile::new("lists.hog", LISTS),
        ],
        templates: TEMPLATES
            .iter()
            .map(|(id, category)| TemplateSource {
                id: (*id).to_owned(),
                html: Some(SourceFile::new(
                    format!("templates/{id}.html"),
                    format!("---\nsubject: {id}\ncategory: {category}\n---\n<p>{id}</p>\n"),
                )),
                text: None,
            })
            .collect(),
        config: toml.map(|t| SourceFile::new("hogsend.toml", t)),
    }
}

impl J {
    async fn new(hog: &str) -> J {
        J::with_config(hog, None).await
    }

    async fn with_config(hog: &str, toml: Option<&str>) -> J {
        let db = TestDatabase::new().await;
        let conn = db.connect().await;
        let mut j = J { db, conn };
        j.deploy_with(hog, toml).await;
        j
    }

    async fn deploy(&mut self, hog: &str) {
        self.deploy_with(hog, None).await;
    }

    async fn deploy_with(&mut self, hog: &str, toml: Option<&str>) {
        let compiled = hogsend_compiler::compile(&source_set(hog, toml));
        let files = compiled
            .files
            .unwrap_or_else(|| panic!("project has errors: {:#?}", compiled.checked.diagnostics));
        hogsend_runtime::migrate::migrate(&mut self.conn, &Default::default(), &files)
            .await
            .unwrap_or_else(|e| panic!("migrate failed: {e}"));
    }

    async fn tick(&mut self, at: &str) -> Value {
        sqlx::query_scalar::<_, Value>("select tick($1::timestamptz)")
            .bind(at)
            .fetch_one(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("tick at {at} failed: {e}"))
    }

    async fn sql(&mut self, sql: &str) {
        sqlx::raw_sql(sql)
            .execute(&mut self.conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    async fn contact(&mut self, key: &str, email: Option<&str>, props: &str) {
        sqlx::query(
            "insert into contacts (external_id, email, properties) values ($1, $2, $3::jsonb)",
        )
        .bind(key)
        .bind(email)
        .bind(props)
        .execute(&mut self.conn)
        .await
        .expect("insert contact");
    }

    async fn event(&mut self, key: &str, name: &str, props: &str, at: &str) {
        sqlx::query(
            "insert into events (user_key, event, properties, occurred_at) values ($1, $2, $3::jsonb, $4::timestamptz)",
        )
        .bind(key)
        .bind(name)
        .bind(props)
        .bind(at)
        .execute(&mut self.conn)
        .await
        .expect("insert event");
    }

    /// `journey key status step exit_reason` of every run, in id order.
    async fn runs(&mut self) -> Vec<String> {
        sqlx::query(
            "select journey_id, user_key, status, coalesce(step_id, '-') as step,
                    coalesce(exit_reason, '-') as reason
               from runs order by id",
        )
        .fetch_all(&mut self.conn)
        .await
        .expect("runs")
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.get::<String, _>("journey_id"),
                r.get::<String, _>("user_key"),
                r.get::<String, _>("status"),
                r.get::<String, _>("step"),
                r.get::<String, _>("reason"),
            )
        })
        .collect()
    }

    /// `key template step status [skip_reason]` of every message, in id order.
    async fn messages(&mut self) -> Vec<String> {
        sqlx::query(
            "select user_key, template, step_id, status, coalesce(skip_reason, '') as reason
               from messages order by id",
        )
        .fetch_all(&mut self.conn)
        .await
        .expect("messages")
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.get::<String, _>("user_key"),
                r.get::<String, _>("template"),
                r.get::<String, _>("step_id"),
                r.get::<String, _>("status"),
                r.get::<String, _>("reason"),
            )
            .trim_end()
            .to_owned()
        })
        .collect()
    }

    /// `step:outcome` of the steps a contact's run of `journey` executed, in order.
    async fn path(&mut self, journey: &str, key: &str) -> Vec<String> {
        sqlx::query(
            "select s.step_id || ':' || coalesce(s.outcome, '') as step
               from run_steps s join runs r on r.id = s.run_id and r.user_key = s.user_key
              where r.journey_id = $1 and r.user_key = $2
              order by s.executed_at, s.step_id",
        )
        .bind(journey)
        .bind(key)
        .fetch_all(&mut self.conn)
        .await
        .expect("path")
        .iter()
        .map(|r| r.get::<String, _>("step"))
        .collect()
    }

    async fn skips(&mut self) -> Vec<String> {
        sqlx::query(
            "select journey_id || ' ' || reason || ' ' || count from journey_skips order by 1",
        )
        .fetch_all(&mut self.conn)
        .await
        .expect("skips")
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
    }

    async fn wake_at(&mut self, key: &str) -> String {
        sqlx::query_scalar::<_, String>(
            "select to_char(wake_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') from runs
              where user_key = $1 and status = 'waiting'",
        )
        .bind(key)
        .fetch_one(&mut self.conn)
        .await
        .expect("wake_at")
    }
}

fn strs(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

const ONBOARDING: &str = r#"
journey onboarding {
  trigger event user.signed_up where (event.plan == "trial")
  exit when did user.deleted
  send welcome
  wait until did project.created since entry, at most 3d
  if did project.created since entry {
    send nice_work
  } else {
    send need_help
    wait 2d
    if not did feature.used within 2d { send nudge }
  }
  start tips
  emit onboarding.finished
}
journey tips {
  trigger event tips.requested
  send tip
}
journey after_onboarding {
  trigger event onboarding.finished
  send done
}
"#;

#[tokio::test]
async fn every_step_kind_along_both_branches() {
    let mut j = J::new(ONBOARDING).await;
    j.tick("2027-01-04T10:00:00Z").await;
    j.contact("u1", Some("u1@example.com"), "{}").await;
    j.contact("u2", Some("u2@example.com"), "{}").await;
    j.event(
        "u1",
        "user.signed_up",
        r#"{"plan": "trial"}"#,
        "2027-01-04T10:00:01Z",
    )
    .await;
    j.event(
        "u2",
        "user.signed_up",
        r#"{"plan": "trial"}"#,
        "2027-01-04T10:00:02Z",
    )
    .await;
    let t = j.tick("2027-01-04T10:01:00Z").await;
    assert_eq!(t["journeys"]["enrolled"], 2, "{t}");
    assert_eq!(t["journeys"]["messages"], 2, "{t}");
    assert_eq!(
        j.runs().await,
        strs(&["onboarding u1 waiting s2 -", "onboarding u2 waiting s2 -"])
    );

    // u1 creates a project: the wait is released by the condition, the `then` branch runs,
    // `start` enrols tips (which completes at once), `emit` records an event that the next
    // pass (not this one) sees as a trigger.
    j.event("u1", "project.created", "{}", "2027-01-05T09:00:00Z")
        .await;
    j.tick("2027-01-05T10:00:00Z").await;
    assert_eq!(
        j.path("onboarding", "u1").await,
        strs(&[
            "s1:welcome",
            "s2:condition",
            "s3:then",
            "s3.then.s1:nice_work",
            "s4:tips",
            "s5:onboarding.finished"
        ])
    );
    assert_eq!(j.path("tips", "u1").await, strs(&["s1:tip"]));
    assert_eq!(j.path("after_onboarding", "u1").await, Vec::<String>::new());
    j.tick("2027-01-05T10:00:30Z").await;
    assert_eq!(j.path("after_onboarding", "u1").await, strs(&["s1:done"]));

    // u2 never creates one: released by the timeout at arrival + 3d, the else branch.
    j.tick("2027-01-07T10:00:59Z").await;
    assert_eq!(j.path("onboarding", "u2").await, strs(&["s1:welcome"]));
    j.tick("2027-01-07T10:01:00Z").await;
    assert_eq!(
        j.path("onboarding", "u2").await,
        strs(&[
            "s1:welcome",
            "s2:timeout",
            "s3:else",
            "s3.else.s1:need_help"
        ])
    );
    j.tick("2027-01-09T10:01:00Z").await;
    assert_eq!(
        j.path("onboarding", "u2").await,
        strs(&[
            "s1:welcome",
            "s2:timeout",
            "s3:else",
            "s3.else.s1:need_help",
            "s3.else.s2:elapsed",
            "s3.else.s3:then",
            "s3.else.s3.then.s1:nudge",
            "s4:tips",
            "s5:onboarding.finished"
        ])
    );
    let runs = j.runs().await;
    assert!(
        runs.contains(&"onboarding u1 completed s5 -".to_owned()),
        "{runs:?}"
    );
    assert!(
        runs.contains(&"onboarding u2 completed s5 -".to_owned()),
        "{runs:?}"
    );
    assert_eq!(
        j.messages().await,
        strs(&[
            "u1 welcome s1 queued",
            "u2 welcome s1 queued",
            "u1 nice_work s3.then.s1 queued",
            "u1 tip s1 queued",
            "u1 done s1 queued",
            "u2 need_help s3.else.s1 queued",
            "u2 nudge s3.else.s3.then.s1 queued",
            "u2 tip s1 queued",
        ])
    );
}

#[tokio::test]
async fn the_real_time_pass_enrols_and_sends_at_once() {
    let mut j = J::new(ONBOARDING).await;
    j.tick("2027-01-04T10:00:00Z").await;
    j.contact("u1", Some("u1@example.com"), "{}").await;
    j.event(
        "u1",
        "user.signed_up",
        r#"{"plan": "trial"}"#,
        "2027-01-04T10:00:01Z",
    )
    .await;
    let r: Value = sqlx::query_scalar("select apply_changes(array['u1'], '2027-01-04T10:00:02Z')")
        .fetch_one(&mut j.conn)
        .await
        .expect("apply_changes");
    assert_eq!(r["journeys"]["messages"], 1, "{r}");
    assert_eq!(j.messages().await, strs(&["u1 welcome s1 queued"]));
    // The awaited event releases the run in the real-time pass too.
    j.event("u1", "project.created", "{}", "2027-01-04T10:05:00Z")
        .await;
    sqlx::query("select apply_changes(array['u1'], '2027-01-04T10:05:01Z')")
        .execute(&mut j.conn)
        .await
        .expect("apply_changes");
    assert_eq!(
        j.messages().await,
        strs(&[
            "u1 welcome s1 queued",
            "u1 nice_work s3.then.s1 queued",
            "u1 tip s1 queued"
        ])
    );
    // The tick that follows sees the emitted event (a trigger from the next pass on) and
    // repeats nothing.
    let t = j.tick("2027-01-04T10:06:00Z").await;
    assert_eq!(t["journeys"]["messages"], 1, "{t}");
    assert_eq!(
        j.messages().await.last().map(String::as_str),
        Some("u1 done s1 queued")
    );
}

#[tokio::test]
async fn guards_in_order_with_skips_counted_by_reason() {
    let hog = r#"
journey once_only {
  trigger event go where (event.ok == true)
  send a
}
journey weekly {
  trigger event go
  entry once per 7d
  wait 1d
  send b
}
journey hourly {
  trigger event go
  entry once per 1h
  wait 1d
  send c
}
journey every_time {
  trigger event go
  entry unlimited
  send a
}
"#;
    let mut j = J::new(hog).await;
    j.tick("2027-01-04T00:00:00Z").await;
    j.contact("u1", Some("u1@example.com"), "{}").await;
    // Two triggering events in one pass: the earlier enrols a `once` journey, the later is
    // skipped; the first fails the filter.
    j.event("u1", "go", r#"{"ok": false}"#, "2027-01-04T10:00:00Z")
        .await;
    j.event("u1", "go", r#"{"ok": true}"#, "2027-01-04T10:00:01Z")
        .await;
    j.event("u1", "go", r#"{"ok": true}"#, "2027-01-04T10:00:02Z")
        .await;
    j.tick("2027-01-04T10:01:00Z").await;
    let runs = j.runs().await;
    let count = |journey: &str| {
        runs.iter()
            .filter(|r| r.starts_with(&format!("{journey} ")))
            .count()
    };
    assert_eq!(count("once_only"), 1, "{runs:?}");
    assert_eq!(count("weekly"), 1, "{runs:?}");
    assert_eq!(count("hourly"), 1, "{runs:?}");
    assert_eq!(count("every_time"), 3, "{runs:?}");
    let entered: String = sqlx::query_scalar(
        "select to_char(entered_at at time zone 'UTC', 'HH24:MI:SS') from runs where journey_id = 'once_only'",
    )
    .fetch_one(&mut j.conn)
    .await
    .expect("entered");
    assert_eq!(entered, "10:00:01", "the earlier passing event enrols");
    // (`hourly`'s period comes before its in-flight guard.)
    assert_eq!(
        j.skips().await,
        strs(&[
            "hourly entry_period 2",
            "once_only entry_once 1",
            "once_only filter 1",
            "weekly entry_period 2",
        ])
    );

    // Two hours later: `hourly`'s period is over but its run is still in flight.
    j.event("u1", "go", r#"{"ok": true}"#, "2027-01-04T12:00:00Z")
        .await;
    j.tick("2027-01-04T12:00:10Z").await;
    assert_eq!(
        j.skips().await,
        strs(&[
            "hourly entry_period 2",
            "hourly in_flight 1",
            "once_only entry_once 2",
            "once_only filter 1",
            "weekly entry_period 3",
        ])
    );
    // Too old: an event imported two days late triggers nothing.
    j.event("u1", "go", r#"{"ok": true}"#, "2027-01-02T12:00:00Z")
        .await;
    j.tick("2027-01-04T12:00:20Z").await;
    assert!(j.skips().await.contains(&"every_time too_old 1".to_owned()));
    // Paused through the API: `disabled`.
    j.sql("update journeys set paused = true where id = 'every_time'")
        .await;
    j.event("u1", "go", r#"{"ok": true}"#, "2027-01-04T12:01:00Z")
        .await;
    j.tick("2027-01-04T12:01:10Z").await;
    assert!(j
        .skips()
        .await
        .contains(&"every_time disabled 1".to_owned()));
    // After a week (and the runs' end), `weekly` enrols again.
    j.tick("2027-01-05T12:00:00Z").await;
    j.event("u1", "go", r#"{"ok": true}"#, "2027-01-11T10:00:01Z")
        .await;
    j.tick("2027-01-11T10:00:02Z").await;
    let runs = j.runs().await;
    assert_eq!(
        runs.iter().filter(|r| r.starts_with("weekly ")).count(),
        2,
        "{runs:?}"
    );
}

#[tokio::test]
async fn exits_by_condition_step_and_deletion() {
    let hog = r#"
journey nurture {
  trigger event user.signed_up
  exit when did user.signed_up or did subscription.started
  send a
  wait 10d
  send b
}
journey short {
  trigger event go
  send a
  if contact.vip == true { exit }
  send b
}
"#;
    let mut j = J::new(hog).await;
    j.tick("2027-01-04T00:00:00Z").await;
    for k in ["u1", "u2", "u3"] {
        j.contact(k, Some(&format!("{k}@example.com")), "{}").await;
        j.event(k, "user.signed_up", "{}", "2027-01-04T10:00:00Z")
            .await;
    }
    j.tick("2027-01-04T10:00:01Z").await;
    // The triggering sign-up itself does not end the run; a second one does; so does a
    // subscription; deleting the contact ends its run.
    j.event("u1", "user.signed_up", "{}", "2027-01-05T10:00:00Z")
        .await;
    j.event("u2", "subscription.started", "{}", "2027-01-05T10:00:00Z")
        .await;
    j.sql("update contacts set deleted_at = now() where user_key = 'u3'")
        .await;
    j.tick("2027-01-05T10:00:01Z").await;
    assert_eq!(
        j.runs().await,
        strs(&[
            "nurture u1 exited s2 exit_when",
            "nurture u2 exited s2 exit_when",
            "nurture u3 exited s2 contact_deleted",
        ])
    );

    j.contact("v1", Some("v1@example.com"), r#"{"vip": true}"#)
        .await;
    j.contact("v2", Some("v2@example.com"), "{}").await;
    j.event("v1", "go", "{}", "2027-01-05T11:00:00Z").await;
    j.event("v2", "go", "{}", "2027-01-05T11:00:00Z").await;
    j.tick("2027-01-05T11:00:01Z").await;
    let runs = j.runs().await;
    assert!(
        runs.contains(&"short v1 exited s2.then.s1 exit_step".to_owned()),
        "{runs:?}"
    );
    assert!(
        runs.contains(&"short v2 completed s3 -".to_owned()),
        "{runs:?}"
    );
}

#[tokio::test]
async fn who_receives_a_message_skip_reasons_in_order() {
    let hog = r#"
journey go {
  trigger event go
  entry unlimited
  send news
  send welcome
  send receipt
}
"#;
    let mut j = J::new(hog).await;
    j.tick("2027-01-04T00:00:00Z").await;
    // `news` is opt-in, `onboarding` opt-out (LISTS).
    j.contact("no_email", None, "{}").await;
    j.contact("suppressed", Some(" Sup@Example.com "), "{}")
        .await;
    j.sql("insert into suppressions (email, reason) values ('sup@example.com', 'bounce')")
        .await;
    j.contact("unsub_all", Some("all@example.com"), "{}").await;
    j.sql("insert into subscriptions (user_key, list_id, status) values ('unsub_all', '*', 'unsubscribed')").await;
    j.contact("unsub_onb", Some("onb@example.com"), "{}").await;
    j.sql("insert into subscriptions (user_key, list_id, status) values ('unsub_onb', 'onboarding', 'unsubscribed')").await;
    j.contact("opted_in", Some("in@example.com"), "{}").await;
    j.sql("insert into subscriptions (user_key, list_id, status) values ('opted_in', 'news', 'subscribed')").await;
    for k in [
        "no_email",
        "suppressed",
        "unsub_all",
        "unsub_onb",
        "opted_in",
    ] {
        j.event(k, "go", "{}", "2027-01-04T10:00:00Z").await;
    }
    j.tick("2027-01-04T10:00:01Z").await;
    let mut got = j.messages().await;
    got.sort();
    assert_eq!(
        got,
        strs(&[
            "no_email news s1 skipped no_email",
            "no_email receipt s3 skipped no_email",
            "no_email welcome s2 skipped no_email",
            "opted_in news s1 queued",
            "opted_in receipt s3 queued",
            "opted_in welcome s2 queued",
            "suppressed news s1 skipped suppressed",
            "suppressed receipt s3 skipped suppressed",
            "suppressed welcome s2 skipped suppressed",
            "unsub_all news s1 skipped unsubscribed_all",
            "unsub_all receipt s3 queued",
            "unsub_all welcome s2 skipped unsubscribed_all",
            "unsub_onb news s1 skipped not_subscribed:news",
            "unsub_onb receipt s3 queued",
            "unsub_onb welcome s2 skipped unsubscribed:onboarding",
        ])
    );
}

#[tokio::test]
async fn reactions_fire_on_real_joins_and_end_with_their_membership() {
    let hog = r#"
bucket active {
  criteria did app_opened within 7d
  on enter {
    wait 30d
    send a
  }
  on leave because criteria { send b }
}
"#;
    let mut j = J::new(hog).await;
    j.contact("old", Some("old@example.com"), "{}").await;
    j.event("old", "app_opened", "{}", "2027-01-03T10:00:00Z")
        .await;
    // The backfill joins `old` silently: no reaction.
    j.tick("2027-01-04T00:00:00Z").await;
    assert_eq!(j.runs().await, Vec::<String>::new());
    j.contact("new", Some("new@example.com"), "{}").await;
    j.event("new", "app_opened", "{}", "2027-01-04T10:00:00Z")
        .await;
    j.tick("2027-01-04T10:00:01Z").await;
    assert_eq!(j.runs().await, strs(&["active.on_enter new waiting s1 -"]));
    // Seven days later both leave: `new`'s on-enter run ends with its membership, and each
    // leave starts the on-leave reaction.
    j.tick("2027-01-11T10:00:02Z").await;
    assert_eq!(
        j.runs().await,
        strs(&[
            "active.on_enter new exited s1 membership_ended",
            "active.on_leave_criteria old completed s1 -",
            "active.on_leave_criteria new completed s1 -",
        ])
    );
    let mut got = j.messages().await;
    got.sort();
    assert_eq!(got, strs(&["new b s1 queued", "old b s1 queued"]));
}

#[tokio::test]
async fn trigger_paths_read_the_starting_event_and_are_missing_otherwise() {
    let hog = r#"
bucket buyers {
  criteria did order.completed
}
journey order_followup {
  trigger event order.completed
  entry   unlimited
  exit when did refund.issued where (event.total exists) and trigger.total >= 500
  if trigger.total >= 100 and trigger.plan == "pro" {
    send a
  } else if trigger.gift.wrapped == true {
    send b
  } else {
    send c
  }
  wait until did order.shipped or trigger."express" == true, at most 1d
  send nudge
}
journey first_buyer {
  trigger enter buyers
  if trigger.total exists or trigger.total == 1 { send tip }
}
"#;
    let mut j = J::new(hog).await;
    j.tick("2027-01-04T00:00:00Z").await;
    // The contact's own `plan` is "free": `trigger.plan` reads the event, not the contact.
    j.contact(
        "u1",
        Some("u1@example.com"),
        r#"{"plan": "free", "total": 1000}"#,
    )
    .await;
    j.event(
        "u1",
        "order.completed",
        r#"{"total": 150, "plan": "pro"}"#,
        "2027-01-04T10:00:00Z",
    )
    .await;
    j.event(
        "u1",
        "order.completed",
        r#"{"total": 20, "gift": {"wrapped": true}, "express": true}"#,
        "2027-01-04T10:00:01Z",
    )
    .await;
    j.event(
        "u1",
        "order.completed",
        r#"{"total": 600}"#,
        "2027-01-04T10:00:02Z",
    )
    .await;
    j.tick("2027-01-04T10:00:05Z").await;
    let mut runs = j.runs().await;
    runs.sort();
    assert_eq!(
        runs,
        strs(&[
            // `first_buyer` starts from a transition: every `trigger.` path is missing.
            "first_buyer u1 completed s1 -",
            // express: the wait is over at once (`trigger."express" == true`)
            "order_followup u1 completed s3 -",
            "order_followup u1 waiting s2 -",
            "order_followup u1 waiting s2 -",
        ])
    );
    let mut got = j.messages().await;
    got.sort();
    assert_eq!(
        got,
        strs(&[
            "u1 a s1.then.s1 queued",
            "u1 b s1.elif1.s1 queued",
            "u1 c s1.else.s1 queued",
            "u1 nudge s3 queued",
        ])
    );
    assert_eq!(j.path("first_buyer", "u1").await, strs(&["s1:none"]));
    // A refund ends only the run whose trigger total is at least 500.
    j.event(
        "u1",
        "refund.issued",
        r#"{"total": 600}"#,
        "2027-01-04T11:00:00Z",
    )
    .await;
    j.tick("2027-01-04T11:00:01Z").await;
    let mut runs = j.runs().await;
    runs.sort();
    assert_eq!(
        runs,
        strs(&[
            "first_buyer u1 completed s1 -",
            "order_followup u1 completed s3 -",
            "order_followup u1 exited s2 exit_when",
            "order_followup u1 waiting s2 -",
        ])
    );
}

#[tokio::test]
async fn time_of_day_waits_across_dst_in_two_zones() {
    let hog = r#"
journey gap {
  trigger event gap
  wait until 02:30 in contact.tz
  send a
}
journey fold {
  trigger event fold
  wait until 01:30 in contact.tz
  send a
}
journey fold_berlin {
  trigger event fold_berlin
  wait until 02:30 in contact.tz
  send a
}
journey weekdays {
  trigger event wd
  wait until 09:00 on weekdays in contact.tz
  send a
}
"#;
    let mut j = J::with_config(hog, Some("[project]\ntimezone = \"Europe/Berlin\"\n")).await;
    j.tick("2027-01-01T00:00:00Z").await;
    j.contact(
        "ny",
        Some("ny@example.com"),
        r#"{"tz": "America/New_York"}"#,
    )
    .await;
    j.contact("be", Some("be@example.com"), r#"{"tz": "Europe/Berlin"}"#)
        .await;
    j.contact("bad", Some("bad@example.com"), r#"{"tz": "Mars/Olympus"}"#)
        .await;
    j.contact("none", Some("none@example.com"), "{}").await;
    // 2027-03-14: New York springs forward at 02:00 (02:30 does not exist) → 03:00 EDT.
    j.event("ny", "gap", "{}", "2027-03-14T05:00:00Z").await;
    j.tick("2027-03-14T05:00:01Z").await;
    assert_eq!(j.wake_at("ny").await, "2027-03-14 07:00");
    // 2027-03-28: Berlin springs forward at 02:00 → 03:00 CEST.
    j.event("be", "gap", "{}", "2027-03-27T23:30:00Z").await;
    j.tick("2027-03-27T23:30:01Z").await;
    assert_eq!(j.wake_at("be").await, "2027-03-28 01:00");
    j.tick("2027-03-28T01:00:00Z").await;
    assert_eq!(
        j.runs()
            .await
            .iter()
            .filter(|r| r.contains("completed"))
            .count(),
        2
    );

    // 2027-10-31: Berlin falls back at 03:00; 02:30 happens twice → the first (CEST).
    j.event("be", "fold_berlin", "{}", "2027-10-30T22:00:00Z")
        .await;
    j.tick("2027-10-30T22:00:01Z").await;
    assert_eq!(j.wake_at("be").await, "2027-10-31 00:30");
    // 2027-11-07: New York falls back at 02:00; 01:30 happens twice → the first (EDT).
    j.event("ny", "fold", "{}", "2027-11-07T04:00:00Z").await;
    j.tick("2027-11-07T04:00:01Z").await;
    assert_eq!(j.wake_at("ny").await, "2027-11-07 05:30");

    // Weekdays: from Saturday 2027-11-13, the next weekday 09:00 is Monday's; an invalid
    // zone falls back to the project's (Berlin, CET), a missing one too.
    j.tick("2027-11-09T00:00:00Z").await;
    j.event("bad", "wd", "{}", "2027-11-13T12:00:00Z").await;
    j.event("none", "wd", "{}", "2027-11-13T12:00:00Z").await;
    j.tick("2027-11-13T12:00:01Z").await;
    assert_eq!(j.wake_at("bad").await, "2027-11-15 08:00");
    assert_eq!(j.wake_at("none").await, "2027-11-15 08:00");
}

#[tokio::test]
async fn a_zone_change_moves_the_wake_up_of_parked_time_of_day_waits() {
    let hog = r#"
journey morning {
  trigger event go
  wait until 09:00 in contact.tz
  send a
}
"#;
    let mut j = J::new(hog).await;
    j.tick("2027-01-04T00:00:00Z").await;
    j.contact(
        "ny",
        Some("ny@example.com"),
        r#"{"tz": "America/New_York"}"#,
    )
    .await;
    j.contact("be", Some("be@example.com"), r#"{"tz": "Europe/Berlin"}"#)
        .await;
    // Monday 2027-01-04, 12:00 UTC: 07:00 in New York (wake 09:00 EST = 14:00 UTC), 13:00 in
    // Berlin (wake Tuesday 09:00 CET = 08:00 UTC).
    j.event("ny", "go", "{}", "2027-01-04T12:00:00Z").await;
    j.event("be", "go", "{}", "2027-01-04T12:00:00Z").await;
    j.tick("2027-01-04T12:00:01Z").await;
    assert_eq!(j.wake_at("ny").await, "2027-01-04 14:00");
    assert_eq!(j.wake_at("be").await, "2027-01-05 08:00");

    // New York moves to Berlin, seen by a real-time pass: from its arrival (13:00 Berlin)
    // the next 09:00 Berlin is Tuesday's.
    j.sql(r#"update contacts set properties = '{"tz": "Europe/Berlin"}' where user_key = 'ny'"#)
        .await;
    j.sql("select apply_changes(array['ny'], '2027-01-04T12:30:00Z')")
        .await;
    assert_eq!(j.wake_at("ny").await, "2027-01-05 08:00");
    // Berlin moves to Tokyo, seen by a tick: from its arrival (21:00 Tokyo) the next 09:00
    // Tokyo is Tuesday 00:00 UTC.
    j.sql(r#"update contacts set properties = '{"tz": "Asia/Tokyo"}' where user_key = 'be'"#)
        .await;
    j.tick("2027-01-04T13:00:00Z").await;
    assert_eq!(j.wake_at("be").await, "2027-01-05 00:00");
    // The old wake-up (14:00 UTC) no longer moves New York.
    j.tick("2027-01-04T14:00:00Z").await;
    assert_eq!(j.messages().await, Vec::<String>::new());
    // New York moves again, to Kolkata, where the first 09:00 after its arrival (17:30 IST)
    // is Tuesday 03:30 UTC; Tokyo's 00:00 UTC comes first.
    j.sql(r#"update contacts set properties = '{"tz": "Asia/Kolkata"}' where user_key = 'ny'"#)
        .await;
    j.tick("2027-01-05T00:00:00Z").await;
    assert_eq!(j.messages().await, strs(&["be a s2 queued"]));
    assert_eq!(j.wake_at("ny").await, "2027-01-05 03:30");
    j.tick("2027-01-05T03:30:00Z").await;
    assert_eq!(
        j.messages().await,
        strs(&["be a s2 queued", "ny a s2 queued"])
    );
}

#[tokio::test]
async fn runs_follow_an_anonymous_contact_merged_into_a_user() {
    let hog = r#"
bucket visitors {
  criteria did visit
  on enter {
    wait 5d
    send tip
  }
}
journey onboard {
  trigger event visit
  send a
  wait 2d
  send b
}
journey news {
  trigger event visit
  entry unlimited
  wait 1d
  send c
}
"#;
    let mut j = J::new(hog).await;
    j.tick("2027-01-04T00:00:00Z").await;
    // u1 (identified) and its future anonymous self a1 both visit; a2 visits alone and
    // becomes u2, a contact with no runs yet.
    j.contact("u1", Some("u1@example.com"), "{}").await;
    j.contact("u2", Some("u2@example.com"), "{}").await;
    j.sql("insert into contacts (anonymous_id) values ('a1'), ('a2')")
        .await;
    for key in ["u1", "a1", "a2"] {
        j.event(key, "visit", "{}", "2027-01-04T10:00:00Z").await;
    }
    j.tick("2027-01-04T10:00:01Z").await;
    assert_eq!(j.runs().await.len(), 9);

    j.sql("select merge_contacts('u1', 'a1'); select merge_contacts('u2', 'a2');")
        .await;
    let mut runs = j.runs().await;
    runs.sort();
    assert_eq!(
        runs,
        strs(&[
            // a1's `once` run ends: u1 is already running `onboard`; its reaction run ends
            // with the membership merged into u1's.
            "news u1 waiting s1 -",
            "news u1 waiting s1 -",
            "news u2 waiting s1 -",
            "onboard u1 exited s2 merged",
            "onboard u1 waiting s2 -",
            "onboard u2 waiting s2 -",
            "visitors.on_enter u1 exited s1 merged",
            "visitors.on_enter u1 waiting s1 -",
            "visitors.on_enter u2 waiting s1 -",
        ])
    );
    // The history moved with the runs: a2's first step is u2's.
    assert_eq!(j.path("onboard", "u2").await, strs(&["s1:a"]));
    let anon: i64 = sqlx::query_scalar(
        "select (select count(*) from runs where user_key in ('a1', 'a2'))
              + (select count(*) from run_steps where user_key in ('a1', 'a2'))
              + (select count(*) from messages where user_key in ('a1', 'a2'))",
    )
    .fetch_one(&mut j.conn)
    .await
    .expect("anonymous rows");
    assert_eq!(anon, 0);

    // The moved runs go on under the user keys and send to the users' addresses; the
    // person's history counts for `entry once`.
    j.event("u2", "visit", "{}", "2027-01-06T09:00:00Z").await;
    j.tick("2027-01-06T10:00:01Z").await;
    let sent: Vec<String> = sqlx::query_scalar(
        "select user_key || ' ' || template || ' ' || coalesce(to_email, '-') from messages
          where created_at = '2027-01-06T10:00:01Z' order by 1",
    )
    .fetch_all(&mut j.conn)
    .await
    .expect("messages");
    assert_eq!(
        sent,
        strs(&[
            "u1 b u1@example.com",
            "u1 c u1@example.com",
            "u1 c u1@example.com",
            "u2 b u2@example.com",
            "u2 c u2@example.com",
        ])
    );
    // u2's second visit: `onboard` is skipped (a2's run is the person's), `news` (unlimited)
    // starts a second run, waiting from this tick.
    assert_eq!(j.skips().await, strs(&["onboard entry_once 1"]));
    let waiting: i64 = sqlx::query_scalar(
        "select count(*) from runs where user_key = 'u2' and journey_id = 'news' and status = 'waiting'",
    )
    .fetch_one(&mut j.conn)
    .await
    .expect("waiting");
    assert_eq!(waiting, 1);
}

#[tokio::test]
async fn deploys_keep_runs_at_surviving_steps_and_end_the_others() {
    let v1 = r#"
journey series {
  trigger event go
  send a
  wait 1d
  send b
  wait 1d
  send c
}
"#;
    let v2 = r#"
journey series {
  trigger event go
  send a
  wait 1d
  send c
}
"#;
    let mut j = J::new(v1).await;
    j.tick("2027-01-01T00:00:00Z").await;
    j.contact("u1", Some("u1@example.com"), "{}").await;
    j.contact("u2", Some("u2@example.com"), "{}").await;
    j.event("u1", "go", "{}", "2027-01-04T10:00:00Z").await;
    j.tick("2027-01-04T10:00:00Z").await;
    j.event("u2", "go", "{}", "2027-01-05T10:00:00Z").await;
    j.tick("2027-01-05T10:00:00Z").await;
    assert_eq!(
        j.runs().await,
        strs(&["series u1 waiting s4 -", "series u2 waiting s2 -"])
    );
    j.deploy(v2).await;
    assert_eq!(
        j.runs().await,
        strs(&["series u1 exited s4 step_removed", "series u2 waiting s2 -"])
    );
    j.tick("2027-01-06T10:00:00Z").await;
    assert_eq!(
        j.runs().await,
        strs(&[
            "series u1 exited s4 step_removed",
            "series u2 completed s3 -"
        ])
    );
    assert_eq!(
        j.path("series", "u2").await,
        strs(&["s1:a", "s2:elapsed", "s3:c"])
    );
    // A removed journey's in-flight runs end too.
    j.event("u1", "go", "{}", "2027-01-06T10:00:00Z").await;
    j.deploy(v1).await;
    j.tick("2027-01-06T10:00:01Z").await;
    j.deploy("bucket x { criteria did y }").await;
    let runs = j.runs().await;
    assert!(runs.iter().all(|r| !r.contains("waiting")), "{runs:?}");
}

#[tokio::test]
async fn exactly_once_under_retried_rolled_back_and_concurrent_passes() {
    let mut j = J::new(ONBOARDING).await;
    j.tick("2027-01-04T10:00:00Z").await;
    let keys: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    for k in &keys {
        j.contact(k, Some(&format!("{k}@example.com")), "{}").await;
        j.event(
            k,
            "user.signed_up",
            r#"{"plan": "trial"}"#,
            "2027-01-04T10:00:01Z",
        )
        .await;
    }
    // A pass whose transaction is rolled back (a killed process) leaves nothing behind.
    j.sql("begin; select tick('2027-01-04T10:00:05Z'); rollback;")
        .await;
    assert_eq!(j.messages().await.len(), 0);

    // A tick and a real-time pass racing over the same contacts.
    let mut other = j.db.connect().await;
    let mut third = j.db.connect().await;
    let all: Vec<String> = keys.clone();
    let (a, b, c) = tokio::join!(
        sqlx::query_scalar::<_, Value>("select tick('2027-01-04T10:00:05Z')")
            .fetch_one(&mut j.conn),
        sqlx::query_scalar::<_, Value>("select apply_changes($1, '2027-01-04T10:00:05Z')")
            .bind(&all)
            .fetch_one(&mut other),
        sqlx::query_scalar::<_, Value>("select apply_keys($1, '2027-01-04T10:00:06Z')")
            .bind(&all)
            .fetch_one(&mut third),
    );
    a.expect("tick");
    b.expect("apply_changes");
    c.expect("apply_keys");
    // The same tick retried.
    j.tick("2027-01-04T10:00:06Z").await;
    j.tick("2027-01-04T10:00:06Z").await;
    let messages = j.messages().await;
    assert_eq!(messages.len(), keys.len(), "{messages:?}");
    for k in &keys {
        assert!(
            messages.contains(&format!("{k} welcome s1 queued")),
            "{k}: {messages:?}"
        );
    }
    // Everyone times out at +3d, in two ticks racing with a rolled-back one.
    j.sql("begin; select tick('2027-01-07T10:01:00Z'); rollback;")
        .await;
    let (a, b) = tokio::join!(
        sqlx::query_scalar::<_, Value>("select tick('2027-01-07T10:01:00Z')")
            .fetch_one(&mut j.conn),
        sqlx::query_scalar::<_, Value>("select tick('2027-01-07T10:01:00Z')").fetch_one(&mut other),
    );
    a.expect("tick");
    b.expect("tick");
    let count: i64 =
        sqlx::query_scalar("select count(*) from messages where template = 'need_help'")
            .fetch_one(&mut j.conn)
            .await
            .expect("count");
    assert_eq!(count, 40);
    let dup: i64 = sqlx::query_scalar(
        "select count(*) from (select run_id, step_id from messages group by 1, 2 having count(*) > 1) d",
    )
    .fetch_one(&mut j.conn)
    .await
    .expect("dups");
    assert_eq!(dup, 0);
    let steps: i64 = sqlx::query_scalar(
        "select count(*) from run_steps where step_id = 's2' and outcome = 'timeout'",
    )
    .fetch_one(&mut j.conn)
    .await
    .expect("steps");
    assert_eq!(steps, 40, "no step lost or repeated");
    drop(other);
    let _ = third.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trigger_events_are_considered_once_with_inserts_committing_out_of_order_during_passes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    let hog = "journey j {\n  trigger event go\n  entry unlimited\n  send a\n}\n";
    let mut j = J::new(hog).await;
    j.tick("2027-01-04T10:00:00Z").await;
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    for k in &keys {
        j.contact(k, Some(&format!("{k}@example.com")), "{}").await;
    }
    let done = Arc::new(AtomicBool::new(false));

    // Inserters: transactions held open for different times, so they commit out of order
    // (and one in five rolls back), while passes run.
    let mut inserters = Vec::new();
    for w in 0..4u64 {
        let mut conn = j.db.connect().await;
        let keys = keys.clone();
        inserters.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            for i in 0..20u64 {
                let mut tx = conn.begin().await.expect("begin");
                let mut ids = Vec::new();
                for e in 0..(1 + (w + i) % 3) {
                    let key = &keys[((w * 7 + i * 3 + e) % 10) as usize];
                    let id: i64 = sqlx::query_scalar(
                        "insert into events (user_key, event, properties, occurred_at)
                         values ($1, 'go', '{}', '2027-01-04T10:00:00Z') returning id",
                    )
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await
                    .expect("insert");
                    ids.push(id);
                }
                tokio::time::sleep(Duration::from_millis((w * 5 + i * 3) % 17)).await;
                if (w + i) % 5 == 0 {
                    tx.rollback().await.expect("rollback");
                } else {
                    tx.commit().await.expect("commit");
                    committed.extend(ids);
                }
            }
            committed
        }));
    }
    // Passes meanwhile: a tick and a real-time pass at each instant, racing.
    let passes = {
        let mut tick_conn = j.db.connect().await;
        let mut rt_conn = j.db.connect().await;
        let done = done.clone();
        let keys = keys.clone();
        tokio::spawn(async move {
            let mut second = 1;
            while !done.load(Ordering::SeqCst) {
                let at = format!("2027-01-04T10:{:02}:{:02}Z", second / 60, second % 60);
                let (a, b) = tokio::join!(
                    sqlx::query_scalar::<_, Value>("select tick($1::timestamptz)")
                        .bind(&at)
                        .fetch_one(&mut tick_conn),
                    sqlx::query_scalar::<_, Value>("select apply_changes($1, $2::timestamptz)")
                        .bind(&keys)
                        .bind(&at)
                        .fetch_one(&mut rt_conn),
                );
                a.expect("tick");
                b.expect("apply_changes");
                second += 1;
            }
            second
        })
    };
    let mut committed = Vec::new();
    for task in inserters {
        committed.extend(task.await.expect("inserter"));
    }
    done.store(true, Ordering::SeqCst);
    let second: i64 = passes.await.expect("passes");
    assert!(second > 1, "no pass ran");
    // Two more ticks drain both slots, whichever a late writer used.
    j.tick("2027-01-04T11:00:00Z").await;
    j.tick("2027-01-04T11:00:01Z").await;

    committed.sort_unstable();
    let enrolled: Vec<i64> =
        sqlx::query_scalar("select trigger_event_id from runs order by trigger_event_id")
            .fetch_all(&mut j.conn)
            .await
            .expect("runs");
    assert_eq!(enrolled, committed, "one run per committed trigger event");
    let (messages, distinct): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct run_id) from messages")
            .fetch_one(&mut j.conn)
            .await
            .expect("messages");
    assert_eq!(
        (messages, distinct),
        (committed.len() as i64, committed.len() as i64)
    );
    // The inbox is empty, and its slots are truncated files, not dead tuples.
    let (rows, bytes): (i64, i64) = sqlx::query_as(
        "select (select count(*) from journey_inbox),
                pg_relation_size('journey_inbox_0') + pg_relation_size('journey_inbox_1')",
    )
    .fetch_one(&mut j.conn)
    .await
    .expect("inbox");
    assert_eq!((rows, bytes), (0, 0));
}

#[tokio::test]
async fn a_sign_up_over_http_is_welcomed_within_a_second() {
    use hogsend_runtime::testkit::TestDaemon;
    use std::time::{Duration, Instant};
    let tdb = TestDatabase::new().await;
    let compiled = hogsend_compiler::compile(&source_set(ONBOARDING, None));
    let files = compiled.files.expect("project compiles");
    // The default flush interval, as deployed.
    let d = TestDaemon::start(&tdb, files, |c| {
        c.realtime_flush = Duration::from_millis(250);
    })
    .await;
    let r = d
        .call(
            "POST",
            "/v1/events",
            Some(&d.ingest_key),
            Some(
                &serde_json::json!({"user_id": "rt", "event": "user.signed_up",
                                     "properties": {"plan": "trial"}}),
            ),
        )
        .await;
    assert_eq!(r.status, 202);
    let started = Instant::now();
    let mut conn = tdb.connect().await;
    loop {
        let n: i64 = sqlx::query_scalar(
            "select count(*) from messages where user_key = 'rt' and template = 'welcome'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("count");
        if n == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no welcome message after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "welcome queued after {took:?}"
    );
    d.stop().await.expect("stop");
}

/// An identity merge moves the anonymous key's list choices (the later choice per list wins)
/// and its messages, except a campaign's message when the user already has one of that
/// campaign: a campaign reaches a person once, and the merge must not fail on it.
#[tokio::test]
async fn a_merge_keeps_one_message_per_campaign_and_the_later_list_choice() {
    let hog = r#"
bucket visitors {
  criteria did visit
}
"#;
    let mut j = J::new(hog).await;
    j.contact("u1", Some("u1@example.com"), "{}").await;
    j.sql("insert into contacts (anonymous_id) values ('a1')")
        .await;
    j.sql(
        "insert into messages (user_key, template, status, campaign_id, category)
         values ('u1', 'launch', 'sent', 'spring', 'news'),
                ('a1', 'launch', 'skipped', 'spring', 'news'),
                ('a1', 'winter', 'skipped', 'winter', 'news');
         insert into subscriptions (user_key, list_id, status, changed_at, source) values
           ('u1', 'news', 'subscribed', '2027-01-01T00:00:00Z', 'api'),
           ('a1', 'news', 'unsubscribed', '2027-01-02T00:00:00Z', 'preferences'),
           ('u1', 'tips', 'unsubscribed', '2027-01-03T00:00:00Z', 'api'),
           ('a1', 'tips', 'subscribed', '2027-01-02T00:00:00Z', 'api'),
           ('a1', '*', 'unsubscribed', '2027-01-02T00:00:00Z', 'one_click');",
    )
    .await;
    j.sql("select merge_contacts('u1', 'a1')").await;

    let messages: Vec<String> =
        sqlx::query_scalar("select user_key || ' ' || campaign_id from messages order by 1")
            .fetch_all(&mut j.conn)
            .await
            .expect("messages");
    assert_eq!(messages, strs(&["a1 spring", "u1 spring", "u1 winter"]));
    let subscriptions: Vec<String> = sqlx::query_scalar(
        "select user_key || ' ' || list_id || ' ' || status || ' ' || source
           from subscriptions order by 1",
    )
    .fetch_all(&mut j.conn)
    .await
    .expect("subscriptions");
    assert_eq!(
        subscriptions,
        strs(&[
            "u1 * unsubscribed one_click",
            "u1 news unsubscribed preferences",
            "u1 tips unsubscribed api",
        ])
    );
}
