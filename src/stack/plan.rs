//! A stack restore's plan: which sources, from which recovery points and snapshots, into
//! which targets. It is a value built before the first target is touched, so a refused
//! restore changes nothing; `restore`, `restore --dry-run` and drills build the same plan
//! and differ only in where it sends the sources ([`Destination`]).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::Step;
use crate::config::Stack;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::pitr;
use crate::repo::point::{PointEntry, SourceRecord, SourceStatus};
use crate::repo::snapshot::SnapshotEntry;
use crate::source::{self, RestoreJob, Target};
use crate::timespec::local_time;

/// Which sources a restore takes, and from when.
pub struct Selection<'s> {
    /// Sources asked for by name; empty: every source the stack has.
    pub only: &'s [String],
    /// The newest complete backup at or before this time; `None`: the newest.
    pub at: Option<DateTime<Utc>>,
}

/// Where a plan sends its sources.
pub enum Destination<'a> {
    /// The stack's own containers and directories, or those the operator names.
    Live(LiveTargets<'a>),
    /// A drill's scratch servers and directories, assigned once they exist; the stack's
    /// own containers are never stopped or paused. Sources the stack's configuration
    /// names count too: one without a backup fails the drill.
    Scratch(&'a Stack),
}

/// The targets of a restore on this host.
pub struct LiveTargets<'a> {
    /// The stack's configuration, when this host has it (credentials files, containers).
    pub config: Option<&'a Stack>,
    /// Load the one database source into this container instead (`--into-container`).
    pub into_container: Option<&'a str>,
    /// Write everything under this directory instead (`--to`).
    pub to: Option<&'a Path>,
    /// Replace targets that hold data (`--force`).
    pub force: bool,
}

/// What a restore will do to one step's target.
pub struct TargetCheck {
    /// `source: what happens`, for the plan.
    pub line: String,
    /// Why the step would be refused without `--force` (dry runs only; a real run fails).
    pub needs_force: Option<String>,
}

/// One source of a plan.
// A plan holds one per source, a handful: boxing the step would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Planned<'a> {
    /// Ready to restore.
    Ready(Step<'a>),
    /// The source has no complete backup at or before the time.
    NoBackup(String),
    /// Its point names a snapshot the repository lacks (a drill reports it as that
    /// source's failure; a restore refuses the whole plan).
    Broken {
        /// The source's record in the chosen point.
        rec: SourceRecord,
        /// The point.
        point: PointEntry,
        /// What is missing.
        error: Error,
    },
}

impl Planned<'_> {
    /// The source's name.
    pub fn name(&self) -> &str {
        match self {
            Planned::Ready(s) => &s.rec.name,
            Planned::NoBackup(n) => n,
            Planned::Broken { rec, .. } => &rec.name,
        }
    }
}

/// What a stack restore will do, source by source, in order.
pub struct RestorePlan<'a> {
    /// The stack.
    pub stack: String,
    /// The time asked for.
    pub at: Option<DateTime<Utc>>,
    /// Each source, in the order it is restored.
    pub sources: Vec<Planned<'a>>,
}

