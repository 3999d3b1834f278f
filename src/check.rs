//! Verifying a repository: structure always, data on request.

use std::collections::{HashMap, HashSet};

use rand::seq::SliceRandom;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::repo::id::{content_hash, BlobId, PackId};
use crate::repo::layout::{FileType, Handle};
use crate::repo::pack::{self, BlobKind};
use crate::repo::snapshot::SnapshotEntry;
use crate::repo::tree::NodeKind;
use crate::repo::Repo;
use crate::restore::TreeReader;
use crate::session::{Readable, Session};

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The damaged pack, when a pack is at fault.
    pub pack: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// What `check` found.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    /// Index files read.
    pub index_files: usize,
    /// Snapshots, recovery points and drill results read from the store.
    pub manifests: usize,
    /// Packs listed by the index.
    pub packs: usize,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Distinct trees walked.
    pub trees: usize,
    /// Packs whose contents were read and verified.
    pub packs_read: usize,
    /// Packs in the store that no index lists: garbage, not damage.
    pub unreferenced_packs: usize,
    /// Damage found.
    pub problems: Vec<Problem>,
    /// Snapshots that reference damaged or missing data.
    pub affected_snapshots: Vec<String>,
}

/// Packs verified at once with `--read-data`; bounds the memory of their blob lists.
const VERIFY_BATCH: usize = 16;

/// Checks structure; with `read_data_percent`, also downloads and verifies that share of
/// the packs. Memory stays proportional to the number of packs, not of blobs: blob
/// lookups go through the catalog, which the caller has just refreshed from the store.
pub fn run(session: &Session<Readable>, read_data_percent: Option<f64>) -> Result<CheckReport> {
    let (repo, catalog) = (session.repo(), session.catalog());
    let mut report = CheckReport::default();
    let indexed = check_index_files(repo, &mut report)?;
    // Every manifest, read from the store, not the catalog: a damaged one is named here,
    // and the catalog left it out, so the rest stays usable.
    report.manifests = check_manifests(repo, &mut report.problems)?;
    let mut damaged = check_packs_present(repo, &indexed, &mut report)?;
    let snapshots = catalog.snapshots(None)?;
    report.snapshots = snapshots.len();
    let mut trees = TreeReader::new(repo, catalog);
    check_trees(catalog, &mut trees, &snapshots, &mut damaged, &mut report)?;
    check_wal_continuity(catalog, &snapshots, &mut report.problems)?;
    if let Some(pct) = read_data_percent {
        read_packs(repo, catalog, &indexed, pct, &mut damaged, &mut report)?;
    }
    if !damaged.is_empty() {
        let mut bad_blobs: HashSet<BlobId> = HashSet::new();
        for p in &damaged {
            bad_blobs.extend(catalog.pack_blobs(p)?.iter().map(|b| b.id));
        }
        report.affected_snapshots = affected(&mut trees, &snapshots, &bad_blobs);
    }
    Ok(report)
}

/// Every index file must open; what they list is what the catalog now holds. Returns the
/// packs they list, with kind and size.
fn check_index_files(
    repo: &Repo,
    report: &mut CheckReport,
) -> Result<HashMap<PackId, (BlobKind, u64)>> {
    let index_ids = repo.list_index()?;
    report.index_files = index_ids.len();
    let mut indexed: HashMap<PackId, (BlobKind, u64)> = HashMap::new();
    for id in &index_ids {
        match repo.block_on(repo.read_index(*id)) {
            Ok(packs) => {
                for p in packs {
                    indexed.insert(p.id, (p.kind, p.size));
                }
            }
            Err(e) => report.problems.push(Problem {
                pack: None,
                message: e.to_string(),
            }),
        }
    }
    report.packs = indexed.len();
    Ok(indexed)
}

/// Every indexed pack must be in the store at the size the index says; counts the packs
/// no index lists. Returns the packs found missing or cut short.
fn check_packs_present(
    repo: &Repo,
    indexed: &HashMap<PackId, (BlobKind, u64)>,
    report: &mut CheckReport,
) -> Result<HashSet<PackId>> {
    let mut in_store: HashMap<Handle, u64> = HashMap::new();
    for kind in [BlobKind::Data, BlobKind::Tree] {
        for o in repo.block_on(repo.objects().list(FileType::Pack(kind)))? {
            in_store.insert(o.handle, o.size);
        }
    }
    let mut damaged: HashSet<PackId> = HashSet::new();
    for (id, &(kind, size)) in indexed {
        let key = Handle::pack(kind, id);
        let problem = match in_store.get(&key) {
            None => format!("pack {} ({key}) is missing", id.short()),
            Some(&found) if found != size => format!(
                "pack {} ({key}) has {found} bytes, the index says {size}",
                id.short()
            ),
            Some(_) => continue,
        };
        damaged.insert(*id);
        report.problems.push(Problem {
            pack: Some(id.to_hex()),
            message: problem,
        });
    }
    let listed: HashSet<Handle> = indexed
        .iter()
        .map(|(id, (k, _))| Handle::pack(*k, id))
        .collect();
    report.unreferenced_packs = in_store.keys().filter(|k| !listed.contains(*k)).count();
    Ok(damaged)
}

