//! Status: each stack's newest good backup against its RPO, its next run and last run,
//! the repository's size; and the same as Prometheus text-format metrics for
//! node_exporter's textfile collector. The clock is passed in.

mod prom;

use prom::{family, timestamp_secs};
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::catalog::{Catalog, RunRecord, RunStatus};
use crate::config::{SourceDef, Stack};
use crate::error::{IoContext, Result};
use crate::pitr::{source_coverage, Coverage, Span};
use crate::repo::point::{PointEntry, SourceStatus};
use crate::repo::snapshot::SnapshotEntry;
use crate::schedule::Job;
use crate::source::postgres::wal::SlotState;
use crate::timespec::parse_duration;

/// A stack's state against its recovery point objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Health {
    /// Every source has a backup within the RPO (or no RPO is set).
    Ok,
    /// Some source's newest backup is older than the RPO.
    Late,
    /// No source has ever been backed up successfully.
    Missing,
    /// Some source failed in its newest attempt, or has never succeeded, while others
    /// have backups: the stack cannot be restored whole.
    Degraded,
    /// A point-in-time source's archive misses WAL: some span cannot be restored.
    Gap,
}

impl Health {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "OK",
            Health::Late => "LATE",
            Health::Missing => "MISSING",
            Health::Degraded => "DEGRADED",
            Health::Gap => "GAP",
        }
    }
}

/// One source's newest good backup.
#[derive(Debug, Clone, Serialize)]
pub struct SourceState {
    /// The source.
    pub source: String,
    /// When its newest successful backup started.
    pub last_success: Option<DateTime<Utc>>,
    /// The point that holds it.
    pub point_id: Option<String>,
    /// Its age now, in seconds.
    pub age_seconds: Option<i64>,
    /// Why its newest attempt failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Why a source with `pitr = true` cannot be restored to a time, as its newest
    /// backup found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitr_unavailable: Option<String>,
    /// Point-in-time recovery, for a source that archives WAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrState>,
}

/// A point-in-time source's recovery window and archive.
#[derive(Debug, Clone, Serialize)]
pub struct PitrState {
    /// Oldest restorable time to newest, over all its base backups.
    pub window: Option<Span>,
    /// Where the archive reaches and where it breaks.
    #[serde(flatten)]
    pub coverage: Coverage,
    /// Seconds the archive trails the clock; `None` when nothing is archived.
    pub lag_seconds: Option<i64>,
    /// The server's replication slot, when this host could look at it.
    pub slot: Option<SlotState>,
}

/// One stack's status.
#[derive(Debug, Clone, Serialize)]
pub struct StackState {
    /// The stack.
    pub stack: String,
    /// OK, LATE, DEGRADED, MISSING or GAP.
    pub health: Health,
    /// The sources that make it DEGRADED: failed in their newest attempt, or never
    /// backed up.
    pub failed_sources: Vec<String>,
    /// The RPO target in seconds, if set.
    pub rpo_seconds: Option<i64>,
    /// The age of the stack's data: its oldest source's newest backup, in seconds.
    pub age_seconds: Option<i64>,
    /// The newest recovery point in which every source succeeded.
    pub last_complete_point: Option<String>,
    /// Per source.
    pub sources: Vec<SourceState>,
    /// The next scheduled run of any of its jobs.
    pub next_run: Option<DateTime<Utc>>,
    /// The newest run this host recorded.
    pub last_run: Option<RunRecord>,
    /// Bytes its backups added to the repository in the last 7 days.
    pub added_last_7d: u64,
    /// Its newest restore drill, from any host.
    pub last_drill: Option<DrillSummary>,
}

/// The facts of a drill that status and metrics show.
#[derive(Debug, Clone, Serialize)]
pub struct DrillSummary {
    /// The drill's name.
    pub drill: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// PASS or FAIL.
    pub verdict: crate::drill::Verdict,
    /// Measured RTO in seconds.
    pub rto_secs: f64,
    /// The RTO target, if any.
    pub rto_target_secs: Option<f64>,
}

/// The whole status document.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The clock it was computed for.
    pub now: DateTime<Utc>,
    /// Per stack.
    pub stacks: Vec<StackState>,
    /// Stored bytes of indexed packs.
    pub repository_bytes: u64,
    /// Number of indexed packs.
    pub repository_packs: u64,
    /// Bytes added by every stack in the last 7 days.
    pub added_last_7d: u64,
    /// The copies made from this host (`drctl copy`), with their lag.
    pub copies: Vec<crate::copy::state::CopyState>,
}

