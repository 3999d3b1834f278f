//! `drctl restore`: one snapshot, or a stack from its recovery points (which sources, from
//! which points, into which targets; then the plan, a dry run, or the restore itself).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::output::{local_time, out, print_json};
use super::App;
use crate::catalog::Catalog;
use crate::cli::RestoreArgs;
use crate::config::Stack;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::human::human_bytes;
use crate::repo::point::{PointEntry, SourceRecord};
use crate::repo::Repo;
use crate::source::{self, Target};
use crate::stack::{self, Step, TargetCheck};
use crate::timespec::parse_time;

/// Each selected source with the newest complete backup of it, if any: `stack::plan`'s pick.
type Picked = Vec<(String, Option<(PointEntry, SourceRecord)>)>;

impl App {
    /// `restore`: a name with recovery points is a stack, anything else one snapshot.
    pub(super) fn restore_any(&self, a: RestoreArgs) -> Result<()> {
        let at =
            a.at.as_deref()
                .map(|s| parse_time(s, self.now))
                .transpose()?;
        let (repo, catalog) = self.open_for_reading()?;
        let points = catalog.points(&a.what)?;
        if points.is_empty() {
            if !a.source.is_empty() || a.into_container.is_some() || a.dry_run || a.force {
                return Err(Error::Usage(format!(
                    "stack {} has no recovery points; --source, --into-container, --dry-run and --force apply to stacks",
                    a.what
                )));
            }
            let to =
                a.to.ok_or_else(|| Error::Usage("restoring a snapshot needs --to DIR".into()))?;
            return self.restore(&repo, &catalog, &a.what, at, a.path, to, a.overwrite);
        }
        self.restore_stack(&repo, &catalog, &a.what, &points, at, &a)
    }

    /// Restores a stack: every source, point and target is chosen and checked before the
    /// first target is touched, so a refused restore changes nothing.
    fn restore_stack(
        &self,
        repo: &Repo,
        catalog: &Catalog,
        name: &str,
        points: &[PointEntry],
        at: Option<DateTime<Utc>>,
        a: &RestoreArgs,
    ) -> Result<()> {
        // The configuration is optional: a point holds all a restore needs, and after a
        // disaster the schedules may not be back yet. It adds credentials files.
        let stacks = self.stacks().unwrap_or_default();
        let config = stacks.iter().find(|s| s.name == name);
        let names = select_sources(name, points, config, a)?;
        let when = at
            .map(|t| format!(" at or before {}", local_time(&t)))
            .unwrap_or_default();
        let picked = pick_points(name, points, &names, at, &when, a)?;
        let steps = resolve_targets(catalog, name, points, config, picked, &when, a)?;
        let docker = if needs_docker(&steps) {
            Some(Docker::connect(self.rt.clone())?)
        } else {
            None
        };
        let checks = stack::check_targets(docker.as_ref(), &steps, a.dry_run)?;
        if !self.json && !self.quiet || a.dry_run {
            self.print_plan(name, &when, &steps, &checks, a.dry_run)?;
        }
        if a.dry_run {
            if self.json {
                print_dry_run(name, &steps, &checks)?;
            }
            return Ok(());
        }
        self.execute_steps(repo, catalog, docker.as_ref(), name, &steps)
    }

