//! Stacks: back up a stack's sources into one recovery point, and restore a stack (or
//! some of its sources) from the newest complete backups at or before a time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::backup::{self, BackupRequest};
use crate::catalog::Catalog;
use crate::config::{SourceDef, Stack};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::id::PointId;
use crate::repo::point::{CarriedFile, PointEntry, RecoveryPoint, SourceRecord, SourceStatus};
use crate::repo::snapshot::SnapshotEntry;
use crate::repo::tree::Node;
use crate::restore::{self, RestoreRequest, TreeReader};
use crate::session::{Readable, Session};
use crate::source::hold::{Action, Holds, Ledger};
use crate::source::{self, BackupJob, PointInTime, RestoreJob, SnapshotReader, Target, WalArchive};

pub mod plan;

pub use plan::{Destination, LiveTargets, Planned, RestorePlan, Selection, TargetCheck};

/// A stack backup's result: the point, and a message per failed source.
pub struct StackOutcome {
    /// The recovery point written.
    pub id: PointId,
    /// Its manifest.
    pub point: RecoveryPoint,
    /// `stack S, source N: cause` for each failed source.
    pub failures: Vec<String>,
    /// Unreadable files of volume sources.
    pub warnings: Vec<String>,
}

/// Whether the archive is storing `def`'s log now: its newest copy covers until no more
/// than three of the archive's heartbeats before `now`.
fn archive_live<A>(
    session: &Session<A>,
    stack: &Stack,
    def: &SourceDef,
    now: DateTime<Utc>,
) -> bool {
    if !def.pitr() {
        return false;
    }
    let Ok(snapshots) = session.catalog().snapshots(Some(&stack.name)) else {
        return false;
    };
    let live = chrono::Duration::from_std(crate::archive::IDLE_REFRESH * 3).expect("small");
    crate::pitr::ArchivedWal::of(&snapshots, &stack.name, def.name.get_ref())
        .newest()
        .is_some_and(|w| w.covers_until >= now - live)
}

fn needs_docker(def: &SourceDef) -> bool {
    source::driver(def.kind).backup_needs_docker(def)
}

/// The stack's file and its drill files, as the point carries them; a file that cannot
/// be read is a warning, never a failed backup.
fn carried_config(stack: &Stack, warnings: &mut Vec<String>) -> Vec<CarriedFile> {
    let files = std::iter::once(("schedules", &stack.file))
        .chain(stack.drill_files.iter().map(|f| ("restore-drills", f)));
    let mut out = Vec::new();
    for (dir, file) in files {
        let Some(name) = file.file_name() else {
            continue;
        };
        match std::fs::read_to_string(file) {
            Ok(text) => out.push(CarriedFile {
                path: format!("{dir}/{}", name.to_string_lossy()),
                text,
            }),
            Err(e) => warnings.push(format!("{} is not carried: {e}", file.display())),
        }
    }
    out
}

/// The sources to run: all, or those named (each must exist).
pub fn select<'a>(stack: &'a Stack, only: &[String]) -> Result<Vec<&'a SourceDef>> {
    for name in only {
        if !stack.def.source.iter().any(|s| s.name.get_ref() == name) {
            return Err(Error::Usage(format!(
                "stack {} has no source {name}",
                stack.name
            )));
        }
    }
    Ok(stack
        .def
        .source
        .iter()
        .filter(|s| only.is_empty() || only.contains(s.name.get_ref()))
        .collect())
}

