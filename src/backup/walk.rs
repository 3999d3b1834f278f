//! The walk: directories listed through their handles, in order, into events for the
//! tree builder and jobs for the readers.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Sender};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::fsmeta::FileStamp;
use crate::fsmeta::{at_xattrs, fd_xattrs, node_from_meta, stamp};
use crate::repo::tree::{Node, NodeKind, Xattr};
use crate::safe_fs::Dir;
use crate::source::StreamFile;

use super::pipeline::*;

/// Sums file sizes for the progress bar's total; stops early if the backup does.
pub(super) fn scan_size(roots: &[PathBuf], abort: &AtomicBool) -> u64 {
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
pub(super) fn walk(
    sh: &Shared<'_>,
    roots: &[(Vec<OsString>, PathBuf)],
    mut streams: Vec<StreamFile>,
    events: &Sender<Event>,
    jobs: &Sender<FileJob>,
) -> Result<()> {
    let catalog = sh.catalog.connect()?;
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
pub(super) const OPEN_DIRS: usize = 256;

/// A directory being listed.
pub(super) struct Level {
    /// Its handle, unless given back.
    pub(super) dir: Option<Arc<Dir>>,
    /// Its path as recorded (messages, excludes, the files cache).
    pub(super) path: PathBuf,
    /// Its path below the top of this descent, to open it again.
    pub(super) rel: PathBuf,
    /// Entries left, in name order.
    pub(super) names: std::vec::IntoIter<OsString>,
}

/// The names in a directory, sorted; a directory that cannot be listed is a warning.
pub(super) fn list(
    dir: &Dir,
    path: &Path,
    send: &dyn Fn(Event) -> Result<()>,
) -> Result<Vec<OsString>> {
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
pub(super) fn descend(
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
pub(super) fn visit(
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
pub(super) fn node_xattrs(
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
pub(super) fn build_excludes(
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
