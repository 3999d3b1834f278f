//! `[stack.NAME.notify]`: where a stack's notices go, and which of them.

use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// `[stack.NAME.notify]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyDef {
    /// A healthchecks.io-style ping URL: `URL/start`, `URL`, `URL/fail` (every event).
    pub healthchecks: Option<Spanned<String>>,
    /// A URL that receives a JSON POST for each event.
    pub webhook: Option<Spanned<String>>,
    /// A Slack- or Mattermost-compatible incoming webhook URL.
    pub slack: Option<Spanned<String>>,
    /// An ntfy topic URL (`https://ntfy.sh/TOPIC`).
    pub ntfy: Option<Spanned<String>>,
    /// A Telegram bot and chat.
    pub telegram: Option<Spanned<TelegramDef>>,
    /// Mail through an SMTP server.
    pub email: Option<Spanned<EmailDef>>,
    /// Which events the chat and mail channels hear (`start`, `success`, `failure`,
    /// `skipped`); default failures and skips. healthchecks and the webhook hear all.
    pub events: Option<Spanned<Vec<String>>>,
    /// Per call (default 10s); a notifier that does not answer never holds up a backup.
    pub timeout: Option<Spanned<String>>,
}

/// `telegram = { chat_id = "...", token_file = "..." }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramDef {
    /// The chat (or channel) the bot writes to.
    pub chat_id: String,
    /// A file holding the bot token: a credential, never in the stack file.
    pub token_file: PathBuf,
    /// The Bot API's base URL (default `https://api.telegram.org`), for a local Bot API
    /// server.
    pub api: Option<String>,
}

/// `email = { smtp = "smtp://host:587?tls=required", from = "...", to = [...] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailDef {
    /// `smtp://host[:port]` (plain, or `?tls=required` for STARTTLS) or
    /// `smtps://host[:port]` (TLS from the start); no credentials in it.
    pub smtp: String,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The SMTP login, when the server wants one.
    pub username: Option<String>,
    /// A file holding the SMTP password.
    pub password_file: Option<PathBuf>,
}

/// The event names `events` accepts.
pub const EVENT_NAMES: [&str; 4] = ["start", "success", "failure", "skipped"];

impl NotifyDef {
    /// Checks the URLs, addresses and event names; the error's span points at the value.
    pub fn check(&self) -> Result<(), (Range<usize>, String)> {
        let urls = [&self.healthchecks, &self.webhook, &self.slack, &self.ntfy];
        for url in urls.into_iter().flatten() {
            check_http_url(url.get_ref()).map_err(|m| (url.span(), m))?;
        }
        if let Some(t) = &self.telegram {
            if let Some(api) = &t.get_ref().api {
                check_http_url(api).map_err(|m| (t.span(), m))?;
            }
        }
        if let Some(e) = &self.email {
            check_email(e.get_ref()).map_err(|m| (e.span(), m))?;
        }
        if let Some(ev) = &self.events {
            if let Some(bad) = ev
                .get_ref()
                .iter()
                .find(|e| !EVENT_NAMES.contains(&e.as_str()))
            {
                return Err((
                    ev.span(),
                    format!(
                        "unknown event {bad:?} in events: use {}",
                        EVENT_NAMES.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn check_email(e: &EmailDef) -> Result<(), String> {
    let url = url::Url::parse(&e.smtp)
        .ok()
        .filter(|u| matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some())
        .ok_or_else(|| {
            format!(
                "email smtp {:?} is not an smtp:// or smtps:// URL with a host",
                e.smtp
            )
        })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "email smtp carries credentials: set username and password_file instead".into(),
        );
    }
    if e.to.is_empty() {
        return Err("email has no recipient in to".into());
    }
    for a in std::iter::once(&e.from).chain(&e.to) {
        if a.parse::<lettre::Address>().is_err() {
            return Err(format!("email address {a:?} is not valid"));
        }
    }
    if e.password_file.is_some() && e.username.is_none() {
        return Err("email has a password_file but no username".into());
    }
    Ok(())
}

/// Checks a notify URL: http:// or https:// with a host.
fn check_http_url(url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(format!(
            "notify URL {url:?} is not an http:// or https:// URL with a host"
        )),
    }
}
