//! Backing up directory trees: walk, chunk, deduplicate, compress, seal, pack, upload,
//! then index and snapshot, in that order.
//!
//! The work runs as a pipeline over both cores:
//!
//! ```text
//! walker ─► file readers (read, chunk, hash, dedup) ─► sealers (zstd, seal, pack) ─► uploader
//!    │                 │ chunk lists                                                 │
//!    ▼                 ▼                                                             ▼
//! tree builder (this thread): trees in walk order ─► sealers        catalog: pack recorded
//! ```
//! The snapshot manifest is written last and is the only commit point: a crash at any
//! moment leaves uploaded packs that the catalog knows and the next backup reuses.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use crossbeam_channel::{bounded, Receiver, Sender};

use crate::catalog::Catalog;
use crate::commit;
use crate::error::{Error, IoContext, Result};
use crate::fsmeta::FileStamp;
use crate::fsmeta::{at_xattrs, fd_xattrs, node_from_meta, stamp};
use crate::fsread::{open_listed, DataReader, OpenError};
use crate::progress::Progress;
use crate::repo::chunker::ChunkStream;
use crate::repo::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::repo::index::IndexedPack;
use crate::repo::pack::{BlobKind, Compression, FinishedPack, PackWriter};
use crate::repo::snapshot::{Snapshot, Summary};
use crate::repo::tree::{Node, NodeKind, Tree, Xattr};
use crate::repo::Repo;
use crate::safe_fs::Dir;
use crate::source::{StreamFile, StreamOpener};

/// Index files list at most this many blobs, so none has to be huge.
const INDEX_FILE_BLOBS: usize = 100_000;
/// Packs uploading at once; with the pack size this bounds the memory of uploads.
const UPLOADS_IN_FLIGHT: usize = 2;

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
}

/// A committed backup.
pub struct BackupOutcome {
    /// The new snapshot.
    pub id: SnapshotId,
    /// Its manifest.
    pub snapshot: Snapshot,
    /// Files that could not be read and are missing from the snapshot.
    pub warnings: Vec<String>,
}

/// A blob that the dedup check found new.
struct NewBlob {
    id: BlobId,
    kind: BlobKind,
    data: Vec<u8>,
}

/// Where a file's contents come from.
enum Input {
    /// A file in a directory, opened through the directory's handle; its path for
    /// messages.
    At(Arc<Dir>, OsString, PathBuf),
    Stream(StreamOpener),
}

/// What reading a file gave.
struct ReadOk {
    /// Its chunks, in order.
    ids: Vec<BlobId>,
    /// The size they stand for, holes included: always agrees with the content.
    size: u64,
    /// Holes left out of the content (`[offset, length]`).
    holes: Vec<[u64; 2]>,
    /// Extended attributes read through the open handle.
    xattrs: Vec<Xattr>,
    /// The file as read (the handle's `fstat`); `None` for a stream.
    meta: Option<std::fs::Metadata>,
    /// Stored, but not as a consistent version (it kept changing) or without all its
    /// metadata: a warning for the run, and no files cache entry.
    warning: Option<String>,
}

type ReadResult = std::result::Result<ReadOk, ReadError>;

/// Reads of a file that keeps changing under the reader before it is stored as last read.
const READ_ATTEMPTS: usize = 3;

/// A file whose contents must be read.
struct FileJob {
    input: Input,
    /// Device and inode the walk saw: the file opened must be that one.
    dev: u64,
    ino: u64,
    done: Sender<ReadResult>,
}

/// Why a file's contents are missing from the snapshot.
enum ReadError {
    /// Deleted between listing and reading; not an error for a live tree.
    Vanished,
    /// Could not be read (permissions, I/O error) or the run stopped.
    Failed(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Failed(e.to_string())
    }
}

impl From<&str> for ReadError {
    fn from(e: &str) -> Self {
        ReadError::Failed(e.to_string())
    }
}

/// The walk in order, for the tree builder.
enum Event {
    Enter(Node),
    Leave,
    Leaf(Node),
    File {
        node: Node,
        cache_key: Vec<u8>,
        stamp: FileStamp,
        content: Content,
    },
    Warning(String),
}

enum Content {
    Cached(Vec<BlobId>),
    Pending(Receiver<ReadResult>),
}

/// State shared by the pipeline's threads.
struct Shared<'a> {
    repo: &'a Repo,
    catalog_path: &'a Path,
    /// Blobs sent for storing in this run: the in-memory half of the dedup check.
    seen: Mutex<HashSet<BlobId>>,
    /// Packs of other runs that deduplicated blobs were found in (see `commit`).
    reused: Mutex<HashSet<PackId>>,
    /// Set on error or interrupt; every stage stops early.
    abort: AtomicBool,
    interrupt: Arc<AtomicBool>,
    error: Mutex<Option<Error>>,
    bytes_added: AtomicU64,
    blobs_added: AtomicU64,
    bytes_read: AtomicU64,
    files_read: AtomicU64,
    progress: &'a Progress,
    /// Paths left out of the walk.
    exclude: Option<globset::GlobSet>,
    /// The backup's time, as the mtime of streamed files.
    now_ns: i64,
}

