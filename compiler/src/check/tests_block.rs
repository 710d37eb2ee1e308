//! Checking `test` blocks (docs/language.md#tests): contacts declared once and before use,
//! instants in order, references to buckets, dwell labels, journeys and templates resolved;
//! each test lowered to a [`TestCase`].

use std::collections::{HashMap, HashSet};

use hogsend_dsl::ast::{self, Expect, Instant, LeaveReason, TestActionKind, TestMember, Value};
use hogsend_dsl::Span;
use serde_json::{Map, Value as Json};

use super::error::{CheckError, Loc};
use super::Checker;
use crate::diagnostics::{Code, Diagnostic, Label};
use crate::test_suite::{
    epoch_seconds, ExpectationKind, TestCase, TestChange, TestContact, TestExpectation, TestStep,
};

/// A problem in a test block (the codes of the test range of the registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TestError {
    /// `expect u2 in b` when the test declares no `contact u2`
    UnknownContact { name: String, at: Loc },
    /// `contact u1` twice in one test
    DuplicateContact { name: String, at: Loc, first: Loc },
    /// `test "a" {…}` twice in the project
    DuplicateTest { name: String, at: Loc, first: Loc },
    /// `at +1d` as the first instant, or `at 2027-01-01` after `at 2027-02-01`
    InstantOrder { at: Loc, previous: Option<Loc> },
    /// `u1 subscribe weekly` / `expect u1 subscribed weekly` when no `list weekly` is declared
    UnknownList {
        name: String,
        at: Loc,
        suggestion: Option<String>,
    },
}

impl TestError {
    /// The diagnostic for this problem.
    pub(crate) fn to_diagnostic(&self) -> Diagnostic {
        let label = |l: &Loc, t: &str| Label::new(l.file.clone(), l.span, t);
        match self {
            TestError::UnknownContact { name, at } => Diagnostic::new(
                Code::E0250,
                format!("unknown contact `{name}`"),
                label(at, "this test declares no such contact"),
            )
            .with_help(format!(
                "declare it at the top of the test: `contact {name}`"
            )),
            TestError::DuplicateContact { name, at, first } => Diagnostic::new(
                Code::E0251,
                format!("the contact `{name}` is declared twice"),
                label(at, "declared again here"),
            )
            .with_secondary(label(first, "first declared here")),
            TestError::DuplicateTest { name, at, first } => Diagnostic::new(
                Code::E0252,
                format!("two tests are named {}", hogsend_dsl::text::quote(name)),
                label(at, "this name is already used"),
            )
            .with_secondary(label(first, "first used here"))
            .with_help("test names are unique across the project, so a failure names one test"),
            TestError::UnknownList {
                name,
                at,
                suggestion,
            } => Diagnostic::new(
                Code::E0253,
                format!("unknown list `{name}`"),
                label(at, "not a declared list"),
            )
            .with_help(match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "declare it in a .hog file (`list {name} {{ name \"…\" }}`), or write `*` (`all` in an expectation) for every list"
                ),
            }),
            TestError::InstantOrder { at, previous } => match previous {
                None => Diagnostic::new(
                    Code::E0350,
                    "the first instant of a test must be a date",
                    label(at, "a step from nothing"),
                )
                .with_help("start with an absolute instant such as `at 2027-01-04 10:00`"),
                Some(previous) => Diagnostic::new(
                    Code::E0350,
                    "instants must come in order",
                    label(at, "not later than the previous instant"),
                )
                .with_secondary(label(previous, "the previous instant"))
                .with_help("each `at` is later than the one before it; use `+D` for a step"),
            },
        }
    }
}

