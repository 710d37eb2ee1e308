//! Property tests of the formatter on generated programs.
//!
//! A generator builds random trees covering every construct (in the shapes the parser
//! produces: flat `and`/`or`, parentheses where precedence needs them); the formatter renders
//! them, and that text is the input. Properties:
//! - the rendering parses back to the same tree (the printer is faithful);
//! - `format` succeeds, is idempotent, and keeps the meaning;
//! - with comments sprinkled over the text, all of the above still hold and every comment
//!   survives, in order, with its text.

use hogsend_dsl::ast::*;
use hogsend_dsl::{format, format_ast, parse, Span};
use proptest::prelude::*;
use proptest::strategy::Union;

fn sp() -> Span {
    Span::default()
}

fn ident() -> impl Strategy<Value = Ident> {
    "[a-z][a-z0-9_]{0,12}".prop_map(|name| Ident { name, span: sp() })
}

/// Any text at all, including quotes, backslashes, control characters and non-ASCII.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _.$:-]{0,12}",
        prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter),
        Just("\"\\\n\t\r\0".to_string()),
    ]
}

fn string_lit() -> impl Strategy<Value = StringLit> {
    any_text().prop_map(|value| StringLit { value, span: sp() })
}

fn event_name() -> impl Strategy<Value = EventName> {
    prop_oneof![
        3 => "[A-Za-z_][A-Za-z0-9_]{0,8}(\\.[A-Za-z_][A-Za-z0-9_]{0,6}){0,2}",
        1 => any_text(),
    ]
    .prop_map(|name| EventName { name, span: sp() })
}

fn path() -> impl Strategy<Value = Path> {
    let segment = prop_oneof![3 => "[A-Za-z_][A-Za-z0-9_]{0,8}", 1 => any_text()]
        .prop_map(|name| PathSegment { name, span: sp() });
    (
        prop_oneof![
            Just(PathRoot::Contact),
            Just(PathRoot::Event),
            Just(PathRoot::Trigger)
        ],
        prop::collection::vec(segment, 1..4),
    )
        .prop_map(|(root, segments)| Path {
            root,
            root_span: sp(),
            segments,
            span: sp(),
        })
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        string_lit().prop_map(Literal::String),
        "-?[0-9]{1,6}(\\.[0-9]{1,3})?"
            .prop_map(|raw| Literal::Number(NumberLit { raw, span: sp() })),
        any::<bool>().prop_map(|value| Literal::Bool(BoolLit { value, span: sp() })),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    let units = [
        DurationUnit::Weeks,
        DurationUnit::Days,
        DurationUnit::Hours,
        DurationUnit::Minutes,
        DurationUnit::Seconds,
    ];
    (
        any::<bool>(),
        prop::collection::vec((any::<bool>(), 0u64..100_000), 5),
        0usize..5,
    )
        .prop_map(move |(negative, picks, forced)| {
            // `units` runs from the largest to the smallest, as the language requires.
            let parts: Vec<_> = units
                .iter()
                .zip(&picks)
                .enumerate()
                .filter(|(n, (_, (keep, _)))| *keep || *n == forced)
                .map(|(_, (unit, (_, value)))| DurationPart {
                    value: *value,
                    unit: *unit,
                })
                .collect();
            Duration {
                negative,
                parts,
                span: sp(),
            }
        })
}

fn cmp_op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
    ]
}

fn window() -> impl Strategy<Value = Option<Window>> {
    prop::option::of(
        prop_oneof![
            duration().prop_map(WindowKind::Within),
            Just(WindowKind::SinceEntry)
        ]
        .prop_map(|kind| Window { kind, span: sp() }),
    )
}

fn expr_of(kind: ExprKind) -> Expr {
    Expr { kind, span: sp() }
}