/// Backs up the chosen sources one after another and records the recovery point. A
/// failed source does not stop the others; an interrupt stops everything and records
/// nothing.
#[allow(clippy::too_many_arguments)]
pub fn backup<A>(
    session: &mut Session<A>,
    stack: &Stack,
    sources: &[&SourceDef],
    hostname: &str,
    now: DateTime<Utc>,
    interrupt: &Arc<AtomicBool>,
    progress: &dyn Fn(&str) -> Progress,
) -> Result<StackOutcome> {
    let started = Instant::now();
    // The daemon is checked before anything is written: unreachable is exit 2.
    let docker = if sources.iter().any(|s| needs_docker(s)) {
        Some(Docker::connect(session.repo().runtime().clone())?)
    } else {
        None
    };
    let mut records = Vec::new();
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    for def in sources {
        let name = def.name.get_ref().clone();
        let mut rec = SourceRecord::new(&name, def.kind);
        let t0 = Instant::now();
        // Whether the archive is live now, as this source starts, not as the stack did.
        let job = BackupJob {
            docker: docker.as_ref(),
            def,
            archive_live: archive_live(session, stack, def, now + started.elapsed()),
        };
        let result = backup_source(
            session, stack, job, &mut rec, hostname, now, interrupt, progress,
        );
        rec.duration_ms = t0.elapsed().as_millis() as u64;
        if let Some(base) = rec.base.as_mut() {
            base.ended = Some(now + started.elapsed());
        }
        if interrupt.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        match result {
            Ok(outcome) => {
                rec.status = SourceStatus::Ok;
                rec.snapshot = Some(outcome.id);
                rec.bytes = outcome.snapshot.summary.bytes;
                rec.bytes_added = outcome.snapshot.summary.bytes_added;
                warnings.extend(
                    outcome
                        .warnings
                        .into_iter()
                        .map(|w| format!("source {name}: {w}")),
                );
            }
            Err(Error::Interrupted) => return Err(Error::Interrupted),
            Err(e) => {
                rec.error = Some(e.to_string());
                failures.push(format!("stack {}, source {name}: {e}", stack.name));
            }
        }
        records.push(rec);
    }
    let point = RecoveryPoint {
        stack: stack.name.clone(),
        time: now,
        hostname: hostname.to_string(),
        sources: records,
        duration_ms: started.elapsed().as_millis() as u64,
        drctl_version: env!("CARGO_PKG_VERSION").to_string(),
        config: carried_config(stack, &mut warnings),
    };
    let id = session.commit_point(&point)?;
    Ok(StackOutcome {
        id,
        point,
        failures,
        warnings,
    })
}

#[allow(clippy::too_many_arguments)]
fn backup_source<A>(
    session: &mut Session<A>,
    stack: &Stack,
    job: BackupJob<'_>,
    rec: &mut SourceRecord,
    hostname: &str,
    now: DateTime<Utc>,
    interrupt: &Arc<AtomicBool>,
    progress: &dyn Fn(&str) -> Progress,
) -> Result<backup::BackupOutcome> {
    let (docker, def) = (job.docker, job.def);
    let prepared = source::driver(def.kind).backup(job, rec)?;
    // Held only while this source is read; put back on every way out of this function.
    // The holds are recorded on a catalog connection of their own, beside the backup's.
    let ledger = session.catalog().connector().connect()?;
    let mut holds = docker.map(|d| Holds::new(d, &ledger as &dyn Ledger));
    if let Some(h) = holds.as_mut() {
        for c in &def.stop {
            h.hold(c, Action::Stop(def.stop_grace()))?;
        }
        for c in &def.pause {
            h.hold(c, Action::Pause)?;
        }
    }
    let bar = progress(&format!("{} {}", stack.name, def.name.get_ref()));
    let outcome = backup::run(
        session,
        BackupRequest {
            stack: stack.name.clone(),
            paths: prepared.paths,
            hostname: hostname.to_string(),
            now,
            interrupt: interrupt.clone(),
            progress: &bar,
            streams: prepared.streams,
            exclude: prepared.exclude,
            wal: None,
            log_prefix: Vec::new(),
            source: Some(def.name.get_ref().clone()),
        },
    );
    if let Some(h) = holds {
        h.release()?;
    }
    let record = match prepared.checks {
        Some(checks) => Some(
            checks
                .join()
                .map_err(|_| Error::Failed("the server probe panicked".into()))??,
        ),
        None => None,
    };
    if let (Ok(_), Some(finish)) = (&outcome, prepared.finish) {
        finish(rec)?;
    }
    if let Some(record) = record {
        record(rec);
    }
    outcome
}

/// One step of a stack restore.
#[derive(Clone)]
pub struct Step<'a> {
    /// The source's record in the chosen point.
    pub rec: SourceRecord,
    /// The point it comes from.
    pub point: PointEntry,
    /// Its snapshot.
    pub snapshot: SnapshotEntry,
    /// Where it goes.
    pub target: Target<'a>,
    /// A point-in-time restore: the time it stops at and the archived WAL that gets it
    /// there from the base backup.
    pub replay: Option<(DateTime<Utc>, crate::pitr::Replay)>,
}

/// What was restored.
pub struct Restored {
    /// Source name.
    pub name: String,
    /// Bytes written or loaded.
    pub bytes: u64,
    /// Seconds it took.
    pub seconds: f64,
    /// Things the operator should know.
    pub warnings: Vec<String>,
    /// For a restore to a point in time: when the last transaction replayed committed.
    pub replayed_to: Option<DateTime<Utc>>,
}

