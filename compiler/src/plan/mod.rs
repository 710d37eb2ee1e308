//! Checked IR → the SQL plan: per bucket, the SQL-shaped pieces the emitter lays out.
//!
//! `plan` cannot fail on a checked program. It reads no clock and does no IO; the only
//! inputs are the program and the target schema name.

pub mod journey;
pub(crate) mod matcher;
pub mod normalize;
pub(crate) mod sql;
pub mod text;
pub mod why;

use crate::ir::{self, DwellKind, EntryPolicy, Program};
use matcher::{MatcherBuilder, MatcherSql, MAX_SECONDS};
use serde_json::json;

/// What to plan for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// The Postgres schema everything lives in (validated `[a-z_][a-z0-9_]*`).
    pub schema: String,
    /// The project's IANA time zone (`[project] timezone`), for time-of-day waits of
    /// contacts without a valid zone of their own.
    pub timezone: String,
    /// `[journeys] trigger_max_age`, in seconds.
    pub trigger_max_age: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            schema: "hogsend".to_owned(),
            timezone: "UTC".to_owned(),
            trigger_max_age: 86_400,
        }
    }
}

/// The whole project as SQL-shaped pieces.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectPlan {
    pub schema: String,
    /// The advisory lock key every pass on this schema takes.
    pub lock_key: i64,
    /// Enabled and disabled buckets, sorted by id.
    pub buckets: Vec<BucketPlan>,
    /// The registry document `_sync_project` receives.
    pub registry: serde_json::Value,
    /// Every journey and bucket reaction, sorted by id.
    pub journeys: Vec<journey::JourneyPlan>,
    /// The project's time zone and the trigger age limit in seconds (see [`PlanOptions`]).
    pub timezone: String,
    pub trigger_max_age: u64,
    /// The lists `_sync_lists` receives, one JSON object each, sorted by id.
    pub lists: Vec<serde_json::Value>,
    /// The templates `_sync_templates` receives (`hogsend_mail::DeployedTemplate`), sorted
    /// by id.
    pub templates: Vec<serde_json::Value>,
}

/// One bucket's SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketPlan {
    pub id: String,
    pub enabled: bool,
    pub fingerprint: String,
    /// The criteria in `.hog` syntax, normalized.
    pub criteria_text: String,
    pub origin: ir::Origin,
    pub(crate) matcher: MatcherSql,
}

/// The advisory-lock key for a schema: stable across processes, machines and versions.
pub use hogsend_schema::lock_key;

fn secs(s: ir::Seconds) -> i64 {
    s.clamp(1, MAX_SECONDS)
}

/// Plans every bucket of a checked program.
pub fn plan(program: &Program, options: &PlanOptions) -> ProjectPlan {
    let schema = options.schema.as_str();
    let mut buckets = Vec::new();
    let mut registry = Vec::new();
    for bucket in &program.buckets {
        let criteria = normalize::normalize(&bucket.criteria);
        let fingerprint = normalize::fingerprint(&bucket.criteria);
        let criteria_text = text::pred_text(&criteria);
        let matcher = MatcherBuilder::new(schema, &bucket.id, &criteria).build(&criteria);
        let (entry_kind, entry_period) = match bucket.entry {
            EntryPolicy::Unlimited => ("unlimited", None),
            EntryPolicy::Once => ("once", None),
            EntryPolicy::OncePer(s) => ("once_per", Some(secs(s))),
        };
        let dwell_rules: Vec<serde_json::Value> = bucket
            .dwell
            .iter()
            .map(|rule| {
                json!({
                    "label": rule.label,
                    "kind": match rule.kind { DwellKind::After => "after", DwellKind::Every => "every" },
                    "period": secs(rule.period),
                })
            })
            .collect();
        registry.push(json!({
            "id": bucket.id,
            "fingerprint": fingerprint,
            "enabled": bucket.enabled,
            "entry_kind": entry_kind,
            "entry_period": entry_period,
            "min_dwell": bucket.min_dwell.map(secs),
            "max_dwell": bucket.max_dwell.map(secs),
            "dwell_rules": dwell_rules,
            "definition": {
                "name": bucket.name,
                "description": bucket.description,
                "criteria": criteria_text,
                "entry": text::entry_text(bucket.entry),
                "min_dwell": bucket.min_dwell.map(text::duration_text),
                "max_dwell": bucket.max_dwell.map(text::duration_text),
                "dwell": bucket.dwell.iter().map(|r| r.label.clone()).collect::<Vec<_>>(),
                "source": format!("{}:{}", bucket.origin.file, bucket.origin.line),
            },
        }));
        buckets.push(BucketPlan {
            id: bucket.id.clone(),
            enabled: bucket.enabled,
            fingerprint,
            criteria_text,
            origin: bucket.origin.clone(),
            matcher,
        });
    }
    ProjectPlan {
        schema: schema.to_owned(),
        lock_key: lock_key(schema),
        buckets,
        registry: serde_json::Value::Array(registry),
        journeys: journey::plan_journeys(program, schema),
        timezone: options.timezone.clone(),
        trigger_max_age: options.trigger_max_age,
        lists: program
            .lists
            .iter()
            .map(|l| {
                json!({
                    "id": l.id,
                    "name": l.name,
                    "description": l.description,
                    "default_subscribed": l.default_subscribed,
                })
            })
            .collect(),
        templates: program
            .templates
            .iter()
            .map(|t| serde_json::to_value(&t.deployed).unwrap_or_default())
            .collect(),
    }
}
