//! What a notice says: the event, the stack, the run's figures.

use chrono::{DateTime, Utc};
use serde::Serialize;

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

impl Event {
    pub(super) fn name(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Success => "success",
            Event::Failure => "failure",
            Event::Skipped => "skipped",
        }
    }
}

impl Notice {
    /// A one-line title and a body, for people: the stack, what happened, where.
    pub fn text(&self) -> (String, String) {
        let what = match self.status.as_str() {
            "failed" => "FAILED".to_string(),
            s => s.replace('_', " "),
        };
        let title = format!("drctl: stack {} {what} on {}", self.stack, self.hostname);
        let mut body = Vec::new();
        if let Some(e) = &self.error {
            body.push(e.clone());
        }
        if let Some(p) = &self.point_id {
            body.push(format!("recovery point {p}"));
        }
        if let Some(ms) = self.duration_ms {
            body.push(format!("took {}", crate::human::human_duration_ms(ms)));
        }
        if let Some(b) = self.bytes_added {
            body.push(format!("{} added", crate::human::human_bytes(b)));
        }
        body.push(format!(
            "started {}",
            self.started.format("%Y-%m-%d %H:%M:%S UTC")
        ));
        (title, body.join("\n"))
    }
}

/// A warning that names the host and path but never a query string (tokens live there).
pub(super) fn failed(url: &str, e: ureq::Error) -> String {
    let shown = url.split(['?', '#']).next().unwrap_or(url);
    let why = match e {
        ureq::Error::Status(code, _) => format!("HTTP {code}"),
        ureq::Error::Transport(t) => t.kind().to_string(),
    };
    format!("notification to {shown} failed: {why}")
}
