//! The checker: parsed files → resolved, checked [`ir::Program`] plus diagnostics.
//!
//! Passes, in order: (1) register every bucket and journey id, reporting duplicates;
//! (2) check and lower buckets (fields, criteria, the empty-contact rule, reactions, dwell
//! labels); (3) check and lower journeys (headers, trigger references, steps); (4) find
//! `start` cycles. Every problem is recorded as a [`CheckError`] and the pass goes on, so a
//! run reports them all; the program is returned only when no error was found.
//!
//! Decisions (also in ARCHITECTURE.md, "Decisions", and docs/language.md):
//! - bucket fields and reactions may come in any order; journey headers must come before
//!   the first step (E0312);
//! - `since entry` is allowed in reaction bodies (a reaction is an inline journey entered
//!   at its transition) and in journey conditions, nowhere else;
//! - reserved event names are rejected in criteria and in `emit`, allowed elsewhere;
//! - durations are at most 100 years;
//! - when any file has parse errors, definitions that contain one are registered but not
//!   checked, and "unknown bucket/journey/dwell label" errors are not reported (the target
//!   may be the definition that failed to parse).

mod campaigns;
mod cycles;
mod empty_contact;
mod error;
mod lower;
mod messaging;
mod tests_block;

use std::collections::{HashMap, HashSet};

use hogsend_dsl::ast::{self, BucketFieldKind, BucketMember, JourneyHeaderKind, JourneyMember};
use hogsend_dsl::Span;

use crate::config::{self, Config};
use crate::diagnostics::{Diagnostic, Severity};
use crate::ir;
use crate::source::SourceSet;
use error::{CheckError, DefKind, Loc};
use lower::{BodyFacts, CondCtx};

/// The result of checking a project.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The checked program, or `None` when any error was found (warnings do not count).
    pub program: Option<ir::Program>,
    /// Every error and warning, sorted by file (config first, then `.hog` files in the
    /// source set's order) and position.
    pub diagnostics: Vec<Diagnostic>,
    /// The project configuration (the defaults when `hogsend.toml` is missing or invalid).
    pub config: Config,
    /// The project's `test` blocks, in file order (run by `hogsend test` when `program` is
    /// `Some`).
    pub tests: Vec<crate::test_suite::TestCase>,
}

/// One `.hog` file after parsing: its tree and its parse errors as diagnostics.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// The tree the parser could build.
    pub ast: ast::SourceFile,
    /// Parse errors, already converted to diagnostics.
    pub diagnostics: Vec<Diagnostic>,
}

/// Checks already-parsed files. `parsed[i]` is the tree of `set.files[i]`.
pub fn check_parsed(set: &SourceSet, parsed: &[ParsedFile]) -> Checked {
    assert_eq!(set.files.len(), parsed.len(), "one tree per file");
    let (config, mut diagnostics) = config::load(set.config.as_ref());
    for p in parsed {
        diagnostics.extend(p.diagnostics.iter().cloned());
    }
    let mut checker = Checker::new(set, parsed);
    let program = checker.run();
    let tests = checker.tests();
    diagnostics.extend(checker.errors.iter().map(CheckError::to_diagnostic));
    diagnostics.extend(
        checker
            .test_errors
            .iter()
            .map(tests_block::TestError::to_diagnostic),
    );
    sort_diagnostics(set, &mut diagnostics);
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    Checked {
        program: (!failed).then_some(program),
        diagnostics,
        config,
        tests,
    }
}

fn sort_diagnostics(set: &SourceSet, diagnostics: &mut [Diagnostic]) {
    let order: HashMap<&str, usize> = set
        .config
        .iter()
        .chain(set.files.iter())
        .chain(
            set.templates
                .iter()
                .flat_map(|t| t.html.iter().chain(t.text.iter())),
        )
        .enumerate()
        .map(|(i, f)| (f.path.as_str(), i))
        .collect();
    diagnostics.sort_by_key(|d| {
        (
            order
                .get(d.primary.file.as_str())
                .copied()
                .unwrap_or(usize::MAX),
            d.primary.span.start,
            d.code,
        )
    });
}

/// The first definition of a bucket or journey id.
struct Def<'a, T> {
    file: usize,
    node: &'a T,
}

