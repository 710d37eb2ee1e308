//! hogsend mail: what the compiler and the daemon share about message templates.
//!
//! A template is `templates/ID.html` (and/or `templates/ID.txt`) with front matter between
//! `---` lines (docs/language.md#templates). This crate parses the front matter
//! ([`front_matter`]), checks a template's Jinja syntax and variables with spans in its
//! file ([`check`]), and renders it for one contact ([`render`]): subject, HTML (with the
//! preheader) and text (derived from the HTML when there is no `.txt`, [`text`]). The
//! compiler reports the checks as diagnostics and deploys [`DeployedTemplate`]s into the
//! database; the daemon reads them back and renders them at send time, so what is sent is
//! what was deployed. [`tracking`] rewrites the links of rendered HTML and adds the open
//! pixel (the daemon signs the URLs). It has no IO and no dependency on the compiler or the
//! runtime.

pub mod check;
pub mod front_matter;
pub mod render;
pub mod text;
pub mod tracking;

pub use check::{check_template, TemplatePart, TemplateProblem};
pub use front_matter::{FrontMatter, FrontMatterError};
pub use render::{render, Compiled, DeployedTemplate, RenderContext, RenderError, Rendered};

/// The top-level variables a template may use (docs/language.md#templates).
pub const VARIABLES: &[&str] = &[
    "contact",
    "event",
    "journey",
    "campaign",
    "unsubscribe_url",
    "preferences_url",
];

/// The category of messages that ignore list subscriptions (not suppressions).
pub const TRANSACTIONAL: &str = "transactional";