impl Shared<'_> {
    fn stopped(&self) -> bool {
        self.abort.load(Ordering::Relaxed) || self.interrupt.load(Ordering::Relaxed)
    }

    fn fail(&self, e: Error) {
        let mut slot = self.error.lock().unwrap();
        if slot.is_none() {
            *slot = Some(e);
        }
        self.abort.store(true, Ordering::SeqCst);
    }

    /// Whether `id` must be stored: not in the catalog and not already sent this run.
    fn is_new(&self, catalog: &Catalog, id: &BlobId) -> Result<bool> {
        if self.seen.lock().unwrap().contains(id) {
            return Ok(false);
        }
        if let Some(pack) = catalog.live_pack_of(id)? {
            self.reused.lock().unwrap().insert(pack);
            return Ok(false);
        }
        Ok(self.seen.lock().unwrap().insert(*id))
    }

    /// Whether every blob of a files cache entry is still stored; records their packs.
    fn all_known(&self, catalog: &Catalog, ids: &[BlobId]) -> Result<bool> {
        let mut packs = Vec::with_capacity(ids.len());
        for id in ids {
            match catalog.live_pack_of(id)? {
                Some(p) => packs.push(p),
                None => return Ok(false),
            }
        }
        self.reused.lock().unwrap().extend(packs);
        Ok(true)
    }
}

/// Normalizes a path as given into the components recorded in the snapshot.
fn components(p: &Path) -> Result<Vec<OsString>> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s.to_os_string()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                return Err(Error::Usage(format!(
                    "path {} contains '..'; give it without",
                    p.display()
                )))
            }
            Component::Prefix(_) => unreachable!("no prefixes on Unix"),
        }
    }
    Ok(out)
}

/// Runs of a backup of paths alone, when prunes keep marking packs it deduplicated
/// against before it commits.
const COMMIT_ATTEMPTS: usize = 3;

/// Runs a backup and commits its snapshot.
///
/// A prune that marks a pack the backup deduplicated against while it ran makes the
/// commit refuse (see [`commit`]). A backup of paths then runs again, reading only what
/// lived in those packs (the files cache still holds the rest); one with streams (a
/// database dump, which cannot be replayed) fails, and the next scheduled run takes it.
pub fn run(repo: &Repo, catalog: &mut Catalog, req: BackupRequest<'_>) -> Result<BackupOutcome> {
    let mut req = req;
    let mut attempt = 1;
    loop {
        let again = (attempt < COMMIT_ATTEMPTS && req.streams.is_empty()).then(|| req.again());
        match run_once(repo, catalog, req)? {
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
        }
    }
}

/// One run of [`run`]; `Ok(Err(..))` when the commit refused because a prune took packs
/// it relied on.
fn run_once(
    repo: &Repo,
    catalog: &mut Catalog,
    req: BackupRequest<'_>,
) -> Result<std::result::Result<BackupOutcome, commit::Lost>> {
    let started = Instant::now();
    if req.paths.is_empty() && req.streams.is_empty() {
        return Err(Error::Usage(
            "nothing to back up: give at least one path".into(),
        ));
    }
    // Check every path before writing anything.
    let mut roots: Vec<(Vec<OsString>, PathBuf)> = Vec::new();
    for p in &req.paths {
        std::fs::symlink_metadata(p)
            .map_err(|e| Error::Usage(format!("cannot back up {}: {e}", p.display())))?;
        let abs = std::path::absolute(p).ctx(|| format!("resolving {}", p.display()))?;
        roots.push((components(p)?, abs));
    }
    roots.sort();
    // A path inside another given path is already covered.
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

    let exclude = build_excludes(&kept, &req.exclude)?;
    recover_unindexed(repo, catalog)?;
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        req.now.timestamp_nanos_opt().unwrap_or(0)
    );
    catalog.drop_abandoned_staging()?;

    let catalog_path = catalog.path().to_path_buf();
    let shared = Shared {
        repo,
        catalog_path: &catalog_path,
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
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let readers = cores.clamp(2, 4);
    let sealers = cores.clamp(2, 8);

    let (event_tx, event_rx) = bounded::<Event>(4096);
    let (job_tx, job_rx) = bounded::<FileJob>(256);
    let (blob_tx, blob_rx) = bounded::<NewBlob>(sealers * 2);
    let (pack_tx, pack_rx) = bounded::<FinishedPack>(0);

    let (tree_result, summary_counts) = std::thread::scope(|s| {
        let sh = &shared;
        let walker_roots = kept.clone();
        let scan_roots: Vec<PathBuf> = kept.iter().map(|k| k.1.clone()).collect();
        if sh.progress.is_visible() {
            s.spawn(move || {
                let total = scan_size(&scan_roots, &sh.abort);
                sh.progress.set_total(total);
            });
        }
        let streams = req.streams;
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
        let built = build_trees(sh, event_rx, &blob_tx, &run_id);
        if built.0.is_err() {
            shared.abort.store(true, Ordering::SeqCst);
        }
        drop(blob_tx);
        let _ = uploader.join();
        built
    });
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

    // Packs are all stored: prove they and those reused are still live, list them in
    // index files, then commit the snapshot and prove it again.
    let deps = commit::Dependencies {
        reused: std::mem::take(&mut *shared.reused.lock().unwrap()),
        own: catalog.unindexed_packs()?.iter().map(|p| p.id).collect(),
    };
    if let Err(lost) = commit::check_before(repo, catalog, &deps)? {
        return Ok(Err(lost));
    }
    let written = write_indexes(repo, catalog)?;
    let snapshot = Snapshot {
        time: req.now,
        stack: req.stack.clone(),
        hostname: req.hostname.clone(),
        paths: req.paths.iter().map(|p| p.display().to_string()).collect(),
        source: req.source.clone(),
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
    let id = repo.write_snapshot(&snapshot)?;
    commit::check_after(repo, catalog, &deps, &id, &written)?;
    catalog.add_snapshot(id, &snapshot)?;
    catalog.commit_files(&run_id)?;
    Ok(Ok(BackupOutcome {
        id,
        snapshot,
        warnings,
    }))
}

/// Packs this host uploaded before a crash: keep those still in the store for this run's
/// index (their blobs were already deduplicated against), forget the rest.
fn recover_unindexed(repo: &Repo, catalog: &mut Catalog) -> Result<()> {
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
    let packs = catalog.unindexed_packs()?;
    let mut batch: Vec<IndexedPack> = Vec::new();
    let mut written = Vec::new();
    let mut blobs = 0;
    let mut flush = |batch: &mut Vec<IndexedPack>, catalog: &mut Catalog| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let id = repo.write_index(batch)?;
        let ids: Vec<PackId> = batch.iter().map(|p| p.id).collect();
        catalog.mark_indexed(id, &ids)?;
        written.push(id);
        batch.clear();
        Ok(())
    };
    for p in packs {
        blobs += p.blobs.len();
        batch.push(p);
        if blobs >= INDEX_FILE_BLOBS {
            flush(&mut batch, catalog)?;
            blobs = 0;
        }
    }
    flush(&mut batch, catalog)?;
    Ok(written)
}