/// State shared by the checker's passes.
pub(crate) struct Checker<'a> {
    set: &'a SourceSet,
    parsed: &'a [ParsedFile],
    /// The file being checked (index into `set.files`).
    file: usize,
    /// Drop reports (while checking a definition that failed to parse).
    muted: bool,
    /// Some file failed to parse: unknown-reference errors are not trustworthy.
    parse_failed: bool,
    errors: Vec<CheckError>,
    /// Problems in `test` blocks (see `tests_block`).
    test_errors: Vec<tests_block::TestError>,
    templates: HashSet<&'a str>,
    buckets: HashMap<&'a str, Def<'a, ast::Bucket>>,
    journeys: HashMap<&'a str, Def<'a, ast::Journey>>,
    lists: HashMap<&'a str, Def<'a, ast::List>>,
    campaigns: HashMap<&'a str, Def<'a, ast::Campaign>>,
    /// Dwell labels per bucket id (from its first definition).
    dwell_labels: HashMap<&'a str, Vec<String>>,
    /// Byte offsets of line starts, per file, for origins.
    line_starts: Vec<Vec<usize>>,
}

impl<'a> Checker<'a> {
    fn new(set: &'a SourceSet, parsed: &'a [ParsedFile]) -> Self {
        Checker {
            set,
            parsed,
            file: 0,
            muted: false,
            parse_failed: parsed.iter().any(|p| !p.diagnostics.is_empty()),
            errors: Vec::new(),
            test_errors: Vec::new(),
            templates: set.templates.iter().map(|t| t.id.as_str()).collect(),
            buckets: HashMap::new(),
            journeys: HashMap::new(),
            lists: HashMap::new(),
            campaigns: HashMap::new(),
            dwell_labels: HashMap::new(),
            line_starts: set
                .files
                .iter()
                .map(|f| {
                    std::iter::once(0)
                        .chain(f.text.match_indices('\n').map(|(i, _)| i + 1))
                        .collect()
                })
                .collect(),
        }
    }

    pub(crate) fn report(&mut self, e: CheckError) {
        if !self.muted {
            self.errors.push(e);
        }
    }

    pub(crate) fn loc(&self, span: Span) -> Loc {
        Loc {
            file: self.set.files[self.file].path.clone(),
            span,
        }
    }

