//! New events for the incremental phases, generated deterministically in the process and
//! written with COPY (the way a bulk loader adds events): the same names, skew and
//! properties as the loaded dataset (`dataset.sql`).

use anyhow::Result;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use sqlx::PgConnection;

/// A small deterministic generator (SplitMix64): the same seed gives the same rows on every
/// machine.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `[lo, hi]`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// The event names and their cumulative shares (as in `dataset.sql`).
const NAMES: &[(&str, f64)] = &[
    ("app_opened", 0.28),
    ("$pageview", 0.43),
    ("feature_used", 0.53),
    ("project_created", 0.58),
    ("checkout_started", 0.62),
    ("checkout_completed", 0.65),
    ("payment_failed", 0.67),
    ("payment_succeeded", 0.70),
    ("invite_sent", 0.73),
    ("email_opened", 0.77),
    ("search", 0.81),
    ("export", 0.83),
    ("settings_changed", 0.85),
    ("support_ticket", 0.86),
    ("trial_started", 0.87),
    ("subscription_started", 0.88),
    ("user.signed_up", 0.90),
    ("report_viewed", 0.94),
    ("comment_added", 0.97),
    ("file_uploaded", 1.0),
];

/// The key of contact number `i` of the dataset (`dataset.sql`: every tenth is anonymous).
pub(crate) fn contact_key(i: u64) -> String {
    if i % 10 == 0 {
        format!("anon-{i}")
    } else {
        format!("u{i}")
    }
}

/// Contact numbers `1..=contacts`, each kept with probability `share`, in order.
pub(crate) fn sample_contacts(contacts: u64, share: f64, seed: u64) -> Vec<u64> {
    let mut rng = Rng::new(seed);
    (1..=contacts).filter(|_| rng.unit() < share).collect()
}

fn event_name(rng: &mut Rng) -> &'static str {
    let x = rng.unit();
    NAMES
        .iter()
        .find(|(_, cum)| x < *cum)
        .map_or("file_uploaded", |(n, _)| *n)
}

/// The properties of an event named `name`, as JSON text.
fn event_properties(name: &str, rng: &mut Rng) -> String {
    let currencies = ["USD", "USD", "USD", "EUR", "EUR", "GBP"];
    match name {
        "$pageview" => {
            let paths = [
                "/pricing",
                "/pricing",
                "/docs",
                "/blog",
                "/app",
                "/app",
                "/app",
                "/changelog",
            ];
            format!(r#"{{"path": "{}"}}"#, rng.pick(&paths))
        }
        "checkout_started" | "checkout_completed" => format!(
            r#"{{"amount": {}, "currency": "{}"}}"#,
            rng.between(0, 499),
            rng.pick(&currencies)
        ),
        "payment_failed" => format!(
            r#"{{"amount": {}, "attempt": {}}}"#,
            rng.between(0, 499),
            rng.between(1, 3)
        ),
        "support_ticket" => format!(
            r#"{{"priority": "{}", "resolved": {}}}"#,
            rng.pick(&["low", "normal", "normal", "high", "urgent"]),
            rng.unit() < 0.5
        ),
        "feature_used" => format!(
            r#"{{"feature": "{}"}}"#,
            rng.pick(&["export", "search", "share", "comments"])
        ),
        _ => "{}".to_owned(),
    }
}

/// One generated event: the contact key, the name, the properties (JSON text) and the
/// instant (RFC 3339, milliseconds), used both as `occurred_at` and `received_at`.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub key: String,
    pub name: &'static str,
    pub properties: String,
    pub at: String,
}

/// COPY rows (text format) for a set of [`NewEvent`]s.
pub(crate) struct EventRows {
    pub text: String,
    pub rows: usize,
}

impl EventRows {
    /// The COPY text of `events` (`user_key, event, properties, occurred_at, received_at`).
    pub(crate) fn from_events(events: &[NewEvent]) -> EventRows {
        let mut text = String::new();
        for e in events {
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                e.key, e.name, e.properties, e.at, e.at
            ));
        }
        EventRows {
            text,
            rows: events.len(),
        }
    }
}

/// Events for each key in `keys`: `per_key` (min, max) events each, at instants uniformly
/// spread over `(from, to]`.
pub(crate) fn generate_events(
    keys: &[String],
    per_key: (u64, u64),
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    seed: u64,
) -> Vec<NewEvent> {
    let mut rng = Rng::new(seed);
    let span_ms = (to - from).num_milliseconds().max(1) as u64;
    let mut events = Vec::new();
    for key in keys {
        for _ in 0..rng.between(per_key.0, per_key.1) {
            let at = from + Duration::milliseconds(rng.between(1, span_ms) as i64);
            let name = event_name(&mut rng);
            let properties = event_properties(name, &mut rng);
            events.push(NewEvent {
                key: key.clone(),
                name,
                properties,
                at: at.to_rfc3339_opts(SecondsFormat::Millis, true),
            });
        }
    }
    events
}

/// [`generate_events`] as COPY rows.
pub(crate) fn events_for_keys(
    keys: &[String],
    per_key: (u64, u64),
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    seed: u64,
) -> EventRows {
    EventRows::from_events(&generate_events(keys, per_key, from, to, seed))
}

/// `count` events for contacts drawn uniformly from `1..=contacts`, of which 1% are for keys
/// no contact has yet (each creates a contact).
pub(crate) fn ingest_events(
    contacts: u64,
    count: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    seed: u64,
) -> Vec<NewEvent> {
    let mut rng = Rng::new(seed);
    let keys: Vec<String> = (0..count)
        .map(|j| {
            if rng.unit() < 0.01 {
                format!("new-{j}")
            } else {
                contact_key(rng.between(1, contacts.max(1)))
            }
        })
        .collect();
    generate_events(&keys, (1, 1), from, to, seed ^ 0x5EED)
}

/// [`ingest_events`] as COPY rows.
pub(crate) fn ingest_batch(
    contacts: u64,
    count: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    seed: u64,
) -> EventRows {
    EventRows::from_events(&ingest_events(contacts, count, from, to, seed))
}

/// COPYs `rows` into `hogsend.events` (the triggers queue the keys and create unknown
/// contacts, as for any bulk load). Returns the number of rows copied.
pub(crate) async fn copy_events(conn: &mut PgConnection, rows: &EventRows) -> Result<u64> {
    let mut copy = conn
        .copy_in_raw(
            "copy hogsend.events (user_key, event, properties, occurred_at, received_at) from stdin",
        )
        .await?;
    copy.send(rows.text.as_bytes()).await?;
    Ok(copy.finish().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_deterministic_and_inside_the_interval() {
        let from = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let to = from + Duration::seconds(30);
        let keys = vec![contact_key(1), contact_key(10)];
        let a = events_for_keys(&keys, (1, 4), from, to, 7);
        let b = events_for_keys(&keys, (1, 4), from, to, 7);
        assert_eq!(a.text, b.text);
        assert!(a.rows >= 2 && a.rows <= 8);
        for line in a.text.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 5);
            let at = DateTime::parse_from_rfc3339(fields[3]).unwrap();
            assert!(at > from && at <= to);
            serde_json::from_str::<serde_json::Value>(fields[2]).unwrap();
        }
        assert!(a.text.starts_with("u1\t") || a.text.contains("anon-10\t"));
    }

    #[test]
    fn samples_have_about_the_asked_share() {
        let picked = sample_contacts(100_000, 0.01, 1);
        assert!((900..1100).contains(&picked.len()), "{}", picked.len());
        assert_eq!(picked, sample_contacts(100_000, 0.01, 1));
    }
}
