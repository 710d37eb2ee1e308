//! Parser tests: every construct of the language, through one `check(input, expected)` helper
//! that compares an s-expression dump of the tree.

mod support;

use hogsend_dsl::ast::*;
use hogsend_dsl::{parse, Span};
use support::check;

#[test]
fn empty_files_and_comments_only() {
    check("", "");
    check("  \n// just a comment\n\n", "");
    check("\u{feff}bucket a {}", "(bucket a )");
    let parsed = parse("// one\n// two");
    assert_eq!(parsed.file.comments.len(), 2);
    assert_eq!(parsed.file.comments[1].text, " two");
}

#[test]
fn bucket_fields() {
    check(
        r#"bucket went_dormant {
  name        "Went dormant"
  description "Used the app, but not this week"
  criteria    did app_opened and not did app_opened within 7d
  entry       once per 14d
  min_dwell   1h
  max_dwell   30d
  enabled     true
}"#,
        r#"(bucket went_dormant
            (name "Went dormant")
            (description "Used the app, but not this week")
            (criteria (and (did "app_opened") (not (did "app_opened" within 7d))))
            (entry once-per 14d) (min_dwell 1h) (max_dwell 30d) (enabled true))"#,
    );
    check(
        "bucket b { entry unlimited entry once enabled false }",
        "(bucket b (entry unlimited) (entry once) (enabled false))",
    );
}

#[test]
fn bucket_reactions() {
    check(
        r#"bucket b {
  on enter { send winback_1 }
  on enter first { send welcome_back }
  on leave { send thanks }
  on leave because criteria { send a }
  on leave because max_dwell { send b }
  on dwell after 3d  { send dormant_nudge }
  on dwell every 7d as weekly { send weekly_digest }
  on dwell after 1d12h as later {}
}"#,
        r#"(bucket b
            (on enter {(send winback_1)})
            (on enter first {(send welcome_back)})
            (on leave {(send thanks)})
            (on leave because criteria {(send a)})
            (on leave because max_dwell {(send b)})
            (on dwell after 3d {(send dormant_nudge)})
            (on dwell every 7d as weekly {(send weekly_digest)})
            (on dwell after 1d+12h as later {}))"#,
    );
}

#[test]
fn journey_headers() {
    check(
        r#"journey onboarding {
  name    "Onboarding"
  description "Welcome new users"
  trigger event user.signed_up where (event.plan == "trial")
  trigger event "Order Completed"
  trigger enter went_dormant
  trigger leave went_dormant
  trigger dwell went_dormant.after_3d
  entry   once
  entry   unlimited
  entry   once per 30d
  exit when did user.deleted or did subscription.started
}"#,
        r#"(journey onboarding
            (name "Onboarding") (description "Welcome new users")
            (trigger event "user.signed_up" where (event."plan" == "trial"))
            (trigger event "Order Completed")
            (trigger enter went_dormant) (trigger leave went_dormant)
            (trigger dwell went_dormant.after_3d)
            (entry once) (entry unlimited) (entry once-per 30d)
            (exit-when (or (did "user.deleted") (did "subscription.started"))))"#,
    );
}

#[test]
fn journey_steps() {
    check(
        r#"journey j {
  send welcome
  wait 2d
  wait until did project.created since entry, at most 3d
  wait until 09:00
  wait until 9:30 on weekdays
  wait until 17:05 on weekends in contact.timezone
  wait until 23:59 on mon, wed, sun in contact."time zone"
  start tips_series
  emit onboarding.finished
  emit "Onboarding Finished"
  exit
}"#,
        r#"(journey j
            (send welcome) (wait 2d)
            (wait-until (did "project.created" since entry) at-most 3d)
            (wait-until-time 09:00)
            (wait-until-time 09:30 weekdays)
            (wait-until-time 17:05 weekends in contact."timezone")
            (wait-until-time 23:59 [mon wed sun] in contact."time zone")
            (start tips_series)
            (emit "onboarding.finished") (emit "Onboarding Finished")
            (exit))"#,
    );
}

#[test]
fn if_else_chains() {
    check(
        r#"journey j {
  if did a { send x }
  if did a {
    send nice_work
  } else {
    send need_help
    if not did feature.used within 2d { send nudge }
  }
  if did a { exit } else if contact.plan == "pro" { send p }
  else if opened t1 {} else { start other }
}"#,
        r#"(journey j
            (if (did "a") {(send x)})
            (if (did "a") {(send nice_work)}
                else {(send need_help) (if (not (did "feature.used" within 2d)) {(send nudge)})})
            (if (did "a") {(exit)} (contact."plan" == "pro") {(send p)} (opened t1) {}
                else {(start other)}))"#,
    );
}

#[test]
fn exit_step_and_exit_when_header() {
    check(
        "journey j { exit when did x\n exit }",
        r#"(journey j (exit-when (did "x")) (exit))"#,
    );
    check("journey j { exit\n send a }", "(journey j (exit) (send a))");
}

