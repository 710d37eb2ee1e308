//! The SQL plan → files: function bodies laid out by askama templates.
//!
//! Output is deterministic: the same program and schema give byte-identical files on every
//! run and machine (sorted buckets, no timestamps, no absolute paths). `emit` cannot fail on
//! a plan; a template error would be an internal compiler error and panics in tests.

use crate::plan::journey::JourneyPlan;
use crate::plan::sql::{literal, Select};
use crate::plan::{BucketPlan, ProjectPlan};
use askama::Template;

/// The hogsend version written into every generated header.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use hogsend_schema::{apply_order, GeneratedFile};

#[derive(Template)]
#[template(path = "project/bucket.sql", escape = "none")]
struct BucketFile<'a> {
    version: &'a str,
    s: &'a str,
    id: &'a str,
    origin: String,
    criteria: &'a str,
    fingerprint: &'a str,
    /// The dollar-quote tag of the function bodies (one that the bodies do not contain).
    q: String,
    match_candidates: String,
    match_all: String,
    candidates: String,
    changed: String,
    why: String,
}

#[derive(Template)]
#[template(path = "project/tick.sql", escape = "none")]
struct TickFile<'a> {
    version: &'a str,
    s: &'a str,
    lock_key: i64,
    enabled: Vec<&'a str>,
    /// `[journeys] trigger_max_age` as an interval literal.
    max_age: String,
    /// The project's time zone, quoted.
    timezone: String,
}

#[derive(Template)]
#[template(path = "project/journey.sql", escape = "none")]
struct JourneyFile<'a> {
    version: &'a str,
    s: &'a str,
    kind: &'a str,
    id: &'a str,
    func: &'a str,
    source: &'a str,
    trigger: &'a str,
    outline: Vec<String>,
    q: String,
    conditions: &'a [String],
    candidates: &'a [String],
}

#[derive(Template)]
#[template(path = "project/journeys.sql", escape = "none")]
struct JourneysFile<'a> {
    version: &'a str,
    s: &'a str,
    /// (quoted journey id, function stem) of the journeys with conditions.
    with_conditions: Vec<(String, &'a str)>,
    /// (quoted trigger event name, function stem) of every journey.
    all: Vec<(String, &'a str)>,
    /// `ARRAY[…]::text[]` of the event names the journeys' conditions read.
    condition_events: String,
}

#[derive(Template)]
#[template(path = "project/project.sql", escape = "none")]
struct ProjectFile<'a> {
    version: &'a str,
    s: &'a str,
    /// The dollar-quote tag of the cleanup block (one that no registry entry contains).
    q: String,
    registry: Vec<String>,
    journeys: Vec<String>,
    /// `ARRAY['j_x_conds', …]::text[]`: the journey functions to keep.
    journey_functions: String,
}

#[derive(Template)]
#[template(path = "project/messaging.sql", escape = "none")]
struct MessagingFile<'a> {
    version: &'a str,
    s: &'a str,
    lists: Vec<String>,
    templates: Vec<String>,
    campaigns: Vec<String>,
}

fn render(template: &impl Template) -> String {
    match template.render() {
        Ok(text) => text,
        // Templates are compiled in; their only inputs are strings and numbers.
        Err(err) => panic!("internal compiler error: template rendering failed: {err}"),
    }
}

/// A dollar-quote tag that occurs in none of `bodies`.
fn quote_tag(bodies: &[&str]) -> String {
    let mut n = 0usize;
    loop {
        let tag = if n == 0 {
            "$hs$".to_owned()
        } else {
            format!("$hs{n}$")
        };
        if bodies.iter().all(|b| !b.contains(&tag)) {
            return tag;
        }
        n += 1;
    }
}

fn bucket_file(plan: &ProjectPlan, bucket: &BucketPlan) -> GeneratedFile {
    let m = &bucket.matcher;
    // Statements inside the function bodies, their continuation lines indented to match
    // the template.
    let body = |select: &Select, indent| select.render(indent);
    let (match_candidates, match_all) = (body(&m.match_candidates, 2), body(&m.match_all, 2));
    let (candidates, changed) = (body(&m.candidates, 4), body(&m.changed, 4));
    let why = body(&m.why, 4);
    let q = quote_tag(&[&match_candidates, &match_all, &candidates, &changed, &why]);
    let file = BucketFile {
        version: VERSION,
        s: &plan.schema,
        id: &bucket.id,
        origin: format!("{}:{}", bucket.origin.file, bucket.origin.line),
        criteria: &bucket.criteria_text,
        fingerprint: &bucket.fingerprint,
        q,
        match_candidates,
        match_all,
        candidates,
        changed,
        why,
    };
    GeneratedFile {
        path: format!("buckets/{}.sql", bucket.id),
        contents: render(&file),
    }
}

