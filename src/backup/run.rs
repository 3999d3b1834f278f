//! A backup from request to committed snapshot: the stages started, joined, and the
//! commit checked against concurrent prunes.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use crossbeam_channel::bounded;

use crate::catalog::Catalog;
use crate::error::{Error, IoContext, Result};
use crate::progress::Progress;
use crate::repo::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::repo::pack::FinishedPack;
use crate::repo::snapshot::{Snapshot, Summary, WalFile};
use crate::repo::Repo;
use crate::session::{self, Session};
use crate::source::StreamFile;

use super::pipeline::*;
use super::read::read_files;
use super::seal::{seal_blobs, upload_packs};
use super::trees::{build_trees, Counts};
use super::walk::{build_excludes, scan_size, walk};

/// What to back up and how.
pub struct BackupRequest<'a> {
    /// Stack the snapshot belongs to.
    pub stack: String,
    /// Paths exactly as the user gave them.
    pub paths: Vec<PathBuf>,
    /// Host name recorded in the snapshot.
    pub hostname: String,
    /// The backup's time.
    pub now: DateTime<Utc>,
    /// Set by SIGINT/SIGTERM; the backup stops and commits nothing.
    pub interrupt: Arc<AtomicBool>,
    /// Progress display.
    pub progress: &'a Progress,
    /// Streams stored as files at the snapshot's root (database dumps); a stream that
    /// fails fails the whole backup.
    pub streams: Vec<StreamFile>,
    /// Glob patterns left out, relative to each path: with a `/` they match from the
    /// path's top (`cache/**`), without one they match a name at any depth (`*.tmp`).
    pub exclude: Vec<String>,
    /// The source these paths or streams are, for a stack's recovery point.
    pub source: Option<String>,
    /// The WAL file the one stream is, for a source's continuous archive.
    pub wal: Option<WalFile>,
    /// How the copy of that file stored before was cut (empty if none).
    pub log_prefix: Vec<LogPiece>,
}

/// A committed backup.
pub struct BackupOutcome {
    /// The new snapshot.
    pub id: SnapshotId,
    /// Its manifest.
    pub snapshot: Snapshot,
    /// Files that could not be read and are missing from the snapshot.
    pub warnings: Vec<String>,
    /// How the log file was cut, for a copy of a WAL file (the next copy's prefix).
    pub log_cut: Vec<LogPiece>,
}

/// Runs of a backup of paths alone, when prunes keep marking packs it deduplicated
/// against before it commits.
pub(super) const COMMIT_ATTEMPTS: usize = 3;

/// Runs a backup and commits its snapshot.
///
/// A prune that marks a pack the backup deduplicated against while it ran makes the
/// commit refuse (see [`session::commit`]). A backup of paths then runs again, reading only what
/// lived in those packs (the files cache still holds the rest); one with streams (a
/// database dump, which cannot be replayed) fails, and the next scheduled run takes it.
pub fn run<A>(session: &mut Session<A>, req: BackupRequest<'_>) -> Result<BackupOutcome> {
    let mut req = req;
    let mut attempt = 1;
    loop {
        let again = (attempt < COMMIT_ATTEMPTS && req.streams.is_empty()).then(|| req.again());
        match run_once(session, req)? {
            Ok(outcome) => return Ok(outcome),
            Err(lost) => match again {
                Some(next) if lost.only_marked() => {
                    tracing::warn!(
                        "{}; reading the affected files again (attempt {})",
                        lost.into_error(),
                        attempt + 1
                    );
                    req = next;
                    attempt += 1;
                }
                _ => return Err(lost.into_error()),
            },
        }
    }
}

impl BackupRequest<'_> {
    /// The same request again (one of paths only: streams run once).
    fn again(&self) -> Self {
        BackupRequest {
            stack: self.stack.clone(),
            paths: self.paths.clone(),
            hostname: self.hostname.clone(),
            now: self.now,
            interrupt: self.interrupt.clone(),
            progress: self.progress,
            streams: Vec::new(),
            exclude: self.exclude.clone(),
            source: self.source.clone(),
            wal: self.wal.clone(),
            log_prefix: self.log_prefix.clone(),
        }
    }
}

