//! The index cache: which packs exist, which blobs each holds and where, and which packs
//! a prune marked for deletion (backups must not deduplicate against those).

use std::collections::HashSet;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::refresh::RefreshStats;
use super::Catalog;
use crate::error::{Error, Result};
use crate::repo::id::{BlobId, IndexId, PackId};
use crate::repo::index::IndexedPack;
use crate::repo::pack::{decode_entries, encode_entries, BlobEntry, BlobKind, Compression};
use crate::repo::{BlobLocation, Repo};

impl Catalog {
    /// Loads the packs that prunes have marked for deletion (see `prune`).
    pub(super) fn refresh_marks(&mut self, repo: &Repo) -> Result<()> {
        let mut doomed = Vec::new();
        for (mark, _) in repo.list_marks()? {
            match repo.read_mark(&mark) {
                Ok(m) => doomed.extend(m.packs),
                // Deleted between list and get: the prune that owned it is done with it.
                Err(e) if crate::store::backend::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        let tx = self
            .conn
            .transaction()
            .map_err(|e| Self::err_at(&self.path, e))?;
        tx.execute("DELETE FROM doomed_packs", [])
            .map_err(|e| Self::err_at(&self.path, e))?;
        for p in &doomed {
            tx.execute(
                "INSERT OR IGNORE INTO doomed_packs(pack_id) VALUES (?1)",
                [&p.0[..]],
            )
            .map_err(|e| Self::err_at(&self.path, e))?;
        }
        tx.commit().map_err(|e| Self::err_at(&self.path, e))
    }

    /// Whether a prune marked this pack for deletion.
    pub fn is_doomed(&self, pack: &PackId) -> Result<bool> {
        self.conn
            .query_row(
                "SELECT count(*) FROM doomed_packs WHERE pack_id=?1",
                [&pack.0[..]],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Loads the index files that appeared in the store since the last refresh; when one
    /// disappeared (a prune replaced it), what it listed may be gone, so every index file
    /// is loaded again.
    pub(super) fn refresh_index_files(
        &mut self,
        repo: &Repo,
        stats: &mut RefreshStats,
    ) -> Result<()> {
        let in_store: HashSet<IndexId> = repo.list_index()?.into_iter().collect();
        let known: HashSet<IndexId> = self.index_ids()?;
        if !known.is_subset(&in_store) {
            // An index file was removed (by prune): what it listed may be gone. Reload.
            self.write_batch(
                "DELETE FROM blobs WHERE pack IN (SELECT rowid FROM packs WHERE index_id IS NOT NULL);
                 DELETE FROM packs WHERE index_id IS NOT NULL; DELETE FROM index_files;",
            )?;
            stats.rebuilt = true;
        }
        let known = self.index_ids()?;
        let new: Vec<IndexId> = in_store.difference(&known).copied().collect();
        stats.index_files = new.len();
        // Bulk inserts into the blob B-tree want a larger cache while they last.
        if !new.is_empty() {
            let _ = self.conn.pragma_update(None, "cache_size", -32 * 1024);
        }
        // Fetch in parallel (the backend bounds it), insert as they arrive.
        for batch in new.chunks(8) {
            let loaded = repo.block_on(futures::future::join_all(
                batch.iter().map(|id| repo.read_index(*id)),
            ));
            for (id, packs) in batch.iter().zip(loaded) {
                match packs {
                    Ok(packs) => self.add_index_file(*id, &packs)?,
                    Err(e) if crate::store::backend::is_not_found(&e) => {}
                    // Its packs stay unknown: backups store their blobs again, and
                    // `drctl repair index` rebuilds it from the packs themselves.
                    Err(e @ Error::Damage(_)) => {
                        stats.damaged_index_files += 1;
                        tracing::warn!(
                            "{e}; skipped (run `drctl check`, then `drctl repair index`)"
                        );
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let _ = self.conn.pragma_update(None, "cache_size", -1024);
        Ok(())
    }

    fn index_ids(&self) -> Result<HashSet<IndexId>> {
        let mut st = self
            .conn
            .prepare("SELECT index_id FROM index_files")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| self.err(e))?;
        Ok(rows
            .filter_map(|r| r.ok().and_then(|b| IndexId::from_slice(&b)))
            .collect())
    }

    /// Records the packs of an index file (already in the store).
    pub fn add_index_file(&mut self, id: IndexId, packs: &[IndexedPack]) -> Result<()> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| Self::err_at(&self.path, e))?;
        for p in packs {
            insert_pack(&tx, p, Some(&id)).map_err(|e| Self::err_at(&self.path, e))?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO index_files(index_id) VALUES (?1)",
            [&id.0[..]],
        )
        .map_err(|e| Self::err_at(&self.path, e))?;
        tx.commit().map_err(|e| Self::err_at(&self.path, e))
    }

    /// Records a pack this host uploaded, before any index file lists it.
    pub fn add_uploaded_pack(&mut self, pack: &IndexedPack) -> Result<()> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| Self::err_at(&self.path, e))?;
        insert_pack(&tx, pack, None).map_err(|e| Self::err_at(&self.path, e))?;
        let mut entries = Vec::new();
        encode_entries(&pack.blobs, &mut entries);
        tx.execute(
            "UPDATE packs SET entries=?1 WHERE pack_id=?2",
            params![entries, &pack.id.0[..]],
        )
        .map_err(|e| Self::err_at(&self.path, e))?;
        tx.commit().map_err(|e| Self::err_at(&self.path, e))
    }

    /// Packs this host uploaded that no index file lists yet (from this run or a crashed one).
    pub fn unindexed_packs(&self) -> Result<Vec<IndexedPack>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT pack_id, kind, size, wrapped_key, entries FROM packs
                 WHERE index_id IS NULL AND entries IS NOT NULL",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, u8>(1)?,
                    r.get::<_, u64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, size, wrapped_key, entries) = row.map_err(|e| self.err(e))?;
            let (Some(id), Some(kind), Some((blobs, _))) = (
                PackId::from_slice(&id),
                BlobKind::from_u8(kind),
                decode_entries(&entries),
            ) else {
                continue;
            };
            out.push(IndexedPack {
                id,
                kind,
                size,
                wrapped_key,
                blobs,
            });
        }
        Ok(out)
    }

