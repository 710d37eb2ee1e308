//! The HTML shell of the recipient's pages (`/u/…`, `/p/…`, `/c/…`): one small, accessible
//! document with no JavaScript and no external resources, and the HTML error pages those
//! routes answer with instead of the API's JSON errors (a person reads them in a browser).

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// Text for HTML (element content and quoted attribute values).
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The stylesheet of every page: readable from 320 px wide up, large touch targets, visible
/// focus, the system's dark mode respected.
const STYLE: &str = "\
:root{color-scheme:light dark}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:36rem;\
margin:2rem auto;padding:0 1rem;line-height:1.5;overflow-wrap:anywhere}\
h1{font-size:1.6rem;margin:0 0 1rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}\
button{font:inherit;font-size:1rem;padding:.6rem 1.1rem;border-radius:.4rem;cursor:pointer;\
border:1px solid #555;background:#1a56db;color:#fff;min-height:2.75rem}\
button.secondary{background:transparent;color:inherit}\
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}\
fieldset{border:1px solid #8888;border-radius:.5rem;padding:.5rem 1rem 1rem;margin:0 0 1rem}\
legend{font-weight:600;padding:0 .3rem}\
ul.lists{list-style:none;margin:0;padding:0}\
ul.lists li{display:grid;grid-template-columns:auto 1fr;gap:0 .75rem;padding:.75rem 0;\
border-bottom:1px solid #8884}ul.lists li:last-child{border-bottom:0}\
ul.lists input[type=checkbox]{width:1.4rem;height:1.4rem;margin:.15rem 0 0}\
ul.lists label{font-weight:600}ul.lists .about{grid-column:2;margin:0;font-size:.95rem}\
.state{display:block;font-size:.85rem;opacity:.8}\
.status{padding:.75rem 1rem;border-radius:.4rem;background:#def7ec;color:#03543f}\
.notice{padding:.75rem 1rem;border-radius:.4rem;background:#fdf6b2;color:#723b13}\
.note{font-size:.9rem;opacity:.8}";

/// A page titled `title` (escaped here) around `body` (HTML the caller escaped), in
/// English, never cached, never sending a referrer (the URL holds the link's token).
pub(crate) fn page(title: &str, body: &str) -> Response {
    page_with_status(StatusCode::OK, title, body)
}

/// [`page`] with another status.
pub(crate) fn page_with_status(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>{STYLE}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title)
    );
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(html),
    )
        .into_response()
}

/// Why a page could not be shown; answered as an HTML page with the matching status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    /// The link's token does not verify (mistyped, cut off, or signed with a retired
    /// secret): 404.
    #[error("this link is not valid")]
    InvalidLink,
    /// A form that cannot have come from the page (an unknown action or list): 400.
    #[error("{0}")]
    BadForm(String),
    /// The database failed: 500, logged with an incident id, never shown.
    #[error(transparent)]
    Internal(#[from] crate::Error),
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> PageError {
        PageError::Internal(crate::Error::from(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::InvalidLink => page_with_status(
                StatusCode::NOT_FOUND,
                "Link not valid",
                "<p>This link is not valid. It may have been cut off by your mail program: \
                 open it from the email again, or copy the whole address into your \
                 browser.</p>",
            ),
            PageError::BadForm(problem) => page_with_status(
                StatusCode::BAD_REQUEST,
                "Something went wrong",
                &format!(
                    "<p>{}</p><p>Nothing was changed. Reload the page and try again.</p>",
                    escape(&problem)
                ),
            ),
            PageError::Internal(e) => {
                let incident = uuid::Uuid::new_v4();
                tracing::error!(%incident, error = %e, "a recipient page failed");
                page_with_status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    &format!(
                        "<p>Nothing was changed. Please try again in a moment.</p>\
                         <p class=\"note\">Incident {incident}</p>"
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            escape(r#"<b a="1" b='2'>&</b>"#),
            "&lt;b a=&quot;1&quot; b=&#39;2&#39;&gt;&amp;&lt;/b&gt;"
        );
    }
}
