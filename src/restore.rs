//! Restoring a snapshot (or part of it) into a directory.
//!
//! Plan, then do: walk the trees into a plan (directories, files and where each of their
//! chunks lives), create the skeleton, then fetch pack by pack with range GETs — each
//! needed span once — and write every chunk to every file that holds it. Metadata comes
//! last, directories deepest first, so permissions never block a write.

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::catalog::Catalog;
use crate::error::{Error, IoContext, Result};
use crate::fswrite::{
    prepare_sparse, set_xattrs_fd, set_xattrs_path, write_content, XattrRefusals,
};
use crate::progress::Progress;
use crate::repo::id::{BlobId, PackId};
use crate::repo::pack::BlobKind;
use crate::repo::snapshot::SnapshotEntry;
use crate::repo::tree::{Node, NodeKind, Tree};
use crate::repo::{BlobLocation, Repo};

/// Spans read with one range GET are at most this long.
const MAX_SPAN: u64 = 8 << 20;
/// Unneeded bytes between two needed blobs that are cheaper to read than to skip.
const MAX_GAP: u64 = 256 << 10;

/// What to restore where.
pub struct RestoreRequest<'a> {
    /// The snapshot.
    pub snapshot: &'a SnapshotEntry,
    /// Only this path inside the snapshot (as `ls` shows it), if set.
    pub subpath: Option<PathBuf>,
    /// The target directory.
    pub target: PathBuf,
    /// Restore the contents of `subpath` (a directory) straight into the target, rather
    /// than keeping the path's place under it: a volume goes back to its own directory.
    pub contents_only: bool,
    /// Whether a non-empty target is acceptable.
    pub overwrite: bool,
    /// Set by SIGINT/SIGTERM.
    pub interrupt: Arc<AtomicBool>,
    /// Progress display.
    pub progress: &'a Progress,
}

/// What a restore did.
#[derive(Debug, Default, serde::Serialize)]
pub struct RestoreSummary {
    /// Regular files written (hard links included).
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks and special files created.
    pub others: u64,
    /// Bytes written.
    pub bytes: u64,
    /// What was restored only in part (extended attributes the target refused).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Reads tree blobs, caching whole metadata packs: a restore reads many small trees.
pub struct TreeReader<'a> {
    repo: &'a Repo,
    catalog: &'a Catalog,
    packs: HashMap<PackId, bytes::Bytes>,
}

impl<'a> TreeReader<'a> {
    /// A reader over the catalog's index.
    pub fn new(repo: &'a Repo, catalog: &'a Catalog) -> Self {
        TreeReader {
            repo,
            catalog,
            packs: HashMap::new(),
        }
    }

    /// Loads one tree.
    pub fn tree(&mut self, id: &BlobId) -> Result<Tree> {
        let loc = self.catalog.locate(id)?.ok_or_else(|| {
            Error::Damage(format!("tree {} is missing from the index", id.short()))
        })?;
        if !self.packs.contains_key(&loc.pack) {
            if self.packs.len() >= 8 {
                self.packs.clear();
            }
            let bytes = self.repo.block_on(self.repo.backend.get(&loc.pack_key()))?;
            self.packs.insert(loc.pack, bytes);
        }
        let pack = &self.packs[&loc.pack];
        let (start, end) = (
            loc.entry.offset as usize,
            loc.entry.offset as usize + loc.entry.stored_len as usize,
        );
        let sealed = pack.get(start..end).ok_or_else(|| {
            Error::Damage(format!(
                "pack {} is damaged: it is truncated",
                loc.pack.short()
            ))
        })?;
        let raw = self.repo.decode_blob(&loc, sealed)?;
        Tree::from_bytes(&raw)
            .map_err(|e| Error::Damage(format!("tree {} does not parse: {e}", id.short())))
    }

