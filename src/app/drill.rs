//! `drctl drill`: runs drills, prints their phases, checks and verdicts, stores the
//! results in the repository and writes JUnit XML.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{hostname, out, print_json, App};
use crate::cli::{DrillArgs, DrillCommand};
use crate::config::drill::Drill;
use crate::config::Stack;
use crate::docker::Docker;
use crate::drill::{self, DrillAt, DrillRequest, DrillResult, Verdict};
use crate::error::{Error, Result};
use crate::session::{Readable, Session};
use crate::timespec::parse_time;

impl App {
    pub(super) fn drills(&self) -> Result<(Vec<Stack>, Vec<Drill>)> {
        let stacks = self.stacks()?;
        let drills = crate::config::drill::load_drills(&self.settings.drills_dir, &stacks)?;
        Ok((stacks, drills))
    }

    /// `drill NAME|--all`, `drill history`, `drill report`.
    pub(super) fn drill(&self, a: &DrillArgs) -> Result<()> {
        match &a.command {
            Some(DrillCommand::History { name }) => return self.drill_history(name.as_deref()),
            Some(DrillCommand::Report { html, junit }) => {
                return self.drill_report(html.as_deref(), junit.as_deref())
            }
            None => {}
        }
        let (stacks, drills) = self.drills()?;
        if let Some(only) = &a.host {
            return self.host_drill(&stacks, &drills, only, a);
        }
        let chosen: Vec<&Drill> = match &a.name {
            Some(n) => vec![drills.iter().find(|d| &d.name == n).ok_or_else(|| {
                Error::Usage(format!(
                    "no drill {n:?} in {}",
                    self.settings.drills_dir.display()
                ))
            })?],
            None => drills.iter().collect(),
        };
        if chosen.is_empty() {
            return Err(Error::Usage(format!(
                "no drills are defined in {}",
                self.settings.drills_dir.display()
            )));
        }
        let at = match a.at.as_deref() {
            None => None,
            Some("random") => Some(DrillAt::Random),
            Some(t) => Some(DrillAt::Time(parse_time(t, self.now)?)),
        };
        let mut session = self.open_for_reading()?;
        self.writable(session.repo())?;
        let results = self.run_drills(&mut session, &stacks, &chosen, at, a.keep, self.now)?;
        if let Some(path) = &a.junit {
            std::fs::write(path, drill::junit::render(&results))
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        if self.json {
            print_json(&json!(results))?;
        }
        verdicts(&results)
    }

    /// Runs drills one after the other, storing each result in the repository and the
    /// catalog (so that `run --due` sees it at once) and printing its summary. `at`
    /// overrides each drill's own setting.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_drills(
        &self,
        session: &mut Session<Readable>,
        stacks: &[Stack],
        chosen: &[&Drill],
        at: Option<DrillAt>,
        keep: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<DrillResult>> {
        let needs_docker = chosen.iter().any(|d| {
            stacks.iter().any(|s| {
                s.name == d.stack
                    && s.def
                        .source
                        .iter()
                        .any(|x| crate::source::driver(x.kind).is_database())
            })
        });
        let docker = if needs_docker {
            Some(Docker::connect(self.rt.clone())?)
        } else {
            None
        };
        let progress = |verb: &'static str| self.progress(verb);
        let mut results: Vec<DrillResult> = Vec::new();
        for d in chosen {
            let stack = self.find_stack(stacks, &d.stack)?;
            if !self.quiet && !self.json {
                eprintln!(
                    "drill {}: restoring stack {} into scratch resources",
                    d.name, d.stack
                );
            }
            let r = drill::run(
                session,
                docker.clone(),
                &DrillRequest {
                    drill: d,
                    stack,
                    at: at.unwrap_or(if d.at_random {
                        DrillAt::Random
                    } else {
                        DrillAt::Newest
                    }),
                    now,
                    hostname: hostname(),
                    state_dir: &self.settings.state_dir,
                    keep,
                    interrupt: self.interrupt.clone(),
                    progress: &progress,
                },
            )?;
            if let Err(e) = session.commit_drill(&r) {
                eprintln!(
                    "warning: drill {}: the result could not be stored: {e}",
                    d.name
                );
            }
            if !self.json {
                out(&describe(&r))?;
            }
            results.push(r);
        }
        Ok(results)
    }
}

impl App {
    /// `drill --host [STACK...]`: the recovery of every stack (or those named) rehearsed
    /// into scratch Compose projects, stored and reported like any drill.
    fn host_drill(
        &self,
        stacks: &[Stack],
        drills: &[Drill],
        only: &[String],
        a: &DrillArgs,
    ) -> Result<()> {
        use crate::recover::{
            gate::Gate, host_drill, recover_stack, scratch::HostScratch, Context, RecoverPlan,
            StackRecovery,
        };
        if a.at.is_some() || a.keep {
            return Err(Error::Usage(
                "--at and --keep are for a stack's drill, not --host".into(),
            ));
        }
        for n in only {
            self.find_stack(stacks, n)?;
        }
        let mut session = self.open_for_reading()?;
        self.writable(session.repo())?;
        let mut chosen = Vec::new();
        for s in stacks
            .iter()
            .filter(|s| only.is_empty() || only.contains(&s.name))
        {
            if let Some(newest) = session.catalog().points(&s.name)?.pop() {
                chosen.push((s.name.clone(), newest));
            }
        }
        let plan = RecoverPlan::build(chosen, stacks, drills, None)?;
        host_drill::refuse_empty(&plan)?;
        let docker = Docker::connect(self.rt.clone())?;
        let compose = crate::docker::compose::Compose::find().ok_or_else(|| {
            Error::Environment(
                "a host drill needs docker-compose or the `docker compose` plugin".into(),
            )
        })?;
        let projects = plan
            .stacks
            .iter()
            .filter_map(|r| r.stack?.def.compose.as_ref().map(|c| c.project()));
        let (swept, left) = crate::recover::scratch::sweep(&self.settings.state_dir, &docker);
        for id in swept {
            eprintln!("note: removed the scratch of host drill {id}, whose drctl was killed");
        }
        for l in left {
            eprintln!("warning: a killed host drill's scratch: {l}");
        }
        let scratch = HostScratch::new(&self.settings.state_dir, projects);
        scratch.start()?;
        let say = self.step_printer();
        let progress = || self.progress("restoring");
        let started = self.now;
        // Each stack on a thread of its own, with a session of its own.
        let recover_one = |r: &StackRecovery<'_>, gate: &Gate<'_>| {
            let session = self.open_for_reading()?;
            let cx = Context {
                session: &session,
                docker: Some(&docker),
                compose: Some(&compose),
                interrupt: &self.interrupt,
                progress: &progress,
                say: &say,
                scratch: Some(&scratch),
            };
            say(&format!(
                "host drill: stack {} from the point of {}",
                r.name,
                crate::timespec::local_time(&r.point.point.time)
            ));
            recover_stack(&cx, r, None, false, gate)
        };
        let (outcomes, left, seconds) =
            host_drill::run(&plan, &scratch, &say, (&compose, &docker), recover_one);
        let outcomes = outcomes?;
        let r = host_drill::result(&outcomes, &left, seconds, started, self.now, &hostname());
        if let Err(e) = session.commit_drill(&r) {
            eprintln!("warning: the host drill's result could not be stored: {e}");
        }
        if let Some(path) = &a.junit {
            std::fs::write(path, drill::junit::render(std::slice::from_ref(&r)))
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        if self.json {
            print_json(&json!([r]))?;
        } else {
            out(&describe(&r))?;
        }
        verdicts(std::slice::from_ref(&r))
    }
}

/// Exit status of a set of drills: an error naming each that failed.
pub(super) fn verdicts(results: &[DrillResult]) -> Result<()> {
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.verdict == Verdict::Fail)
        .map(|r| r.drill.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!("drill FAIL: {}", failed.join(", "))))
    }
}

