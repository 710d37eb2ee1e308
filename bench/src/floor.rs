//! The read floor: for each bucket, the cheapest queries that must read the data its
//! criteria depend on, derived from the checked criteria.
//!
//! - its event names over the widest window (all time when an atom is unwindowed): a
//!   `count(*)` the planner answers with an index-only scan of `(event, occurred_at)`;
//! - when an atom has an event filter, the properties of those events must be read too: a
//!   `count(properties)` over the filtered names and their widest window (heap reads);
//! - when the criteria read contact properties, one pass over `contacts.properties`;
//! - for `opened` / `clicked`, the templates' rows of `messages`.
//!
//! Nothing is written and nothing is evaluated: any correct evaluation must at least read
//! this. The floor is summed over the 20 buckets (one read per bucket, as each bucket is
//! evaluated on its own).

use anyhow::Result;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hogsend_compiler::ir::{Bucket, Pred, Window};
use sqlx::PgConnection;

use crate::measure::{Samples, Stopwatch};

/// What one bucket's criteria read.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Reads {
    /// Event names, and the widest window in seconds (`None`: all time).
    pub events: Option<(Vec<String>, Option<i64>)>,
    /// Names of filtered atoms, and their widest window.
    pub filtered: Option<(Vec<String>, Option<i64>)>,
    pub contact_properties: bool,
    /// Templates of `opened` / `clicked` atoms.
    pub templates: Vec<String>,
}

#[derive(Default)]
struct Collect {
    names: Vec<String>,
    widest: Option<i64>,
    ever: bool,
    filtered_names: Vec<String>,
    filtered_widest: Option<i64>,
    filtered_ever: bool,
    props: bool,
    templates: Vec<String>,
}

fn collect(pred: &Pred, c: &mut Collect) {
    match pred {
        Pred::And(children) | Pred::Or(children) => children.iter().for_each(|p| collect(p, c)),
        Pred::Not(inner) => collect(inner, c),
        Pred::Prop(_) => c.props = true,
        Pred::Trigger(_) => {}
        Pred::Opened(t) | Pred::Clicked(t) => c.templates.push(t.clone()),
        Pred::Event(atom) => {
            c.names.push(atom.event.clone());
            let within = match atom.window {
                Window::Within(s) => Some(s),
                Window::Ever | Window::SinceEntry => None,
            };
            match within {
                Some(s) => c.widest = Some(c.widest.unwrap_or(0).max(s)),
                None => c.ever = true,
            }
            if atom.filter.is_some() {
                c.filtered_names.push(atom.event.clone());
                match within {
                    Some(s) => c.filtered_widest = Some(c.filtered_widest.unwrap_or(0).max(s)),
                    None => c.filtered_ever = true,
                }
            }
        }
    }
}

fn names_window(
    mut names: Vec<String>,
    widest: Option<i64>,
    ever: bool,
) -> Option<(Vec<String>, Option<i64>)> {
    names.sort();
    names.dedup();
    (!names.is_empty()).then_some((names, if ever { None } else { widest }))
}

/// What `bucket`'s criteria read.
pub(crate) fn reads(bucket: &Bucket) -> Reads {
    let mut c = Collect::default();
    collect(&bucket.criteria, &mut c);
    c.templates.sort();
    c.templates.dedup();
    Reads {
        events: names_window(c.names, c.widest, c.ever),
        filtered: names_window(c.filtered_names, c.filtered_widest, c.filtered_ever),
        contact_properties: c.props,
        templates: c.templates,
    }
}

fn lower_bound(now: DateTime<Utc>, window: Option<i64>) -> DateTime<Utc> {
    match window {
        Some(s) => now - Duration::seconds(s),
        // Before any event the dataset can hold (the window is all time).
        None => Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0).unwrap(),
    }
}

/// Runs one bucket's floor queries at `now`.
async fn read_bucket(conn: &mut PgConnection, r: &Reads, now: DateTime<Utc>) -> Result<()> {
    if let Some((names, window)) = &r.events {
        sqlx::query(
            "select count(*) from hogsend.events
              where event = any($1) and occurred_at <= $2 and occurred_at >= $3",
        )
        .bind(names)
        .bind(now)
        .bind(lower_bound(now, *window))
        .execute(&mut *conn)
        .await?;
    }
    if let Some((names, window)) = &r.filtered {
        sqlx::query(
            "select count(properties) from hogsend.events
              where event = any($1) and occurred_at <= $2 and occurred_at >= $3",
        )
        .bind(names)
        .bind(now)
        .bind(lower_bound(now, *window))
        .execute(&mut *conn)
        .await?;
    }
    if r.contact_properties {
        sqlx::query("select count(properties) from hogsend.contacts where deleted_at is null")
            .execute(&mut *conn)
            .await?;
    }
    if !r.templates.is_empty() {
        sqlx::query(
            "select count(opened_at), count(clicked_at) from hogsend.messages where template = any($1)",
        )
        .bind(&r.templates)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The floor of every bucket, summed: `runs` measured repetitions after one warm-up.
pub(crate) async fn measure(
    conn: &mut PgConnection,
    buckets: &[Bucket],
    runs: usize,
    now: DateTime<Utc>,
) -> Result<Samples> {
    let plans: Vec<Reads> = buckets.iter().map(reads).collect();
    let mut samples = Samples::default();
    for run in 0..=runs.max(1) {
        let watch = Stopwatch::start();
        for r in &plans {
            read_bucket(conn, r, now).await?;
        }
        if run > 0 {
            samples.push_lap(watch.lap());
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{compile, standard_source};

    #[test]
    fn reads_follow_the_criteria() {
        let program = compile(&standard_source()).expect("compiles").program;
        let by_id = |id: &str| reads(program.buckets.iter().find(|b| b.id == id).expect("bucket"));
        let dormant = by_id("went_dormant");
        assert_eq!(dormant.events, Some((vec!["app_opened".into()], None)));
        assert!(!dormant.contact_properties);
        let spenders = by_id("big_spenders");
        assert_eq!(
            spenders.filtered,
            Some((vec!["checkout_completed".into()], Some(30 * 86_400)))
        );
        let readers = by_id("welcome_readers");
        assert_eq!(readers.templates, vec!["welcome".to_owned()]);
        assert!(readers.contact_properties && readers.events.is_none());
    }
}
