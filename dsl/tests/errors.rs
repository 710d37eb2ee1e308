//! Error tests: every `ParseErrorKind`, the words of the messages, and recovery (one bad
//! definition or member never hides the errors, or the good definitions, that follow).

mod support;

use hogsend_dsl::ast::{BucketMember, Item, JourneyMember, StepKind};
use hogsend_dsl::{parse, DurationProblem, IdentProblem, NumberProblem, ParseErrorKind, Span};
use support::{dump, errors, squash};

/// Asserts the errors of `input`, as `start..end: message` lines.
#[track_caller]
fn check_errors(input: &str, expected: &[&str]) {
    assert_eq!(errors(input), expected, "for input {input:?}");
}

/// The kinds of the errors of `input`.
fn kinds(input: &str) -> Vec<ParseErrorKind> {
    parse(input).errors.into_iter().map(|e| e.kind).collect()
}

#[test]
fn unexpected_token() {
    check_errors(
        "bucket x { criteria did }",
        &["24..25: expected an event name, found `}`"],
    );
    check_errors(
        "bucket x { criteria }",
        &["20..21: expected a condition, found `}`"],
    );
    check_errors(
        "bucket x { criteria did a or }",
        &["29..30: expected a condition, found `}`"],
    );
    check_errors(
        "bucket x { name foo }",
        &["16..19: expected a string, found identifier `foo`"],
    );
    check_errors(
        "bucket x { enabled 1 }",
        &["19..20: expected `true` or `false`, found `1`"],
    );
    check_errors(
        "bucket x { criteria contact.plan is \"pro\" }",
        &["33..35: expected a comparison operator, `exists`, `contains` or `in`, found identifier `is`"],
    );
    check_errors(
        "bucket x { on arrive { send a } }",
        &["14..20: expected `enter`, `leave` or `dwell`, found identifier `arrive`"],
    );
    check_errors(
        "bucket x { on enter send a }",
        &["20..24: expected `first` or `{`, found `send`"],
    );
    check_errors(
        "journey j { wait until did x }",
        &["29..30: expected `and`, `or` or `, at most …`, found `}`"],
    );
    check_errors(
        "journey j { trigger dwell b }",
        &["28..29: expected `.` and a dwell label, as in `went_dormant.after_3d`, found `}`"],
    );
    check_errors(
        "journey j { trigger dwell b . l }",
        &["28..29: expected `.` and a dwell label, as in `went_dormant.after_3d`, found `.`"],
    );
    check_errors(
        "}",
        &["0..1: expected `bucket`, `journey`, `list`, `campaign` or `test`, found `}`"],
    );
    check_errors("bucket { }", &["7..8: expected a bucket id, found `{`"]);
    check_errors(
        "journey j { send \"welcome\" }",
        &["17..26: expected a template name, found a string"],
    );
    check_errors(
        "journey j { wait until 09:00 on someday }",
        &["32..39: expected `weekdays`, `weekends` or a day name (`mon` … `sun`), found identifier `someday`"],
    );
    check_errors(
        "bucket x { criteria count x }",
        &["28..29: expected a comparison operator, `where`, `within` or `since`, found `}`"],
    );
}

#[test]
fn unexpected_character() {
    assert_eq!(
        kinds("bucket x { criteria did $pageview }"),
        vec![ParseErrorKind::UnexpectedCharacter { ch: '$' }]
    );
    let e = &parse("bucket x { criteria did $pageview }").errors[0];
    assert_eq!(e.message(), "unexpected character `$`");
    assert_eq!(e.span, Span::new(24, 25));
    assert!(e.help().is_some_and(|h| h.contains("\"Order Completed\"")));
    let e = &parse("bucket x { criteria contact.a = 1 }").errors[0];
    assert_eq!(e.help().as_deref(), Some("compare with `==`"));
    let e = &parse("bucket x {\0}").errors[0];
    assert_eq!(e.message(), "unexpected character U+0000");
}

