//! Restore drills: the newest (or a chosen) recovery point of a stack restored into
//! scratch resources, checked, and timed against the stack's RPO and RTO.
//!
//! A drill never touches the stack's own containers, networks, volumes or paths: database
//! sources load into throwaway servers ([`scratch`]) and volumes into scratch directories,
//! and the containers a volume source stops at backup time are left alone. The result
//! (phases, checks, verdict) is stored in the repository under `drills/`, encrypted like
//! everything else, so the history survives the host.

pub mod junit;
pub mod report;
pub mod scratch;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::config::drill::{Check, CheckKind, Drill};
use crate::config::{SourceKind, Stack};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::progress::Progress;
pub use crate::repo::drill::{CheckResult, DrillResult, Phase, SourceResult, Verdict};
use crate::repo::Repo;
use crate::source::{mysql, postgres, redis, Target};
use crate::stack::{self, Step};
use crate::timespec::format_duration;
use scratch::Scratch;

/// What a drill needs besides the repository.
pub struct DrillRequest<'a> {
    /// The drill.
    pub drill: &'a Drill,
    /// Its stack's configuration.
    pub stack: &'a Stack,
    /// Restore the newest point at or before this time instead of the newest.
    pub at: Option<DateTime<Utc>>,
    /// The clock.
    pub now: DateTime<Utc>,
    /// This host's name.
    pub hostname: String,
    /// Where scratch directories go.
    pub data_dir: &'a Path,
    /// Leave the scratch resources in place.
    pub keep: bool,
    /// Set by SIGINT/SIGTERM.
    pub interrupt: Arc<AtomicBool>,
    /// Progress displays on a terminal.
    pub progress: &'a dyn Fn(&'static str) -> Progress,
}

/// The restored source whose recovery point lags its schedule most.
#[derive(Debug, PartialEq)]
struct PointLag {
    source: String,
    point_time: DateTime<Utc>,
    /// The newest slot its schedule had reached, if it has a schedule.
    slot: Option<DateTime<Utc>>,
    age: chrono::Duration,
}

/// How old each restored source's point was at the newest slot at which its schedule
/// wanted a backup, as of `reference` (without a schedule: at `reference` itself); the
/// worst source. Judged per source, since a source may have a schedule of its own. A
/// backup that silently stopped shows up, and a drill that starts while the slot's own
/// backup is still running is not blamed for it.
fn point_lag(
    stack: &Stack,
    sources: &[SourceResult],
    reference: DateTime<Utc>,
) -> Option<PointLag> {
    let jobs = crate::schedule::jobs(std::slice::from_ref(stack)).unwrap_or_default();
    sources
        .iter()
        .filter_map(|s| {
            let point_time = s.point_time?;
            let slot = jobs
                .iter()
                .find(|j| crate::schedule::job_sources(j, stack).contains(&s.name))
                .and_then(|j| j.latest_slot(reference));
            let age = (slot.unwrap_or(reference) - point_time).max(chrono::Duration::zero());
            Some(PointLag {
                source: s.name.clone(),
                point_time,
                slot,
                age,
            })
        })
        .max_by_key(|l| l.age)
}

