//! Making a restore's skeleton from its plan: directories parents first, then links,
//! special files and empty files, each made from its directory's handle with no link
//! followed.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::plan::{DirPlan, Entry, FilePlan, Make, RestoreSummary, TreePlan};
use crate::error::{Error, IoContext, Result};
use crate::fswrite::{prepare_sparse, set_xattrs_at, set_xattrs_fd, XattrRefusals};
use crate::repo::tree::{Node, NodeKind};
use crate::safe_fs::{self, Dir};

/// Directories deeper than this below the one in use give their descriptors back and are
/// opened again if they still have entries to make: a tree of any depth restores within
/// the open-files limit.
const OPEN_DIRS: usize = 256;

/// What is left once the skeleton stands: files to fill, hard links, directories to finish.
pub(super) struct Skeleton {
    /// Directories in walk order, each marked if this restore created it.
    pub(super) dirs: Vec<DirPlan>,
    pub(super) files: Vec<FilePlan>,
    pub(super) links: Vec<(PathBuf, PathBuf)>,
    pub(super) summary: RestoreSummary,
}

/// Where and how the skeleton is made.
pub(super) struct Maker<'a> {
    pub(super) root: &'a Dir,
    pub(super) target: &'a Path,
    /// Whatever stands where the plan puts an entry goes first.
    pub(super) overwrite: bool,
    pub(super) as_root: bool,
    pub(super) interrupt: &'a AtomicBool,
    pub(super) refusals: &'a XattrRefusals,
}

impl Maker<'_> {
    /// Makes what `plan` holds below the target: every directory first, so each entry
    /// finds its own.
    pub(super) fn make(&self, plan: TreePlan) -> Result<Skeleton> {
        let TreePlan {
            base,
            mut dirs,
            entries,
            files,
            links,
            mut summary,
        } = plan;
        let mut at = Cursor {
            root: self.root,
            target: self.target,
            chain: Vec::new(),
        };
        let mut up: Vec<&Path> = base.ancestors().collect();
        up.pop();
        for rel in up.into_iter().rev() {
            self.mkdir(&mut at, rel)?;
        }
        for d in &mut dirs {
            // The target itself, restored contents only, is there already.
            if d.rel.as_os_str().is_empty() {
                continue;
            }
            self.check_interrupt()?;
            d.created = self.mkdir(&mut at, &d.rel)?;
            if d.created {
                topdir_hint(at.dir(&d.rel)?, true);
            }
        }
        for e in &entries {
            if matches!(e.make, Make::Nothing) && !self.overwrite {
                continue;
            }
            self.check_interrupt()?;
            let (parent, name) = split(&e.rel);
            if !self.entry(at.dir(parent)?, name, e)? {
                summary.others -= 1;
            }
        }
        Ok(Skeleton {
            dirs,
            files,
            links,
            summary,
        })
    }

    fn check_interrupt(&self) -> Result<()> {
        if self.interrupt.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        Ok(())
    }

    /// Makes the directory `rel` unless it is there; whether it was made.
    fn mkdir(&self, at: &mut Cursor<'_>, rel: &Path) -> Result<bool> {
        let (parent, name) = split(rel);
        at.dir(parent)?
            .mkdir(name, 0o777, self.overwrite)
            .ctx(|| format!("creating {}", self.target.join(rel).display()))
    }

    /// Makes one entry `name` in `dir`; false for a device skipped for want of root.
    fn entry(&self, dir: &Dir, name: &OsStr, e: &Entry) -> Result<bool> {
        let shown = self.target.join(&e.rel);
        let (as_root, refusals) = (self.as_root, self.refusals);
        if self.overwrite {
            // Whatever stands there goes, a link included, and is never followed.
            dir.remove(name)
                .ctx(|| format!("replacing {}", shown.display()))?;
        }
        match &e.make {
            Make::Nothing => {}
            Make::EmptyFile(node) => {
                let f = dir
                    .create_file(name, false)
                    .ctx(|| format!("creating {}", shown.display()))?;
                prepare_sparse(&f, node).ctx(|| format!("sizing {}", shown.display()))?;
                finish_fd(f.as_fd(), node, as_root, &shown, refusals)?;
            }
            Make::Symlink(node) => {
                let to = node.os_target().unwrap_or_default();
                dir.symlink(&to, name)
                    .ctx(|| format!("creating symlink {}", shown.display()))?;
                finish_at(dir, name, node, None, as_root, &shown, refusals)?;
            }
            Make::Special(node) => {
                let kind = match node.kind {
                    NodeKind::Fifo => libc::S_IFIFO,
                    NodeKind::CharDevice => libc::S_IFCHR,
                    _ => libc::S_IFBLK,
                };
                if let Err(e) = dir.mknod(name, kind | node.mode, node.rdev as libc::dev_t) {
                    // Devices need root; skip them quietly otherwise, as tar does.
                    if node.kind == NodeKind::Fifo || as_root {
                        return Err(Error::io(format!("creating {}", shown.display()), e));
                    }
                    return Ok(false);
                }
                let mode = Some(node.mode);
                finish_at(dir, name, node, mode, as_root, &shown, refusals)?;
            }
        }
        Ok(true)
    }
}

/// The directory holding `rel` and its last name.
fn split(rel: &Path) -> (&Path, &OsStr) {
    (
        rel.parent().unwrap_or(Path::new("")),
        rel.file_name().unwrap_or_default(),
    )
}

/// Directory handles from the target down to the directory last used. The skeleton is
/// made in walk order, so each directory is opened about once, from its parent; only the
/// deepest [`OPEN_DIRS`] stay open.
struct Cursor<'a> {
    root: &'a Dir,
    target: &'a Path,
    /// One name and handle (unless given back) per level below the target.
    chain: Vec<(OsString, Option<Dir>)>,
}

