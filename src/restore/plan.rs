//! What a restore plans before it fetches: the files and directories to make, and the
//! blobs each pack holds for them.

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
