//! The places people read: chat webhooks, ntfy, Telegram, mail. Each turns a notice into
//! its own message; a failure is a warning that never names a credential.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, SmtpTransport, Transport};
use serde_json::json;

use super::notice::{failed, Event, Notice};
use crate::config::{EmailDef, NotifyDef};

/// Telegram's Bot API, unless the stack names another.
const TELEGRAM_API: &str = "https://api.telegram.org";

/// One place a notice goes.
#[derive(Debug, Clone)]
pub(super) enum Channel {
    /// A Slack- or Mattermost-compatible incoming webhook: `{"text": …}`.
    Slack(String),
    /// An ntfy topic: the body as the message, the title and priority as headers.
    Ntfy(String),
    /// A Telegram bot's `sendMessage`.
    Telegram {
        api: String,
        chat_id: String,
        token_file: PathBuf,
    },
    /// Mail through an SMTP server.
    Email(EmailDef),
}

impl Channel {
    /// The channels a `[notify]` table names.
    pub(super) fn all(def: &NotifyDef) -> Vec<Channel> {
        let mut out = Vec::new();
        if let Some(u) = &def.slack {
            out.push(Channel::Slack(u.get_ref().clone()));
        }
        if let Some(u) = &def.ntfy {
            out.push(Channel::Ntfy(u.get_ref().clone()));
        }
        if let Some(t) = &def.telegram {
            let t = t.get_ref();
            out.push(Channel::Telegram {
                api: t.api.clone().unwrap_or_else(|| TELEGRAM_API.into()),
                chat_id: t.chat_id.clone(),
                token_file: t.token_file.clone(),
            });
        }
        if let Some(e) = &def.email {
            out.push(Channel::Email(e.get_ref().clone()));
        }
        out
    }

    /// Delivers `notice`; a warning when it could not.
    pub(super) fn send(
        &self,
        agent: &ureq::Agent,
        notice: &Notice,
        timeout: Duration,
    ) -> Result<(), String> {
        let (title, body) = notice.text();
        match self {
            Channel::Slack(url) => agent
                .post(url)
                .send_json(json!({ "text": format!("*{title}*\n{body}") }))
                .map(drop)
                .map_err(|e| failed(url, e)),
            Channel::Ntfy(url) => {
                let priority = match notice.event {
                    Event::Failure | Event::Skipped => "high",
                    _ => "default",
                };
                agent
                    .post(url)
                    .set("Title", &title)
                    .set("Priority", priority)
                    .set("Tags", notice.event.name())
                    .send_string(&body)
                    .map(drop)
                    .map_err(|e| failed(url, e))
            }
            Channel::Telegram {
                api,
                chat_id,
                token_file,
            } => {
                let token = std::fs::read_to_string(token_file).map_err(|e| {
                    format!(
                        "notification to Telegram failed: reading {}: {e}",
                        token_file.display()
                    )
                })?;
                let url = format!(
                    "{}/bot{}/sendMessage",
                    api.trim_end_matches('/'),
                    token.trim()
                );
                agent
                    .post(&url)
                    .send_json(json!({ "chat_id": chat_id, "text": format!("{title}\n{body}") }))
                    .map(drop)
                    // The token is in the path: name the API, never the URL.
                    .map_err(|e| failed(&format!("{api}/bot…/sendMessage"), e))
            }
            Channel::Email(def) => send_mail(def, &title, &body, timeout)
                .map_err(|e| format!("notification by mail through {} failed: {e}", def.smtp)),
        }
    }
}

fn send_mail(def: &EmailDef, title: &str, body: &str, timeout: Duration) -> Result<(), String> {
    let mailbox = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("{a}: {e}"));
    let mut msg = Message::builder().from(mailbox(&def.from)?).subject(title);
    for to in &def.to {
        msg = msg.to(mailbox(to)?);
    }
    let msg = msg
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .map_err(|e| e.to_string())?;
    let mut transport = SmtpTransport::from_url(&def.smtp)
        .map_err(|e| e.to_string())?
        .timeout(Some(timeout));
    if let Some(user) = &def.username {
        let password = match &def.password_file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| format!("reading {}: {e}", p.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
            None => String::new(),
        };
        transport = transport.credentials(Credentials::new(user.clone(), password));
    }
    transport
        .build()
        .send(&msg)
        .map(drop)
        .map_err(|e| e.to_string())
}
