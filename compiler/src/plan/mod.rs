//! Checked IR → the SQL plan: per bucket, the SQL-shaped pieces the emitter lays out.
//!
//! `plan` cannot fail on a checked program. It reads no clock and does no IO; the only
//! inputs are the program and the target schema name.

pub mod journey;
pub(crate) mod matcher;
pub mod normalize;
pub(crate) mod sql;
mod summary;
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
    /// The campaigns `_sync_campaigns` receives, one JSON object each, sorted by id.
    pub campaigns: Vec<serde_json::Value>,
}

/// One bucket's SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketPlan {
    pub id: ir::BucketId,
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
            "id": bucket.id.as_str(),
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
        campaigns: program.campaigns.iter().map(campaign_json).collect(),
    }
}

/// A campaign as `_sync_campaigns` receives it: `send_at` as an RFC 3339 UTC instant, or
/// `send_at_local` as a wall-clock time with the `zone_path` of the contact property.
fn campaign_json(c: &ir::Campaign) -> serde_json::Value {
    let (kind, audience) = match &c.audience {
        ir::Audience::Bucket(id) => ("bucket", id),
        ir::Audience::List(id) => ("list", id),
    };
    let (send_at, local, zone) = match &c.send_at {
        None => (None, None, None),
        Some(ir::SendAt::Instant(secs)) => (Some(rfc3339(*secs)), None, None),
        Some(ir::SendAt::Local { local, zone }) => (None, Some(local.clone()), Some(zone.clone())),
    };
    json!({
        "id": c.id,
        "name": c.name,
        "audience_kind": kind,
        "audience_id": audience,
        "template": c.template,
        "send_at": send_at,
        "send_at_local": local,
        "zone_path": zone,
    })
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod campaign_tests {
    use super::rfc3339;
    use crate::test_suite::epoch_seconds;

    #[test]
    fn rfc3339_inverts_epoch_seconds() {
        for (y, mo, d, h, mi, s) in [
            (1970, 1, 1, 0, 0, 0),
            (2027, 3, 1, 9, 0, 0),
            (2028, 2, 29, 23, 59, 59),
            (2100, 12, 31, 12, 30, 5),
        ] {
            let secs = epoch_seconds(y, mo, d, h, mi, s);
            assert_eq!(
                rfc3339(secs),
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
            );
        }
    }
}