impl Status {
    /// Stacks past their RPO or never backed up.
    pub fn late(&self) -> Vec<&StackState> {
        self.stacks
            .iter()
            .filter(|s| s.health != Health::Ok)
            .collect()
    }
}

/// Computes the status of `stacks` at `now`.
pub fn compute(
    catalog: &Catalog,
    stacks: &[Stack],
    jobs: &[Job],
    now: DateTime<Utc>,
) -> Result<Status> {
    let week_ago = now - Duration::days(7);
    let drills = catalog.drills(None)?;
    let mut out = Vec::new();
    let mut total_added = 0;
    for stack in stacks {
        let points = catalog.points(&stack.name)?;
        let snapshots = if stack.def.source.iter().any(SourceDef::archives_log) {
            catalog.snapshots(Some(&stack.name))?
        } else {
            Vec::new()
        };
        let sources: Vec<SourceState> = stack
            .def
            .source
            .iter()
            .map(|def| source_state(def, &stack.name, &points, &snapshots, now))
            .collect();
        let rpo = stack
            .def
            .rpo
            .as_ref()
            .and_then(|r| parse_duration(r.get_ref()).ok());
        let missing = sources.iter().all(|s| s.last_success.is_none());
        let failed_sources: Vec<String> = sources
            .iter()
            .filter(|s| s.failed.is_some() || s.last_success.is_none())
            .map(|s| s.source.clone())
            .collect();
        // The age of what can be restored: the oldest of the sources that have backups.
        let age = sources.iter().filter_map(|s| s.age_seconds).max();
        let health = match (missing, age, rpo) {
            (true, _, _) => Health::Missing,
            _ if !failed_sources.is_empty() => Health::Degraded,
            (false, Some(a), Some(r)) if a > r.num_seconds() => Health::Late,
            _ => Health::Ok,
        };
        let health = pitr_health(health, &sources, rpo);
        let added: u64 = points
            .iter()
            .filter(|e| e.point.time >= week_ago)
            .flat_map(|e| e.point.sources.iter().map(|s| s.bytes_added))
            .sum();
        total_added += added;
        out.push(StackState {
            stack: stack.name.clone(),
            health,
            failed_sources,
            rpo_seconds: rpo.map(|r| r.num_seconds()),
            age_seconds: age,
            last_complete_point: points
                .iter()
                .rev()
                .find(|e| e.point.complete())
                .map(|e| e.id.to_string()),
            sources,
            next_run: jobs
                .iter()
                .filter(|j| j.stack == stack.name)
                .filter_map(|j| j.next_slot(now))
                .min(),
            last_run: catalog
                .runs(&stack.name, 20)?
                .into_iter()
                .find(|r| r.source.is_none()),
            added_last_7d: added,
            last_drill: drills
                .iter()
                .rev()
                .find(|d| d.stack == stack.name)
                .map(|d| DrillSummary {
                    drill: d.drill.clone(),
                    started: d.started,
                    verdict: d.verdict,
                    rto_secs: d.rto_secs,
                    rto_target_secs: d.rto_target_secs,
                }),
        });
    }
    let (bytes, packs) = catalog.repository_size()?;
    Ok(Status {
        now,
        stacks: out,
        repository_bytes: bytes,
        repository_packs: packs,
        added_last_7d: total_added,
        copies: Vec::new(),
    })
}

