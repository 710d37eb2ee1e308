//! First end-to-end smoke: hand-built IR → SQL → migrate → tick.

use chrono::{DateTime, Utc};
use hogsend_compiler::ir::*;
use hogsend_runtime::testkit::TestDatabase;
use hogsend_runtime::{db, migrate};
use hogsend_schema::SchemaName;

fn did(e: &str, w: Window) -> Pred {
    Pred::Event(EventAtom {
        event: e.into(),
        filter: None,
        window: w,
        test: EventTest::Exists,
    })
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn went_dormant_joins_and_leaves() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.connect().await;
    let bucket = Bucket {
        id: BucketId::new("went_dormant").expect("a valid bucket id"),
        name: None,
        description: None,
        criteria: Pred::And(vec![
            did("app_opened", Window::Ever),
            Pred::Not(Box::new(did("app_opened", Window::Within(7 * 86400)))),
        ]),
        entry: EntryPolicy::Unlimited,
        min_dwell: None,
        max_dwell: None,
        enabled: true,
        dwell: vec![],
        reactions: vec![],
        origin: Origin {
            file: "b.hog".into(),
            line: 1,
        },
    };
    let program = Program {
        buckets: vec![bucket],
        ..Default::default()
    };
    let plan = hogsend_compiler::plan::plan(&program, &Default::default());
    let files = hogsend_compiler::emit::emit(&plan);
    let report = migrate::migrate(&mut conn, &SchemaName::default(), &files)
        .await
        .unwrap();
    assert_eq!(report.added, vec!["went_dormant"]);
    sqlx::raw_sql(
        "insert into hogsend.events (user_key, event, occurred_at) values
        ('a', 'app_opened', '2026-01-01T00:00:00Z'), ('b', 'app_opened', '2026-01-09T00:00:00Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let s = db::tick(&mut conn, "hogsend", Some(at("2026-01-10T00:00:00Z")))
        .await
        .unwrap();
    println!("{s:#}");
    let members: Vec<String> =
        sqlx::query_scalar("select user_key from hogsend.bucket_members order by 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(members, vec!["a"]);
    // b goes quiet: 7 days after its last open it joins
    let s = db::tick(&mut conn, "hogsend", Some(at("2026-01-16T00:00:01Z")))
        .await
        .unwrap();
    println!("{s:#}");
    let members: Vec<String> =
        sqlx::query_scalar("select user_key from hogsend.bucket_members order by 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(members, vec!["a", "b"]);
    // a opens the app again: leaves at the next tick
    sqlx::raw_sql("insert into hogsend.events (user_key, event, occurred_at) values ('a', 'app_opened', '2026-01-16T00:00:02Z')")
        .execute(&mut conn).await.unwrap();
    let s = db::tick(&mut conn, "hogsend", Some(at("2026-01-16T00:00:30Z")))
        .await
        .unwrap();
    println!("{s:#}");
    let members: Vec<String> =
        sqlx::query_scalar("select user_key from hogsend.bucket_members order by 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(members, vec!["b"]);
    let events: Vec<String> = sqlx::query_scalar("select event || ':' || user_key from hogsend.events where event like 'bucket:%' order by id").fetch_all(&mut conn).await.unwrap();
    assert_eq!(
        events,
        vec![
            "bucket:entered:went_dormant:b",
            "bucket:left:went_dormant:a"
        ]
    );
    // retried tick changes nothing, earlier tick refused
    let s = db::tick(&mut conn, "hogsend", Some(at("2026-01-16T00:00:30Z")))
        .await
        .unwrap();
    assert_eq!(s["passes"]["reconcile"]["joins"], 0);
    assert!(
        db::tick(&mut conn, "hogsend", Some(at("2026-01-01T00:00:00Z")))
            .await
            .is_err()
    );
    // migrate is idempotent
    let report = migrate::migrate(&mut conn, &SchemaName::default(), &files)
        .await
        .unwrap();
    assert!(report.added.is_empty() && report.changed.is_empty());
}