    /// The node at `path` (components relative to the snapshot root), or the root itself.
    pub fn find(&mut self, root: &BlobId, path: &Path) -> Result<Option<(Vec<OsString>, Node)>> {
        let comps: Vec<OsString> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_os_string()),
                _ => None,
            })
            .collect();
        let mut tree_id = *root;
        let mut found = None;
        for (i, c) in comps.iter().enumerate() {
            let tree = self.tree(&tree_id)?;
            let Some(node) = tree.find(c) else {
                return Ok(None);
            };
            if i + 1 < comps.len() {
                match node.subtree {
                    Some(s) => tree_id = s,
                    None => return Ok(None),
                }
            }
            found = Some(node.clone());
        }
        Ok(found.map(|n| (comps, n)))
    }
}

struct FilePlan {
    path: PathBuf,
    node: Node,
    remaining: AtomicUsize,
    failed: AtomicBool,
}

struct Use {
    file: usize,
    offset: u64,
}

struct PackWork {
    pack: PackId,
    blobs: Vec<(BlobLocation, Vec<Use>)>,
}

/// Restores a snapshot into `req.target`.
pub fn run(repo: &Repo, catalog: &Catalog, req: RestoreRequest<'_>) -> Result<RestoreSummary> {
    let target = &req.target;
    if let Ok(mut rd) = std::fs::read_dir(target) {
        if rd.next().is_some() && !req.overwrite {
            return Err(Error::Usage(format!(
                "target {} is not empty; restore into an empty directory or pass --overwrite",
                target.display()
            )));
        }
    } else if target.exists() {
        return Err(Error::Usage(format!(
            "target {} is not a directory",
            target.display()
        )));
    }
    let _pin = catalog.pin_snapshot()?;
    let mut trees = TreeReader::new(repo, catalog);
    let root = req.snapshot.snapshot.tree;
    let refusals = XattrRefusals::default();
    let mut plan = Planner {
        refusals: &refusals,
        trees: &mut trees,
        dirs: Vec::new(),
        files: Vec::new(),
        links: Vec::new(),
        inodes: HashMap::new(),
        summary: RestoreSummary::default(),
        overwrite: req.overwrite,
        as_root: unsafe { libc::geteuid() } == 0,
        interrupt: &req.interrupt,
    };
    std::fs::create_dir_all(target).ctx(|| format!("creating {}", target.display()))?;
    match &req.subpath {
        None => plan.dir(&root, target)?,
        Some(sub) => {
            let (comps, node) = plan.trees.find(&root, sub)?.ok_or_else(|| {
                Error::Usage(format!(
                    "path {} is not in snapshot {}",
                    sub.display(),
                    req.snapshot.id.short()
                ))
            })?;
            if req.contents_only {
                let tree = node
                    .subtree
                    .ok_or_else(|| Error::Usage(format!("{} is not a directory", sub.display())))?;
                plan.dir(&tree, target)?;
                plan.dirs.push((target.clone(), node, false));
            } else {
                // Keep the path's place in the tree, as restic does: DIR/a/b for `--path a/b`.
                let mut parent = target.clone();
                for c in &comps[..comps.len() - 1] {
                    parent.push(c);
                }
                std::fs::create_dir_all(&parent)
                    .ctx(|| format!("creating {}", parent.display()))?;
                plan.node(&node, &parent)?;
            }
        }
    }
    let Planner {
        dirs,
        files,
        links,
        mut summary,
        as_root,
        ..
    } = plan;
    let total: u64 = files.iter().map(|f| f.node.data_len()).sum();
    req.progress.set_total(total);

    // Group every chunk of every file by pack.
    let mut by_pack: HashMap<PackId, HashMap<BlobId, (BlobLocation, Vec<Use>)>> = HashMap::new();
    for (i, f) in files.iter().enumerate() {
        let mut offset = 0u64;
        for id in &f.node.content {
            let loc = catalog.locate(id)?.ok_or_else(|| {
                Error::Damage(format!(
                    "blob {} of {} is missing from the index",
                    id.short(),
                    f.path.display()
                ))
            })?;
            let raw = loc.entry.raw_len as u64;
            by_pack
                .entry(loc.pack)
                .or_default()
                .entry(*id)
                .or_insert_with(|| (loc, Vec::new()))
                .1
                .push(Use { file: i, offset });
            offset += raw;
        }
    }
    let work: Vec<PackWork> = by_pack
        .into_iter()
        .map(|(pack, blobs)| {
            let mut blobs: Vec<_> = blobs.into_values().collect();
            blobs.sort_by_key(|(l, _)| l.entry.offset);
            PackWork { pack, blobs }
        })
        .collect();

    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let written = AtomicU64::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4)
        + 1;
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if req.interrupt.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(w) = work.get(i) else { return };
                if let Err(e) =
                    restore_pack(repo, w, &files, as_root, &refusals, &written, req.progress)
                {
                    errors.lock().unwrap().push(e.to_string());
                    for (_, uses) in &w.blobs {
                        for u in uses {
                            files[u.file].failed.store(true, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    req.progress.finish();
    if req.interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    // Never leave a file with bad or missing contents looking restored.
    let mut failed_files = Vec::new();
    for f in &files {
        if f.failed.load(Ordering::SeqCst) {
            let _ = std::fs::remove_file(&f.path);
            failed_files.push(f.path.display().to_string());
        } else if f.node.size > 0 {
            summary.files += 1;
        }
    }
    summary.bytes = written.load(Ordering::Relaxed);
    for (path, first) in &links {
        if files
            .iter()
            .any(|f| &f.path == first && f.failed.load(Ordering::SeqCst))
        {
            continue;
        }
        if req.overwrite {
            let _ = std::fs::remove_file(path);
        }
        std::fs::hard_link(first, path).ctx(|| format!("linking {}", path.display()))?;
        summary.files += 1;
    }
    for (path, node, created) in dirs.iter().rev() {
        if *created {
            topdir_hint(path, false);
        }
        apply_meta(path, node, as_root, false, &refusals)?;
    }
    summary.warnings.extend(refusals.warning());
    let errors = errors.into_inner().unwrap();
    if !errors.is_empty() {
        return Err(Error::Damage(format!(
            "{}; not restored: {}",
            errors.join("; "),
            failed_files.join(", ")
        )));
    }
    Ok(summary)
}

struct Planner<'a, 'b> {
    trees: &'a mut TreeReader<'b>,
    /// Directories to finish last, and whether this restore created them.
    dirs: Vec<(PathBuf, Node, bool)>,
    files: Vec<FilePlan>,
    links: Vec<(PathBuf, PathBuf)>,
    inodes: HashMap<(u64, u64), PathBuf>,
    summary: RestoreSummary,
    overwrite: bool,
    as_root: bool,
    interrupt: &'a AtomicBool,
    refusals: &'a XattrRefusals,
}

impl Planner<'_, '_> {
    fn dir(&mut self, tree: &BlobId, path: &Path) -> Result<()> {
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let tree = self.trees.tree(tree)?;
        for node in &tree.nodes {
            self.node(node, path)?;
        }
        Ok(())
    }

    fn node(&mut self, node: &Node, parent: &Path) -> Result<()> {
        let name = node.os_name();
        if name.is_empty() || name == "." || name == ".." || name.as_bytes().contains(&b'/') {
            return Err(Error::Damage(format!(
                "a tree holds an unsafe name {:?}",
                name
            )));
        }
        let path = parent.join(&name);
        if self.overwrite && node.kind != NodeKind::Dir {
            remove_existing(&path)?;
        }
        match node.kind {
            NodeKind::Dir => {
                let created = match std::fs::create_dir(&path) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => {
                        false
                    }
                    Err(e) => return Err(Error::io(format!("creating {}", path.display()), e)),
                };
                self.summary.dirs += 1;
                if created {
                    topdir_hint(&path, true);
                }
                self.dirs.push((path.clone(), node.clone(), created));
                if let Some(sub) = &node.subtree {
                    self.dir(sub, &path)?;
                }
            }
            NodeKind::File => {
                if node.links > 1 {
                    if let Some(first) = self.inodes.get(&(node.dev, node.inode)) {
                        self.links.push((path, first.clone()));
                        return Ok(());
                    }
                    self.inodes.insert((node.dev, node.inode), path.clone());
                }
                if node.content.is_empty() {
                    // Empty, or nothing but holes.
                    let f = create_file(&path)?;
                    prepare_sparse(&f, node).ctx(|| format!("sizing {}", path.display()))?;
                    finish_file(&f, &path, node, self.as_root, self.refusals)?;
                    self.summary.files += 1;
                } else {
                    self.files.push(FilePlan {
                        path,
                        node: node.clone(),
                        remaining: AtomicUsize::new(node.content.len()),
                        failed: AtomicBool::new(false),
                    });
                }
            }
            NodeKind::Symlink => {
                let target = node.os_target().unwrap_or_default();
                std::os::unix::fs::symlink(&target, &path)
                    .ctx(|| format!("creating symlink {}", path.display()))?;
                apply_meta(&path, node, self.as_root, true, self.refusals)?;
                self.summary.others += 1;
            }
            NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
                let kind = match node.kind {
                    NodeKind::Fifo => libc::S_IFIFO,
                    NodeKind::CharDevice => libc::S_IFCHR,
                    _ => libc::S_IFBLK,
                };
                let c = cpath(&path)?;
                if unsafe { libc::mknod(c.as_ptr(), kind | node.mode, node.rdev as libc::dev_t) }
                    != 0
                {
                    let e = std::io::Error::last_os_error();
                    // Devices need root; skip them quietly otherwise, as tar does.
                    if node.kind == NodeKind::Fifo || self.as_root {
                        return Err(Error::io(format!("creating {}", path.display()), e));
                    }
                    return Ok(());
                }
                apply_meta(&path, node, self.as_root, false, self.refusals)?;
                self.summary.others += 1;
            }
            NodeKind::Socket => {}
        }
        Ok(())
    }
}

/// ext4's "top directory" hint (`chattr +T`), set on the directories a restore creates
/// while it fills them.
///
/// ext4 puts a new directory next to its parent, and on a file system without a journal it
/// walks past every recently deleted inode of that block group for each new file: after
/// `rm -rf` of the broken tree (the usual prelude to a restore) that made file creation
/// several times slower. With the hint, subdirectories spread over block groups as
/// top-level directories do. Other file systems refuse it, which changes nothing.
fn topdir_hint(dir: &Path, on: bool) {
    use std::os::fd::AsRawFd;
    const FS_TOPDIR_FL: libc::c_long = 0x0002_0000;
    let Ok(f) = File::open(dir) else { return };
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one c_long through the pointer.
    unsafe {
        if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) != 0 {
            return;
        }
        let new = if on {
            flags | FS_TOPDIR_FL
        } else {
            flags & !FS_TOPDIR_FL
        };
        if new != flags {
            libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &new);
        }
    }
}