/// One run of [`run`]; `Ok(Err(..))` when the commit refused because a prune took packs
/// it relied on.
pub(super) fn run_once<A>(
    session: &mut Session<A>,
    req: BackupRequest<'_>,
) -> Result<std::result::Result<BackupOutcome, session::Lost>> {
    let (repo, catalog) = session.parts();
    let started = Instant::now();
    if req.paths.is_empty() && req.streams.is_empty() {
        return Err(Error::Usage(
            "nothing to back up: give at least one path".into(),
        ));
    }
    let kept = check_roots(&req.paths)?;
    let exclude = build_excludes(&kept, &req.exclude)?;
    recover_unindexed(repo, catalog)?;
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        req.now.timestamp_nanos_opt().unwrap_or(0)
    );
    catalog.drop_abandoned_staging()?;

    let shared = Shared {
        repo,
        catalog: catalog.connector(),
        seen: Mutex::new(HashSet::new()),
        reused: Mutex::new(HashSet::new()),
        abort: AtomicBool::new(false),
        interrupt: req.interrupt.clone(),
        error: Mutex::new(None),
        bytes_added: AtomicU64::new(0),
        blobs_added: AtomicU64::new(0),
        bytes_read: AtomicU64::new(0),
        files_read: AtomicU64::new(0),
        progress: req.progress,
        exclude,
        now_ns: req.now.timestamp_nanos_opt().unwrap_or(0),
        log: req.wal.is_some(),
        log_prefix: req.log_prefix.clone(),
        log_cut: Mutex::new(Vec::new()),
        compression_level: match req.wal {
            Some(_) => repo.config.compression_level.max(LOG_COMPRESSION_LEVEL),
            None => repo.config.compression_level,
        },
    };
    let (tree_result, summary_counts) = run_pipeline(&shared, &kept, req.streams, &run_id);
    req.progress.finish();
    if shared.interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    // The first real cause wins over the `Interrupted` that other stages see as they stop.
    let stage_error = shared.error.lock().unwrap().take();
    let (root, warnings) = match (tree_result, stage_error) {
        (Err(e), _) if !matches!(e, Error::Interrupted) => return Err(e),
        (_, Some(e)) => return Err(e),
        (r, None) => r?,
    };
    let counts = summary_counts;
    let log_cut = std::mem::take(&mut *shared.log_cut.lock().unwrap());

    // Packs are all stored: prove they and those reused are still live, list them in
    // index files, then commit the snapshot and prove it again.
    let deps = session::Dependencies {
        reused: std::mem::take(&mut *shared.reused.lock().unwrap()),
        own: catalog.unindexed_packs()?.iter().map(|p| p.id).collect(),
    };
    if let Err(lost) = session::commit::check_before(repo, catalog, &deps)? {
        return Ok(Err(lost));
    }
    let written = write_indexes(repo, catalog)?;
    let snapshot = Snapshot {
        time: req.now,
        stack: req.stack.clone(),
        hostname: req.hostname.clone(),
        paths: req.paths.iter().map(|p| p.display().to_string()).collect(),
        source: req.source.clone(),
        wal: req.wal.clone(),
        tree: root,
        summary: Summary {
            files: counts.files,
            dirs: counts.dirs,
            bytes: counts.bytes,
            files_read: shared.files_read.load(Ordering::Relaxed),
            bytes_read: shared.bytes_read.load(Ordering::Relaxed),
            blobs_added: shared.blobs_added.load(Ordering::Relaxed),
            bytes_added: shared.bytes_added.load(Ordering::Relaxed),
            duration_ms: started.elapsed().as_millis() as u64,
        },
        drctl_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    if req.interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    let id = session.commit_snapshot(&snapshot, &deps, &written, &run_id)?;
    Ok(Ok(BackupOutcome {
        id,
        snapshot,
        warnings,
        log_cut,
    }))
}