/// One source's newest good backup and, for a point-in-time source, its archive.
fn source_state(
    def: &SourceDef,
    stack: &str,
    points: &[PointEntry],
    snapshots: &[SnapshotEntry],
    now: DateTime<Utc>,
) -> SourceState {
    let name = def.name.get_ref();
    let newest = points
        .iter()
        .filter(|e| {
            e.point
                .source(name)
                .is_some_and(|r| r.status == SourceStatus::Ok)
        })
        .max_by_key(|e| e.point.time);
    let failed = points
        .iter()
        .filter(|e| e.point.source(name).is_some())
        .max_by_key(|e| e.point.time)
        .and_then(|e| e.point.source(name))
        .filter(|r| r.status == SourceStatus::Failed)
        .map(|r| r.error.clone().unwrap_or_else(|| "failed".into()));
    let unavailable = newest
        .and_then(|e| e.point.source(name))
        .and_then(|r| r.pitr_unavailable.clone());
    // A server that cannot be archived (binary logging off) says so instead.
    let pitr = (def.archives_log() && unavailable.is_none()).then(|| {
        let coverage = source_coverage(points, snapshots, stack, name);
        PitrState {
            window: match (coverage.windows.first(), coverage.windows.last()) {
                (Some(a), Some(b)) => Some(Span {
                    from: a.from,
                    to: b.to,
                }),
                _ => None,
            },
            lag_seconds: coverage.archived_until.map(|t| (now - t).num_seconds()),
            coverage,
            slot: None,
        }
    });
    SourceState {
        source: name.clone(),
        last_success: newest.map(|e| e.point.time),
        failed,
        point_id: newest.map(|e| e.id.to_string()),
        pitr_unavailable: unavailable,
        // A point-in-time source's newest recovery point is where its window ends.
        age_seconds: newest.map(|e| {
            let restorable = pitr
                .as_ref()
                .and_then(|p| p.window)
                .map_or(e.point.time, |w| w.to.max(e.point.time));
            (now - restorable).num_seconds()
        }),
        pitr,
    }
}

/// Why a stack's continuous archive needs someone, if it does: a gap in it, nothing
/// archived, or an archive trailing by more than the stack's RPO (a stream that stopped).
pub fn archive_trouble(s: &StackState) -> Option<String> {
    let mut why = Vec::new();
    for src in &s.sources {
        let Some(p) = &src.pitr else {
            continue;
        };
        let name = &src.source;
        for g in &p.coverage.gaps {
            why.push(format!(
                "source {name}: {} {} is missing",
                crate::pitr::log_file_kind(&g.missing),
                g.missing
            ));
        }
        match (p.lag_seconds, s.rpo_seconds) {
            (None, _) => why.push(format!("source {name}: no WAL is archived")),
            (Some(lag), Some(rpo)) if lag > rpo => why.push(format!(
                "source {name}: the continuous archive trails by {lag}s, the RPO is {rpo}s"
            )),
            _ => {}
        }
    }
    (!why.is_empty()).then(|| {
        format!(
            "stack {}: {}; is `drctl archive {}` running?",
            s.stack,
            why.join("; "),
            s.stack
        )
    })
}

/// A stack's health once its point-in-time sources are judged: a gap in an archive, or
/// an archive trailing by more than the RPO (or never written), makes it worse.
pub fn pitr_health(health: Health, sources: &[SourceState], rpo: Option<Duration>) -> Health {
    if health == Health::Missing {
        return health;
    }
    let pitr = sources.iter().filter_map(|s| s.pitr.as_ref());
    let mut out = health;
    for p in pitr {
        let lost = p.slot.as_ref().is_some_and(|s| s.wal_status == "lost");
        if !p.coverage.gaps.is_empty() || lost {
            return Health::Gap;
        }
        // Past four fifths of the server's bound, the server is about to drop WAL the
        // archive has not received: said before it happens.
        let filling = p.slot.as_ref().is_some_and(|s| {
            s.limit_bytes
                .is_some_and(|l| s.retained_bytes.saturating_mul(5) > l.saturating_mul(4))
        });
        let behind = filling
            || match (p.lag_seconds, rpo) {
                (None, _) => true,
                (Some(l), Some(r)) => l > r.num_seconds(),
                (Some(_), None) => false,
            };
        if behind && out == Health::Ok {
            out = Health::Late;
        }
    }
    out
}

/// The status as Prometheus text format (version 0.0.4).
pub fn metrics(status: &Status, catalog: &Catalog) -> Result<String> {
    let mut o = String::new();
    rpo_metrics(&mut o, status);
    run_metrics(&mut o, &newest_runs(status, catalog)?);
    drill_metrics(&mut o, status);
    repository_metrics(&mut o, status);
    copy_metrics(&mut o, &status.copies, status.now);
    Ok(o)
}

