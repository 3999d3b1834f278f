//! The local catalog: a SQLite cache of the index, the snapshot list and the files cache.
//!
//! Nothing here is the only copy of anything: `rebuild` recreates it from the store, and
//! `refresh` (run by every command that opens the repository) brings it up to date with
//! index files and snapshots written by other hosts. WAL mode and a busy timeout let
//! several drctl processes share it.

mod holds;
mod runs;

pub use runs::{History, RunRecord, RunStatus};

use std::collections::HashSet;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::fsmeta::FileStamp;
use crate::repo::id::{BlobId, DrillId, IndexId, PackId, PointId, SnapshotId};
use crate::repo::index::IndexedPack;
use crate::repo::pack::{decode_entries, encode_entries, BlobEntry, BlobKind, Compression};
use crate::repo::point::{PointEntry, RecoveryPoint};
use crate::repo::snapshot::{Snapshot, SnapshotEntry};
use crate::repo::{BlobLocation, Repo};

/// Bumped when the schema changes; an old catalog is dropped and rebuilt.
const SCHEMA_VERSION: &str = "3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packs(
    rowid INTEGER PRIMARY KEY,
    pack_id BLOB NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    size INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    -- NULL: uploaded by this host and not yet listed in any index file
    index_id BLOB,
    -- every blob of a pack this host uploaded (trailer encoding), for its index entry:
    -- the blobs table keeps one location per blob, and a blob two concurrent backups
    -- both stored is in two packs
    entries BLOB
);
CREATE TABLE IF NOT EXISTS blobs(
    blob_id BLOB PRIMARY KEY,
    pack INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    compression INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    stored_len INTEGER NOT NULL,
    raw_len INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_by_pack ON blobs(pack);
CREATE TABLE IF NOT EXISTS index_files(index_id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots(
    snapshot_id BLOB PRIMARY KEY,
    time TEXT NOT NULL,
    stack TEXT NOT NULL,
    manifest TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS points(
    point_id BLOB PRIMARY KEY,
    time TEXT NOT NULL,
    stack TEXT NOT NULL,
    manifest TEXT NOT NULL
) WITHOUT ROWID;
-- containers drctl stopped or paused and has not yet put back: state, not cache, so
-- neither a rebuild nor a refresh touches it
CREATE TABLE IF NOT EXISTS held_containers(
    container TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    holder_pid INTEGER NOT NULL,
    since TEXT NOT NULL
) WITHOUT ROWID;
-- packs a prune marked for deletion: backups must not deduplicate against them
CREATE TABLE IF NOT EXISTS doomed_packs(pack_id BLOB PRIMARY KEY) WITHOUT ROWID;
-- drill results, a cache of the store's drills/
CREATE TABLE IF NOT EXISTS drills(
    drill_id BLOB PRIMARY KEY,
    drill TEXT NOT NULL,
    stack TEXT NOT NULL,
    started TEXT NOT NULL,
    manifest TEXT NOT NULL
);
-- every run of a stack (source NULL) and of each of its sources: history, not cache
CREATE TABLE IF NOT EXISTS runs(
    run_id INTEGER PRIMARY KEY,
    stack TEXT NOT NULL,
    source TEXT,
    started TEXT NOT NULL,
    ended TEXT NOT NULL,
    status TEXT NOT NULL,
    bytes_read INTEGER NOT NULL,
    bytes_added INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    error TEXT,
    point_id BLOB
);
CREATE INDEX IF NOT EXISTS runs_by_stack ON runs(stack, source, started);
CREATE TABLE IF NOT EXISTS files(
    path BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    content BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files_staged(
    run TEXT NOT NULL,
    path BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    content BLOB NOT NULL,
    PRIMARY KEY(run, path)
) WITHOUT ROWID;
";

/// What a refresh loaded.
#[derive(Debug, Default, Clone, Copy)]
pub struct RefreshStats {
    /// Index files read.
    pub index_files: usize,
    /// Snapshots read.
    pub snapshots: usize,
    /// Recovery points loaded.
    pub points: usize,
    /// Whether everything was reloaded (a missing, foreign or outdated catalog).
    pub rebuilt: bool,
    /// Index files that failed to open and were skipped.
    pub damaged_index_files: usize,
}

/// A read snapshot held on a catalog connection; dropping it ends the read transaction.
#[must_use = "the snapshot is released as soon as the guard is dropped"]
pub struct SnapshotPin<'a> {
    conn: &'a Connection,
}

impl Drop for SnapshotPin<'_> {
    fn drop(&mut self) {
        // Nothing was written, so ending the transaction cannot lose anything.
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}

/// The catalog of one repository.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

/// Opens a connection, waiting while another process holds the lock that switching a new
/// database to WAL mode needs (SQLite reports that as busy without waiting).
fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match try_open_conn(path) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

fn try_open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(120))?;
    // Every transaction takes the write lock up front, where the busy timeout applies: a
    // deferred one that reads first and writes later fails at once ("database is
    // locked") when another connection has committed in between.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // A small page cache per connection: a backup holds several, and memory must not
    // grow with the repository (dedup lookups are random; the OS page cache serves them).
    conn.pragma_update(None, "cache_size", -1024)?;
    Ok(conn)
}

/// Whether SQLite says the file is not a database or is damaged (not busy, not denied).
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

/// `catalog.db.damaged-20261203T101500Z`: beside the catalog, named for when.
fn aside_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".damaged-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    ));
    PathBuf::from(name)
}

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
    /// Opens (creating if needed) the catalog for the repository `repo_id`.
    pub fn open(path: &Path, repo_id: &str) -> Result<Catalog> {
        let unusable = |reason: String| Error::CatalogPath {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The catalog names every file backed up and the containers' records: only its
            // owner may read it (directories drctl creates are 0700, the files 0600).
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| unusable(format!("creating {}: {e}", dir.display())))?;
        }
        if path.is_dir() {
            return Err(unusable("it is a directory".into()));
        }
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            // A catalog made by an older drctl (0644): tighten it.
            if meta.permissions().mode() & 0o077 != 0 {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
        } else {
            // Created empty with the right mode before SQLite opens it (and its -wal and
            // -shm files, which SQLite creates with the database's mode).
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path);
        }
        match Self::open_checked(path, repo_id) {
            Err(Error::Catalog { source, .. }) if is_damage(&source) => {
                // A cache: keep the damaged file for inspection and start over.
                let aside = aside_name(path);
                std::fs::rename(path, &aside).map_err(|e| {
                    Error::io(
                        format!("moving the damaged catalog {} aside", path.display()),
                        e,
                    )
                })?;
                for ext in ["-wal", "-shm"] {
                    let mut side = path.as_os_str().to_owned();
                    side.push(ext);
                    let _ = std::fs::remove_file(std::path::PathBuf::from(side));
                }
                tracing::warn!(
                    "the catalog {} is damaged ({source}); moved it to {} and rebuilding it from the repository",
                    path.display(),
                    aside.display()
                );
                Self::open_checked(path, repo_id)
            }
            r => r,
        }
    }

    fn open_checked(path: &Path, repo_id: &str) -> Result<Catalog> {
        let unusable = |reason: String| Error::CatalogPath {
            path: path.display().to_string(),
            reason,
        };
        // Where the file cannot be opened at all, the settings are at fault (exit 2); a
        // catalog that opens but then fails is the catalog's own error.
        let conn = open_conn(path).map_err(|e| match e.sqlite_error_code() {
            Some(
                rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::PermissionDenied
                | rusqlite::ErrorCode::ReadOnly,
            ) => unusable(e.to_string()),
            _ => Self::err_at(path, e),
        })?;
        let cat = Catalog {
            conn,
            path: path.to_path_buf(),
        };
        cat.init_schema(repo_id).map_err(|e| cat.err(e))?;
        Ok(cat)
    }

    /// Runs SQLite's full integrity check; a damaged catalog is moved aside (kept for
    /// inspection) and an empty one opened in its place, to be refreshed from the store.
    pub fn verify_or_replace(self, repo_id: &str) -> Result<Catalog> {
        let verdict: rusqlite::Result<String> =
            self.conn
                .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0));
        match verdict {
            Ok(v) if v == "ok" => Ok(self),
            other => {
                let why = match other {
                    Ok(v) => v,
                    Err(e) => e.to_string(),
                };
                let path = self.path.clone();
                drop(self);
                let aside = aside_name(&path);
                std::fs::rename(&path, &aside).map_err(|e| {
                    Error::io(
                        format!("moving the damaged catalog {} aside", path.display()),
                        e,
                    )
                })?;
                tracing::warn!(
                    "the catalog {} failed its integrity check ({why}); moved it to {}",
                    path.display(),
                    aside.display()
                );
                Self::open_checked(&path, repo_id)
            }
        }
    }

    /// Creates the schema, or starts the catalog over when it belongs to another
    /// repository or an older schema; atomically, since several processes may open a new
    /// catalog at once and one must not wipe what another already recorded.
    fn init_schema(&self, repo_id: &str) -> rusqlite::Result<()> {
        let c = &self.conn;
        c.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| {
            let has_meta: bool = c.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type='table' AND name='meta'",
                [],
                |r| r.get(0),
            )?;
            let get = |k: &str| -> rusqlite::Result<Option<String>> {
                if !has_meta {
                    return Ok(None);
                }
                c.query_row("SELECT value FROM meta WHERE key=?1", [k], |r| r.get(0))
                    .optional()
            };
            let (repo, schema) = (get("repository")?, get("schema")?);
            if schema.as_deref() != Some(SCHEMA_VERSION) {
                let tables: Vec<String> = c
                    .prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")?
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for t in tables {
                    c.execute_batch(&format!("DROP TABLE \"{t}\""))?;
                }
            }
            c.execute_batch(SCHEMA)?;
            if repo.as_deref() != Some(repo_id) || schema.as_deref() != Some(SCHEMA_VERSION) {
                c.execute_batch(&clear_sql(true))?;
                c.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('repository', ?1), ('schema', ?2)",
                    params![repo_id, SCHEMA_VERSION],
                )?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => c.execute_batch("COMMIT"),
            Err(e) => {
                let _ = c.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn err_at(path: &Path, source: rusqlite::Error) -> Error {
        Error::Catalog {
            path: path.display().to_string(),
            source,
        }
    }

    fn err(&self, source: rusqlite::Error) -> Error {
        Self::err_at(&self.path, source)
    }

    /// Pins this connection to one read snapshot until the returned guard is dropped.
    ///
    /// Every autocommit query takes and releases WAL locks (two fcntl calls); a backup's
    /// readers look up tens of thousands of blobs and need no newer state than the one
    /// they started with (blobs of the running backup are tracked in memory). The pin must
    /// end before this connection writes: a write from a read transaction that another
    /// connection has written past fails at once with "database is locked", whatever the
    /// busy timeout.
    pub fn pin_snapshot(&self) -> Result<SnapshotPin<'_>> {
        self.conn
            .execute_batch("BEGIN; SELECT count(*) FROM meta;")
            .map_err(|e| self.err(e))?;
        Ok(SnapshotPin { conn: &self.conn })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `sql` as one transaction, rolled back on any error so that the connection is
    /// never left inside a half-done write.
    fn write_batch(&self, sql: &str) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        tx.execute_batch(sql)
            .and_then(|_| tx.commit())
            .map_err(|e| self.err(e))
    }

    fn clear(&self, with_files_cache: bool) -> Result<()> {
        self.write_batch(&clear_sql(with_files_cache))
    }

    /// Drops everything and reloads it from the store (`drctl catalog rebuild`).
    pub fn rebuild(&mut self, repo: &Repo) -> Result<RefreshStats> {
        self.clear(false)?;
        let mut s = self.refresh(repo)?;
        s.rebuilt = true;
        Ok(s)
    }

    /// Loads index files and snapshots that appeared in the store since the last refresh,
    /// and forgets those that disappeared.
    pub fn refresh(&mut self, repo: &Repo) -> Result<RefreshStats> {
        let mut stats = RefreshStats::default();
        // Manifests before the index: a backup writes its index files, then its snapshot,
        // then its recovery point, so listing them in the reverse order never finds a
        // manifest whose data no index listed yet.
        if repo.keys.identity.is_some() {
            stats.points = self.refresh_points(repo)?;
            stats.snapshots = self.refresh_snapshots(repo)?;
            self.refresh_drills(repo)?;
        }
        // Marks first, so that a blob in a marked pack and a live one is placed in the live
        // one as the index files load (see `insert_pack`).
        self.refresh_marks(repo)?;
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
        Ok(stats)
    }

    /// Loads the packs that prunes have marked for deletion (see `prune`).
    fn refresh_marks(&mut self, repo: &Repo) -> Result<()> {
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

    /// A value this host keeps about the repository (not a cache of the store).
    pub fn state(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE key=?1",
                [format!("state.{key}")],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a value of `state`.
    pub fn set_state(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
                params![format!("state.{key}"), value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn refresh_snapshots(&mut self, repo: &Repo) -> Result<usize> {
        let listed = repo.list_snapshot_ids()?;
        let new = self.new_manifests("snapshots", "snapshot_id", &listed, |i| i.0)?;
        let loaded = load_manifests(repo, &new, |id| repo.read_snapshot(id))?;
        for (id, snap) in &loaded {
            self.add_snapshot(*id, snap)?;
        }
        Ok(loaded.len())
    }

    fn refresh_points(&mut self, repo: &Repo) -> Result<usize> {
        let listed = repo.list_point_ids()?;
        let new = self.new_manifests("points", "point_id", &listed, |i| i.0)?;
        let loaded = load_manifests(repo, &new, |id| repo.read_point(id))?;
        for (id, point) in &loaded {
            self.add_point(*id, point)?;
        }
        Ok(loaded.len())
    }

    fn refresh_drills(&mut self, repo: &Repo) -> Result<usize> {
        let listed = repo.list_drill_ids()?;
        let new = self.new_manifests("drills", "drill_id", &listed, |i| i.0)?;
        let loaded = load_manifests(repo, &new, |id| repo.read_drill(id))?;
        for (id, r) in &loaded {
            self.add_drill(id, r)?;
        }
        Ok(loaded.len())
    }

    /// Records a drill result under its manifest name.
    pub fn add_drill(&self, id: &DrillId, r: &crate::repo::drill::DrillResult) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO drills(drill_id, drill, stack, started, manifest) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &id.0[..],
                    r.drill,
                    r.stack,
                    r.started.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    serde_json::to_string(r).expect("drill results serialize")
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Drill results, oldest first, optionally of one drill.
    pub fn drills(&self, drill: Option<&str>) -> Result<Vec<crate::repo::drill::DrillResult>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT manifest FROM drills WHERE ?1 IS NULL OR drill=?1 ORDER BY started, drill_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([drill], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for m in rows {
            let m = m.map_err(|e| self.err(e))?;
            out.push(serde_json::from_str(&m).map_err(|e| {
                Error::Damage(format!("catalog holds an unreadable drill result: {e}"))
            })?);
        }
        Ok(out)
    }

    /// Of the manifests listed in the store, those the catalog does not hold yet; forgets
    /// those no longer listed.
    fn new_manifests<I: Copy>(
        &self,
        table: &str,
        column: &str,
        listed: &[I],
        raw: impl Fn(&I) -> [u8; 32],
    ) -> Result<Vec<I>> {
        let known = self.sync_manifest_ids(table, column, listed.iter().map(&raw))?;
        Ok(listed
            .iter()
            .filter(|i| !known.contains(&raw(i)))
            .copied()
            .collect())
    }

    /// Forgets the manifests of `table` that are no longer in the store; returns the IDs
    /// it still knows.
    fn sync_manifest_ids(
        &self,
        table: &str,
        column: &str,
        in_store: impl Iterator<Item = [u8; 32]>,
    ) -> Result<HashSet<[u8; 32]>> {
        let in_store: HashSet<[u8; 32]> = in_store.collect();
        let known: HashSet<[u8; 32]> = {
            let mut st = self
                .conn
                .prepare(&format!("SELECT {column} FROM {table}"))
                .map_err(|e| self.err(e))?;
            let rows = st
                .query_map([], |r| r.get::<_, Vec<u8>>(0))
                .map_err(|e| self.err(e))?;
            rows.filter_map(|r| r.ok().and_then(|b| b.try_into().ok()))
                .collect()
        };
        for gone in known.difference(&in_store) {
            self.conn
                .execute(
                    &format!("DELETE FROM {table} WHERE {column}=?1"),
                    [&gone[..]],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(known.intersection(&in_store).copied().collect())
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

    /// Records a committed snapshot.
    pub fn add_snapshot(&self, id: SnapshotId, snap: &Snapshot) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO snapshots(snapshot_id, time, stack, manifest) VALUES (?1, ?2, ?3, ?4)",
                params![
                    &id.0[..],
                    snap.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    snap.stack,
                    serde_json::to_string(snap).expect("snapshots serialize")
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Snapshots, oldest first, optionally of one stack.
    pub fn snapshots(&self, stack: Option<&str>) -> Result<Vec<SnapshotEntry>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT snapshot_id, manifest FROM snapshots WHERE ?1 IS NULL OR stack=?1 ORDER BY time, snapshot_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([stack], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|e| self.err(e))?;
            if let (Some(id), Ok(snapshot)) =
                (SnapshotId::from_slice(&id), serde_json::from_str(&json))
            {
                out.push(SnapshotEntry { id, snapshot });
            }
        }
        Ok(out)
    }

    /// Records a recovery point.
    pub fn add_point(&self, id: PointId, point: &RecoveryPoint) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO points(point_id, time, stack, manifest) VALUES (?1, ?2, ?3, ?4)",
                params![
                    &id.0[..],
                    point.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    point.stack,
                    serde_json::to_string(point).expect("points serialize")
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Recovery points of a stack, oldest first.
    pub fn points(&self, stack: &str) -> Result<Vec<PointEntry>> {
        let mut st = self
            .conn
            .prepare("SELECT point_id, manifest FROM points WHERE stack=?1 ORDER BY time, point_id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([stack], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|e| self.err(e))?;
            if let (Some(id), Ok(point)) = (PointId::from_slice(&id), serde_json::from_str(&json)) {
                out.push(PointEntry { id, point });
            }
        }
        Ok(out)
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

    /// Makes a committed run's staged files cache entries current; drops abandoned runs'.
    pub fn commit_files(&mut self, run: &str) -> Result<()> {
        self.write_batch(&format!(
            "INSERT OR REPLACE INTO files(path, size, mtime_ns, ctime_ns, inode, content)
                SELECT path, size, mtime_ns, ctime_ns, inode, content FROM files_staged WHERE run='{r}';
             DELETE FROM files_staged WHERE run='{r}';",
            r = run.replace('\'', "")
        ))
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

/// Whether the process named at the start of a run name (`PID-...`) still runs.
fn process_alive(run: &str) -> bool {
    let Some(pid) = run.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
        return false;
    };
    // Signal 0 checks existence; EPERM still means the process exists.
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

/// Statements that empty the cache (and the files cache, if asked).
fn clear_sql(with_files_cache: bool) -> String {
    let mut sql = String::from(
        "DELETE FROM blobs; DELETE FROM packs; DELETE FROM index_files; DELETE FROM snapshots; DELETE FROM points; DELETE FROM drills;",
    );
    if with_files_cache {
        sql.push_str("DELETE FROM files; DELETE FROM files_staged;");
    }
    sql
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

/// Reads manifests in parallel batches (the backend bounds the requests in flight). One
/// deleted between the listing and the read (a concurrent forget) is skipped.
fn load_manifests<I: Copy, T, F>(
    repo: &Repo,
    ids: &[I],
    read: impl Fn(I) -> F,
) -> Result<Vec<(I, T)>>
where
    F: std::future::Future<Output = Result<T>>,
{
    let mut out = Vec::with_capacity(ids.len());
    for batch in ids.chunks(64) {
        let loaded = repo.block_on(futures::future::join_all(batch.iter().map(|id| read(*id))));
        for (id, r) in batch.iter().zip(loaded) {
            match r {
                Ok(m) => out.push((*id, m)),
                Err(e) if crate::store::backend::is_not_found(&e) => {}
                // One damaged manifest must not make the rest unusable: it is left out
                // (read again next time), and `check` names it.
                Err(e @ Error::Damage(_)) => {
                    tracing::warn!("{e}; skipped (run `drctl check`)");
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that pinned a snapshot for a restore writes again once the pin is
    /// released, even after another connection (the daemon's run history) has written.
    #[test]
    fn a_released_pin_lets_the_connection_write_after_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let reader = Catalog::open(&path, "repo").unwrap();
        let other = Catalog::open(&path, "repo").unwrap();
        let pin = reader.pin_snapshot().unwrap();
        other.set_state("k", "from the other connection").unwrap();
        // Still pinned: the reader sees its old snapshot, and a write would fail.
        assert_eq!(reader.state("k").unwrap(), None);
        drop(pin);
        reader.set_state("k", "after the pin").unwrap();
        assert_eq!(
            other.state("k").unwrap().as_deref(),
            Some("after the pin"),
            "the write was committed, not left in an open transaction"
        );
        // A second pin on the same connection (a stack restore of two volumes) works too.
        let _again = reader.pin_snapshot().unwrap();
    }
}