impl<'a> RestorePlan<'a> {
    /// Chooses each source's newest complete backup (from the stack's `points` and
    /// `snapshots`) and its target. Refuses what cannot
    /// be done as asked: a source the stack lacks, a named source without a backup, a
    /// stack without any, `--into-container` with other than one database.
    pub fn build(
        stack: &str,
        points: &[PointEntry],
        snapshots: &[SnapshotEntry],
        selection: &Selection<'_>,
        dest: Destination<'a>,
    ) -> Result<RestorePlan<'a>> {
        let config = match &dest {
            Destination::Live(l) => l.config,
            Destination::Scratch(stack) => Some(*stack),
        };
        let mut names = known_sources(points, config);
        for s in selection.only {
            if !names.contains(s) {
                return Err(Error::Usage(format!("stack {stack} has no source {s}")));
            }
        }
        if !selection.only.is_empty() {
            names.retain(|n| selection.only.contains(n));
        }
        let picked = pick(points, &names, selection.at);
        refuse_missing(stack, &picked, selection, &dest)?;
        let several_volumes = several_volumes(points);
        let mut sources = Vec::new();
        for (name, found) in picked {
            let Some((point, rec)) = found else {
                sources.push(Planned::NoBackup(name));
                continue;
            };
            let snap_id = rec.snapshot.expect("ok records have a snapshot");
            let Some(snapshot) = snapshots.iter().find(|s| s.id == snap_id).cloned() else {
                let error = match dest {
                    Destination::Live(_) => {
                        return Err(Error::Damage(format!(
                            "snapshot {} of source {name} (recovery point {}) is missing",
                            snap_id.short(),
                            point.id.short()
                        )))
                    }
                    Destination::Scratch(_) => {
                        Error::Damage(format!("snapshot {} is missing", snap_id.short()))
                    }
                };
                sources.push(Planned::Broken { rec, point, error });
                continue;
            };
            let mut step = match &dest {
                Destination::Live(l) => live_step(l, point, rec, snapshot, several_volumes),
                Destination::Scratch(_) => scratch_step(point, rec, snapshot),
            };
            if let Some(t) = selection.at {
                if step.rec.base.is_some() && step.target.dir.is_none() {
                    match (to_the_time(stack, &mut step, points, snapshots, t), &dest) {
                        (Ok(()), _) => {}
                        (Err(e), Destination::Live(_)) => return Err(e),
                        // A drill reports it, and restores the rest.
                        (Err(error), Destination::Scratch(_)) => {
                            sources.push(Planned::Broken {
                                rec: step.rec,
                                point: step.point,
                                error,
                            });
                            continue;
                        }
                    }
                }
            }
            sources.push(Planned::Ready(step));
        }
        Ok(RestorePlan {
            stack: stack.to_string(),
            at: selection.at,
            sources,
        })
    }

    /// The steps that will run.
    pub fn steps(&self) -> impl Iterator<Item = &Step<'a>> {
        self.sources.iter().filter_map(|s| match s {
            Planned::Ready(step) => Some(step),
            _ => None,
        })
    }

    /// Whether any step needs Docker. A volume restored elsewhere (`--to`) needs none: its
    /// containers are not touched and its mount point is not looked up.
    pub fn needs_docker(&self) -> bool {
        self.steps()
            .any(|s| source::driver(s.rec.kind).restore_needs_docker(&s.rec, &s.target))
    }

    /// Checks every step's target before any is touched: a line per step for the plan. A
    /// target holding data is refused unless forced; a dry run marks it instead.
    pub fn check(&self, docker: Option<&Docker>, dry_run: bool) -> Result<Vec<TargetCheck>> {
        let mut out = Vec::new();
        for s in self.steps() {
            let check = |target: &Target<'_>| {
                source::driver(s.rec.kind).check_target(RestoreJob {
                    docker,
                    rec: &s.rec,
                    target,
                    replay: s.replay.is_some(),
                })
            };
            let (notes, needs_force) = match check(&s.target) {
                Ok(notes) => (notes, None),
                // Refused without --force: what it would do with it.
                Err(Error::Usage(why)) if dry_run && !s.target.force => {
                    let forced = Target {
                        force: true,
                        ..s.target.clone()
                    };
                    match check(&forced) {
                        Ok(notes) => (notes, Some(why)),
                        Err(_) => return Err(Error::Usage(why)),
                    }
                }
                Err(e) => return Err(e),
            };
            let mut notes = notes;
            match (&s.replay, self.at) {
                (Some((t, replay)), _) => notes.extend(
                    source::driver(s.rec.kind)
                        .database()
                        .map(|d| d.replay_plan(replay.files.len(), &local_time(t))),
                ),
                // To a time without replay: which backup, and why not closer.
                (None, Some(t)) => notes.push(format!(
                    "it will hold {}, its newest backup at or before {}: {}",
                    local_time(&s.point.point.time),
                    local_time(&t),
                    s.rec.pitr_unavailable.as_deref().unwrap_or(
                        if source::driver(s.rec.kind).is_database() {
                            "it has no continuous archive (pitr = true)"
                        } else {
                            "files are restored from their snapshots"
                        }
                    )
                )),
                (None, None) => {}
            }
            out.push(TargetCheck {
                line: format!("{}: {}", s.rec.name, notes.join("; ")),
                needs_force,
            });
        }
        Ok(out)
    }
}

