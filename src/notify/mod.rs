//! Notifications: a call when a run starts, succeeds, fails or is skipped.
//!
//! healthchecks.io-style ping URLs (`URL/start`, `URL`, `URL/fail`, the error as the body)
//! and a generic webhook (one JSON document per event) hear every event; the places people
//! read (Slack/Mattermost webhooks, ntfy, Telegram, mail: `channels`) hear the events the
//! stack names, failures and skips by default. A notifier that is down or slow costs at
//! most its timeout and never changes a run's outcome: failures come back as warnings.

mod channels;
mod notice;

use channels::Channel;
use notice::failed;
pub use notice::{Event, Notice};

use std::time::Duration;

use crate::config::NotifyDef;
use crate::timespec::parse_duration;

/// The default time allowed per call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a stack's notices go.
#[derive(Debug, Clone)]
pub struct Notifier {
    healthchecks: Option<String>,
    webhook: Option<String>,
    /// The places people read, and the events they hear.
    channels: Vec<Channel>,
    events: Vec<Event>,
    timeout: Duration,
}

impl Notifier {
    /// The notifier of a stack's `[notify]` table, if it names anywhere to send to.
    pub fn new(def: Option<&NotifyDef>) -> Option<Notifier> {
        let def = def?;
        let channels = Channel::all(def);
        if def.healthchecks.is_none() && def.webhook.is_none() && channels.is_empty() {
            return None;
        }
        let events = match &def.events {
            Some(names) => [Event::Start, Event::Success, Event::Failure, Event::Skipped]
                .into_iter()
                .filter(|e| names.get_ref().iter().any(|n| n == e.name()))
                .collect(),
            None => vec![Event::Failure, Event::Skipped],
        };
        let timeout = def
            .timeout
            .as_ref()
            .and_then(|t| parse_duration(t.get_ref()).ok())
            .and_then(|d| d.to_std().ok())
            .unwrap_or(DEFAULT_TIMEOUT);
        Some(Notifier {
            healthchecks: def.healthchecks.as_ref().map(|u| u.get_ref().clone()),
            webhook: def.webhook.as_ref().map(|u| u.get_ref().clone()),
            channels,
            events,
            timeout,
        })
    }

    /// Sends a notice to every configured URL; returns a warning per call that failed.
    pub fn send(&self, notice: &Notice) -> Vec<String> {
        let agent = ureq::AgentBuilder::new()
            .timeout(self.timeout)
            .user_agent(concat!("drctl/", env!("CARGO_PKG_VERSION")))
            .build();
        let mut warnings = Vec::new();
        if let Some(base) = &self.healthchecks {
            let base = base.trim_end_matches('/');
            let url = match notice.event {
                Event::Start => format!("{base}/start"),
                Event::Success => base.to_string(),
                Event::Failure | Event::Skipped => format!("{base}/fail"),
            };
            let body = notice.error.clone().unwrap_or_default();
            if let Err(e) = agent.post(&url).send_string(&body) {
                warnings.push(failed(&url, e));
            }
        }
        if let Some(url) = &self.webhook {
            if let Err(e) = agent.post(url).send_json(notice) {
                warnings.push(failed(url, e));
            }
        }
        if self.events.contains(&notice.event) {
            for c in &self.channels {
                if let Err(w) = c.send(&agent, notice, self.timeout) {
                    warnings.push(w);
                }
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// A one-request HTTP server that records the request line and body.
    fn serve_once(status: u16) -> (String, std::thread::JoinHandle<(String, String)>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let mut s = s;
            write!(s, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n").unwrap();
            (line.trim().to_string(), String::from_utf8(body).unwrap())
        });
        (addr, h)
    }

    fn notice(event: Event) -> Notice {
        Notice {
            event,
            stack: "shop".into(),
            hostname: "h".into(),
            started: Utc::now(),
            status: "failed".into(),
            error: Some("stack shop, source db: boom".into()),
            point_id: None,
            duration_ms: Some(5),
            bytes_added: None,
            drctl_version: "x".into(),
        }
    }

    fn notifier(hc: Option<String>, hook: Option<String>) -> Notifier {
        Notifier {
            healthchecks: hc,
            webhook: hook,
            channels: Vec::new(),
            events: Vec::new(),
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn healthchecks_failures_post_the_error_to_fail() {
        let (url, h) = serve_once(200);
        let w = notifier(Some(format!("{url}/ping/abc")), None).send(&notice(Event::Failure));
        assert!(w.is_empty(), "{w:?}");
        let (line, body) = h.join().unwrap();
        assert_eq!(line, "POST /ping/abc/fail HTTP/1.1");
        assert_eq!(body, "stack shop, source db: boom");
    }

    #[test]
    fn the_webhook_gets_json_and_errors_become_warnings() {
        let (url, h) = serve_once(500);
        let w =
            notifier(None, Some(format!("{url}/hook?token=secret"))).send(&notice(Event::Skipped));
        let (line, body) = h.join().unwrap();
        assert_eq!(line, "POST /hook?token=secret HTTP/1.1");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["event"], "skipped");
        assert_eq!(v["error"], "stack shop, source db: boom");
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("HTTP 500") && !w[0].contains("secret"),
            "{w:?}"
        );
        // Nobody listening: a warning, quickly.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let w =
            notifier(Some(format!("http://127.0.0.1:{port}/x")), None).send(&notice(Event::Start));
        assert_eq!(w.len(), 1, "{w:?}");
    }
}
