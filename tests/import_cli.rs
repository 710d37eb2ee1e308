//! `hogsend import contacts` run as a user runs it: the built binary against a migrated
//! database. A CSV with a BOM, quoted commas, quoted line breaks, doubled quotes, UTF-8
//! names and bad rows → exactly the good rows in the database, the bad ones reported by
//! line, exit code 1; a re-import changes nothing; NDJSON; a bad header writes nothing;
//! `--format json`; several batches.

use hogsend_runtime::testkit::TestDatabase;
use serde_json::{json, Value};
use sqlx::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const PROJECT: &str = r#"
bucket signed_up {
  criteria did signed_up
}
list news {
  name    "News"
  default subscribed
}
list beta {
  name    "Beta"
  default unsubscribed
}
"#;

fn hogsend(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hogsend"))
        .args(args)
        .args(["--database-url", db.url()])
        .env("NO_COLOR", "1")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run hogsend")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A migrated project in a temp dir.
fn project(db: &TestDatabase) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hog"), PROJECT).unwrap();
    let out = hogsend(db, &["migrate", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "migrate: {}", text(&out.stderr));
    dir
}

type Contacts = BTreeMap<String, (Option<String>, Value, bool)>;

/// Every contact: key → (email, properties, updated_at == created_at), and subscriptions.
async fn state(db: &TestDatabase) -> (Contacts, Vec<(String, String, String, String)>) {
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    let rows: Vec<(String, Option<String>, Value, bool)> = sqlx::query_as(
        "select user_key, email, properties, updated_at = created_at
           from hogsend.contacts order by 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let subs = sqlx::query_as(
        "select user_key, list_id, status, source from hogsend.subscriptions order by 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    (
        rows.into_iter()
            .map(|(k, e, p, same)| (k, (e, p, same)))
            .collect(),
        subs,
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn csv_import_with_quoting_unicode_and_bad_rows() {
    let db = TestDatabase::new().await;
    let dir = project(&db);
    let d = dir.path().to_str().unwrap();
    let csv = concat!(
        "\u{feff}user_id,email,name,age:number,vip:boolean,lists,subscribed:news,timezone\r\n",
        "ann,Ann@Example.COM,\"Doe, Ann\",31,yes,beta,,Europe/Paris\r\n",
        "bob,not-an-email,Bob,40,no,,,\r\n",
        "\"cé\",ce@example.com,\"two\r\nlines, \"\"quoted\"\"\",,,\"news;beta\",false,\r\n",
        "dan,dan@example.com,Dan,forty,,,,\r\n",
        "李,li@example.com,李小龍,7,true,,,\r\n",
        "eve,eve@example.com,Eve,,,nope,,\r\n",
        "fay,fay@example.com,Fay,,,,maybe,\r\n",
        ",nobody@example.com,No key,,,,,\r\n",
        "gus,gus@example.com,Gus,,,,,Mars/Base\r\n",
        "hal,hal@example.com,\"Hal \"the\" 9000\",,,,,\r\n",
        "ivy,ivy@example.com,Ivy\r\n",
        "\r\n",
        "zed,zed@example.com,\"Zed\",1.5,false,,true,UTC\r\n",
    );
    let file = write(dir.path(), "people.csv", csv.as_bytes());
    let out = hogsend(&db, &["import", "contacts", &file, d]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let bad: Vec<&str> = stderr.lines().collect();
    let expected_bad = [
        ("line 3:", "`not-an-email` is not an email address"),
        ("line 6:", "`age`: `forty` is not a number"),
        ("line 8:", "`nope` is not a declared list"),
        ("line 9:", "`subscribed:news`: `maybe` is not true or false"),
        ("line 10:", "the key is empty"),
        ("line 11:", "not a time zone"),
        ("line 12:", "after its closing quote"),
        ("line 13:", "expected 8 fields, found 3"),
    ];
    assert_eq!(bad.len(), expected_bad.len(), "{stderr}");
    for (line, (at, what)) in bad.iter().zip(expected_bad) {
        assert!(
            line.starts_with(&format!("error: {file} {at}")) && line.contains(what),
            "{line:?} should be {at} {what}"
        );
    }
    assert_eq!(
        text(&out.stdout).trim(),
        format!("imported {file}: 12 rows, 4 upserted, 0 unchanged, 8 bad")
    );

    let (contacts, subs) = state(&db).await;
    let want: Contacts = [
        (
            "ann".to_owned(),
            (
                Some("ann@example.com".to_owned()),
                json!({"name": "Doe, Ann", "age": 31, "vip": true, "timezone": "Europe/Paris"}),
                true,
            ),
        ),
        (
            "cé".to_owned(),
            (
                Some("ce@example.com".to_owned()),
                json!({"name": "two\r\nlines, \"quoted\""}),
                true,
            ),
        ),
        (
            "zed".to_owned(),
            (
                Some("zed@example.com".to_owned()),
                json!({"name": "Zed", "age": 1.5, "vip": false, "timezone": "UTC"}),
                true,
            ),
        ),
        (
            "李".to_owned(),
            (
                Some("li@example.com".to_owned()),
                json!({"name": "李小龍", "age": 7, "vip": true}),
                true,
            ),
        ),
    ]
    .into();
    assert_eq!(contacts, want);
    let s = |k: &str, l: &str, st: &str| {
        (
            k.to_owned(),
            l.to_owned(),
            st.to_owned(),
            "import".to_owned(),
        )
    };
    assert_eq!(
        subs,
        vec![
            s("ann", "beta", "subscribed"),
            s("cé", "beta", "subscribed"),
            s("cé", "news", "unsubscribed"),
            s("zed", "news", "subscribed"),
        ]
    );

    // Again, in batches of two: nothing changes, every good row is unchanged.
    let again = hogsend(&db, &["import", "contacts", &file, d, "--batch-size", "2"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        text(&again.stdout).trim(),
        format!("imported {file}: 12 rows, 0 upserted, 4 unchanged, 8 bad")
    );
    assert_eq!(state(&db).await, (want, subs));

    // --format json: one document on stdout, nothing on stderr.
    let json_out = hogsend(&db, &["--format", "json", "import", "contacts", &file, d]);
    assert_eq!(json_out.status.code(), Some(1));
    assert_eq!(text(&json_out.stderr), "");
    let doc: Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(doc["format_version"], json!(1));
    assert_eq!(
        (
            doc["import"]["rows"].clone(),
            doc["import"]["unchanged"].clone(),
            doc["import"]["bad"].clone()
        ),
        (json!(12), json!(4), json!(8))
    );
    let lines: Vec<u64> = doc["import"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 6, 8, 9, 10, 11, 12, 13]);
}

#[tokio::test]
async fn ndjson_import_changes_and_exit_codes() {
    let db = TestDatabase::new().await;
    let dir = project(&db);
    let d = dir.path().to_str().unwrap();
    let ndjson = concat!(
        "{\"key\": \"ann\", \"email\": \"ann@example.com\", \"plan\": \"pro\", \"seats\": 3, \"lists\": [\"beta\"]}\n",
        "{\"distinct_id\": \"bob\", \"properties\": {\"tags\": [\"a\", \"b\"]}, \"subscriptions\": {\"news\": false}}\n",
    );
    let file = write(dir.path(), "people.jsonl", ndjson.as_bytes());
    let out = hogsend(&db, &["import", "contacts", &file, d]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("imported {file}: 2 rows, 2 upserted, 0 unchanged, 0 bad")
    );
    let (contacts, subs) = state(&db).await;
    assert_eq!(contacts["ann"].1, json!({"plan": "pro", "seats": 3}));
    assert_eq!(contacts["bob"].1, json!({"tags": ["a", "b"]}));
    assert_eq!(subs.len(), 2);

    // A change: one row upserted, the other unchanged; `null` removes a property.
    let file2 = write(
        dir.path(),
        "change.txt",
        b"{\"key\": \"ann\", \"seats\": null}\n{\"key\": \"bob\", \"tags\": [\"a\", \"b\"]}\n",
    );
    let out = hogsend(
        &db,
        &["import", "contacts", &file2, d, "--input-format", "ndjson"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("imported {file2}: 2 rows, 1 upserted, 1 unchanged, 0 bad")
    );
    let (contacts, _) = state(&db).await;
    assert_eq!(contacts["ann"].1, json!({"plan": "pro"}));
    assert!(!contacts["ann"].2, "ann's updated_at moved");
    assert!(contacts["bob"].2, "bob's updated_at stayed");

    // No format from the extension and none given: a usage failure, nothing read.
    let out = hogsend(&db, &["import", "contacts", &file2, d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--input-format"),
        "{}",
        text(&out.stderr)
    );

    // A header without a key column: exit 1, nothing written.
    let bad = write(dir.path(), "nokey.csv", b"email,name\nx@example.com,X\n");
    let out = hogsend(&db, &["import", "contacts", &bad, d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("line 1: no key column")
            && text(&out.stderr).contains("nothing was imported"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(state(&db).await.0.len(), 2);
}