/// Atoms without sub-conditions.
fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (event_name(), window()).prop_map(|(event, window)| ExprKind::Did {
            event,
            filter: None,
            window,
        }),
        (event_name(), window(), cmp_op(), any::<i64>()).prop_map(|(event, window, op, v)| {
            ExprKind::Count {
                event,
                filter: None,
                window,
                op,
                value: IntLit {
                    value: v,
                    span: sp(),
                },
            }
        }),
        (path(), cmp_op(), literal()).prop_map(|(path, op, value)| ExprKind::Compare {
            path,
            op,
            value
        }),
        path().prop_map(ExprKind::Exists),
        (path(), string_lit()).prop_map(|(p, s)| ExprKind::Contains(p, s)),
        (path(), prop::collection::vec(literal(), 1..4)).prop_map(|(p, v)| ExprKind::In(p, v)),
        ident().prop_map(ExprKind::Opened),
        ident().prop_map(ExprKind::Clicked),
    ]
    .prop_map(expr_of)
}

/// `e` as an operand of `not` / `and`: parenthesised when it is a chain.
fn as_unary(e: Expr) -> Expr {
    match e.kind {
        ExprKind::And(_) | ExprKind::Or(_) => expr_of(ExprKind::Paren(Box::new(e))),
        _ => e,
    }
}

/// `e` as an operand of `or`: parenthesised when it is an `or`.
fn as_or_operand(e: Expr) -> Expr {
    match e.kind {
        ExprKind::Or(_) => expr_of(ExprKind::Paren(Box::new(e))),
        _ => e,
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_map(|e| expr_of(ExprKind::Not(Box::new(as_unary(e))))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|es| expr_of(ExprKind::And(es.into_iter().map(as_unary).collect()))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|es| expr_of(ExprKind::Or(es.into_iter().map(as_or_operand).collect()))),
            inner
                .clone()
                .prop_map(|e| expr_of(ExprKind::Paren(Box::new(e)))),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|es| expr_of(ExprKind::All(es))),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|es| expr_of(ExprKind::Any(es))),
            (event_name(), inner.clone(), window()).prop_map(|(event, f, window)| {
                expr_of(ExprKind::Did {
                    event,
                    filter: Some(Filter {
                        expr: Box::new(f),
                        span: sp(),
                    }),
                    window,
                })
            }),
            (event_name(), inner, window(), cmp_op(), -5i64..50).prop_map(
                |(event, f, window, op, v)| expr_of(ExprKind::Count {
                    event,
                    filter: Some(Filter {
                        expr: Box::new(f),
                        span: sp(),
                    }),
                    window,
                    op,
                    value: IntLit {
                        value: v,
                        span: sp(),
                    },
                })
            ),
        ]
    })
}

fn step_of(kind: StepKind) -> Step {
    Step { kind, span: sp() }
}

fn days() -> impl Strategy<Value = Option<DaySpec>> {
    let day = prop_oneof![
        Just(Weekday::Mon),
        Just(Weekday::Tue),
        Just(Weekday::Wed),
        Just(Weekday::Thu),
        Just(Weekday::Fri),
        Just(Weekday::Sat),
        Just(Weekday::Sun),
    ];
    prop::option::of(prop_oneof![
        Just(DaySpec::Weekdays),
        Just(DaySpec::Weekends),
        prop::collection::vec(day, 1..4).prop_map(DaySpec::Days),
    ])
}

fn simple_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        ident().prop_map(StepKind::Send),
        duration().prop_map(StepKind::Wait),
        (expr(), duration()).prop_map(|(cond, at_most)| StepKind::WaitUntil { cond, at_most }),
        (0u8..24, 0u8..60, days(), prop::option::of(path())).prop_map(
            |(hour, minute, days, zone)| StepKind::WaitUntilTime {
                time: TimeOfDay {
                    hour,
                    minute,
                    span: sp(),
                },
                days_span: days.as_ref().map(|_| sp()),
                days,
                zone,
            }
        ),
        ident().prop_map(StepKind::Start),
        event_name().prop_map(StepKind::Emit),
        Just(StepKind::Exit),
    ]
    .prop_map(step_of)
}

fn block_of(steps: Vec<Step>) -> Block {
    Block { steps, span: sp() }
}

fn step() -> impl Strategy<Value = Step> {
    simple_step().prop_recursive(3, 16, 4, |inner| {
        let block = prop::collection::vec(inner, 0..3).prop_map(block_of);
        (
            prop::collection::vec((expr(), block.clone()), 1..3),
            prop::option::of(block),
        )
            .prop_map(|(branches, else_block)| {
                step_of(StepKind::If {
                    branches: branches
                        .into_iter()
                        .map(|(cond, body)| IfBranch {
                            cond,
                            body,
                            span: sp(),
                        })
                        .collect(),
                    else_block,
                })
            })
    })
}