#[test]
fn unterminated_string() {
    let input = "bucket x { name \"abc\n criteria did x }";
    check_errors(input, &["16..20: unterminated string"]);
    // The string ends at the end of its line, so the rest still parses.
    assert_eq!(
        squash(&dump(&parse(input).file)),
        r#"(bucket x (name "abc") (criteria (did "x")))"#
    );
    assert_eq!(kinds("bucket x { name \"abc\\\""), {
        vec![
            ParseErrorKind::UnterminatedString,
            ParseErrorKind::UnclosedDelimiter {
                open: '{',
                open_span: Span::new(9, 10),
            },
        ]
    });
}

#[test]
fn invalid_escapes() {
    check_errors(
        r#"bucket x { name "a\qb\u{D800}\u{zz}\u{110000}" }"#,
        &[
            r"18..20: invalid escape `\q` in string",
            r"21..29: invalid escape `\u{D800}` in string",
            r"29..35: invalid escape `\u{zz}` in string",
            r"35..45: invalid escape `\u{110000}` in string",
        ],
    );
    assert_eq!(
        kinds(r#"bucket x { name "a\u" }"#),
        vec![ParseErrorKind::InvalidEscape {
            escape: r"\u".to_string()
        }]
    );
}

#[test]
fn invalid_numbers() {
    check_errors(
        "bucket x { criteria contact.x == 1.2.3 or count x > 2.5 or count y > 99999999999999999999 or contact.y > 1. }",
        &[
            "33..38: invalid number `1.2.3`",
            "52..55: expected a whole number, found `2.5`",
            "69..89: number `99999999999999999999` is too large",
            "105..107: invalid number `1.`",
        ],
    );
    let reasons: Vec<_> = kinds("bucket x { criteria contact.x == 12ab or count x > 2.5 or count y > 99999999999999999999 }")
        .into_iter()
        .map(|k| match k {
            ParseErrorKind::InvalidNumber { reason, .. } => reason,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            NumberProblem::Malformed,
            NumberProblem::NotAnInteger,
            NumberProblem::OutOfRange
        ]
    );
}

#[test]
fn invalid_durations() {
    let reasons: Vec<_> = kinds(
        "bucket x { min_dwell 7y max_dwell 3 }
         bucket y { min_dwell 1h1d max_dwell 1h2h }
         bucket z { min_dwell 1.5h max_dwell 99999999999999999999d entry once per 30000000000000w }",
    )
    .into_iter()
    .map(|k| match k {
        ParseErrorKind::InvalidDuration { reason, .. } => reason,
        other => panic!("unexpected {other:?}"),
    })
    .collect();
    assert_eq!(
        reasons,
        vec![
            DurationProblem::BadUnit { unit: "y".into() },
            DurationProblem::MissingUnit,
            DurationProblem::UnitsOutOfOrder,
            DurationProblem::RepeatedUnit { unit: "h".into() },
            DurationProblem::Fractional,
            DurationProblem::Overflow,
            DurationProblem::Overflow,
        ]
    );
    let e = &parse("bucket x { min_dwell 1h1d }").errors[0];
    assert_eq!(e.message(), "duration units out of order in `1h1d`");
    assert_eq!(
        e.help().as_deref(),
        Some("durations go from the largest unit to the smallest, e.g. `1d12h`")
    );
    check_errors(
        "bucket x { min_dwell 5min }",
        &["21..25: unknown duration unit `min` in `5min`"],
    );
}

#[test]
fn invalid_identifiers_are_reported_and_kept() {
    let input = "bucket WentDormant { on enter { send _x } }\njourney aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa {}";
    let parsed = parse(input);
    let reasons: Vec<_> = parsed
        .errors
        .iter()
        .map(|e| match &e.kind {
            ParseErrorKind::InvalidIdentifier { reason, .. } => *reason,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            IdentProblem::Uppercase,
            IdentProblem::LeadingUnderscore,
            IdentProblem::TooLong
        ]
    );
    assert_eq!(&input[parsed.errors[0].span.range()], "WentDormant");
    assert_eq!(
        parsed.errors[0].help().as_deref(),
        Some("identifiers are lowercase letters, digits and `_`, starting with a letter: `went_dormant`")
    );
    assert_eq!(parsed.file.items.len(), 2, "both definitions are kept");
    // Exactly 48 characters is fine.
    assert!(parse(&format!("bucket {} {{}}", "a".repeat(48)))
        .errors
        .is_empty());
}

#[test]
fn unclosed_delimiters() {
    let input = "bucket x { criteria did x";
    let parsed = parse(input);
    assert_eq!(
        parsed.errors[0].kind,
        ParseErrorKind::UnclosedDelimiter {
            open: '{',
            open_span: Span::new(9, 10)
        }
    );
    assert_eq!(parsed.errors[0].span, Span::new(25, 25));
    assert_eq!(parsed.errors[0].message(), "unclosed `{`");
    assert_eq!(
        parsed.errors[0].secondary(),
        Some((Span::new(9, 10), "this `{` is never closed".to_string()))
    );
    // What was parsed before the end is kept.
    assert_eq!(
        squash(&dump(&parsed.file)),
        r#"(bucket x (criteria (did "x")))"#
    );
    assert_eq!(
        kinds("bucket x { criteria (did x"),
        vec![ParseErrorKind::UnclosedDelimiter {
            open: '(',
            open_span: Span::new(20, 21)
        }]
    );
    assert_eq!(
        kinds("bucket x { criteria contact.a in [1,"),
        vec![
            ParseErrorKind::Unexpected {
                expected: vec!["a literal (a string, a number, `true` or `false`)".into()],
                found: "end of file".into()
            },
            ParseErrorKind::UnclosedDelimiter {
                open: '{',
                open_span: Span::new(9, 10)
            }
        ]
    );
    assert_eq!(
        kinds("bucket x { criteria contact.a in [1"),
        vec![ParseErrorKind::UnclosedDelimiter {
            open: '[',
            open_span: Span::new(33, 34)
        }]
    );
}

#[test]
fn only_the_innermost_unclosed_block_is_reported() {
    let input = "journey j {\n  if did x {\n    if did y {\n      send a\n";
    let parsed = parse(input);
    assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
    assert_eq!(
        parsed.errors[0].kind,
        ParseErrorKind::UnclosedDelimiter {
            open: '{',
            open_span: Span::new(38, 39)
        }
    );
}

#[test]
fn an_unclosed_definition_does_not_swallow_the_next() {
    let input = "bucket x { criteria did x\nbucket y { criteria did (y }\njourney z { send a }";
    let parsed = parse(input);
    assert_eq!(
        errors(input),
        vec![
            "26..32: unclosed `{`",
            "50..51: expected an event name, found `(`"
        ]
    );
    assert_eq!(
        squash(&dump(&parsed.file)),
        squash(r#"(bucket x (criteria (did "x"))) (bucket y ) (journey z (send a))"#)
    );
}

#[test]
fn nesting_too_deep() {
    for input in [
        format!("bucket x {{ criteria {}did a }}", "(".repeat(100_000)),
        format!("bucket x {{ criteria {}did a }}", "not ".repeat(100_000)),
        format!("bucket x {{ criteria {}did a }}", "all { ".repeat(100_000)),
        format!(
            "bucket x {{ criteria did a where {}",
            "(event.a exists and did b where ".repeat(50_000)
        ),
        format!("journey j {{ {} }}", "if did a { ".repeat(100_000)),
        format!(
            "bucket x {{ on enter {{ {} }}",
            "if not did a { ".repeat(100_000)
        ),
    ] {
        let parsed = parse(&input);
        assert!(
            parsed
                .errors
                .iter()
                .any(|e| e.kind == ParseErrorKind::NestingTooDeep),
            "{:?}",
            &parsed.errors[..parsed.errors.len().min(3)]
        );
    }
    let limit = hogsend_dsl::MAX_NESTING;
    let ok = format!(
        "bucket x {{ criteria {}did a{} }}",
        "(".repeat(limit),
        ")".repeat(limit)
    );
    assert!(parse(&ok).errors.is_empty());
    let too_deep = format!(
        "bucket x {{ criteria {}did a{} }}",
        "(".repeat(limit + 1),
        ")".repeat(limit + 1)
    );
    let e = &parse(&too_deep).errors[0];
    assert_eq!(e.kind, ParseErrorKind::NestingTooDeep);
    assert_eq!(e.message(), "nesting too deep");
}

#[test]
fn invalid_time_of_day() {
    check_errors(
        "journey j { wait until 25:00\n wait until 9:5 wait until 12:60 wait until 10:00am }",
        &[
            "23..28: invalid time of day `25:00`",
            "41..44: invalid time of day `9:5`",
            "56..61: invalid time of day `12:60`",
            "73..80: invalid time of day `10:00am`",
        ],
    );
}

#[test]
fn two_broken_definitions_give_two_errors() {
    let input = "bucket a { criteria did }\nbucket b { entry twice }\n";
    assert_eq!(
        errors(input),
        vec![
            "24..25: expected an event name, found `}`",
            "43..48: expected `unlimited`, `once` or `once per …`, found identifier `twice`",
        ]
    );
}

#[test]
fn a_good_definition_after_a_bad_one_is_parsed() {
    let input = "bucket bad { criteria did x and }\nbucket good { criteria did y }";
    let parsed = parse(input);
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(
        squash(&dump(&parsed.file)),
        squash(r#"(bucket bad ) (bucket good (criteria (did "y")))"#)
    );
}

#[test]
fn broken_members_are_skipped_and_the_rest_is_kept() {
    let input = "bucket x {
  criteria did x entry twice
  max_dwell 1y
  on enter { send a b }
  name \"ok\"
}
bucket ok { criteria did y }";
    let parsed = parse(input);
    assert_eq!(
        errors(input),
        vec![
            "34..39: expected `unlimited`, `once` or `once per …`, found identifier `twice`",
            "52..54: unknown duration unit `y` in `1y`",
            "75..76: expected a step or `}`, found identifier `b`",
        ]
    );
    assert_eq!(
        squash(&dump(&parsed.file)),
        squash(
            r#"(bucket x (criteria (did "x")) (max_dwell ) (on enter {(send a)}) (name "ok"))
               (bucket ok (criteria (did "y")))"#
        )
    );
}

#[test]
fn broken_steps_inside_blocks_are_skipped() {
    let input = "journey j {
  if did x {
    send a
    wait 3
    bogus thing
    send b
  } else { exit }
  send c
}";
    let parsed = parse(input);
    assert_eq!(
        errors(input),
        vec![
            "45..46: duration `3` has no unit",
            "51..56: expected a step or `}`, found identifier `bogus`",
        ]
    );
    assert_eq!(
        squash(&dump(&parsed.file)),
        squash(r#"(journey j (if (did "x") {(send a) (wait ) (send b)} else {(exit)}) (send c))"#)
    );
}

#[test]
fn a_broken_member_with_braces_is_skipped_whole() {
    let input = "bucket x {\n  criteria all {\n    did a\n    bogus\n  }\n  entry once\n}";
    let parsed = parse(input);
    assert_eq!(parsed.errors.len(), 1, "{:?}", parsed.errors);
    assert_eq!(squash(&dump(&parsed.file)), "(bucket x (entry once))");
}

#[test]
fn broken_headers_drop_the_definition_but_report_its_body() {
    let input = "buckt x { criteria did x }
bucket Went Dormant { criteria did x entry twice }
journey { send }
bucket good {}";
    assert_eq!(
        errors(input),
        vec![
            "0..5: expected `bucket`, `journey`, `list`, `campaign` or `test`, found identifier `buckt`",
            "34..38: identifier `Went` has uppercase letters",
            "39..46: expected `{`, found identifier `Dormant`",
            "70..75: expected `unlimited`, `once` or `once per …`, found identifier `twice`",
            "86..87: expected a journey id, found `{`",
            "93..94: expected a template name, found `}`",
        ]
    );
    let parsed = parse(input);
    assert_eq!(squash(&dump(&parsed.file)), "(bucket good )");
}

#[test]
fn header_keywords_inside_blocks_are_errors() {
    let input =
        "bucket b { on enter { trigger event x } }\njourney j { if did a { exit when did b } }";
    assert_eq!(
        errors(input),
        vec![
            "22..29: expected a step or `}`, found `trigger`",
            "70..74: expected a step or `}`, found `when`",
        ]
    );
}

#[test]
fn messages_labels_and_helps_are_short_lowercase_lines() {
    let inputs = [
        "bucket x { criteria did }",
        "bucket x { criteria did @ }",
        "bucket x { name \"a",
        "bucket x { name \"\\q\" }",
        "bucket x { criteria count a > 1.5 }",
        "bucket x { min_dwell 3 }",
        "bucket X {}",
        "bucket x {",
        "journey j { wait until 30:00 }",
        &format!("bucket x {{ criteria {} }}", "(".repeat(100)),
    ];
    for input in inputs {
        let parsed = parse(input);
        assert!(!parsed.errors.is_empty(), "{input:?}");
        for e in &parsed.errors {
            for line in [e.message(), e.label()] {
                assert!(!line.is_empty() && !line.contains('\n') && !line.ends_with('.'));
                let first = line.chars().next().unwrap_or('a');
                assert!(!first.is_uppercase(), "{line:?}");
            }
        }
    }
}

#[test]
fn garbage_never_panics_and_keeps_good_definitions() {
    let junk = [
        "\0\0\0",
        "\r\r\r bucket",
        "bucket",
        "bucket x",
        "bucket x {",
        "journey j { wait until",
        "journey j { wait until 09:00 on",
        "journey j { wait until 09:00 on mon,",
        "journey j { wait until 09:00 in",
        "journey j { trigger event x where (",
        "bucket x { criteria did \"\\u{",
        "bucket x { criteria contact.",
        "bucket x { criteria contact.\"a",
        "bucket x { criteria did a.",
        "é bucket ok {}",
        "🎉🎉 journey ok {}",
        "\"unterminated\nbucket ok {}",
        "}}}}}} bucket ok {}",
        "{{{{{{\nbucket ok {}",
        "// only a comment without newline",
    ];
    for input in junk {
        let parsed = parse(input);
        for e in &parsed.errors {
            assert!(e.span.end <= input.len(), "{input:?}: {e:?}");
            assert!(input.is_char_boundary(e.span.start) && input.is_char_boundary(e.span.end));
        }
        if input.ends_with("ok {}") {
            let ok = parsed.file.items.iter().any(|i| match i {
                Item::Bucket(b) => b.id.name == "ok",
                Item::Journey(j) => j.id.name == "ok",
                Item::Test(_) => false,
                Item::List(l) => l.id.name == "ok",
                Item::Campaign(c) => c.id.name == "ok",
            });
            assert!(
                ok,
                "{input:?} lost the good definition: {:?}",
                parsed.errors
            );
        }
    }
}

#[test]
fn error_spans_fall_inside_the_source() {
    let input = "bucket x { criteria did a or";
    for e in parse(input).errors {
        assert!(e.span.start <= e.span.end && e.span.end <= input.len());
    }
}

#[test]
fn parsed_members_are_what_they_seem() {
    // A sanity check on the recovery tests: the members kept are the right kinds.
    let parsed = parse("journey j { send a bogus\n wait 1d }");
    let Item::Journey(j) = &parsed.file.items[0] else {
        panic!("not a journey")
    };
    assert!(matches!(
        &j.members[..],
        [JourneyMember::Step(a), JourneyMember::Step(b)]
            if matches!(a.kind, StepKind::Send(_)) && matches!(b.kind, StepKind::Wait(_))
    ));
    let parsed = parse("bucket b { on enter {} }");
    let Item::Bucket(b) = &parsed.file.items[0] else {
        panic!("not a bucket")
    };
    assert!(matches!(&b.members[..], [BucketMember::Reaction(_)]));
}

#[test]
fn common_slips_get_one_error_and_a_helpful_hint() {
    let cases = [
        (
            "bucket b { criteria did a within 7 days }",
            "duration `7 days` has a space before its unit",
            "write `7d`",
        ),
        (
            "bucket b { min_dwell 3hours }",
            "unknown duration unit `hours` in `3hours`",
            "write `3h`",
        ),
        (
            "bucket b { max_dwell 2mo }",
            "unknown duration unit `mo` in `2mo`",
            "the units are `s`, `m` (minutes), `h`, `d` and `w`, e.g. `30s`, `15m`, `7d`",
        ),
        (
            "bucket b { name: \"x\" }",
            "unexpected character `:`",
            "fields and headers take no `:`: write `name \"…\"`, `criteria did x`",
        ),
        (
            "bucket went-dormant {}",
            "unexpected character `-`",
            "identifiers join words with `_`, not `-`: `went_dormant`",
        ),
        (
            "bucket b { criteria did a && did b }",
            "unexpected character `&`",
            "combine conditions with `and`",
        ),
        (
            "bucket b { criteria did 'x' }",
            "unexpected character `'`",
            "strings use double quotes: `\"…\"`",
        ),
        (
            "bucket b { criteria all {} }",
            "expected at least one condition, found `}`",
            "`all { … }` and `any { … }` need at least one condition",
        ),
        (
            "bucket b { criteria plan == \"pro\" }",
            "expected a condition, found identifier `plan`",
            "a condition starts with `did`, `count`, `not`, `all`, `any`, `(`, `opened`, `clicked`, or a property path like `contact.plan`",
        ),
    ];
    for (input, message, help) in cases {
        let parsed = parse(input);
        assert_eq!(parsed.errors.len(), 1, "{input:?}: {:?}", parsed.errors);
        assert_eq!(parsed.errors[0].message(), message, "{input:?}");
        assert_eq!(parsed.errors[0].help().as_deref(), Some(help), "{input:?}");
    }
}

#[test]
fn test_block_errors_are_reported_with_spans_and_recovery() {
    let input = "test \"t\" {\n  contact u1\n  at 2027-13-01 { u1 did a }\n  at +8d { expect u1 frobbed b }\n  at +1d { u1 did a }\n}\nbucket ok { criteria did a }\n";
    let parsed = parse(input);
    let messages: Vec<String> = parsed
        .errors
        .iter()
        .map(hogsend_dsl::ParseError::message)
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0], "invalid instant `2027-13-01`");
    assert!(messages[1].starts_with("expected `in`"), "{messages:?}");
    assert_eq!(&input[parsed.errors[0].span.range()], "2027-13-01");
    assert_eq!(&input[parsed.errors[1].span.range()], "frobbed");
    assert_eq!(
        parsed.file.items.len(),
        2,
        "the test and the bucket are both kept"
    );
}

#[test]
fn test_actions_on_subscriptions_say_what_they_take() {
    let input = "test \"t\" {\n  contact u1\n  at 2027-01-01 { u1 suppress spam }\n  at +1d { u1 unsubscribe \"weekly\" }\n  at +1d { u1 frob }\n  at +1d { expect u1 received x twice }\n}\n";
    let parsed = parse(input);
    let messages: Vec<String> = parsed
        .errors
        .iter()
        .map(hogsend_dsl::ParseError::message)
        .collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert!(messages[0].starts_with("expected `bounce`"), "{messages:?}");
    assert_eq!(&input[parsed.errors[0].span.range()], "spam");
    assert!(messages[1].contains("a list id or `*`"), "{messages:?}");
    assert!(messages[2].contains("`unsubscribe`"), "{messages:?}");
    assert_eq!(&input[parsed.errors[2].span.range()], "frob");
    assert!(!parsed.file.items.is_empty());
}
