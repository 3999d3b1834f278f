//! Notifications: an HTTP call when a run starts, succeeds, fails or is skipped.
//!
//! Two shapes: healthchecks.io-style ping URLs (`URL/start`, `URL`, `URL/fail`, the error
//! as the body) and a generic webhook that receives one JSON document per event. A
//! notifier that is down or slow costs at most its timeout and never changes a run's
//! outcome: failures come back as warnings.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::NotifyDef;
use crate::timespec::parse_duration;

/// The default time allowed per call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A run began.
    Start,
    /// A run recorded a complete recovery point.
    Success,
    /// A run failed or was interrupted.
    Failure,
    /// A run was skipped: another held the stack's lock.
    Skipped,
}

/// The webhook's JSON body (field names are stable).
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// What happened.
    pub event: Event,
    /// The stack.
    pub stack: String,
    /// The host that ran it.
    pub hostname: String,
    /// When the run started.
    pub started: DateTime<Utc>,
    /// `ok`, `failed`, `skipped`, `interrupted`; `running` for a start.
    pub status: String,
    /// The error, for failures and skips.
    pub error: Option<String>,
    /// The recovery point written, if any.
    pub point_id: Option<String>,
    /// Wall time of the run, when it has ended.
    pub duration_ms: Option<u64>,
    /// Bytes added to the repository.
    pub bytes_added: Option<u64>,
    /// The drctl that sent it.
    pub drctl_version: String,
}

impl Notice {
    /// A notice about `stack` from this `hostname`, of something that began at
    /// `started`; the run's figures are for the caller to add.
    pub fn new(
        event: Event,
        stack: &str,
        hostname: &str,
        started: DateTime<Utc>,
        status: &str,
        error: Option<String>,
    ) -> Notice {
        Notice {
            event,
            stack: stack.to_string(),
            hostname: hostname.to_string(),
            started,
            status: status.to_string(),
            error,
            point_id: None,
            duration_ms: None,
            bytes_added: None,
            drctl_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Where a stack's notices go.
#[derive(Debug, Clone)]
pub struct Notifier {
    healthchecks: Option<String>,
    webhook: Option<String>,
    timeout: Duration,
}

impl Notifier {
    /// The notifier of a stack's `[notify]` table, if it names any URL.
    pub fn new(def: Option<&NotifyDef>) -> Option<Notifier> {
        let def = def?;
        if def.healthchecks.is_none() && def.webhook.is_none() {
            return None;
        }
        let timeout = def
            .timeout
            .as_ref()
            .and_then(|t| parse_duration(t.get_ref()).ok())
            .and_then(|d| d.to_std().ok())
            .unwrap_or(DEFAULT_TIMEOUT);
        Some(Notifier {
            healthchecks: def.healthchecks.as_ref().map(|u| u.get_ref().clone()),
            webhook: def.webhook.as_ref().map(|u| u.get_ref().clone()),
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
        warnings
    }
}

/// A warning that names the host and path but never a query string (tokens live there).
fn failed(url: &str, e: ureq::Error) -> String {
    let shown = url.split(['?', '#']).next().unwrap_or(url);
    let why = match e {
        ureq::Error::Status(code, _) => format!("HTTP {code}"),
        ureq::Error::Transport(t) => t.kind().to_string(),
    };
    format!("notification to {shown} failed: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
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