impl Checker<'_> {
    /// Checks and lowers every test of the project, in file order.
    pub(super) fn tests(&mut self) -> Vec<TestCase> {
        let parsed = self.parsed;
        let mut names: HashMap<&str, Loc> = HashMap::new();
        let mut out = Vec::new();
        for (file, p) in parsed.iter().enumerate() {
            self.file = file;
            for (index, item) in p.ast.items.iter().enumerate() {
                let ast::Item::Test(t) = item else { continue };
                self.muted = self.damaged(index);
                let at = self.loc(t.name.span);
                if let Some(first) = names.get(t.name.value.as_str()) {
                    let e = TestError::DuplicateTest {
                        name: t.name.value.clone(),
                        at,
                        first: first.clone(),
                    };
                    self.report_test(e);
                } else {
                    names.insert(&t.name.value, at);
                }
                out.push(self.test(t));
            }
        }
        self.muted = false;
        out
    }

    fn report_test(&mut self, e: TestError) {
        if !self.muted {
            self.test_errors.push(e);
        }
    }

    fn test(&mut self, t: &ast::TestBlock) -> TestCase {
        let mut contacts: Vec<TestContact> = Vec::new();
        let mut declared: HashMap<&str, Span> = HashMap::new();
        for m in &t.members {
            if let TestMember::Contact(c) = m {
                if let Some(first) = declared.get(c.id.name.as_str()) {
                    let e = TestError::DuplicateContact {
                        name: c.id.name.clone(),
                        at: self.loc(c.id.span),
                        first: self.loc(*first),
                    };
                    self.report_test(e);
                    continue;
                }
                declared.insert(&c.id.name, c.id.span);
                let mut properties = c.properties.as_ref().map(object).unwrap_or_default();
                let email = match properties.remove("email") {
                    Some(Json::String(s)) => Some(s),
                    _ => None,
                };
                contacts.push(TestContact {
                    key: c.id.name.clone(),
                    email,
                    properties,
                });
            }
        }
        let names: HashSet<&str> = declared.keys().copied().collect();
        let mut steps = Vec::new();
        let mut previous: Option<(i64, Span)> = None;
        for m in &t.members {
            let TestMember::At(a) = m else { continue };
            let at = match (&a.at, previous) {
                (Instant::Absolute(d), _) => {
                    let (h, min, s) = d.time.unwrap_or((0, 0, 0));
                    epoch_seconds(
                        i64::from(d.year),
                        u32::from(d.month),
                        u32::from(d.day),
                        u32::from(h),
                        u32::from(min),
                        u32::from(s),
                    )
                }
                (Instant::Relative { after, .. }, Some((prev, _))) => {
                    if after.negative || after.total_seconds().unwrap_or(0) == 0 {
                        self.report(CheckError::NonPositiveDuration {
                            negative: after.negative,
                            at: self.loc(after.span),
                        });
                    }
                    let secs = i64::try_from(after.total_seconds().unwrap_or(0)).unwrap_or(0);
                    prev.saturating_add(secs)
                }
                (Instant::Relative { .. }, None) => {
                    let e = TestError::InstantOrder {
                        at: self.loc(a.at.span()),
                        previous: None,
                    };
                    self.report_test(e);
                    0
                }
            };
            if let Some((prev, prev_span)) = previous {
                if at <= prev && matches!(a.at, Instant::Absolute(_)) {
                    let e = TestError::InstantOrder {
                        at: self.loc(a.at.span()),
                        previous: Some(self.loc(prev_span)),
                    };
                    self.report_test(e);
                }
            }
            previous = Some((at, a.at.span()));
            let mut step = TestStep {
                at,
                span: a.at.span(),
                changes: Vec::new(),
                expectations: Vec::new(),
            };
            for act in &a.actions {
                self.action(act, &names, &mut step);
            }
            steps.push(step);
        }
        TestCase {
            name: t.name.value.clone(),
            file: self.set.files[self.file].path.clone(),
            span: t.name.span,
            contacts,
            steps,
        }
    }

    fn contact_ref(&mut self, id: &ast::Ident, names: &HashSet<&str>) {
        if !names.contains(id.name.as_str()) {
            let e = TestError::UnknownContact {
                name: id.name.clone(),
                at: self.loc(id.span),
            };
            self.report_test(e);
        }
    }

    fn action(&mut self, act: &ast::TestAction, names: &HashSet<&str>, step: &mut TestStep) {
        match &act.kind {
            TestActionKind::Did {
                contact,
                event,
                properties,
            } => {
                self.contact_ref(contact, names);
                step.changes.push(TestChange::Event {
                    key: contact.name.clone(),
                    event: event.name.clone(),
                    properties: properties.as_ref().map(object).unwrap_or_default(),
                });
            }
            TestActionKind::Set {
                contact,
                properties,
            } => {
                self.contact_ref(contact, names);
                let mut properties = object(properties);
                let email = match properties.remove("email") {
                    Some(Json::String(s)) => Some(Some(s)),
                    Some(_) => Some(None),
                    None => None,
                };
                step.changes.push(TestChange::Set {
                    key: contact.name.clone(),
                    email,
                    properties,
                });
            }
            TestActionKind::Subscription {
                contact,
                list,
                subscribed,
                ..
            } => {
                self.contact_ref(contact, names);
                if let Some(list) = list {
                    self.test_list_ref(list);
                }
                step.changes.push(TestChange::Subscription {
                    key: contact.name.clone(),
                    list_id: list.as_ref().map_or("*".to_string(), |l| l.name.clone()),
                    subscribed: *subscribed,
                });
            }
            TestActionKind::Suppress { contact, reason } => {
                self.contact_ref(contact, names);
                step.changes.push(TestChange::Suppress {
                    key: contact.name.clone(),
                    reason: reason.name.clone(),
                });
            }
            TestActionKind::Expect(e) => {
                self.contact_ref(&e.contact, names);
                let kind = self.expectation(&e.what, step.at);
                step.expectations.push(TestExpectation {
                    key: e.contact.name.clone(),
                    negated: e.negated,
                    kind,
                    span: act.span,
                    text: hogsend_dsl::format_test_action(act),
                });
            }
        }
    }

    fn expectation(&mut self, what: &Expect, at: i64) -> ExpectationKind {
        match what {
            Expect::InBucket(b) => {
                self.bucket_ref(b);
                ExpectationKind::InBucket(b.name.clone())
            }
            Expect::InJourney(j) => {
                self.journey_ref(j);
                ExpectationKind::InJourney(j.name.clone())
            }
            Expect::Entered(b) => {
                self.bucket_ref(b);
                ExpectationKind::Entered(b.name.clone())
            }
            Expect::Left { bucket, because } => {
                self.bucket_ref(bucket);
                ExpectationKind::Left {
                    bucket: bucket.name.clone(),
                    reason: because.map(|r| {
                        match r {
                            LeaveReason::Criteria => "criteria",
                            LeaveReason::MaxDwell => "max_dwell",
                        }
                        .to_string()
                    }),
                }
            }
            Expect::Dwell { bucket, label } => {
                if self.bucket_ref(bucket) {
                    let known = self
                        .dwell_labels
                        .get(bucket.name.as_str())
                        .cloned()
                        .unwrap_or_default();
                    if !known.contains(&label.name) && !self.parse_failed {
                        self.report(CheckError::UnknownDwellLabel {
                            bucket: bucket.name.clone(),
                            label: label.name.clone(),
                            at: self.loc(label.span),
                            known,
                        });
                    }
                }
                ExpectationKind::Dwell {
                    bucket: bucket.name.clone(),
                    label: label.name.clone(),
                }
            }
            Expect::Received(t) => {
                self.template_ref(t);
                ExpectationKind::Received(t.name.clone())
            }
            Expect::ReceivedTimes { template, times } => {
                self.template_ref(template);
                ExpectationKind::ReceivedTimes {
                    template: template.name.clone(),
                    times: times.value,
                }
            }
            Expect::Skipped { template, because } => {
                self.template_ref(template);
                if let Some(list) = because.as_ref().and_then(|r| r.list.as_ref()) {
                    self.test_list_ref(list);
                }
                ExpectationKind::Skipped {
                    template: template.name.clone(),
                    reason: because.as_ref().map(ast::SkipReason::stored),
                }
            }
            Expect::Subscription {
                list, subscribed, ..
            } => {
                if let Some(list) = list {
                    self.test_list_ref(list);
                }
                ExpectationKind::Subscription {
                    list: list.as_ref().map(|l| l.name.clone()),
                    subscribed: *subscribed,
                }
            }
            Expect::JourneyStatus {
                journey,
                status,
                step,
                until,
            } => {
                self.journey_ref(journey);
                ExpectationKind::JourneyStatus {
                    journey: journey.name.clone(),
                    status: status.as_str().to_string(),
                    step: step.as_ref().map(|s| s.value.clone()),
                    wake_at: until.as_ref().map(|u| instant_seconds(u, at)),
                }
            }
        }
    }
}