/// Refuses a plan missing what was asked for: a restore needs a backup of every source
/// named and of at least one source; a drill needs one of at least one source.
fn refuse_missing(
    stack: &str,
    picked: &Picked,
    selection: &Selection<'_>,
    dest: &Destination<'_>,
) -> Result<()> {
    let missing: Vec<&str> = picked
        .iter()
        .filter(|(_, f)| f.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    let none = missing.len() == picked.len();
    match dest {
        Destination::Scratch(_) if none => Err(Error::Failed(format!(
            "stack {stack} has no complete backup{} to drill",
            selection
                .at
                .map_or(String::new(), |t| format!(" at or before {t}"))
        ))),
        Destination::Scratch(_) => Ok(()),
        Destination::Live(l) => {
            if !missing.is_empty() && !selection.only.is_empty() || none {
                return Err(Error::Usage(format!(
                    "stack {stack} has no complete backup of source(s) {}{}",
                    missing.join(", "),
                    when(selection.at)
                )));
            }
            let databases = picked
                .iter()
                .filter(|(_, f)| {
                    f.as_ref()
                        .is_some_and(|(_, r)| source::driver(r.kind).is_database())
                })
                .count();
            if l.into_container.is_some() && databases != 1 {
                return Err(Error::Usage(
                    "--into-container needs exactly one database source: choose it with --source"
                        .into(),
                ));
            }
            Ok(())
        }
    }
}

/// ` at or before T` (local time), for messages about a restore's time; empty without one.
pub fn when(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| format!(" at or before {}", local_time(&t)))
        .unwrap_or_default()
}

/// A step into the stack's own target: the container from `--into-container`, the
/// configuration or the point; the directory under `--to`.
fn live_step<'a>(
    l: &LiveTargets<'a>,
    point: PointEntry,
    rec: SourceRecord,
    snapshot: SnapshotEntry,
    several_volumes: bool,
) -> Step<'a> {
    let def = l
        .config
        .and_then(|c| c.def.source.iter().find(|d| d.name.get_ref() == &rec.name));
    let is_database = source::driver(rec.kind).is_database();
    let container = match (l.into_container, is_database) {
        (_, false) => String::new(),
        (Some(c), true) => c.to_string(),
        (None, true) => def
            .and_then(|d| d.container.as_ref().map(|c| c.get_ref().clone()))
            .or_else(|| rec.container.clone())
            .unwrap_or_default(),
    };
    let dir = if is_database || several_volumes {
        l.to.map(|t| t.join(&rec.name))
    } else {
        l.to.map(Path::to_path_buf)
    };
    Step {
        rec,
        point,
        snapshot,
        target: Target {
            container,
            dir,
            force: l.force,
            def,
            at: None,
            scratch: false,
        },
        replay: None,
    }
}

/// Makes a step a restore to `t`: from the newest base backup whose archived WAL reaches
/// `t` (perhaps an older point than the newest backup), with that WAL. A time no replay
/// reaches is refused, naming the window or the missing segment.
fn to_the_time(
    stack: &str,
    step: &mut Step<'_>,
    points: &[PointEntry],
    snapshots: &[SnapshotEntry],
    t: DateTime<Utc>,
) -> Result<()> {
    let name = step.rec.name.clone();
    let bases = pitr::bases(points, &name);
    let wal = pitr::ArchivedWal::of(snapshots, stack, &name);
    let (base, replay) = pitr::plan_replay(&bases, &wal, t)
        .map_err(|m| Error::Failed(format!("stack {stack}, source {name}: {m}")))?;
    if base.point.id != step.point.id {
        let snap_id = base.rec.snapshot.expect("ok records have a snapshot");
        step.snapshot = snapshots
            .iter()
            .find(|s| s.id == snap_id)
            .cloned()
            .ok_or_else(|| {
                Error::Damage(format!(
                    "snapshot {} of source {name} (recovery point {}) is missing",
                    snap_id.short(),
                    base.point.id.short()
                ))
            })?;
        step.point = base.point.clone();
        step.rec = base.rec.clone();
    }
    step.replay = Some((t, replay));
    Ok(())
}

/// A step into scratch, whose target the drill fills in once its server or directory
/// exists. The stack's own containers are never stopped or paused by a drill.
fn scratch_step<'a>(point: PointEntry, mut rec: SourceRecord, snapshot: SnapshotEntry) -> Step<'a> {
    rec.stop.clear();
    rec.pause.clear();
    Step {
        rec,
        point,
        snapshot,
        target: Target {
            container: String::new(),
            dir: None,
            force: false,
            def: None,
            at: None,
            scratch: true,
        },
        replay: None,
    }
}