/// Sums file sizes for the progress bar's total; stops early if the backup does.
fn scan_size(roots: &[PathBuf], abort: &AtomicBool) -> u64 {
    // Directory handles, not paths: a deep tree has paths longer than the kernel takes.
    let mut total = 0;
    for r in roots {
        let Ok(m) = std::fs::symlink_metadata(r) else {
            continue;
        };
        if !m.is_dir() {
            total += if m.is_file() { m.len() } else { 0 };
            continue;
        }
        let Ok(top) = Dir::open(r) else { continue };
        // Depth first: one handle per level (deep trees fail to open past the open-files
        // limit, which only makes the total smaller).
        let names = top.entries().unwrap_or_default().into_iter();
        let mut stack = vec![(top, names)];
        while let Some((d, names)) = stack.last_mut() {
            if abort.load(Ordering::Relaxed) {
                return total;
            }
            let Some((name, _)) = names.next() else {
                stack.pop();
                continue;
            };
            match d.stat(&name) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                    if let Ok(sub) = d.open_dir(&name) {
                        let names = sub.entries().unwrap_or_default().into_iter();
                        stack.push((sub, names));
                    }
                }
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => total += st.st_size as u64,
                _ => {}
            }
        }
    }
    total
}

/// Walks the given paths in a stable order and emits events for the tree builder.
fn walk(
    sh: &Shared<'_>,
    roots: &[(Vec<OsString>, PathBuf)],
    mut streams: Vec<StreamFile>,
    events: &Sender<Event>,
    jobs: &Sender<FileJob>,
) -> Result<()> {
    let catalog = Catalog::open(sh.catalog_path, &sh.repo.config.id)?;
    let _pin = catalog.pin_snapshot()?;
    let send = |e: Event| events.send(e).map_err(|_| Error::Interrupted);
    // Streams are files at the root, in name order like every tree.
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    for s in streams {
        let mut node = Node::new(NodeKind::File, std::ffi::OsStr::new(&s.name));
        node.mode = 0o600;
        node.mtime_ns = sh.now_ns;
        let (tx, rx) = bounded(1);
        jobs.send(FileJob {
            input: Input::Stream(s.open),
            dev: 0,
            ino: 0,
            done: tx,
        })
        .map_err(|_| Error::Interrupted)?;
        send(Event::File {
            node,
            cache_key: Vec::new(),
            stamp: FileStamp::default(),
            content: Content::Pending(rx),
        })?;
    }
    // Directories opened for the path components above the given paths.
    let mut open: Vec<OsString> = Vec::new();
    for (comps, abs) in roots {
        if sh.stopped() {
            return Ok(());
        }
        let (parents, last) = match comps.split_last() {
            Some((last, parents)) => (parents, Some(last)),
            None => (&comps[..], None),
        };
        let shared_len = open.iter().zip(parents).take_while(|(a, b)| a == b).count();
        while open.len() > shared_len {
            open.pop();
            send(Event::Leave)?;
        }
        // The real directories above the path, as far as the path was given.
        let mut ancestor = abs.clone();
        for _ in 0..comps.len() {
            ancestor.pop();
        }
        for (i, c) in parents.iter().enumerate() {
            ancestor.push(c);
            if i < shared_len {
                continue;
            }
            let node = match std::fs::metadata(&ancestor) {
                Ok(m) => node_from_meta(c, &m),
                Err(_) => {
                    let mut n = Node::new(NodeKind::Dir, c);
                    n.mode = 0o755;
                    n
                }
            };
            let mut node = node;
            node.kind = NodeKind::Dir;
            send(Event::Enter(node))?;
            open.push(c.clone());
        }
        match last {
            Some(name) => {
                // The given path is stat'ed in its parent, like every entry below it.
                let parent = abs.parent().unwrap_or(Path::new("/"));
                match Dir::open_path(parent) {
                    Ok(d) => {
                        if let Some((sub, names)) =
                            visit(sh, &catalog, &Arc::new(d), abs, name.clone(), &send, jobs)?
                        {
                            descend(sh, &catalog, sub, abs, names, true, &send, jobs)?;
                        }
                    }
                    Err(e) => send(Event::Warning(format!(
                        "cannot read {}: {e}",
                        abs.display()
                    )))?,
                }
            }
            // `.` or `/`: its entries go straight into the root tree.
            None => match Dir::open(abs) {
                Ok(d) => {
                    let names = list(&d, abs, &send)?;
                    descend(sh, &catalog, Some(d), abs, names, false, &send, jobs)?;
                }
                Err(e) => send(Event::Warning(format!(
                    "cannot list {}: {e}",
                    abs.display()
                )))?,
            },
        }
    }
    for _ in open {
        send(Event::Leave)?;
    }
    Ok(())
}