/// Every tree the snapshots reach must open (each read once), and every blob their files
/// list must be in the index.
fn check_trees(
    catalog: &Catalog,
    trees: &mut TreeReader<'_>,
    snapshots: &[SnapshotEntry],
    damaged: &mut HashSet<PackId>,
    report: &mut CheckReport,
) -> Result<()> {
    let mut seen_trees: HashSet<BlobId> = HashSet::new();
    for s in snapshots {
        let mut stack = vec![s.snapshot.tree];
        while let Some(t) = stack.pop() {
            if !seen_trees.insert(t) {
                continue;
            }
            let tree = match trees.tree(&t) {
                Ok(tree) => tree,
                Err(e) => {
                    let pack = catalog.locate(&t)?.map(|l| l.pack);
                    damaged.extend(pack);
                    report.problems.push(Problem {
                        pack: pack.map(|p| p.to_hex()),
                        message: format!("snapshot {}: {e}", s.id.short()),
                    });
                    continue;
                }
            };
            for n in &tree.nodes {
                stack.extend(n.subtree);
                if n.kind != NodeKind::File {
                    continue;
                }
                for b in &n.content {
                    // Where restore would read it: a copy in a pack a prune marked still
                    // serves (prune keeps what a snapshot needs and drops the mark).
                    if catalog.locate(b)?.is_none() {
                        report.problems.push(Problem {
                            pack: None,
                            message: format!(
                                "snapshot {}: blob {} of {} is not in the index",
                                s.id.short(),
                                b.short(),
                                n.name
                            ),
                        });
                    }
                }
            }
        }
    }
    report.trees = seen_trees.len();
    Ok(())
}

/// `--read-data`: downloads `pct` percent of the packs not already found damaged (all of
/// them at 100) and verifies every byte.
fn read_packs(
    repo: &Repo,
    catalog: &Catalog,
    indexed: &HashMap<PackId, (BlobKind, u64)>,
    pct: f64,
    damaged: &mut HashSet<PackId>,
    report: &mut CheckReport,
) -> Result<()> {
    let mut packs: Vec<(PackId, BlobKind)> = indexed
        .iter()
        .filter(|(id, _)| !damaged.contains(*id))
        .map(|(id, (k, _))| (*id, *k))
        .collect();
    packs.sort_by_key(|p| p.0);
    if pct < 100.0 {
        packs.shuffle(&mut rand::thread_rng());
        let n = ((packs.len() as f64 * pct / 100.0).ceil() as usize).min(packs.len());
        packs.truncate(n);
    }
    report.packs_read = packs.len();
    for batch in packs.chunks(VERIFY_BATCH) {
        let mut work = Vec::with_capacity(batch.len());
        for (id, kind) in batch {
            let Some(wrapped) = catalog.pack_wrapped_key(id)? else {
                continue;
            };
            work.push((*id, *kind, wrapped, catalog.pack_blobs(id)?));
        }
        let results =
            repo.block_on(async {
                use futures::StreamExt;
                futures::stream::iter(work.iter().map(|(id, kind, wrapped, blobs)| {
                    verify_pack(repo, *id, *kind, wrapped, blobs)
                }))
                .buffer_unordered(4)
                .collect::<Vec<_>>()
                .await
            });
        for r in results {
            if let Err((id, msg)) = r {
                damaged.insert(id);
                report.problems.push(Problem {
                    pack: Some(id.to_hex()),
                    message: msg,
                });
            }
        }
    }
    Ok(())
}