    /// Forgets unindexed packs that turned out to be gone from the store.
    pub fn forget_pack(&self, id: &PackId) -> Result<()> {
        // Rolled back when dropped on an error, so the connection is never left mid-write.
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM blobs WHERE pack=(SELECT rowid FROM packs WHERE pack_id=?1)",
            [&id.0[..]],
        )
        .and_then(|_| tx.execute("DELETE FROM packs WHERE pack_id=?1", [&id.0[..]]))
        .and_then(|_| tx.commit())
        .map_err(|e| self.err(e))
    }

    /// Marks packs as listed in an index file this host just wrote.
    pub fn mark_indexed(&mut self, index: IndexId, packs: &[PackId]) -> Result<()> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| Self::err_at(&self.path, e))?;
        for p in packs {
            tx.execute(
                "UPDATE packs SET index_id=?1 WHERE pack_id=?2",
                params![&index.0[..], &p.0[..]],
            )
            .map_err(|e| Self::err_at(&self.path, e))?;
        }
        tx.execute(
            "INSERT OR IGNORE INTO index_files(index_id) VALUES (?1)",
            [&index.0[..]],
        )
        .map_err(|e| Self::err_at(&self.path, e))?;
        tx.commit().map_err(|e| Self::err_at(&self.path, e))
    }

    /// Whether any index or upload of this host lists the blob (the dedup check).
    pub fn has_blob(&self, id: &BlobId) -> Result<bool> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM blobs b JOIN packs p ON p.rowid=b.pack WHERE b.blob_id=?1
                 AND NOT EXISTS (SELECT 1 FROM doomed_packs d WHERE d.pack_id=p.pack_id)",
            )
            .map_err(|e| self.err(e))?;
        st.exists([&id.0[..]]).map_err(|e| self.err(e))
    }

    /// A pack that holds the blob and that no prune marked: the pack a deduplicated
    /// blob relies on (see `commit`).
    pub fn live_pack_of(&self, id: &BlobId) -> Result<Option<PackId>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT p.pack_id FROM blobs b JOIN packs p ON p.rowid=b.pack WHERE b.blob_id=?1
                 AND NOT EXISTS (SELECT 1 FROM doomed_packs d WHERE d.pack_id=p.pack_id) LIMIT 1",
            )
            .map_err(|e| self.err(e))?;
        st.query_row([&id.0[..]], |r| r.get::<_, Vec<u8>>(0))
            .optional()
            .map(|p| p.and_then(|p| PackId::from_slice(&p)))
            .map_err(|e| self.err(e))
    }

    /// Where a blob is, if any index or upload of this host lists it.
    pub fn locate(&self, id: &BlobId) -> Result<Option<BlobLocation>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT p.pack_id, p.wrapped_key, b.kind, b.compression, b.offset, b.stored_len, b.raw_len
                 FROM blobs b JOIN packs p ON p.rowid = b.pack WHERE b.blob_id=?1",
            )
            .map_err(|e| self.err(e))?;
        st.query_row([&id.0[..]], |r| {
            let pack: Vec<u8> = r.get(0)?;
            Ok(BlobLocation {
                pack: PackId::from_slice(&pack).unwrap_or(PackId([0; 32])),
                wrapped_key: Arc::new(r.get(1)?),
                entry: BlobEntry {
                    id: *id,
                    kind: BlobKind::from_u8(r.get(2)?).unwrap_or(BlobKind::Data),
                    compression: Compression::from_u8(r.get(3)?).unwrap_or(Compression::None),
                    offset: r.get(4)?,
                    stored_len: r.get(5)?,
                    raw_len: r.get(6)?,
                },
            })
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    /// The age-wrapped key of a pack.
    pub fn pack_wrapped_key(&self, pack: &PackId) -> Result<Option<Vec<u8>>> {
        self.conn
            .prepare_cached("SELECT wrapped_key FROM packs WHERE pack_id=?1")
            .and_then(|mut st| st.query_row([&pack.0[..]], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    /// The blobs of one pack, as the index lists them.
    pub fn pack_blobs(&self, pack: &PackId) -> Result<Vec<BlobEntry>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT blob_id, kind, compression, offset, stored_len, raw_len FROM blobs
                 WHERE pack=(SELECT rowid FROM packs WHERE pack_id=?1) ORDER BY offset",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([&pack.0[..]], row_to_entry)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }
}

fn row_to_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<BlobEntry> {
    let id: Vec<u8> = r.get(0)?;
    Ok(BlobEntry {
        id: BlobId::from_slice(&id).unwrap_or(BlobId([0; 32])),
        kind: BlobKind::from_u8(r.get(1)?).unwrap_or(BlobKind::Data),
        compression: Compression::from_u8(r.get(2)?).unwrap_or(Compression::None),
        offset: r.get(3)?,
        stored_len: r.get(4)?,
        raw_len: r.get(5)?,
    })
}

fn insert_pack(tx: &Connection, p: &IndexedPack, index: Option<&IndexId>) -> rusqlite::Result<()> {
    let index_blob = index.map(|i| i.0.to_vec());
    tx.prepare_cached(
        "INSERT INTO packs(pack_id, kind, size, wrapped_key, index_id) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(pack_id) DO UPDATE SET index_id=COALESCE(excluded.index_id, packs.index_id)",
    )?
    .execute(params![
        &p.id.0[..],
        p.kind as u8,
        p.size,
        p.wrapped_key,
        index_blob
    ])?;
    let rowid: i64 = tx
        .prepare_cached("SELECT rowid FROM packs WHERE pack_id=?1")?
        .query_row([&p.id.0[..]], |r| r.get(0))?;
    let mut st = tx.prepare_cached(
        // A blob in two packs (repacked, or uploaded by two hosts at once) keeps the
        // first location read, unless that pack is marked for deletion: then the live copy
        // wins, whatever order the index files are read in.
        "INSERT INTO blobs(blob_id, pack, kind, compression, offset, stored_len, raw_len)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(blob_id) DO UPDATE SET pack=excluded.pack, kind=excluded.kind,
           compression=excluded.compression, offset=excluded.offset,
           stored_len=excluded.stored_len, raw_len=excluded.raw_len
         WHERE EXISTS (SELECT 1 FROM packs p JOIN doomed_packs d ON d.pack_id=p.pack_id
                       WHERE p.rowid=blobs.pack)
           AND NOT EXISTS (SELECT 1 FROM doomed_packs d WHERE d.pack_id=
                       (SELECT pack_id FROM packs WHERE rowid=excluded.pack))",
    )?;
    for b in &p.blobs {
        st.execute(params![
            &b.id.0[..],
            rowid,
            b.kind as u8,
            b.compression as u8,
            b.offset,
            b.stored_len,
            b.raw_len
        ])?;
    }
    Ok(())
}
