//! The prune plan: what one reading of the store, the index files and the marks says is to
//! be repacked, marked and deleted; then carried out in that order, the deletions checked
//! once more against backups that committed meanwhile.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use super::lock::PruneLock;
use super::report::{PruneOptions, PruneReport};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::repo::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::repo::index::{self, IndexedPack};
use crate::repo::layout::{FileType, Handle};
use crate::repo::pack::{self, BlobKind, PackWriter};
use crate::repo::{Mark, Repo};
use crate::restore::TreeReader;
use crate::session::{Readable, Session};

/// Index files listing fewer blobs than this are merged whenever a prune runs: an archive
/// that stores a WAL copy every few seconds writes an index file each time, and every new
/// catalog reads every file.
const SMALL_INDEX_BLOBS: usize = index::FILE_BLOBS / 10;
/// Repacked blobs go into packs of about this size.
const REPACK_PACK_BYTES: usize = 16 << 20;
/// The grace period is at least this many times the longest recorded backup.
const GRACE_OVER_LONGEST_BACKUP: u32 = 2;
/// The snapshot list may shrink to half of what this host last saw before prune
/// suspects a wrong prefix or a damaged listing.
const SHRINK_MARGIN: f64 = 0.5;

/// One pack as the prune sees it.
struct PackInfo {
    kind: BlobKind,
    size: u64,
    modified: Option<SystemTime>,
    /// From the index, when one lists it.
    indexed: Option<IndexedPack>,
    /// Index files that list it.
    in_index: Vec<IndexId>,
}

/// Every blob the snapshots need: their trees and the contents the trees list.
fn used_blobs(repo: &Repo, catalog: &Catalog) -> Result<HashSet<BlobId>> {
    let roots = catalog
        .snapshots(None)?
        .into_iter()
        .map(|s| s.snapshot.tree)
        .collect();
    blobs_under(repo, catalog, roots)
}

/// Every blob under the trees `roots`: the trees and the contents they list.
fn blobs_under(repo: &Repo, catalog: &Catalog, roots: Vec<BlobId>) -> Result<HashSet<BlobId>> {
    let mut used = HashSet::new();
    let mut trees = TreeReader::new(repo, catalog);
    let mut stack = roots;
    while let Some(t) = stack.pop() {
        if !used.insert(t) {
            continue;
        }
        for node in trees.tree(&t)?.nodes {
            used.extend(node.content.iter().copied());
            if let Some(sub) = node.subtree {
                stack.push(sub);
            }
        }
    }
    Ok(used)
}

/// Runs a prune: under the lock (a dry run takes none), plans from one reading of the
/// store and the index, then carries the plan out.
pub fn run(session: &mut Session<Readable>, opts: &PruneOptions) -> Result<PruneReport> {
    let (repo, catalog) = session.parts();
    let mut warnings = Vec::new();
    // A dry run changes nothing, so it neither needs nor waits for the lock.
    let lock = if opts.dry_run {
        None
    } else {
        Some(PruneLock::take(repo, &opts.hostname, &mut warnings)?)
    };
    let now = match &lock {
        Some(l) => l.store_now,
        None => SystemTime::now(),
    };
    // Listed after the lock's time: every backup that finished before it is seen.
    catalog.refresh(repo)?;
    let plan = PrunePlan::build(repo, catalog, opts, now)?;
    let mut report = plan.report(opts, warnings);
    if opts.dry_run {
        return Ok(report);
    }
    plan.execute(repo, catalog, opts, &mut report)?;
    drop(lock);
    catalog.refresh(repo)?;
    catalog.set_state("snapshots_seen", &report.snapshots.to_string())?;
    Ok(report)
}

/// What a prune will do, and what it read to decide it.
pub(super) struct PrunePlan {
    /// Snapshots listed (their count is reported and remembered).
    snapshots: HashSet<SnapshotId>,
    /// Every blob those snapshots need.
    used: HashSet<BlobId>,
    /// Every pack in the store.
    packs: HashMap<PackId, PackInfo>,
    /// Every index file, as read.
    index_files: HashMap<IndexId, Vec<IndexedPack>>,
    /// Marked packs, and whether a ripe mark (past the grace period) holds them.
    marked: HashMap<PackId, bool>,
    /// Marks past the grace period: done with once this prune ends.
    ripe_marks: Vec<Handle>,
    /// Indexed packs, unmarked first: the order in which packs serve needed blobs.
    order: Vec<PackId>,
    /// Packs no snapshot needs.
    dead: HashSet<PackId>,
    /// Packs to repack (enough of their bytes dead).
    repack: Vec<PackId>,
    /// Dead packs in a ripe mark: deleted, unless a late commit needs them.
    deletable: Vec<PackId>,
    /// Dead packs no mark holds yet: marked now.
    to_mark: Vec<PackId>,
    /// The grace period applied.
    grace: std::time::Duration,
    /// The longest backup the snapshots record, in milliseconds.
    longest_ms: u64,
}