/// Directories deeper than this below the one being listed give their handles back (and
/// are opened again if they have entries left): a tree of any depth is walked within the
/// open-files limit.
const OPEN_DIRS: usize = 256;

/// A directory being listed.
struct Level {
    /// Its handle, unless given back.
    dir: Option<Arc<Dir>>,
    /// Its path as recorded (messages, excludes, the files cache).
    path: PathBuf,
    /// Its path below the top of this descent, to open it again.
    rel: PathBuf,
    /// Entries left, in name order.
    names: std::vec::IntoIter<OsString>,
}

/// The names in a directory, sorted; a directory that cannot be listed is a warning.
fn list(dir: &Dir, path: &Path, send: &dyn Fn(Event) -> Result<()>) -> Result<Vec<OsString>> {
    match dir.entries() {
        Ok(e) => {
            let mut names: Vec<OsString> = e.into_iter().map(|(n, _)| n).collect();
            names.sort();
            Ok(names)
        }
        Err(e) => {
            send(Event::Warning(format!(
                "cannot list {}: {e}",
                path.display()
            )))?;
            Ok(Vec::new())
        }
    }
}

/// Walks below an open directory, depth first in name order, with a stack of its own
/// rather than the call stack: trees may be thousands of levels deep, deeper than any
/// path the kernel resolves at once, so every entry is reached through its parent's
/// handle. `entered`: the top was entered, so leaving it ends a tree.
#[allow(clippy::too_many_arguments)]
fn descend(
    sh: &Shared<'_>,
    catalog: &Catalog,
    top: Option<Dir>,
    path: &Path,
    names: Vec<OsString>,
    entered: bool,
    send: &dyn Fn(Event) -> Result<()>,
    jobs: &Sender<FileJob>,
) -> Result<()> {
    let top = top.map(Arc::new);
    let mut stack = vec![Level {
        dir: top.clone(),
        path: path.to_path_buf(),
        rel: PathBuf::new(),
        names: names.into_iter(),
    }];
    while let Some(level) = stack.last_mut() {
        if sh.stopped() {
            return Ok(());
        }
        let Some(name) = level.names.next() else {
            stack.pop();
            if !stack.is_empty() || entered {
                send(Event::Leave)?;
            }
            continue;
        };
        if level.dir.is_none() {
            match top.as_ref().map(|t| t.open_dir_beneath(&level.rel)) {
                Some(Ok(d)) => level.dir = Some(Arc::new(d)),
                Some(Err(e)) => {
                    send(Event::Warning(format!(
                        "cannot list {}: {e}",
                        level.path.display()
                    )))?;
                    level.names = Vec::new().into_iter();
                    continue;
                }
                None => {
                    level.names = Vec::new().into_iter();
                    continue;
                }
            }
        }
        let dir = level.dir.clone().expect("just opened");
        let path = level.path.join(&name);
        let rel = level.rel.join(&name);
        if let Some((sub, names)) = visit(sh, catalog, &dir, &path, name, send, jobs)? {
            if stack.len() >= OPEN_DIRS {
                let far = stack.len() - OPEN_DIRS;
                if far > 0 {
                    stack[far].dir = None;
                }
            }
            stack.push(Level {
                dir: sub.map(Arc::new),
                path,
                rel,
                names: names.into_iter(),
            });
        }
    }
    Ok(())
}

