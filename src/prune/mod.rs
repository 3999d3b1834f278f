//! `drctl prune`: reclaim the space of data no snapshot references, without locking out
//! backups (of this host or others) that run meanwhile.
//!
//! Two phases, judged by the store's own clock:
//! 1. A pack that no snapshot needs is *marked* (`marks/<id>`). Backups load the marks and
//!    never deduplicate against a marked pack, so from then on no new snapshot can come
//!    to depend on it.
//! 2. A later prune deletes a marked pack once the mark is older than the grace period
//!    (longer than any backup) and the pack is still unneeded: any backup that could
//!    have reused its blobs started before the mark and has committed (or died) by then.
//!
//! Packs with live and dead blobs are repacked when the dead share passes a threshold:
//! live blobs are copied (sealed anew, not recompressed) into new packs, and the old pack
//! is marked. Packs no index lists (left by interrupted backups, or being written right
//! now) are marked only once the store says they are older than the grace period.
//! Index files that list deleted packs are rewritten before the packs go, so an index
//! never names a missing pack. Prunes exclude each other with a lock object in `locks/`.
//!
//! Everything rests on the grace period outlasting every backup, so it is never shorter
//! than twice the longest backup the snapshots record. And an unindexed pack marked while
//! a backup was still writing it is spared if that backup indexes it before the mark
//! ripens: it is judged again, with a fresh mark, once the backup has committed.

mod lock;
mod plan;
mod report;

pub use plan::run;
pub use report::{PruneOptions, PruneReport};
