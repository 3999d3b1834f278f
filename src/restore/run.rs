//! `run`: a restore from request to summary, step by step.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::fetch::{restore_pack, Output};
use super::plan::{DirPlan, FilePlan, PackWork, RestoreSummary, Start, Use};
use super::planner;
use super::read::TreeReader;
use super::skeleton::{finish_fd, topdir_hint, Maker, Skeleton};
use crate::catalog::Catalog;
use crate::error::{Error, IoContext, Result};
use crate::fswrite::XattrRefusals;
use crate::progress::Progress;
use crate::repo::id::{BlobId, PackId};
use crate::repo::snapshot::SnapshotEntry;
use crate::repo::{BlobLocation, Repo};
use crate::safe_fs::Dir;
use crate::session::{Readable, Session};

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

/// Restores a snapshot into `req.target`: find what is asked for, create the skeleton,
/// fetch pack by pack into the files, then finish the directories deepest first.
pub fn run(session: &Session<Readable>, req: RestoreRequest<'_>) -> Result<RestoreSummary> {
    let (repo, catalog) = (session.repo(), session.catalog());
    let target = &req.target;
    check_target(&req)?;
    let _pin = catalog.pin_snapshot()?;
    let mut trees = TreeReader::new(repo, catalog);
    // Plan first: a path that is not there, or a tree that cannot be restored, changes
    // nothing on disk.
    let start = find_start(&mut trees, &req)?;
    let plan = planner::plan(start, |id| trees.tree(id), &req.interrupt)?;
    drop(trees);
    std::fs::create_dir_all(target).ctx(|| format!("creating {}", target.display()))?;
    // The target itself is the user's choice and may be reached through links; nothing
    // below it is.
    let root_dir = Dir::open(target).ctx(|| format!("opening {}", target.display()))?;
    let refusals = XattrRefusals::default();
    let as_root = unsafe { libc::geteuid() } == 0;
    let Skeleton {
        dirs,
        files,
        links,
        mut summary,
    } = Maker {
        root: &root_dir,
        target,
        overwrite: req.overwrite,
        as_root,
        interrupt: &req.interrupt,
        refusals: &refusals,
    }
    .make(plan)?;
    req.progress
        .set_total(files.iter().map(|f| f.node.data_len()).sum());
    let work = group_by_pack(catalog, &files, target)?;
    let written = AtomicU64::new(0);
    let out = Output {
        refusals: &refusals,
        root: &root_dir,
        target,
        files: &files,
        as_root,
        written: &written,
        progress: req.progress,
    };
    let errors = fetch_packs(repo, &work, &out, &req.interrupt);
    req.progress.finish();
    if req.interrupt.load(Ordering::SeqCst) {
        return Err(Error::Interrupted);
    }
    let failed_files = remove_failed_files(&root_dir, target, &files, &mut summary);
    summary.bytes = written.load(Ordering::Relaxed);
    link_hard_links(
        &root_dir,
        target,
        &files,
        &links,
        req.overwrite,
        &mut summary,
    )?;
    finish_dirs(&root_dir, target, &dirs, as_root, &refusals)?;
    summary.warnings.extend(refusals.warning());
    if !errors.is_empty() {
        return Err(Error::Damage(format!(
            "{}; not restored: {}",
            errors.join("; "),
            failed_files.join(", ")
        )));
    }
    Ok(summary)
}

/// An existing target must be a directory, and empty unless overwriting.
fn check_target(req: &RestoreRequest<'_>) -> Result<()> {
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
    Ok(())
}

/// The tree or node the request names; a path not in the snapshot is a usage error.
fn find_start(trees: &mut TreeReader<'_>, req: &RestoreRequest<'_>) -> Result<Start> {
    let root = req.snapshot.snapshot.tree;
    let Some(sub) = &req.subpath else {
        return Ok(Start::Tree(root, None));
    };
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
        Ok(Start::Tree(tree, Some(node)))
    } else {
        Ok(Start::Node(comps, node))
    }
}

