//! `config check --live`: what the stack files name, checked against this host as it is
//! (containers, credentials by a trial login, paths, binary logging), every problem in
//! one run rather than the first.

use std::path::Path;

use super::driver;
use crate::config::{SourceDef, SourceKind, Stack};
use crate::docker::Docker;

/// One source's outcome: what was found, or why a backup would fail.
pub struct LiveCheck {
    /// `stack/source`.
    pub what: String,
    /// Ok: what answered (a server's version, a directory); Err: the problem.
    pub outcome: std::result::Result<String, String>,
}

/// Checks every source of `stacks`; `docker` is `None` when the daemon cannot be reached
/// (`unreachable` says why), which fails only the sources that need it.
pub fn check(stacks: &[Stack], docker: Option<&Docker>, unreachable: &str) -> Vec<LiveCheck> {
    let mut out = Vec::new();
    for stack in stacks {
        for def in &stack.def.source {
            out.push(LiveCheck {
                what: format!("{}/{}", stack.name, def.name.get_ref()),
                outcome: source(def, docker, unreachable),
            });
        }
    }
    out
}

fn source(def: &SourceDef, docker: Option<&Docker>, unreachable: &str) -> Result<String, String> {
    // What a backup of it needs, as its kind says.
    if docker.is_none() && driver(def.kind).backup_needs_docker(def) {
        return Err(unreachable.to_string());
    }
    let mut problems = Vec::new();
    if let Some(d) = docker {
        for c in def.stop.iter().chain(&def.pause) {
            if let Err(e) = d.container(c) {
                problems.push(e.to_string());
            }
        }
    }
    let found = match (def.kind, docker) {
        (SourceKind::Volume, _) => volume(def, docker),
        (kind, Some(d)) => driver(kind)
            .database()
            .expect("a database kind")
            .trial(d, def)
            .map_err(|e| e.to_string()),
        (_, None) => Err(unreachable.to_string()),
    };
    match found {
        Ok(what) if problems.is_empty() => Ok(what),
        Ok(_) => Err(problems.join("; ")),
        Err(e) => {
            problems.insert(0, e);
            Err(problems.join("; "))
        }
    }
}

fn volume(def: &SourceDef, docker: Option<&Docker>) -> Result<String, String> {
    let dir = match (&def.path, &def.volume, docker) {
        (Some(p), _, _) => p.get_ref().into(),
        (None, Some(v), Some(d)) => d.volume_path(v.get_ref()).map_err(|e| e.to_string())?,
        _ => return Err("names neither a path nor a volume".into()),
    };
    let dir: &Path = &dir;
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => std::fs::read_dir(dir)
            .map(|_| format!("directory {}", dir.display()))
            .map_err(|e| format!("directory {} cannot be read: {e}", dir.display())),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!("{} cannot be read: {e}", dir.display())),
    }
}
