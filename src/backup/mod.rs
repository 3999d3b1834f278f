//! Backing up directory trees: walk, chunk, deduplicate, compress, seal, pack, upload,
//! then index and snapshot, in that order.
//!
//! The work runs as a pipeline over both cores:
//!
//! ```text
//! walker ─► file readers (read, chunk, hash, dedup) ─► sealers (zstd, seal, pack) ─► uploader
//!    │                 │ chunk lists                                                 │
//!    ▼                 ▼                                                             ▼
//! tree builder (this thread): trees in walk order ─► sealers        catalog: pack recorded
//! ```
//! The snapshot manifest is written last and is the only commit point: a crash at any
//! moment leaves uploaded packs that the catalog knows and the next backup reuses.

mod pipeline;
mod read;
mod run;
mod seal;
mod trees;
mod walk;

pub use pipeline::LogPiece;
pub use run::{run, write_indexes, BackupOutcome, BackupRequest};

#[cfg(test)]
mod tests;
