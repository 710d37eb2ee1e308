//! Email: the delivery worker, providers, signed links and their settings.
//!
//! ```text
//!   settings.rs  [email] + HOGSEND_SECRET / HOGSEND_SMTP_PASSWORD → MailSettings
//!   links.rs     HMAC-signed unsubscribe/preferences tokens (never expire, rotation-safe)
//!   deliver.rs   the worker: claim (SKIP LOCKED + lease) → recheck → render → send → record
//!   provider.rs  log | smtp (lettre, pooled) | http, and the MIME message
//!   dkim.rs      [email] dkim: the key from the environment; signs SMTP messages
//!   http_provider.rs  the Resend-compatible API: request, answer → accepted/transient/permanent
//!   http_client.rs    pooled HTTP/1.1 client, TLS by rustls
//!   webhook_signature.rs  Svix-style signatures of the provider's webhooks
//!   tracking.rs  the open pixel and click-tracked links added to a message's HTML
//! ```
//! Templates are rendered by `hogsend-mail` from the `templates` table `migrate` filled.

pub mod deliver;
pub mod dkim;
pub mod http_client;
pub mod http_provider;
pub mod links;
pub mod provider;
pub mod settings;
pub mod tracking;
pub mod webhook_signature;

use sqlx::PgPool;
use tokio::sync::OnceCell;

use links::Signer;
pub use settings::MailSettings;

/// What the worker and the link routes share: the settings and the link signer.
#[derive(Debug)]
pub struct MailState {
    /// The settings.
    pub settings: MailSettings,
    signer: OnceCell<Signer>,
}

impl MailState {
    /// The state of `settings`.
    pub fn new(settings: MailSettings) -> MailState {
        MailState {
            signer: OnceCell::new(),
            settings,
        }
    }

    /// The signer: `HOGSEND_SECRET`'s, else the database's development secret (created on
    /// first use, `log` provider only; see migration 7).
    pub async fn signer(&self, pool: &PgPool) -> Result<&Signer, sqlx::Error> {
        if let Some(s) = &self.settings.signer {
            return Ok(s);
        }
        self.signer
            .get_or_try_init(|| async {
                let fresh: String = {
                    use rand::Rng;
                    let bytes: [u8; 32] = rand::thread_rng().gen();
                    bytes.iter().map(|b| format!("{b:02x}")).collect()
                };
                sqlx::query("insert into link_secret (secret) values ($1) on conflict do nothing")
                    .bind(&fresh)
                    .execute(pool)
                    .await?;
                let secret: String = sqlx::query_scalar("select secret from link_secret")
                    .fetch_one(pool)
                    .await?;
                Ok(Signer::from_env_value(&secret).expect("a non-empty secret"))
            })
            .await
    }
}
