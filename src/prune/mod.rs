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

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use bytes::Bytes;
use chrono::Duration;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::repo::id::{BlobId, IndexId, PackId, SnapshotId};
use crate::repo::index::IndexedPack;
use crate::repo::pack::{self, BlobKind, PackWriter};
use crate::repo::{Mark, Repo};
use crate::restore::TreeReader;

/// Repacked blobs go into packs of about this size.
const REPACK_PACK_BYTES: usize = 16 << 20;
/// The grace period is at least this many times the longest recorded backup.
const GRACE_OVER_LONGEST_BACKUP: u32 = 2;
/// The snapshot list may shrink to half of what this host last saw before prune
/// suspects a wrong prefix or a damaged listing.
const SHRINK_MARGIN: f64 = 0.5;

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

/// A prune lock not refreshed for this long is taken to be left by a dead prune (on
/// another host, where its process cannot be asked).
const LOCK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// A running prune rewrites its lock this often, well inside the lifetime.
const LOCK_REFRESH: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Who holds a prune lock: the lock object's body.
#[derive(Debug, Serialize, serde::Deserialize)]
struct LockHolder {
    hostname: String,
    pid: u32,
}

/// Holds the prune lock and keeps it fresh; deletes it when dropped.
struct PruneLock<'a> {
    repo: &'a Repo,
    key: String,
    /// The store's clock, read from the lock object's own time.
    store_now: SystemTime,
    /// Stops the refresher.
    stop: Option<std::sync::mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl<'a> PruneLock<'a> {
    /// Takes the lock, taking over locks whose holder is gone (with a warning in
    /// `warnings`); fails with `Error::Locked` while another prune is alive.
    fn take(repo: &'a Repo, hostname: &str, warnings: &mut Vec<String>) -> Result<Self> {
        let body = serde_json::to_vec(&LockHolder {
            hostname: hostname.to_string(),
            pid: std::process::id(),
        })
        .expect("lock body serializes");
        let body = Bytes::from(body);
        let key = format!("locks/prune-{}", hex::encode(rand::random::<[u8; 8]>()));
        repo.block_on(repo.backend.put(&key, body.clone()))?;
        let mut lock = PruneLock {
            repo,
            store_now: SystemTime::now(),
            key,
            stop: None,
            refresher: None,
        };
        let mine = repo.block_on(repo.backend.stat(&lock.key))?;
        let store_now = mine.modified.unwrap_or_else(SystemTime::now);
        lock.store_now = store_now;
        for other in repo.block_on(repo.backend.list("locks/"))? {
            if other.key == lock.key || !other.key.starts_with("locks/prune-") {
                continue;
            }
            let age = other
                .modified
                .and_then(|m| store_now.duration_since(m).ok())
                .unwrap_or_default();
            let holder: Option<LockHolder> = match repo.block_on(repo.backend.get(&other.key)) {
                Ok(b) => serde_json::from_slice(&b).ok(),
                // Released between list and get.
                Err(e) if crate::store::backend::is_not_found(&e) => continue,
                Err(e) => return Err(e.into()),
            };
            let who = holder.as_ref().map_or_else(
                || "an unreadable holder".to_string(),
                |h| format!("pid {} on {}", h.pid, h.hostname),
            );
            let gone = if age >= LOCK_LIFETIME {
                Some(format!(
                    "not refreshed for {}s (a live prune refreshes it every {}s)",
                    age.as_secs(),
                    LOCK_REFRESH.as_secs()
                ))
            } else if holder
                .as_ref()
                .is_some_and(|h| h.hostname == hostname && !process_alive(h.pid))
            {
                Some("that process is gone".to_string())
            } else {
                None
            };
            match gone {
                Some(why) => {
                    repo.block_on(repo.backend.delete(&other.key))?;
                    warnings.push(format!(
                        "took over the prune lock {} of {who}: {why}",
                        other.key
                    ));
                }
                None => {
                    return Err(Error::Locked(format!(
                        "another prune holds the repository's prune lock ({who}, refreshed {}s ago); skipped",
                        age.as_secs()
                    )))
                }
            }
        }
        // Keep it fresh for as long as this prune runs.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (backend, rt, key) = (
            repo.backend.clone(),
            repo.runtime().clone(),
            lock.key.clone(),
        );
        lock.refresher = Some(std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(LOCK_REFRESH)
            {
                if let Err(e) = rt.block_on(backend.put(&key, body.clone())) {
                    tracing::warn!("cannot refresh the prune lock {key}: {e}");
                }
            }
        }));
        lock.stop = Some(stop);
        Ok(lock)
    }
}

impl Drop for PruneLock<'_> {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.repo.block_on(self.repo.backend.delete(&self.key));
    }
}

/// Whether a process of this host with that pid exists.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
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