/// Restores one step.
pub fn restore_step(
    session: &Session<Readable>,
    docker: Option<&Docker>,
    step: &Step<'_>,
    interrupt: &Arc<AtomicBool>,
    progress: &Progress,
) -> Result<Restored> {
    let t0 = Instant::now();
    let rec = &step.rec;
    let catalog = session.catalog();
    let snapshot = StoredFiles {
        session,
        snapshot: &step.snapshot,
        interrupt,
    };
    let no_wal = Vec::new();
    let wal = StoredWal {
        session,
        files: step.replay.as_ref().map_or(&no_wal, |(_, r)| &r.files),
    };
    let mut target = step.target.clone();
    if let Some((time, replay)) = &step.replay {
        target.at = Some(PointInTime {
            time: *time,
            timeline: replay.timeline,
            wal: &wal,
        });
    }
    let job = RestoreJob {
        docker,
        rec,
        target: &target,
        replay: step.replay.is_some(),
    };
    let loaded = source::driver(rec.kind).restore(job, catalog, &snapshot, progress)?;
    if interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    Ok(Restored {
        name: rec.name.clone(),
        bytes: loaded.bytes,
        seconds: t0.elapsed().as_secs_f64(),
        warnings: loaded.warnings,
        replayed_to: loaded.replayed_to,
    })
}

/// The catalog keeps the holds of this host's containers.
impl Ledger for Catalog {
    fn record_hold(&self, container: &str, action: &str) -> Result<()> {
        self.hold_container(container, action)
    }

    fn forget_hold(&self, container: &str) -> Result<()> {
        self.release_container(container)
    }

    fn orphaned_holds(&self) -> Result<Vec<(String, String)>> {
        Catalog::orphaned_holds(self)
    }
}

/// A snapshot as a source restores it: read from the repository.
struct StoredFiles<'a> {
    session: &'a Session<Readable>,
    snapshot: &'a SnapshotEntry,
    interrupt: &'a Arc<AtomicBool>,
}

impl SnapshotReader for StoredFiles<'_> {
    fn root(&self) -> Result<Vec<Node>> {
        let mut trees = TreeReader::new(self.session.repo(), self.session.catalog());
        Ok(trees.tree(&self.snapshot.snapshot.tree)?.nodes)
    }

    fn read_file(
        &self,
        node: &Node,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<()> {
        restore::stream_file(self.session.repo(), self.session.catalog(), node, sink)
    }

    fn restore_tree(&self, dir: &Path, overwrite: bool, progress: &Progress) -> Result<u64> {
        let summary = restore::run(
            self.session,
            RestoreRequest {
                snapshot: self.snapshot,
                subpath: self.snapshot.snapshot.paths.first().map(PathBuf::from),
                target: dir.to_path_buf(),
                contents_only: true,
                overwrite,
                interrupt: self.interrupt.clone(),
                progress,
            },
        )?;
        for w in &summary.warnings {
            tracing::warn!("{w}");
        }
        Ok(summary.bytes)
    }
}

/// A source's archived WAL, one snapshot per file, as a point-in-time restore reads it.
struct StoredWal<'a> {
    session: &'a Session<Readable>,
    files: &'a [SnapshotEntry],
}

impl WalArchive for StoredWal<'_> {
    fn names(&self) -> Vec<String> {
        self.files
            .iter()
            .filter_map(|s| s.snapshot.wal.as_ref().map(|w| w.name.clone()))
            .collect()
    }

    fn read(&self, name: &str, sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> Result<()> {
        let entry = self
            .files
            .iter()
            .find(|s| s.snapshot.wal.as_ref().is_some_and(|w| w.name == name))
            .ok_or_else(|| Error::Damage(format!("WAL file {name} is not in the archive")))?;
        let (repo, catalog) = (self.session.repo(), self.session.catalog());
        let root = TreeReader::new(repo, catalog).tree(&entry.snapshot.tree)?;
        let node = root
            .nodes
            .iter()
            .find(|n| n.os_name().to_string_lossy() == name)
            .ok_or_else(|| {
                Error::Damage(format!(
                    "snapshot {} does not hold WAL file {name}",
                    entry.id.short()
                ))
            })?;
        restore::stream_file(repo, catalog, node, sink)
    }
}
