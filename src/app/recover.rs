//! `recover`: a new host from the repository URL and the key file alone. The stacks'
//! configuration is written back as their points carry it, then each stack is recovered
//! (see [`crate::recover`]) in dependency order and summed up against its RTO.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::cli::RecoverArgs;
use crate::config::drill::load_drills;
use crate::config::load_stacks;
use crate::docker::compose::Compose;
use crate::docker::Docker;
use crate::error::{Error, IoContext, Result};
use crate::human::{human_bytes, human_secs};
use crate::recover::gate::Gate;
use crate::recover::{recover_stack, Context, RecoverPlan, StackOutcome, StackRecovery};
use crate::repo::point::PointEntry;
use crate::session::{Readable, Session};
use crate::timespec::{format_duration, parse_time};

use super::{local_time, out, print_json, App};

/// Where the configuration goes: the stack files' and the drill files' directories.
struct ConfigDirs {
    schedules: PathBuf,
    drills: PathBuf,
}

impl App {
    pub(super) fn recover(&self, a: &RecoverArgs) -> Result<()> {
        let at =
            a.at.as_deref()
                .map(|t| parse_time(t, self.now))
                .transpose()?;
        let session = self.open_for_reading()?;
        let catalog = session.catalog();
        let known = catalog.point_stacks()?;
        let names: Vec<String> = if a.list || a.all {
            known.clone()
        } else {
            a.stacks.clone()
        };
        if names.is_empty() && !a.list {
            return Err(Error::Usage(
                "name the stacks to recover, or --all (--list shows them)".into(),
            ));
        }
        // Each stack's newest point at or before the time.
        let mut chosen: Vec<(String, PointEntry, usize)> = Vec::new();
        for name in &names {
            if !known.contains(name) {
                return Err(Error::Usage(format!(
                    "the repository has no recovery point of stack {name} (it has: {})",
                    known.join(", ")
                )));
            }
            let points = catalog.points(name)?;
            let count = points.len();
            let newest = points
                .into_iter()
                .rev()
                .find(|e| at.is_none_or(|t| e.point.time <= t))
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "stack {name} has no recovery point at or before --at"
                    ))
                })?;
            chosen.push((name.clone(), newest, count));
        }
        if a.list {
            return self.print_recoverable(&chosen);
        }
        let dirs = match &a.config_to {
            Some(d) => ConfigDirs {
                schedules: d.join("schedules"),
                drills: d.join("restore-drills"),
            },
            None => ConfigDirs {
                schedules: self.settings.schedules_dir.clone(),
                drills: self.settings.drills_dir.clone(),
            },
        };
        for (name, e, _) in &chosen {
            self.put_config_back(&dirs, name, e, a.dry_run)?;
        }
        if a.config_only {
            return Ok(());
        }
        // The configuration as this host now has it: the points' files, or the
        // operator's where one was kept.
        let stacks = if dirs.schedules.is_dir() {
            load_stacks(&dirs.schedules)?
        } else {
            Vec::new()
        };
        let drills = if dirs.drills.is_dir() {
            load_drills(&dirs.drills, &stacks)?
        } else {
            Vec::new()
        };
        let chosen = chosen.into_iter().map(|(n, e, _)| (n, e)).collect();
        let mut plan = RecoverPlan::build(chosen, &stacks, &drills, at)?;
        plan.force = a.force;
        if a.dry_run {
            return self.print_recover_plan(&plan);
        }
        self.recover_stacks(&plan)
    }

    /// Writes one stack's carried files where none is (or says what it would write).
    fn put_config_back(
        &self,
        dirs: &ConfigDirs,
        name: &str,
        e: &PointEntry,
        dry_run: bool,
    ) -> Result<()> {
        if e.point.config.is_empty() {
            eprintln!(
                "warning: the point of stack {name} of {} carries no configuration \
                 (written by a drctl before 0.1 carried it)",
                local_time(&e.point.time)
            );
        }
        for f in &e.point.config {
            let target = carried_target(dirs, &f.path)?;
            let written = if dry_run {
                !target.exists()
            } else {
                write_carried(&target, &f.text)?
            };
            let verb = match (written, dry_run) {
                (true, false) => "wrote",
                (true, true) => "would write",
                (false, _) => "kept the existing",
            };
            eprintln!(
                "{verb} {} (stack {name}, point {} of {})",
                target.display(),
                e.id.short(),
                local_time(&e.point.time)
            );
        }
        Ok(())
    }

    /// Recovers each stack in the plan's order and prints its summary; fails (exit 1)
    /// naming the stacks that did not fully come back.
    fn recover_stacks(&self, plan: &RecoverPlan<'_>) -> Result<()> {
        let needs_docker = plan.stacks.iter().any(|r| {
            r.stack.is_some_and(|s| s.def.compose.is_some())
                || r.point
                    .point
                    .sources
                    .iter()
                    .any(|s| crate::source::driver(s.kind).is_database() || s.volume.is_some())
        });
        // Unreachable is exit 2, before anything is written.
        let docker = if needs_docker {
            Some(Docker::connect(self.rt.clone())?)
        } else {
            None
        };
        let compose = Compose::find();
        let progress = || self.progress("restoring");
        let t0 = std::time::Instant::now();
        let say = self.step_printer();
        // Each stack on a thread of its own, with a session of its own (a catalog
        // connection is not shared).
        let recover_one = |session: &Session<Readable>, r: &StackRecovery<'_>, gate: &Gate<'_>| {
            let cx = Context {
                session,
                docker: docker.as_ref(),
                compose: compose.as_ref(),
                interrupt: &self.interrupt,
                progress: &progress,
                say: &say,
                scratch: None,
            };
            say(&format!(
                "stack {}: recovering from the point of {}",
                r.name,
                local_time(&r.point.point.time)
            ));
            let o = recover_stack(&cx, r, plan.at, plan.force, gate)
                .map_err(|e| e.context(format!("stack {}", r.name)))?;
            if !self.json {
                out(&summary(&o))?;
            }
            Ok::<_, Error>(o)
        };
        let outcomes = plan.run_each(|r, gate| recover_one(&self.open_for_reading()?, r, gate))?;
        let total = t0.elapsed().as_secs_f64();
        if self.json {
            print_json(&json!({
                "seconds": total,
                "stacks": outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
            }))?;
        } else {
            out(&format!(
                "{} stack(s) recovered in {}\n",
                outcomes.len(),
                human_secs(total)
            ))?;
        }
        let bad: Vec<&str> = outcomes
            .iter()
            .filter(|o| !o.ok())
            .map(|o| o.name.as_str())
            .collect();
        if bad.is_empty() {
            return Ok(());
        }
        Err(Error::Failed(format!(
            "{} of {} stack(s) did not fully recover: {} (see each summary)",
            bad.len(),
            outcomes.len(),
            bad.join(", ")
        )))
    }

    /// `--dry-run`: the order, and per stack its point, sources and Compose project.
    fn print_recover_plan(&self, plan: &RecoverPlan<'_>) -> Result<()> {
        let compose = Compose::find();
        let mut text = String::from("recovery plan (dependencies first):\n");
        for r in &plan.stacks {
            text.push_str(&format!(
                "stack {} from the point of {}{}\n",
                r.name,
                local_time(&r.point.point.time),
                r.rto()
                    .map_or(String::new(), |d| format!(" (RTO {})", format_duration(&d)))
            ));
            let project = r.stack.and_then(|s| s.def.compose.as_ref());
            if let Some(c) = project {
                let files: Vec<String> = c.files.iter().map(|f| f.get_ref().clone()).collect();
                let p = crate::docker::compose::Project {
                    name: c.project(),
                    dir: Path::new(c.dir()),
                    files: &files,
                };
                text.push_str(&format!(
                    "  create: {}\n",
                    Compose::command_line(compose.as_ref(), &p, &["up", "--no-start"])
                ));
            }
            for s in &r.point.point.sources {
                let place = s
                    .container
                    .as_deref()
                    .or(s.volume.as_deref())
                    .or(s.path.as_deref())
                    .unwrap_or("");
                text.push_str(&format!("  {:<12} {:<8} {place}\n", s.name, s.kind.name()));
            }
            text.push_str(&format!("  checks: {}\n", r.checks.len()));
        }
        text.push_str("dry run: nothing was changed\n");
        out(&text)
    }

    fn print_recoverable(&self, chosen: &[(String, PointEntry, usize)]) -> Result<()> {
        if self.json {
            let v: Vec<_> = chosen
                .iter()
                .map(|(name, e, count)| {
                    json!({
                        "stack": name,
                        "points": count,
                        "newest": e.id.to_string(),
                        "time": e.point.time,
                        "complete": e.point.complete(),
                        "sources": e.point.sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
                        "config": e.point.config.iter().map(|f| &f.path).collect::<Vec<_>>(),
                    })
                })
                .collect();
            return print_json(&json!(v));
        }
        let mut text = format!(
            "{:<24} {:>6}  {:<19}  {:<9}  {}\n",
            "STACK", "POINTS", "NEWEST", "STATE", "SOURCES / CONFIGURATION CARRIED"
        );
        for (name, e, count) in chosen {
            let sources: Vec<&str> = e.point.sources.iter().map(|s| s.name.as_str()).collect();
            text.push_str(&format!(
                "{:<24} {:>6}  {:<19}  {:<9}  {}; {}\n",
                name,
                count,
                local_time(&e.point.time),
                if e.point.complete() {
                    "complete"
                } else {
                    "partial"
                },
                sources.join(", "),
                if e.point.config.is_empty() {
                    "no configuration".to_string()
                } else {
                    e.point
                        .config
                        .iter()
                        .map(|f| f.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
        }
        out(&text)
    }
}

/// Where a carried file goes: `schedules/NAME.toml` into the stack files' directory,
/// `restore-drills/NAME.toml` into the drills'. Anything else in a point is refused.
fn carried_target(dirs: &ConfigDirs, rel: &str) -> Result<PathBuf> {
    let parts: Vec<&str> = rel.split('/').collect();
    let plain = |n: &str| !n.is_empty() && n != "." && n != ".." && !n.contains('\\');
    match parts.as_slice() {
        ["schedules", name] if plain(name) && name.ends_with(".toml") => {
            Ok(dirs.schedules.join(name))
        }
        ["restore-drills", name] if plain(name) && name.ends_with(".toml") => {
            Ok(dirs.drills.join(name))
        }
        _ => Err(Error::Damage(format!(
            "a recovery point carries a configuration file named {rel:?}; only \
             schedules/NAME.toml and restore-drills/NAME.toml are written"
        ))),
    }
}

/// Writes a carried file where none is; `false` when one is there already (an
/// operator's file is never replaced).
fn write_carried(target: &Path, text: &str) -> Result<bool> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).ctx(|| format!("creating {}", parent.display()))?;
    }
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(target)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io(format!("creating {}", target.display()), e)),
    };
    f.write_all(text.as_bytes())
        .ctx(|| format!("writing {}", target.display()))?;
    Ok(true)
}

