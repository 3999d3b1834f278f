//! Run logs: the history of a stack's runs (every source's and the stack's own), stored
//! in the repository beside the recovery points so that a new host's `status` knows what
//! the old one knew, failed and skipped runs included.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::id::PointId;

/// One run of a stack: its rows of the run history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunLog {
    /// The stack's own row and one per source.
    pub runs: Vec<RunRecord>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every source backed up.
    Ok,
    /// A source, a hook or the repository failed.
    Failed,
    /// Another run held the stack's lock.
    Skipped,
    /// SIGINT or SIGTERM; nothing was recorded as a point.
    Interrupted,
}

impl RunStatus {
    /// The stored and printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
            RunStatus::Interrupted => "interrupted",
        }
    }

    /// Reads a stored name; anything unknown is a failure.
    pub fn parse(s: &str) -> RunStatus {
        match s {
            "ok" => RunStatus::Ok,
            "skipped" => RunStatus::Skipped,
            "interrupted" => RunStatus::Interrupted,
            _ => RunStatus::Failed,
        }
    }
}

/// One row of the run history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The stack.
    pub stack: String,
    /// The source; `None` for the stack's run as a whole.
    pub source: Option<String>,
    /// When it started (the clock drctl was given).
    pub started: DateTime<Utc>,
    /// When it ended.
    pub ended: DateTime<Utc>,
    /// How it ended.
    pub status: RunStatus,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Bytes added to the repository.
    pub bytes_added: u64,
    /// Wall time.
    pub duration_ms: u64,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// The recovery point written, if any.
    pub point_id: Option<PointId>,
}
