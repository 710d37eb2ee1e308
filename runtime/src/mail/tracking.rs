//! Open and click tracking at send time (docs/operations.md#tracking): which messages are
//! tracked, and their HTML with signed links (`/o/{token}`, `/c/{token}`). The recording
//! side is `http/tracking.rs`.

use hogsend_mail::tracking::{add_open_pixel, rewrite_links};

use super::links::{LinkKind, Signer};
use super::settings::MailSettings;

/// Whether a link of a message is rewritten for click tracking: `http(s)` links only, and
/// never the message's own unsubscribe and preferences links nor any link to the daemon's
/// recipient pages (`/u/`, `/p/`, `/o/`, `/c/` under the public URL), so that unsubscribing
/// never depends on the tracking redirect and never counts as a click.
fn trackable(url: &str, public_url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return false;
    }
    if url.chars().any(char::is_control) {
        return false;
    }
    let own = ["/u/", "/p/", "/o/", "/c/"]
        .iter()
        .any(|page| url.starts_with(&format!("{public_url}{page}")));
    !own
}

/// `html` as sent for message `message_id` of `category`: with the open pixel and tracked
/// links when `[email] tracking` asks for them (transactional messages only with
/// `tracking.transactional`), else unchanged.
pub fn apply(
    settings: &MailSettings,
    signer: &Signer,
    message_id: i64,
    transactional: bool,
    html: String,
) -> String {
    let t = settings.tracking;
    if transactional && !t.transactional {
        return html;
    }
    let base = &settings.public_url;
    let mut html = html;
    if t.clicks {
        html = rewrite_links(&html, |url| {
            trackable(url, base).then(|| {
                format!(
                    "{base}/c/{}",
                    signer.tracking_token(LinkKind::Click, message_id, url)
                )
            })
        });
    }
    if t.opens {
        let token = signer.tracking_token(LinkKind::Open, message_id, "");
        html = add_open_pixel(&html, &format!("{base}/o/{token}"));
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use hogsend_schema::settings::TrackingConfig;

    #[test]
    fn tracks_only_what_is_configured() {
        let signer = Signer::from_env_value("k").unwrap();
        let mut settings = MailSettings {
            public_url: "https://m.test".into(),
            ..MailSettings::default()
        };
        let html = "<body><a href=\"https://acme.test/x\">x</a> \
                    <a href=\"https://m.test/u/tok\">u</a> <a href=\"https://m.test/p/tok\">p</a> \
                    <a href=\"mailto:a@b.test\">m</a></body>";
        assert_eq!(apply(&settings, &signer, 1, false, html.into()), html);
        settings.tracking = TrackingConfig {
            opens: true,
            clicks: true,
            transactional: false,
        };
        assert_eq!(
            apply(&settings, &signer, 1, true, html.into()),
            html,
            "transactional mail is not tracked by default"
        );
        let out = apply(&settings, &signer, 1, false, html.into());
        assert_eq!(out.matches("https://m.test/c/").count(), 1, "{out}");
        assert_eq!(out.matches("https://m.test/o/").count(), 1, "{out}");
        assert!(out.contains("href=\"https://m.test/u/tok\""), "{out}");
        assert!(out.contains("href=\"https://m.test/p/tok\""), "{out}");
        assert!(out.contains("href=\"mailto:a@b.test\""), "{out}");
        settings.tracking.transactional = true;
        assert_ne!(apply(&settings, &signer, 1, true, html.into()), html);
    }
}
