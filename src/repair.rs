//! `drctl repair`: rebuild what the repository can rebuild from itself.
//!
//! - `index`: every pack ends with an encrypted trailer listing its blobs, so index files
//!   that were deleted or damaged are written again from the packs no readable index
//!   lists; the damaged ones are then removed.
//! - `config`: see `Repo::restore_config`.

use std::collections::HashSet;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::repo::id::{content_hash, IndexId, PackId};
use crate::repo::index::IndexedPack;
use crate::repo::layout::{FileType, Handle};
use crate::repo::pack::{self, BlobKind};
use crate::repo::Repo;
use crate::session::{Readable, Session};

/// Packs per index file written by a repair.
const PACKS_PER_INDEX: usize = 64;

/// What `repair index` found and did.
#[derive(Debug, Default, Serialize)]
pub struct IndexRepair {
    /// Index files that failed to open (removed once their packs were indexed again).
    pub damaged_index_files: Vec<String>,
    /// Packs no readable index listed, now indexed again.
    pub packs_indexed: usize,
    /// Blobs they hold.
    pub blobs_indexed: usize,
    /// Packs left alone because a prune marked them for deletion.
    pub packs_marked: usize,
    /// Packs that are themselves damaged (named), so not indexed.
    pub damaged_packs: Vec<String>,
    /// Index files written.
    pub index_files_written: usize,
}

/// Indexes again every pack that no readable index file lists.
pub fn index(session: &mut Session<Readable>) -> Result<IndexRepair> {
    let (repo, catalog) = session.parts();
    let mut report = IndexRepair::default();
    let mut listed: HashSet<PackId> = HashSet::new();
    let mut damaged: Vec<IndexId> = Vec::new();
    for id in repo.list_index()? {
        match repo.block_on(repo.read_index(id)) {
            Ok(packs) => listed.extend(packs.iter().map(|p| p.id)),
            Err(e @ Error::Damage(_)) => {
                report
                    .damaged_index_files
                    .push(format!("{} ({e})", id.short()));
                damaged.push(id);
            }
            Err(e) if crate::store::backend::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let (marked, _) = repo.marked_packs()?;
    let mut batch: Vec<IndexedPack> = Vec::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        for o in repo.block_on(repo.objects().list(FileType::Pack(kind)))? {
            let Some(id) = PackId::from_hex(&o.handle.name) else {
                continue;
            };
            if listed.contains(&id) {
                continue;
            }
            if marked.contains(&id) {
                report.packs_marked += 1;
                continue;
            }
            match read_pack(repo, kind, &id) {
                Ok(p) => {
                    report.packs_indexed += 1;
                    report.blobs_indexed += p.blobs.len();
                    batch.push(p);
                }
                Err(why) => {
                    tracing::warn!("pack {} ({}): {why}", id.short(), o.handle);
                    report.damaged_packs.push(format!("{} ({why})", id.short()));
                }
            }
            if batch.len() >= PACKS_PER_INDEX {
                repo.write_index(&batch)?;
                report.index_files_written += 1;
                batch.clear();
            }
        }
    }
    if !batch.is_empty() {
        repo.write_index(&batch)?;
        report.index_files_written += 1;
    }
    // Only now: what the damaged files listed is indexed again (or was damaged itself).
    for id in &damaged {
        repo.delete_index(id)?;
    }
    catalog.refresh(repo)?;
    Ok(report)
}

/// A pack's index entry from its own trailer, after checking its name.
fn read_pack(repo: &Repo, kind: BlobKind, id: &PackId) -> std::result::Result<IndexedPack, String> {
    let bytes = repo
        .block_on(repo.objects().get(&Handle::pack(kind, id)))
        .map_err(|e| e.to_string())?;
    if content_hash(&bytes) != id.0 {
        return Err("its contents do not match its name".into());
    }
    let wrapped = pack::read_wrapped_key(&bytes).ok_or("its header is malformed")?;
    let key = repo.pack_key(id, &wrapped).map_err(|e| e.to_string())?;
    let blobs = pack::read_trailer(&bytes, &key).map_err(|e| format!("trailer: {e}"))?;
    Ok(IndexedPack {
        id: *id,
        kind,
        size: bytes.len() as u64,
        wrapped_key: wrapped,
        blobs,
    })
}

impl IndexRepair {
    /// A summary for people.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "indexed {} pack(s) ({} blobs) that no readable index listed, in {} new index file(s)\n",
            self.packs_indexed, self.blobs_indexed, self.index_files_written
        );
        if !self.damaged_index_files.is_empty() {
            s.push_str(&format!(
                "removed {} damaged index file(s): {}\n",
                self.damaged_index_files.len(),
                self.damaged_index_files.join(", ")
            ));
        }
        if self.packs_marked > 0 {
            s.push_str(&format!(
                "left {} pack(s) that a prune marked for deletion\n",
                self.packs_marked
            ));
        }
        if !self.damaged_packs.is_empty() {
            s.push_str(&format!(
                "{} damaged pack(s) could not be indexed: {}\n",
                self.damaged_packs.len(),
                self.damaged_packs.join(", ")
            ));
        }
        s
    }
}