/// Records one entry of `dir`; a directory is entered and returned (its handle, if it
/// opened, and its names) for the caller to walk.
#[allow(clippy::type_complexity)]
fn visit(
    sh: &Shared<'_>,
    catalog: &Catalog,
    dir: &Arc<Dir>,
    path: &Path,
    name: OsString,
    send: &dyn Fn(Event) -> Result<()>,
    jobs: &Sender<FileJob>,
) -> Result<Option<(Option<Dir>, Vec<OsString>)>> {
    let meta = match dir.stat(&name) {
        Ok(m) => m,
        // Deleted since it was listed.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => {
            send(Event::Warning(format!(
                "cannot read {}: {e}",
                path.display()
            )))?;
            return Ok(None);
        }
    };
    if sh.exclude.as_ref().is_some_and(|x| x.is_match(path)) {
        return Ok(None);
    }
    let mut node = node_from_meta(&name, &meta);
    // A file that is read or a directory that is entered gets its attributes through its
    // handle; everything else through its parent's.
    if !matches!(node.kind, NodeKind::File | NodeKind::Dir) {
        node_xattrs(&mut node, at_xattrs(dir, &name), path, send)?;
    }
    match node.kind {
        NodeKind::Dir => {
            // Opened without following a link: a directory swapped for one is not entered.
            match dir.open_dir(&name) {
                Ok(d) => {
                    node_xattrs(&mut node, fd_xattrs(d.as_fd().as_raw_fd()), path, send)?;
                    send(Event::Enter(node))?;
                    let names = list(&d, path, send)?;
                    Ok(Some((Some(d), names)))
                }
                Err(e) => {
                    send(Event::Enter(node))?;
                    send(Event::Warning(format!(
                        "cannot list {}: {e}",
                        path.display()
                    )))?;
                    Ok(Some((None, Vec::new())))
                }
            }
        }
        NodeKind::Symlink => {
            match dir.read_link(&name) {
                Ok(t) => node.set_target(&t),
                Err(e) => {
                    send(Event::Warning(format!(
                        "cannot read link {}: {e}",
                        path.display()
                    )))?;
                    return Ok(None);
                }
            }
            send(Event::Leaf(node))?;
            Ok(None)
        }
        NodeKind::File => {
            let st = stamp(&meta);
            let cache_key = path.as_os_str().as_bytes().to_vec();
            let cached = match catalog.cached_file(&cache_key)? {
                Some((old, ids)) if old == st && sh.all_known(catalog, &ids)? => Some(ids),
                _ => None,
            };
            let content = match cached {
                Some(ids) => {
                    node_xattrs(&mut node, at_xattrs(dir, &name), path, send)?;
                    sh.progress.add_bytes(st.size);
                    Content::Cached(ids)
                }
                None => {
                    let (tx, rx) = bounded(1);
                    jobs.send(FileJob {
                        input: Input::At(dir.clone(), name, path.to_path_buf()),
                        dev: meta.st_dev,
                        ino: meta.st_ino,
                        done: tx,
                    })
                    .map_err(|_| Error::Interrupted)?;
                    Content::Pending(rx)
                }
            };
            send(Event::File {
                node,
                cache_key,
                stamp: st,
                content,
            })?;
            Ok(None)
        }
        _ => {
            send(Event::Leaf(node))?;
            Ok(None)
        }
    }
}

/// Stores the extended attributes read for an entry; a failure is a warning.
fn node_xattrs(
    node: &mut Node,
    read: std::io::Result<Vec<Xattr>>,
    path: &Path,
    send: &dyn Fn(Event) -> Result<()>,
) -> Result<()> {
    match read {
        Ok(x) => {
            node.xattrs = x;
            Ok(())
        }
        // Gone since it was listed: what the walk saw is kept.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => send(Event::Warning(format!(
            "{}: extended attributes not stored: {e}",
            path.display()
        ))),
    }
}

/// Compiles exclude patterns against each backed-up path.
fn build_excludes(
    roots: &[(Vec<OsString>, PathBuf)],
    patterns: &[String],
) -> Result<Option<globset::GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = globset::GlobSetBuilder::new();
    for (_, abs) in roots {
        let base = globset::escape(&abs.to_string_lossy());
        for p in patterns {
            set.add(crate::config::exclude_glob(&base, p).map_err(Error::Config)?);
        }
    }
    set.build()
        .map(Some)
        .map_err(|e| Error::Config(format!("exclude patterns: {e}")))
}

