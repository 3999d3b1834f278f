//! The walk that creates a restore's skeleton (directories, links, special files, empty
//! files) below the target's handle and collects the files to fill.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::plan::{DirPlan, FilePlan, RestoreSummary};
use super::read::TreeReader;
use crate::error::{Error, IoContext, Result};
use crate::fswrite::{prepare_sparse, set_xattrs_at, set_xattrs_fd, XattrRefusals};
use crate::repo::id::BlobId;
use crate::repo::tree::{Node, NodeKind};
use crate::safe_fs::{self, Dir};

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

pub(super) struct Planner<'a, 'b> {
    pub(super) trees: &'a mut TreeReader<'b>,
    pub(super) root: &'a Dir,
    pub(super) target: &'a Path,
    /// Directories in walk order (parents first), to finish last.
    pub(super) dirs: Vec<DirPlan>,
    pub(super) files: Vec<FilePlan>,
    pub(super) links: Vec<(PathBuf, PathBuf)>,
    pub(super) inodes: HashMap<(u64, u64), PathBuf>,
    pub(super) summary: RestoreSummary,
    pub(super) overwrite: bool,
    pub(super) as_root: bool,
    pub(super) interrupt: &'a AtomicBool,
    pub(super) refusals: &'a XattrRefusals,
}

impl Planner<'_, '_> {
    /// Creates `nodes` in `dir` and everything below them, depth first, with a stack of
    /// its own rather than the call stack: trees may be thousands of levels deep.
    pub(super) fn walk(&mut self, dir: Dir, rel: PathBuf, nodes: Vec<Node>) -> Result<()> {
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
pub(super) fn topdir_hint(dir: &Dir, on: bool) {
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
pub(super) fn finish_fd(
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
