//! Reading a snapshot's trees and files out of the repository.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::repo::id::{BlobId, PackId};
use crate::repo::tree::{Node, Tree};
use crate::repo::Repo;

/// Reads tree blobs, caching whole metadata packs: a restore reads many small trees.
pub struct TreeReader<'a> {
    repo: &'a Repo,
    catalog: &'a Catalog,
    packs: HashMap<PackId, bytes::Bytes>,
}

impl<'a> TreeReader<'a> {
    /// A reader over the catalog's index.
    pub fn new(repo: &'a Repo, catalog: &'a Catalog) -> Self {
        TreeReader {
            repo,
            catalog,
            packs: HashMap::new(),
        }
    }

    /// Loads one tree.
    pub fn tree(&mut self, id: &BlobId) -> Result<Tree> {
        let loc = self.catalog.locate(id)?.ok_or_else(|| {
            Error::Damage(format!("tree {} is missing from the index", id.short()))
        })?;
        if !self.packs.contains_key(&loc.pack) {
            if self.packs.len() >= 8 {
                self.packs.clear();
            }
            let bytes = self
                .repo
                .block_on(self.repo.objects().get(&loc.pack_handle()))?;
            self.packs.insert(loc.pack, bytes);
        }
        let pack = &self.packs[&loc.pack];
        let (start, end) = (
            loc.entry.offset as usize,
            loc.entry.offset as usize + loc.entry.stored_len as usize,
        );
        let sealed = pack.get(start..end).ok_or_else(|| {
            Error::Damage(format!(
                "pack {} is damaged: it is truncated",
                loc.pack.short()
            ))
        })?;
        let raw = self.repo.decode_blob(&loc, sealed)?;
        Tree::from_bytes(&raw)
            .map_err(|e| Error::Damage(format!("tree {} does not parse: {e}", id.short())))
    }

    /// The node at `path` (components relative to the snapshot root), or the root itself.
    pub fn find(&mut self, root: &BlobId, path: &Path) -> Result<Option<(Vec<OsString>, Node)>> {
        let comps: Vec<OsString> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_os_string()),
                _ => None,
            })
            .collect();
        let mut tree_id = *root;
        let mut found = None;
        for (i, c) in comps.iter().enumerate() {
            let tree = self.tree(&tree_id)?;
            let Some(node) = tree.find(c) else {
                return Ok(None);
            };
            if i + 1 < comps.len() {
                match node.subtree {
                    Some(s) => tree_id = s,
                    None => return Ok(None),
                }
            }
            found = Some(node.clone());
        }
        Ok(found.map(|n| (comps, n)))
    }
}

/// Streams one file of a snapshot, in order, to `sink`; blobs are fetched a few ahead.
pub fn stream_file(
    repo: &Repo,
    catalog: &Catalog,
    node: &Node,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<()> {
    let name = node.os_name().to_string_lossy().into_owned();
    let mut locs = Vec::with_capacity(node.content.len());
    for id in &node.content {
        locs.push(catalog.locate(id)?.ok_or_else(|| {
            Error::Damage(format!(
                "blob {} of {name} is missing from the index",
                id.short()
            ))
        })?);
    }
    // Fetching runs on its own thread, so the sink may block (or drive the runtime itself).
    let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<u8>>>(4);
    let locs = &locs;
    std::thread::scope(|s| {
        // `move`: the sender must be dropped when fetching ends, or the loop never does.
        s.spawn(move || {
            repo.block_on(async {
                use futures::StreamExt;
                let mut blobs =
                    futures::stream::iter(locs.iter().map(|l| repo.read_blob(l))).buffered(4);
                while let Some(b) = blobs.next().await {
                    let failed = b.is_err();
                    if tx.send(b).is_err() || failed {
                        return;
                    }
                }
            })
        });
        // Holes come out as the zeros they read as.
        let mut filler = crate::fswrite::HoleFiller::new(node);
        for b in rx {
            filler
                .push(&b?, &mut sink)
                .map_err(|e| Error::io(format!("writing {name}"), e))?;
        }
        filler
            .finish(&mut sink)
            .map_err(|e| Error::io(format!("writing {name}"), e))
    })
}
