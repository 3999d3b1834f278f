//! The local catalog: a SQLite cache of the index, the snapshot list and the files cache.
//!
//! Nothing here is the only copy of anything: `rebuild` recreates it from the store, and
//! `refresh` (run by every command that opens the repository) brings it up to date with
//! index files and snapshots written by other hosts. WAL mode and a busy timeout let
//! several drctl processes share it.

mod files;
mod holds;
mod index;
mod manifests;
mod refresh;
mod runs;
mod state;

pub use refresh::RefreshStats;
pub use runs::{History, RunRecord, RunStatus};

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{Error, Result};

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
    point_id BLOB,
    run_log_id BLOB
);
CREATE INDEX IF NOT EXISTS runs_by_stack ON runs(stack, source, started);
-- the run logs of the store's runs/ whose rows are in runs (never cleared with the cache:
-- the rows stay, and a log is loaded once), with their stack and start for forget
CREATE TABLE IF NOT EXISTS run_logs(run_log_id BLOB PRIMARY KEY, stack TEXT, started TEXT);
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

/// Opens further connections to an open catalog (see [`Catalog::connector`]).
#[derive(Debug, Clone)]
pub struct Connector {
    path: PathBuf,
}

impl Connector {
    /// Another connection to the same catalog.
    pub fn connect(&self) -> Result<Catalog> {
        let conn = open_conn(&self.path).map_err(|e| Catalog::err_at(&self.path, e))?;
        Ok(Catalog {
            conn,
            path: self.path.clone(),
        })
    }
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
            add_missing_columns(c)?;
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

    /// Opens more connections to this catalog, for other threads (a SQLite connection
    /// serves one thread at a time); the catalog is already opened and checked.
    pub fn connector(&self) -> Connector {
        Connector {
            path: self.path.clone(),
        }
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
/// Columns added since a table was first made: added to an older catalog in place, so
/// that the history it holds (runs recorded while the store could not take them) stays.
fn add_missing_columns(c: &Connection) -> rusqlite::Result<()> {
    for (table, column, kind) in [
        ("runs", "run_log_id", "BLOB"),
        ("run_logs", "stack", "TEXT"),
        ("run_logs", "started", "TEXT"),
    ] {
        let has: bool = c.query_row(
            &format!("SELECT count(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |r| r.get(0),
        )?;
        if !has {
            c.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

fn clear_sql(with_files_cache: bool) -> String {
    let mut sql = String::from(
        "DELETE FROM blobs; DELETE FROM packs; DELETE FROM index_files; DELETE FROM snapshots; DELETE FROM points; DELETE FROM drills;",
    );
    if with_files_cache {
        sql.push_str("DELETE FROM files; DELETE FROM files_staged;");
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::repo::id::RunId;

    /// A catalog made before the run logs carried their stack keeps its history, and
    /// gains the columns forget needs.
    #[test]
    fn an_older_catalog_gains_the_new_columns_and_keeps_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        drop(Catalog::open(&path, "repo").unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP TABLE run_logs; CREATE TABLE run_logs(run_log_id BLOB PRIMARY KEY);
             ALTER TABLE runs DROP COLUMN run_log_id;
             INSERT INTO runs(stack, started, ended, status, bytes_read, bytes_added,
                              duration_ms) VALUES ('shop', 't', 't', 'ok', 0, 0, 0);",
        )
        .unwrap();
        drop(c);
        let cat = Catalog::open(&path, "repo").unwrap();
        assert_eq!(cat.runs("shop", 10).unwrap().len(), 1);
        let log = RunId([7; 32]);
        let logs = cat.run_logs_before("shop", chrono::Utc::now()).unwrap();
        assert!(logs.is_empty());
        cat.forget_run_log(&log).unwrap();
        assert_eq!(
            cat.runs("shop", 10).unwrap().len(),
            1,
            "rows of no log stay"
        );
    }

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