    fn text(&self) -> &'a str {
        &self.set.files[self.file].text
    }

    fn origin(&self, span: Span) -> ir::Origin {
        let starts = &self.line_starts[self.file];
        let line = starts.partition_point(|&s| s <= span.start);
        ir::Origin {
            file: self.set.files[self.file].path.clone(),
            line: line as u32,
        }
    }

    /// True when a parse error of the current file lies between the start of the item at
    /// `index` and the start of the next item (or the end of the file): the parser may
    /// have dropped some of its members.
    fn damaged(&self, index: usize) -> bool {
        let items = &self.parsed[self.file].ast.items;
        let start = items[index].span().start;
        let end = items
            .get(index + 1)
            .map_or(usize::MAX, |next| next.span().start);
        self.parsed[self.file]
            .diagnostics
            .iter()
            .any(|d| start <= d.primary.span.start && d.primary.span.start < end)
    }

    fn run(&mut self) -> ir::Program {
        let parsed = self.parsed;
        // Pass 1: names.
        for (file, p) in parsed.iter().enumerate() {
            self.file = file;
            for item in &p.ast.items {
                match item {
                    ast::Item::Bucket(b) => self.define_bucket(file, b),
                    ast::Item::Journey(j) => self.define_journey(file, j),
                    ast::Item::Test(_) => {}
                    ast::Item::List(l) => self.define_list(file, l),
                    ast::Item::Campaign(c) => self.define_campaign(file, c),
                }
            }
        }
        // Pass 2: buckets (before journeys, which use their dwell labels).
        let mut buckets = Vec::new();
        for (file, p) in parsed.iter().enumerate() {
            self.file = file;
            for (index, item) in p.ast.items.iter().enumerate() {
                if let ast::Item::Bucket(b) = item {
                    self.muted = self.damaged(index);
                    let Some(lowered) = self.bucket(b) else {
                        continue;
                    };
                    if std::ptr::eq(self.buckets[b.id.name.as_str()].node, b) {
                        self.dwell_labels.insert(
                            &b.id.name,
                            lowered.dwell.iter().map(|d| d.label.clone()).collect(),
                        );
                    }
                    buckets.push(lowered);
                }
            }
        }
        // Pass 3: journeys.
        let mut journeys = Vec::new();
        let mut starts: HashMap<String, Vec<(String, Loc)>> = HashMap::new();
        for (file, p) in parsed.iter().enumerate() {
            self.file = file;
            for (index, item) in p.ast.items.iter().enumerate() {
                if let ast::Item::Journey(j) = item {
                    self.muted = self.damaged(index);
                    let (lowered, facts) = self.journey(j);
                    if !self.muted && std::ptr::eq(self.journeys[j.id.name.as_str()].node, j) {
                        let edges = facts
                            .starts
                            .into_iter()
                            .map(|(to, span)| (to, self.loc(span)))
                            .collect();
                        starts.insert(j.id.name.clone(), edges);
                    }
                    journeys.push(lowered);
                }
            }
        }
        // Lists.
        let mut lists = Vec::new();
        for (file, p) in parsed.iter().enumerate() {
            self.file = file;
            for (index, item) in p.ast.items.iter().enumerate() {
                if let ast::Item::List(l) = item {
                    self.muted = self.damaged(index);
                    lists.push(self.list(l));
                }
            }
        }
        // Campaigns (they name buckets, lists and templates).
        let mut campaigns = Vec::new();
        for (file, p) in parsed.iter().enumerate() {
            self.file = file;
            for (index, item) in p.ast.items.iter().enumerate() {
                if let ast::Item::Campaign(c) = item {
                    self.muted = self.damaged(index);
                    campaigns.push(self.campaign(c));
                }
            }
        }
        self.muted = false;
        // Templates (their categories name lists).
        let templates = self.templates();
        // A bucket campaign must not send a transactional template.
        for (file, p) in parsed.iter().enumerate() {
            self.file = file;
            for (index, item) in p.ast.items.iter().enumerate() {
                if let ast::Item::Campaign(c) = item {
                    self.muted = self.damaged(index);
                    self.transactional_broadcast(c, &templates);
                }
            }
        }
        self.muted = false;
        // Pass 4: start cycles.
        for e in cycles::find(&starts) {
            self.report(e);
        }
        buckets.sort_by(|a, b| a.id.cmp(&b.id));
        journeys.sort_by(|a, b| a.id.cmp(&b.id));
        lists.sort_by(|a, b| a.id.cmp(&b.id));
        campaigns.sort_by(|a, b| a.id.cmp(&b.id));
        ir::Program {
            buckets,
            journeys,
            templates,
            lists,
            campaigns,
        }
    }

    fn define_bucket(&mut self, file: usize, b: &'a ast::Bucket) {
        if let Some(first) = self.buckets.get(b.id.name.as_str()) {
            let first = Loc {
                file: self.set.files[first.file].path.clone(),
                span: first.node.id.span,
            };
            self.report(CheckError::DuplicateDefinition {
                kind: DefKind::Bucket,
                id: b.id.name.clone(),
                at: self.loc(b.id.span),
                first,
            });
        } else {
            self.buckets.insert(&b.id.name, Def { file, node: b });
        }
    }

    fn define_journey(&mut self, file: usize, j: &'a ast::Journey) {
        if let Some(first) = self.journeys.get(j.id.name.as_str()) {
            let first = Loc {
                file: self.set.files[first.file].path.clone(),
                span: first.node.id.span,
            };
            self.report(CheckError::DuplicateDefinition {
                kind: DefKind::Journey,
                id: j.id.name.clone(),
                at: self.loc(j.id.span),
                first,
            });
        } else {
            self.journeys.insert(&j.id.name, Def { file, node: j });
        }
    }

    /// Reports a field seen twice; returns true when it was.
    fn once(
        &mut self,
        seen: &mut HashMap<&'static str, Span>,
        owner: DefKind,
        field: &'static str,
        span: Span,
    ) {
        if let Some(first) = seen.get(field) {
            let first = self.loc(*first);
            self.report(CheckError::DuplicateField {
                owner,
                field,
                at: self.loc(span),
                first,
            });
        } else {
            seen.insert(field, span);
        }
    }

    /// None only when the id is not a valid one, which the parser has already reported
    /// (E0106), so the program is dropped anyway.
    fn bucket(&mut self, b: &ast::Bucket) -> Option<ir::Bucket> {
        let id = ir::BucketId::new(&b.id.name).ok()?;
        let mut seen = HashMap::new();
        let mut out = ir::Bucket {
            id,
            name: None,
            description: None,
            criteria: ir::Pred::And(Vec::new()),
            entry: ir::EntryPolicy::Unlimited,
            min_dwell: None,
            max_dwell: None,
            enabled: true,
            dwell: Vec::new(),
            reactions: Vec::new(),
            origin: self.origin(b.span),
        };
        let mut has_criteria = false;
        let mut min_dwell_span = None;
        let mut max_dwell_span = None;
        for m in &b.members {
            let BucketMember::Field(f) = m else { continue };
            let name = match &f.kind {
                BucketFieldKind::Name(s) => {
                    out.name = Some(s.value.clone());
                    "name"
                }
                BucketFieldKind::Description(s) => {
                    out.description = Some(s.value.clone());
                    "description"
                }
                BucketFieldKind::Criteria(e) => {
                    has_criteria = true;
                    out.criteria = self.pred(e, CondCtx::Criteria);
                    if crate::eval::holds_for_empty_contact(&out.criteria) {
                        self.report(CheckError::EmptyContact {
                            at: self.loc(e.span),
                            label: empty_contact::label(e),
                            suggestion: empty_contact::suggestion(e, self.text()),
                        });
                    }
                    "criteria"
                }
                BucketFieldKind::Entry(e) => {
                    out.entry = self.entry_policy(e);
                    "entry"
                }
                BucketFieldKind::MinDwell(d) => {
                    out.min_dwell = Some(self.duration(d));
                    min_dwell_span = Some(f.span);
                    "min_dwell"
                }
                BucketFieldKind::MaxDwell(d) => {
                    out.max_dwell = Some(self.duration(d));
                    max_dwell_span = Some(f.span);
                    "max_dwell"
                }
                BucketFieldKind::Enabled(v) => {
                    out.enabled = v.value;
                    "enabled"
                }
            };
            self.once(&mut seen, DefKind::Bucket, name, f.keyword_span);
        }
        if !has_criteria {
            self.report(CheckError::MissingField {
                owner: DefKind::Bucket,
                id: b.id.name.clone(),
                field: "criteria",
                example: "criteria did app_opened within 7d",
                at: self.loc(b.id.span),
            });
        }
        if let (Some(min), Some(max), Some(min_span), Some(max_span)) =
            (out.min_dwell, out.max_dwell, min_dwell_span, max_dwell_span)
        {
            if min > max {
                self.report(CheckError::MinDwellAboveMax {
                    at: self.loc(min_span),
                    max: self.loc(max_span),
                });
            }
        }
        // Reactions, after the fields so `max_dwell` is known wherever it was written.
        let mut labels: HashMap<String, Span> = HashMap::new();
        for m in &b.members {
            let BucketMember::Reaction(r) = m else {
                continue;
            };
            let on = match &r.trigger {
                ast::ReactionTrigger::Enter { first } => {
                    ir::ReactionOn::Enter { first_only: *first }
                }
                ast::ReactionTrigger::Leave { because } => {
                    if *because == Some(ast::LeaveReason::MaxDwell) && out.max_dwell.is_none() {
                        self.report(CheckError::ReactionNeverFires {
                            at: self.loc(r.trigger_span),
                        });
                    }
                    ir::ReactionOn::Leave {
                        because: because.map(|b| match b {
                            ast::LeaveReason::Criteria => ir::LeaveReason::Criteria,
                            ast::LeaveReason::MaxDwell => ir::LeaveReason::MaxDwell,
                        }),
                    }
                }
                ast::ReactionTrigger::DwellAfter { after: d, label }
                | ast::ReactionTrigger::DwellEvery { every: d, label } => {
                    let kind = match r.trigger {
                        ast::ReactionTrigger::DwellAfter { .. } => ir::DwellKind::After,
                        _ => ir::DwellKind::Every,
                    };
                    let period = self.duration(d);
                    let (name, span, defaulted) = match label {
                        Some(l) => (l.name.clone(), l.span, false),
                        None => {
                            let prefix = match kind {
                                ir::DwellKind::After => "after",
                                ir::DwellKind::Every => "every",
                            };
                            (
                                format!("{prefix}_{}", lower::duration_text(d)),
                                r.trigger_span,
                                true,
                            )
                        }
                    };
                    if let Some(first) = labels.get(&name) {
                        let first = self.loc(*first);
                        self.report(CheckError::DuplicateDwellLabel {
                            bucket: b.id.name.clone(),
                            label: name.clone(),
                            at: self.loc(span),
                            first,
                            defaulted,
                        });
                    } else {
                        labels.insert(name.clone(), span);
                        out.dwell.push(ir::DwellRule {
                            label: name.clone(),
                            kind,
                            period,
                        });
                    }
                    ir::ReactionOn::Dwell { label: name }
                }
            };
            let (steps, _) = self.steps(&r.body.steps, &mut BodyFacts::default());
            out.reactions.push(ir::Reaction { on, steps });
        }
        out.dwell.sort_by(|a, b| a.label.cmp(&b.label));
        Some(out)
    }

    fn journey(&mut self, j: &ast::Journey) -> (ir::Journey, BodyFacts) {
        let mut seen = HashMap::new();
        let mut out = ir::Journey {
            id: j.id.name.clone(),
            name: None,
            description: None,
            trigger: ir::JourneyTrigger::Enter(String::new()),
            entry: ir::EntryPolicy::Once,
            exit_when: None,
            steps: Vec::new(),
            origin: self.origin(j.span),
        };
        let mut has_trigger = false;
        let mut first_step: Option<Span> = None;
        let mut steps = Vec::new();
        for m in &j.members {
            let h = match m {
                JourneyMember::Step(s) => {
                    first_step.get_or_insert(s.span);
                    steps.push(s);
                    continue;
                }
                JourneyMember::Header(h) => h,
            };
            let name = match &h.kind {
                JourneyHeaderKind::Name(s) => {
                    out.name = Some(s.value.clone());
                    "name"
                }
                JourneyHeaderKind::Description(s) => {
                    out.description = Some(s.value.clone());
                    "description"
                }
                JourneyHeaderKind::Trigger(t) => {
                    has_trigger = true;
                    out.trigger = self.trigger(t);
                    "trigger"
                }
                JourneyHeaderKind::Entry(e) => {
                    out.entry = self.entry_policy(e);
                    "entry"
                }
                JourneyHeaderKind::ExitWhen(e) => {
                    out.exit_when = Some(self.pred(e, CondCtx::Journey));
                    "exit when"
                }
            };
            self.once(&mut seen, DefKind::Journey, name, h.keyword_span);
            if let Some(first) = first_step {
                self.report(CheckError::HeaderAfterStep {
                    header: name,
                    at: self.loc(h.keyword_span),
                    first_step: self.loc(first),
                });
            }
        }
        if !has_trigger {
            self.report(CheckError::MissingField {
                owner: DefKind::Journey,
                id: j.id.name.clone(),
                field: "trigger",
                example: "trigger event user.signed_up",
                at: self.loc(j.id.span),
            });
        }
        let mut facts = BodyFacts::default();
        let (lowered, _) = self.steps(steps, &mut facts);
        out.steps = lowered;
        if !facts.has_effect {
            self.report(CheckError::JourneyDoesNothing {
                id: j.id.name.clone(),
                at: self.loc(j.id.span),
            });
        }
        (out, facts)
    }

    fn trigger(&mut self, t: &ast::Trigger) -> ir::JourneyTrigger {
        match t {
            ast::Trigger::Event { event, filter } => ir::JourneyTrigger::Event {
                event: event.name.clone(),
                filter: filter.as_ref().map(|f| self.event_pred(&f.expr, f.span)),
            },
            ast::Trigger::Enter(b) => {
                self.bucket_ref(b);
                ir::JourneyTrigger::Enter(b.name.clone())
            }
            ast::Trigger::Leave(b) => {
                self.bucket_ref(b);
                ir::JourneyTrigger::Leave(b.name.clone())
            }
            ast::Trigger::Dwell { bucket, label } => {
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
                ir::JourneyTrigger::Dwell {
                    bucket: bucket.name.clone(),
                    label: label.name.clone(),
                }
            }
        }
    }

    /// Resolves a bucket id; returns whether it exists.
    fn bucket_ref(&mut self, id: &ast::Ident) -> bool {
        if self.buckets.contains_key(id.name.as_str()) {
            return true;
        }
        if !self.parse_failed {
            let suggestion = closest(&id.name, self.buckets.keys().copied());
            self.report(CheckError::UnknownBucket {
                name: id.name.clone(),
                at: self.loc(id.span),
                suggestion,
            });
        }
        false
    }

    pub(crate) fn journey_ref(&mut self, id: &ast::Ident) {
        if self.journeys.contains_key(id.name.as_str()) || self.parse_failed {
            return;
        }
        let suggestion = closest(&id.name, self.journeys.keys().copied());
        self.report(CheckError::UnknownJourney {
            name: id.name.clone(),
            at: self.loc(id.span),
            suggestion,
        });
    }

    pub(crate) fn template_ref(&mut self, id: &ast::Ident) {
        if self.templates.contains(id.name.as_str()) {
            return;
        }
        let suggestion = closest(&id.name, self.templates.iter().copied());
        self.report(CheckError::UnknownTemplate {
            name: id.name.clone(),
            at: self.loc(id.span),
            suggestion,
        });
    }
}

/// The candidate closest to `name` by edit distance, when close enough to be a typo.
fn closest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<String> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;