/// Reads, chunks and hashes files; sends new chunks on, returns each file's chunk list.
fn read_files(sh: &Shared<'_>, jobs: Receiver<FileJob>, blobs: Sender<NewBlob>) -> Result<()> {
    let catalog = Catalog::open(sh.catalog_path, &sh.repo.config.id)?;
    let _pin = catalog.pin_snapshot()?;
    for job in jobs {
        if sh.stopped() {
            return Ok(());
        }
        let result = match job.input {
            Input::At(dir, name, path) => {
                read_path(sh, &catalog, &blobs, (&dir, &name, &path), job.dev, job.ino)
            }
            Input::Stream(open) => (|| {
                let (ids, len) = chunk_into(sh, &catalog, &blobs, open()?, u64::MAX, false)?;
                Ok(ReadOk {
                    ids,
                    size: len,
                    holes: Vec::new(),
                    xattrs: Vec::new(),
                    meta: None,
                    warning: None,
                })
            })(),
        };
        if let Ok(r) = &result {
            let data = r.size - r.holes.iter().map(|h| h[1]).sum::<u64>();
            sh.bytes_read.fetch_add(data, Ordering::Relaxed);
            sh.files_read.fetch_add(1, Ordering::Relaxed);
        }
        let _ = job.done.send(result);
    }
    Ok(())
}

/// Whether two `fstat`s of one handle show the same version of the file.
fn same_version(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.size() == b.size()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && a.ctime() == b.ctime()
        && a.ctime_nsec() == b.ctime_nsec()
}

/// Reads one listed file: checks that it is still the regular file the walk saw, skips
/// its holes, and reads it again (up to `READ_ATTEMPTS` times) while it changes under the
/// reader; what is stored always agrees with the size recorded.
fn read_path(
    sh: &Shared<'_>,
    catalog: &Catalog,
    blobs: &Sender<NewBlob>,
    (dir, name, path): (&Dir, &OsStr, &Path),
    dev: u64,
    ino: u64,
) -> ReadResult {
    let (file, mut before) = open_listed(dir, name, dev, ino).map_err(|e| match e {
        OpenError::Vanished => ReadError::Vanished,
        OpenError::Replaced(what) => ReadError::Failed(format!(
            "it was replaced by {what} after it was listed; skipped"
        )),
        OpenError::Failed(e) => ReadError::Failed(e.to_string()),
    })?;
    let mut warning = None;
    let xattrs = match fd_xattrs(file.as_raw_fd()) {
        Ok(x) => x,
        Err(e) => {
            warning = Some(format!(
                "{}: extended attributes not stored: {e}",
                path.display()
            ));
            Vec::new()
        }
    };
    let min = sh.repo.chunker.params().min_size as u64;
    for attempt in 1..=READ_ATTEMPTS {
        let size = before.len();
        // Small files are one chunk anyway; only larger ones pay for the lseeks.
        let holes = if size >= min && crate::fsread::may_be_sparse(&before) {
            crate::fsread::holes(&file, size)
        } else {
            Vec::new()
        };
        let mut reader = DataReader::new(&file, &holes, size);
        let data_len = size - holes.iter().map(|h| h[1]).sum::<u64>();
        let (ids, read) = chunk_into(sh, catalog, blobs, &mut reader, data_len, true)?;
        let (got_size, got_holes) = reader.layout(size, &holes);
        debug_assert_eq!(got_size - got_holes.iter().map(|h| h[1]).sum::<u64>(), read);
        let after = file.metadata()?;
        if got_size == size && same_version(&before, &after) {
            return Ok(ReadOk {
                ids,
                size,
                holes,
                xattrs,
                meta: Some(after),
                warning,
            });
        }
        if attempt == READ_ATTEMPTS {
            return Ok(ReadOk {
                ids,
                size: got_size,
                holes: got_holes,
                xattrs,
                meta: Some(after),
                warning: Some(format!(
                    "{} changed while it was read ({READ_ATTEMPTS} attempts): stored as last \
                     read, {got_size} bytes, which may mix old and new data",
                    path.display()
                )),
            });
        }
        tracing::debug!(
            "{} changed while it was read; reading it again",
            path.display()
        );
        before = after;
    }
    unreachable!("the last attempt returns")
}

/// Chunks `input`, sends the chunks not stored yet to the sealers, and returns the chunk
/// list and the bytes read. `small_ok`: read a small input into one buffer.
fn chunk_into(
    sh: &Shared<'_>,
    catalog: &Catalog,
    blobs: &Sender<NewBlob>,
    mut input: impl Read,
    size_hint: u64,
    small_ok: bool,
) -> std::result::Result<(Vec<BlobId>, u64), ReadError> {
    let chunker = &sh.repo.chunker;
    let min = chunker.params().min_size;
    let mut ids = Vec::with_capacity((size_hint.min(1 << 40) >> 20) as usize + 1);
    let mut read = 0u64;
    // A file below the minimum chunk size is one chunk: read it straight into its own
    // buffer, with no chunking buffer to fill and copy out of.
    let mut head = Vec::new();
    let mut whole = None;
    if small_ok && (size_hint as usize) < min {
        let mut buf = Vec::with_capacity(size_hint as usize + 1);
        (&mut input).take(min as u64).read_to_end(&mut buf)?;
        if buf.len() < min {
            whole = Some(buf);
        } else {
            // It grew past the minimum since it was listed: chunk it as a stream.
            head = buf;
        }
    }
    let mut stream =
        ChunkStream::with_size_hint(chunker, std::io::Cursor::new(head).chain(input), size_hint);
    let mut next = || match whole.take() {
        Some(b) if b.is_empty() => Ok(None),
        Some(b) => Ok(Some(b)),
        None => stream.next_chunk(),
    };
    while let Some(chunk) = next()? {
        if sh.stopped() {
            return Err("interrupted".into());
        }
        let id = sh.repo.keys.blob_id(&chunk);
        read += chunk.len() as u64;
        sh.progress.add_bytes(chunk.len() as u64);
        ids.push(id);
        match sh.is_new(catalog, &id) {
            Ok(true) => {
                if blobs
                    .send(NewBlob {
                        id,
                        kind: BlobKind::Data,
                        data: chunk,
                    })
                    .is_err()
                {
                    return Err("interrupted".into());
                }
            }
            Ok(false) => {}
            Err(e) => {
                sh.fail(e);
                return Err("catalog failed".into());
            }
        }
    }
    Ok((ids, read))
}

