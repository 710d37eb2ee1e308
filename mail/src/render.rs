//! Rendering a deployed template for one recipient: subject, HTML (with the preheader) and
//! text (the `.txt` part, or derived from the HTML).

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

use crate::text::html_to_text;

/// A template as `migrate` deploys it (the `templates` table, one JSON object per
/// template in the generated `messaging.sql`) and the daemon reads it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployedTemplate {
    /// The template id (`welcome`).
    pub id: String,
    /// The subject, a Jinja template.
    pub subject: String,
    /// A declared list id or `transactional`.
    pub category: String,
    /// `From:` override.
    pub from: Option<String>,
    /// `Reply-To:`.
    pub reply_to: Option<String>,
    /// Preview text.
    pub preheader: Option<String>,
    /// The HTML body (after the front matter), a Jinja template.
    pub html: Option<String>,
    /// The text body, a Jinja template; derived from the rendered HTML when absent.
    pub text: Option<String>,
}

/// What a template is rendered with (docs/language.md#templates).
#[derive(Debug, Clone, Default)]
pub struct RenderContext {
    /// The contact's properties (a JSON object; anything else counts as empty).
    pub properties: Value,
    /// The contact's email, when it has one.
    pub email: Option<String>,
    /// The contact's key.
    pub key: String,
    /// The triggering event's properties, when a run was started by one.
    pub event: Option<Value>,
    /// `{id, name}` of the journey sending it.
    pub journey: Option<Value>,
    /// The campaign sending it.
    pub campaign: Option<Value>,
    /// The one-list unsubscribe link (empty for transactional mail).
    pub unsubscribe_url: String,
    /// The preferences page link.
    pub preferences_url: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    /// The HTML part, when the template has one.
    pub html: Option<String>,
    /// The text part: the `.txt` template, or the HTML as text.
    pub text: String,
}

/// Rendering failed (a deployed template is checked at compile time, so this is rare: a
/// filter failing on a value, e.g. `{{ contact.n + 1 }}` with a string).
#[derive(Debug, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct RenderError {
    /// The template id.
    pub template: String,
    /// What went wrong.
    pub message: String,
}

/// The one Jinja environment: missing values (and attributes of missing values) render
/// empty; `.html` sources are HTML-escaped.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env
}

impl RenderContext {
    /// The Jinja context: `contact` = properties + `email` + `key`, and the rest. The links
    /// are marked safe: they are ours, and escaping would turn their `/` into entities.
    fn to_value(&self) -> minijinja::Value {
        let mut contact = match &self.properties {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        contact.insert(
            "email".into(),
            self.email.clone().map_or(Value::Null, Value::String),
        );
        contact.insert("key".into(), Value::String(self.key.clone()));
        let mut ctx: BTreeMap<&str, minijinja::Value> = BTreeMap::new();
        ctx.insert(
            "contact",
            minijinja::Value::from_serialize(Value::Object(contact)),
        );
        for (name, value) in [
            ("event", &self.event),
            ("journey", &self.journey),
            ("campaign", &self.campaign),
        ] {
            if let Some(v) = value {
                ctx.insert(name, minijinja::Value::from_serialize(v));
            }
        }
        ctx.insert(
            "unsubscribe_url",
            minijinja::Value::from_safe_string(self.unsubscribe_url.clone()),
        );
        ctx.insert(
            "preferences_url",
            minijinja::Value::from_safe_string(self.preferences_url.clone()),
        );
        minijinja::Value::from_iter(ctx)
    }
}

/// Renders `template` for one recipient (parses it first: to render many messages of one
/// template, parse it once with [`Compiled::new`]).
pub fn render(template: &DeployedTemplate, ctx: &RenderContext) -> Result<Rendered, RenderError> {
    Compiled::new(template.clone())?.render(ctx)
}

/// The names of a template's parts in its environment (the `.html` one is HTML-escaped).
const SUBJECT: &str = "subject.txt";
const HTML: &str = "body.html";
const TEXT: &str = "body.txt";

/// A deployed template parsed once, rendered for many recipients: the delivery worker keeps
/// one per template and round instead of parsing the Jinja sources again for every message.
#[derive(Debug)]
pub struct Compiled {
    template: DeployedTemplate,
    env: Environment<'static>,
}

impl Compiled {
    /// Parses the subject, HTML and text of `template`.
    pub fn new(template: DeployedTemplate) -> Result<Compiled, RenderError> {
        let mut env = environment();
        let fail = |e: minijinja::Error| render_error(&template.id, &e);
        env.add_template_owned(SUBJECT, template.subject.clone())
            .map_err(fail)?;
        if let Some(source) = &template.html {
            env.add_template_owned(HTML, source.clone()).map_err(fail)?;
        }
        if let Some(source) = &template.text {
            env.add_template_owned(TEXT, source.clone()).map_err(fail)?;
        }
        Ok(Compiled { template, env })
    }

    /// The template.
    pub fn template(&self) -> &DeployedTemplate {
        &self.template
    }