    /// Prints the plan, for people even under `--json` (then on stderr, as stdout holds
    /// the one JSON document): a restore overwrites, so what it will do is shown first.
    fn print_plan(
        &self,
        name: &str,
        when: &str,
        steps: &[Step<'_>],
        checks: &[TargetCheck],
        dry_run: bool,
    ) -> Result<()> {
        let mut text = format!("restore plan for stack {name}{when}:\n");
        for (s, c) in steps.iter().zip(checks) {
            let line = &c.line;
            text.push_str(&format!(
                "  {:<12} {:<8} from {} (point {}, snapshot {})\n      {}\n",
                s.rec.name,
                s.rec.kind.name(),
                local_time(&s.point.point.time),
                s.point.id.short(),
                s.snapshot.id.short(),
                line.split_once(": ").map_or(line.as_str(), |x| x.1)
            ));
            if let Some(why) = &c.needs_force {
                text.push_str(&format!("      NEEDS --force: {why}\n"));
            }
        }
        if dry_run {
            let forced = checks.iter().filter(|c| c.needs_force.is_some()).count();
            if forced > 0 {
                text.push_str(&format!(
                    "{forced} source(s) would need --force: without it, this restore is refused\n"
                ));
            }
            text.push_str("dry run: nothing was changed\n");
        }
        if self.json {
            eprint!("{text}");
        } else {
            out(&text)?;
        }
        Ok(())
    }

    /// Restores the steps in order; the first that fails ends the restore, named by stack
    /// and source, so the sources already restored are reported by what was printed.
    fn execute_steps(
        &self,
        repo: &Repo,
        catalog: &Catalog,
        docker: Option<&Docker>,
        name: &str,
        steps: &[Step<'_>],
    ) -> Result<()> {
        let mut done = Vec::new();
        for s in steps {
            let progress = self.progress("restoring");
            progress.set_message(&format!("{name} {}", s.rec.name));
            let r = stack::restore_step(repo, catalog, docker, s, &self.interrupt, &progress)
                .map_err(|e| e.context(format!("stack {name}, source {}", s.rec.name)))?;
            for w in &r.warnings {
                eprintln!("warning: source {}: {w}", s.rec.name);
            }
            if !self.json && !self.quiet {
                out(&format!(
                    "restored {} from {}: {} in {:.1}s\n",
                    s.rec.name,
                    local_time(&s.point.point.time),
                    human_bytes(r.bytes),
                    r.seconds
                ))?;
            }
            done.push((s, r));
        }
        if self.json {
            let v: Vec<_> = done
                .iter()
                .map(|(s, r)| {
                    json!({
                "source": r.name, "point_id": s.point.id, "time": s.point.point.time,
                "bytes": r.bytes, "seconds": r.seconds, "warnings": r.warnings})
                })
                .collect();
            return print_json(&json!({"stack": name, "restored": v}));
        }
        if !self.quiet {
            out(&format!(
                "stack {name}: {} source(s) restored\n",
                done.len()
            ))?;
        }
        Ok(())
    }
}

/// The sources to restore: all the stack has ever backed up or configures, or those
/// `--source` names, refusing a name the stack does not have rather than restoring less.
fn select_sources(
    name: &str,
    points: &[PointEntry],
    config: Option<&Stack>,
    a: &RestoreArgs,
) -> Result<Vec<String>> {
    let mut names = stack::known_sources(points, config);
    if !a.source.is_empty() {
        for s in &a.source {
            if !names.contains(s) {
                return Err(Error::Usage(format!("stack {name} has no source {s}")));
            }
        }
        names.retain(|n| a.source.contains(n));
    }
    Ok(names)
}

/// Picks each source's newest complete backup (at or before `at`). A source asked for by
/// name must have one; otherwise only a stack with none at all is refused, and
/// `--into-container` must leave no doubt which database it means.
fn pick_points(
    name: &str,
    points: &[PointEntry],
    names: &[String],
    at: Option<DateTime<Utc>>,
    when: &str,
    a: &RestoreArgs,
) -> Result<Picked> {
    let picked = stack::plan(points, names, at);
    let missing: Vec<&str> = picked
        .iter()
        .filter(|(_, f)| f.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    if !missing.is_empty() && !a.source.is_empty() || missing.len() == picked.len() {
        return Err(Error::Usage(format!(
            "stack {name} has no complete backup of source(s) {}{when}",
            missing.join(", ")
        )));
    }
    let several_db = picked
        .iter()
        .filter(|(_, f)| {
            f.as_ref()
                .is_some_and(|(_, r)| source::driver(r.kind).is_database())
        })
        .count();
    if a.into_container.is_some() && several_db != 1 {
        return Err(Error::Usage(
            "--into-container needs exactly one database source: choose it with --source".into(),
        ));
    }
    Ok(picked)
}

/// Turns each pick into a step with its snapshot and target: the container from
/// `--into-container`, the configuration or the point, and the directory under `--to`.
/// A source without a backup is skipped with a warning, as the others can still be restored.
fn resolve_targets<'a>(
    catalog: &Catalog,
    name: &str,
    points: &[PointEntry],
    config: Option<&'a Stack>,
    picked: Picked,
    when: &str,
    a: &RestoreArgs,
) -> Result<Vec<Step<'a>>> {
    let mut steps = Vec::new();
    for (source, found) in picked {
        let Some((point, rec)) = found else {
            eprintln!("warning: source {source} has no complete backup{when}; skipped");
            continue;
        };
        let snap_id = rec.snapshot.expect("ok records have a snapshot");
        let snapshot = catalog
            .snapshots(Some(name))?
            .into_iter()
            .find(|s| s.id == snap_id)
            .ok_or_else(|| {
                Error::Damage(format!(
                    "snapshot {} of source {source} (recovery point {}) is missing",
                    snap_id.short(),
                    point.id.short()
                ))
            })?;
        let def = config.and_then(|c| c.def.source.iter().find(|d| d.name.get_ref() == &source));
        let is_database = source::driver(rec.kind).is_database();
        let container = match (&a.into_container, is_database) {
            (_, false) => String::new(),
            (Some(c), true) => c.clone(),
            (None, true) => def
                .and_then(|d| d.container.as_ref().map(|c| c.get_ref().clone()))
                .or_else(|| rec.container.clone())
                .unwrap_or_default(),
        };
        let dir = a.to.as_ref().map(|t| {
            if is_database || several_volumes(points) {
                t.join(&source)
            } else {
                t.clone()
            }
        });
        steps.push(Step {
            rec,
            point,
            snapshot,
            target: Target {
                container,
                dir,
                force: a.force,
                def,
            },
        });
    }
    Ok(steps)
}

/// Whether any step needs Docker. A volume restored elsewhere (`--to`) needs none: its
/// containers are not touched and its mount point is not looked up.
fn needs_docker(steps: &[Step<'_>]) -> bool {
    steps
        .iter()
        .any(|s| source::driver(s.rec.kind).restore_needs_docker(&s.rec, &s.target))
}

/// The dry run's JSON: each step's plan line and whether it would need `--force`.
fn print_dry_run(name: &str, steps: &[Step<'_>], checks: &[TargetCheck]) -> Result<()> {
    let v: Vec<_> = steps
        .iter()
        .zip(checks)
        .map(|(s, c)| {
            json!({
        "source": s.rec.name, "point_id": s.point.id, "time": s.point.point.time,
        "snapshot_id": s.snapshot.id, "plan": c.line,
        "needs_force": c.needs_force.is_some(), "needs_force_reason": c.needs_force})
        })
        .collect();
    print_json(&json!({"stack": name, "dry_run": true, "sources": v}))
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