/// Compresses and seals blobs into this thread's own data and metadata packs.
fn seal_blobs(sh: &Shared<'_>, blobs: Receiver<NewBlob>, packs: Sender<FinishedPack>) {
    let cfg = &sh.repo.config;
    let recipients = &sh.repo.keys.recipients;
    let mut compressor = match zstd::bulk::Compressor::new(cfg.compression_level) {
        Ok(c) => c,
        Err(e) => return sh.fail(Error::Failed(format!("zstd: {e}"))),
    };
    let capacity = cfg.pack_size + cfg.chunker.max_size + 4096;
    let mut data_pack: Option<PackWriter> = None;
    let mut meta_pack: Option<PackWriter> = None;
    let mut out = Vec::new();
    for blob in blobs {
        if sh.stopped() {
            return;
        }
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(blob.data.len()));
        let compressed = compressor.compress_to_buffer(&blob.data, &mut out).is_ok()
            && out.len() < blob.data.len();
        let (payload, compression) = if compressed {
            (&out[..], Compression::Zstd)
        } else {
            (&blob.data[..], Compression::None)
        };
        let slot = match blob.kind {
            BlobKind::Data => &mut data_pack,
            BlobKind::Tree => &mut meta_pack,
        };
        let pack = slot.get_or_insert_with(|| {
            let cap = if blob.kind == BlobKind::Data {
                capacity
            } else {
                1 << 20
            };
            PackWriter::new(blob.kind, recipients, cap)
        });
        let before = pack.len();
        pack.add(blob.id, compression, blob.data.len(), payload);
        sh.bytes_added
            .fetch_add((pack.len() - before) as u64, Ordering::Relaxed);
        sh.blobs_added.fetch_add(1, Ordering::Relaxed);
        if pack.len() >= cfg.pack_size {
            let full = slot.take().expect("just filled").finish();
            if packs.send(full).is_err() {
                return;
            }
        }
    }
    // The input is closed: flush what is left, unless the run is being abandoned.
    for p in [data_pack, meta_pack].into_iter().flatten() {
        if sh.stopped() || p.is_empty() || packs.send(p.finish()).is_err() {
            return;
        }
    }
}

/// Uploads packs, `UPLOADS_IN_FLIGHT` at once, and records each in the catalog the moment
/// it is stored: a backup killed right after an upload still leaves the next run knowing
/// that pack, so it is reused instead of uploaded again.
fn upload_packs(sh: &Shared<'_>, packs: Receiver<FinishedPack>) -> Result<()> {
    let mut catalog = Catalog::open(sh.catalog_path, &sh.repo.config.id)?;
    let rt = sh.repo.runtime().clone();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<(IndexedPack, Result<()>)>();
    let mut in_flight = 0usize;
    let mut packs_open = true;
    let closed = crossbeam_channel::never();
    while packs_open || in_flight > 0 {
        // Take a pack only when a slot is free: a pack held here while waiting would be
        // one more 16 MiB buffer alive (the sealers wait instead, holding theirs).
        let ready = packs_open && in_flight < UPLOADS_IN_FLIGHT;
        crossbeam_channel::select! {
            recv(if ready { &packs } else { &closed }) -> pack => {
                let Ok(pack) = pack else {
                    packs_open = false;
                    continue;
                };
                let meta = IndexedPack {
                    id: pack.id,
                    kind: pack.kind,
                    size: pack.bytes.len() as u64,
                    wrapped_key: pack.wrapped_key.clone(),
                    blobs: pack.entries.clone(),
                };
                let (objects, handle, bytes, done_tx) =
                    (sh.repo.objects().clone(), crate::repo::layout::Handle::pack(pack.kind, &pack.id), pack.bytes, done_tx.clone());
                in_flight += 1;
                rt.spawn(async move {
                    let result = objects.put(&handle, bytes).await;
                    let _ = done_tx.send((meta, result));
                });
            }
            recv(done_rx) -> done => {
                let (meta, result) = done.expect("this thread holds a sender");
                in_flight -= 1;
                result?;
                catalog.add_uploaded_pack(&meta)?;
            }
        }
    }
    Ok(())
}

