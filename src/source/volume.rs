//! Volumes: a host directory (usually under /mnt/data) or a named Docker volume, read
//! straight from the host while the containers listed in `stop`/`pause` are held.

use std::path::PathBuf;

use super::{Prepared, Target};
use crate::config::SourceDef;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::repo::point::SourceRecord;

/// The directory a volume source names: its path, or a named volume's mount point.
pub fn resolve(
    docker: Option<&Docker>,
    path: Option<&str>,
    volume: Option<&str>,
) -> Result<PathBuf> {
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

/// Plans the backup of the source's directory.
pub fn backup(
    docker: Option<&Docker>,
    def: &SourceDef,
    rec: &mut SourceRecord,
) -> Result<Prepared> {
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

/// Where a volume goes back to: `--to`, else its volume's mount point now, else its path.
pub fn target_dir(
    docker: Option<&Docker>,
    rec: &SourceRecord,
    target: &Target<'_>,
) -> Result<PathBuf> {
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
pub fn check_target(dir: &std::path::Path, force: bool) -> Result<String> {
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
pub fn empty_dir(dir: &std::path::Path) -> Result<()> {
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