#[test]
fn trigger_paths_and_the_trigger_header() {
    // `trigger.` followed by a key is a path; `trigger` followed by anything else is the
    // journey header, also right after an `exit when` condition.
    check(
        "journey j { exit when did x or trigger.total < 0\n trigger event go\n if trigger.\"coupon code\" exists and trigger.a.b in [1, 2] { send a } }",
        r#"(journey j (exit-when (or (did "x") (trigger."total" < 0))) (trigger event "go")
            (if (and (trigger."coupon code" exists) (trigger."a"."b" in 1 2)) {(send a)}))"#,
    );
    check(
        "journey j { wait until all { did a trigger.vip == true } , at most 1d }",
        r#"(journey j (wait-until (all (did "a") (trigger."vip" == true)) at-most 1d))"#,
    );
}

#[test]
fn conditions_in_full() {
    check(
        r#"bucket b { criteria
    all { did a did b.c where (event.amount >= 10.5 and event.currency in ["EUR", "USD"]) }
    or any { count "$pageview" within 1w > 3 contact."first name" exists }
    or (contact.email contains "@example.com" and not clicked promo)
    or contact.vip != true or contact.age < -3 or contact.age <= 0 or contact.n > 1
    or count x where (event.a exists) since entry == 0
}"#,
        r#"(bucket b (criteria (or
            (all (did "a")
                 (did "b.c" where (and (event."amount" >= 10.5) (event."currency" in "EUR" "USD")))) 
            (any (count "$pageview" within 1w > 3) (contact."first name" exists))
            [(and (contact."email" contains "@example.com") (not (clicked promo)))]
            (contact."vip" != true) (contact."age" < -3) (contact."age" <= 0) (contact."n" > 1)
            (count "x" where (event."a" exists) since entry == 0))))"#,
    );
}

#[test]
fn newlines_are_not_significant() {
    check(
        "bucket b {\n  criteria did a\n    and not did b within 7d\n  entry once\n}",
        r#"(bucket b (criteria (and (did "a") (not (did "b" within 7d)))) (entry once))"#,
    );
    check(
        "bucket b { criteria did x entry once }",
        r#"(bucket b (criteria (did "x")) (entry once))"#,
    );
    check(
        "bucket\nb\n{\ncriteria\ndid\nx\nwithin\n7d\n}",
        r#"(bucket b (criteria (did "x" within 7d)))"#,
    );
    check(
        "journey j { if did a\n{ send b }\nelse\n{ exit } }",
        r#"(journey j (if (did "a") {(send b)} else {(exit)}))"#,
    );
}

#[test]
fn keywords_are_contextual() {
    check(
        "bucket count { criteria did first and did count.did where (event.where == 1) }",
        r#"(bucket count (criteria (and (did "first") (did "count.did" where (event."where" == 1)))))"#,
    );
    check(
        "journey bucket { send send\n start journey\n emit exit }",
        r#"(journey bucket (send send) (start journey) (emit "exit"))"#,
    );
    check(
        "bucket b { criteria contact.exists exists }",
        r#"(bucket b (criteria (contact."exists" exists)))"#,
    );
}

#[test]
fn strings_decode_their_escapes() {
    check(
        r#"bucket b { name "a \"q\" \\ \n \t \u{1F600} é" }"#,
        "(bucket b (name \"a \\\"q\\\" \\\\ \\n \\t 😀 é\"))",
    );
}

#[test]
fn durations_and_numbers_as_written() {
    let parsed =
        parse("bucket b { min_dwell 1w2d3h4m5s max_dwell -3d criteria contact.x == -02.50 }");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let Item::Bucket(b) = &parsed.file.items[0] else {
        panic!("not a bucket")
    };
    let BucketMember::Field(BucketField {
        kind: BucketFieldKind::MinDwell(d),
        ..
    }) = &b.members[0]
    else {
        panic!("not min_dwell")
    };
    assert_eq!(
        d.total_seconds(),
        Some(604_800 + 2 * 86_400 + 3 * 3_600 + 4 * 60 + 5)
    );
    check("bucket b { max_dwell 0s }", "(bucket b (max_dwell 0s))");
    check("bucket b { max_dwell -3d }", "(bucket b (max_dwell -3d))");
    check("bucket b { max_dwell 15m }", "(bucket b (max_dwell 15m))");
    check(
        "bucket b { criteria contact.x == -02.50 }",
        r#"(bucket b (criteria (contact."x" == -02.50)))"#,
    );
}

#[test]
fn several_definitions_in_order() {
    check(
        "bucket a {} journey b {} bucket c { enabled true }",
        "(bucket a ) (journey b ) (bucket c (enabled true))",
    );
}

/// The source text a span covers.
fn text(src: &str, span: Span) -> &str {
    &src[span.range()]
}

