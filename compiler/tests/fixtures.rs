//! The fixture harness: every project under `tests/fixtures/ok` must check cleanly (its
//! IR is snapshotted), every one under `tests/fixtures/err` must produce diagnostics
//! (source and rendered diagnostics are snapshotted, Gleam style). Snapshots live in the
//! top-level `snapshots/` directory.
//!
//! A fixture is either a single `.hog` file (a one-file project that can use the shared
//! templates in `tests/fixtures/templates/`) or a directory (a whole project: `.hog` files,
//! `templates/`, `hogsend.toml`).
//!
//! Two coverage tests keep the suite honest: every registry code is rendered by some `err`
//! fixture, and every construct of the language appears in some `ok` fixture.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hogsend_compiler::diagnostics::{render_human, Code};
use hogsend_compiler::project;
use hogsend_compiler::source::{SourceFile, SourceSet};
use hogsend_dsl::ast;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The project a fixture path stands for.
fn load_fixture(path: &Path) -> SourceSet {
    if path.is_dir() {
        return project::load(path).expect("fixture project loads");
    }
    let text = std::fs::read_to_string(path).expect("fixture reads");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let shared = project::load(&fixtures_dir()).expect("shared templates load");
    SourceSet {
        files: vec![SourceFile::new(name, text)],
        templates: shared.templates,
        config: None,
    }
}

/// Whether a glob match is a fixture (and not a file inside a directory fixture).
fn is_fixture(path: &Path, kind: &str) -> bool {
    let parent = path.parent().unwrap();
    parent == fixtures_dir().join(kind)
        && (path.is_dir() || path.extension().is_some_and(|e| e == "hog"))
}

/// Every fixture of a kind, sorted.
fn fixtures(kind: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| is_fixture(p, kind))
        .collect();
    out.sort();
    out
}

/// Source of every file of the project, then its diagnostics, Gleam style.
fn source_and_errors(set: &SourceSet) -> String {
    let checked = hogsend_compiler::check(set);
    let mut out = String::new();
    for f in set.config.iter().chain(&set.files) {
        out += &format!("----- SOURCE CODE -- {}\n{}", f.path, f.text);
        if !f.text.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out += "----- DIAGNOSTICS\n";
    out += &render_human(&checked.diagnostics, set, false);
    out
}

macro_rules! snapshot_settings {
    ($body:block) => {
        insta::with_settings!({
            snapshot_path => "../../snapshots",
            omit_expression => true,
        }, $body)
    };
}

#[test]
fn ok_fixtures() {
    snapshot_settings!({
        insta::glob!("fixtures/ok/*", |path| {
            if !is_fixture(path, "ok") {
                return;
            }
            let set = load_fixture(path);
            let checked = hogsend_compiler::check(&set);
            assert!(
                checked.diagnostics.is_empty(),
                "{} should check cleanly:\n{}",
                path.display(),
                render_human(&checked.diagnostics, &set, false)
            );
            let program = checked.program.expect("no diagnostics, so a program");
            // The config is shown only for projects that have one (redaction included).
            let config = match set.config {
                Some(_) => format!("\n\n{:#?}", checked.config),
                None => String::new(),
            };
            insta::assert_snapshot!(format!("{program:#?}{config}"));
        });
    });
}

#[test]
fn err_fixtures() {
    snapshot_settings!({
        insta::glob!("fixtures/err/*", |path| {
            if !is_fixture(path, "err") {
                return;
            }
            let set = load_fixture(path);
            let checked = hogsend_compiler::check(&set);
            assert!(
                !checked.diagnostics.is_empty(),
                "{} should produce diagnostics",
                path.display()
            );
            insta::assert_snapshot!(source_and_errors(&set));
        });
    });
}

/// docs/language.md#diagnostics shows this diagnostic; the fixture must render it exactly (except the
/// caret count, one short in the spec: the expression is 28 characters long).
#[test]
fn renders_the_spec_example() {
    let set = load_fixture(&fixtures_dir().join("err/empty_contact_spec"));
    let checked = hogsend_compiler::check(&set);
    let expected = "\
error[E0301]: this bucket would contain every contact
  ┌─ buckets/engagement.hog:3:12
  │
3 │   criteria not did app_opened within 7d
  │            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^ true for a contact with no events
  │
  = help: add a positive condition, e.g. `did app_opened and not did app_opened within 7d`

";
    assert_eq!(render_human(&checked.diagnostics, &set, false), expected);
}

#[test]
fn every_code_is_rendered_by_a_fixture() {
    let mut seen = BTreeSet::new();
    for path in fixtures("err") {
        let set = load_fixture(&path);
        for d in hogsend_compiler::check(&set).diagnostics {
            seen.insert(d.code);
        }
    }
    // E06xx are the results of `hogsend test`, not of the checker: the CLI's snapshot of a
    // failing test renders them (tests/test_command.rs).
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !seen.contains(c) && !c.as_str().starts_with("E06"))
        .map(|c| c.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without an err fixture: {missing:?}"
    );
}