impl PrunePlan {
    /// Reads the store, the index files and the marks (as of the store's `now`) and
    /// decides. Fails, unless forced, on a snapshot list that is empty or much shorter
    /// than this host last saw (a wrong prefix would otherwise delete everything).
    pub(super) fn build(
        repo: &Repo,
        catalog: &Catalog,
        opts: &PruneOptions,
        now: SystemTime,
    ) -> Result<PrunePlan> {
        let listed = catalog.snapshots(None)?;
        if !opts.force {
            refuse_a_shrunk_listing(catalog, listed.len())?;
        }
        let used = used_blobs(repo, catalog)?;
        // A backup that reused a blob of a pack marked after it started must commit
        // before the mark ripens: the grace period must outlast every backup.
        let longest_ms = listed
            .iter()
            .map(|s| s.snapshot.summary.duration_ms)
            .max()
            .unwrap_or(0);
        let floor = std::time::Duration::from_millis(longest_ms) * GRACE_OVER_LONGEST_BACKUP;
        let grace = opts.grace.to_std().unwrap_or_default().max(floor);
        let (packs, index_files) = read_packs(repo)?;
        let (marked, ripe_marks) = read_marks(repo, &packs, now, grace)?;
        let mut plan = PrunePlan {
            snapshots: listed.into_iter().map(|s| s.id).collect(),
            used,
            packs,
            index_files,
            marked,
            ripe_marks,
            order: Vec::new(),
            dead: HashSet::new(),
            repack: Vec::new(),
            deletable: Vec::new(),
            to_mark: Vec::new(),
            grace,
            longest_ms,
        };
        plan.decide(opts, now);
        Ok(plan)
    }

