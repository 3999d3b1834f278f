//! The commit point of a backup: proof that every pack a snapshot depends on is still
//! live, before and after its manifest is written.
//!
//! Prune deletes a pack in two steps (mark, then delete once the mark is older than the
//! grace period), and a backup does not deduplicate against packs marked when it starts.
//! That is safe only while every backup finishes within the grace period. A backup that
//! was paused (SIGSTOP, a suspended VM, a stalled upload) can outlive it: a prune marks and
//! then deletes packs it deduplicated against, or its own uploads that no index listed yet,
//! and the backup would commit a snapshot naming data that is gone.
//!
//! So the backup records every pack it relies on (its own uploads and each pack a
//! deduplicated blob was found in), and at commit:
//! 1. before indexing, the store is asked which packs exist (each one, or a listing when
//!    there are many: `Repo::missing_packs`) and which are marked; any
//!    pack relied on that is gone or marked (other than its own upload, which it claims
//!    by indexing it, see `repo::Mark::unindexed`) fails the backup: nothing is committed;
//! 2. after the manifest is written, the store is listed again: a pack deleted between the
//!    two checks makes the backup delete its manifest and fail.
//!
//! A prune, for its part, lists the snapshots and index files again right before it
//! deletes anything, and spares what appeared meanwhile; the two checks meet in the middle.

use std::collections::HashSet;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::repo::id::{IndexId, PackId, SnapshotId};
use crate::repo::Repo;

/// Packs a snapshot in the making depends on.
#[derive(Debug, Default)]
pub struct Dependencies {
    /// Packs holding blobs that were deduplicated against.
    pub reused: HashSet<PackId>,
    /// Packs this run (or an interrupted run of this host it recovered) uploaded.
    pub own: HashSet<PackId>,
}

impl Dependencies {
    fn all(&self) -> impl Iterator<Item = &PackId> {
        self.reused.iter().chain(self.own.iter())
    }
}

/// Packs a backup depended on that a prune deleted or marked: nothing was committed.
#[derive(Debug)]
pub struct Lost {
    missing: usize,
    marked: usize,
}

impl Lost {
    /// Only marked, none deleted: a run that reads its data again (and deduplicates against
    /// none of them, the catalog now knowing the marks) can still commit.
    pub fn only_marked(&self) -> bool {
        self.missing == 0
    }

    /// The error the backup fails with.
    pub fn into_error(self) -> Error {
        lost(self.missing, self.marked)
    }
}

/// Step 1, before the index files are written: refuses (with what was lost) unless every
/// pack depended on exists and no prune has marked it.
pub fn check_before(
    repo: &Repo,
    catalog: &mut Catalog,
    deps: &Dependencies,
) -> Result<std::result::Result<(), Lost>> {
    let (marked, unindexed_marks) = repo.marked_packs()?;
    let all: HashSet<PackId> = deps.all().copied().collect();
    let gone = repo.missing_packs(&all)?;
    let missing = gone.len();
    // Its own upload marked while unindexed is claimed by the index this backup writes
    // next; a pack someone else indexed and a prune marked is on its way out.
    let doomed = all
        .iter()
        .filter(|p| !gone.contains(p) && marked.contains(p))
        .filter(|p| !(deps.own.contains(p) && unindexed_marks.contains(p)))
        .count();
    if missing + doomed > 0 {
        // The next backup must not rely on them either.
        catalog.refresh(repo)?;
        return Ok(Err(Lost {
            missing,
            marked: doomed,
        }));
    }
    Ok(Ok(()))
}

/// Step 2, after the manifest `snapshot` was written (with the index files `written`):
/// when a pack depended on is gone, deletes the manifest, rewrites those index files
/// without the missing packs, and fails.
pub fn check_after(
    repo: &Repo,
    catalog: &mut Catalog,
    deps: &Dependencies,
    snapshot: &SnapshotId,
    written: &[IndexId],
) -> Result<()> {
    let gone = repo.missing_packs(&deps.all().copied().collect())?;
    if gone.is_empty() {
        return Ok(());
    }
    repo.delete_snapshot(snapshot)?;
    for id in written {
        let packs = repo.block_on(repo.read_index(*id))?;
        let keep: Vec<_> = packs
            .into_iter()
            .filter(|p| !gone.contains(&p.id))
            .collect();
        if !keep.is_empty() {
            repo.write_index(&keep)?;
        }
        repo.delete_index(id)?;
    }
    catalog.refresh(repo)?;
    Err(lost(gone.len(), 0))
}

fn lost(missing: usize, marked: usize) -> Error {
    let what = match (missing, marked) {
        (m, 0) => format!("{m} pack(s) it depends on were deleted"),
        (0, k) => format!("{k} pack(s) it depends on were marked for deletion"),
        (m, k) => format!("{m} pack(s) it depends on were deleted and {k} marked for deletion"),
    };
    Error::Failed(format!(
        "{what} by a prune that ran while this backup was paused or slow (longer than the \
         prune's grace period); nothing was committed: run the backup again"
    ))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::repo::layout::Handle;
    use crate::repo::pack::BlobKind;
    use crate::repo::ASK_AT_MOST;

    #[test]
    fn missing_packs_are_found_by_asking_after_a_few_and_by_listing_many() {
        let (_dir, repo) = crate::repo::temp_repo();
        let id = |n: usize| PackId::from_hex(&format!("{n:064x}")).unwrap();
        // Packs 0..200 stored, data and tree alternating; 200.. never were.
        for n in 0..200 {
            let kind = [BlobKind::Data, BlobKind::Tree][n % 2];
            repo.block_on(
                repo.objects()
                    .put(&Handle::pack(kind, &id(n)), Bytes::from("x")),
            )
            .unwrap();
        }
        for (asked, absent) in [(3, 2), (ASK_AT_MOST, 7), (ASK_AT_MOST + 40, 9)] {
            let packs: HashSet<PackId> = (0..asked - absent)
                .chain(500..500 + absent)
                .map(id)
                .collect();
            let want: HashSet<PackId> = (500..500 + absent).map(id).collect();
            assert_eq!(repo.missing_packs(&packs).unwrap(), want, "{asked} asked");
        }
        assert!(repo.missing_packs(&HashSet::new()).unwrap().is_empty());
    }
}
