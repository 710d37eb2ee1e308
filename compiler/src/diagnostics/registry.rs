//! The registry of diagnostic codes: every code hogsend can emit, its title and the long
//! explanation `hogsend explain CODE` prints.
//!
//! Codes are stable: once released, a code keeps its meaning forever. A retired code is
//! never reused. Ranges: `E01xx` parse, `E02xx` names, `E03xx` semantics, `E04xx`
//! configuration, `E05xx` templates, `E06xx` test results (`hogsend test`), `W01xx` warnings. Titles are short, lowercase, with no trailing period.

use super::Severity;

macro_rules! registry {
    ($( $(#[$doc:meta])* $code:ident => $title:literal, $explanation:literal; )*) => {
        /// A stable diagnostic code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[$doc])* $code, )*
        }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[ $( Code::$code, )* ];

            /// The code as written: `E0301`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$code => stringify!($code), )* }
            }

            /// The short title: lowercase, no trailing period.
            pub fn title(self) -> &'static str {
                match self { $( Code::$code => $title, )* }
            }

            /// The long explanation with an example (markdown-ish text).
            pub fn explanation(self) -> &'static str {
                match self { $( Code::$code => $explanation, )* }
            }
        }
    };
}

impl Code {
    /// `Error` for `E…` codes, `Warning` for `W…` codes.
    pub fn severity(self) -> Severity {
        if self.as_str().starts_with('W') {
            Severity::Warning
        } else {
            Severity::Error
        }
    }

    /// Looks a code up by name, case-insensitively (`e0301` works).
    pub fn parse(name: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

registry! {
    // ---- E01xx: parse errors (one per `hogsend_dsl::ParseErrorKind`) ----
    /// The parser found a token it did not expect here.
    E0101 => "unexpected token",
"The parser expected one thing and found another. The message says what
it expected; the label points at what it found.

Example:

    bucket dormant {
      criteria did app_opened within
    }

`within` must be followed by a duration such as `7d`.";

    /// A string literal runs to the end of the line or file.
    E0102 => "unterminated string",
"A string literal was opened with `\"` but never closed. Strings cannot
span lines; write `\\n` for a line break.

Example:

    name \"Went dormant

Close the string: `name \"Went dormant\"`.";

    /// An unknown `\x` escape in a string.
    E0103 => "invalid escape",
"Strings accept the escapes `\\\"`, `\\\\`, `\\n`, `\\t` and `\\u{…}` (a Unicode scalar
value in hex, e.g. `\\u{1F600}`). Anything else after a backslash is an error.

Example:

    contact.name == \"C:\\temp\"

Write `\"C:\\\\temp\"` to get a backslash.";

    /// A malformed number literal.
    E0104 => "invalid number",
"Numbers are written `42`, `-3` or `2.5`: an optional minus sign, digits, and
an optional fraction. Exponents, hex, leading `+`, and numbers too large for a
64-bit integer (where an integer is required, as in `count … >= n`) are errors.

Example:

    count purchase.completed >= 1e3

Write `count purchase.completed >= 1000`.";

    /// A malformed duration literal.
    E0105 => "invalid duration",
"Durations are an integer and a unit (`s`, `m`, `h`, `d`, `w`), optionally
chained largest unit first with no spaces: `30s`, `15m`, `2h`, `7d`, `2w`,
`1d12h`. A unit may appear once.

Example:

    within 12h1d

Write `within 1d12h`.";

    /// An identifier that breaks the identifier rules.
    E0106 => "invalid identifier",
"Ids of buckets, journeys, templates and labels are lowercase ASCII letters,
digits and `_`, start with a letter, and are at most 48 characters long.

Example:

    bucket WentDormant { … }

Write `bucket went_dormant { … }`; use `name \"Went dormant\"` for display.";

    /// A `(`, `[` or `{` without its closing partner.
    E0107 => "unclosed delimiter",
"A bracket was opened and the file (or the definition) ended before it was
closed. The secondary label shows where it was opened.

Example:

    bucket dormant {
      criteria did app_opened
    // missing `}`";

    /// Conditions or blocks nested deeper than the parser allows.
    E0108 => "nesting too deep",
"Conditions and blocks may nest only so deep (the limit protects the compiler
and the generated SQL). Flatten the condition with `all { … }` / `any { … }`,
or split a journey into several with `start`.";

    /// A time of day that is not `HH:MM` on a 24-hour clock.
    E0109 => "invalid time of day",
"`wait until` takes a local time written `HH:MM` with a 24-hour clock,
`00:00` to `23:59`.

Example:

    wait until 9am

Write `wait until 09:00`.";

    /// A character that cannot start any token.
    E0110 => "unexpected character",
"The character cannot begin any token of the language. Event names with
unusual characters must be quoted: `did \"$pageview\"`.

Example:

    criteria did $pageview

Write `criteria did \"$pageview\"`.";

    /// A campaign `send_at` that is neither an RFC 3339 instant nor a local time.
    E0111 => "invalid send_at",
"A campaign's `send_at` is either an RFC 3339 instant with its offset
(`2027-03-01T09:00:00Z`, `2027-03-01T09:00:00+01:00`), or a date and time of
day followed by `in contact.PROPERTY`, the contact property naming each
recipient's IANA zone (`2027-03-01 09:00 in contact.timezone`). A date and time
with neither an offset nor a zone is ambiguous and refused.

Example:

    campaign spring_launch {
      audience list product_updates
      template spring_launch
      send_at  2027-03-01 09:00
    }

Write `send_at 2027-03-01 09:00 in contact.timezone` or
`send_at 2027-03-01T09:00:00Z`.";

    /// A test instant that is not a date (and time) or a `+D` step.
    E0150 => "invalid instant",
"An `at` in a test block takes a UTC date, optionally with a time of day
(`2027-01-04`, `2027-01-04 10:00`, `2027-01-04 10:00:30`), or a step after
the previous instant (`+8d`). The date must exist and be 1970 or later.

Example:

    at 2027-13-01 { u1 did app_opened }

There is no month 13: write `at 2028-01-01`.";

    // ---- E02xx: names ----
    /// Two buckets (or two journeys) with the same id.
    E0201 => "duplicate definition",
"Bucket ids are unique across the whole project, and so are journey ids (a
bucket and a journey may share an id). The primary label is the second
definition; the secondary label shows the first.

Example:

    // buckets/a.hog
    bucket dormant { … }
    // buckets/b.hog
    bucket dormant { … }

Rename one of them.";

    /// A reference to a bucket that does not exist.
    E0202 => "unknown bucket",
"A journey trigger names a bucket that no `.hog` file defines.

Example:

    journey winback {
      trigger enter went_dormnat
      …
    }

Check the spelling against the bucket's id (`bucket went_dormant { … }`).";

    /// A reference to a journey that does not exist.
    E0203 => "unknown journey",
"A `start` step names a journey that no `.hog` file defines.

Example:

    start tips_serie

Check the spelling against `journey tips_series { … }`.";

    /// A reference to a template that does not exist.
    E0204 => "unknown template",
"`send`, `opened` and `clicked` name a template: a file `templates/<id>.html`
or `templates/<id>.txt` in the project. None exists for this id.

Example:

    send welcom

Create `templates/welcom.html` or fix the id.";

    /// `trigger dwell bucket.label` with a label the bucket does not declare.
    E0205 => "unknown dwell label",
"A `trigger dwell B.label` names a dwell timer that bucket `B` does not
declare. Dwell timers come from the bucket's `on dwell` reactions; their label
is `after_<D>` / `every_<D>` (the duration as written) unless the reaction
says `as name`.

Example:

    bucket dormant { … on dwell after 3d { send nudge } }
    journey j { trigger dwell dormant.after_2d … }

Use `dormant.after_3d`.";

    /// Two dwell reactions of one bucket with the same label.
    E0206 => "duplicate dwell label",
"Each `on dwell` reaction of a bucket declares a dwell timer with a label, and
labels are unique within the bucket. Two reactions with the same duration get
the same default label.

Example:

    on dwell after 3d { send a }
    on dwell after 3d { send b }

Merge the two bodies, or name one: `on dwell after 3d as second_nudge { … }`.";

    /// A bucket field or journey header given twice.
    E0207 => "duplicate field",
"Each field of a bucket (`name`, `criteria`, `entry`, …) and each journey header
(`trigger`, `entry`, `exit when`, …) may appear once.

Example:

    bucket b {
      criteria did a
      criteria did b
    }

Combine them: `criteria did a and did b`.";