/// Runs a drill. An error means the drill could not run at all (no point, no Docker,
/// interrupted); a restore or check that fails is a FAIL in the result.
pub fn run(
    repo: &Repo,
    catalog: &Catalog,
    docker: Option<Docker>,
    req: &DrillRequest<'_>,
) -> Result<DrillResult> {
    let t0 = Instant::now();
    let drill = req.drill;
    let stack_def = &req.stack.def;
    let rto_target = drill.rto.or_else(|| {
        stack_def
            .rto
            .as_ref()
            .and_then(|d| crate::timespec::parse_duration(d.get_ref()).ok())
    });
    let rpo_target = drill.rpo.or_else(|| {
        stack_def
            .rpo
            .as_ref()
            .and_then(|d| crate::timespec::parse_duration(d.get_ref()).ok())
    });
    let points = catalog.points(&drill.stack)?;
    let names = stack::known_sources(&points, Some(req.stack));
    let picked = stack::plan(&points, &names, req.at);
    if picked.iter().all(|(_, f)| f.is_none()) {
        return Err(Error::Failed(format!(
            "stack {} has no complete backup{} to drill",
            drill.stack,
            req.at
                .map_or(String::new(), |t| format!(" at or before {t}"))
        )));
    }
    let run_id = format!(
        "{}-{}",
        req.now.format("%Y%m%dT%H%M%S"),
        hex::encode(rand::random::<[u8; 3]>())
    );
    if let Some(d) = &docker {
        for r in scratch::sweep_strays(req.data_dir, d) {
            eprintln!("note: removed {r}, left by a killed drill");
        }
    }
    let mut scratch = Scratch::new(req.data_dir, &run_id, docker.clone())?;
    scratch.keep = req.keep;
    let mut result = DrillResult {
        drill: drill.name.clone(),
        stack: drill.stack.clone(),
        started: req.now,
        hostname: req.hostname.clone(),
        point_time: None,
        sources: Vec::new(),
        phases: Vec::new(),
        checks: Vec::new(),
        rto_secs: 0.0,
        rto_target_secs: rto_target.map(|d| d.num_milliseconds() as f64 / 1000.0),
        point_age_secs: None,
        rpo_target_secs: rpo_target.map(|d| d.num_milliseconds() as f64 / 1000.0),
        verdict: Verdict::Fail,
        reasons: Vec::new(),
        warnings: Vec::new(),
        drctl_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let interrupted = || req.interrupt.load(Ordering::SeqCst);
    let snapshots = catalog.snapshots(Some(&drill.stack))?;

    // Databases first: start every scratch server, then load them.
    let mut servers: BTreeMap<String, scratch::ScratchServer> = BTreeMap::new();
    let t = Instant::now();
    let step = (req.progress)("drill");
    step.as_step();
    for (name, found) in &picked {
        let Some((_, rec)) = found else { continue };
        if rec.kind == SourceKind::Volume {
            continue;
        }
        step.set_message(&format!(
            "{}: starting a scratch server for {name}",
            drill.name
        ));
        match scratch.server(rec) {
            Ok(mut s) => {
                result.warnings.append(&mut s.warnings);
                servers.insert(name.clone(), s);
            }
            Err(e) => result.reasons.push(format!("{name}: {e}")),
        }
        if interrupted() {
            return Err(Error::Interrupted);
        }
    }
    step.finish();
    result.phases.push(Phase {
        name: "start scratch servers".into(),
        seconds: t.elapsed().as_secs_f64(),
        concurrent: false,
    });
    let fetching_before = repo.fetching.total();
    for (phase, volumes) in [("database load", false), ("volume write", true)] {
        let t = Instant::now();
        for (name, found) in &picked {
            let Some((point, rec)) = found else {
                if volumes {
                    result
                        .reasons
                        .push(format!("{name}: no complete backup to restore"));
                }
                continue;
            };
            if (rec.kind == SourceKind::Volume) != volumes {
                continue;
            }
            let mut src = SourceResult {
                name: name.clone(),
                kind: rec.kind,
                point: Some(point.id.to_hex()),
                point_time: Some(point.point.time),
                image: None,
                bytes: 0,
                seconds: 0.0,
                error: None,
            };
            let target = if volumes {
                scratch.directory(name).map(Some)
            } else {
                Ok(None)
            };
            let restored = target.and_then(|dir| {
                let container = match &dir {
                    Some(_) => String::new(),
                    None => {
                        let s = servers.get(name).ok_or_else(|| {
                            Error::Failed("its scratch server did not start".into())
                        })?;
                        src.image = Some(s.image.clone());
                        s.name.clone()
                    }
                };
                let snap_id = rec.snapshot.expect("ok records have a snapshot");
                let snapshot = snapshots
                    .iter()
                    .find(|s| s.id == snap_id)
                    .cloned()
                    .ok_or_else(|| {
                        Error::Damage(format!("snapshot {} is missing", snap_id.short()))
                    })?;
                // The stack's own containers are never stopped or paused by a drill.
                let mut rec = rec.clone();
                rec.stop.clear();
                rec.pause.clear();
                let step = Step {
                    rec,
                    point: point.clone(),
                    snapshot,
                    target: Target {
                        container,
                        dir,
                        force: false,
                        def: None,
                    },
                };
                let progress = (req.progress)("restoring");
                progress.set_message(&format!("{name} ({phase})"));
                stack::restore_step(
                    repo,
                    catalog,
                    docker.as_ref(),
                    &step,
                    &req.interrupt,
                    &progress,
                )
            });
            if interrupted() {
                return Err(Error::Interrupted);
            }
            match restored {
                Ok(r) => {
                    src.bytes = r.bytes;
                    src.seconds = r.seconds;
                    result.warnings.extend(r.warnings);
                }
                Err(e) => {
                    result.reasons.push(format!("{name}: restore failed: {e}"));
                    src.error = Some(e.to_string());
                }
            }
            result.point_time = match result.point_time {
                Some(t) if t <= point.point.time => Some(t),
                _ => Some(point.point.time),
            };
            result.sources.push(src);
        }
        result.phases.push(Phase {
            name: phase.into(),
            seconds: t.elapsed().as_secs_f64(),
            concurrent: false,
        });
    }
    result.phases.insert(
        1,
        Phase {
            name: "fetch and decrypt".into(),
            seconds: (repo.fetching.total() - fetching_before).as_secs_f64(),
            concurrent: true,
        },
    );

    let t = Instant::now();
    let step = (req.progress)("drill");
    step.as_step();
    for (i, check) in drill.checks.iter().enumerate() {
        step.set_message(&format!(
            "{}: check {}/{}: {}",
            drill.name,
            i + 1,
            drill.checks.len(),
            check.name()
        ));
        let c0 = Instant::now();
        let src = result.sources.iter().find(|s| s.name == check.source);
        let outcome = match src {
            Some(s) if s.error.is_none() => evaluate(
                check,
                s.kind,
                docker.as_ref(),
                servers.get(&check.source).map(|s| &s.name),
                &scratch,
                s.point_time,
                picked
                    .iter()
                    .find(|(n, _)| *n == check.source)
                    .and_then(|(_, f)| f.as_ref())
                    .and_then(|(_, r)| r.databases.first().cloned()),
            ),
            _ => Err(format!("source {} was not restored", check.source)),
        };
        let (passed, value, error) = match outcome {
            Ok((true, v)) => (true, Some(v), None),
            Ok((false, v)) => (false, Some(v.clone()), Some(format!("found {v}"))),
            Err(e) => (false, None, Some(e)),
        };
        if !passed {
            result.reasons.push(format!(
                "check failed: {}: {}",
                check.name(),
                error.clone().unwrap_or_default()
            ));
        }
        result.checks.push(CheckResult {
            name: check.name(),
            source: check.source.clone(),
            passed,
            value,
            error,
            seconds: c0.elapsed().as_secs_f64(),
        });
        if interrupted() {
            return Err(Error::Interrupted);
        }
    }
    step.finish();
    result.phases.push(Phase {
        name: "checks".into(),
        seconds: t.elapsed().as_secs_f64(),
        concurrent: false,
    });
    let rto = chrono::Duration::milliseconds(t0.elapsed().as_millis() as i64);
    result.rto_secs = rto.num_milliseconds() as f64 / 1000.0;
    if let Some(target) = rto_target {
        if rto > target {
            result.reasons.push(format!(
                "RTO missed: the restore took {}, the target is {}",
                format_duration(&rto),
                format_duration(&target)
            ));
        }
    }
    if let Some(lag) = point_lag(req.stack, &result.sources, req.at.unwrap_or(req.now)) {
        result.point_age_secs = Some(lag.age.num_milliseconds() as f64 / 1000.0);
        if let Some(target) = rpo_target {
            if lag.age > target {
                result.reasons.push(format!(
                    "RPO missed: the recovery point of source {} ({}) was {} old {}, the target is {}",
                    lag.source,
                    lag.point_time.format("%Y-%m-%d %H:%M:%S UTC"),
                    format_duration(&lag.age),
                    lag.slot.map_or("at the drill's start".into(), |t| format!(
                        "at its newest scheduled backup ({})",
                        t.format("%Y-%m-%d %H:%M:%S UTC")
                    )),
                    format_duration(&target)
                ));
            }
        }
    }
    result.verdict = if result.reasons.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    for e in scratch.remove() {
        result.warnings.push(format!("cleanup: {e}"));
    }
    Ok(result)
}

/// Runs one check; `Ok((passed, value))`, or the error that kept it from running.
fn evaluate(
    check: &Check,
    kind: SourceKind,
    docker: Option<&Docker>,
    container: Option<&String>,
    scratch: &Scratch,
    point_time: Option<DateTime<Utc>>,
    first_db: Option<String>,
) -> std::result::Result<(bool, String), String> {
    let server = || -> std::result::Result<(&Docker, &String), String> {
        Ok((
            docker.ok_or("the Docker daemon is needed")?,
            container.ok_or("no scratch server")?,
        ))
    };
    let query = |sql: &str, database: &Option<String>| -> std::result::Result<String, String> {
        let (d, c) = server()?;
        let db = database
            .clone()
            .or_else(|| first_db.clone())
            .ok_or("the source recorded no database; set database")?;
        let out = match kind {
            SourceKind::Postgres => postgres::scalar(d, c, &db, sql),
            _ => mysql::scalar(d, c, &db, sql),
        };
        out.map_err(|e| e.to_string())
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
            let root = scratch.dir.join("volumes").join(&check.source);
            let found = resolve_beneath(&root, path)?;
            let n = count_files(&found);
            Ok((n >= *min_files, format!("{n} file(s)")))
        }
        CheckKind::RedisKeys { expect } => {
            let (d, c) = server()?;
            let n = redis::key_count(d, c).map_err(|e| e.to_string())?;
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

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 20, h, m, s).unwrap()
    }

    fn restored(name: &str, point_time: DateTime<Utc>) -> SourceResult {
        SourceResult {
            name: name.into(),
            kind: SourceKind::Volume,
            point: None,
            point_time: Some(point_time),
            image: None,
            bytes: 0,
            seconds: 0.0,
            error: None,
        }
    }

    fn stack(toml: &str) -> Stack {
        crate::config::parse_stack_file(Path::new("s.toml"), toml)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn point_age_is_judged_against_each_sources_newest_scheduled_slot() {
        let s = stack(
            "[stack.shop]\nschedule = \"*/15 * * * *\"\n\
             [[stack.shop.source]]\nname = \"db\"\nkind = \"volume\"\npath = \"/d\"\n\
             [[stack.shop.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"/f\"\nschedule = \"0 3 * * *\"\n",
        );
        let minutes = |l: PointLag| (l.source, l.age.num_seconds());
        // The 10:00 backups finished at 10:00:20; a drill at 10:15:30, while the 10:15 backup
        // still runs, is 14m40s behind its schedule, not 15m10s.
        let sources = [
            restored("db", at(10, 0, 20)),
            restored("files", at(3, 0, 5)),
        ];
        assert_eq!(
            point_lag(&s, &sources, at(10, 15, 30)).map(minutes),
            Some(("db".into(), 14 * 60 + 40))
        );
        // Backups of db stopped after 10:00: by 12:07 the 12:00 slot shows it; the daily
        // files source is on time, and judged against its own 03:00 slot.
        let lag = point_lag(&s, &sources, at(12, 7, 0)).unwrap();
        assert_eq!(lag.slot, Some(at(12, 0, 0)));
        assert_eq!(minutes(lag), ("db".into(), 2 * 3600 - 20));
        // The daily source's point missing a day shows on its own.
        let sources = [
            restored("db", at(12, 0, 10)),
            restored("files", at(3, 0, 5) - chrono::Duration::days(1)),
        ];
        assert_eq!(
            point_lag(&s, &sources, at(12, 7, 0)).map(minutes),
            Some(("files".into(), 86400 - 5))
        );
        // A point newer than the slot (a manual backup) is not negative.
        let sources = [restored("db", at(10, 5, 0))];
        assert_eq!(
            point_lag(&s, &sources, at(10, 7, 0)).map(minutes),
            Some(("db".into(), 0))
        );
        // No schedule: the age at the reference time.
        let s = stack("[stack.shop]\n[[stack.shop.source]]\nname = \"db\"\nkind = \"volume\"\npath = \"/d\"\n");
        let sources = [restored("db", at(10, 0, 20))];
        assert_eq!(
            point_lag(&s, &sources, at(10, 15, 30)).map(minutes),
            Some(("db".into(), 15 * 60 + 10))
        );
    }
}