/// The families an RPO alert is written on: each source's newest good backup, each
/// stack's age and objective, and whether the objective is met.
fn rpo_metrics(o: &mut String, status: &Status) {
    let mut f = family(
        o,
        "drctl_last_success_timestamp_seconds",
        "Start of the newest successful backup of each source.",
    );
    for s in &status.stacks {
        for src in &s.sources {
            if let Some(t) = &src.last_success {
                f.sample(
                    &[("stack", &s.stack), ("source", &src.source)],
                    timestamp_secs(t),
                );
            }
        }
    }
    let mut f = family(
        o,
        "drctl_recovery_point_age_seconds",
        "Age of each stack's data: its oldest source's newest successful backup.",
    );
    for s in &status.stacks {
        if let Some(a) = s.age_seconds {
            f.sample(&[("stack", &s.stack)], a as f64);
        }
    }
    let mut f = family(
        o,
        "drctl_rpo_seconds",
        "Each stack's recovery point objective.",
    );
    for s in &status.stacks {
        if let Some(r) = s.rpo_seconds {
            f.sample(&[("stack", &s.stack)], r as f64);
        }
    }
    pitr_metrics(o, status);
    let mut f = family(
        o,
        "drctl_rpo_met",
        "1 when every source of the stack has a backup within the RPO, else 0.",
    );
    for s in &status.stacks {
        let v = if s.health == Health::Ok { 1.0 } else { 0.0 };
        f.sample(&[("stack", &s.stack)], v);
    }
}

/// Each point-in-time source's window, archive lag, gaps and slot.
fn pitr_metrics(o: &mut String, status: &Status) {
    let each = || {
        status.stacks.iter().flat_map(|s| {
            s.sources.iter().filter_map(move |src| {
                src.pitr
                    .as_ref()
                    .map(|p| (s.stack.as_str(), src.source.as_str(), p))
            })
        })
    };
    type Value = fn(&PitrState) -> Option<f64>;
    let families: [(&str, &str, Value); 6] = [
        (
            "drctl_pitr_window_start_timestamp_seconds",
            "Oldest time a point-in-time restore reaches.",
            |p| p.window.map(|w| timestamp_secs(&w.from)),
        ),
        (
            "drctl_pitr_window_end_timestamp_seconds",
            "Newest time a point-in-time restore reaches.",
            |p| p.window.map(|w| timestamp_secs(&w.to)),
        ),
        (
            "drctl_pitr_archive_lag_seconds",
            "How far the WAL archive trails the clock.",
            |p| p.lag_seconds.map(|l| l as f64),
        ),
        (
            "drctl_pitr_gaps",
            "Missing WAL segments that break the recovery window.",
            |p| Some(p.coverage.gaps.len() as f64),
        ),
        (
            "drctl_pitr_slot_retained_bytes",
            "WAL the server keeps for drctl's replication slot.",
            |p| p.slot.as_ref().map(|s| s.retained_bytes as f64),
        ),
        (
            "drctl_pitr_slot_limit_bytes",
            "The server's bound on that WAL (max_slot_wal_keep_size).",
            |p| {
                p.slot
                    .as_ref()
                    .and_then(|s| s.limit_bytes)
                    .map(|b| b as f64)
            },
        ),
    ];
    for (name, help, value) in families {
        let mut f = family(o, name, help);
        for (stack, source, p) in each() {
            if let Some(v) = value(p) {
                f.sample(&[("stack", stack), ("source", source)], v);
            }
        }
    }
}

/// The newest run on this host of each stack and of each of its sources, with the stack
/// it belongs to; skipped runs did nothing and say nothing about the last real one.
fn newest_runs(status: &Status, catalog: &Catalog) -> Result<Vec<(String, RunRecord)>> {
    let mut last: Vec<(String, RunRecord)> = Vec::new();
    for s in &status.stacks {
        let mut seen = std::collections::HashSet::new();
        for r in catalog.runs(&s.stack, 200)? {
            if r.status == RunStatus::Skipped {
                continue;
            }
            if seen.insert(r.source.clone()) {
                last.push((s.stack.clone(), r));
            }
        }
    }
    Ok(last)
}

/// Per-source facts of each stack's newest runs on this host (from `newest_runs`).
fn run_metrics(o: &mut String, last: &[(String, RunRecord)]) {
    type Get = fn(&RunRecord) -> f64;
    let per_run: [(&str, &str, Get); 5] = [
        (
            "drctl_last_run_success",
            "1 when the newest run succeeded, else 0.",
            |r| {
                if r.status == RunStatus::Ok {
                    1.0
                } else {
                    0.0
                }
            },
        ),
        (
            "drctl_last_run_timestamp_seconds",
            "Start of the newest run.",
            |r| timestamp_secs(&r.started),
        ),
        (
            "drctl_last_run_duration_seconds",
            "Wall time of the newest run.",
            |r| r.duration_ms as f64 / 1000.0,
        ),
        (
            "drctl_last_run_bytes_read",
            "Bytes the newest run read.",
            |r| r.bytes_read as f64,
        ),
        (
            "drctl_last_run_bytes_added",
            "Bytes the newest run added to the repository.",
            |r| r.bytes_added as f64,
        ),
    ];
    for (name, help, get) in per_run {
        let mut f = family(o, name, help);
        for (stack, r) in last {
            let source = r.source.as_deref().unwrap_or("");
            f.sample(&[("stack", stack), ("source", source)], get(r));
        }
    }
}

