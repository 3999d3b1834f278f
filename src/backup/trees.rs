//! The tree builder: the walk's events, in order, into tree blobs and the snapshot's
//! root.

use crossbeam_channel::{Receiver, Sender};

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::fsmeta::FileStamp;
use crate::fsmeta::{node_from_meta, stamp};
use crate::repo::id::BlobId;
use crate::repo::pack::BlobKind;
use crate::repo::tree::{Node, Tree};

use super::pipeline::*;

#[derive(Default, Clone, Copy)]
pub(super) struct Counts {
    pub(super) files: u64,
    pub(super) dirs: u64,
    pub(super) bytes: u64,
}

/// Updates a file's node to the version read through its handle.
pub(super) fn refresh_node(node: &mut Node, m: &std::fs::Metadata) {
    let fresh = node_from_meta(&node.os_name(), m);
    node.mode = fresh.mode;
    node.uid = fresh.uid;
    node.gid = fresh.gid;
    node.mtime_ns = fresh.mtime_ns;
}

/// Builds trees bottom-up in walk order and sends them to the sealers; stages the files
/// cache entries of files that were read.
#[allow(clippy::type_complexity)]
/// Seals one directory's nodes into a tree blob, sent for storing unless already stored.
fn store_tree(
    sh: &Shared<'_>,
    blobs: &Sender<NewBlob>,
    nodes: Vec<Node>,
    catalog: &Catalog,
) -> Result<BlobId> {
    let mut tree = Tree { nodes };
    let bytes = tree.to_bytes();
    let id = sh.repo.keys.blob_id(&bytes);
    if sh.is_new(catalog, &id)? {
        blobs
            .send(NewBlob {
                id,
                kind: BlobKind::Tree,
                data: bytes,
            })
            .map_err(|_| Error::Interrupted)?;
    }
    Ok(id)
}

/// Builds the snapshot's trees from the walk's events, in walk order, and stages the
/// files cache entries of what was read; returns the root, the run's warnings and counts.
pub(super) fn build_trees(
    sh: &Shared<'_>,
    events: Receiver<Event>,
    blobs: &Sender<NewBlob>,
    run_id: &str,
) -> (Result<(BlobId, Vec<String>)>, Counts) {
    let mut counts = Counts::default();
    let r = (|| {
        let mut catalog = sh.catalog.connect()?;
        let mut warnings = Vec::new();
        let mut stack: Vec<(Option<Node>, Vec<Node>)> = vec![(None, Vec::new())];
        let mut staged: Vec<(Vec<u8>, FileStamp, Vec<BlobId>)> = Vec::new();
        let store_tree = |nodes, catalog: &Catalog| store_tree(sh, blobs, nodes, catalog);
        for ev in events {
            if sh.stopped() {
                return Err(Error::Interrupted);
            }
            match ev {
                Event::Enter(node) => stack.push((Some(node), Vec::new())),
                Event::Leave => {
                    let (node, children) = stack.pop().expect("walk is balanced");
                    let mut node = node.expect("only the root has no node");
                    node.subtree = Some(store_tree(children, &catalog)?);
                    counts.dirs += 1;
                    stack.last_mut().expect("root stays").1.push(node);
                }
                Event::Leaf(node) => stack.last_mut().expect("root stays").1.push(node),
                Event::File {
                    mut node,
                    cache_key,
                    stamp: listed,
                    content,
                } => {
                    let ids = match content {
                        Content::Cached(ids) => ids,
                        Content::Pending(rx) => match rx.recv() {
                            Ok(Ok(r)) => {
                                if let Some(m) = &r.meta {
                                    // The version read, which may be newer than the listing.
                                    refresh_node(&mut node, m);
                                }
                                node.size = r.size;
                                node.holes = r.holes;
                                node.xattrs = r.xattrs;
                                let read_as = r.meta.as_ref().map_or(listed, stamp);
                                match r.warning {
                                    Some(w) => warnings.push(w),
                                    // The files cache keeps chunk lists only: a file stored
                                    // with holes is read again each time.
                                    None if !cache_key.is_empty() && node.holes.is_empty() => {
                                        staged.push((cache_key, read_as, r.ids.clone()));
                                        if staged.len() >= 1024 {
                                            catalog.stage_files(run_id, &staged)?;
                                            staged.clear();
                                        }
                                    }
                                    _ => {}
                                }
                                r.ids
                            }
                            Ok(Err(ReadError::Failed(e))) if cache_key.is_empty() => {
                                if sh.stopped() {
                                    return Err(Error::Interrupted);
                                }
                                return Err(Error::Failed(format!(
                                    "{}: {e}",
                                    node.os_name().to_string_lossy()
                                )));
                            }
                            Ok(Err(ReadError::Vanished)) => {
                                // Deleted since it was listed (a temp file): not in the snapshot.
                                tracing::info!(
                                    "{} vanished during the backup",
                                    String::from_utf8_lossy(&cache_key)
                                );
                                continue;
                            }
                            Ok(Err(ReadError::Failed(e))) => {
                                if sh.stopped() {
                                    return Err(Error::Interrupted);
                                }
                                warnings.push(format!(
                                    "cannot read {}: {e}",
                                    String::from_utf8_lossy(&cache_key)
                                ));
                                continue;
                            }
                            Err(_) => return Err(Error::Interrupted),
                        },
                    };
                    counts.files += 1;
                    counts.bytes += node.size;
                    sh.progress.add_file();
                    node.content = ids;
                    stack.last_mut().expect("root stays").1.push(node);
                }
                Event::Warning(w) => warnings.push(w),
            }
        }
        if sh.stopped() {
            return Err(Error::Interrupted);
        }
        if stack.len() != 1 {
            return Err(Error::Failed("internal error: unbalanced walk".into()));
        }
        catalog.stage_files(run_id, &staged)?;
        let (_, children) = stack.pop().expect("root");
        let root = store_tree(children, &catalog)?;
        Ok((root, warnings))
    })();
    (r, counts)
}
