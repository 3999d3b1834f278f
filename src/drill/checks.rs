//! A drill's checks: SQL against a scratch server, Redis keys, files in a restored
//! volume (never followed out of it), and the freshness of what was restored.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::drill::{Check, CheckKind};
use crate::config::{SourceDef, SourceKind};
use crate::docker::Docker;
use crate::source::{self, DatabaseDriver, LoginAt, Server};
use crate::timespec::format_duration;

/// What a check looks at: one restored source, in a drill's scratch or live on a
/// recovered host.
pub struct Subject<'a> {
    /// The source's kind.
    pub kind: SourceKind,
    /// The daemon, for a database check.
    pub docker: Option<&'a Docker>,
    /// The database server's container.
    pub container: Option<&'a str>,
    /// The source's definition, whose credentials a live server takes; `None` for a
    /// scratch server (its own credentials).
    pub def: Option<&'a SourceDef>,
    /// Where a volume source was restored.
    pub dir: Option<PathBuf>,
    /// The time of the recovery point restored.
    pub point_time: Option<DateTime<Utc>>,
    /// The first database the backup recorded (a check's default database).
    pub first_db: Option<String>,
}

/// Runs one check; `Ok((passed, value))`, or the error that kept it from running.
pub fn evaluate(check: &Check, s: &Subject<'_>) -> std::result::Result<(bool, String), String> {
    let server = || -> std::result::Result<(&dyn DatabaseDriver, &Docker, &str), String> {
        Ok((
            source::driver(s.kind)
                .database()
                .ok_or("a volume source has no server")?,
            s.docker.ok_or("the Docker daemon is needed")?,
            s.container.ok_or("no database server")?,
        ))
    };
    let open = || -> std::result::Result<Box<dyn Server + '_>, String> {
        let (server, docker, container) = server()?;
        let at = LoginAt {
            docker,
            container,
            def: s.def,
        };
        server.open(at).map_err(|e| e.to_string())
    };
    let point_time = s.point_time;
    let query = |sql: &str, database: &Option<String>| -> std::result::Result<String, String> {
        server()?;
        let db = database
            .clone()
            .or_else(|| s.first_db.clone())
            .ok_or("the source recorded no database; set database")?;
        open()?.scalar(&db, sql).map_err(|e| e.to_string())
    };
    match &check.kind {
        CheckKind::Sql {
            sql,
            database,
            expect,
        } => {
            let v = query(sql, database)?;
            Ok((expect.holds(&v), v.trim().to_string()))
        }
        CheckKind::Fresh {
            sql,
            database,
            within,
        } => {
            let v = query(sql, database)?;
            let newest = parse_timestamp(&v).ok_or_else(|| format!("{v:?} is not a timestamp"))?;
            let at = point_time.ok_or("no recovery point time")?;
            let age = at - newest;
            Ok((
                age <= *within,
                format!("{} ({} before the point)", v.trim(), format_duration(&age)),
            ))
        }
        CheckKind::Path { path, min_files } => {
            let root = s.dir.as_ref().ok_or("the volume was not restored")?;
            let found = resolve_beneath(root, path)?;
            let n = count_files(&found);
            Ok((n >= *min_files, format!("{n} file(s)")))
        }
        CheckKind::RedisKeys { expect } => {
            let n = open()?.key_count().map_err(|e| e.to_string())?;
            Ok((expect.holds(&n.to_string()), n.to_string()))
        }
    }
}

/// Reads the timestamps databases print: `2026-11-20 03:15:00[.123][+00[:00]]`, or with
/// a `T`; without a zone it is UTC.
fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(&s.replace(' ', "T")) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc());
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, f) {
            return Some(d.and_hms_opt(0, 0, 0)?.and_utc());
        }
    }
    None
}