    /// Renders the template for one recipient.
    pub fn render(&self, ctx: &RenderContext) -> Result<Rendered, RenderError> {
        let template = &self.template;
        let value = ctx.to_value();
        let one = |name: &str| -> Result<String, RenderError> {
            self.env
                .get_template(name)
                .and_then(|t| t.render(&value))
                .map_err(|e| render_error(&template.id, &e))
        };
        // A subject is one line, whatever the template produced.
        let subject = one(SUBJECT)?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let html = match &template.html {
            Some(_) => Some(with_preheader(
                &inline_css(&one(HTML)?).map_err(|message| RenderError {
                    template: template.id.clone(),
                    message,
                })?,
                template.preheader.as_deref(),
            )),
            None => None,
        };
        let text = match (&template.text, &html) {
            (Some(_), _) => one(TEXT)?,
            (None, Some(h)) => html_to_text(h),
            (None, None) => String::new(),
        };
        Ok(Rendered {
            subject,
            html,
            text,
        })
    }
}

fn render_error(template: &str, e: &minijinja::Error) -> RenderError {
    RenderError {
        template: template.to_string(),
        message: e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_string),
    }
}

/// The rules of the HTML's `<style>` blocks moved into `style` attributes (css-inline: mail
/// clients such as Gmail drop or ignore `<style>`), at-rules (`@media`, `@font-face`) kept in
/// a `<style>` block since they cannot be inlined. HTML without `<style>` is returned as it
/// is (the inliner re-serializes the whole document). Remote stylesheets (`<link>`) are never
/// fetched: rendering does no IO.
pub fn inline_css(html: &str) -> Result<String, String> {
    if !html.to_ascii_lowercase().contains("<style") {
        return Ok(html.to_string());
    }
    css_inline::CSSInliner::options()
        .load_remote_stylesheets(false)
        .keep_at_rules(true)
        .build()
        .inline(html)
        .map_err(|e| format!("inlining the CSS failed: {e}"))
}

/// The preheader as the first, hidden element of the body (after `<body …>` when there is
/// one), so mail clients show it after the subject and nobody sees it in the message.
fn with_preheader(html: &str, preheader: Option<&str>) -> String {
    let Some(pre) = preheader.filter(|p| !p.trim().is_empty()) else {
        return html.to_string();
    };
    let escaped = pre
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let block = format!(
        "<div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all\">{escaped}</div>"
    );
    let lower = html.to_ascii_lowercase();
    if let Some(open) = lower.find("<body") {
        if let Some(end) = lower[open..].find('>') {
            let at = open + end + 1;
            return format!("{}{block}{}", &html[..at], &html[at..]);
        }
    }
    format!("{block}{html}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(html: &str) -> DeployedTemplate {
        DeployedTemplate {
            id: "t".into(),
            subject: "Hi {{ contact.first_name | default('there') }}".into(),
            category: "news".into(),
            from: None,
            reply_to: None,
            preheader: Some("Read <this>".into()),
            html: Some(html.into()),
            text: None,
        }
    }

    #[test]
    fn renders_variables_escapes_html_and_empties_missing_values() {
        let ctx = RenderContext {
            properties: json!({"first_name": "Ada & co", "plan": "pro"}),
            email: Some("ada@x.test".into()),
            key: "u1".into(),
            unsubscribe_url: "https://m.test/u/abc".into(),
            ..RenderContext::default()
        };
        let t = template(
            "<body><p>{{ contact.first_name }} {{ contact.key }} {{ contact.missing }}{{ event.plan.deep }}|</p><a href=\"{{ unsubscribe_url }}\">u</a></body>",
        );
        let r = render(&t, &ctx).unwrap();
        assert_eq!(r.subject, "Hi Ada & co");
        let html = r.html.unwrap();
        assert!(
            html.starts_with("<body><div style=\"display:none"),
            "{html}"
        );
        assert!(html.contains("Read &lt;this&gt;"));
        assert!(html.contains("<p>Ada &amp; co u1 |</p>"), "{html}");
        assert!(r.text.contains("Ada & co u1 |"), "{}", r.text);
        assert!(r.text.contains("u (https://m.test/u/abc)"), "{}", r.text);
        let r = render(&template("x"), &RenderContext::default()).unwrap();
        assert_eq!(r.subject, "Hi there");
    }

    #[test]
    fn a_text_part_is_rendered_unescaped() {
        let mut t = template("<p>x</p>");
        t.text = Some("Hello {{ contact.first_name }}".into());
        let ctx = RenderContext {
            properties: json!({"first_name": "<Ada>"}),
            ..RenderContext::default()
        };
        assert_eq!(render(&t, &ctx).unwrap().text, "Hello <Ada>");
    }

    #[test]
    fn style_blocks_are_inlined_and_media_queries_kept() {
        let t = template(
            "<html><head><style>p { color: red; } .big { font-size: 20px }\n\
             @media (max-width: 600px) { p { color: blue } }</style></head>\n\
             <body><p class=\"big\" style=\"margin: 0\">{{ contact.first_name }}</p></body></html>",
        );
        let ctx = RenderContext {
            properties: json!({"first_name": "Ada"}),
            ..RenderContext::default()
        };
        let html = render(&t, &ctx).unwrap().html.unwrap();
        insta::with_settings!({ snapshot_path => "../../snapshots", omit_expression => true }, {
            insta::assert_snapshot!("mail_css_inlined", html);
        });
        let plain = render(&template("<p>x</p>"), &ctx).unwrap().html.unwrap();
        assert!(
            plain.ends_with("<p>x</p>"),
            "untouched without <style>: {plain}"
        );
    }

    #[test]
    fn a_failing_filter_is_an_error_not_a_panic() {
        let t = template("{{ contact.n + 1 }}");
        let ctx = RenderContext {
            properties: json!({"n": "x"}),
            ..RenderContext::default()
        };
        assert!(render(&t, &ctx).is_err());
    }
}