#[test]
fn spans_point_at_the_source() {
    let src = "bucket went_dormant {\n  criteria did a within 7d // c\n  on dwell after 3d as x { send y }\n}\njourney j {\n  exit when did z\n  trigger dwell b.l\n  wait until 09:00 on mon, tue in contact.tz\n}";
    let parsed = parse(src);
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    let Item::Bucket(b) = &parsed.file.items[0] else {
        panic!("not a bucket")
    };
    assert_eq!(
        text(src, b.span),
        &src[..src.find("}\njourney").unwrap() + 1]
    );
    assert_eq!(text(src, b.id.span), "went_dormant");
    let BucketMember::Field(f) = &b.members[0] else {
        panic!("not a field")
    };
    assert_eq!(text(src, f.keyword_span), "criteria");
    assert_eq!(text(src, f.span), "criteria did a within 7d");
    let BucketMember::Reaction(r) = &b.members[1] else {
        panic!("not a reaction")
    };
    assert_eq!(text(src, r.trigger_span), "on dwell after 3d as x");
    assert_eq!(text(src, r.body.span), "{ send y }");
    assert_eq!(text(src, r.span), "on dwell after 3d as x { send y }");

    let Item::Journey(j) = &parsed.file.items[1] else {
        panic!("not a journey")
    };
    let JourneyMember::Header(h) = &j.members[0] else {
        panic!("not a header")
    };
    assert_eq!(text(src, h.keyword_span), "exit when");
    assert_eq!(text(src, h.span), "exit when did z");
    let JourneyMember::Header(h) = &j.members[1] else {
        panic!("not a header")
    };
    assert_eq!(text(src, h.keyword_span), "trigger dwell");
    let JourneyMember::Step(s) = &j.members[2] else {
        panic!("not a step")
    };
    assert_eq!(
        text(src, s.span),
        "wait until 09:00 on mon, tue in contact.tz"
    );
    let StepKind::WaitUntilTime {
        time,
        days_span,
        zone,
        ..
    } = &s.kind
    else {
        panic!("not wait until time")
    };
    assert_eq!(text(src, time.span), "09:00");
    assert_eq!(text(src, days_span.expect("days")), "on mon, tue");
    let zone = zone.as_ref().expect("zone");
    assert_eq!(text(src, zone.span), "contact.tz");
    assert_eq!(text(src, zone.root_span), "contact");
    assert_eq!(text(src, parsed.file.comments[0].span), "// c");
}

#[test]
fn quoted_names_keep_their_quotes_in_spans() {
    let src = "bucket b { criteria did \"Order Completed\" where (event.\"a b\".c == 1) }";
    let parsed = parse(src);
    let Item::Bucket(b) = &parsed.file.items[0] else {
        panic!("not a bucket")
    };
    let BucketMember::Field(BucketField {
        kind: BucketFieldKind::Criteria(e),
        ..
    }) = &b.members[0]
    else {
        panic!("not criteria")
    };
    let ExprKind::Did {
        event,
        filter: Some(filter),
        ..
    } = &e.kind
    else {
        panic!("not did")
    };
    assert_eq!(text(src, event.span), "\"Order Completed\"");
    assert_eq!(text(src, filter.span), "where (event.\"a b\".c == 1)");
    let ExprKind::Compare { path, .. } = &filter.expr.kind else {
        panic!("not compare")
    };
    assert_eq!(text(src, path.segments[0].span), "\"a b\"");
    assert_eq!(path.segments[0].name, "a b");
}

#[test]
fn without_spans_ignores_layout_and_comments() {
    let a = parse("bucket a { criteria did x // c\n}");
    let b = parse("bucket a {\n\n  criteria   did   x\n}\n");
    assert_ne!(a.file, b.file);
    assert_eq!(a.file.without_spans(), b.file.without_spans());
    assert!(a.file.without_spans().comments.is_empty());
    assert!(a
        .file
        .without_spans()
        .all_spans()
        .iter()
        .all(|s| *s == Span::default()));
}

#[test]
fn list_fields() {
    check(
        r#"list product_updates {
  name        "Product updates"
  description "New features, about once a month"
  default     unsubscribed
}
list onboarding { default subscribed }
list bare {}"#,
        r#"(list product_updates (name "Product updates")
            (description "New features, about once a month") (default false))
           (list onboarding (default true))
           (list bare )"#,
    );
}

#[test]
fn list_errors_recover_to_the_next_definition() {
    let parsed = parse("list a { default maybe }\nlist b { colour \"red\" }\nbucket ok {}");
    assert_eq!(parsed.errors.len(), 2, "{:?}", parsed.errors);
    assert!(parsed.errors[0].message().contains("`subscribed`"));
    assert!(parsed
        .file
        .items
        .iter()
        .any(|i| matches!(i, Item::Bucket(b) if b.id.name == "ok")));
}