/// Most symbolic links followed while resolving one check path (as Linux's MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// Finds `rel` inside the restored tree `root` without ever leaving it. Symbolic links are
/// followed only while they stay inside: one with an absolute target (which meant the
/// container's file system, not this host's) or one that climbs above `root` is refused,
/// so a link planted in a volume (`data -> /etc`) cannot make a check read the host.
fn resolve_beneath(root: &Path, rel: &str) -> std::result::Result<std::path::PathBuf, String> {
    use std::collections::VecDeque;
    use std::ffi::OsString;
    use std::path::Component;
    let parts = |p: &Path| -> std::result::Result<Vec<OsString>, ()> {
        p.components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(Ok(n.to_os_string())),
                Component::ParentDir => Some(Ok(OsString::from(".."))),
                Component::CurDir => None,
                Component::RootDir | Component::Prefix(_) => Some(Err(())),
            })
            .collect()
    };
    let outside = || format!("{rel} leads out of the restored volume");
    let mut todo: VecDeque<OsString> = parts(Path::new(rel)).map_err(|_| outside())?.into();
    let mut at: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            at.pop().ok_or_else(outside)?;
            continue;
        }
        let mut p = root.to_path_buf();
        p.extend(&at);
        p.push(&name);
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("{rel} is not in the restored volume"))
            }
            Err(e) => return Err(format!("{rel}: {e}")),
        };
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("{rel}: too many levels of symbolic links"));
            }
            let target = std::fs::read_link(&p).map_err(|e| format!("{rel}: {e}"))?;
            let target_parts = parts(&target).map_err(|_| {
                format!(
                    "{rel} leads through a symbolic link to {} outside the restored volume",
                    target.display()
                )
            })?;
            for t in target_parts.into_iter().rev() {
                todo.push_front(t);
            }
            continue;
        }
        if !todo.is_empty() && !meta.is_dir() {
            return Err(format!("{rel} is not in the restored volume"));
        }
        at.push(name);
    }
    let mut p = root.to_path_buf();
    p.extend(&at);
    Ok(p)
}

/// Regular files under a directory, recursively (symlinks not followed).
fn count_files(dir: &Path) -> u64 {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => n += 1,
                _ => {}
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_paths_never_leave_the_restored_tree() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("vol");
        std::fs::create_dir_all(root.join("releases/v2")).unwrap();
        std::fs::write(root.join("releases/v2/a"), "a").unwrap();
        let host = d.path().join("host");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("secret"), "s").unwrap();
        let link =
            |target: &str, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        link("releases/v2", "current");
        link(host.to_str().unwrap(), "abs");
        link("../host", "up");
        link("loop", "loop");
        link("releases/../current", "again");
        assert_eq!(
            resolve_beneath(&root, "current").unwrap(),
            root.join("releases/v2")
        );
        assert_eq!(
            resolve_beneath(&root, "again/a").unwrap(),
            root.join("releases/v2/a")
        );
        assert_eq!(resolve_beneath(&root, "").unwrap(), root);
        for (rel, why) in [
            ("abs", "outside the restored volume"),
            ("abs/secret", "outside the restored volume"),
            ("up", "leads out"),
            ("up/secret", "leads out"),
            ("loop", "too many levels"),
            ("nosuch", "not in the restored volume"),
            ("releases/v2/a/b", "not in the restored volume"),
        ] {
            let e = resolve_beneath(&root, rel).unwrap_err();
            assert!(e.contains(why), "{rel}: {e}");
        }
    }

    #[test]
    fn database_timestamps_parse() {
        let want = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 20, 3, 15, 0).unwrap();
        for s in [
            "2026-11-20 03:15:00",
            "2026-11-20 03:15:00+00",
            "2026-11-20 06:15:00+03",
            "2026-11-20 03:15:00.000000",
            "2026-11-20T03:15:00Z",
        ] {
            assert_eq!(parse_timestamp(s), Some(want), "{s}");
        }
        assert_eq!(parse_timestamp("soon"), None);
    }
}
