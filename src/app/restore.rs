//! `drctl restore`: one snapshot, or a stack from its recovery points (which sources, from
//! which points, into which targets; then the plan, a dry run, or the restore itself).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::output::{local_time, out, print_json};
use super::App;
use crate::cli::RestoreArgs;
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::human::human_bytes;
use crate::repo::point::PointEntry;
use crate::session::{Readable, Session};
use crate::stack::{
    self, Destination, LiveTargets, Planned, RestorePlan, Selection, Step, TargetCheck,
};
use crate::timespec::parse_time;

impl App {
    /// `restore`: a name with recovery points is a stack, anything else one snapshot.
    pub(super) fn restore_any(&self, a: RestoreArgs) -> Result<()> {
        let at =
            a.at.as_deref()
                .map(|s| parse_time(s, self.now))
                .transpose()?;
        let session = self.open_for_reading()?;
        let points = session.catalog().points(&a.what)?;
        if points.is_empty() {
            if !a.source.is_empty() || a.into_container.is_some() || a.dry_run || a.force {
                return Err(Error::Usage(format!(
                    "stack {} has no recovery points; --source, --into-container, --dry-run and --force apply to stacks",
                    a.what
                )));
            }
            let to =
                a.to.ok_or_else(|| Error::Usage("restoring a snapshot needs --to DIR".into()))?;
            return self.restore(&session, &a.what, at, a.path, to, a.overwrite);
        }
        self.restore_stack(&session, &a.what, &points, at, &a)
    }

    /// Restores a stack: every source, point and target is chosen and checked before the
    /// first target is touched, so a refused restore changes nothing.
    fn restore_stack(
        &self,
        session: &Session<Readable>,
        name: &str,
        points: &[PointEntry],
        at: Option<DateTime<Utc>>,
        a: &RestoreArgs,
    ) -> Result<()> {
        // The configuration is optional: a point holds all a restore needs, and after a
        // disaster the schedules may not be back yet. It adds credentials files.
        let stacks = self.stacks().unwrap_or_default();
        let dest = Destination::Live(LiveTargets {
            config: stacks.iter().find(|s| s.name == name),
            into_container: a.into_container.as_deref(),
            to: a.to.as_deref(),
            force: a.force,
        });
        let selection = Selection {
            only: &a.source,
            at,
        };
        let snapshots = session.catalog().snapshots(Some(name))?;
        let plan = RestorePlan::build(name, points, &snapshots, &selection, dest)?;
        let when = stack::plan::when(at);
        for s in &plan.sources {
            if let Planned::NoBackup(source) = s {
                eprintln!("warning: source {source} has no complete backup{when}; skipped");
            }
        }
        let docker = if plan.needs_docker() {
            Some(Docker::connect(self.rt.clone())?)
        } else {
            None
        };
        let checks = plan.check(docker.as_ref(), a.dry_run)?;
        let steps: Vec<&Step<'_>> = plan.steps().collect();
        if !self.json && !self.quiet || a.dry_run {
            self.print_plan(name, &when, &steps, &checks, a.dry_run)?;
        }
        if a.dry_run {
            if self.json {
                print_dry_run(name, &steps, &checks)?;
            }
            return Ok(());
        }
        self.execute_steps(session, docker.as_ref(), name, &steps)
    }

    /// Prints the plan, for people even under `--json` (then on stderr, as stdout holds
    /// the one JSON document): a restore overwrites, so what it will do is shown first.
    fn print_plan(
        &self,
        name: &str,
        when: &str,
        steps: &[&Step<'_>],
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
        session: &Session<Readable>,
        docker: Option<&Docker>,
        name: &str,
        steps: &[&Step<'_>],
    ) -> Result<()> {
        let mut done = Vec::new();
        for s in steps {
            let progress = self.progress("restoring");
            progress.set_message(&format!("{name} {}", s.rec.name));
            let r = stack::restore_step(session, docker, s, &self.interrupt, &progress)
                .map_err(|e| e.context(format!("stack {name}, source {}", s.rec.name)))?;
            for w in &r.warnings {
                eprintln!("warning: source {}: {w}", s.rec.name);
            }
            if !self.json && !self.quiet {
                // The moment the source now holds.
                let holds = match &s.replay {
                    Some((t, _)) => format!(
                        "to {} (base backup from {}, last transaction replayed {})",
                        local_time(t),
                        local_time(&s.point.point.time),
                        r.replayed_to
                            .map_or("none after the base backup".into(), |x| x
                                .with_timezone(&chrono::Local)
                                .format("%Y-%m-%d %H:%M:%S%.3f")
                                .to_string())
                    ),
                    None => format!("from {}", local_time(&s.point.point.time)),
                };
                out(&format!(
                    "restored {} {holds}: {} in {:.1}s\n",
                    s.rec.name,
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
                "bytes": r.bytes, "seconds": r.seconds, "warnings": r.warnings,
                "replayed_to_time": s.replay.as_ref().map(|(t, _)| t),
                "last_transaction": r.replayed_to})
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

/// The dry run's JSON: each step's plan line and whether it would need `--force`.
fn print_dry_run(name: &str, steps: &[&Step<'_>], checks: &[TargetCheck]) -> Result<()> {
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
