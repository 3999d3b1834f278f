//! Volumes: a host directory (usually under /mnt/data) or a named Docker volume, read
//! straight from the host while the containers listed in `stop`/`pause` are held.

use std::path::{Path, PathBuf};

use super::hold::{Action, Holds, Ledger};
use super::{
    BackupJob, DatabaseDriver, Loaded, Prepared, RestoreJob, SnapshotReader, SourceDriver, Target,
};
use crate::config::SourceDef;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::point::SourceRecord;

/// The volume kind.
pub struct Volume;

/// The directory a volume source names: its path, or a named volume's mount point.
fn resolve(docker: Option<&Docker>, path: Option<&str>, volume: Option<&str>) -> Result<PathBuf> {
    match (path, volume) {
        (Some(p), _) => Ok(PathBuf::from(p)),
        (None, Some(v)) => docker
            .ok_or_else(|| Error::Environment("a named volume needs the Docker daemon".into()))?
            .volume_path(v),
        (None, None) => Err(Error::Config(
            "volume source has neither path nor volume".into(),
        )),
    }
}

impl SourceDriver for Volume {
    fn database(&self) -> Option<&dyn DatabaseDriver> {
        None
    }

    /// A path is read straight from the host; a named volume's mount point is looked up,
    /// and the containers that use it are held, through the daemon.
    fn backup_needs_docker(&self, def: &SourceDef) -> bool {
        def.volume.is_some() || !def.stop.is_empty() || !def.pause.is_empty()
    }

    /// Plans the backup of the source's directory.
    fn backup(&self, job: BackupJob<'_>, rec: &mut SourceRecord) -> Result<Prepared> {
        let BackupJob { docker, def, .. } = job;
        let dir = resolve(
            docker,
            def.path.as_ref().map(|p| p.get_ref().as_str()),
            def.volume.as_ref().map(|v| v.get_ref().as_str()),
        )?;
        if !dir.is_dir() {
            return Err(Error::Failed(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        rec.path = Some(dir.display().to_string());
        rec.volume = def.volume.as_ref().map(|v| v.get_ref().clone());
        rec.stop = def.stop.clone();
        rec.pause = def.pause.clone();
        Ok(Prepared {
            paths: vec![dir],
            exclude: def.exclude.iter().map(|p| p.get_ref().clone()).collect(),
            ..Default::default()
        })
    }

    /// A volume restored elsewhere (`--to`) needs none: its containers are not touched
    /// and its mount point is not looked up.
    fn restore_needs_docker(&self, rec: &SourceRecord, target: &Target<'_>) -> bool {
        in_place(rec, target)
            && (!rec.stop.is_empty() || !rec.pause.is_empty() || rec.volume.is_some())
    }

    fn check_target(&self, job: RestoreJob<'_>) -> Result<Vec<String>> {
        let (dir, target) = (target_dir(job.docker, job.rec, job.target)?, job.target);
        Ok(vec![check_dir(&dir, target.force)?])
    }

    /// Restores the snapshot's tree into the directory. Containers that use the volume
    /// are stopped only when it is their own directory that is replaced; a restore
    /// elsewhere leaves the stack alone.
    fn restore(
        &self,
        job: RestoreJob<'_>,
        ledger: &dyn Ledger,
        snapshot: &dyn SnapshotReader,
        progress: &Progress,
    ) -> Result<Loaded> {
        let (docker, rec, target) = (job.docker, job.rec, job.target);
        let dir = target_dir(docker, rec, target)?;
        let mut holds = docker
            .filter(|_| in_place(rec, target))
            .map(|d| Holds::new(d, ledger));
        if let Some(h) = holds.as_mut() {
            let grace = target
                .def
                .map_or(crate::config::DEFAULT_STOP_GRACE, |d| d.stop_grace());
            for c in rec.stop.iter().chain(&rec.pause) {
                h.hold(c, Action::Stop(grace))?;
            }
        }
        if target.force {
            empty_dir(&dir)?;
        }
        let bytes = snapshot.restore_tree(&dir, target.force, progress)?;
        if let Some(h) = holds {
            h.release()?;
        }
        Ok(Loaded {
            bytes,
            warnings: Vec::new(),
            replayed_to: None,
        })
    }
}

/// Whether a restore goes into the source's own directory (so the containers that use
/// it must be held), rather than elsewhere with `--to`.
fn in_place(rec: &SourceRecord, target: &Target<'_>) -> bool {
    let Some(dir) = &target.dir else {
        return true;
    };
    let Some(own) = &rec.path else {
        return false;
    };
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(dir) == canon(Path::new(own))
}

/// Where a volume goes back to: `--to`, else its volume's mount point now, else its path.
fn target_dir(docker: Option<&Docker>, rec: &SourceRecord, target: &Target<'_>) -> Result<PathBuf> {
    if let Some(d) = &target.dir {
        return Ok(d.clone());
    }
    if let Some(v) = &rec.volume {
        if let Ok(p) = resolve(docker, None, Some(v)) {
            return Ok(p);
        }
    }
    rec.path
        .as_ref()
        .map(PathBuf::from)
        .ok_or_else(|| Error::Damage(format!("recovery point of {} names no path", rec.name)))
}

/// Refuses a directory that holds data unless forced.
fn check_dir(dir: &Path, force: bool) -> Result<String> {
    let entries = std::fs::read_dir(dir).map(|rd| rd.count()).unwrap_or(0);
    if entries > 0 && !force {
        return Err(Error::Usage(format!(
            "{} holds data ({entries} entries); pass --force to replace it, or --to DIR",
            dir.display()
        )));
    }
    Ok(if entries > 0 {
        format!("{} will be emptied and restored", dir.display())
    } else {
        format!("{} will be restored", dir.display())
    })
}

/// Empties a directory (for a forced restore), keeping the directory itself: it may be a
/// mount point.
fn empty_dir(dir: &Path) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let p = e.path();
        let r = if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|e| Error::io(format!("removing {}", p.display()), e))?;
    }
    Ok(())
}