/// Reads every snapshot, recovery point and drill result in the store; records those that
/// do not open as problems; returns how many were read.
fn check_manifests(repo: &Repo, problems: &mut Vec<Problem>) -> Result<usize> {
    async fn opens<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<()> {
        f.await.map(|_| ())
    }
    let mut reads: Vec<
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + '_>>,
    > = Vec::new();
    for id in repo.list_snapshot_ids()? {
        reads.push(Box::pin(opens(repo.read_snapshot(id))));
    }
    for id in repo.list_point_ids()? {
        reads.push(Box::pin(opens(repo.read_point(id))));
    }
    for id in repo.list_drill_ids()? {
        reads.push(Box::pin(opens(repo.read_drill(id))));
    }
    let n = reads.len();
    let results = repo.block_on(async {
        use futures::StreamExt;
        futures::stream::iter(reads)
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
    });
    for r in results {
        match r {
            Ok(()) => {}
            // Removed since the listing (a concurrent forget).
            Err(e) if crate::store::backend::is_not_found(&e) => {}
            Err(e @ Error::Damage(_)) => problems.push(Problem {
                pack: None,
                message: e.to_string(),
            }),
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Downloads a whole pack and verifies its name (which covers every byte), its trailer,
/// and every blob the index places in it.
async fn verify_pack(
    repo: &Repo,
    id: PackId,
    kind: BlobKind,
    wrapped_key: &[u8],
    blobs: &[pack::BlobEntry],
) -> std::result::Result<(), (PackId, String)> {
    let key = Handle::pack(kind, &id);
    let fail = |m: String| (id, format!("pack {} ({key}) is damaged: {m}", id.short()));
    let bytes = repo
        .objects()
        .get(&key)
        .await
        .map_err(|e| fail(e.to_string()))?;
    if content_hash(&bytes) != id.0 {
        return Err(fail("its contents do not match its name".into()));
    }
    let pack_key = repo
        .pack_key(&id, wrapped_key)
        .map_err(|e| fail(e.to_string()))?;
    let trailer =
        pack::read_trailer(&bytes, &pack_key).map_err(|e| fail(format!("trailer: {e}")))?;
    // The trailer may list more: a blob that is also in another pack can be indexed there.
    let listed: HashSet<_> = trailer.iter().collect();
    let wrapped = std::sync::Arc::new(wrapped_key.to_vec());
    for b in blobs {
        if !listed.contains(b) {
            return Err(fail(format!(
                "the index lists blob {} that its trailer does not",
                b.id.short()
            )));
        }
        let loc = crate::repo::BlobLocation {
            pack: id,
            wrapped_key: wrapped.clone(),
            entry: *b,
        };
        let (s, e) = (b.offset as usize, b.offset as usize + b.stored_len as usize);
        let sealed = bytes
            .get(s..e)
            .ok_or_else(|| fail("it is truncated".into()))?;
        repo.decode_blob(&loc, sealed)
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Every source's archived WAL must run unbroken from each base backup to the archive's
/// end: each missing segment is named with the span of time it makes unrestorable.
fn check_wal_continuity(
    catalog: &Catalog,
    snapshots: &[SnapshotEntry],
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let mut sources: Vec<(&str, &str)> = snapshots
        .iter()
        .filter(|s| s.snapshot.wal.is_some())
        .filter_map(|s| Some((s.snapshot.stack.as_str(), s.snapshot.source.as_deref()?)))
        .collect();
    sources.sort();
    sources.dedup();
    for (stack, source) in sources {
        let points = catalog.points(stack)?;
        let cov = crate::pitr::source_coverage(&points, snapshots, stack, source);
        for g in cov.gaps {
            problems.push(Problem {
                pack: None,
                message: format!(
                    "stack {stack}, source {source}: {} {} is missing: nothing \
                     between {} and {} can be restored",
                    crate::pitr::log_file_kind(&g.missing),
                    g.missing,
                    crate::timespec::local_time(&g.broken.from),
                    crate::timespec::local_time(&g.broken.to)
                ),
            });
        }
    }
    Ok(())
}

/// Snapshots whose trees reference any of `bad` (directly or through a damaged tree).
fn affected(
    trees: &mut TreeReader<'_>,
    snapshots: &[SnapshotEntry],
    bad: &HashSet<BlobId>,
) -> Vec<String> {
    let mut memo: HashMap<BlobId, bool> = HashMap::new();
    // Post-order with a stack of its own (trees may be thousands of levels deep): a tree
    // is decided once its subtrees are.
    let mut uses = |root: BlobId, trees: &mut TreeReader<'_>| -> bool {
        let mut stack: Vec<(BlobId, Option<Vec<BlobId>>)> = vec![(root, None)];
        while let Some((t, subs)) = stack.pop() {
            if memo.contains_key(&t) {
                continue;
            }
            match subs {
                Some(subs) => {
                    let v = subs.iter().any(|s| memo.get(s) == Some(&true));
                    memo.insert(t, v);
                }
                None if bad.contains(&t) => {
                    memo.insert(t, true);
                }
                None => match trees.tree(&t) {
                    Err(_) => {
                        memo.insert(t, true);
                    }
                    Ok(tree) => {
                        if tree
                            .nodes
                            .iter()
                            .any(|n| n.content.iter().any(|b| bad.contains(b)))
                        {
                            memo.insert(t, true);
                            continue;
                        }
                        let subs: Vec<BlobId> =
                            tree.nodes.iter().filter_map(|n| n.subtree).collect();
                        stack.push((t, Some(subs.clone())));
                        stack.extend(subs.into_iter().map(|s| (s, None)));
                    }
                },
            }
        }
        memo[&root]
    };
    snapshots
        .iter()
        .filter(|s| uses(s.snapshot.tree, trees))
        .map(|s| s.id.short())
        .collect()
}

impl CheckReport {
    /// The error for a damaged repository, or `Ok` for a sound one.
    pub fn verdict(&self) -> Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        let packs: Vec<String> = self
            .problems
            .iter()
            .filter_map(|p| p.pack.as_deref().map(|h| h[..8].to_string()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut msg = format!("check found {} problem(s)", self.problems.len());
        if !packs.is_empty() {
            msg.push_str(&format!("; damaged pack(s): {}", packs.join(", ")));
        }
        if !self.affected_snapshots.is_empty() {
            msg.push_str(&format!(
                "; affected snapshot(s): {}",
                self.affected_snapshots.join(", ")
            ));
        }
        Err(Error::Damage(msg))
    }
}
