//! The run history: every run of a stack and of each of its sources, with its outcome.
//! It is what `run --due` asks "did this slot succeed?", what `status` reports, and what
//! the metrics file is made of. Recovery points in the store back it up: a host whose
//! catalog was lost still knows when each stack last had a complete point.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::Catalog;
use crate::error::Result;
use crate::repo::id::{PointId, RunId};
use crate::repo::point::SourceStatus;
use crate::repo::run::RunLog;

/// What is known of a job's past runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct History {
    /// Start of the newest successful run.
    pub last_success: Option<DateTime<Utc>>,
    /// Start of the newest failed run.
    pub last_failure: Option<DateTime<Utc>>,
}

pub use crate::repo::run::{RunRecord, RunStatus};

fn time(s: String) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Catalog {
    /// Appends a run to the history; `log` is the stored run log it came with.
    pub fn add_run(&self, r: &RunRecord, log: Option<&RunId>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO runs(stack, source, started, ended, status, bytes_read, bytes_added,
                                  duration_ms, error, point_id, run_log_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    r.stack,
                    r.source,
                    ts(&r.started),
                    ts(&r.ended),
                    r.status.as_str(),
                    r.bytes_read as i64,
                    r.bytes_added as i64,
                    r.duration_ms as i64,
                    r.error,
                    r.point_id.map(|p| p.0.to_vec()),
                    log.map(|l| l.0.to_vec()),
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records a run log (from this host or loaded from the store) under its name, with
    /// its runs, once.
    pub fn add_run_log(&self, id: &RunId, log: &RunLog) -> Result<()> {
        let stack = log.runs.first().map(|r| r.stack.clone());
        let started = log.runs.iter().map(|r| r.started).min();
        let fresh = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO run_logs(run_log_id, stack, started) VALUES (?1, ?2, ?3)",
                params![&id.0[..], stack, started.as_ref().map(ts)],
            )
            .map_err(|e| self.err(e))?;
        if fresh == 1 {
            for r in &log.runs {
                self.add_run(r, Some(id))?;
            }
        }
        Ok(())
    }

    /// The stored run logs of `stack` whose runs started before `before`.
    pub fn run_logs_before(
        &self,
        stack: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<(RunId, DateTime<Utc>)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT run_log_id, started FROM run_logs
                 WHERE stack = ?1 AND started < ?2 ORDER BY started",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![stack, ts(&before)], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, time(r.get(1)?)))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, started) = row.map_err(|e| self.err(e))?;
            if let Ok(id) = <[u8; 32]>::try_from(id.as_slice()) {
                out.push((RunId(id), started));
            }
        }
        Ok(out)
    }

    /// Drops a run log and its runs from the history (forget removed it from the store).
    pub fn forget_run_log(&self, id: &RunId) -> Result<()> {
        for sql in [
            "DELETE FROM runs WHERE run_log_id = ?1",
            "DELETE FROM run_logs WHERE run_log_id = ?1",
        ] {
            self.conn
                .execute(sql, [&id.0[..]])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The newest runs of a stack (all sources, and the stack rows), newest first.
    pub fn runs(&self, stack: &str, limit: usize) -> Result<Vec<RunRecord>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT stack, source, started, ended, status, bytes_read, bytes_added,
                        duration_ms, error, point_id
                 FROM runs WHERE stack=?1 ORDER BY started DESC, run_id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![stack, limit as i64], |r| {
                Ok(RunRecord {
                    stack: r.get(0)?,
                    source: r.get(1)?,
                    started: time(r.get(2)?),
                    ended: time(r.get(3)?),
                    status: RunStatus::parse(&r.get::<_, String>(4)?),
                    bytes_read: r.get::<_, i64>(5)? as u64,
                    bytes_added: r.get::<_, i64>(6)? as u64,
                    duration_ms: r.get::<_, i64>(7)? as u64,
                    error: r.get(8)?,
                    point_id: r
                        .get::<_, Option<Vec<u8>>>(9)?
                        .and_then(|b| b.try_into().ok().map(PointId)),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// The newest run of a stack (source `None`) or of one source, with a status.
    fn newest_run(
        &self,
        stack: &str,
        source: Option<&str>,
        status: RunStatus,
    ) -> Result<Option<DateTime<Utc>>> {
        self.conn
            .query_row(
                "SELECT max(started) FROM runs WHERE stack=?1 AND source IS ?2 AND status=?3",
                params![stack, source, status.as_str()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(|o| o.flatten().map(time))
            .map_err(|e| self.err(e))
    }

    /// What `run --due` needs of a job's past: its newest success, from the run history
    /// or, when this host's history is gone, from the recovery points in the store (a
    /// point in which every source of the job succeeded is a successful run of it).
    /// `source` names a source's own job; `sources` are the sources the job runs.
    pub fn job_history(
        &self,
        stack: &str,
        source: Option<&str>,
        sources: &[String],
    ) -> Result<History> {
        let mut last_success = self.newest_run(stack, source, RunStatus::Ok)?;
        let from_points = self.points(stack)?.into_iter().filter_map(|e| {
            let ok = sources.iter().all(|s| {
                e.point
                    .source(s)
                    .is_some_and(|r| r.status == SourceStatus::Ok)
            });
            ok.then_some(e.point.time)
        });
        last_success = last_success.into_iter().chain(from_points).max();
        Ok(History {
            last_success,
            last_failure: self.newest_run(stack, source, RunStatus::Failed)?,
        })
    }

    /// A drill job's past: the start of its newest stored result, whatever its verdict.
    pub fn drill_history(&self, drill: &str) -> Result<History> {
        let last = self
            .conn
            .query_row(
                "SELECT max(started) FROM drills WHERE drill=?1",
                [drill],
                |r| r.get::<_, Option<String>>(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(History {
            last_success: last.map(time),
            last_failure: None,
        })
    }
}

impl Catalog {
    /// Stored bytes and number of the packs the index lists.
    pub fn repository_size(&self) -> Result<(u64, u64)> {
        self.conn
            .query_row(
                "SELECT coalesce(sum(size), 0), count(*) FROM packs WHERE index_id IS NOT NULL",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.err(e))
    }
}
