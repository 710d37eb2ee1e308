//! Scenario tests of the bucket engine's lifecycle: backfill (silent joins, dwell anchors,
//! criteria changes, idempotent re-deploys), removal, disabling, contact deletion and
//! identities, the real-time `apply_keys` pass, concurrent and refused ticks, TRUNCATE and
//! bulk COPY.

mod support;

use hogsend_compiler::ir::{CmpOp, DwellKind, Pred, Scalar, Window};
use hogsend_runtime::Error;
use support::*;

const T0: Us = 10 * DAY;
const ON: &str = r#"{"flag": true}"#;
const OFF: &str = r#"{"flag": false}"#;

fn flag_true() -> Pred {
    cmp(&["flag"], CmpOp::Eq, Scalar::Bool(true))
}

fn plan_is(p: &str) -> Pred {
    cmp(&["plan"], CmpOp::Eq, s(p))
}

/// `(kind, key, reason-or-label, source)` of every transition of `bucket`, sorted.
async fn kinds(env: &mut Env, bucket: &str) -> Vec<(String, String, String, String)> {
    let mut out: Vec<_> = env
        .transitions()
        .await
        .into_iter()
        .filter(|t| t.bucket == bucket)
        .map(|t| {
            (
                t.kind,
                t.key,
                t.reason.or(t.label).unwrap_or_default(),
                t.source,
            )
        })
        .collect();
    out.sort();
    out
}

fn k(kind: &str, key: &str, detail: &str, source: &str) -> (String, String, String, String) {
    (kind.into(), key.into(), detail.into(), source.into())
}

