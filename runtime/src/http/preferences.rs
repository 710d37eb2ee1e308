//! The preferences page (docs/api.md#the-preferences-page), without a key: `GET /p/{token}`
//! shows every declared list with the contact's state (chosen or by the list's default) and
//! forms to change them, unsubscribe from everything or resubscribe; `POST /p/{token}`
//! applies one form in one transaction and shows the page again with a confirmation.
//!
//! The signed token (`crate::mail::links`, kind `p`, bound to the contact, never expiring)
//! is the only capability: there are no cookies and no sessions, so a form posted from
//! another site can do nothing its author could not do with the link itself (CSRF-safe by
//! construction). No JavaScript: plain HTML forms, labelled controls, usable at 320 px.

use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use sqlx::PgConnection;

use super::extract::ApiPath;
use super::page::{escape, page, PageError};
use super::unsubscribe::set_subscription;
use super::AppState;
use crate::mail::links::LinkKind;

/// The routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/p/{token}", get(show).post(apply))
}

/// Where `subscriptions` records a choice made here.
const SOURCE: &str = "preferences";

/// One declared list as the page shows it.
#[derive(Debug, sqlx::FromRow)]
struct ListState {
    id: String,
    name: Option<String>,
    description: Option<String>,
    default_subscribed: bool,
    /// The contact's explicit choice (`subscribed` / `unsubscribed`), if any.
    status: Option<String>,
}

impl ListState {
    /// Whether the contact is on the list, by choice or by default (unsubscribe-all aside).
    fn subscribed(&self) -> bool {
        match self.status.as_deref() {
            Some(status) => status == "subscribed",
            None => self.default_subscribed,
        }
    }
}

/// The contact's state: its address (when it has one), unsubscribe-all and every list.
struct Preferences {
    email: Option<String>,
    unsubscribed_all: bool,
    lists: Vec<ListState>,
}

/// The contact key a token names now: the token's key, or the contact it was merged into
/// since the message was sent.
async fn contact_key(state: &AppState, token: &str) -> Result<String, PageError> {
    let signer = state.mail.signer(&state.pool).await?;
    let claims = signer
        .verify(LinkKind::Preferences, token)
        .ok_or(PageError::InvalidLink)?;
    Ok(crate::ingest::resolve_key(&state.pool, &claims.user_key).await?)
}

async fn read(conn: &mut PgConnection, key: &str) -> Result<Preferences, sqlx::Error> {
    let email: Option<Option<String>> =
        sqlx::query_scalar("select email from contacts where user_key = $1 and deleted_at is null")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    let unsubscribed_all: bool = sqlx::query_scalar(
        "select exists (select 1 from subscriptions
                         where user_key = $1 and list_id = '*' and status = 'unsubscribed')",
    )
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    let lists = sqlx::query_as(
        "select l.id, l.name, l.description, l.default_subscribed, u.status
           from lists l
           left join subscriptions u on u.user_key = $1 and u.list_id = l.id
          order by coalesce(l.name, l.id), l.id",
    )
    .bind(key)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Preferences {
        email: email.flatten(),
        unsubscribed_all,
        lists,
    })
}

/// `GET /p/{token}`: the preferences page of the token's contact.
#[utoipa::path(get, path = "/p/{token}", operation_id = "preferences_page", tag = "pages",
    params(("token" = String, Path, description = "The signed preferences token of a message's preferences link")),
    responses(
        (status = 200, description = "The preferences page: a form with the contact's lists and choices", body = String, content_type = "text/html"),
        (status = 404, description = "An HTML page: the link is not valid", body = String, content_type = "text/html")))]
pub(super) async fn show(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
) -> Result<Response, PageError> {
    let key = contact_key(&state, &token).await?;
    let mut conn = state.pool.acquire().await?;
    let prefs = read(&mut conn, &key).await?;
    Ok(render(&prefs, None))
}

/// What a posted form asks for.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// Set every list the page showed (`shown`) to whether it was ticked (`list`).
    Save {
        shown: Vec<String>,
        ticked: Vec<String>,
    },
    /// Unsubscribe from every non-transactional list.
    UnsubscribeAll,
    /// Lift unsubscribe-all (the per-list choices are as they were).
    Resubscribe,
}

/// Reads a form body (`application/x-www-form-urlencoded`, as browsers send it).
fn parse_form(body: &[u8]) -> Result<Action, PageError> {
    let (mut action, mut shown, mut ticked) = (None, Vec::new(), Vec::new());
    for (name, value) in form_urlencoded::parse(body) {
        match name.as_ref() {
            "action" => action = Some(value.into_owned()),
            "shown" => shown.push(value.into_owned()),
            "list" => ticked.push(value.into_owned()),
            _ => {}
        }
    }
    match action.as_deref() {
        Some("save") => {
            if let Some(stray) = ticked.iter().find(|t| !shown.contains(t)) {
                return Err(PageError::BadForm(format!(
                    "The form ticked a list it did not show ({stray})."
                )));
            }
            Ok(Action::Save { shown, ticked })
        }
        Some("unsubscribe_all") => Ok(Action::UnsubscribeAll),
        Some("resubscribe") => Ok(Action::Resubscribe),
        _ => Err(PageError::BadForm(
            "The form did not say what to do.".into(),
        )),
    }
}

