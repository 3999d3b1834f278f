//! Bringing the catalog up to date with the store: what every command that opens the
//! repository runs, and `drctl catalog rebuild`. The order of the steps is what keeps a
//! concurrent backup's manifests from naming data no loaded index lists.

use super::Catalog;
use crate::error::Result;
use crate::repo::Repo;

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

impl Catalog {
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
            stats.points = self.refresh_manifests(
                repo,
                ("points", "point_id"),
                &repo.list_point_ids()?,
                |i| i.0,
                |id| repo.read_point(id),
                |c, id, point| c.add_point(*id, point),
            )?;
            stats.snapshots = self.refresh_manifests(
                repo,
                ("snapshots", "snapshot_id"),
                &repo.list_snapshot_ids()?,
                |i| i.0,
                |id| repo.read_snapshot(id),
                |c, id, snap| c.add_snapshot(*id, snap),
            )?;
            self.refresh_manifests(
                repo,
                ("drills", "drill_id"),
                &repo.list_drill_ids()?,
                |i| i.0,
                |id| repo.read_drill(id),
                Catalog::add_drill,
            )?;
            self.refresh_manifests(
                repo,
                ("run_logs", "run_log_id"),
                &repo.list_run_ids()?,
                |i| i.0,
                |id| repo.read_run(id),
                Catalog::add_run_log,
            )?;
        }
        // Marks first, so that a blob in a marked pack and a live one is placed in the live
        // one as the index files load (see `insert_pack`).
        self.refresh_marks(repo)?;
        self.refresh_index_files(repo, &mut stats)?;
        Ok(stats)
    }
}