fn journey_file(plan: &ProjectPlan, j: &JourneyPlan) -> GeneratedFile {
    let width = j.outline.iter().map(|(id, _)| id.len()).max().unwrap_or(0);
    let outline: Vec<String> = j
        .outline
        .iter()
        .map(|(id, text)| format!("{id:width$}  {}", one_line(text)))
        .collect();
    let bodies: Vec<&str> = j
        .conditions
        .iter()
        .chain(&j.candidates)
        .map(String::as_str)
        .collect();
    let kind = j
        .registry
        .get("kind")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("journey");
    let file = JourneyFile {
        version: VERSION,
        s: &plan.schema,
        kind,
        id: &j.id,
        func: &j.func,
        source: &j.source,
        trigger: &j.trigger_text,
        outline,
        q: quote_tag(&bodies),
        conditions: &j.conditions,
        candidates: &j.candidates,
    };
    GeneratedFile {
        path: format!("journeys/{}.sql", j.id),
        contents: render(&file),
    }
}

/// Text for a `--` comment line: line breaks shown as spaces.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Every generated file of a planned project, sorted by path.
pub fn emit(plan: &ProjectPlan) -> Vec<GeneratedFile> {
    let mut files: Vec<GeneratedFile> = plan.buckets.iter().map(|b| bucket_file(plan, b)).collect();
    let tick = TickFile {
        version: VERSION,
        s: &plan.schema,
        lock_key: plan.lock_key,
        enabled: plan
            .buckets
            .iter()
            .filter(|b| b.enabled)
            .map(|b| b.id.as_str())
            .collect(),
        max_age: format!(
            "make_interval(secs => {})",
            plan.trigger_max_age
                .min(u64::try_from(crate::plan::matcher::MAX_SECONDS).unwrap_or(u64::MAX))
        ),
        timezone: literal(&plan.timezone),
    };
    files.extend(plan.journeys.iter().map(|j| journey_file(plan, j)));
    files.push(GeneratedFile {
        path: "journeys.sql".to_owned(),
        contents: render(&JourneysFile {
            version: VERSION,
            s: &plan.schema,
            with_conditions: plan
                .journeys
                .iter()
                .filter(|j| !j.conditions.is_empty())
                .map(|j| (literal(&j.id), j.func.as_str()))
                .collect(),
            all: plan
                .journeys
                .iter()
                .flat_map(|j| {
                    j.triggers
                        .iter()
                        .map(move |t| (literal(t), j.func.as_str()))
                })
                .collect(),
            condition_events: {
                let mut names: Vec<&str> = plan
                    .journeys
                    .iter()
                    .flat_map(|j| j.condition_events.iter().map(String::as_str))
                    .collect();
                names.sort_unstable();
                names.dedup();
                let names: Vec<String> = names.into_iter().map(literal).collect();
                format!("ARRAY[{}]::text[]", names.join(", "))
            },
        }),
    });
    files.push(GeneratedFile {
        path: "tick.sql".to_owned(),
        contents: render(&tick),
    });
    let registry = match &plan.registry {
        serde_json::Value::Array(entries) => entries
            .iter()
            .map(|e| format!("CAST({} AS jsonb)", literal(&e.to_string())))
            .collect(),
        _ => Vec::new(),
    };
    let journeys: Vec<String> = plan
        .journeys
        .iter()
        .map(|j| format!("CAST({} AS jsonb)", literal(&j.registry.to_string())))
        .collect();
    let functions: Vec<String> = plan
        .journeys
        .iter()
        .flat_map(|j| [format!("{}_conds", j.func), format!("{}_cands", j.func)])
        .map(|f| literal(&f))
        .collect();
    let journey_functions = format!("ARRAY[{}]::text[]", functions.join(", "));
    let bodies: Vec<&str> = registry
        .iter()
        .chain(&journeys)
        .map(String::as_str)
        .chain([journey_functions.as_str()])
        .collect();
    let q = quote_tag(&bodies);
    files.push(GeneratedFile {
        path: "project.sql".to_owned(),
        contents: render(&ProjectFile {
            version: VERSION,
            s: &plan.schema,
            q,
            registry,
            journeys,
            journey_functions,
        }),
    });
    let as_jsonb = |values: &[serde_json::Value]| -> Vec<String> {
        values
            .iter()
            .map(|e| format!("CAST({} AS jsonb)", literal(&e.to_string())))
            .collect()
    };
    files.push(GeneratedFile {
        path: "messaging.sql".to_owned(),
        contents: render(&MessagingFile {
            version: VERSION,
            s: &plan.schema,
            lists: as_jsonb(&plan.lists),
            templates: as_jsonb(&plan.templates),
            campaigns: as_jsonb(&plan.campaigns),
        }),
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_tags_avoid_body_content() {
        assert_eq!(quote_tag(&["select 1"]), "$hs$");
        assert_eq!(quote_tag(&["select '$hs$'"]), "$hs1$");
        assert_eq!(quote_tag(&["'$hs$'", "'$hs1$'"]), "$hs2$");
    }
}