#[derive(Default, Clone, Copy)]
struct Counts {
    files: u64,
    dirs: u64,
    bytes: u64,
}

/// Updates a file's node to the version read through its handle.
fn refresh_node(node: &mut Node, m: &std::fs::Metadata) {
    let fresh = node_from_meta(&node.os_name(), m);
    node.mode = fresh.mode;
    node.uid = fresh.uid;
    node.gid = fresh.gid;
    node.mtime_ns = fresh.mtime_ns;
}

/// Builds trees bottom-up in walk order and sends them to the sealers; stages the files
/// cache entries of files that were read.
#[allow(clippy::type_complexity)]
fn build_trees(
    sh: &Shared<'_>,
    events: Receiver<Event>,
    blobs: &Sender<NewBlob>,
    run_id: &str,
) -> (Result<(BlobId, Vec<String>)>, Counts) {
    let mut counts = Counts::default();
    let r = (|| {
        let mut catalog = Catalog::open(sh.catalog_path, &sh.repo.config.id)?;
        let mut warnings = Vec::new();
        let mut stack: Vec<(Option<Node>, Vec<Node>)> = vec![(None, Vec::new())];
        let mut staged: Vec<(Vec<u8>, FileStamp, Vec<BlobId>)> = Vec::new();
        let store_tree = |nodes: Vec<Node>, catalog: &Catalog| -> Result<BlobId> {
            let mut tree = Tree { nodes };
            let bytes = tree.to_bytes();
            let id = sh.repo.keys.blob_id(&bytes);
            if sh.is_new(catalog, &id)? {
                blobs
                    .send(NewBlob {
                        id,
                        kind: BlobKind::Tree,
                        data: bytes,
                    })
                    .map_err(|_| Error::Interrupted)?;
            }
            Ok(id)
        };
        for ev in events {
            if sh.stopped() {
                return Err(Error::Interrupted);
            }
            match ev {
                Event::Enter(node) => stack.push((Some(node), Vec::new())),
                Event::Leave => {
                    let (node, children) = stack.pop().expect("walk is balanced");
                    let mut node = node.expect("only the root has no node");
                    node.subtree = Some(store_tree(children, &catalog)?);
                    counts.dirs += 1;
                    stack.last_mut().expect("root stays").1.push(node);
                }
                Event::Leaf(node) => stack.last_mut().expect("root stays").1.push(node),
                Event::File {
                    mut node,
                    cache_key,
                    stamp: listed,
                    content,
                } => {
                    let ids = match content {
                        Content::Cached(ids) => ids,
                        Content::Pending(rx) => match rx.recv() {
                            Ok(Ok(r)) => {
                                if let Some(m) = &r.meta {
                                    // The version read, which may be newer than the listing.
                                    refresh_node(&mut node, m);
                                }
                                node.size = r.size;
                                node.holes = r.holes;
                                node.xattrs = r.xattrs;
                                let read_as = r.meta.as_ref().map_or(listed, stamp);
                                match r.warning {
                                    Some(w) => warnings.push(w),
                                    // The files cache keeps chunk lists only: a file stored
                                    // with holes is read again each time.
                                    None if !cache_key.is_empty() && node.holes.is_empty() => {
                                        staged.push((cache_key, read_as, r.ids.clone()));
                                        if staged.len() >= 1024 {
                                            catalog.stage_files(run_id, &staged)?;
                                            staged.clear();
                                        }
                                    }
                                    _ => {}
                                }
                                r.ids
                            }
                            Ok(Err(ReadError::Failed(e))) if cache_key.is_empty() => {
                                if sh.stopped() {
                                    return Err(Error::Interrupted);
                                }
                                return Err(Error::Failed(format!(
                                    "{}: {e}",
                                    node.os_name().to_string_lossy()
                                )));
                            }
                            Ok(Err(ReadError::Vanished)) => {
                                // Deleted since it was listed (a temp file): not in the snapshot.
                                tracing::info!(
                                    "{} vanished during the backup",
                                    String::from_utf8_lossy(&cache_key)
                                );
                                continue;
                            }
                            Ok(Err(ReadError::Failed(e))) => {
                                if sh.stopped() {
                                    return Err(Error::Interrupted);
                                }
                                warnings.push(format!(
                                    "cannot read {}: {e}",
                                    String::from_utf8_lossy(&cache_key)
                                ));
                                continue;
                            }
                            Err(_) => return Err(Error::Interrupted),
                        },
                    };
                    counts.files += 1;
                    counts.bytes += node.size;
                    sh.progress.add_file();
                    node.content = ids;
                    stack.last_mut().expect("root stays").1.push(node);
                }
                Event::Warning(w) => warnings.push(w),
            }
        }
        if sh.stopped() {
            return Err(Error::Interrupted);
        }
        if stack.len() != 1 {
            return Err(Error::Failed("internal error: unbalanced walk".into()));
        }
        catalog.stage_files(run_id, &staged)?;
        let (_, children) = stack.pop().expect("root");
        let root = store_tree(children, &catalog)?;
        Ok((root, warnings))
    })();
    (r, counts)
}