fn remove_existing(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    }
    .ctx(|| format!("replacing {}", path.display()))
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Failed(format!("path {} holds a NUL byte", path.display())))
}

fn create_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .ctx(|| format!("creating {}", path.display()))
}

/// Sets owner (as root), xattrs, mode and times through an open file.
fn finish_file(
    f: &File,
    path: &Path,
    node: &Node,
    as_root: bool,
    refusals: &XattrRefusals,
) -> Result<()> {
    if as_root {
        std::os::unix::fs::fchown(f, Some(node.uid), Some(node.gid))
            .ctx(|| format!("chown {}", path.display()))?;
    }
    // After chown, which clears security.capability.
    set_xattrs_fd(f, path, node, refusals).ctx(|| format!("restoring {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(node.mode))
        .ctx(|| format!("chmod {}", path.display()))?;
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(node.mtime_ns.max(0) as u64);
    f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
        .ctx(|| format!("setting times of {}", path.display()))
}

/// Sets owner, xattrs, mode and times by path (directories, links, special files).
fn apply_meta(
    path: &Path,
    node: &Node,
    as_root: bool,
    is_link: bool,
    refusals: &XattrRefusals,
) -> Result<()> {
    let c = cpath(path)?;
    if as_root && unsafe { libc::lchown(c.as_ptr(), node.uid, node.gid) } != 0 {
        return Err(Error::io(
            format!("chown {}", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    set_xattrs_path(path, node, refusals).ctx(|| format!("restoring {}", path.display()))?;
    if !is_link {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode))
            .ctx(|| format!("chmod {}", path.display()))?;
    }
    let ts = libc::timespec {
        tv_sec: node.mtime_ns.div_euclid(1_000_000_000) as libc::time_t,
        tv_nsec: node.mtime_ns.rem_euclid(1_000_000_000) as libc::c_long,
    };
    let times = [ts, ts];
    if unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    } != 0
    {
        return Err(Error::io(
            format!("setting times of {}", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Fetches the needed spans of one pack and writes their blobs into the files.
fn restore_pack(
    repo: &Repo,
    w: &PackWork,
    files: &[FilePlan],
    as_root: bool,
    refusals: &XattrRefusals,
    written: &AtomicU64,
    progress: &Progress,
) -> Result<()> {
    let key = crate::repo::pack::pack_key(BlobKind::Data, &w.pack);
    let mut i = 0;
    while i < w.blobs.len() {
        // Merge neighbouring blobs into one range GET.
        let start = w.blobs[i].0.entry.offset;
        let mut end = start + w.blobs[i].0.entry.stored_len as u64;
        let mut j = i + 1;
        while j < w.blobs.len() {
            let e = &w.blobs[j].0.entry;
            if e.offset > end + MAX_GAP || e.offset + e.stored_len as u64 - start > MAX_SPAN {
                break;
            }
            end = end.max(e.offset + e.stored_len as u64);
            j += 1;
        }
        let busy = repo.fetching.start();
        let span = repo.block_on(repo.backend.get_range(&key, start, end - start))?;
        drop(busy);
        for (loc, uses) in &w.blobs[i..j] {
            let at = (loc.entry.offset - start) as usize;
            let raw = {
                let _busy = repo.fetching.start();
                repo.decode_blob(loc, &span[at..at + loc.entry.stored_len as usize])?
            };
            for u in uses {
                let f = &files[u.file];
                let file = create_file(&f.path)?;
                prepare_sparse(&file, &f.node)
                    .and_then(|()| write_content(&file, &f.node, u.offset, &raw))
                    .ctx(|| format!("writing {}", f.path.display()))?;
                written.fetch_add(raw.len() as u64, Ordering::Relaxed);
                progress.add_bytes(raw.len() as u64);
                if f.remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && !f.failed.load(Ordering::SeqCst)
                {
                    finish_file(&file, &f.path, &f.node, as_root, refusals)?;
                    progress.add_file();
                }
            }
        }
        i = j;
    }
    Ok(())
}

/// Streams one file of a snapshot, in order, to `sink`; blobs are fetched a few ahead.
pub fn stream_file(
    repo: &Repo,
    catalog: &Catalog,
    node: &Node,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<()> {
    let name = node.os_name().to_string_lossy().into_owned();
    let mut locs = Vec::with_capacity(node.content.len());
    for id in &node.content {
        locs.push(catalog.locate(id)?.ok_or_else(|| {
            Error::Damage(format!(
                "blob {} of {name} is missing from the index",
                id.short()
            ))
        })?);
    }
    // Fetching runs on its own thread, so the sink may block (or drive the runtime itself).
    let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<u8>>>(4);
    let locs = &locs;
    std::thread::scope(|s| {
        // `move`: the sender must be dropped when fetching ends, or the loop never does.
        s.spawn(move || {
            repo.block_on(async {
                use futures::StreamExt;
                let mut blobs =
                    futures::stream::iter(locs.iter().map(|l| repo.read_blob(l))).buffered(4);
                while let Some(b) = blobs.next().await {
                    let failed = b.is_err();
                    if tx.send(b).is_err() || failed {
                        return;
                    }
                }
            })
        });
        // Holes come out as the zeros they read as.
        let mut filler = crate::fswrite::HoleFiller::new(node);
        for b in rx {
            filler
                .push(&b?, &mut sink)
                .map_err(|e| Error::io(format!("writing {name}"), e))?;
        }
        filler
            .finish(&mut sink)
            .map_err(|e| Error::io(format!("writing {name}"), e))
    })
}