fn mode(summary: &serde_json::Value, bucket: &str) -> String {
    summary["buckets"][bucket]["mode"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

// ------------------------------------------------------------------------------------------
// Backfill
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn backfill_joins_silently_with_dwell_anchors_from_the_last_qualifying_event() {
    // docs/language.md#deploys-and-backfills: a new bucket's first tick joins every matching
    // contact with source `backfill` and no `bucket:entered` event; the dwell clock of a
    // windowed criteria starts at the member's last qualifying event, so a dwell can fire at
    // the backfill tick itself (dwell reactions do apply).
    let mut power = bucket("power", count("x", within(30 * 86_400), CmpOp::Ge, 10));
    power.dwell = vec![dwell(DwellKind::After, 7 * 86_400)];
    let mut env = Env::new(vec![power]).await;
    let mut events: Vec<(&str, &str, Us)> = (0..12)
        .map(|i| ("busy", "x", T0 - 10 * DAY - i * HOUR))
        .collect();
    events.extend((0..3).map(|i| ("idle", "x", T0 - DAY - i * HOUR)));
    // the latest event is one the window still counts, not a future one
    events.push(("busy", "x", T0 + DAY));
    env.events(&events).await;
    let summary = env.tick(T0).await;
    assert_eq!(mode(&summary, "power"), "backfill");
    assert_eq!(env.members("power").await, vec!["busy"]);
    assert_eq!(
        kinds(&mut env, "power").await,
        vec![
            k("dwell", "busy", "after_7d", "backfill"),
            k("entered", "busy", "", "backfill"),
        ]
    );
    assert_eq!(
        env.bucket_event_names().await,
        vec![(
            "bucket:dwell:power:after_7d".to_string(),
            "busy".to_string()
        )],
        "a silent join records no bucket:entered event; its dwell does fire"
    );
    let anchor: chrono::DateTime<chrono::Utc> = env
        .scalar("select dwell_anchor from hs.memberships where user_key = 'busy'")
        .await;
    assert_eq!(
        us_of(anchor),
        T0 - 10 * DAY,
        "the last x at or before the tick"
    );
    let rows = env.member_rows().await;
    assert_eq!((rows[0].entered_at, rows[0].entry_count), (T0, 1));
}

#[tokio::test]
async fn backfill_anchor_is_the_join_when_no_windowed_event_qualifies() {
    // A criteria with a windowed atom, matched through another branch: no qualifying event,
    // so the clock starts at the join (no dwell at the backfill tick).
    let mut b = bucket("b", or(vec![flag_true(), did("x", within(86_400))]));
    b.dwell = vec![dwell(DwellKind::After, 3600)];
    let mut plain = bucket("plain", flag_true());
    plain.dwell = vec![dwell(DwellKind::After, 3600)];
    let mut env = Env::new(vec![b, plain]).await;
    env.contact("a", ON).await;
    env.tick(T0).await;
    assert_eq!(env.members("b").await, vec!["a"]);
    assert!(env.bucket_events().await.is_empty());
    env.tick(T0 + HOUR).await;
    assert_eq!(
        env.bucket_events().await.len(),
        2,
        "both dwell 1h after the backfill"
    );
}

#[tokio::test]
async fn backfill_skips_deleted_contacts() {
    // A soft-deleted contact with plenty of events is not materialized, nor is a
    // contact row that was hard-deleted after its events arrived.
    let mut env = Env::new(vec![bucket("b", did("x", Window::Ever))]).await;
    env.events(&[
        ("gone", "x", T0 - DAY),
        ("hard", "x", T0 - DAY),
        ("ok", "x", T0 - DAY),
    ])
    .await;
    env.delete("gone").await;
    env.sql("delete from hs.contacts where user_key = 'hard'")
        .await;
    env.tick(T0).await;
    assert_eq!(env.members("b").await, vec!["ok"]);
}

#[tokio::test]
async fn an_identical_redeploy_does_not_backfill_again() {
    // Migrate is idempotent; the next tick reconciles, joins nobody.
    let buckets = || vec![bucket("b", did("x", Window::Ever))];
    let mut env = Env::new(buckets()).await;
    env.events(&[("a", "x", T0 - DAY)]).await;
    env.tick(T0).await;
    let report = env.deploy(buckets()).await;
    assert!(report.added.is_empty() && report.changed.is_empty() && report.removed.is_empty());
    let summary = env.tick(T0 + HOUR).await;
    assert_eq!(mode(&summary, "b"), "reconcile");
    assert_eq!(env.transitions().await.len(), 1);
}

#[tokio::test]
async fn reordered_or_respelled_criteria_is_not_a_change() {
    // The fingerprint is over the normalized criteria: reordered `and`/`or` children, `7d`
    // written in other units (the same seconds), `5` vs `5.0`, double negation and
    // duplicate children do not re-backfill.
    let v1 = and(vec![
        did("x", Window::Ever),
        not(did("x", within(7 * 86_400))),
        cmp(&["n"], CmpOp::Ge, n("5")),
    ]);
    let v2 = and(vec![
        cmp(&["n"], CmpOp::Ge, n("5.0")),
        not(not(not(did("x", within(604_800))))),
        and(vec![did("x", Window::Ever), did("x", Window::Ever)]),
    ]);
    let mut env = Env::new(vec![bucket("b", v1)]).await;
    env.tick(T0).await;
    let report = env.deploy(vec![bucket("b", v2)]).await;
    assert!(report.changed.is_empty(), "{report:?}");
    let summary = env.tick(T0 + HOUR).await;
    assert_eq!(mode(&summary, "b"), "reconcile");
    // while a real change is one
    let report = env.deploy(vec![bucket("b", did("x", Window::Ever))]).await;
    assert_eq!(report.changed, vec!["b"]);
    let summary = env.tick(T0 + 2 * HOUR).await;
    assert_eq!(mode(&summary, "b"), "backfill");
}

#[tokio::test]
async fn a_criteria_change_rebackfills_with_firing_leaves_and_silent_joins() {
    // Members who no longer match leave with reason `criteria` and DO record
    // `bucket:left`; new matchers join silently (a prior member gets the next epoch);
    // members who still match keep their membership untouched.
    let mut env = Env::new(vec![bucket("b", plan_is("pro"))]).await;
    env.contact("stays", r#"{"plan": "pro", "seats": 10}"#)
        .await;
    env.contact("goes", r#"{"plan": "pro", "seats": 1}"#).await;
    env.contact("comes", r#"{"plan": "free", "seats": 10}"#)
        .await;
    env.contact("returns", r#"{"plan": "pro", "seats": 9}"#)
        .await;
    env.tick(T0).await;
    env.set_props("returns", r#"{"plan": "free", "seats": 9}"#)
        .await;
    env.tick(T0 + HOUR).await;
    assert_eq!(env.members("b").await, vec!["goes", "stays"]);

    let seats = cmp(&["seats"], CmpOp::Ge, n("9"));
    let report = env.deploy(vec![bucket("b", seats)]).await;
    assert_eq!(report.changed, vec!["b"]);
    env.tick(T0 + 2 * HOUR).await;
    assert_eq!(env.members("b").await, vec!["comes", "returns", "stays"]);
    let rows = env.member_rows().await;
    let by_key = |key: &str| rows.iter().find(|m| m.key == key).unwrap().clone();
    assert_eq!(
        (by_key("stays").entered_at, by_key("stays").entry_count),
        (T0, 1)
    );
    assert_eq!(by_key("returns").entry_count, 2);
    assert_eq!(by_key("comes").entered_at, T0 + 2 * HOUR);
    let late: Vec<(String, String, String, String)> = env
        .transitions()
        .await
        .into_iter()
        .filter(|t| t.occurred_at == T0 + 2 * HOUR)
        .map(|t| (t.kind, t.key, t.reason.unwrap_or_default(), t.source))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        late,
        vec![
            k("entered", "comes", "", "backfill"),
            k("entered", "returns", "", "backfill"),
            k("left", "goes", "criteria", "backfill"),
        ]
    );
    assert_eq!(
        env.bucket_event_names().await,
        vec![
            ("bucket:left:b".to_string(), "returns".to_string()),
            ("bucket:left:b".to_string(), "goes".to_string()),
        ]
    );
}

// ------------------------------------------------------------------------------------------
// Removal, disabling, deletion, identities
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn removing_a_bucket_ends_its_memberships_silently_and_drops_its_functions() {
    let mut env = Env::new(vec![
        bucket("gone", flag_true()),
        bucket("kept", flag_true()),
    ])
    .await;
    env.contact("a", ON).await;
    env.tick(T0).await;
    let report = env.deploy(vec![bucket("kept", flag_true())]).await;
    assert_eq!(report.removed, vec!["gone"]);
    assert_eq!(
        kinds(&mut env, "gone").await,
        vec![
            k("entered", "a", "", "backfill"),
            k("left", "a", "removed", "migrate"),
        ]
    );
    assert!(
        env.bucket_events().await.is_empty(),
        "removal fires nothing"
    );
    let functions: i64 = env
        .scalar(
            "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
             where n.nspname = 'hogsend' and p.proname like 'b\\_gone\\_%'",
        )
        .await;
    assert_eq!(functions, 0);
    // ticks go on without it
    env.set_props("a", OFF).await;
    env.tick(T0 + HOUR).await;
    assert!(env.members("kept").await.is_empty());
    assert!(env.members("gone").await.is_empty());
}

#[tokio::test]
async fn disabling_ends_memberships_and_reenabling_backfills_silently() {
    let mut env = Env::new(vec![bucket("b", flag_true())]).await;
    env.contact("a", ON).await;
    env.tick(T0).await;
    let mut off = bucket("b", flag_true());
    off.enabled = false;
    env.deploy(vec![off]).await;
    assert!(env.members("b").await.is_empty());
    env.contact("c", ON).await;
    let summary = env.tick(T0 + HOUR).await;
    assert!(
        summary["buckets"].get("b").is_none(),
        "a disabled bucket is not run"
    );
    assert!(env.members("b").await.is_empty());
    env.deploy(vec![bucket("b", flag_true())]).await;
    env.tick(T0 + 2 * HOUR).await;
    assert_eq!(env.members("b").await, vec!["a", "c"]);
    assert_eq!(
        kinds(&mut env, "b").await,
        vec![
            k("entered", "a", "", "backfill"),
            k("entered", "a", "", "backfill"),
            k("entered", "c", "", "backfill"),
            k("left", "a", "disabled", "migrate"),
        ]
    );
    assert!(env.bucket_events().await.is_empty());
}

#[tokio::test]
async fn an_event_for_an_unknown_key_creates_the_contact() {
    let mut env = Env::new(vec![bucket("b", did("signed up", Window::Ever))]).await;
    env.tick(T0).await;
    env.events(&[("new user ü", "signed up", T0 + MIN)]).await;
    let (external, props): (String, String) = sqlx::query_as(
        "select external_id, properties::text from hogsend.contacts where user_key = 'new user ü'",
    )
    .fetch_one(&mut env.conn)
    .await
    .unwrap();
    assert_eq!((external.as_str(), props.as_str()), ("new user ü", "{}"));
    env.tick(T0 + HOUR).await;
    assert_eq!(env.members("b").await, vec!["new user ü"]);
}

#[tokio::test]
async fn anonymous_and_email_only_contacts_are_members_like_any_other() {
    // E1: the key is coalesce(external_id, anonymous_id, id::text) everywhere.
    let mut dormant = bucket(
        "dormant",
        and(vec![did("x", Window::Ever), not(did("x", within(86_400)))]),
    );
    dormant.max_dwell = Some(2 * 86_400);
    dormant.dwell = vec![dwell(DwellKind::After, 3600)];
    let mut env = Env::new(vec![bucket("pro", plan_is("pro")), dormant]).await;
    env.tick(T0).await;
    env.sql(
        r#"insert into hs.contacts (anonymous_id, properties) values ('anon-1', '{"plan": "pro"}');
           insert into hs.contacts (email, properties) values ('e@example.test', '{"plan": "pro"}');"#,
    )
    .await;
    let email_key: String = env
        .scalar("select user_key from hs.contacts where email = 'e@example.test'")
        .await;
    env.events(&[("anon-1", "x", T0), (&email_key, "x", T0)])
        .await;
    env.tick(T0 + HOUR).await;
    let mut both = vec!["anon-1".to_string(), email_key.clone()];
    both.sort();
    assert_eq!(env.members("pro").await, both);
    // time alone moves them: they go dormant, dwell, expire
    env.tick(T0 + DAY + 1).await;
    assert_eq!(env.members("dormant").await, both);
    env.tick(T0 + DAY + HOUR + 1).await;
    env.tick(T0 + 3 * DAY + 1).await;
    for key in &both {
        let mut got: Vec<(String, String)> = env
            .transitions()
            .await
            .into_iter()
            .filter(|t| &t.key == key && t.bucket == "dormant")
            .map(|t| (t.kind, t.reason.or(t.label).unwrap_or_default()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("dwell".to_string(), "after_1h".to_string()),
                ("entered".to_string(), String::new()),
                ("left".to_string(), "max_dwell".to_string()),
            ],
            "{key}"
        );
    }
    // deleting the email-only contact ends its memberships
    env.sql("update hs.contacts set deleted_at = now() where email = 'e@example.test'")
        .await;
    env.tick(T0 + 4 * DAY).await;
    assert_eq!(env.members("pro").await, vec!["anon-1"]);
}

#[tokio::test]
async fn identifying_an_anonymous_contact_moves_its_memberships_to_the_new_key() {
    // Setting external_id changes the key: the old key is in no bucket any more, the new
    // one is where the criteria say. (Events stay under the key they were recorded with:
    // merging identities is the ingest API's business.)
    let mut env = Env::new(vec![bucket("pro", plan_is("pro"))]).await;
    env.sql(r#"insert into hs.contacts (anonymous_id, properties) values ('anon-1', '{"plan": "pro"}')"#)
        .await;
    env.tick(T0).await;
    env.sql("update hs.contacts set external_id = 'user-1' where anonymous_id = 'anon-1'")
        .await;
    env.tick(T0 + HOUR).await;
    assert_eq!(env.members("pro").await, vec!["user-1"]);
}

// ------------------------------------------------------------------------------------------
// The real-time pass
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn apply_keys_moves_just_those_keys_at_the_later_of_now_and_the_last_tick() {
    let mut b = bucket("b", did("x", within(86_400)));
    b.dwell = vec![dwell(DwellKind::After, 60)];
    let mut env = Env::new(vec![b]).await;
    env.tick(T0).await;
    env.events(&[("a", "x", T0 - HOUR), ("c", "x", T0 - HOUR)])
        .await;
    // `now` before the last tick: the pass runs at the last tick's instant
    let summary = hogsend_runtime::db::apply_keys(
        &mut env.conn,
        "hogsend",
        &["a".to_string(), "nobody".to_string()],
        Some(ts(T0 - DAY)),
    )
    .await
    .unwrap();
    assert_eq!(us_of(summary["now"].as_str().unwrap().parse().unwrap()), T0);
    assert_eq!(
        env.members("b").await,
        vec!["a"],
        "only the keys it was given"
    );
    let rows = env.member_rows().await;
    assert_eq!(rows[0].entered_at, T0);
    assert_eq!(
        env.bucket_event_names().await,
        vec![("bucket:entered:b".to_string(), "a".to_string())]
    );
    // later: the pass runs at its own `now`, and fires no dwell (timers belong to ticks)
    hogsend_runtime::db::apply_keys(
        &mut env.conn,
        "hogsend",
        &["c".to_string()],
        Some(ts(T0 + 5 * MIN)),
    )
    .await
    .unwrap();
    let rows = env.member_rows().await;
    assert_eq!(
        rows.iter()
            .map(|m| (m.key.as_str(), m.entered_at))
            .collect::<Vec<_>>(),
        vec![("a", T0), ("c", T0 + 5 * MIN)]
    );
    assert!(env.transitions().await.iter().all(|t| t.kind != "dwell"));
    // a leave through the real-time pass
    env.sql("delete from hs.events where user_key = 'a'").await;
    hogsend_runtime::db::apply_keys(
        &mut env.conn,
        "hogsend",
        &["a".to_string()],
        Some(ts(T0 + 6 * MIN)),
    )
    .await
    .unwrap();
    assert_eq!(env.members("b").await, vec!["c"]);
    // the next tick agrees and fires the dwell
    env.tick(T0 + 10 * MIN).await;
    assert_eq!(env.members("b").await, vec!["c"]);
    assert_eq!(
        kinds(&mut env, "b").await,
        vec![
            k("dwell", "c", "after_1m", "tick"),
            k("entered", "a", "", "event"),
            k("entered", "c", "", "event"),
            k("left", "a", "criteria", "event"),
        ]
    );
}

#[tokio::test]
async fn apply_changes_drains_the_queue_and_evaluates_each_bucket_for_what_it_sees() {
    let mut env = Env::new(vec![
        bucket("bx", did("x", Window::Ever)),
        bucket("by", did("y", Window::Ever)),
        bucket("flagged", flag_true()),
    ])
    .await;
    for key in ["a", "b", "c", "d"] {
        env.contact(key, OFF).await;
    }
    env.tick(T0).await;
    env.events(&[
        ("a", "x", T0 - HOUR),
        ("b", "y", T0 - HOUR),
        ("d", "x", T0 - HOUR),
    ])
    .await;
    env.set_props("c", ON).await;
    let keys: Vec<String> = ["a", "b", "c", "nobody"].map(String::from).to_vec();
    let summary =
        hogsend_runtime::db::apply_changes(&mut env.conn, "hogsend", &keys, Some(ts(T0 + MIN)))
            .await
            .unwrap();
    // each bucket looked at the one contact whose change it can see, no other
    for (id, key) in [("bx", "a"), ("by", "b"), ("flagged", "c")] {
        assert_eq!(summary["buckets"][id]["candidates"], 1, "{summary}");
        assert_eq!(env.members(id).await, vec![key]);
    }
    // their queue entries are gone; d's (not passed) stays for the tick
    let queued: Vec<String> = env
        .scalar("select coalesce(array_agg(distinct user_key order by user_key), '{}') from hs.changed_keys")
        .await;
    assert_eq!(queued, vec!["d"]);
    // a pass over keys with nothing queued does nothing
    let again =
        hogsend_runtime::db::apply_changes(&mut env.conn, "hogsend", &keys, Some(ts(T0 + MIN)))
            .await
            .unwrap();
    assert_eq!(again["changes"], 0);
    assert_eq!(again["buckets"], serde_json::json!({}));
    env.tick(T0 + 2 * MIN).await;
    assert_eq!(env.members("bx").await, vec!["a", "d"]);
    assert_eq!(env.members("by").await, vec!["b"]);
    assert_eq!(env.members("flagged").await, vec!["c"]);
    assert_eq!(
        kinds(&mut env, "bx").await,
        vec![
            k("entered", "a", "", "event"),
            k("entered", "d", "", "tick")
        ]
    );
}

#[tokio::test]
async fn apply_keys_skips_a_bucket_awaiting_its_backfill() {
    let mut env = Env::new(vec![bucket("b", did("x", Window::Ever))]).await;
    env.events(&[("a", "x", T0 - HOUR)]).await;
    hogsend_runtime::db::apply_keys(&mut env.conn, "hogsend", &["a".to_string()], Some(ts(T0)))
        .await
        .unwrap();
    assert!(env.members("b").await.is_empty());
    env.tick(T0).await;
    assert_eq!(
        kinds(&mut env, "b").await,
        vec![k("entered", "a", "", "backfill")]
    );
    assert!(
        env.bucket_events().await.is_empty(),
        "the join stays silent"
    );
}

// ------------------------------------------------------------------------------------------
// Tick discipline
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_tick_earlier_than_the_last_is_refused_and_changes_nothing() {
    let mut env = Env::new(vec![bucket("b", did("x", Window::Ever))]).await;
    env.tick(T0).await;
    env.events(&[("a", "x", T0 - DAY)]).await;
    let err = hogsend_runtime::db::tick(&mut env.conn, "hogsend", Some(ts(T0 - 1)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TickRefused(_)), "{err}");
    assert!(env.members("b").await.is_empty());
    env.tick(T0).await; // the same instant is fine
    assert_eq!(env.members("b").await, vec!["a"]);
}

#[tokio::test]
async fn concurrent_ticks_and_real_time_passes_record_each_transition_once() {
    // Two connections tick at the same instant at once, a third runs apply_keys meanwhile:
    // they serialize, none fails, and every transition exists once.
    let mut dormant = bucket(
        "dormant",
        and(vec![did("x", Window::Ever), not(did("x", within(3600)))]),
    );
    dormant.dwell = vec![dwell(DwellKind::Every, 1800)];
    let mut env = Env::new(vec![dormant, bucket("pro", plan_is("pro"))]).await;
    let mut c1 = env.db.connect().await;
    let mut c2 = env.db.connect().await;
    let mut c3 = env.db.connect().await;
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
    let mut expected_members = 0;
    for round in 0..6i64 {
        let t = T0 + round * 40 * MIN;
        let events: Vec<(&str, &str, Us)> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| (*i as i64 + round) % 3 == 0)
            .map(|(_, k)| (k.as_str(), "x", t - MIN))
            .collect();
        env.events(&events).await;
        env.sql(&format!(
            "update hs.contacts set properties = jsonb_build_object('plan', \
             case when (substr(user_key, 2)::int + {round}) % 2 = 0 then 'pro' else 'free' end)"
        ))
        .await;
        let (r1, r2, r3) = tokio::join!(
            hogsend_runtime::db::tick(&mut c1, "hogsend", Some(ts(t))),
            hogsend_runtime::db::tick(&mut c2, "hogsend", Some(ts(t))),
            hogsend_runtime::db::apply_keys(&mut c3, "hogsend", &keys, Some(ts(t))),
        );
        r1.unwrap();
        r2.unwrap();
        r3.unwrap();
        expected_members = keys
            .iter()
            .filter(|k| (k[1..].parse::<i64>().unwrap() + round) % 2 == 0)
            .count();
    }
    assert_eq!(env.members("pro").await.len(), expected_members);
    let duplicates: i64 = env
        .scalar(
            "select count(*) from (select 1 from hs.transitions \
             group by bucket_id, user_key, entry_count, kind, label, ordinal having count(*) > 1) d",
        )
        .await;
    assert_eq!(duplicates, 0);
    let duplicate_events: i64 = env
        .scalar(
            "select count(*) from (select 1 from hs.events where event like 'bucket:%' \
             group by user_key, event, occurred_at having count(*) > 1) d",
        )
        .await;
    assert_eq!(duplicate_events, 0);
    // every transition fired its event once, and the log replays to the memberships
    check_log(&mut env.conn, "hogsend", None).await.unwrap();
    // and memberships are exact: a final tick changes nothing
    let before = env.transitions().await.len();
    env.tick(T0 + 5 * 40 * MIN).await;
    assert_eq!(env.transitions().await.len(), before);
}

// ------------------------------------------------------------------------------------------
// Bulk paths
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn truncating_events_rederives_everything_at_the_next_tick() {
    let mut env = Env::new(vec![
        bucket("active", did("x", within(86_400))),
        bucket("pro", plan_is("pro")),
    ])
    .await;
    env.contact("p", r#"{"plan": "pro"}"#).await;
    env.events(&[("a", "x", T0 - HOUR), ("p", "x", T0 - HOUR)])
        .await;
    env.tick(T0).await;
    assert_eq!(env.members("active").await, vec!["a", "p"]);
    env.sql("truncate hs.events").await;
    let summary = env.tick(T0 + MIN).await;
    assert_eq!(mode(&summary, "active"), "backfill");
    assert!(env.members("active").await.is_empty());
    assert_eq!(env.members("pro").await, vec!["p"]);
    let mut left: Vec<(String, String)> = env
        .transitions()
        .await
        .into_iter()
        .filter(|t| t.kind == "left")
        .map(|t| (t.key, t.reason.unwrap_or_default()))
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            ("a".to_string(), "criteria".to_string()),
            ("p".to_string(), "criteria".to_string())
        ]
    );
    // and later events count again
    env.events(&[("a", "x", T0 + 2 * MIN)]).await;
    env.tick(T0 + 3 * MIN).await;
    assert_eq!(env.members("active").await, vec!["a"]);
}

#[tokio::test]
async fn a_bulk_copy_of_ten_thousand_events_is_picked_up() {
    let mut env = Env::new(vec![
        bucket("five", count("x", Window::Ever, CmpOp::Ge, 5)),
        bucket("recent", did("x", within(3600))),
    ])
    .await;
    env.tick(T0).await;
    // 2,000 keys; key i gets i % 9 events, spread over the last two hours
    let mut rows = Vec::new();
    let mut i = 0;
    while rows.len() < 10_000 {
        let key = format!("k{}", i % 2000);
        for j in 0..(i % 9) {
            rows.push(Event {
                key: key.clone(),
                name: "x".into(),
                props: format!(r#"{{"n": {j}}}"#),
                at: T0 + HOUR - (j as i64) * 15 * MIN,
            });
        }
        i += 1;
    }
    let mut world = World::default();
    world.add_events(&rows);
    copy_events(&mut env.conn, "hogsend", &rows).await;
    let contacts: i64 = env.scalar("select count(*) from hs.contacts").await;
    assert_eq!(contacts as usize, world.contacts.len());
    let t = T0 + 2 * HOUR;
    env.tick(t).await;
    for (id, p) in [
        ("five", count("x", Window::Ever, CmpOp::Ge, 5)),
        ("recent", did("x", within(3600))),
    ] {
        let expected: Vec<String> = world.matching(&p, t).into_iter().collect();
        let got = env.members(id).await;
        assert_eq!(got.len(), expected.len(), "{id}");
        assert_eq!(got, expected, "{id}");
    }
}

#[tokio::test]
async fn opens_clicks_and_their_removal_are_seen_by_the_next_tick() {
    // Every write path to `messages` that can change `opened`/`clicked`: an open recorded
    // later, a reset, a purge, a TRUNCATE.
    let mut env = Env::new(vec![
        bucket("opened", Pred::Opened("welcome".into())),
        bucket("clicked", Pred::Clicked("welcome".into())),
    ])
    .await;
    env.tick(T0).await;
    for key in ["a", "b", "c"] {
        env.contact(key, "{}").await;
    }
    env.sql(
        "insert into hs.messages (user_key, template) values ('a', 'welcome'), ('b', 'welcome'), ('c', 'other');
         insert into hs.messages (user_key, template, opened_at, clicked_at) values ('c', 'welcome', now(), now())",
    )
    .await;
    env.tick(T0 + MIN).await;
    assert_eq!(env.members("opened").await, vec!["c"]);
    env.sql("update hs.messages set opened_at = now() where user_key in ('a', 'b') and template = 'welcome'")
        .await;
    env.tick(T0 + 2 * MIN).await;
    assert_eq!(env.members("opened").await, vec!["a", "b", "c"]);
    assert_eq!(env.members("clicked").await, vec!["c"]);
    env.sql("update hs.messages set opened_at = null where user_key = 'a'")
        .await;
    env.sql("delete from hs.messages where user_key = 'c' and template = 'welcome'")
        .await;
    env.tick(T0 + 3 * MIN).await;
    assert_eq!(env.members("opened").await, vec!["b"]);
    assert!(env.members("clicked").await.is_empty());
    env.sql("truncate hs.messages").await;
    env.tick(T0 + 4 * MIN).await;
    assert!(env.members("opened").await.is_empty());
    check_log(&mut env.conn, "hogsend", None).await.unwrap();
}

#[tokio::test]
async fn ticks_racing_at_different_instants_serialize_or_refuse_cleanly() {
    // A later and an earlier tick at once: either order commits, or the earlier one is
    // refused because the later one committed first; never a partial or doubled pass.
    let mut env = Env::new(vec![bucket("b", did("x", within(3600)))]).await;
    let mut c1 = env.db.connect().await;
    let mut c2 = env.db.connect().await;
    env.tick(T0).await;
    for round in 1..6i64 {
        let t = T0 + round * HOUR;
        let key = format!("k{round}");
        env.events(&[(&key, "x", t - 30 * MIN)]).await;
        let (late, early) = tokio::join!(
            hogsend_runtime::db::tick(&mut c1, "hogsend", Some(ts(t))),
            hogsend_runtime::db::tick(&mut c2, "hogsend", Some(ts(t - MIN))),
        );
        late.unwrap();
        if let Err(e) = early {
            assert!(matches!(e, Error::TickRefused(_)), "{e}");
        }
        assert_eq!(env.members("b").await, vec![key]);
    }
    check_log(&mut env.conn, "hogsend", None).await.unwrap();
}

#[tokio::test]
async fn entry_once_counts_memberships_ended_by_a_deploy() {
    // Decision (docs/language.md#membership: `entry once` is at most one membership ever): a membership ended by
    // disabling the bucket was the contact's one entry, so re-enabling an `entry once`
    // bucket does not re-admit it; contacts that never were members join silently.
    let mut once = bucket("b", flag_true());
    once.entry = hogsend_compiler::ir::EntryPolicy::Once;
    let mut env = Env::new(vec![once.clone()]).await;
    env.contact("a", ON).await;
    env.tick(T0).await;
    let mut off = once.clone();
    off.enabled = false;
    env.deploy(vec![off]).await;
    env.tick(T0 + HOUR).await;
    env.contact("c", ON).await;
    env.deploy(vec![once]).await;
    env.tick(T0 + 2 * HOUR).await;
    assert_eq!(env.members("b").await, vec!["c"]);
}