impl Checker<'_> {
    /// Resolves a list id named by a test (E0253 when no `list` declares it).
    fn test_list_ref(&mut self, id: &ast::Ident) {
        if self.lists.contains_key(id.name.as_str()) || self.parse_failed {
            return;
        }
        let suggestion = super::closest(&id.name, self.lists.keys().copied());
        let at = self.loc(id.span);
        self.report_test(TestError::UnknownList {
            name: id.name.clone(),
            at,
            suggestion,
        });
    }
}

/// An instant in seconds since the epoch; a `+D` counts from `at`.
fn instant_seconds(i: &Instant, at: i64) -> i64 {
    match i {
        Instant::Absolute(d) => {
            let (h, min, s) = d.time.unwrap_or((0, 0, 0));
            epoch_seconds(
                i64::from(d.year),
                u32::from(d.month),
                u32::from(d.day),
                u32::from(h),
                u32::from(min),
                u32::from(s),
            )
        }
        Instant::Relative { after, .. } => {
            at.saturating_add(i64::try_from(after.total_seconds().unwrap_or(0)).unwrap_or(0))
        }
    }
}

/// An object literal as JSON (a repeated key keeps its last value).
fn object(o: &ast::ObjectLit) -> Map<String, Json> {
    o.fields
        .iter()
        .map(|f| (f.key.value.clone(), value(&f.value)))
        .collect()
}

fn value(v: &Value) -> Json {
    match v {
        Value::Literal(ast::Literal::String(s)) => Json::String(s.value.clone()),
        Value::Literal(ast::Literal::Bool(b)) => Json::Bool(b.value),
        Value::Literal(ast::Literal::Number(n)) => {
            serde_json::from_str(&n.raw).unwrap_or(Json::Null)
        }
        Value::Null(_) => Json::Null,
        Value::Object(o) => Json::Object(object(o)),
        Value::List(items, _) => Json::Array(items.iter().map(value).collect()),
    }
}