/// Each source with the newest complete backup of it, if any.
type Picked = Vec<(String, Option<(PointEntry, SourceRecord)>)>;

/// For each source, the newest point at or before `at` whose record for it is ok.
pub fn pick(points: &[PointEntry], sources: &[String], at: Option<DateTime<Utc>>) -> Picked {
    sources
        .iter()
        .map(|name| {
            let found = points
                .iter()
                .filter(|p| at.is_none_or(|t| p.point.time <= t))
                .rev()
                .find_map(|p| {
                    p.point
                        .source(name)
                        .filter(|r| r.status == SourceStatus::Ok && r.snapshot.is_some())
                        .map(|r| (p.clone(), r.clone()))
                });
            (name.clone(), found)
        })
        .collect()
}

/// Source names a stack's points know, in the order of the newest point that has them.
pub fn known_sources(points: &[PointEntry], config: Option<&Stack>) -> Vec<String> {
    let mut names: Vec<String> = config
        .map(|s| {
            s.def
                .source
                .iter()
                .map(|d| d.name.get_ref().clone())
                .collect()
        })
        .unwrap_or_default();
    for p in points.iter().rev() {
        for s in &p.point.sources {
            if !names.contains(&s.name) {
                names.push(s.name.clone());
            }
        }
    }
    names
}

