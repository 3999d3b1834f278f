//! What a prune is asked to do and what it reports.

use chrono::Duration;
use serde::Serialize;

/// How to prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Plan and report; change nothing.
    pub dry_run: bool,
    /// How old a mark (or an unindexed pack) must be before its packs are deleted.
    pub grace: Duration,
    /// Repack a pack when this share of its bytes is unreferenced.
    pub repack_threshold: f64,
    /// Act on an empty or sharply shrunk snapshot list.
    pub force: bool,
    /// Recorded in the lock and the marks.
    pub hostname: String,
}

/// What a prune found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Snapshots whose data is kept.
    pub snapshots: usize,
    /// Packs in the store.
    pub packs: usize,
    /// Packs newly marked for deletion (unreferenced, or emptied by repacking).
    pub packs_marked: usize,
    /// Packs repacked.
    pub packs_repacked: usize,
    /// Blobs copied by repacking.
    pub blobs_repacked: usize,
    /// Packs deleted (marked earlier, past the grace period, still unreferenced).
    pub packs_deleted: usize,
    /// Bytes deleted.
    pub bytes_deleted: u64,
    /// Marked packs still waiting for their grace period.
    pub packs_waiting: usize,
    /// Index files rewritten without deleted packs.
    pub index_files_rewritten: usize,
    /// The grace period applied, in seconds: the one asked for, or twice the longest
    /// recorded backup when that is longer.
    pub grace_secs: f64,
    /// The longest backup the snapshots record, in seconds.
    pub longest_backup_secs: f64,
    /// Things the operator should know (a stale lock taken over).
    pub warnings: Vec<String>,
}

impl PruneReport {
    /// A summary for people.
    pub fn describe(&self) -> String {
        format!(
            "{}{} snapshot(s) kept, {} pack(s) in the store\n\
             marked {} pack(s) for deletion, repacked {} pack(s) ({} blobs)\n\
             deleted {} pack(s) ({}), rewrote {} index file(s); {} marked pack(s) wait for the grace period ({:.0}s)\n",
            if self.dry_run { "dry run: " } else { "" },
            self.snapshots,
            self.packs,
            self.packs_marked,
            self.packs_repacked,
            self.blobs_repacked,
            self.packs_deleted,
            crate::human::human_bytes(self.bytes_deleted),
            self.index_files_rewritten,
            self.packs_waiting,
            self.grace_secs,
        )
    }
}