/// Each stack's newest restore drill: when, whether it passed, and the RTO it measured.
fn drill_metrics(o: &mut String, status: &Status) {
    type DrillGet = fn(&DrillSummary) -> f64;
    let per_drill: [(&str, &str, DrillGet); 3] = [
        (
            "drctl_drill_last_timestamp_seconds",
            "Start of each stack's newest restore drill.",
            |d| timestamp_secs(&d.started),
        ),
        (
            "drctl_drill_last_pass",
            "1 when each stack's newest restore drill passed, else 0.",
            |d| {
                if d.verdict == crate::drill::Verdict::Pass {
                    1.0
                } else {
                    0.0
                }
            },
        ),
        (
            "drctl_drill_last_rto_seconds",
            "Measured RTO of each stack's newest restore drill.",
            |d| d.rto_secs,
        ),
    ];
    for (name, help, get) in per_drill {
        let mut f = family(o, name, help);
        for s in &status.stacks {
            if let Some(d) = &s.last_drill {
                f.sample(&[("stack", &s.stack), ("drill", &d.drill)], get(d));
            }
        }
    }
}

/// The repository's size and the file's own timestamp (a stale file shows as old).
fn repository_metrics(o: &mut String, status: &Status) {
    let mut f = family(
        o,
        "drctl_repository_size_bytes",
        "Stored bytes of all indexed packs.",
    );
    f.sample(&[], status.repository_bytes as f64);
    let mut f = family(
        o,
        "drctl_metrics_timestamp_seconds",
        "When this file was written.",
    );
    f.sample(&[], timestamp_secs(&status.now));
}

/// Writes the metrics file atomically (temporary file, fsync, rename): the textfile
/// collector never reads half a file.
pub fn write_metrics(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    let r = write().ctx(|| format!("writing metrics file {}", path.display()));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The copies made from this host: when each last completed, its lag, whether it is OK.
fn copy_metrics(o: &mut String, copies: &[crate::copy::state::CopyState], now: DateTime<Utc>) {
    if copies.is_empty() {
        return;
    }
    type Value<'a> = &'a dyn Fn(&crate::copy::state::CopyState) -> Option<f64>;
    let families: [(&str, &str, Value); 3] = [
        (
            "drctl_copy_last_success_timestamp_seconds",
            "Start of the newest complete run of each copy.",
            &|c| c.last_success.as_ref().map(timestamp_secs),
        ),
        (
            "drctl_copy_lag_seconds",
            "How far each copy trails its source.",
            &|c| c.lag_seconds(now).map(|l| l as f64),
        ),
        (
            "drctl_copy_ok",
            "1 when the copy's last run succeeded and it is within its lag bound.",
            &|c| Some(if c.trouble(now).is_none() { 1.0 } else { 0.0 }),
        ),
    ];
    for (name, help, value) in families {
        let mut f = family(o, name, help);
        for c in copies {
            if let Some(v) = value(c) {
                f.sample(&[("from", &c.from), ("to", &c.to)], v);
            }
        }
    }
}

#[cfg(test)]
mod copy_metric_tests {
    use super::*;
    use crate::copy::state::{load, record};

    #[test]
    fn a_late_failed_copy_has_its_lag_and_is_not_ok() {
        let dir = tempfile::tempdir().unwrap();
        let t = |h: i64| DateTime::from_timestamp(1_795_000_000 + h * 3600, 0).unwrap();
        record(dir.path(), "a", "b", t(0), Ok((3, 10)), 7200).unwrap();
        record(dir.path(), "a", "b", t(3), Err("boom".into()), 7200).unwrap();
        let mut m = String::new();
        copy_metrics(&mut m, &load(dir.path()), t(3));
        assert!(
            m.contains("drctl_copy_lag_seconds{from=\"a\",to=\"b\"} 10800"),
            "{m}"
        );
        assert!(m.contains("drctl_copy_ok{from=\"a\",to=\"b\"} 0"), "{m}");
    }
}
