//! What a restore plans before it touches the target: the directories, links, special
//! and empty files to make, the files to fill, and the blobs each pack holds for them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use crate::repo::id::{BlobId, PackId};
use crate::repo::tree::Node;
use crate::repo::BlobLocation;

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

/// What a restore makes below its target, decided from the trees alone: nothing on disk
/// is touched until the skeleton is made from it.
#[derive(Default)]
pub(super) struct TreePlan {
    /// The directories between the target and the restored node (`a` for `--path a/b`):
    /// made when missing, their own metadata left alone.
    pub(super) base: PathBuf,
    /// Directories in walk order (parents first), to make and to finish last; the target
    /// itself (a directory restored contents only) comes first, with an empty path.
    pub(super) dirs: Vec<DirPlan>,
    /// Every other entry, in walk order.
    pub(super) entries: Vec<Entry>,
    /// The regular files with contents, to fill pack by pack.
    pub(super) files: Vec<FilePlan>,
    /// Hard links: (path, the path of the first link to the same inode).
    pub(super) links: Vec<(PathBuf, PathBuf)>,
    /// What the skeleton holds: directories, empty files, links and special files.
    pub(super) summary: RestoreSummary,
}

/// An entry of a directory that is not a directory.
pub(super) struct Entry {
    /// Relative to the target.
    pub(super) rel: PathBuf,
    pub(super) make: Make,
}

/// What the skeleton makes for an entry.
pub(super) enum Make {
    /// A symbolic link.
    Symlink(Node),
    /// A named pipe or device node.
    Special(Node),
    /// An empty file, or one of nothing but holes.
    EmptyFile(Node),
    /// Made later (a file to fill, a hard link) or never (a socket): when overwriting,
    /// what stands there still goes now.
    Nothing,
}

pub(super) struct FilePlan {
    /// Relative to the target.
    pub(super) rel: PathBuf,
    pub(super) node: Node,
    pub(super) remaining: AtomicUsize,
    pub(super) failed: AtomicBool,
}

/// A directory to finish last, and whether this restore created it.
pub(super) struct DirPlan {
    pub(super) rel: PathBuf,
    pub(super) node: Node,
    /// Set when the skeleton is made.
    pub(super) created: bool,
}

pub(super) struct Use {
    pub(super) file: usize,
    pub(super) offset: u64,
}

pub(super) struct PackWork {
    pub(super) pack: PackId,
    pub(super) blobs: Vec<(BlobLocation, Vec<Use>)>,
}

/// What the request names, found before anything is created.
pub(super) enum Start {
    /// A tree whose entries go into the target.
    Tree(BlobId, Option<Node>),
    /// One node, below its parents' names.
    Node(Vec<OsString>, Node),
}