impl Cursor<'_> {
    /// The directory `rel` (plain names below the target), opened without following links.
    fn dir(&mut self, rel: &Path) -> Result<&Dir> {
        let same = rel
            .iter()
            .zip(&self.chain)
            .take_while(|(c, (name, _))| *c == name.as_os_str())
            .count();
        self.chain.truncate(same);
        for c in rel.iter().skip(same) {
            let depth = self.chain.len() + 1;
            let next = self.top(rel)?.open_dir(c).ctx(|| {
                let down: PathBuf = rel.iter().take(depth).collect();
                format!("opening {}", self.target.join(down).display())
            })?;
            if self.chain.len() >= OPEN_DIRS {
                let far = self.chain.len() - OPEN_DIRS;
                self.chain[far].1 = None;
            }
            self.chain.push((c.to_os_string(), Some(next)));
        }
        self.top(rel)
    }

    /// The deepest directory of the chain (a prefix of `rel`), opened again from the
    /// target if it gave its descriptor back.
    fn top(&mut self, rel: &Path) -> Result<&Dir> {
        let depth = self.chain.len();
        let Some((_, dir)) = self.chain.last_mut() else {
            return Ok(self.root);
        };
        if dir.is_none() {
            let down: PathBuf = rel.iter().take(depth).collect();
            let shown = self.target.join(&down);
            *dir = Some(
                self.root
                    .open_dir_beneath(&down)
                    .ctx(|| format!("opening {}", shown.display()))?,
            );
        }
        Ok(dir.as_ref().expect("just opened"))
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::FileTypeExt;

    use super::super::plan::Start;
    use super::super::planner::tests::{dir, id, node, plan_of, small_tree};
    use super::*;
    use crate::repo::id::BlobId;
    use crate::repo::tree::Tree;

    fn make(target: &Path, plan: TreePlan, overwrite: bool) -> Result<Skeleton> {
        let root = Dir::open(target).unwrap();
        let maker = Maker {
            root: &root,
            target,
            overwrite,
            as_root: false,
            interrupt: &AtomicBool::new(false),
            refusals: &XattrRefusals::default(),
        };
        maker.make(plan)
    }

    #[test]
    fn the_skeleton_holds_what_the_plan_makes_and_leaves_the_files_to_fill() {
        let target = tempfile::tempdir().unwrap();
        let t = target.path();
        let plan = plan_of(&small_tree(), Start::Tree(id(1), None));
        let done = make(t, plan, false).unwrap();
        assert!(done.dirs.iter().all(|d| d.created));
        let s = &done.summary;
        assert_eq!((s.dirs, s.files, s.others), (2, 1, 2));
        assert!(t.join("a/b").is_dir());
        let c = std::fs::symlink_metadata(t.join("a/b/c")).unwrap();
        assert!(c.is_file() && c.len() == 0);
        assert_eq!(std::fs::read_link(t.join("ln")).unwrap(), Path::new("a"));
        let pipe = std::fs::symlink_metadata(t.join("pipe")).unwrap();
        assert!(pipe.file_type().is_fifo());
        for later in ["a/f", "z", "sock"] {
            assert!(!t.join(later).exists(), "{later} was made");
        }
    }

    #[test]
    fn overwriting_replaces_what_stands_in_the_way_without_following_links() {
        let base = tempfile::tempdir().unwrap();
        let (t, outside) = (base.path().join("t"), base.path().join("outside"));
        std::fs::create_dir_all(outside.join("keep")).unwrap();
        std::fs::create_dir_all(t.join("z/deep")).unwrap();
        std::os::unix::fs::symlink(&outside, t.join("a")).unwrap();
        std::fs::write(t.join("ln"), b"old").unwrap();
        let plan = plan_of(&small_tree(), Start::Tree(id(1), None));
        assert!(make(&t, plan, false).is_err());

        let plan = plan_of(&small_tree(), Start::Tree(id(1), None));
        make(&t, plan, true).unwrap();
        assert!(std::fs::symlink_metadata(t.join("a")).unwrap().is_dir());
        assert!(t.join("a/b/c").is_file());
        assert_eq!(std::fs::read_link(t.join("ln")).unwrap(), Path::new("a"));
        assert!(!t.join("z").exists());
        let names: Vec<_> = std::fs::read_dir(&outside).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_tree_deeper_than_the_handles_held_gets_every_entry() {
        const DEPTH: u16 = OPEN_DIRS as u16 + 44;
        let tree_id = |n: u16| {
            let mut b = [0u8; 32];
            b[..2].copy_from_slice(&n.to_le_bytes());
            BlobId(b)
        };
        let trees: HashMap<BlobId, Tree> = (0..DEPTH)
            .map(|n| {
                let mut nodes = vec![];
                if n + 1 < DEPTH {
                    let mut d = dir("d", 0);
                    d.subtree = Some(tree_id(n + 1));
                    nodes.push(d);
                }
                nodes.push(node(NodeKind::File, "e"));
                (tree_id(n), Tree { nodes })
            })
            .collect();
        let target = tempfile::tempdir().unwrap();
        let plan = plan_of(&trees, Start::Tree(tree_id(0), None));
        let done = make(target.path(), plan, false).unwrap();
        assert_eq!(done.summary.files, DEPTH as u64);
        let mut at = target.path().to_path_buf();
        for level in 0..DEPTH {
            assert!(at.join("e").is_file(), "level {level}");
            at.push("d");
        }
    }
}