fn entry_policy() -> impl Strategy<Value = EntryPolicy> {
    prop_oneof![
        Just(EntryPolicy::Unlimited),
        Just(EntryPolicy::Once),
        duration().prop_map(EntryPolicy::OncePer),
    ]
}

fn bucket_member() -> impl Strategy<Value = BucketMember> {
    let field = prop_oneof![
        string_lit().prop_map(BucketFieldKind::Name),
        string_lit().prop_map(BucketFieldKind::Description),
        expr().prop_map(BucketFieldKind::Criteria),
        entry_policy().prop_map(BucketFieldKind::Entry),
        duration().prop_map(BucketFieldKind::MinDwell),
        duration().prop_map(BucketFieldKind::MaxDwell),
        any::<bool>().prop_map(|value| BucketFieldKind::Enabled(BoolLit { value, span: sp() })),
    ]
    .prop_map(|kind| {
        BucketMember::Field(BucketField {
            kind,
            keyword_span: sp(),
            span: sp(),
        })
    });
    let reason = prop::option::of(prop_oneof![
        Just(LeaveReason::Criteria),
        Just(LeaveReason::MaxDwell)
    ]);
    let trigger = prop_oneof![
        any::<bool>().prop_map(|first| ReactionTrigger::Enter { first }),
        reason.prop_map(|because| ReactionTrigger::Leave { because }),
        (duration(), prop::option::of(ident()))
            .prop_map(|(after, label)| ReactionTrigger::DwellAfter { after, label }),
        (duration(), prop::option::of(ident()))
            .prop_map(|(every, label)| ReactionTrigger::DwellEvery { every, label }),
    ];
    let reaction = (trigger, prop::collection::vec(step(), 0..3)).prop_map(|(trigger, steps)| {
        BucketMember::Reaction(Reaction {
            trigger,
            trigger_span: sp(),
            body: block_of(steps),
            span: sp(),
        })
    });
    prop_oneof![2 => field, 1 => reaction]
}

fn journey_member() -> impl Strategy<Value = JourneyMember> {
    let trigger = prop_oneof![
        (event_name(), prop::option::of(expr())).prop_map(|(event, f)| Trigger::Event {
            event,
            filter: f.map(|e| Filter {
                expr: Box::new(e),
                span: sp()
            }),
        }),
        ident().prop_map(Trigger::Enter),
        ident().prop_map(Trigger::Leave),
        (ident(), ident()).prop_map(|(bucket, label)| Trigger::Dwell { bucket, label }),
    ];
    let header = prop_oneof![
        string_lit().prop_map(JourneyHeaderKind::Name),
        string_lit().prop_map(JourneyHeaderKind::Description),
        trigger.prop_map(JourneyHeaderKind::Trigger),
        entry_policy().prop_map(JourneyHeaderKind::Entry),
        expr().prop_map(JourneyHeaderKind::ExitWhen),
    ]
    .prop_map(|kind| {
        JourneyMember::Header(JourneyHeader {
            kind,
            keyword_span: sp(),
            span: sp(),
        })
    });
    prop_oneof![header, step().prop_map(JourneyMember::Step)]
}

// ---- test blocks ----

/// A contact, bucket or template id that the test grammar reads back as such (`expect` starts
/// an expectation, `bucket`/`journey`/`test` can start a definition, `in journey` is a
/// journey).
fn test_ident() -> impl Strategy<Value = Ident> {
    ident().prop_filter("not a word the test grammar reserves", |i| {
        !["expect", "bucket", "journey", "test"].contains(&i.name.as_str())
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![literal().prop_map(Value::Literal), Just(Value::Null(sp())),];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| Value::List(v, sp())),
            prop::collection::vec((any_text(), inner), 0..3)
                .prop_map(|fields| { Value::Object(object_of(fields)) }),
        ]
    })
}