    /// A template `category` that is neither a declared list nor `transactional`.
    E0208 => "unknown list",
"A template's front matter names its `category`: the list whose subscribers
may receive it, or `transactional` (receipts, password resets: sent whatever
the contact's subscriptions, never to a suppressed address). The category
must be a list declared in a `.hog` file.

Example:

    ---
    subject: Tips for your first week
    category: onboardng
    ---

Declare `list onboarding { … }` or fix the spelling.";

    /// A test names a contact it does not declare.
    E0250 => "unknown contact",
"Every contact a test uses is declared at the top of the test with
`contact NAME`, optionally with its email and properties.

Example:

    test \"t\" {
      at 2027-01-04 { u1 did app_opened }
    }

Add `contact u1` before the first `at`.";

    /// A test declares the same contact twice.
    E0251 => "duplicate contact",
"A test declares each contact once: the declaration creates it.

Example:

    contact u1 { plan: \"pro\" }
    contact u1 { email: \"u1@example.com\" }

Merge them: `contact u1 { email: \"u1@example.com\", plan: \"pro\" }`.";

    /// Two tests with the same name.
    E0252 => "duplicate test name",
"Test names are unique across the project, so a failure (and `--filter`)
names exactly one test.

Example:

    test \"dormant\" { … }
    test \"dormant\" { … }

Rename one of them.";

    /// A test names a list no `list` block declares.
    E0253 => "unknown list in a test",
"The lists a test subscribes a contact to, unsubscribes it from, or expects a
subscription state or skip reason for must be declared with a `list` block,
so a typo cannot make a test pass by testing a list nothing sends to. Write
`*` in an action (`all` in an expectation) for the switch over every list.

Example:

    list weekly { name \"Weekly digest\" }
    test \"opt out\" {
      contact u1
      at 2027-01-04 { u1 unsubscribe weeky }
    }

Fix the spelling: `u1 unsubscribe weekly`.";


    // ---- E03xx: semantics ----
    /// A bucket whose criteria hold for a contact with no properties and no events.
    E0301 => "this bucket would contain every contact",
"A bucket's criteria must be false for the empty contact: one with no
properties and no events. Otherwise every contact ever seen (and every new
one, before it does anything) would be a member, which is almost never what
was meant and is expensive to maintain. Criteria made only of negations have
this problem: `not did app_opened within 7d` is true for someone who never
opened the app at all.

Example:

    bucket engagement {
      criteria not did app_opened within 7d
    }

Add a positive condition, so the bucket means \"used the app, but not this
week\":

    criteria did app_opened and not did app_opened within 7d";

    /// A bucket without `criteria` or a journey without `trigger`.
    E0302 => "missing required field",
"Every bucket needs a `criteria` and every journey needs a `trigger`.

Example:

    journey onboarding {
      send welcome
    }

Add `trigger event user.signed_up` (or `trigger enter BUCKET`, …).";

    /// A zero or negative duration.
    E0303 => "duration must be positive",
"Durations measure windows, waits and dwell times; zero and negative ones
have no meaning.

Example:

    wait 0s

Remove the step, or wait a positive time.";

    /// A duration longer than hogsend supports.
    E0304 => "duration too long",
"Durations are limited to 100 years (36500d, 5214w), which keeps all
timestamp arithmetic in the database well inside its range.

Example:

    within 99999w";

    /// `min_dwell` greater than `max_dwell`.
    E0305 => "min_dwell is longer than max_dwell",
"`min_dwell` keeps a member in the bucket at least that long; `max_dwell`
removes it after that long. A floor above the ceiling cannot hold.

Example:

    min_dwell 7d
    max_dwell 1d";

    /// A reserved (`bucket:` / `hogsend:`) event name where it is not allowed.
    E0306 => "reserved event name",
"Event names starting with `bucket:` or `hogsend:` are recorded by hogsend
itself (`bucket:entered:<id>`, `bucket:left:<id>`, `bucket:dwell:<id>:<label>`).
A bucket's criteria may not use them (buckets would depend on each other's
transitions) and `emit` may not record them. Journeys react to them with
`trigger enter|leave|dwell …` or `trigger event \"bucket:…\"`.

Example:

    criteria did \"bucket:entered:trial\"

Use a journey: `trigger enter trial`.";

    /// `since entry` where there is no entry.
    E0307 => "`since entry` outside a journey",
"`since entry` counts events since the journey run started. A bucket's
criteria have no run, so there is no entry to count from. Use `within D`.
Journey conditions and bucket reaction bodies (which are inline journeys,
entered at the transition) may use it.

Example:

    criteria did purchase since entry";

    /// A `contact.` path inside an event filter.
    E0308 => "contact property in an event filter",
"A `where ( … )` filter tests the properties of one event, written
`event.<key>`. Contact properties are tested outside the filter.

Example:

    did purchase where (contact.plan == \"pro\")

Write `did purchase and contact.plan == \"pro\"`.";

    /// An `event.` path outside an event filter.
    E0309 => "event property outside an event filter",
"`event.<key>` only has a meaning inside the `where ( … )` filter of an event
atom or event trigger, where it is the event being tested.

Example:

    criteria event.amount > 100

Write `criteria did purchase where (event.amount > 100)`.";

    /// `did` / `count` / `opened` / `clicked` inside an event filter.
    E0310 => "event condition inside an event filter",
"An event filter tests one event's properties; it cannot ask about other
events or messages.

Example:

    did purchase where (did refund)

Write `did purchase and did refund`.";

    /// Journeys that start each other in a cycle.
    E0311 => "journeys start each other in a cycle",
"A `start` step enrols the contact in another journey. If journey `a` starts
`b` and `b` starts `a`, every run would start another forever. The message
shows the cycle; the labels show each `start` step in it.

Example:

    journey a { … start b }
    journey b { … start a }";

    /// A journey header written after a step.
    E0312 => "journey header after a step",
"Journey headers (`name`, `description`, `trigger`, `entry`, `exit when`)
describe the whole journey and come before its first step. A header after a
step would read as if it applied from that point on, which it would not.

Example:

    journey j {
      trigger event signed_up
      send welcome
      exit when did deleted
    }

Move `exit when` above `send welcome`.";

    /// A `trigger.` path where there is no triggering event.
    E0313 => "`trigger.` property outside a journey condition",
"`trigger.<key>` reads a property of the event that started a journey run.
It may be used in a journey's `exit when`, `wait until` and `if` conditions
(and in bucket reaction bodies, where it is always missing: a transition is
not an event with properties). A bucket's criteria have no triggering event;
an event filter tests its own event, written `event.<key>`; the zone of a
time-of-day wait is read from a contact property.

Example:

    bucket big_spenders { criteria trigger.total > 100 }

Write `criteria did order.completed where (event.total > 100)`.";

    /// A bucket campaign whose template is `transactional`.
    E0314 => "transactional template in a bucket campaign",
"A bucket campaign's messages have its template's `category`. A `transactional`
template is sent whatever the contact unsubscribed from, so a broadcast to a
bucket with one would reach every member who unsubscribed from everything.
Transactional mail answers one contact's own action (a receipt, a password
reset): send it from a journey or a reaction, not as a broadcast.

Example:

    campaign price_change {
      audience bucket paying
      template receipt
    }

where `templates/receipt.html` says `category: transactional`. Give the
template a list as its `category`, or send the campaign to a list
(`audience list product_updates`): its messages then belong to that list.";

    /// A test's instants are out of order, or its first instant is a step.
    E0350 => "instants out of order",
"The `at` blocks of a test run in order and each is later than the one
before it; the first one is an absolute date, since a step `+D` counts from
the previous instant.

Example:

    at 2027-01-10 { u1 did app_opened }
    at 2027-01-04 { expect u1 in active_users }

Swap them, or write the second as `at +1d`.";

    // ---- E04xx: configuration ----
    /// `hogsend.toml` is not valid TOML.
    E0401 => "invalid hogsend.toml",
"`hogsend.toml` could not be read as TOML.

Example:

    [project
    name = \"acme\"";

    /// An unknown key in `hogsend.toml`.
    E0402 => "unknown configuration key",
"`hogsend.toml` has a key hogsend does not know; usually a typo. The known
sections and keys are:

    [project]  name, timezone
    [database] url, schema
    [schedule] tick_every, realtime_flush_ms, realtime_max_backlog_age_ms
    [api]      listen, max_body_bytes, rate_limit_per_second, rate_limit_burst
    [email]    provider, from, public_url, unsubscribe_mailto, host, port, tls,
               username, smtp_url, http_url, rate, max_per_contact
    [journeys] trigger_max_age

Example:

    [databse]
    url = \"postgres://…\"";

    /// A value of the wrong type or shape in `hogsend.toml`.
    E0403 => "invalid configuration value",
"A key in `hogsend.toml` has a value of the wrong type or form: `tick_every`
and `trigger_max_age` are duration strings like `\"30s\"`, `listen` a socket
address like `\"127.0.0.1:8080\"`, `provider` one of `\"log\"`, `\"smtp\"`,
`\"http\"`, `tls` one of `\"starttls\"`, `\"tls\"`, `\"none\"`, `rate` like
`\"50/s\"`, the numbers are non-negative integers.

Example:

    [schedule]
    tick_every = 30";

    /// A database schema name that is not a plain SQL identifier.
    E0404 => "invalid schema name",
"`[database] schema` names the Postgres schema hogsend owns. It must be a plain
lowercase identifier, `[a-z_][a-z0-9_]*`, at most 63 characters, so that it
never needs quoting in generated SQL.

Example:

    [database]
    schema = \"Hog-Send\"

Write `schema = \"hogsend\"`.";

    // ---- E05xx: templates ----
    /// A template's front matter is missing, unclosed or has a bad line or key.
    E0501 => "invalid template front matter",
"Every template starts with front matter between two `---` lines: `key: value`
lines with `subject` (required, Jinja allowed), `category` (required: a list id
or `transactional`), and optionally `from`, `reply_to`, `preheader`. A value
may be wrapped in double quotes. Unknown or repeated keys are errors.

Example:

    ---
    subjet: Welcome
    category: onboarding
    ---

Write `subject: Welcome`.";

    /// Jinja could not parse a template's body or subject.
    E0502 => "template syntax error",
"Template bodies and subjects use Jinja syntax (`{{ … }}`, `{% if %}`,
`{% for %}`, filters). A tag that is not closed, an unknown tag or a malformed
expression is reported at its place in the template file.

Example:

    {% if contact.plan == \"pro\" %}<p>Thanks!</p>

Close the block with `{% endif %}`.";

    /// A template uses a top-level variable that does not exist.
    E0503 => "unknown template variable",
"A template may use `contact` (properties, `email`, `key`), `event`, `journey`,
`campaign`, `unsubscribe_url` and `preferences_url`, and the variables it sets
itself. Anything else would always render empty, which is almost always a typo.

Example:

    <p>Hi {{ user.first_name }}</p>

Write `{{ contact.first_name }}`.";

    // ---- E06xx: test results (reported by `hogsend test`, not by the checker) ----
    /// A test's expectation did not hold.
    E0601 => "expectation failed",
"`hogsend test` ran the test on a fresh database, ticked at each instant, and
after the tick at this expectation's instant the expectation did not hold.
The label says what held instead; for bucket membership the notes carry the
bucket's explanation (`hogsend why`) at that instant.

Example:

    at +8d { expect u1 in went_dormant }

fails when `u1` opened the app during those 8 days.";

    // ---- W01xx: warnings ----
    /// A `count` atom whose value does not depend on the count.
    W0101 => "condition is always true or always false",
"A count is never negative, so some `count` comparisons have the same value
for every contact: `count E >= 0` is always true, `count E < 0` always false.

Example:

    criteria count app_opened >= 0 and contact.plan == \"pro\"

Did you mean `>= 1` (the same as `did app_opened`)?";

    /// An ordering comparison against a non-number.
    W0102 => "comparison can never match",
"`>`, `>=`, `<` and `<=` hold only when both sides are numbers. Against a
string or a boolean literal they are false for every contact.

Example:

    contact.plan > \"basic\"

Use `==`, `!=`, `in [ … ]` or `contains` for text.";

    /// A step that can never run.
    W0103 => "unreachable step",
"Steps after an `exit` (or after an `if` whose every branch exits) never run.

Example:

    exit
    send goodbye";

    /// A journey without any `send`, `start` or `emit`.
    W0104 => "journey does nothing",
"The journey never sends a message, starts another journey or records an
event, so its runs have no effect anyone can see.

Example:

    journey j {
      trigger event signed_up
      wait 1d
    }";

    /// A reaction that no transition can fire.
    W0105 => "reaction can never fire",
"`on leave because max_dwell` fires when a member is removed by the bucket's
`max_dwell`. Without a `max_dwell` that never happens.

Example:

    bucket b {
      criteria did a
      on leave because max_dwell { send c }
    }

Add `max_dwell D`, or react to `on leave`.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_well_formed_and_sorted() {
        let mut previous = "";
        for code in Code::ALL {
            let s = code.as_str();
            assert!(s.len() == 5 && (s.starts_with('E') || s.starts_with('W')));
            assert!(s > previous || s.starts_with('W'), "{s} out of order");
            previous = s;
            let title = code.title();
            assert!(!title.ends_with('.'), "{s}: title ends with a period");
            assert!(
                !title.chars().next().unwrap().is_uppercase(),
                "{s}: title starts uppercase"
            );
            assert!(!code.explanation().is_empty());
            assert_eq!(Code::parse(&s.to_lowercase()), Some(*code));
        }
    }
}
