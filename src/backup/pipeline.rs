//! What the pipeline's stages hand each other, and the state they share.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::fsmeta::FileStamp;
use crate::progress::Progress;
use crate::repo::id::{BlobId, PackId};
use crate::repo::pack::BlobKind;
use crate::repo::tree::{Node, Xattr};
use crate::repo::Repo;
use crate::safe_fs::Dir;
use crate::source::StreamOpener;

/// Packs uploading at once; with the pack size this bounds the memory of uploads.
pub(super) const UPLOADS_IN_FLIGHT: usize = 2;

/// A blob that the dedup check found new.
pub(super) struct NewBlob {
    pub(super) id: BlobId,
    pub(super) kind: BlobKind,
    pub(super) data: Vec<u8>,
}

/// Where a file's contents come from.
pub(super) enum Input {
    /// A file in a directory, opened through the directory's handle; its path for
    /// messages.
    At(Arc<Dir>, OsString, PathBuf),
    Stream(StreamOpener),
}

/// What reading a file gave.
pub(super) struct ReadOk {
    /// Its chunks, in order.
    pub(super) ids: Vec<BlobId>,
    /// The size they stand for, holes included: always agrees with the content.
    pub(super) size: u64,
    /// Holes left out of the content (`[offset, length]`).
    pub(super) holes: Vec<[u64; 2]>,
    /// Extended attributes read through the open handle.
    pub(super) xattrs: Vec<Xattr>,
    /// The file as read (the handle's `fstat`); `None` for a stream.
    pub(super) meta: Option<std::fs::Metadata>,
    /// Stored, but not as a consistent version (it kept changing) or without all its
    /// metadata: a warning for the run, and no files cache entry.
    pub(super) warning: Option<String>,
}

pub(super) type ReadResult = std::result::Result<ReadOk, ReadError>;

/// Reads of a file that keeps changing under the reader before it is stored as last read.
pub(super) const READ_ATTEMPTS: usize = 3;

/// A file whose contents must be read.
pub(super) struct FileJob {
    pub(super) input: Input,
    /// Device and inode the walk saw: the file opened must be that one.
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) done: Sender<ReadResult>,
}

/// Why a file's contents are missing from the snapshot.
pub(super) enum ReadError {
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
pub(super) enum Event {
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

pub(super) enum Content {
    Cached(Vec<BlobId>),
    Pending(Receiver<ReadResult>),
}

/// State shared by the pipeline's threads.
pub(super) struct Shared<'a> {
    pub(super) repo: &'a Repo,
    pub(super) catalog: crate::catalog::Connector,
    /// Blobs sent for storing in this run: the in-memory half of the dedup check.
    pub(super) seen: Mutex<HashSet<BlobId>>,
    /// Packs of other runs that deduplicated blobs were found in (see `commit`).
    pub(super) reused: Mutex<HashSet<PackId>>,
    /// Set on error or interrupt; every stage stops early.
    pub(super) abort: AtomicBool,
    pub(super) interrupt: Arc<AtomicBool>,
    pub(super) error: Mutex<Option<Error>>,
    pub(super) bytes_added: AtomicU64,
    pub(super) blobs_added: AtomicU64,
    pub(super) bytes_read: AtomicU64,
    pub(super) files_read: AtomicU64,
    pub(super) progress: &'a Progress,
    /// Paths left out of the walk.
    pub(super) exclude: Option<globset::GlobSet>,
    /// The backup's time, as the mtime of streamed files.
    pub(super) now_ns: i64,
    /// The run stores a log file (WAL, binary log), cut into [`LOG_BLOCK`]s.
    pub(super) log: bool,
    /// How the copy of the log file stored before was cut: followed as far as this copy
    /// holds the same bytes (see [`LogPiece`]).
    pub(super) log_prefix: Vec<LogPiece>,
    /// How this run cut its log file.
    pub(super) log_cut: Mutex<Vec<LogPiece>>,
    /// The zstd level for data blobs: higher for a log file (WAL, binary log), which
    /// arrives at the server's write rate and is stored for as long as its base backups.
    pub(super) compression_level: i32,
}

/// The least zstd level log files are compressed at. A log file arrives at the server's
/// write rate (well under 1 MB/s on a busy shop) and is kept for as long as its base
/// backups, so it is worth zstd's strongest strategy: on pgbench WAL in 1.35 MB pieces,
/// level 17 compresses to 0.77 of `zstd -3` over the whole stream (level 6: 0.85) at
/// about 25 MB/s a core.
pub(super) const LOG_COMPRESSION_LEVEL: i32 = 17;
/// The match-finder tables of [`LOG_COMPRESSION_LEVEL`], shrunk from its defaults (up to
/// 34 MB a sealer) to 2 MB, which compresses log pieces as well and keeps the archive,
/// a service that runs for months beside the database, small.
pub(super) const LOG_HASH_LOG: u32 = 17;
pub(super) const LOG_CHAIN_LOG: u32 = 18;

/// A log file is cut at the multiples of this size, which no piece spans: a file with no
/// copy stored before into blocks this large, which compress about as well as the whole
/// file does.
pub(super) const LOG_BLOCK: usize = 4 << 20;

/// A last piece of a log file's copy smaller than this is not followed but stored again
/// with what the next copy adds, so that a slow server's copies do not cut the file into
/// ever smaller pieces.
pub(super) const OPEN_PIECE: u64 = 64 * 1024;

/// A block stored in more pieces than this (a slowly written file) is stored again as one
/// blob once it is whole, so that a copy of a long file lists about one blob per block,
/// not thousands of pieces, in each of its trees.
pub(super) const BLOCK_PIECES: usize = 16;

/// One blob of a stored log file and the bytes it holds. A log file is only ever appended
/// to: a copy stored again follows the cut of the copy before as far as the bytes are the
/// same, so it shares all of them and adds a blob of what was written since (two, where
/// that crosses a [`LOG_BLOCK`] boundary), and the completed file adds what was written
/// after its last copy. Those blobs are as large as what the server writes between copies
/// (about 1 MiB under a steady load), which compresses well at [`LOG_COMPRESSION_LEVEL`]:
/// nothing is stored twice, so nothing waits for a prune, except the blocks of a slow
/// server (see [`BLOCK_PIECES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPiece {
    /// The blob.
    pub id: BlobId,
    /// Its length in bytes.
    pub len: u64,
}

impl Shared<'_> {
    pub(super) fn stopped(&self) -> bool {
        self.abort.load(Ordering::Relaxed) || self.interrupt.load(Ordering::Relaxed)
    }

    pub(super) fn fail(&self, e: Error) {
        let mut slot = self.error.lock().unwrap();
        if slot.is_none() {
            *slot = Some(e);
        }
        self.abort.store(true, Ordering::SeqCst);
    }

    /// Whether `id` must be stored: not in the catalog and not already sent this run.
    pub(super) fn is_new(&self, catalog: &Catalog, id: &BlobId) -> Result<bool> {
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
    pub(super) fn all_known(&self, catalog: &Catalog, ids: &[BlobId]) -> Result<bool> {
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
pub(super) fn components(p: &Path) -> Result<Vec<OsString>> {
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