/// Every chunk of every file, grouped by the pack holding it, in pack order.
fn group_by_pack(catalog: &Catalog, files: &[FilePlan], target: &Path) -> Result<Vec<PackWork>> {
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
    Ok(by_pack
        .into_iter()
        .map(|(pack, blobs)| {
            let mut blobs: Vec<_> = blobs.into_values().collect();
            blobs.sort_by_key(|(l, _)| l.entry.offset);
            PackWork { pack, blobs }
        })
        .collect())
}

/// Fetches every pack's work on a few threads; a pack that fails marks its files failed.
/// Returns the errors.
fn fetch_packs(
    repo: &Repo,
    work: &[PackWork],
    out: &Output<'_>,
    interrupt: &AtomicBool,
) -> Vec<String> {
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4)
        + 1;
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if interrupt.load(Ordering::Relaxed) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(w) = work.get(i) else { return };
                if let Err(e) = restore_pack(repo, w, out) {
                    errors.lock().unwrap().push(e.to_string());
                    for (_, uses) in &w.blobs {
                        for u in uses {
                            out.files[u.file].failed.store(true, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    errors.into_inner().unwrap()
}

/// Never leaves a file with bad or missing contents looking restored: failed files are
/// removed and named; the others are counted.
fn remove_failed_files(
    root_dir: &Dir,
    target: &Path,
    files: &[FilePlan],
    summary: &mut RestoreSummary,
) -> Vec<String> {
    let mut failed = Vec::new();
    for f in files {
        if f.failed.load(Ordering::SeqCst) {
            let _ = parent_of(root_dir, &f.rel).and_then(|(d, name)| d.remove(name));
            failed.push(target.join(&f.rel).display().to_string());
        } else if f.node.size > 0 {
            summary.files += 1;
        }
    }
    failed
}

/// Makes the hard links to files that were restored whole.
fn link_hard_links(
    root_dir: &Dir,
    target: &Path,
    files: &[FilePlan],
    links: &[(PathBuf, PathBuf)],
    overwrite: bool,
    summary: &mut RestoreSummary,
) -> Result<()> {
    let failed: std::collections::HashSet<&Path> = files
        .iter()
        .filter(|f| f.failed.load(Ordering::SeqCst))
        .map(|f| f.rel.as_path())
        .collect();
    for (rel, first) in links {
        if failed.contains(first.as_path()) {
            continue;
        }
        let shown = target.join(rel);
        (|| -> std::io::Result<()> {
            let (to, name) = parent_of(root_dir, rel)?;
            if overwrite {
                to.remove(name)?;
            }
            let (from, first_name) = parent_of(root_dir, first)?;
            from.hard_link(first_name, &to, name)
        })()
        .ctx(|| format!("linking {}", shown.display()))?;
        summary.files += 1;
    }
    Ok(())
}

/// Sets the metadata of every directory, deepest first (the reverse of the walk order),
/// each opened once, from its parent's handle: `chain` holds the handles from the target
/// down to the last one finished, and every directory still to finish hangs off one.
fn finish_dirs(
    root_dir: &Dir,
    target: &Path,
    dirs: &[DirPlan],
    as_root: bool,
    refusals: &XattrRefusals,
) -> Result<()> {
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
                        .map_or((Path::new(""), root_dir), |(r, d)| (r.as_path(), d));
                    let rel = rel.join(c);
                    let next = parent
                        .open_dir(c.as_os_str())
                        .ctx(|| format!("opening {}", target.join(&rel).display()))?;
                    (rel, next)
                };
                chain.push((rel, next));
            }
            chain.last().map_or(root_dir, |(_, d)| d)
        };
        if d.created {
            topdir_hint(dir, false);
        }
        finish_fd(dir.as_fd(), &d.node, as_root, &shown, refusals)?;
    }
    Ok(())
}

/// Directory handles held at once while directories are finished.
const CHAIN_MAX: usize = 4096;

/// The directory holding `rel` (opened without following links) and its last name.
pub(super) fn parent_of<'p>(root: &Dir, rel: &'p Path) -> std::io::Result<(Dir, &'p OsStr)> {
    let name = rel
        .file_name()
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let parent = rel.parent().unwrap_or(Path::new(""));
    Ok((root.open_dir_beneath(parent)?, name))
}