/// A stack's summary: what came back from when, the checks, the time against the RTO.
fn summary(o: &StackOutcome) -> String {
    let rto = match (o.rto, o.within_rto()) {
        (Some(d), Some(true)) => format!(" (RTO {}: met)", format_duration(&d)),
        (Some(d), _) => format!(" (RTO {}: MISSED)", format_duration(&d)),
        (None, _) => " (no RTO set)".to_string(),
    };
    let mut t = format!(
        "stack {}: {} from the point of {} in {}{rto}\n",
        o.name,
        if o.ok() {
            "recovered"
        } else {
            "NOT FULLY RECOVERED"
        },
        local_time(&o.point_time),
        human_secs(o.seconds)
    );
    for s in &o.sources {
        match &s.error {
            None => t.push_str(&format!(
                "  {:<12} {:<8} {} in {}\n",
                s.name,
                s.kind.name(),
                human_bytes(s.bytes),
                human_secs(s.seconds)
            )),
            Some(e) => t.push_str(&format!(
                "  {:<12} {:<8} FAILED: {e}\n",
                s.name,
                s.kind.name()
            )),
        }
    }
    let passed = o.checks.iter().filter(|c| c.passed).count();
    if !o.checks.is_empty() {
        t.push_str(&format!(
            "  checks: {passed} of {} passed\n",
            o.checks.len()
        ));
    }
    for c in o.checks.iter().filter(|c| !c.passed) {
        t.push_str(&format!("    FAILED {}: {}\n", c.name, c.value));
    }
    for p in &o.problems {
        t.push_str(&format!("  problem: {p}\n"));
    }
    if !o.commands.is_empty() {
        t.push_str("  to finish it, run:\n");
        for c in &o.commands {
            t.push_str(&format!("    {c}\n"));
        }
    }
    t
}

