//! The manifest cache: snapshots, recovery points and drill results, each a copy of a
//! manifest in the store, and their refresh from it.

use std::collections::HashSet;

use rusqlite::params;

use super::Catalog;
use crate::error::{Error, Result};
use crate::repo::id::{DrillId, PointId, SnapshotId};
use crate::repo::point::{PointEntry, RecoveryPoint};
use crate::repo::snapshot::{Snapshot, SnapshotEntry};
use crate::repo::Repo;

impl Catalog {
    /// Loads the manifests of one kind that appeared in the store (`listed`, each named
    /// by `raw`, read by `read`, recorded by `add`) and forgets those of `table` that
    /// disappeared; returns how many it loaded.
    pub(super) fn refresh_manifests<I: Copy, T, F>(
        &mut self,
        repo: &Repo,
        (table, column): (&str, &str),
        listed: &[I],
        raw: impl Fn(&I) -> [u8; 32],
        read: impl Fn(I) -> F,
        add: impl Fn(&Catalog, &I, &T) -> Result<()>,
    ) -> Result<usize>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let new = self.new_manifests(table, column, listed, raw)?;
        let loaded = load_manifests(repo, &new, read)?;
        for (id, manifest) in &loaded {
            add(self, id, manifest)?;
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

    /// Records a committed snapshot.
    pub fn add_snapshot(&self, id: SnapshotId, snap: &Snapshot) -> Result<()> {
        self.insert_manifest(
            "INSERT OR REPLACE INTO snapshots(snapshot_id, time, stack, manifest) VALUES (?1, ?2, ?3, ?4)",
            &id.0,
            snap.time,
            &snap.stack,
            serde_json::to_string(snap).expect("snapshots serialize"),
        )
    }

    /// Forgets a snapshot deleted from the store.
    pub fn remove_snapshot(&self, id: &SnapshotId) -> Result<()> {
        self.conn
            .execute("DELETE FROM snapshots WHERE snapshot_id = ?1", [&id.0[..]])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Snapshots, oldest first, optionally of one stack.
    pub fn snapshots(&self, stack: Option<&str>) -> Result<Vec<SnapshotEntry>> {
        self.select_manifests(
            "SELECT snapshot_id, manifest FROM snapshots WHERE ?1 IS NULL OR stack=?1 ORDER BY time, snapshot_id",
            stack,
            |id, snapshot| Some(SnapshotEntry { id: SnapshotId::from_slice(id)?, snapshot }),
        )
    }

    /// Records a recovery point.
    pub fn add_point(&self, id: PointId, point: &RecoveryPoint) -> Result<()> {
        self.insert_manifest(
            "INSERT OR REPLACE INTO points(point_id, time, stack, manifest) VALUES (?1, ?2, ?3, ?4)",
            &id.0,
            point.time,
            &point.stack,
            serde_json::to_string(point).expect("points serialize"),
        )
    }

    /// The stacks that have recovery points, by name.
    pub fn point_stacks(&self) -> Result<Vec<String>> {
        let mut q = self
            .conn
            .prepare("SELECT DISTINCT stack FROM points ORDER BY stack")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Recovery points of a stack, oldest first.
    pub fn points(&self, stack: &str) -> Result<Vec<PointEntry>> {
        self.select_manifests(
            "SELECT point_id, manifest FROM points WHERE stack=?1 ORDER BY time, point_id",
            Some(stack),
            |id, point| {
                Some(PointEntry {
                    id: PointId::from_slice(id)?,
                    point,
                })
            },
        )
    }

    /// Runs `sql`, an insert of a manifest's ID, time, stack and JSON.
    fn insert_manifest(
        &self,
        sql: &str,
        id: &[u8; 32],
        time: chrono::DateTime<chrono::Utc>,
        stack: &str,
        json: String,
    ) -> Result<()> {
        let time = time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        self.conn
            .execute(sql, params![&id[..], time, stack, json])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The rows (ID, JSON) `sql` selects for `stack`, each made into an entry by `entry`;
    /// one that does not parse is left out.
    fn select_manifests<T: serde::de::DeserializeOwned, E>(
        &self,
        sql: &str,
        stack: Option<&str>,
        entry: impl Fn(&[u8], T) -> Option<E>,
    ) -> Result<Vec<E>> {
        let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map([stack], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|e| self.err(e))?;
            if let Some(e) = serde_json::from_str(&json).ok().and_then(|m| entry(&id, m)) {
                out.push(e);
            }
        }
        Ok(out)
    }
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
