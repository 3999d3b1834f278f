//! Snapshot manifests: the only commit point of a backup.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::id::{BlobId, SnapshotId};

/// A committed backup of some paths of one stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// When the backup started.
    pub time: DateTime<Utc>,
    /// The stack it belongs to.
    pub stack: String,
    /// The host that made it.
    pub hostname: String,
    /// The paths as given on the command line, or a source's paths and dumps.
    pub paths: Vec<String>,
    /// The stack source this snapshot holds, when it is part of a recovery point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The one WAL file this snapshot holds, when it is part of a source's continuous
    /// archive rather than of a recovery point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal: Option<WalFile>,
    /// Root tree; its entries are the given paths' components.
    pub tree: BlobId,
    /// Figures of the run.
    pub summary: Summary,
    /// The drctl that wrote it.
    pub drctl_version: String,
}

/// A PostgreSQL WAL file as the archive stores it: a completed 16 MiB segment, the
/// partial segment being written (stored again as it grows), or a timeline history file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WalFile {
    /// The server's name for it (`000000010000000000000003`, `00000002.history`), without
    /// the `.partial` suffix.
    pub name: String,
    /// The timeline its name carries.
    pub timeline: u32,
    /// Still being written when it was stored.
    pub partial: bool,
    /// When drctl started reading it: every transaction the server had committed and sent
    /// by then is in it, so the archive reaches this time.
    pub covers_until: DateTime<Utc>,
    /// For a timeline history file: the timelines before this one, oldest first, each
    /// with the WAL position where it ended (the file's content, read when stored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<TimelineSwitch>,
    /// The database system that wrote it (see `BaseBackup::system`): a server
    /// recreated empty under the same name writes WAL under the same names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// One line of a timeline history file: timeline `parent` ended at `end` (an LSN, `X/Y`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimelineSwitch {
    /// The earlier timeline.
    pub parent: u32,
    /// Where the next timeline branched off it.
    pub end: String,
}

/// What a backup read and added.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Regular files in the snapshot.
    pub files: u64,
    /// Directories in the snapshot.
    pub dirs: u64,
    /// Total size of the files.
    pub bytes: u64,
    /// Files read again because they were new or changed.
    pub files_read: u64,
    /// Bytes read from those files.
    pub bytes_read: u64,
    /// New blobs stored.
    pub blobs_added: u64,
    /// Bytes those blobs added to the repository, after compression and sealing.
    pub bytes_added: u64,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
}

/// A snapshot with its ID, as listed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SnapshotEntry {
    /// The manifest's name.
    pub id: SnapshotId,
    /// Its contents.
    #[serde(flatten)]
    pub snapshot: Snapshot,
}