    /// Sorts every pack into dead, to repack, or in service.
    fn decide(&mut self, opts: &PruneOptions, now: SystemTime) {
        // Each needed blob is served by one pack, unmarked packs first: a pack whose
        // blobs all live elsewhere too (it was repacked) is then as dead as an
        // unreferenced one.
        let mut served: HashMap<PackId, (u64, usize)> = HashMap::new(); // live bytes, blobs
        let mut assigned: HashSet<BlobId> = HashSet::new();
        let mut order: Vec<PackId> = self
            .packs
            .iter()
            .filter(|(_, i)| i.indexed.is_some())
            .map(|(id, _)| *id)
            .collect();
        order.sort_by_key(|id| (self.marked.contains_key(id), *id));
        for id in &order {
            for b in &self.packs[id].indexed.as_ref().expect("filtered").blobs {
                if self.used.contains(&b.id) && assigned.insert(b.id) {
                    let e = served.entry(*id).or_default();
                    e.0 += b.stored_len as u64;
                    e.1 += 1;
                }
            }
        }
        let grace = self.grace;
        let old_enough = |i: &PackInfo| {
            i.modified
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|a| a >= grace)
        };
        for (id, info) in &self.packs {
            match (&info.indexed, served.get(id)) {
                (Some(_), None) => {
                    self.dead.insert(*id);
                }
                // Unindexed: a backup may be writing it right now; only old ones are
                // garbage.
                (None, _) if old_enough(info) => {
                    self.dead.insert(*id);
                }
                (None, _) => {}
                (Some(ix), Some((live, _))) => {
                    let total: u64 = ix.blobs.iter().map(|b| b.stored_len as u64).sum();
                    let dead_share = 1.0 - *live as f64 / total.max(1) as f64;
                    if dead_share >= opts.repack_threshold && !self.marked.contains_key(id) {
                        self.repack.push(*id);
                    }
                }
            }
        }
        self.deletable = self
            .dead
            .iter()
            .filter(|id| self.marked.get(*id).copied().unwrap_or(false))
            .copied()
            .collect();
        self.to_mark = self
            .dead
            .iter()
            .filter(|id| !self.marked.contains_key(*id))
            .copied()
            .collect();
        self.order = order;
    }

    /// What the plan will do, as reported (a dry run's whole answer).
    pub(super) fn report(&self, opts: &PruneOptions, warnings: Vec<String>) -> PruneReport {
        PruneReport {
            dry_run: opts.dry_run,
            snapshots: self.snapshots.len(),
            packs: self.packs.len(),
            packs_marked: self.to_mark.len() + self.repack.len(),
            packs_repacked: self.repack.len(),
            packs_deleted: self.deletable.len(),
            bytes_deleted: self.deletable.iter().map(|id| self.packs[id].size).sum(),
            packs_waiting: self
                .marked
                .iter()
                .filter(|(id, ripe)| !**ripe && self.dead.contains(*id))
                .count(),
            grace_secs: self.grace.as_secs_f64(),
            longest_backup_secs: self.longest_ms as f64 / 1000.0,
            warnings,
            ..Default::default()
        }
    }

    /// Repacks, marks, looks again for late commits, then deletes (index files first);
    /// `report` gets what was done.
    pub(super) fn execute(
        mut self,
        repo: &Repo,
        catalog: &mut Catalog,
        opts: &PruneOptions,
        report: &mut PruneReport,
    ) -> Result<()> {
        report.packs_marked = 0;
        // 1. Repack: live blobs into new packs, indexed, before the old packs are marked.
        if !self.repack.is_empty() {
            let copy = self.blobs_to_copy();
            report.blobs_repacked = repack_packs(repo, &self.packs, &self.repack, &copy)?;
            self.to_mark.extend(self.repack.iter().copied());
        }
        // 2. Mark what is newly unneeded.
        if !self.to_mark.is_empty() {
            self.to_mark.sort();
            report.packs_marked = self.to_mark.len();
            let unindexed = self
                .to_mark
                .iter()
                .filter(|id| self.packs.get(*id).is_some_and(|i| i.indexed.is_none()))
                .copied()
                .collect();
            repo.write_mark(&Mark {
                packs: std::mem::take(&mut self.to_mark),
                hostname: opts.hostname.clone(),
                unindexed,
            })?;
        }
        // 3. Backups that committed since the listing above may need what is about to go
        //    (see `commit`): look again, right before deleting.
        let ripe: HashSet<PackId> = self.deletable.iter().copied().collect();
        let mut leaving = std::mem::take(&mut self.deletable);
        leaving.extend(self.repack.iter().copied());
        let leaving = spare_late_commits(
            repo,
            catalog,
            &self.snapshots,
            &self.index_files,
            &self.packs,
            leaving,
        )?;
        let deletable: Vec<PackId> = leaving
            .iter()
            .filter(|id| ripe.contains(id))
            .copied()
            .collect();
        report.packs_deleted = deletable.len();
        report.bytes_deleted = deletable.iter().map(|id| self.packs[id].size).sum();
        // 4. Delete: index files first, then packs.
        report.index_files_rewritten = self.rewrite_index_files(repo, &leaving)?;
        for id in &deletable {
            repo.block_on(
                repo.objects()
                    .delete(&Handle::pack(self.packs[id].kind, id)),
            )?;
        }
        // A ripe mark is done with: its packs are deleted, or needed again and kept.
        for mark in &self.ripe_marks {
            repo.block_on(repo.objects().delete(mark))?;
        }
        Ok(())
    }

    /// The needed blobs of the packs to repack. One that a pack staying in service also
    /// holds (two hosts uploaded it at once) is not copied: the copy would be a dead
    /// duplicate the next prune repacks again, and so on without end.
    fn blobs_to_copy(&self) -> HashSet<BlobId> {
        let repacking: HashSet<PackId> = self.repack.iter().copied().collect();
        let mut kept: HashSet<BlobId> = HashSet::new();
        for id in &self.order {
            if self.marked.contains_key(id) || repacking.contains(id) || self.dead.contains(id) {
                continue;
            }
            let blobs = &self.packs[id].indexed.as_ref().expect("filtered").blobs;
            kept.extend(blobs.iter().map(|b| b.id).filter(|b| self.used.contains(b)));
        }
        self.used.difference(&kept).copied().collect()
    }

    /// Rewrites the index files that list a pack `leaving` (deleted, or repacked: the new
    /// packs hold its live blobs, and an index that lists a blob in a live pack and a
    /// marked one would leave it to the order in which a catalog reads the files which
    /// copy it sees), merging them and the small ones into as few files as hold them;
    /// returns how many were replaced. The new files are written before the old ones go.
    fn rewrite_index_files(&self, repo: &Repo, leaving: &[PackId]) -> Result<usize> {
        let unlisted: HashSet<PackId> = leaving.iter().copied().collect();
        let mut replaced: HashSet<IndexId> = HashSet::new();
        for id in &unlisted {
            replaced.extend(self.packs[id].in_index.iter().copied());
        }
        let small: Vec<IndexId> = self
            .index_files
            .iter()
            .filter(|(_, packs)| {
                packs.iter().map(|p| p.blobs.len()).sum::<usize>() < SMALL_INDEX_BLOBS
            })
            .map(|(id, _)| *id)
            .collect();
        if small.len() >= 2 {
            replaced.extend(small);
        }
        let mut replaced: Vec<IndexId> = replaced.into_iter().collect();
        replaced.sort();
        let mut listed: HashSet<PackId> = HashSet::new();
        let keep: Vec<IndexedPack> = replaced
            .iter()
            .flat_map(|ix| &self.index_files[ix])
            .filter(|p| !unlisted.contains(&p.id) && listed.insert(p.id))
            .cloned()
            .collect();
        for group in index::file_groups(keep) {
            repo.write_index(&group)?;
        }
        for ix in &replaced {
            repo.delete_index(ix)?;
        }
        Ok(replaced.len())
    }
}