fn outcome_json(o: &StackOutcome) -> serde_json::Value {
    json!({
        "stack": o.name,
        "ok": o.ok(),
        "point_time": o.point_time,
        "seconds": o.seconds,
        "rto_seconds": o.rto.map(|d| d.num_seconds()),
        "within_rto": o.within_rto(),
        "sources": o.sources.iter().map(|s| json!({
            "name": s.name, "kind": s.kind.name(), "time": s.time, "bytes": s.bytes,
            "seconds": s.seconds, "error": s.error})).collect::<Vec<_>>(),
        "checks": o.checks.iter().map(|c| json!({
            "name": c.name, "passed": c.passed, "value": c.value})).collect::<Vec<_>>(),
        "problems": o.problems,
        "commands": o.commands,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stack_and_drill_files_are_written_and_none_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = ConfigDirs {
            schedules: dir.path().join("s"),
            drills: dir.path().join("d"),
        };
        for bad in [
            "../x.toml",
            "/etc/cron.d/x.toml",
            "schedules/../../x.toml",
            "schedules/a/b.toml",
            "schedules/x.sh",
            "other/x.toml",
        ] {
            let e = carried_target(&dirs, bad).unwrap_err();
            assert!(e.to_string().contains("only"), "{bad}: {e}");
        }
        let t = carried_target(&dirs, "schedules/shop.toml").unwrap();
        assert_eq!(t, dir.path().join("s/shop.toml"));
        assert_eq!(
            carried_target(&dirs, "restore-drills/shop.toml").unwrap(),
            dir.path().join("d/shop.toml")
        );
        assert!(write_carried(&t, "one").unwrap());
        assert!(!write_carried(&t, "two").unwrap());
        let kept = std::fs::read_to_string(&t).unwrap();
        assert_eq!(kept, "one");
    }
}
