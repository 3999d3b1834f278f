//! What the copies made from this host did last, kept in the state directory: `status`
//! shows each copy's lag behind its source, `status --check` fails a copy that is behind
//! its bound or whose last run failed, and the metrics file carries both (`status`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How far a copy may trail its source unless its destination says (`max_lag`).
pub const DEFAULT_MAX_LAG_SECS: i64 = 86_400;

/// One copy's (source and destination's) latest runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyState {
    /// The source, as described (no credentials).
    pub from: String,
    /// The destination.
    pub to: String,
    /// When the newest run that completed started: the copy holds everything the source
    /// held then.
    pub last_success: Option<DateTime<Utc>>,
    /// When the newest run started, whatever its end.
    pub last_run: DateTime<Utc>,
    /// Why the newest run failed, when it did.
    pub last_error: Option<String>,
    /// Objects and bytes the newest complete run wrote.
    pub copied: usize,
    /// See `copied`.
    pub bytes: u64,
    /// The bound on the lag.
    pub max_lag_secs: i64,
}

impl CopyState {
    /// Seconds the copy trails its source at `now`; `None` before a complete run.
    pub fn lag_seconds(&self, now: DateTime<Utc>) -> Option<i64> {
        self.last_success.map(|t| (now - t).num_seconds().max(0))
    }

    /// Why this copy needs someone, if it does.
    pub fn trouble(&self, now: DateTime<Utc>) -> Option<String> {
        let name = format!("copy {} -> {}", self.from, self.to);
        if let Some(e) = &self.last_error {
            return Some(format!("{name}: its last run failed: {e}"));
        }
        match self.lag_seconds(now) {
            None => Some(format!("{name}: no run has completed")),
            Some(l) if l > self.max_lag_secs => Some(format!(
                "{name} is {} behind its source (bound {})",
                crate::human::human_secs(l as f64),
                crate::human::human_secs(self.max_lag_secs as f64)
            )),
            _ => None,
        }
    }
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("copies")
}

/// Records a run of the copy `from` -> `to` that started at `started`: its outcome
/// (objects and bytes, or the error). Written atomically; a failure to write is the
/// caller's warning, never the copy's failure.
pub fn record(
    state_dir: &Path,
    from: &str,
    to: &str,
    started: DateTime<Utc>,
    outcome: std::result::Result<(usize, u64), String>,
    max_lag_secs: i64,
) -> std::io::Result<()> {
    let name = format!(
        "{}.json",
        &blake3::hash(format!("{from}\n{to}").as_bytes()).to_hex()[..16]
    );
    let path = dir(state_dir).join(name);
    let previous: Option<CopyState> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut state = previous.unwrap_or(CopyState {
        from: from.to_string(),
        to: to.to_string(),
        last_success: None,
        last_run: started,
        last_error: None,
        copied: 0,
        bytes: 0,
        max_lag_secs,
    });
    state.last_run = started;
    state.max_lag_secs = max_lag_secs;
    match outcome {
        Ok((copied, bytes)) => {
            state.last_success = Some(started);
            state.last_error = None;
            state.copied = copied;
            state.bytes = bytes;
        }
        Err(e) => state.last_error = Some(e),
    }
    std::fs::create_dir_all(dir(state_dir))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&state).expect("serializes"))?;
    std::fs::rename(&tmp, &path)
}

/// Every copy recorded in the state directory, by source and destination.
pub fn load(state_dir: &Path) -> Vec<CopyState> {
    let mut out: Vec<CopyState> = std::fs::read_dir(dir(state_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    out.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_late_past_its_bound_and_failed_after_a_failed_run() {
        let dir = tempfile::tempdir().unwrap();
        let t = |h: i64| DateTime::from_timestamp(1_795_000_000 + h * 3600, 0).unwrap();
        record(dir.path(), "a", "b", t(0), Ok((3, 10)), 7200).unwrap();
        let c = &load(dir.path())[0];
        assert_eq!(c.trouble(t(1)), None);
        assert!(
            c.trouble(t(3)).unwrap().contains("3.0 h behind"),
            "{:?}",
            c.trouble(t(3))
        );
        record(dir.path(), "a", "b", t(3), Err("boom".into()), 7200).unwrap();
        let c = &load(dir.path())[0];
        assert_eq!(c.last_success, Some(t(0)));
        assert!(c.trouble(t(3)).unwrap().contains("failed: boom"));
    }
}