#[test]
fn the_example_projects_check_without_warnings() {
    for example in ["saas", "journeys"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(example);
        let set = project::load(&dir).unwrap();
        let checked = hogsend_compiler::check(&set);
        assert!(
            checked.diagnostics.is_empty(),
            "examples/{example}:\n{}",
            render_human(&checked.diagnostics, &set, false)
        );
        // And they are in `hogsend fmt` layout.
        for file in &set.files {
            let formatted = hogsend_dsl::format(&file.text)
                .unwrap_or_else(|e| panic!("examples/{example}/{}: {e:?}", file.path));
            assert_eq!(
                formatted, file.text,
                "examples/{example}/{} is not formatted: run `hogsend fmt examples/{example}`",
                file.path
            );
        }
    }
}

// ---- construct coverage ----

/// Records the name of every construct used in a tree.
struct Constructs<'s> {
    text: &'s str,
    seen: BTreeSet<&'static str>,
}

impl Constructs<'_> {
    fn add(&mut self, name: &'static str) {
        self.seen.insert(name);
    }

    fn source(&self, span: hogsend_dsl::Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }

    fn file(&mut self, f: &ast::SourceFile) {
        if !f.comments.is_empty() {
            self.add("comment");
        }
        for item in &f.items {
            match item {
                ast::Item::Bucket(b) => self.bucket(b),
                ast::Item::Journey(j) => self.journey(j),
                ast::Item::Test(_) => self.add("test"),
                ast::Item::List(l) => self.list(l),
                ast::Item::Campaign(c) => self.campaign(c),
            }
        }
    }

    fn campaign(&mut self, c: &ast::Campaign) {
        self.add("campaign");
        for f in &c.fields {
            match &f.kind {
                ast::CampaignFieldKind::Name(s) => {
                    self.add("campaign name");
                    self.string(s);
                }
                ast::CampaignFieldKind::Audience(a) if a.is_list => {
                    self.add("campaign audience list");
                }
                ast::CampaignFieldKind::Audience(_) => self.add("campaign audience bucket"),
                ast::CampaignFieldKind::Template(_) => self.add("campaign template"),
                ast::CampaignFieldKind::SendAt(ast::SendAt::Instant { .. }) => {
                    self.add("campaign send_at instant");
                }
                ast::CampaignFieldKind::SendAt(ast::SendAt::Local { .. }) => {
                    self.add("campaign send_at local");
                }
            }
        }
    }

    fn list(&mut self, l: &ast::List) {
        self.add("list");
        for f in &l.fields {
            match &f.kind {
                ast::ListFieldKind::Name(s) => {
                    self.add("list name");
                    self.string(s);
                }
                ast::ListFieldKind::Description(s) => {
                    self.add("list description");
                    self.string(s);
                }
                ast::ListFieldKind::Default(d) if d.subscribed => {
                    self.add("list default subscribed");
                }
                ast::ListFieldKind::Default(_) => self.add("list default unsubscribed"),
            }
        }
    }

    fn string(&mut self, s: &ast::StringLit) {
        self.add("string");
        if self.source(s.span).contains('\\') {
            self.add("string escape");
        }
    }

    fn duration(&mut self, d: &ast::Duration) {
        self.add("duration");
        if d.parts.len() > 1 {
            self.add("duration chained");
        }
        for p in &d.parts {
            self.add(match p.unit {
                ast::DurationUnit::Seconds => "duration unit s",
                ast::DurationUnit::Minutes => "duration unit m",
                ast::DurationUnit::Hours => "duration unit h",
                ast::DurationUnit::Days => "duration unit d",
                ast::DurationUnit::Weeks => "duration unit w",
            });
        }
    }

    fn entry(&mut self, e: &ast::EntryPolicy) {
        match e {
            ast::EntryPolicy::Unlimited => self.add("entry unlimited"),
            ast::EntryPolicy::Once => self.add("entry once"),
            ast::EntryPolicy::OncePer(d) => {
                self.add("entry once per");
                self.duration(d);
            }
        }
    }

    fn event(&mut self, e: &ast::EventName) {
        if self.source(e.span).starts_with('"') {
            self.add("event name quoted");
        } else if e.name.contains('.') {
            self.add("event name dotted");
        } else {
            self.add("event name bare");
        }
    }

    fn path(&mut self, p: &ast::Path) {
        match p.root {
            ast::PathRoot::Contact => self.add("path contact"),
            ast::PathRoot::Event => self.add("path event"),
            ast::PathRoot::Trigger => self.add("path trigger"),
        }
        if p.segments.len() > 1 {
            self.add("path nested");
        }
        if p.segments
            .iter()
            .any(|s| self.source(s.span).starts_with('"'))
        {
            self.add("path quoted key");
        }
    }

    fn literal(&mut self, l: &ast::Literal) {
        match l {
            ast::Literal::String(s) => self.string(s),
            ast::Literal::Number(n) => {
                self.add("number");
                if n.raw.starts_with('-') {
                    self.add("number negative");
                }
                if n.raw.contains('.') {
                    self.add("number decimal");
                }
            }
            ast::Literal::Bool(_) => self.add("bool"),
        }
    }

    fn cmp(&mut self, op: ast::CmpOp) {
        self.add(match op {
            ast::CmpOp::Eq => "cmp ==",
            ast::CmpOp::Ne => "cmp !=",
            ast::CmpOp::Gt => "cmp >",
            ast::CmpOp::Ge => "cmp >=",
            ast::CmpOp::Lt => "cmp <",
            ast::CmpOp::Le => "cmp <=",
        });
    }

    fn event_atom(
        &mut self,
        event: &ast::EventName,
        filter: &Option<ast::Filter>,
        window: &Option<ast::Window>,
    ) {
        self.event(event);
        if let Some(f) = filter {
            self.add("filter");
            self.expr(&f.expr);
        }
        match window.as_ref().map(|w| &w.kind) {
            None => {}
            Some(ast::WindowKind::Within(d)) => {
                self.add("window within");
                self.duration(d);
            }
            Some(ast::WindowKind::SinceEntry) => self.add("window since entry"),
        }
    }

    fn expr(&mut self, e: &ast::Expr) {
        match &e.kind {
            ast::ExprKind::Or(xs) => {
                self.add("or");
                xs.iter().for_each(|x| self.expr(x));
            }
            ast::ExprKind::And(xs) => {
                self.add("and");
                xs.iter().for_each(|x| self.expr(x));
            }
            ast::ExprKind::Not(x) => {
                self.add("not");
                self.expr(x);
            }
            ast::ExprKind::Paren(x) => {
                self.add("parens");
                self.expr(x);
            }
            ast::ExprKind::All(xs) => {
                self.add("all {}");
                xs.iter().for_each(|x| self.expr(x));
            }
            ast::ExprKind::Any(xs) => {
                self.add("any {}");
                xs.iter().for_each(|x| self.expr(x));
            }
            ast::ExprKind::Did {
                event,
                filter,
                window,
            } => {
                self.add("did");
                self.event_atom(event, filter, window);
            }
            ast::ExprKind::Count {
                event,
                filter,
                window,
                op,
                ..
            } => {
                self.add("count");
                self.cmp(*op);
                self.event_atom(event, filter, window);
            }
            ast::ExprKind::Compare { path, op, value } => {
                self.add("compare");
                self.path(path);
                self.cmp(*op);
                self.literal(value);
            }
            ast::ExprKind::Exists(p) => {
                self.add("exists");
                self.path(p);
            }
            ast::ExprKind::Contains(p, s) => {
                self.add("contains");
                self.path(p);
                self.string(s);
            }
            ast::ExprKind::In(p, ls) => {
                self.add("in");
                self.path(p);
                ls.iter().for_each(|l| self.literal(l));
            }
            ast::ExprKind::Opened(_) => self.add("opened"),
            ast::ExprKind::Clicked(_) => self.add("clicked"),
        }
    }

    fn bucket(&mut self, b: &ast::Bucket) {
        self.add("bucket");
        for m in &b.members {
            match m {
                ast::BucketMember::Field(f) => match &f.kind {
                    ast::BucketFieldKind::Name(s) => {
                        self.add("bucket name");
                        self.string(s);
                    }
                    ast::BucketFieldKind::Description(s) => {
                        self.add("bucket description");
                        self.string(s);
                    }
                    ast::BucketFieldKind::Criteria(e) => {
                        self.add("bucket criteria");
                        self.expr(e);
                    }
                    ast::BucketFieldKind::Entry(e) => {
                        self.add("bucket entry");
                        self.entry(e);
                    }
                    ast::BucketFieldKind::MinDwell(d) => {
                        self.add("bucket min_dwell");
                        self.duration(d);
                    }
                    ast::BucketFieldKind::MaxDwell(d) => {
                        self.add("bucket max_dwell");
                        self.duration(d);
                    }
                    ast::BucketFieldKind::Enabled(v) => {
                        self.add(if v.value {
                            "bucket enabled true"
                        } else {
                            "bucket enabled false"
                        });
                    }
                },
                ast::BucketMember::Reaction(r) => {
                    match &r.trigger {
                        ast::ReactionTrigger::Enter { first: false } => self.add("on enter"),
                        ast::ReactionTrigger::Enter { first: true } => self.add("on enter first"),
                        ast::ReactionTrigger::Leave { because: None } => self.add("on leave"),
                        ast::ReactionTrigger::Leave {
                            because: Some(ast::LeaveReason::Criteria),
                        } => self.add("on leave because criteria"),
                        ast::ReactionTrigger::Leave {
                            because: Some(ast::LeaveReason::MaxDwell),
                        } => self.add("on leave because max_dwell"),
                        ast::ReactionTrigger::DwellAfter { after, label } => {
                            self.duration(after);
                            self.add(if label.is_some() {
                                "on dwell after as"
                            } else {
                                "on dwell after"
                            });
                        }
                        ast::ReactionTrigger::DwellEvery { every, label } => {
                            self.duration(every);
                            self.add(if label.is_some() {
                                "on dwell every as"
                            } else {
                                "on dwell every"
                            });
                        }
                    }
                    if r.body.steps.is_empty() {
                        self.add("empty block");
                    }
                    self.steps(&r.body.steps);
                }
            }
        }
    }

    fn journey(&mut self, j: &ast::Journey) {
        self.add("journey");
        for m in &j.members {
            match m {
                ast::JourneyMember::Header(h) => match &h.kind {
                    ast::JourneyHeaderKind::Name(s) => {
                        self.add("journey name");
                        self.string(s);
                    }
                    ast::JourneyHeaderKind::Description(s) => {
                        self.add("journey description");
                        self.string(s);
                    }
                    ast::JourneyHeaderKind::Trigger(t) => match t {
                        ast::Trigger::Event { event, filter } => {
                            self.event(event);
                            self.add(if filter.is_some() {
                                "trigger event where"
                            } else {
                                "trigger event"
                            });
                            if let Some(f) = filter {
                                self.expr(&f.expr);
                            }
                        }
                        ast::Trigger::Enter(_) => self.add("trigger enter"),
                        ast::Trigger::Leave(_) => self.add("trigger leave"),
                        ast::Trigger::Dwell { .. } => self.add("trigger dwell"),
                    },
                    ast::JourneyHeaderKind::Entry(e) => {
                        self.add("journey entry");
                        self.entry(e);
                    }
                    ast::JourneyHeaderKind::ExitWhen(e) => {
                        self.add("exit when");
                        self.expr(e);
                    }
                },
                ast::JourneyMember::Step(s) => self.steps(std::slice::from_ref(s)),
            }
        }
    }

    fn steps(&mut self, steps: &[ast::Step]) {
        for s in steps {
            match &s.kind {
                ast::StepKind::Send(_) => self.add("send"),
                ast::StepKind::Wait(d) => {
                    self.add("wait");
                    self.duration(d);
                }
                ast::StepKind::WaitUntil { cond, at_most } => {
                    self.add("wait until at most");
                    self.expr(cond);
                    self.duration(at_most);
                }
                ast::StepKind::WaitUntilTime { days, zone, .. } => {
                    self.add("wait until time");
                    match days {
                        None => {}
                        Some(ast::DaySpec::Weekdays) => self.add("on weekdays"),
                        Some(ast::DaySpec::Weekends) => self.add("on weekends"),
                        Some(ast::DaySpec::Days(_)) => self.add("on day list"),
                    }
                    if let Some(p) = zone {
                        self.add("in zone");
                        self.path(p);
                    }
                }
                ast::StepKind::If {
                    branches,
                    else_block,
                } => {
                    self.add("if");
                    if branches.len() > 1 {
                        self.add("else if");
                    }
                    for b in branches {
                        self.expr(&b.cond);
                        self.steps(&b.body.steps);
                    }
                    if let Some(e) = else_block {
                        self.add("else");
                        self.steps(&e.steps);
                    }
                }
                ast::StepKind::Start(_) => self.add("start"),
                ast::StepKind::Emit(e) => {
                    self.add("emit");
                    self.event(e);
                }
                ast::StepKind::Exit => self.add("exit"),
            }
        }
    }
}