/// Runs a prune.
pub fn run(repo: &Repo, catalog: &mut Catalog, opts: &PruneOptions) -> Result<PruneReport> {
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
    let snapshots = catalog.snapshots(None)?.len();
    let seen: usize = catalog
        .state("snapshots_seen")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if !opts.force {
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
    }
    let snapshots_listed: HashSet<SnapshotId> =
        catalog.snapshots(None)?.into_iter().map(|s| s.id).collect();
    let used = used_blobs(repo, catalog)?;
    // A backup that reused a blob of a pack marked after it started must commit before
    // the mark ripens: the grace period must outlast every backup.
    let longest_ms = catalog
        .snapshots(None)?
        .iter()
        .map(|s| s.snapshot.summary.duration_ms)
        .max()
        .unwrap_or(0);
    let floor = std::time::Duration::from_millis(longest_ms) * GRACE_OVER_LONGEST_BACKUP;
    let grace = opts.grace.to_std().unwrap_or_default().max(floor);

    // Everything the store and the index files say, read now.
    let mut packs: HashMap<PackId, PackInfo> = HashMap::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        for o in repo.block_on(repo.backend.list(&format!("{}/", kind.pack_dir())))? {
            let Some(id) = o.key.rsplit('/').next().and_then(PackId::from_hex) else {
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
    let marks = repo.list_marks()?;
    let mut marked: HashMap<PackId, bool> = HashMap::new(); // pack -> in a ripe mark
    let mut ripe_marks = Vec::new();
    for (key, modified) in &marks {
        let age = modified
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        let ripe = age >= grace;
        let mark = repo.read_mark(key)?;
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
            ripe_marks.push(key.clone());
        }
    }

    // Each needed blob is served by one pack, unmarked packs first: a pack whose blobs
    // all live elsewhere too (it was repacked) is then as dead as an unreferenced one.
    let mut served: HashMap<PackId, (u64, usize)> = HashMap::new(); // live bytes, blobs
    let mut assigned: HashSet<BlobId> = HashSet::new();
    let mut order: Vec<(&PackId, &PackInfo)> =
        packs.iter().filter(|(_, i)| i.indexed.is_some()).collect();
    order.sort_by_key(|(id, _)| (marked.contains_key(*id), **id));
    for (id, info) in &order {
        for b in &info.indexed.as_ref().expect("filtered").blobs {
            if used.contains(&b.id) && assigned.insert(b.id) {
                let e = served.entry(**id).or_default();
                e.0 += b.stored_len as u64;
                e.1 += 1;
            }
        }
    }
    let old_enough = |i: &PackInfo| {
        i.modified
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|a| a >= grace)
    };
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        snapshots,
        packs: packs.len(),
        grace_secs: grace.as_secs_f64(),
        longest_backup_secs: longest_ms as f64 / 1000.0,
        warnings,
        ..Default::default()
    };
    let mut dead: HashSet<PackId> = HashSet::new();
    let mut repack: Vec<PackId> = Vec::new();
    for (id, info) in &packs {
        match (&info.indexed, served.get(id)) {
            (Some(_), None) => {
                dead.insert(*id);
            }
            // Unindexed: a backup may be writing it right now; only old ones are garbage.
            (None, _) if old_enough(info) => {
                dead.insert(*id);
            }
            (None, _) => {}
            (Some(ix), Some((live, _))) => {
                let total: u64 = ix.blobs.iter().map(|b| b.stored_len as u64).sum();
                let dead_share = 1.0 - *live as f64 / total.max(1) as f64;
                if dead_share >= opts.repack_threshold && !marked.contains_key(id) {
                    repack.push(*id);
                }
            }
        }
    }
    let deletable: Vec<PackId> = dead
        .iter()
        .filter(|id| marked.get(*id).copied().unwrap_or(false))
        .copied()
        .collect();
    let mut to_mark: Vec<PackId> = dead
        .iter()
        .filter(|id| !marked.contains_key(*id))
        .copied()
        .collect();
    report.packs_repacked = repack.len();
    report.packs_deleted = deletable.len();
    report.bytes_deleted = deletable.iter().map(|id| packs[id].size).sum();
    report.packs_waiting = marked
        .iter()
        .filter(|(id, ripe)| !**ripe && dead.contains(*id))
        .count();
    if opts.dry_run {
        report.packs_marked = to_mark.len() + repack.len();
        return Ok(report);
    }

    // 1. Repack: live blobs into new packs, indexed, before the old packs are marked.
    if !repack.is_empty() {
        // A needed blob that a pack staying in service also holds (two hosts uploaded it
        // at once) is not copied: the copy would be a dead duplicate the next prune
        // repacks again, and so on without end.
        let repacking: HashSet<PackId> = repack.iter().copied().collect();
        let mut kept: HashSet<BlobId> = HashSet::new();
        for (id, info) in &order {
            if marked.contains_key(*id) || repacking.contains(*id) || dead.contains(*id) {
                continue;
            }
            let blobs = &info.indexed.as_ref().expect("filtered").blobs;
            kept.extend(blobs.iter().map(|b| b.id).filter(|b| used.contains(b)));
        }
        let copy: HashSet<BlobId> = used.difference(&kept).copied().collect();
        report.blobs_repacked = repack_packs(repo, &packs, &repack, &copy)?;
        to_mark.extend(repack.iter().copied());
    }
    // 2. Mark what is newly unneeded.
    if !to_mark.is_empty() {
        to_mark.sort();
        report.packs_marked = to_mark.len();
        let unindexed = to_mark
            .iter()
            .filter(|id| packs.get(*id).is_some_and(|i| i.indexed.is_none()))
            .copied()
            .collect();
        repo.write_mark(&Mark {
            packs: to_mark,
            hostname: opts.hostname.clone(),
            unindexed,
        })?;
    }
    // 3. Backups that committed since the listing above may need what is about to go
    //    (see `commit`): look again, right before deleting.
    let ripe: HashSet<PackId> = deletable.iter().copied().collect();
    let mut leaving = deletable;
    leaving.extend(repack.iter().copied());
    let leaving = spare_late_commits(
        repo,
        catalog,
        &snapshots_listed,
        &index_files,
        &packs,
        leaving,
    )?;
    let deletable: Vec<PackId> = leaving
        .iter()
        .filter(|id| ripe.contains(id))
        .copied()
        .collect();
    report.packs_deleted = deletable.len();
    report.bytes_deleted = deletable.iter().map(|id| packs[id].size).sum();
    // 4. Delete: index files first, then packs. The index files are rewritten without
    //    the deleted packs and without the repacked ones, whose live blobs the new packs
    //    hold: an index that lists a blob in a live pack and a marked one would leave it
    //    to the order in which a catalog reads the files which copy it sees.
    let unlisted: HashSet<PackId> = leaving.iter().copied().collect();
    let mut touched: HashSet<IndexId> = HashSet::new();
    for id in &unlisted {
        touched.extend(packs[id].in_index.iter().copied());
    }
    for ix in &touched {
        let keep: Vec<IndexedPack> = index_files[ix]
            .iter()
            .filter(|p| !unlisted.contains(&p.id))
            .cloned()
            .collect();
        if !keep.is_empty() {
            repo.write_index(&keep)?;
        }
        repo.block_on(repo.backend.delete(&format!("index/{}", ix.to_hex())))?;
        report.index_files_rewritten += 1;
    }
    for id in &deletable {
        repo.block_on(repo.backend.delete(&pack::pack_key(packs[id].kind, id)))?;
    }
    // A ripe mark is done with: its packs are deleted, or needed again and kept.
    for key in &ripe_marks {
        repo.block_on(repo.backend.delete(key))?;
    }
    drop(lock);
    catalog.refresh(repo)?;
    catalog.set_state("snapshots_seen", &snapshots.to_string())?;
    Ok(report)
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
            repo.block_on(repo.backend.put(&f.key(), f.bytes.clone()))?;
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
            let bytes = repo.block_on(repo.backend.get(&pack::pack_key(kind, id)))?;
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
    use crate::store::backend::{Backend, BackendOptions};
    use crate::store::file::FileStore;
    use std::sync::Arc;

    /// Sets a store object's time (the local store's clock is the file's mtime).
    fn age(root: &std::path::Path, key: &str, secs: u64) {
        let f = std::fs::File::options()
            .write(true)
            .open(root.join(key))
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
        let mut catalog = Catalog::open(&dir.path().join("catalog.db"), &repo.config.id).unwrap();
        let opts = PruneOptions {
            dry_run: false,
            grace: Duration::seconds(60),
            repack_threshold: 0.25,
            force: true,
            hostname: "test".into(),
        };

        // A backup in flight has uploaded a pack and not yet indexed it.
        let mut w = PackWriter::new(BlobKind::Data, &repo.keys.recipients, 1 << 10);
        w.add(BlobId([7; 32]), pack::Compression::None, 5, b"hello");
        let f = w.finish();
        repo.block_on(repo.backend.put(&f.key(), f.bytes.clone()))
            .unwrap();
        age(&root, &f.key(), 3600);
        let r = run(&repo, &mut catalog, &opts).unwrap();
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
        let r = run(&repo, &mut catalog, &opts).unwrap();
        assert_eq!((r.packs_deleted, r.packs_marked), (0, 1), "{r:?}");
        assert!(repo.block_on(repo.backend.stat(&f.key())).is_ok());
        let marks = repo.list_marks().unwrap();
        assert_eq!(marks.len(), 1, "the ripe mark is gone, a fresh one made");
        assert!(repo.read_mark(&marks[0].0).unwrap().unindexed.is_empty());

        // Still unneeded once that mark ripens: deleted, index first.
        age(&root, &marks[0].0, 3600);
        let r = run(&repo, &mut catalog, &opts).unwrap();
        assert_eq!((r.packs_deleted, r.index_files_rewritten), (1, 1), "{r:?}");
        assert!(repo.block_on(repo.backend.stat(&f.key())).is_err());
    }
}