/// Fails on an empty snapshot list, or one that shrank to under half of what this host
/// saw at its last forget or prune.
fn refuse_a_shrunk_listing(catalog: &Catalog, snapshots: usize) -> Result<()> {
    let seen: usize = catalog
        .state("snapshots_seen")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if snapshots == 0 {
        return Err(Error::Failed(
            "refusing to prune: the repository lists no snapshots, so every pack would go; \
             check the repository URL, or use --force"
                .into(),
        ));
    }
    if seen >= 4 && (snapshots as f64) < seen as f64 * SHRINK_MARGIN {
        return Err(Error::Failed(format!(
            "refusing to prune: the repository lists {snapshots} snapshot(s), but this host \
             saw {seen} at its last forget or prune; check the repository, or use --force"
        )));
    }
    Ok(())
}

/// Every pack in the store, with what the index files say of it, and the index files.
type PacksAndIndex = (
    HashMap<PackId, PackInfo>,
    HashMap<IndexId, Vec<IndexedPack>>,
);

/// Lists the packs and reads every index file.
fn read_packs(repo: &Repo) -> Result<PacksAndIndex> {
    let mut packs: HashMap<PackId, PackInfo> = HashMap::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        for o in repo.block_on(repo.objects().list(FileType::Pack(kind)))? {
            let Some(id) = PackId::from_hex(&o.handle.name) else {
                continue;
            };
            packs.insert(
                id,
                PackInfo {
                    kind,
                    size: o.size,
                    modified: o.modified,
                    indexed: None,
                    in_index: Vec::new(),
                },
            );
        }
    }
    let index_ids = repo.list_index()?;
    let mut index_files: HashMap<IndexId, Vec<IndexedPack>> = HashMap::new();
    for batch in index_ids.chunks(8) {
        let loaded = repo.block_on(futures::future::try_join_all(
            batch.iter().map(|id| repo.read_index(*id)),
        ))?;
        for (id, list) in batch.iter().zip(loaded) {
            for p in &list {
                if let Some(info) = packs.get_mut(&p.id) {
                    info.in_index.push(*id);
                    info.indexed.get_or_insert_with(|| p.clone());
                }
            }
            index_files.insert(*id, list);
        }
    }
    Ok((packs, index_files))
}

/// The marked packs (and whether a ripe mark holds each), and the ripe marks. A pack
/// marked while no index listed it and indexed since was claimed by the backup that
/// wrote it: a ripe mark no longer dooms it.
fn read_marks(
    repo: &Repo,
    packs: &HashMap<PackId, PackInfo>,
    now: SystemTime,
    grace: std::time::Duration,
) -> Result<(HashMap<PackId, bool>, Vec<Handle>)> {
    let mut marked: HashMap<PackId, bool> = HashMap::new();
    let mut ripe_marks = Vec::new();
    for (handle, modified) in repo.list_marks()? {
        let age = modified
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let ripe = age >= grace;
        let mark = repo.read_mark(&handle)?;
        for p in mark.packs {
            let claimed =
                mark.unindexed.contains(&p) && packs.get(&p).is_some_and(|i| i.indexed.is_some());
            if ripe && claimed {
                // Left unmarked: if still unneeded, it is marked again below.
                continue;
            }
            let e = marked.entry(p).or_insert(false);
            *e |= ripe;
        }
        if ripe {
            ripe_marks.push(handle);
        }
    }
    Ok((marked, ripe_marks))
}