impl App {
    fn drill_history(&self, name: Option<&str>) -> Result<()> {
        let results = self.open()?.catalog().drills(name)?;
        if self.json {
            return print_json(&json!(results));
        }
        if results.is_empty() {
            return out("no drill has run yet\n");
        }
        let mut t = format!(
            "{:<19}  {:<16} {:<16} {:<7} {:>9} {:>9}  {}\n",
            "STARTED", "DRILL", "STACK", "VERDICT", "RTO", "TARGET", "POINT AGE"
        );
        for r in &results {
            t.push_str(&format!(
                "{:<19}  {:<16} {:<16} {:<7} {:>8.1}s {:>9}  {}\n",
                r.started.format("%Y-%m-%d %H:%M:%S"),
                r.drill,
                r.stack,
                verdict(r),
                r.rto_secs,
                r.rto_target_secs.map_or("-".into(), |s| format!("{s:.0}s")),
                r.point_age_secs.map_or("-".into(), age),
            ));
        }
        out(&t)
    }

    fn drill_report(
        &self,
        html: Option<&std::path::Path>,
        junit: Option<&std::path::Path>,
    ) -> Result<()> {
        let results = self.open()?.catalog().drills(None)?;
        if let Some(path) = junit {
            // Oldest first in the catalog: the last of each drill is its newest.
            let mut newest: Vec<DrillResult> = Vec::new();
            for r in results.iter().rev() {
                if !newest.iter().any(|n| n.drill == r.drill) {
                    newest.push(r.clone());
                }
            }
            newest.reverse();
            std::fs::write(path, drill::junit::render(&newest))
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        let page = drill::report::render(&results, self.now);
        match html {
            Some(p) => std::fs::write(p, page)
                .map_err(|e| Error::io(format!("writing {}", p.display()), e)),
            None => out(&page),
        }
    }
}

fn verdict(r: &DrillResult) -> &'static str {
    r.verdict.as_str()
}

