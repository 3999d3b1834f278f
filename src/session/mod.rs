//! An open repository with its refreshed catalog: the one handle a command works through.
//!
//! What the key file allows is in the type, not a runtime flag: a `Session<WriteOnly>`
//! backs up and records recovery points and drill results (a write-only key, on a host
//! that must not read its own backups, stops there); a `Session<Readable>` exists only
//! once the key's identity has loaded, and is what restore, check, prune, repair and
//! drills take. Each `commit_*` writes to the repository first, then to the catalog (the
//! repository is the truth, the catalog a cache of it), in this one place.

pub mod commit;

use std::marker::PhantomData;
use std::sync::Arc;

use crate::catalog::{Catalog, RefreshStats};
use crate::error::Result;
use crate::repo::drill::DrillResult;
use crate::repo::id::{DrillId, IndexId, PointId, SnapshotId};
use crate::repo::point::RecoveryPoint;
use crate::repo::run::RunLog;
use crate::repo::snapshot::Snapshot;
use crate::repo::Repo;

pub use commit::{Dependencies, Lost};

/// A key that may lack the identity: writes only.
#[derive(Debug)]
pub enum WriteOnly {}

/// A key whose identity decrypts data: reads and writes.
#[derive(Debug)]
pub enum Readable {}

/// A repository and its catalog, refreshed; `A` says what the key allows.
pub struct Session<A> {
    repo: Arc<Repo>,
    catalog: Catalog,
    access: PhantomData<A>,
}

impl Session<WriteOnly> {
    /// Brings the catalog up to date with the repository; nothing is read but manifests
    /// and index files, which any key can read.
    pub fn open(repo: Repo, mut catalog: Catalog) -> Result<Self> {
        catalog.refresh(&repo)?;
        Ok(Session {
            repo: Arc::new(repo),
            catalog,
            access: PhantomData,
        })
    }

    /// The same session, once the key file proves it can decrypt data; a write-only key
    /// is refused here, before anything is read, held or written.
    pub fn readable(self) -> Result<Session<Readable>> {
        self.repo.identity()?;
        Ok(Session {
            repo: self.repo,
            catalog: self.catalog,
            access: PhantomData,
        })
    }
}

impl<A> Session<A> {
    /// The repository.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Both, the catalog for writing (a backup's or prune's own bookkeeping).
    pub fn parts(&mut self) -> (&Repo, &mut Catalog) {
        (&self.repo, &mut self.catalog)
    }

    /// Reads what other hosts and runs wrote since the catalog was last brought up to date.
    pub fn refresh(&mut self) -> Result<RefreshStats> {
        self.catalog.refresh(&self.repo)
    }

    /// The same repository with a catalog connection of its own, for another thread (a
    /// SQLite connection serves one thread at a time); as current as this session.
    pub fn fork(&self) -> Result<Session<A>> {
        let catalog = self.catalog.connector().connect()?;
        Ok(Session {
            repo: self.repo.clone(),
            catalog,
            access: PhantomData,
        })
    }

    /// A fork that may read data, or the write-only key's refusal.
    pub fn fork_readable(&self) -> Result<Session<Readable>> {
        self.repo.identity()?;
        let fork = self.fork()?;
        Ok(Session {
            repo: fork.repo,
            catalog: fork.catalog,
            access: PhantomData,
        })
    }

    /// Commits a backup's snapshot: the manifest, then the proof that every pack it
    /// depends on (`deps`) outlived a concurrent prune (undoing the manifest and the index
    /// files `written` if not), then the catalog, and the files cache entries of `run`.
    pub fn commit_snapshot(
        &mut self,
        snapshot: &Snapshot,
        deps: &Dependencies,
        written: &[IndexId],
        run: &str,
    ) -> Result<SnapshotId> {
        let id = self.repo.write_snapshot(snapshot)?;
        commit::check_after(&self.repo, &mut self.catalog, deps, &id, written)?;
        self.catalog.add_snapshot(id, snapshot)?;
        self.catalog.commit_files(run)?;
        Ok(id)
    }

    /// Deletes a snapshot no point names (a WAL segment's earlier, growing copy): from
    /// the repository first, then from the catalog. Its data goes at the next prune.
    pub fn forget_snapshot(&mut self, id: &SnapshotId) -> Result<()> {
        self.repo.delete_snapshot(id)?;
        self.catalog.remove_snapshot(id)
    }

    /// Records a stack's recovery point.
    pub fn commit_point(&mut self, point: &RecoveryPoint) -> Result<PointId> {
        let id = self.repo.write_point(point)?;
        self.catalog.add_point(id, point)?;
        Ok(id)
    }

    /// Records a run's rows of the history in the repository (so that a new host sees
    /// them), then in the catalog. When the repository cannot take them they are still
    /// recorded here, and the error returned for the caller to report.
    pub fn commit_runs(&mut self, log: &RunLog) -> Result<()> {
        match self.repo.write_run(log) {
            Ok(id) => self.catalog.add_run_log(&id, log),
            Err(e) => {
                for r in &log.runs {
                    self.catalog.add_run(r, None)?;
                }
                Err(e)
            }
        }
    }

    /// Records a drill's result, so that `status`, `run --due` and other hosts see it.
    pub fn commit_drill(&mut self, result: &DrillResult) -> Result<DrillId> {
        let id = self.repo.write_drill(result)?;
        self.catalog.add_drill(&id, result)?;
        Ok(id)
    }
}
