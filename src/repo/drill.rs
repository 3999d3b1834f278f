//! A restore drill's result as the repository stores it under `drills/`: what was
//! restored from which point, the timed phases, the checks and the verdict.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::repo::point::SourceKind;

/// PASS or FAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Every check passed and both targets were met.
    Pass,
    /// Something did not hold; `reasons` says what.
    Fail,
}

impl Verdict {
    /// As printed and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        }
    }
}

impl PitrDrill {
    /// `12.3s`, or `-` when not measured: the measured RPO and the archive lag as
    /// every report shows them.
    pub fn secs(v: Option<f64>) -> String {
        v.map_or("-".into(), |s| format!("{s:.1}s"))
    }
}

/// A timed phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    /// `start scratch servers`, `database load`, `volume write`, `checks`.
    pub name: String,
    /// Wall time.
    pub seconds: f64,
    /// It ran alongside the database load and volume write (fetching and decrypting
    /// streams into them), so it adds nothing to the RTO of its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub concurrent: bool,
}

/// One source as the drill restored it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceResult {
    /// Source name.
    pub name: String,
    /// Its kind.
    pub kind: SourceKind,
    /// The recovery point it came from and that point's time.
    pub point: Option<String>,
    /// See `point`.
    pub point_time: Option<DateTime<Utc>>,
    /// The scratch server's image, for databases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Bytes loaded or written.
    pub bytes: u64,
    /// Seconds its restore took.
    pub seconds: f64,
    /// Why it could not be restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Restored to a time: when the last transaction replayed committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_to: Option<DateTime<Utc>>,
}

/// A drill to a point in time: the time, and how close the restore came to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PitrDrill {
    /// The time restored to.
    pub target: DateTime<Utc>,
    /// Drawn at random from the recovery window.
    pub random: bool,
    /// The oldest of the replayed sources' last transactions (for a source with none
    /// after its base backup, that backup's time).
    pub replayed_to: Option<DateTime<Utc>>,
    /// Measured RPO: how far that transaction is behind the target.
    pub rpo_secs: Option<f64>,
    /// How far the continuous archive trailed the clock at the drill's start (the worst
    /// source): what a disaster at that moment would have lost.
    pub archive_lag_secs: Option<f64>,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check as written (`db: SELECT count(*) FROM t >= 1000`).
    pub name: String,
    /// The source it looks at.
    pub source: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found (a query's value, a file count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Why it failed, in the database's own words when it errored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds it took.
    pub seconds: f64,
}

/// Everything a drill found; stored in the repository under `drills/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillResult {
    /// The drill's name.
    pub drill: String,
    /// The stack drilled.
    pub stack: String,
    /// When it started (the clock drctl was given).
    pub started: DateTime<Utc>,
    /// The host that ran it.
    pub hostname: String,
    /// The oldest of the restored sources' points: what the stack would be back to.
    pub point_time: Option<DateTime<Utc>>,
    /// Per source.
    pub sources: Vec<SourceResult>,
    /// Timed phases, in order.
    pub phases: Vec<Phase>,
    /// Checks, in the order written.
    pub checks: Vec<CheckResult>,
    /// Measured RTO: start to all checks done.
    pub rto_secs: f64,
    /// The RTO target, if any.
    pub rto_target_secs: Option<f64>,
    /// Age of the restored point at the drill's start (or at `--at`).
    pub point_age_secs: Option<f64>,
    /// The RPO target, if any.
    pub rpo_target_secs: Option<f64>,
    /// PASS or FAIL.
    pub verdict: Verdict,
    /// Each reason for a FAIL.
    pub reasons: Vec<String>,
    /// Things the operator should know.
    pub warnings: Vec<String>,
    /// The drctl that ran it.
    pub drctl_version: String,
    /// For a drill to a point in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrDrill>,
}