fn object_of(fields: Vec<(String, Value)>) -> ObjectLit {
    ObjectLit {
        fields: fields
            .into_iter()
            .map(|(key, value)| ObjectField {
                key: StringLit {
                    value: key,
                    span: sp(),
                },
                value,
                span: sp(),
            })
            .collect(),
        span: sp(),
    }
}

fn object() -> impl Strategy<Value = ObjectLit> {
    prop::collection::vec((any_text(), json_value()), 0..3).prop_map(object_of)
}

fn expect() -> impl Strategy<Value = Expect> {
    let status = prop_oneof![
        Just(RunStatus::Active),
        Just(RunStatus::Waiting),
        Just(RunStatus::Completed),
        Just(RunStatus::Exited),
        Just(RunStatus::Failed),
    ];
    let reason = prop_oneof![
        Just(None),
        Just(Some(LeaveReason::Criteria)),
        Just(Some(LeaveReason::MaxDwell)),
    ];
    let skip = prop_oneof![
        Just(None),
        Just(Some(("no_email", false))),
        Just(Some(("unsubscribed", true))),
        Just(Some(("not_subscribed", true))),
    ];
    prop_oneof![
        test_ident().prop_map(Expect::InBucket),
        test_ident().prop_map(Expect::InJourney),
        test_ident().prop_map(Expect::Entered),
        (test_ident(), reason).prop_map(|(bucket, because)| Expect::Left { bucket, because }),
        (test_ident(), test_ident()).prop_map(|(bucket, label)| Expect::Dwell { bucket, label }),
        test_ident().prop_map(Expect::Received),
        (
            prop::option::of(
                test_ident().prop_filter("`all` means every list", |l| l.name != "all")
            ),
            any::<bool>()
        )
            .prop_map(|(list, subscribed)| Expect::Subscription {
                list,
                subscribed,
                list_span: sp(),
            }),
        (test_ident(), skip, test_ident()).prop_map(|(template, skip, list)| Expect::Skipped {
            template,
            because: skip.map(|(reason, with_list)| SkipReason {
                reason: Ident {
                    name: reason.to_string(),
                    span: sp(),
                },
                list: with_list.then_some(list),
                span: sp(),
            }),
        }),
        (test_ident(), 0i64..1000).prop_map(|(template, value)| Expect::ReceivedTimes {
            template,
            times: IntLit { value, span: sp() },
        }),
        (
            test_ident(),
            status,
            prop::option::of(string_lit()),
            prop::option::of(instant())
        )
            .prop_map(|(journey, status, step, until)| Expect::JourneyStatus {
                journey,
                status,
                step,
                until: until.filter(|_| status == RunStatus::Waiting),
            }),
    ]
}

fn test_action() -> impl Strategy<Value = TestAction> {
    let kind = prop_oneof![
        (test_ident(), event_name(), prop::option::of(object())).prop_map(
            |(contact, event, properties)| TestActionKind::Did {
                contact,
                event,
                properties,
            }
        ),
        (test_ident(), object()).prop_map(|(contact, properties)| TestActionKind::Set {
            contact,
            properties,
        }),
        (test_ident(), prop::option::of(test_ident()), any::<bool>()).prop_map(
            |(contact, list, subscribed)| TestActionKind::Subscription {
                contact,
                list,
                subscribed,
                list_span: sp(),
            }
        ),
        (
            test_ident(),
            prop_oneof![Just("bounce"), Just("complaint"), Just("manual")]
        )
            .prop_map(|(contact, reason)| TestActionKind::Suppress {
                contact,
                reason: Ident {
                    name: reason.to_string(),
                    span: sp(),
                },
            }),
        (test_ident(), any::<bool>(), expect()).prop_map(|(contact, negated, what)| {
            TestActionKind::Expect(Expectation {
                contact,
                negated,
                what,
            })
        }),
    ];
    kind.prop_map(|kind| TestAction { kind, span: sp() })
}

fn instant() -> impl Strategy<Value = Instant> {
    let absolute = (
        1970u16..2100,
        1u8..=12,
        1u8..=28,
        prop::option::of((0u8..24, 0u8..60, 0u8..60)),
    )
        .prop_map(|(year, month, day, time)| {
            Instant::Absolute(DateTimeLit {
                year,
                month,
                day,
                time,
                span: sp(),
            })
        });
    prop_oneof![
        absolute,
        duration().prop_map(|after| Instant::Relative { after, span: sp() }),
    ]
}