/// Whether restores of volume sources under `--to` each need a subdirectory.
fn several_volumes(points: &[PointEntry]) -> bool {
    let mut names: Vec<&str> = points
        .iter()
        .flat_map(|p| p.point.sources.iter())
        .filter(|s| !source::driver(s.kind).is_database())
        .map(|s| s.name.as_str())
        .collect();
    names.sort();
    names.dedup();
    names.len() > 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::repo::id::{PointId, SnapshotId};
    use crate::repo::point::RecoveryPoint;

    fn point(minute: u32, sources: &[(&str, bool)]) -> PointEntry {
        let time = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 20, 3, minute, 0).unwrap();
        PointEntry {
            id: PointId([minute as u8; 32]),
            point: RecoveryPoint {
                stack: "s".into(),
                time,
                hostname: "h".into(),
                sources: sources
                    .iter()
                    .map(|(n, ok)| {
                        let mut r = SourceRecord::new(n, SourceKind::Postgres);
                        if *ok {
                            r.status = SourceStatus::Ok;
                            r.snapshot = Some(SnapshotId([minute as u8; 32]));
                        }
                        r
                    })
                    .collect(),
                duration_ms: 0,
                drctl_version: "x".into(),
                config: Vec::new(),
            },
        }
    }

    #[test]
    fn plan_takes_the_newest_complete_backup_per_source_at_or_before_the_time() {
        let points = vec![
            point(0, &[("db", true), ("files", true)]),
            point(15, &[("db", false), ("files", true)]),
            point(30, &[("db", true)]),
        ];
        let names = vec!["db".to_string(), "files".to_string()];
        let at = |m| Some(chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 20, 3, m, 0).unwrap());
        let pick = |at| -> Vec<Option<u32>> {
            pick(&points, &names, at)
                .into_iter()
                .map(|(_, f)| f.map(|(p, _)| chrono::Timelike::minute(&p.point.time)))
                .collect()
        };
        assert_eq!(pick(at(20)), vec![Some(0), Some(15)]);
        assert_eq!(pick(at(30)), vec![Some(30), Some(15)]);
        assert_eq!(pick(None), vec![Some(30), Some(15)]);
        assert_eq!(pick(at(14)), vec![Some(0), Some(0)]);
        let before = Some(chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 20, 2, 0, 0).unwrap());
        assert_eq!(pick(before), vec![None, None]);
    }

    fn snapshot_of(p: &PointEntry, name: &str) -> SnapshotEntry {
        let rec = p.point.source(name).unwrap();
        SnapshotEntry {
            id: rec.snapshot.unwrap(),
            snapshot: crate::repo::snapshot::Snapshot {
                wal: None,
                time: p.point.time,
                stack: "s".into(),
                hostname: "h".into(),
                paths: vec![format!("/data/{name}")],
                source: Some(name.into()),
                tree: crate::repo::id::BlobId([0; 32]),
                summary: Default::default(),
                drctl_version: "x".into(),
            },
        }
    }

    /// Two sources, a database and a volume, in one point at 03:00, with their snapshots.
    fn stack_with_two_sources() -> (Vec<PointEntry>, Vec<SnapshotEntry>) {
        let mut p = point(0, &[("db", true), ("files", true)]);
        p.point.sources[1].kind = SourceKind::Volume;
        p.point.sources[1].snapshot = Some(SnapshotId([99; 32]));
        p.point.sources[0].container = Some("shop-db".into());
        p.point.sources[1].stop = vec!["shop-web".into()];
        let snaps = vec![snapshot_of(&p, "db"), snapshot_of(&p, "files")];
        (vec![p], snaps)
    }

    fn live<'a>(to: Option<&'a Path>, into: Option<&'a str>) -> Destination<'a> {
        Destination::Live(LiveTargets {
            config: None,
            into_container: into,
            to,
            force: false,
        })
    }

    #[test]
    fn a_live_plan_sends_each_source_to_its_own_target_or_under_to() {
        let (points, snaps) = stack_with_two_sources();
        let all = Selection {
            only: &[],
            at: None,
        };
        let plan = RestorePlan::build("s", &points, &snaps, &all, live(None, None)).unwrap();
        let targets: Vec<(String, String, Option<std::path::PathBuf>)> = plan
            .steps()
            .map(|s| {
                (
                    s.rec.name.clone(),
                    s.target.container.clone(),
                    s.target.dir.clone(),
                )
            })
            .collect();
        assert_eq!(
            targets,
            vec![
                ("db".into(), "shop-db".into(), None),
                ("files".into(), String::new(), None)
            ]
        );
        let to = Path::new("/restore");
        let plan = RestorePlan::build("s", &points, &snaps, &all, live(Some(to), None)).unwrap();
        let dirs: Vec<_> = plan
            .steps()
            .map(|s| s.target.dir.clone().unwrap())
            .collect();
        assert_eq!(dirs, vec![to.join("db"), to.to_path_buf()]);
        assert!(!plan.needs_docker(), "nothing under --to needs Docker");
    }

    #[test]
    fn a_live_plan_refuses_what_cannot_be_done_as_asked() {
        let (points, snaps) = stack_with_two_sources();
        let only = ["nope".to_string()];
        let sel = Selection {
            only: &only,
            at: None,
        };
        let e = RestorePlan::build("s", &points, &snaps, &sel, live(None, None))
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "stack s has no source nope");
        assert_eq!(e.exit_code(), 2);
        let all = Selection {
            only: &[],
            at: None,
        };
        let e = RestorePlan::build("s", &points, &snaps[1..], &all, live(None, None))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("of source db (recovery point"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 1);
        let early = Selection {
            only: &[],
            at: Some(points[0].point.time - chrono::Duration::seconds(1)),
        };
        let e = RestorePlan::build("s", &points, &snaps, &early, live(None, None))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("stack s has no complete backup of source(s) db, files"),
            "{e}"
        );
    }

    #[test]
    fn a_scratch_plan_keeps_the_stacks_containers_running_and_reports_what_is_broken() {
        let (points, snaps) = stack_with_two_sources();
        let stack = crate::config::parse_stack_file(
            Path::new("s.toml"),
            "[stack.s]\n[[stack.s.source]]\nname = \"extra\"\nkind = \"volume\"\npath = \"/e\"\n",
        )
        .unwrap()
        .remove(0);
        let all = Selection {
            only: &[],
            at: None,
        };
        let plan = RestorePlan::build(
            "s",
            &points,
            &snaps[1..],
            &all,
            Destination::Scratch(&stack),
        )
        .unwrap();
        let kinds: Vec<(&str, &str)> = plan
            .sources
            .iter()
            .map(|p| {
                let what = match p {
                    Planned::Ready(s) => {
                        assert!(s.rec.stop.is_empty() && s.rec.pause.is_empty());
                        "ready"
                    }
                    Planned::NoBackup(_) => "no backup",
                    Planned::Broken { .. } => "broken",
                };
                (p.name(), what)
            })
            .collect();
        assert_eq!(
            kinds,
            vec![("extra", "no backup"), ("db", "broken"), ("files", "ready")]
        );
    }
}
