//! Restoring a snapshot (or part of it) into a directory.
//!
//! Plan, then do: walk the trees into a plan (directories, files and where each of their
//! chunks lives), create the skeleton, then fetch pack by pack with range GETs — each
//! needed span once — and write every chunk to every file that holds it. Metadata comes
//! last, directories deepest first, so permissions never block a write.
//!
//! Nothing below the target is reached through a symbolic link: every entry is created
//! relative to its directory's handle (see [`crate::safe_fs`]), and a link standing where
//! the snapshot has a file or directory is replaced, never followed.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::catalog::Catalog;
use crate::error::{Error, IoContext, Result};
use crate::fswrite::{prepare_sparse, set_xattrs_at, set_xattrs_fd, write_content, XattrRefusals};
use crate::progress::Progress;
use crate::repo::id::{BlobId, PackId};
use crate::repo::pack::BlobKind;
use crate::repo::snapshot::SnapshotEntry;
use crate::repo::tree::{Node, NodeKind, Tree};
use crate::repo::{BlobLocation, Repo};
use crate::safe_fs::{self, Dir};

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
            let bytes = self
                .repo
                .block_on(self.repo.objects().get(&loc.pack_handle()))?;
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
    /// Relative to the target.
    rel: PathBuf,
    node: Node,
    remaining: AtomicUsize,
    failed: AtomicBool,
}

/// A directory to finish last, and whether this restore created it.
struct DirPlan {
    rel: PathBuf,
    node: Node,
    created: bool,
}

struct Use {
    file: usize,
    offset: u64,
}

struct PackWork {
    pack: PackId,
    blobs: Vec<(BlobLocation, Vec<Use>)>,
}