fn test_member() -> impl Strategy<Value = TestMember> {
    prop_oneof![
        (test_ident(), prop::option::of(object())).prop_map(|(id, properties)| {
            TestMember::Contact(ContactDecl {
                id,
                properties,
                span: sp(),
            })
        }),
        (instant(), prop::collection::vec(test_action(), 0..4)).prop_map(|(at, actions)| {
            TestMember::At(AtBlock {
                at,
                actions,
                body_span: sp(),
                span: sp(),
            })
        }),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    Union::new(vec![
        (ident(), prop::collection::vec(bucket_member(), 0..5))
            .prop_map(|(id, members)| {
                Item::Bucket(Bucket {
                    id,
                    members,
                    span: sp(),
                })
            })
            .boxed(),
        (ident(), prop::collection::vec(journey_member(), 0..6))
            .prop_map(|(id, members)| {
                Item::Journey(Journey {
                    id,
                    members,
                    span: sp(),
                })
            })
            .boxed(),
        (string_lit(), prop::collection::vec(test_member(), 0..5))
            .prop_map(|(name, members)| {
                Item::Test(TestBlock {
                    name,
                    members,
                    span: sp(),
                })
            })
            .boxed(),
        (ident(), prop::collection::vec(list_field(), 0..4))
            .prop_map(|(id, fields)| {
                Item::List(List {
                    id,
                    fields,
                    span: sp(),
                })
            })
            .boxed(),
        (ident(), prop::collection::vec(campaign_field(), 0..5))
            .prop_map(|(id, fields)| {
                Item::Campaign(Campaign {
                    id,
                    fields,
                    span: sp(),
                })
            })
            .boxed(),
    ])
}

fn date_time_lit() -> impl Strategy<Value = DateTimeLit> {
    (
        1970u16..=9999,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
    )
        .prop_map(|(year, month, day, h, m, s)| DateTimeLit {
            year,
            month,
            day,
            time: Some((h, m, s)),
            span: sp(),
        })
}

fn campaign_field() -> impl Strategy<Value = CampaignField> {
    let send_at = prop_oneof![
        (date_time_lit(), -1439i16..=1439).prop_map(|(at, offset_minutes)| SendAt::Instant {
            at,
            offset_minutes,
            span: sp(),
        }),
        (date_time_lit(), prop::collection::vec(ident(), 1..3)).prop_map(|(at, zone)| {
            SendAt::Local {
                at,
                zone: zone.into_iter().map(|z| z.name).collect(),
                span: sp(),
            }
        }),
    ];
    let kind = prop_oneof![
        string_lit().prop_map(CampaignFieldKind::Name),
        (any::<bool>(), ident())
            .prop_map(|(is_list, id)| CampaignFieldKind::Audience(Audience { is_list, id })),
        ident().prop_map(CampaignFieldKind::Template),
        send_at.prop_map(CampaignFieldKind::SendAt),
    ];
    kind.prop_map(|kind| CampaignField {
        kind,
        keyword_span: sp(),
        span: sp(),
    })
}

fn list_field() -> impl Strategy<Value = ListField> {
    let kind = prop_oneof![
        string_lit().prop_map(ListFieldKind::Name),
        string_lit().prop_map(ListFieldKind::Description),
        any::<bool>().prop_map(|subscribed| ListFieldKind::Default(ListDefault {
            subscribed,
            span: sp()
        })),
    ];
    kind.prop_map(|kind| ListField {
        kind,
        keyword_span: sp(),
        span: sp(),
    })
}

fn source_file() -> impl Strategy<Value = SourceFile> {
    prop::collection::vec(item(), 0..4).prop_map(|items| SourceFile {
        items,
        comments: Vec::new(),
    })
}

/// Where to put a comment in the rendered text, and what it says.
#[derive(Debug, Clone)]
struct CommentAt {
    line: usize,
    own_line: bool,
    text: String,
}

fn comments() -> impl Strategy<Value = Vec<CommentAt>> {
    let text = prop_oneof![
        "[ -~]{0,12}",
        prop::collection::vec(any::<char>().prop_filter("one line", |c| *c != '\n'), 0..6)
            .prop_map(String::from_iter),
    ];
    prop::collection::vec(
        (0usize..200, any::<bool>(), text).prop_map(|(line, own_line, text)| CommentAt {
            line,
            own_line,
            text,
        }),
        0..8,
    )
}

/// `source` with the comments inserted: own-line ones before line `n`, trailing ones at the
/// end of line `n` (lines counted modulo the line count; a line takes one trailing comment,
/// later ones go on their own line after it).
fn with_comments(source: &str, comments: &[CommentAt]) -> String {
    // Each line, and whether it already ends with a comment.
    let mut lines: Vec<(String, bool)> = source.lines().map(|l| (l.to_string(), false)).collect();
    if lines.is_empty() {
        lines.push((String::new(), false));
    }
    for c in comments {
        let n = c.line % lines.len();
        if c.own_line {
            lines.insert(n, (format!("//{}", c.text), true));
        } else if lines[n].1 {
            lines.insert(n + 1, (format!("//{}", c.text), true));
        } else {
            lines[n].0.push_str(&format!(" //{}", c.text));
            lines[n].1 = true;
        }
    }
    lines
        .into_iter()
        .map(|(l, _)| l)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The comment texts of a file, as the formatter prints them.
fn comment_texts(file: &SourceFile) -> Vec<String> {
    file.comments
        .iter()
        .map(|c| c.text.trim_end().to_string())
        .collect()
}

/// The three formatter properties on `input`, which must parse.
fn check_format_properties(input: &str) -> Result<(), TestCaseError> {
    let parsed = parse(input);
    prop_assert!(parsed.errors.is_empty(), "{:?}\n{input}", parsed.errors);
    let once = format(input).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    let twice = format(&once).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert_eq!(&twice, &once, "not idempotent; input:\n{}", input);
    let reparsed = parse(&once);
    prop_assert_eq!(reparsed.file.without_spans(), parsed.file.without_spans());
    prop_assert_eq!(comment_texts(&reparsed.file), comment_texts(&parsed.file));
    Ok(())
}

/// 200 cases by default (a few seconds in debug); set `PROPTEST_CASES` for a longer run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rendered_trees_parse_back_to_themselves(file in source_file()) {
        let text = format_ast(&file);
        let parsed = parse(&text);
        prop_assert!(parsed.errors.is_empty(), "{:?}\n{text}", parsed.errors);
        prop_assert_eq!(parsed.file.without_spans(), file.without_spans(), "{}", text);
    }

    #[test]
    fn formatting_generated_programs_is_stable(file in source_file()) {
        check_format_properties(&format_ast(&file))?;
    }

    #[test]
    fn comments_survive_formatting(file in source_file(), comments in comments()) {
        let text = with_comments(&format_ast(&file), &comments);
        check_format_properties(&text)?;
        let parsed = parse(&text);
        prop_assert_eq!(parsed.file.comments.len(), comments.len());
        prop_assert_eq!(parsed.file.without_spans(), file.without_spans());
        let formatted = format(&text).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let texts: Vec<_> = comments.iter().map(|c| c.text.trim_end().to_string()).collect();
        let mut inserted_in_order = texts.clone();
        inserted_in_order.sort();
        let mut found = comment_texts(&parse(&formatted).file);
        found.sort();
        prop_assert_eq!(found, inserted_in_order);
    }

    #[test]
    fn expressions_print_on_one_line_and_parse_back(e in expr()) {
        let text = format!("bucket b {{ criteria {} }}", hogsend_dsl::format_expr(&e));
        let parsed = parse(&text);
        prop_assert!(parsed.errors.is_empty(), "{:?}\n{text}", parsed.errors);
        let Some(Item::Bucket(b)) = parsed.file.items.first() else {
            return Err(TestCaseError::fail("no bucket"));
        };
        let Some(BucketMember::Field(BucketField { kind: BucketFieldKind::Criteria(back), .. })) =
            b.members.first() else {
            return Err(TestCaseError::fail("no criteria"));
        };
        prop_assert_eq!(back.without_spans(), e.without_spans());
    }
}
