//! The files cache: the stamp and content blobs of each file the last backups read, so
//! that an unchanged file is not read again. A running backup stages its entries; they
//! become current only once its snapshot is committed.

use rusqlite::{params, OptionalExtension};

use super::{process_alive, Catalog};
use crate::error::Result;
use crate::fsmeta::FileStamp;
use crate::repo::id::BlobId;

fn ids_to_blob(ids: &[BlobId]) -> Vec<u8> {
    ids.iter().flat_map(|i| i.0).collect()
}

fn blob_to_ids(b: &[u8]) -> Option<Vec<BlobId>> {
    if b.len() % 32 != 0 {
        return None;
    }
    b.chunks_exact(32).map(BlobId::from_slice).collect()
}

impl Catalog {
    /// The files cache entry for an absolute path.
    pub fn cached_file(&self, path: &[u8]) -> Result<Option<(FileStamp, Vec<BlobId>)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT size, mtime_ns, ctime_ns, inode, content FROM files WHERE path=?1",
            )
            .map_err(|e| self.err(e))?;
        let row = st
            .query_row([path], |r| {
                Ok((
                    FileStamp {
                        size: r.get(0)?,
                        mtime_ns: r.get(1)?,
                        ctime_ns: r.get(2)?,
                        inode: r.get(3)?,
                    },
                    r.get::<_, Vec<u8>>(4)?,
                ))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(row.and_then(|(s, c)| Some((s, blob_to_ids(&c)?))))
    }

    /// Stages files cache entries of a running backup; they count only once it commits.
    pub fn stage_files(
        &mut self,
        run: &str,
        files: &[(Vec<u8>, FileStamp, Vec<BlobId>)],
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| Self::err_at(&self.path, e))?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO files_staged(run, path, size, mtime_ns, ctime_ns, inode, content)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(|e| Self::err_at(&self.path, e))?;
            for (path, s, ids) in files {
                st.execute(params![
                    run,
                    path,
                    s.size,
                    s.mtime_ns,
                    s.ctime_ns,
                    s.inode,
                    ids_to_blob(ids)
                ])
                .map_err(|e| Self::err_at(&self.path, e))?;
            }
        }
        tx.commit().map_err(|e| Self::err_at(&self.path, e))
    }

    /// Makes a committed run's staged files cache entries current, in one transaction.
    pub fn commit_files(&mut self, run: &str) -> Result<()> {
        // Rolled back when dropped on an error, so the connection is never left mid-write.
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO files(path, size, mtime_ns, ctime_ns, inode, content)
             SELECT path, size, mtime_ns, ctime_ns, inode, content FROM files_staged WHERE run=?1",
            [run],
        )
        .and_then(|_| tx.execute("DELETE FROM files_staged WHERE run=?1", [run]))
        .and_then(|_| tx.commit())
        .map_err(|e| self.err(e))
    }

    /// Drops staged entries of runs whose process is gone (killed before committing).
    ///
    /// Run names start with the process ID; runs of live processes (another stack's backup
    /// sharing this catalog) keep theirs.
    pub fn drop_abandoned_staging(&self) -> Result<()> {
        let runs: Vec<String> = {
            let mut st = self
                .conn
                .prepare("SELECT DISTINCT run FROM files_staged")
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| self.err(e))?;
            rows.filter_map(|r| r.ok()).collect()
        };
        for run in runs.iter().filter(|r| !process_alive(r)) {
            self.conn
                .execute("DELETE FROM files_staged WHERE run=?1", [run])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Committing one run makes its staged entries current and leaves another run's
    /// staged (a second backup sharing the catalog has not committed yet).
    #[test]
    fn committing_a_run_publishes_only_its_own_staged_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(&dir.path().join("catalog.db"), "repo").unwrap();
        let stamp = FileStamp {
            size: 3,
            mtime_ns: 1,
            ctime_ns: 2,
            inode: 4,
        };
        let ids = vec![BlobId([7; 32])];
        cat.stage_files("1-10", &[(b"/a".to_vec(), stamp, ids.clone())])
            .unwrap();
        cat.stage_files("2-20", &[(b"/b".to_vec(), stamp, ids.clone())])
            .unwrap();
        cat.commit_files("1-10").unwrap();
        assert_eq!(cat.cached_file(b"/a").unwrap(), Some((stamp, ids.clone())));
        assert_eq!(cat.cached_file(b"/b").unwrap(), None);
        cat.commit_files("2-20").unwrap();
        assert_eq!(cat.cached_file(b"/b").unwrap(), Some((stamp, ids)));
        // Committed entries leave the staging table.
        let staged: i64 = cat
            .conn
            .query_row("SELECT count(*) FROM files_staged", [], |r| r.get(0))
            .unwrap();
        assert_eq!(staged, 0);
    }
}