const CONSTRUCTS: &[&str] = &[
    "all {}",
    "and",
    "any {}",
    "bool",
    "bucket",
    "campaign",
    "campaign audience bucket",
    "campaign audience list",
    "campaign name",
    "campaign send_at instant",
    "campaign send_at local",
    "campaign template",
    "bucket criteria",
    "bucket description",
    "bucket enabled false",
    "bucket enabled true",
    "bucket entry",
    "bucket max_dwell",
    "bucket min_dwell",
    "bucket name",
    "clicked",
    "cmp !=",
    "cmp <",
    "cmp <=",
    "cmp ==",
    "cmp >",
    "cmp >=",
    "comment",
    "compare",
    "contains",
    "count",
    "did",
    "duration",
    "duration chained",
    "duration unit d",
    "duration unit h",
    "duration unit m",
    "duration unit s",
    "duration unit w",
    "else",
    "else if",
    "emit",
    "empty block",
    "entry once",
    "entry once per",
    "entry unlimited",
    "event name bare",
    "event name dotted",
    "event name quoted",
    "exists",
    "exit",
    "exit when",
    "filter",
    "if",
    "in",
    "in zone",
    "journey",
    "journey description",
    "journey entry",
    "journey name",
    "list",
    "list default subscribed",
    "list default unsubscribed",
    "list description",
    "list name",
    "not",
    "number",
    "number decimal",
    "number negative",
    "on day list",
    "on dwell after",
    "on dwell after as",
    "on dwell every",
    "on dwell every as",
    "on enter",
    "on enter first",
    "on leave",
    "on leave because criteria",
    "on leave because max_dwell",
    "on weekdays",
    "on weekends",
    "opened",
    "or",
    "parens",
    "path contact",
    "path event",
    "path trigger",
    "path nested",
    "path quoted key",
    "send",
    "start",
    "string",
    "string escape",
    "test",
    "trigger dwell",
    "trigger enter",
    "trigger event",
    "trigger event where",
    "trigger leave",
    "wait",
    "wait until at most",
    "wait until time",
    "window since entry",
    "window within",
];

#[test]
fn every_construct_is_parsed_by_an_ok_fixture() {
    let mut seen = BTreeSet::new();
    for path in fixtures("ok") {
        let set = load_fixture(&path);
        for f in &set.files {
            let parsed = hogsend_dsl::parse(&f.text);
            assert!(parsed.errors.is_empty(), "{}: {:?}", f.path, parsed.errors);
            let mut c = Constructs {
                text: &f.text,
                seen: BTreeSet::new(),
            };
            c.file(&parsed.file);
            seen.extend(c.seen);
        }
    }
    let missing: Vec<&&str> = CONSTRUCTS.iter().filter(|c| !seen.contains(**c)).collect();
    assert!(
        missing.is_empty(),
        "constructs no ok fixture uses: {missing:?}"
    );
    let unlisted: Vec<&&str> = seen.iter().filter(|c| !CONSTRUCTS.contains(c)).collect();
    assert!(unlisted.is_empty(), "add to CONSTRUCTS: {unlisted:?}");
}