fn age(secs: f64) -> String {
    crate::timespec::format_duration(&chrono::Duration::milliseconds((secs * 1000.0) as i64))
}

/// The summary table of one drill.
fn describe(r: &DrillResult) -> String {
    let mut t = format!("\ndrill {} (stack {}): {}\n", r.drill, r.stack, verdict(r));
    match (&r.pitr, r.point_time) {
        (Some(p), _) => t.push_str(&format!(
            "  restored to      {}{}\n",
            p.target.format("%Y-%m-%d %H:%M:%S UTC"),
            if p.random {
                " (a random time in the recovery window)"
            } else {
                ""
            }
        )),
        (None, Some(pt)) => t.push_str(&format!(
            "  recovery point   {} ({} old)\n",
            pt.format("%Y-%m-%d %H:%M:%S UTC"),
            r.point_age_secs.map_or("-".into(), age)
        )),
        (None, None) => {}
    }
    for p in &r.phases {
        t.push_str(&format!(
            "  {:<24} {:>8.1}s{}\n",
            p.name,
            p.seconds,
            if p.concurrent {
                "  (during the load and write)"
            } else {
                ""
            }
        ));
    }
    for s in &r.sources {
        t.push_str(&format!(
            "  source {:<17} {:>8.1}s  {}{}\n",
            s.name,
            s.seconds,
            super::human_bytes(s.bytes),
            s.error
                .as_ref()
                .map_or(String::new(), |e| format!("  FAILED: {e}"))
        ));
    }
    for c in &r.checks {
        t.push_str(&format!(
            "  [{}] {}{}\n",
            if c.passed { "pass" } else { "FAIL" },
            c.name,
            match (&c.value, &c.error) {
                (_, Some(e)) => format!(": {e}"),
                (Some(v), None) => format!(": {v}"),
                (None, None) => String::new(),
            }
        ));
    }
    let target = |t: Option<f64>| t.map_or("no target".into(), |s| format!("target {s:.0}s"));
    t.push_str(&format!(
        "  RTO measured {:.1}s ({})\n",
        r.rto_secs,
        target(r.rto_target_secs)
    ));
    if let Some(p) = &r.pitr {
        let secs = crate::repo::drill::PitrDrill::secs;
        t.push_str(&format!(
            "  RPO measured {} behind it (last transaction replayed {}); archive lag at the \
             start {} ({})\n",
            secs(p.rpo_secs),
            p.replayed_to.map_or("-".into(), |t| t
                .format("%Y-%m-%d %H:%M:%S%.3f UTC")
                .to_string()),
            secs(p.archive_lag_secs),
            target(r.rpo_target_secs)
        ));
    }
    for reason in &r.reasons {
        t.push_str(&format!("  reason: {reason}\n"));
    }
    for w in &r.warnings {
        t.push_str(&format!("  warning: {w}\n"));
    }
    t
}