/// Drops from `deletable` every pack that an index file written since the prune's listing
/// claims, or that holds a blob a snapshot committed since then needs.
fn spare_late_commits(
    repo: &Repo,
    catalog: &mut Catalog,
    snapshots_listed: &HashSet<SnapshotId>,
    index_listed: &HashMap<IndexId, Vec<IndexedPack>>,
    packs: &HashMap<PackId, PackInfo>,
    mut deletable: Vec<PackId>,
) -> Result<Vec<PackId>> {
    if deletable.is_empty() {
        return Ok(deletable);
    }
    let new_index: Vec<IndexId> = repo
        .list_index()?
        .into_iter()
        .filter(|id| !index_listed.contains_key(id))
        .collect();
    let mut claimed: HashSet<PackId> = HashSet::new();
    for id in &new_index {
        match repo.block_on(repo.read_index(*id)) {
            Ok(list) => claimed.extend(list.into_iter().map(|p| p.id)),
            Err(e) if crate::store::backend::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let new_roots: Vec<BlobId> = if repo
        .list_snapshot_ids()?
        .iter()
        .any(|id| !snapshots_listed.contains(id))
    {
        catalog.refresh(repo)?;
        catalog
            .snapshots(None)?
            .into_iter()
            .filter(|s| !snapshots_listed.contains(&s.id))
            .map(|s| s.snapshot.tree)
            .collect()
    } else {
        Vec::new()
    };
    let needed = blobs_under(repo, catalog, new_roots)?;
    deletable.retain(|id| {
        let in_use = packs[id]
            .indexed
            .as_ref()
            .is_some_and(|ix| ix.blobs.iter().any(|b| needed.contains(&b.id)));
        if claimed.contains(id) || in_use {
            tracing::info!(
                "pack {} is needed by a backup that committed meanwhile: kept",
                id.short()
            );
            false
        } else {
            true
        }
    });
    Ok(deletable)
}

/// Copies the blobs of `ids` that are in `copy` into new packs and indexes them; returns
/// the count.
fn repack_packs(
    repo: &Repo,
    packs: &HashMap<PackId, PackInfo>,
    ids: &[PackId],
    copy: &HashSet<BlobId>,
) -> Result<usize> {
    let mut copied = 0;
    let mut done: HashSet<BlobId> = HashSet::new();
    let mut new_packs: Vec<IndexedPack> = Vec::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        let mut writer: Option<PackWriter> = None;
        let flush = |w: PackWriter, new_packs: &mut Vec<IndexedPack>| -> Result<()> {
            let f = w.finish();
            repo.block_on(
                repo.objects()
                    .put(&Handle::pack(f.kind, &f.id), f.bytes.clone()),
            )?;
            new_packs.push(IndexedPack {
                id: f.id,
                kind: f.kind,
                size: f.bytes.len() as u64,
                wrapped_key: f.wrapped_key,
                blobs: f.entries,
            });
            Ok(())
        };
        for id in ids.iter().filter(|id| packs[*id].kind == kind) {
            let ix = packs[id]
                .indexed
                .as_ref()
                .expect("repacked packs are indexed");
            let bytes = repo.block_on(repo.objects().get(&Handle::pack(kind, id)))?;
            let key = repo.pack_key(id, &ix.wrapped_key)?;
            for b in &ix.blobs {
                if !copy.contains(&b.id) || !done.insert(b.id) {
                    continue;
                }
                let sealed = bytes
                    .get(b.offset as usize..(b.offset + b.stored_len as u64) as usize)
                    .ok_or_else(|| Error::Damage(format!("pack {} is truncated", id.short())))?;
                let payload = pack::open_blob(&key, b, sealed).map_err(|e| {
                    Error::Damage(format!("pack {}: blob {}: {e}", id.short(), b.id.short()))
                })?;
                let w = writer.get_or_insert_with(|| {
                    PackWriter::new(kind, &repo.keys.recipients, REPACK_PACK_BYTES + (1 << 20))
                });
                w.add(b.id, b.compression, b.raw_len as usize, &payload);
                copied += 1;
                if w.len() >= REPACK_PACK_BYTES {
                    flush(writer.take().expect("just used"), &mut new_packs)?;
                }
            }
        }
        if let Some(w) = writer.take() {
            flush(w, &mut new_packs)?;
        }
    }
    if !new_packs.is_empty() {
        repo.write_index(&new_packs)?;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::layout::Handle;
    use crate::repo::pack::{self, PackWriter};
    use crate::store::backend::{Backend, BackendOptions};
    use crate::store::file::FileStore;
    use std::sync::Arc;

    /// Sets a store object's time (the local store's clock is the file's mtime).
    fn age(root: &std::path::Path, object: &Handle, secs: u64) {
        let f = std::fs::File::options()
            .write(true)
            .open(root.join(object.key()))
            .unwrap();
        f.set_modified(SystemTime::now() - std::time::Duration::from_secs(secs))
            .unwrap();
    }

    /// A backup's upload that a prune marked as unindexed garbage, then indexed by that
    /// backup before the mark ripened, is not deleted with the mark: it is marked afresh.
    #[test]
    fn a_pack_indexed_after_its_mark_is_spared_and_marked_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = FileStore::new(&root);
        store.create_root().unwrap();
        let rt = Arc::new(tokio::runtime::Runtime::new().unwrap());
        let backend = Backend::new(Arc::new(store), BackendOptions::default());
        let repo = Repo::init(backend, &dir.path().join("key"), rt, chrono::Utc::now(), 3).unwrap();
        let catalog = Catalog::open(&dir.path().join("catalog.db"), &repo.config.id).unwrap();
        // The prune's own handle on the repository; the test writes through `repo`.
        let mut session = {
            let backend = Backend::new(Arc::new(FileStore::new(&root)), BackendOptions::default());
            let own = Repo::open(backend, &dir.path().join("key"), repo.runtime().clone()).unwrap();
            Session::open(own, catalog).unwrap().readable().unwrap()
        };
        let opts = PruneOptions {
            dry_run: false,
            grace: chrono::Duration::seconds(60),
            repack_threshold: 0.25,
            force: true,
            hostname: "test".into(),
        };

        // A backup in flight has uploaded a pack and not yet indexed it.
        let mut w = PackWriter::new(BlobKind::Data, &repo.keys.recipients, 1 << 10);
        w.add(BlobId([7; 32]), pack::Compression::None, 5, b"hello");
        let f = w.finish();
        repo.block_on(
            repo.objects()
                .put(&Handle::pack(f.kind, &f.id), f.bytes.clone()),
        )
        .unwrap();
        age(&root, &Handle::pack(f.kind, &f.id), 3600);
        let r = run(&mut session, &opts).unwrap();
        assert_eq!((r.packs_marked, r.packs_deleted), (1, 0));
        let marks = repo.list_marks().unwrap();
        assert_eq!(repo.read_mark(&marks[0].0).unwrap().unindexed, vec![f.id]);

        // The backup indexes it; by the next prune the mark is ripe.
        repo.write_index(&[IndexedPack {
            id: f.id,
            kind: f.kind,
            size: f.bytes.len() as u64,
            wrapped_key: f.wrapped_key.clone(),
            blobs: f.entries.clone(),
        }])
        .unwrap();
        age(&root, &marks[0].0, 3600);
        let r = run(&mut session, &opts).unwrap();
        assert_eq!((r.packs_deleted, r.packs_marked), (0, 1), "{r:?}");
        assert!(repo
            .block_on(repo.objects().stat(&Handle::pack(f.kind, &f.id)))
            .is_ok());
        let marks = repo.list_marks().unwrap();
        assert_eq!(marks.len(), 1, "the ripe mark is gone, a fresh one made");
        assert!(repo.read_mark(&marks[0].0).unwrap().unindexed.is_empty());

        // Still unneeded once that mark ripens: deleted, index first.
        age(&root, &marks[0].0, 3600);
        let r = run(&mut session, &opts).unwrap();
        assert_eq!((r.packs_deleted, r.index_files_rewritten), (1, 1), "{r:?}");
        assert!(repo
            .block_on(repo.objects().stat(&Handle::pack(f.kind, &f.id)))
            .is_err());
    }
}
