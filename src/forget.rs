//! `drctl forget`: apply each stack's keep policy to its recovery points (and to the plain
//! snapshots of `backup --stack NAME PATHS`), plan first, then delete the manifests of
//! what is not kept. Data goes later, with `prune`.
//!
//! The policy is applied per source: a point is kept when the policy keeps it for any of
//! its sources that succeeded in it. A source that failed for a week therefore keeps its
//! last good backups however many newer points the other sources made.

use std::collections::{BTreeMap, HashMap};

use chrono_tz::Tz;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::config::Stack;
use crate::error::Result;
use crate::repo::id::RunId;
use crate::repo::layout::Handle;
use crate::repo::point::SourceStatus;
use crate::retention::{self, KeepPolicy};
use crate::session::Session;

/// One manifest and the verdict on it.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// `point`, `snapshot`, `wal` (an archived WAL file), `orphan` (a source snapshot
    /// of an interrupted stack backup, which no point names), or `run` (a run log of
    /// the history older than every kept point).
    pub kind: &'static str,
    /// Its ID.
    pub id: String,
    /// Its time.
    pub time: chrono::DateTime<chrono::Utc>,
    /// Kept or removed.
    pub keep: bool,
    /// Why it is kept (empty when removed).
    pub reasons: Vec<String>,
    /// The objects removed with it: the point's manifest and its snapshots.
    #[serde(skip)]
    objects: Vec<Handle>,
    /// A run log, whose rows leave the catalog's history with it.
    #[serde(skip)]
    run_log: Option<RunId>,
}

/// The plan for one stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackPlan {
    /// The stack.
    pub stack: String,
    /// Oldest first.
    pub items: Vec<Item>,
}

impl StackPlan {
    /// How many manifests it removes.
    pub fn removed(&self) -> usize {
        self.items.iter().filter(|i| !i.keep).count()
    }
}

/// Plans the forget of one stack under its policy.
pub fn plan(catalog: &Catalog, stack: &Stack, policy: &KeepPolicy) -> Result<StackPlan> {
    let tz: Tz = stack
        .def
        .timezone
        .as_ref()
        .and_then(|t| t.get_ref().parse().ok())
        .unwrap_or(Tz::UTC);
    let points = catalog.points(&stack.name)?;
    // Per source, the policy over the points in which that source succeeded.
    let mut kept: HashMap<usize, Vec<String>> = HashMap::new();
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in points.iter().enumerate() {
        for r in &e.point.sources {
            if r.status == SourceStatus::Ok {
                by_source.entry(r.name.as_str()).or_default().push(i);
            }
        }
    }
    let several = by_source.len() > 1;
    for (source, idx) in &by_source {
        let times: Vec<_> = idx.iter().map(|&i| points[i].point.time).collect();
        for (&i, d) in idx.iter().zip(retention::apply(policy, &times, &tz)) {
            if d.keep {
                let entry = kept.entry(i).or_default();
                for r in d.reasons {
                    entry.push(if several { format!("{source}: {r}") } else { r });
                }
            }
        }
    }
    let mut items: Vec<Item> = points
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut objects = vec![Handle::point(&e.id)];
            objects.extend(
                e.point
                    .sources
                    .iter()
                    .filter_map(|r| r.snapshot.map(|s| Handle::snapshot(&s))),
            );
            let reasons = kept.remove(&i).unwrap_or_default();
            Item {
                kind: "point",
                id: e.id.to_string(),
                time: e.point.time,
                keep: !reasons.is_empty(),
                reasons,
                objects,
                run_log: None,
            }
        })
        .collect();
    // Plain snapshots of the stack's name (not part of any point), grouped by paths.
    let in_points: std::collections::HashSet<_> = points
        .iter()
        .flat_map(|e| e.point.sources.iter().filter_map(|r| r.snapshot))
        .collect();
    let mut groups: BTreeMap<Vec<String>, Vec<_>> = BTreeMap::new();
    for s in catalog.snapshots(Some(&stack.name))? {
        if s.snapshot.source.is_none() && !in_points.contains(&s.id) {
            groups.entry(s.snapshot.paths.clone()).or_default().push(s);
        }
    }
    // Source snapshots no point names: left by a stack backup that was interrupted
    // before its point was written. Once a later point exists, that backup is certainly
    // over (one run per stack at a time), so they are garbage, never restorable.
    let newest_point = points.iter().map(|e| e.point.time).max();
    let snapshots = catalog.snapshots(Some(&stack.name))?;
    items.extend(wal_items(stack, &points, &items, &snapshots));
    for s in &snapshots {
        if s.snapshot.source.is_some()
            && s.snapshot.wal.is_none()
            && !in_points.contains(&s.id)
            && newest_point.is_some_and(|t| t > s.snapshot.time)
        {
            items.push(Item {
                kind: "orphan",
                id: s.id.to_string(),
                time: s.snapshot.time,
                keep: false,
                reasons: Vec::new(),
                objects: vec![Handle::snapshot(&s.id)],
                run_log: None,
            });
        }
    }
    for snaps in groups.values() {
        let times: Vec<_> = snaps.iter().map(|s| s.snapshot.time).collect();
        for (s, d) in snaps.iter().zip(retention::apply(policy, &times, &tz)) {
            items.push(Item {
                kind: "snapshot",
                id: s.id.to_string(),
                time: s.snapshot.time,
                keep: d.keep,
                reasons: if d.keep { d.reasons } else { Vec::new() },
                objects: vec![Handle::snapshot(&s.id)],
                run_log: None,
            });
        }
    }
    let runs = run_items(catalog, &stack.name, &items)?;
    items.extend(runs);
    items.sort_by_key(|i| i.time);
    Ok(StackPlan {
        stack: stack.name.clone(),
        items,
    })
}