/// Checks every path before anything is written; drops those inside another given path
/// (already covered). Returns each path's recorded components and absolute path.
fn check_roots(paths: &[PathBuf]) -> Result<Vec<(Vec<OsString>, PathBuf)>> {
    let mut roots: Vec<(Vec<OsString>, PathBuf)> = Vec::new();
    for p in paths {
        std::fs::symlink_metadata(p)
            .map_err(|e| Error::Usage(format!("cannot back up {}: {e}", p.display())))?;
        let abs = std::path::absolute(p).ctx(|| format!("resolving {}", p.display()))?;
        roots.push((components(p)?, abs));
    }
    roots.sort();
    let mut kept: Vec<(Vec<OsString>, PathBuf)> = Vec::new();
    for r in roots {
        if !kept.iter().any(|k| r.0.starts_with(&k.0)) {
            kept.push(r);
        }
    }
    if kept.iter().any(|k| k.0.is_empty()) && kept.len() > 1 {
        return Err(Error::Usage(
            "'.' or '/' cannot be combined with other paths".into(),
        ));
    }
    Ok(kept)
}

/// Runs the pipeline's stages on their threads (walker, readers, sealers, uploader, and
/// the tree builder on this one) until the tree is built or a stage fails.
fn run_pipeline(
    shared: &Shared<'_>,
    kept: &[(Vec<OsString>, PathBuf)],
    streams: Vec<StreamFile>,
    run_id: &str,
) -> (Result<(BlobId, Vec<String>)>, Counts) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let readers = cores.clamp(2, 4);
    let sealers = cores.clamp(2, 8);

    let (event_tx, event_rx) = bounded::<Event>(4096);
    let (job_tx, job_rx) = bounded::<FileJob>(256);
    let (blob_tx, blob_rx) = bounded::<NewBlob>(sealers * 2);
    let (pack_tx, pack_rx) = bounded::<FinishedPack>(0);

    std::thread::scope(|s| {
        let sh = shared;
        let walker_roots = kept.to_vec();
        let scan_roots: Vec<PathBuf> = kept.iter().map(|k| k.1.clone()).collect();
        if sh.progress.is_visible() {
            s.spawn(move || {
                let total = scan_size(&scan_roots, &sh.abort);
                sh.progress.set_total(total);
            });
        }
        s.spawn(move || {
            if let Err(e) = walk(sh, &walker_roots, streams, &event_tx, &job_tx) {
                sh.fail(e);
            }
        });
        for _ in 0..readers {
            let (job_rx, blob_tx) = (job_rx.clone(), blob_tx.clone());
            s.spawn(move || {
                if let Err(e) = read_files(sh, job_rx, blob_tx) {
                    sh.fail(e);
                }
            });
        }
        drop(job_rx);
        for _ in 0..sealers {
            let (blob_rx, pack_tx) = (blob_rx.clone(), pack_tx.clone());
            s.spawn(move || seal_blobs(sh, blob_rx, pack_tx));
        }
        drop(blob_rx);
        drop(pack_tx);
        let uploader = s.spawn(move || {
            if let Err(e) = upload_packs(sh, pack_rx) {
                sh.fail(e);
            }
        });
        let built = build_trees(sh, event_rx, &blob_tx, run_id);
        if built.0.is_err() {
            shared.abort.store(true, Ordering::SeqCst);
        }
        drop(blob_tx);
        let _ = uploader.join();
        built
    })
}

/// Packs this host uploaded before a crash: keep those still in the store for this run's
/// index (their blobs were already deduplicated against), forget the rest.
pub(super) fn recover_unindexed(repo: &Repo, catalog: &mut Catalog) -> Result<()> {
    for p in catalog.unindexed_packs()? {
        // A prune marked it (it stayed unreferenced too long): it will be deleted.
        if catalog.is_doomed(&p.id)? {
            catalog.forget_pack(&p.id)?;
            continue;
        }
        let handle = crate::repo::layout::Handle::pack(p.kind, &p.id);
        match repo.block_on(repo.objects().stat(&handle)) {
            Ok(info) if info.size == p.size => {}
            Ok(_) => catalog.forget_pack(&p.id)?,
            Err(e) if crate::store::backend::is_not_found(&e) => catalog.forget_pack(&p.id)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes index files for every pack no index lists yet, and marks them indexed;
/// returns the index files written.
pub fn write_indexes(repo: &Repo, catalog: &mut Catalog) -> Result<Vec<IndexId>> {
    let mut written = Vec::new();
    for group in crate::repo::index::file_groups(catalog.unindexed_packs()?) {
        let id = repo.write_index(&group)?;
        let ids: Vec<PackId> = group.iter().map(|p| p.id).collect();
        catalog.mark_indexed(id, &ids)?;
        written.push(id);
    }
    Ok(written)
}