/// What the request names, found before anything is created.
enum Start {
    /// A tree whose entries go into the target.
    Tree(BlobId, Option<Node>),
    /// One node, below its parents' names.
    Node(Vec<OsString>, Node),
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
    // Find what is asked for first: a path that is not there changes nothing on disk.
    let start = match &req.subpath {
        None => Start::Tree(root, None),
        Some(sub) => {
            let (comps, node) = trees.find(&root, sub)?.ok_or_else(|| {
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
                Start::Tree(tree, Some(node))
            } else {
                Start::Node(comps, node)
            }
        }
    };
    std::fs::create_dir_all(target).ctx(|| format!("creating {}", target.display()))?;
    // The target itself is the user's choice and may be reached through links; nothing
    // below it is.
    let root_dir = Dir::open(target).ctx(|| format!("opening {}", target.display()))?;
    let refusals = XattrRefusals::default();
    let mut plan = Planner {
        refusals: &refusals,
        trees: &mut trees,
        root: &root_dir,
        target,
        dirs: Vec::new(),
        files: Vec::new(),
        links: Vec::new(),
        inodes: HashMap::new(),
        summary: RestoreSummary::default(),
        overwrite: req.overwrite,
        as_root: unsafe { libc::geteuid() } == 0,
        interrupt: &req.interrupt,
    };
    let here = || {
        root_dir
            .try_clone()
            .ctx(|| format!("opening {}", target.display()))
    };
    match start {
        Start::Tree(tree, top) => {
            if let Some(node) = top {
                plan.dirs.push(DirPlan {
                    rel: PathBuf::new(),
                    node,
                    created: false,
                });
            }
            let nodes = plan.trees.tree(&tree)?.nodes;
            plan.walk(here()?, PathBuf::new(), nodes)?;
        }
        Start::Node(comps, node) => {
            // Keep the path's place in the tree, as restic does: DIR/a/b for `--path a/b`.
            let mut dir = here()?;
            let mut rel = PathBuf::new();
            for c in &comps[..comps.len() - 1] {
                rel.push(c);
                let shown = target.join(&rel);
                dir.mkdir(c, 0o777, req.overwrite)
                    .ctx(|| format!("creating {}", shown.display()))?;
                dir = dir
                    .open_dir(c)
                    .ctx(|| format!("opening {}", shown.display()))?;
            }
            plan.walk(dir, rel, vec![node])?;
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
                    target.join(&f.rel).display()
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
    let out = Output {
        refusals: &refusals,
        root: &root_dir,
        target,
        files: &files,
        as_root,
        written: &written,
        progress: req.progress,
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if req.interrupt.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(w) = work.get(i) else { return };
                if let Err(e) = restore_pack(repo, w, &out) {
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
    let mut failed_rels = std::collections::HashSet::new();
    for f in &files {
        if f.failed.load(Ordering::SeqCst) {
            let _ = parent_of(&root_dir, &f.rel).and_then(|(d, name)| d.remove(name));
            failed_files.push(target.join(&f.rel).display().to_string());
            failed_rels.insert(f.rel.as_path());
        } else if f.node.size > 0 {
            summary.files += 1;
        }
    }
    summary.bytes = written.load(Ordering::Relaxed);
    for (rel, first) in &links {
        if failed_rels.contains(first.as_path()) {
            continue;
        }
        let shown = target.join(rel);
        (|| -> std::io::Result<()> {
            let (to, name) = parent_of(&root_dir, rel)?;
            if req.overwrite {
                to.remove(name)?;
            }
            let (from, first_name) = parent_of(&root_dir, first)?;
            from.hard_link(first_name, &to, name)
        })()
        .ctx(|| format!("linking {}", shown.display()))?;
        summary.files += 1;
    }
    // Deepest first (the reverse of the walk order), each directory opened once, from its
    // parent's handle: `chain` holds the handles from the target down to the last one
    // finished, and every directory still to finish hangs off one of them.
    let mut chain: Vec<(PathBuf, Dir)> = Vec::new();
    for d in dirs.iter().rev() {
        let shown = target.join(&d.rel);
        while chain.last().is_some_and(|(r, _)| !d.rel.starts_with(r)) {
            chain.pop();
        }
        let far: Dir;
        let dir = if chain.len() >= CHAIN_MAX {
            // Deeper than the open-files limit allows to hold: opened from the target.
            far = root_dir
                .open_dir_beneath(&d.rel)
                .ctx(|| format!("opening {}", shown.display()))?;
            &far
        } else {
            let base = chain.last().map(|(r, _)| r.clone()).unwrap_or_default();
            let rest = d.rel.strip_prefix(&base).unwrap_or(&d.rel).to_path_buf();
            for c in rest.components() {
                let (rel, next) = {
                    let (rel, parent) = chain
                        .last()
                        .map_or((Path::new(""), &root_dir), |(r, d)| (r.as_path(), d));
                    let rel = rel.join(c);
                    let next = parent
                        .open_dir(c.as_os_str())
                        .ctx(|| format!("opening {}", target.join(&rel).display()))?;
                    (rel, next)
                };
                chain.push((rel, next));
            }
            chain.last().map_or(&root_dir, |(_, d)| d)
        };
        if d.created {
            topdir_hint(dir, false);
        }
        finish_fd(dir.as_fd(), &d.node, as_root, &shown, &refusals)?;
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

/// Directory handles held at once while directories are finished.
const CHAIN_MAX: usize = 4096;

/// The directory holding `rel` (opened without following links) and its last name.
fn parent_of<'p>(root: &Dir, rel: &'p Path) -> std::io::Result<(Dir, &'p OsStr)> {
    let name = rel
        .file_name()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    Ok((root.open_dir_beneath(parent)?, name))
}

/// Directories deeper than this below the one being filled give their descriptors back
/// and are opened again if they still have entries to create: a tree of any depth
/// restores within the open-files limit.
const OPEN_DIRS: usize = 256;

/// One directory being filled: its handle (if still open), where it is, what is left.
struct Frame {
    dir: Option<Dir>,
    rel: PathBuf,
    nodes: std::vec::IntoIter<Node>,
}

struct Planner<'a, 'b> {
    trees: &'a mut TreeReader<'b>,
    root: &'a Dir,
    target: &'a Path,
    /// Directories in walk order (parents first), to finish last.
    dirs: Vec<DirPlan>,
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
    /// Creates `nodes` in `dir` and everything below them, depth first, with a stack of
    /// its own rather than the call stack: trees may be thousands of levels deep.
    fn walk(&mut self, dir: Dir, rel: PathBuf, nodes: Vec<Node>) -> Result<()> {
        let mut stack = vec![Frame {
            dir: Some(dir),
            rel,
            nodes: nodes.into_iter(),
        }];
        while let Some(top) = stack.last_mut() {
            if self.interrupt.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            let Some(node) = top.nodes.next() else {
                stack.pop();
                continue;
            };
            if top.dir.is_none() {
                let shown = self.target.join(&top.rel);
                top.dir = Some(
                    self.root
                        .open_dir_beneath(&top.rel)
                        .ctx(|| format!("opening {}", shown.display()))?,
                );
            }
            let dir = top.dir.as_ref().expect("just opened");
            let rel = top.rel.join(node.os_name());
            if let Some((sub, tree)) = self.node(&node, dir, &rel)? {
                let nodes = self.trees.tree(&tree)?.nodes.into_iter();
                if stack.len() >= OPEN_DIRS {
                    let far = stack.len() - OPEN_DIRS;
                    stack[far].dir = None;
                }
                stack.push(Frame {
                    dir: Some(sub),
                    rel,
                    nodes,
                });
            }
        }
        Ok(())
    }

    /// Creates one entry in `dir`; for a directory with entries, returns its handle and
    /// tree to fill.
    fn node(&mut self, node: &Node, dir: &Dir, rel: &Path) -> Result<Option<(Dir, BlobId)>> {
        let name = node.os_name();
        if !safe_fs::is_plain_name(&name) {
            return Err(Error::Damage(format!(
                "a tree holds an unsafe name {:?}",
                name
            )));
        }
        let target = self.target;
        let shown = || target.join(rel).display().to_string();
        if self.overwrite && node.kind != NodeKind::Dir {
            // Whatever stands there goes, a link included, and is never followed.
            dir.remove(&name).ctx(|| format!("replacing {}", shown()))?;
        }
        match node.kind {
            NodeKind::Dir => {
                let created = dir
                    .mkdir(&name, 0o777, self.overwrite)
                    .ctx(|| format!("creating {}", shown()))?;
                let sub = dir.open_dir(&name).ctx(|| format!("opening {}", shown()))?;
                self.summary.dirs += 1;
                if created {
                    topdir_hint(&sub, true);
                }
                self.dirs.push(DirPlan {
                    rel: rel.to_path_buf(),
                    node: node.clone(),
                    created,
                });
                return Ok(node.subtree.map(|t| (sub, t)));
            }
            NodeKind::File => {
                if node.links > 1 {
                    if let Some(first) = self.inodes.get(&(node.dev, node.inode)) {
                        self.links.push((rel.to_path_buf(), first.clone()));
                        return Ok(None);
                    }
                    self.inodes
                        .insert((node.dev, node.inode), rel.to_path_buf());
                }
                if node.content.is_empty() {
                    // Empty, or nothing but holes.
                    let f = dir
                        .create_file(&name, false)
                        .ctx(|| format!("creating {}", shown()))?;
                    prepare_sparse(&f, node).ctx(|| format!("sizing {}", shown()))?;
                    finish_fd(
                        f.as_fd(),
                        node,
                        self.as_root,
                        &target.join(rel),
                        self.refusals,
                    )?;
                    self.summary.files += 1;
                } else {
                    self.files.push(FilePlan {
                        rel: rel.to_path_buf(),
                        node: node.clone(),
                        remaining: AtomicUsize::new(node.content.len()),
                        failed: AtomicBool::new(false),
                    });
                }
            }
            NodeKind::Symlink => {
                let target = node.os_target().unwrap_or_default();
                dir.symlink(&target, &name)
                    .ctx(|| format!("creating symlink {}", shown()))?;
                let shown = self.target.join(rel);
                finish_at(dir, &name, node, None, self.as_root, &shown, self.refusals)?;
                self.summary.others += 1;
            }
            NodeKind::Fifo | NodeKind::CharDevice | NodeKind::BlockDevice => {
                let kind = match node.kind {
                    NodeKind::Fifo => libc::S_IFIFO,
                    NodeKind::CharDevice => libc::S_IFCHR,
                    _ => libc::S_IFBLK,
                };
                if let Err(e) = dir.mknod(&name, kind | node.mode, node.rdev as libc::dev_t) {
                    // Devices need root; skip them quietly otherwise, as tar does.
                    if node.kind == NodeKind::Fifo || self.as_root {
                        return Err(Error::io(format!("creating {}", shown()), e));
                    }
                    return Ok(None);
                }
                let (mode, shown) = (Some(node.mode), target.join(rel));
                finish_at(dir, &name, node, mode, self.as_root, &shown, self.refusals)?;
                self.summary.others += 1;
            }
            NodeKind::Socket => {}
        }
        Ok(None)
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
fn topdir_hint(dir: &Dir, on: bool) {
    const FS_TOPDIR_FL: libc::c_long = 0x0002_0000;
    let fd = dir.as_fd().as_raw_fd();
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one c_long through the pointer.
    unsafe {
        if libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) != 0 {
            return;
        }
        let new = if on {
            flags | FS_TOPDIR_FL
        } else {
            flags & !FS_TOPDIR_FL
        };
        if new != flags {
            libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &new);
        }
    }
}

/// Sets what a node records beyond its data on an open entry: the owner first (as root;
/// chown clears `security.capability`), then extended attributes while the mode still
/// lets the owner write them, then mode and times.
fn finish_fd(
    fd: BorrowedFd<'_>,
    node: &Node,
    as_root: bool,
    shown: &Path,
    refusals: &XattrRefusals,
) -> Result<()> {
    if as_root {
        std::os::unix::fs::fchown(fd, Some(node.uid), Some(node.gid))
            .ctx(|| format!("setting the owner of {}", shown.display()))?;
    }
    set_xattrs_fd(fd, shown, node, refusals).ctx(|| format!("restoring {}", shown.display()))?;
    safe_fs::set_meta_fd(fd, None, node.mode, node.mtime_ns)
        .ctx(|| format!("setting mode and times of {}", shown.display()))
}

/// The same for the entry `name` of `dir`, not opened (a symlink or special file);
/// `mode` is `None` for a symlink, which has none of its own.
fn finish_at(
    dir: &Dir,
    name: &OsStr,
    node: &Node,
    mode: Option<u32>,
    as_root: bool,
    shown: &Path,
    refusals: &XattrRefusals,
) -> Result<()> {
    let what = || format!("setting owner, mode and times of {}", shown.display());
    if as_root {
        dir.set_meta_at(name, Some((node.uid, node.gid)), None, node.mtime_ns)
            .ctx(what)?;
    }
    set_xattrs_at(dir, name, shown, node, refusals)
        .ctx(|| format!("restoring {}", shown.display()))?;
    dir.set_meta_at(name, None, mode, node.mtime_ns).ctx(what)
}

/// Where the pack workers write.
struct Output<'a> {
    root: &'a Dir,
    target: &'a Path,
    files: &'a [FilePlan],
    as_root: bool,
    refusals: &'a XattrRefusals,
    written: &'a AtomicU64,
    progress: &'a Progress,
}

/// Fetches the needed spans of one pack and writes their blobs into the files.
fn restore_pack(repo: &Repo, w: &PackWork, out: &Output<'_>) -> Result<()> {
    let pack = crate::repo::layout::Handle::pack(BlobKind::Data, &w.pack);
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
        let span = repo.block_on(repo.objects().get_range(&pack, start, end - start))?;
        drop(busy);
        for (loc, uses) in &w.blobs[i..j] {
            let at = (loc.entry.offset - start) as usize;
            let raw = {
                let _busy = repo.fetching.start();
                repo.decode_blob(loc, &span[at..at + loc.entry.stored_len as usize])?
            };
            for u in uses {
                let f = &out.files[u.file];
                let shown = || out.target.join(&f.rel).display().to_string();
                // One open per write, as before, but resolved below the target with no
                // link followed on the way.
                let file = out
                    .root
                    .create_file_beneath(&f.rel)
                    .ctx(|| format!("creating {}", shown()))?;
                prepare_sparse(&file, &f.node)
                    .and_then(|()| write_content(&file, &f.node, u.offset, &raw))
                    .ctx(|| format!("writing {}", shown()))?;
                out.written.fetch_add(raw.len() as u64, Ordering::Relaxed);
                out.progress.add_bytes(raw.len() as u64);
                if f.remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && !f.failed.load(Ordering::SeqCst)
                {
                    let shown = out.target.join(&f.rel);
                    finish_fd(file.as_fd(), &f.node, out.as_root, &shown, out.refusals)?;
                    out.progress.add_file();
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