/// The verdicts on a stack's archived WAL, given the verdicts on its points: every file
/// from the oldest kept base backup's start on is kept (each kept base replays from
/// there); older segments go, and so do growing copies a newer copy replaces. A source
/// with no kept base backup keeps all its WAL: nothing decides what it is for.
fn wal_items(
    stack: &Stack,
    points: &[crate::repo::point::PointEntry],
    verdicts: &[Item],
    snapshots: &[crate::repo::snapshot::SnapshotEntry],
) -> Vec<Item> {
    let kept: std::collections::HashSet<String> = verdicts
        .iter()
        .filter(|i| i.keep && i.kind == "point")
        .map(|i| i.id.clone())
        .collect();
    let mut sources: Vec<&str> = snapshots
        .iter()
        .filter(|s| s.snapshot.wal.is_some())
        .filter_map(|s| s.snapshot.source.as_deref())
        .collect();
    sources.sort();
    sources.dedup();
    let mut out = Vec::new();
    for source in sources {
        let wal = crate::pitr::ArchivedWal::of(snapshots, &stack.name, source);
        let superseded: std::collections::HashSet<_> = wal
            .superseded(snapshots, &stack.name, source)
            .into_iter()
            .map(|s| s.id)
            .collect();
        let oldest = crate::pitr::bases(points, source)
            .into_iter()
            .filter(|b| kept.contains(&b.point.id.to_string()))
            .filter_map(|b| crate::pitr::ArchivedWal::first_needed(b.rec.base.as_ref()?))
            .min_by_key(|(_, seg)| *seg);
        for s in snapshots {
            let Some(w) = s.snapshot.wal.as_ref() else {
                continue;
            };
            if s.snapshot.source.as_deref() != Some(source) {
                continue;
            }
            let old = oldest.is_some_and(|o| crate::pitr::ArchivedWal::older_than(&w.name, o));
            let replaced = superseded.contains(&s.id);
            out.push(Item {
                kind: "wal",
                id: s.id.to_string(),
                time: s.snapshot.time,
                keep: !old && !replaced,
                reasons: if old || replaced {
                    Vec::new()
                } else {
                    vec![format!("WAL {} for the kept base backups", w.name)]
                },
                objects: vec![Handle::snapshot(&s.id)],
                run_log: None,
            });
        }
    }
    out
}

/// The run logs older than every point the plan keeps: the history reaches back as far
/// as the backups do, and no further. Nothing goes while no point is kept.
fn run_items(catalog: &Catalog, stack: &str, verdicts: &[Item]) -> Result<Vec<Item>> {
    let oldest_kept = verdicts
        .iter()
        .filter(|i| i.keep && i.kind == "point")
        .map(|i| i.time)
        .min();
    let Some(oldest) = oldest_kept else {
        return Ok(Vec::new());
    };
    Ok(catalog
        .run_logs_before(stack, oldest)?
        .into_iter()
        .map(|(id, started)| Item {
            kind: "run",
            id: id.to_string(),
            time: started,
            keep: false,
            reasons: Vec::new(),
            objects: vec![Handle::run(&id)],
            run_log: Some(id),
        })
        .collect())
}

/// Deletes the manifests the plan does not keep: the point first, then its snapshots, so
/// an interrupted forget never leaves a point that names a missing snapshot (at worst a
/// snapshot no point names, which keeps its data until a later forget of it).
pub fn execute<A>(session: &mut Session<A>, plan: &StackPlan) -> Result<usize> {
    let repo = session.repo();
    let mut removed = 0;
    for item in plan.items.iter().filter(|i| !i.keep) {
        for object in &item.objects {
            repo.block_on(repo.objects().delete(object))?;
        }
        if let Some(id) = &item.run_log {
            session.catalog().forget_run_log(id)?;
        }
        removed += 1;
    }
    session.refresh()?;
    Ok(removed)
}
