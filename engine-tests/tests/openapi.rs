//! The OpenAPI document: snapshotted (an API change shows up in review), accepted by a
//! stock validator (the Python `openapi-spec-validator`, installed by `.ci/run`; the test
//! fails without it), served without a key, and true to what the daemon answers.

use hogsend_engine_tests::compile;
use hogsend_runtime::http::openapi::document;
use hogsend_runtime::testkit::{TestDaemon, TestDatabase};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::Command;

fn pretty() -> String {
    document()
        .to_pretty_json()
        .expect("the document serializes")
}

#[test]
fn the_document_is_snapshotted() {
    insta::with_settings!({ snapshot_path => "../../snapshots", omit_expression => true }, {
        insta::assert_snapshot!("openapi", pretty());
    });
}

#[test]
fn a_stock_validator_accepts_the_document() {
    let doc: Value = serde_json::from_str(&pretty()).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let path = std::env::temp_dir().join(format!("hogsend-openapi-{}.json", std::process::id()));
    std::fs::write(&path, pretty()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(&path)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document (install it with \
         `python3 -m pip install openapi-spec-validator`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The property names of component schema `name`.
fn properties(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name}"))
        .keys()
        .cloned()
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn served_without_a_key_and_true_to_the_answers() {
    let tdb = TestDatabase::new().await;
    let d = TestDaemon::start(
        &tdb,
        compile("bucket pro {\n  criteria contact.plan == \"pro\"\n}\n"),
        |_| {},
    )
    .await;
    let r = d.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let doc = r.json();
    assert_eq!(doc, serde_json::from_str::<Value>(&pretty()).unwrap());

    let r = d
        .call(
            "POST",
            "/v1/events",
            Some(&d.ingest_key),
            Some(&json!({"user_id": "ann", "event": "x", "contact": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(keys(&r.json()), properties(&doc, "Outcome"));
    let r = d
        .call("GET", "/v1/contacts/ann", Some(&d.read_key), None)
        .await;
    assert_eq!(keys(&r.json()), properties(&doc, "Contact"));
    let r = d
        .call("GET", "/v1/contacts/ann/events", Some(&d.read_key), None)
        .await;
    assert_eq!(
        keys(&r.json()["events"][0]),
        properties(&doc, "StoredEvent")
    );
    let r = d.call("GET", "/v1/buckets", Some(&d.read_key), None).await;
    assert_eq!(keys(&r.json()["buckets"][0]), properties(&doc, "Bucket"));
    let r = d
        .call("GET", "/v1/contacts/nobody", Some(&d.read_key), None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(keys(&r.json()), properties(&doc, "ErrorBody"));
    assert_eq!(keys(&r.json()["error"]), properties(&doc, "ErrorObject"));
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    assert!(codes.contains(&r.json()["error"]["code"]));
}