/// `POST /p/{token}`: applies one form, all of it or nothing, and shows the page again.
#[utoipa::path(post, path = "/p/{token}", operation_id = "save_preferences", tag = "pages",
    params(("token" = String, Path, description = "The signed preferences token")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "The page's form: `action` = `save` (with a `shown` field per list the page showed and a `list` field per ticked one), `unsubscribe_all` or `resubscribe`"),
    responses(
        (status = 200, description = "Applied; the page again, with a confirmation", body = String, content_type = "text/html"),
        (status = 400, description = "An HTML page: the form is not one the page sends", body = String, content_type = "text/html"),
        (status = 404, description = "An HTML page: the link is not valid", body = String, content_type = "text/html")))]
pub(super) async fn apply(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let key = contact_key(&state, &token).await?;
    let action = parse_form(&body)?;
    let mut tx = state.pool.begin().await?;
    let before = read(&mut tx, &key).await?;
    let confirmation = match &action {
        Action::Save { shown, ticked } => {
            for id in shown {
                let Some(list) = before.lists.iter().find(|l| &l.id == id) else {
                    return Err(PageError::BadForm(format!(
                        "The list {id} no longer exists; the page was out of date."
                    )));
                };
                let wanted = ticked.contains(id);
                if wanted != list.subscribed() {
                    set_subscription(&mut *tx, &key, id, wanted, SOURCE).await?;
                }
            }
            if before.unsubscribed_all {
                "Your choices are saved. You are still unsubscribed from all emails: \
                 resubscribe to receive the lists you chose."
            } else {
                "Your preferences are saved."
            }
        }
        Action::UnsubscribeAll => {
            set_subscription(&mut *tx, &key, "*", false, SOURCE).await?;
            "You are unsubscribed from all emails."
        }
        Action::Resubscribe => {
            sqlx::query("delete from subscriptions where user_key = $1 and list_id = '*'")
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            "You are subscribed again to the lists ticked below."
        }
    };
    let after = read(&mut tx, &key).await?;
    tx.commit().await?;
    Ok(render(&after, Some(confirmation)))
}

/// The page for `prefs`, with a confirmation when a form was just applied.
fn render(prefs: &Preferences, confirmation: Option<&str>) -> Response {
    let mut body = String::new();
    if let Some(text) = confirmation {
        body.push_str(&format!(
            "<p class=\"status\" role=\"status\">{}</p>",
            escape(text)
        ));
    }
    body.push_str(&match &prefs.email {
        Some(email) => format!(
            "<p>Choose which emails <strong>{}</strong> receives.</p>",
            escape(email)
        ),
        None => "<p>Choose which emails you receive.</p>".to_string(),
    });
    if prefs.unsubscribed_all {
        body.push_str(
            "<div class=\"notice\"><p>You are unsubscribed from all emails: none of the \
             lists below is sent to you.</p><form method=\"post\">\
             <input type=\"hidden\" name=\"action\" value=\"resubscribe\">\
             <button type=\"submit\">Resubscribe</button></form></div>",
        );
    }
    body.push_str("<form method=\"post\"><input type=\"hidden\" name=\"action\" value=\"save\">");
    if prefs.lists.is_empty() {
        body.push_str("<p>There are no mailing lists to choose from.</p>");
    } else {
        body.push_str("<fieldset><legend>Mailing lists</legend><ul class=\"lists\">");
        for (i, list) in prefs.lists.iter().enumerate() {
            let name = list.name.as_deref().unwrap_or(&list.id);
            let state = match (list.status.is_some(), list.subscribed()) {
                (true, true) => "Subscribed",
                (true, false) => "Unsubscribed",
                (false, true) => "Subscribed (default)",
                (false, false) => "Not subscribed (default)",
            };
            let description = list
                .description
                .as_deref()
                .map(|d| format!("{} ", escape(d)))
                .unwrap_or_default();
            body.push_str(&format!(
                "<li><input type=\"checkbox\" id=\"list-{i}\" name=\"list\" value=\"{id}\"{checked} \
                 aria-describedby=\"list-{i}-about\">\
                 <input type=\"hidden\" name=\"shown\" value=\"{id}\">\
                 <label for=\"list-{i}\">{name}</label>\
                 <p class=\"about\" id=\"list-{i}-about\">{description}\
                 <span class=\"state\">{state}</span></p></li>",
                id = escape(&list.id),
                checked = if list.subscribed() { " checked" } else { "" },
                name = escape(name),
            ));
        }
        body.push_str("</ul></fieldset><button type=\"submit\">Save preferences</button>");
    }
    body.push_str("</form>");
    if !prefs.unsubscribed_all {
        body.push_str(
            "<h2>Unsubscribe from everything</h2>\
             <form method=\"post\"><input type=\"hidden\" name=\"action\" value=\"unsubscribe_all\">\
             <p>Stop every email from these lists, now and in the future.</p>\
             <button type=\"submit\" class=\"secondary\">Unsubscribe from all emails</button></form>",
        );
    }
    body.push_str(
        "<p class=\"note\">Emails about your account and your orders (receipts, password \
         resets) are still sent: they are not part of any list.</p>",
    );
    page("Email preferences", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_strictly() {
        assert_eq!(
            parse_form(b"action=save&shown=news&shown=offers&list=news").unwrap(),
            Action::Save {
                shown: vec!["news".into(), "offers".into()],
                ticked: vec!["news".into()],
            }
        );
        assert_eq!(
            parse_form(b"action=unsubscribe_all").unwrap(),
            Action::UnsubscribeAll
        );
        assert_eq!(
            parse_form(b"action=resubscribe&x=1").unwrap(),
            Action::Resubscribe
        );
        for bad in [
            &b""[..],
            b"action=nuke",
            b"action=save&list=news",
            b"\xff\xfe",
        ] {
            assert!(
                matches!(parse_form(bad), Err(PageError::BadForm(_))),
                "{bad:?}"
            );
        }
    }
}
