//! One drill from request to verdict: scratch servers started, databases loaded, volumes
//! written, checks run, and the time taken judged against the RTO and the point's age
//! against the RPO.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::checks::{evaluate, Subject};
use super::scratch::{self, Scratch, ScratchServer};
use super::window::Windows;
use super::{point_lag, DrillAt, DrillRequest};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::repo::drill::{CheckResult, DrillResult, Phase, PitrDrill, SourceResult, Verdict};
use crate::repo::point::{PointEntry, SourceRecord};
use crate::session::{Readable, Session};
use crate::source;
use crate::stack::{self, Destination, Planned, RestorePlan, Selection};
use crate::timespec::format_duration;

/// Runs a drill. An error means the drill could not run at all (no point, no Docker,
/// interrupted); a restore or check that fails is a FAIL in the result.
pub fn run(
    session: &Session<Readable>,
    docker: Option<Docker>,
    req: &DrillRequest<'_>,
) -> Result<DrillResult> {
    let (repo, catalog) = (session.repo(), session.catalog());
    let t0 = Instant::now();
    let drill = req.drill;
    let points = catalog.points(&drill.stack)?;
    let snapshots = catalog.snapshots(Some(&drill.stack))?;
    let windows = Windows::of(req.stack, &points, &snapshots);
    let at = match req.at {
        DrillAt::Newest => None,
        DrillAt::Time(t) => Some(t),
        DrillAt::Random => Some(windows.random_time(rand::random())?),
    };
    let selection = Selection { only: &[], at };
    let plan = RestorePlan::build(
        &drill.stack,
        &points,
        &snapshots,
        &selection,
        Destination::Scratch(req.stack),
    )?;
    let run_id = format!(
        "{}-{}",
        req.now.format("%Y%m%dT%H%M%S"),
        hex::encode(rand::random::<[u8; 3]>())
    );
    if let Some(d) = &docker {
        for r in scratch::sweep_strays(req.state_dir, d) {
            eprintln!("note: removed {r}, left by a killed drill");
        }
    }
    let mut scratch = Scratch::new(req.state_dir, &run_id, docker.clone())?;
    scratch.keep = req.keep;
    let (rto_target, rpo_target) = targets(req);
    let mut run = DrillRun {
        session,
        docker,
        req,
        rto_target,
        rpo_target,
        result: new_result(req, rto_target, rpo_target),
        at,
        plan,
        servers: BTreeMap::new(),
        scratch,
    };
    // Databases first: start every scratch server, then load them.
    run.start_servers()?;
    let fetching_before = repo.fetching.total();
    run.restore_sources("database load", false)?;
    run.restore_sources("volume write", true)?;
    run.measure_replay(&windows);
    run.result.phases.insert(
        1,
        Phase {
            name: "fetch and decrypt".into(),
            seconds: (repo.fetching.total() - fetching_before).as_secs_f64(),
            concurrent: true,
        },
    );
    run.run_checks()?;
    run.judge(chrono::Duration::milliseconds(
        t0.elapsed().as_millis() as i64
    ));
    let DrillRun {
        mut result,
        mut scratch,
        ..
    } = run;
    for e in scratch.remove() {
        result.warnings.push(format!("cleanup: {e}"));
    }
    Ok(result)
}

/// The drill's RTO and RPO targets, else its stack's.
fn targets(req: &DrillRequest<'_>) -> (Option<chrono::Duration>, Option<chrono::Duration>) {
    let parse = |d: &Option<toml::Spanned<String>>| {
        d.as_ref()
            .and_then(|d| crate::timespec::parse_duration(d.get_ref()).ok())
    };
    let def = &req.stack.def;
    (
        req.drill.rto.or_else(|| parse(&def.rto)),
        req.drill.rpo.or_else(|| parse(&def.rpo)),
    )
}

/// A result with nothing done yet: a FAIL until judged.
fn new_result(
    req: &DrillRequest<'_>,
    rto_target: Option<chrono::Duration>,
    rpo_target: Option<chrono::Duration>,
) -> DrillResult {
    let drill = req.drill;
    let secs = |d: chrono::Duration| d.num_milliseconds() as f64 / 1000.0;
    DrillResult {
        drill: drill.name.clone(),
        stack: drill.stack.clone(),
        started: req.now,
        hostname: req.hostname.clone(),
        point_time: None,
        sources: Vec::new(),
        phases: Vec::new(),
        checks: Vec::new(),
        rto_secs: 0.0,
        rto_target_secs: rto_target.map(secs),
        point_age_secs: None,
        rpo_target_secs: rpo_target.map(secs),
        verdict: Verdict::Fail,
        reasons: Vec::new(),
        warnings: Vec::new(),
        drctl_version: env!("CARGO_PKG_VERSION").to_string(),
        pitr: None,
    }
}

/// A drill under way.
struct DrillRun<'a> {
    session: &'a Session<Readable>,
    docker: Option<Docker>,
    req: &'a DrillRequest<'a>,
    rto_target: Option<chrono::Duration>,
    rpo_target: Option<chrono::Duration>,
    result: DrillResult,
    /// The time restored to, if not the newest points.
    at: Option<chrono::DateTime<chrono::Utc>>,
    /// What is restored from where; the targets are filled in once the scratch exists.
    plan: RestorePlan<'a>,
    /// Scratch database servers by source.
    servers: BTreeMap<String, ScratchServer>,
    scratch: Scratch,
}

impl DrillRun<'_> {
    fn interrupted(&self) -> Result<()> {
        if self.req.interrupt.load(Ordering::SeqCst) {
            return Err(Error::Interrupted);
        }
        Ok(())
    }

    /// Starts a scratch server for every database source; one that does not start is a
    /// reason to fail, not an error.
    fn start_servers(&mut self) -> Result<()> {
        let t = Instant::now();
        let step = (self.req.progress)("drill");
        step.as_step();
        for planned in &self.plan.sources {
            let Some((_, rec)) = picked(planned) else {
                continue;
            };
            if !source::driver(rec.kind).is_database() {
                continue;
            }
            let name = &rec.name;
            step.set_message(&format!(
                "{}: starting a scratch server for {name}",
                self.req.drill.name
            ));
            let replayed = matches!(planned, Planned::Ready(step) if step.replay.is_some());
            match self.scratch.server(rec, replayed) {
                Ok(mut s) => {
                    self.result.warnings.append(&mut s.warnings);
                    self.servers.insert(name.clone(), s);
                }
                Err(e) => self.result.reasons.push(format!("{name}: {e}")),
            }
            self.interrupted()?;
        }
        step.finish();
        self.result.phases.push(Phase {
            name: "start scratch servers".into(),
            seconds: t.elapsed().as_secs_f64(),
            concurrent: false,
        });
        Ok(())
    }

    /// Restores the database sources (into their scratch servers) or the volume sources
    /// (into scratch directories), timed as one phase.
    fn restore_sources(&mut self, phase: &str, volumes: bool) -> Result<()> {
        let t = Instant::now();
        let sources = std::mem::take(&mut self.plan.sources);
        for planned in &sources {
            let name = planned.name();
            let Some((point, rec)) = picked(planned) else {
                if volumes {
                    self.result
                        .reasons
                        .push(format!("{name}: no complete backup to restore"));
                }
                continue;
            };
            if source::driver(rec.kind).is_database() == volumes {
                continue;
            }
            // A source replayed to a time holds that time, not its base backup's.
            let holds = match planned {
                Planned::Ready(step) => step.replay.as_ref().map(|(t, _)| *t),
                _ => None,
            }
            .unwrap_or(point.point.time);
            let mut src = SourceResult {
                name: name.to_string(),
                kind: rec.kind,
                point: Some(point.id.to_hex()),
                point_time: Some(holds),
                image: None,
                bytes: 0,
                seconds: 0.0,
                error: None,
                replayed_to: None,
            };
            let restored = self.restore_one(planned, phase, volumes, &mut src);
            self.interrupted()?;
            match restored {
                Ok(r) => {
                    src.bytes = r.bytes;
                    src.seconds = r.seconds;
                    src.replayed_to = r.replayed_to;
                    self.result.warnings.extend(r.warnings);
                }
                Err(e) => {
                    self.result
                        .reasons
                        .push(format!("{name}: restore failed: {e}"));
                    src.error = Some(e.to_string());
                }
            }
            self.result.point_time = match self.result.point_time {
                Some(t) if t <= holds => Some(t),
                _ => Some(holds),
            };
            self.result.sources.push(src);
        }
        self.plan.sources = sources;
        self.result.phases.push(Phase {
            name: phase.into(),
            seconds: t.elapsed().as_secs_f64(),
            concurrent: false,
        });
        Ok(())
    }

    /// For a drill to a time with point-in-time sources: how close their replay came
    /// to it (the measured RPO) and how far their archive trailed at the start.
    fn measure_replay(&mut self, windows: &Windows) {
        let Some(target) = self.at else {
            return;
        };
        // Per replayed source, the last transaction replayed; with none after its base
        // backup, the base backup's time is how far it got.
        let reached: Vec<chrono::DateTime<chrono::Utc>> = self
            .result
            .sources
            .iter()
            .filter(|s| s.error.is_none())
            .filter_map(|s| {
                let step = self
                    .plan
                    .steps()
                    .find(|step| step.rec.name == s.name && step.replay.is_some())?;
                Some(s.replayed_to.unwrap_or(step.point.point.time))
            })
            .collect();
        if reached.is_empty() {
            return;
        }
        let secs = |d: chrono::Duration| d.num_milliseconds() as f64 / 1000.0;
        let oldest = reached.iter().min().copied();
        self.result.pitr = Some(PitrDrill {
            target,
            random: self.req.at == DrillAt::Random,
            replayed_to: oldest,
            rpo_secs: oldest.map(|t| secs((target - t).max(chrono::Duration::zero()))),
            archive_lag_secs: windows.archive_lag(self.req.now).map(secs),
        });
    }

    /// Restores one source into its scratch server or directory.
    fn restore_one(
        &self,
        planned: &Planned<'_>,
        phase: &str,
        volumes: bool,
        src: &mut SourceResult,
    ) -> Result<stack::Restored> {
        let name = planned.name();
        let dir = if volumes {
            Some(self.scratch.directory(name)?)
        } else {
            None
        };
        let container = match &dir {
            Some(_) => String::new(),
            None => {
                let s = self
                    .servers
                    .get(name)
                    .ok_or_else(|| Error::Failed("its scratch server did not start".into()))?;
                src.image = Some(s.image.clone());
                s.name.clone()
            }
        };
        let mut step = match planned {
            Planned::Ready(step) => step.clone(),
            Planned::Broken { error, .. } => return Err(Error::Damage(error.to_string())),
            Planned::NoBackup(_) => unreachable!("only sources with a backup are restored"),
        };
        step.target.container = container;
        step.target.dir = dir;
        let progress = (self.req.progress)("restoring");
        progress.set_message(&format!("{name} ({phase})"));
        stack::restore_step(
            self.session,
            self.docker.as_ref(),
            &step,
            &self.req.interrupt,
            &progress,
        )
    }

    /// Runs every check of the drill against what was restored.
    fn run_checks(&mut self) -> Result<()> {
        let drill = self.req.drill;
        let t = Instant::now();
        let step = (self.req.progress)("drill");
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
            let src = self.result.sources.iter().find(|s| s.name == check.source);
            let outcome = match src {
                Some(s) if s.error.is_none() => evaluate(
                    check,
                    &Subject {
                        kind: s.kind,
                        docker: self.docker.as_ref(),
                        container: self.servers.get(&check.source).map(|s| s.name.as_str()),
                        def: None,
                        dir: Some(self.scratch.dir.join("volumes").join(&check.source)),
                        point_time: s.point_time,
                        first_db: self
                            .plan
                            .sources
                            .iter()
                            .find(|p| p.name() == check.source)
                            .and_then(picked)
                            .and_then(|(_, r)| r.databases.first().cloned()),
                    },
                ),
                _ => Err(format!("source {} was not restored", check.source)),
            };
            let (passed, value, error) = match outcome {
                Ok((true, v)) => (true, Some(v), None),
                Ok((false, v)) => (false, Some(v.clone()), Some(format!("found {v}"))),
                Err(e) => (false, None, Some(e)),
            };
            if !passed {
                self.result.reasons.push(format!(
                    "check failed: {}: {}",
                    check.name(),
                    error.clone().unwrap_or_default()
                ));
            }
            self.result.checks.push(CheckResult {
                name: check.name(),
                source: check.source.clone(),
                passed,
                value,
                error,
                seconds: c0.elapsed().as_secs_f64(),
            });
            self.interrupted()?;
        }
        step.finish();
        self.result.phases.push(Phase {
            name: "checks".into(),
            seconds: t.elapsed().as_secs_f64(),
            concurrent: false,
        });
        Ok(())
    }

    /// The verdict: PASS unless something failed, the restore took longer than the RTO,
    /// or the restored point was older than the RPO allows.
    fn judge(&mut self, rto: chrono::Duration) {
        let (req, result) = (self.req, &mut self.result);
        result.rto_secs = rto.num_milliseconds() as f64 / 1000.0;
        if let Some(target) = self.rto_target {
            if rto > target {
                result.reasons.push(format!(
                    "RTO missed: the restore took {}, the target is {}",
                    format_duration(&rto),
                    format_duration(&target)
                ));
            }
        }
        if let (Some(p), Some(target)) = (&result.pitr, self.rpo_target) {
            let lag = p.archive_lag_secs.unwrap_or(0.0);
            if lag > target.num_milliseconds() as f64 / 1000.0 {
                result.reasons.push(format!(
                    "RPO missed: the continuous archive trailed by {} at the drill's start, \
                     the target is {}",
                    format_duration(&chrono::Duration::milliseconds((lag * 1000.0) as i64)),
                    format_duration(&target)
                ));
            }
        }
        if let Some(lag) = point_lag(req.stack, &result.sources, self.at.unwrap_or(req.now)) {
            result.point_age_secs = Some(lag.age.num_milliseconds() as f64 / 1000.0);
            if let Some(target) = self.rpo_target {
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
    }
}

/// The point and record a planned source is restored from, if it has a backup.
fn picked<'p>(planned: &'p Planned<'_>) -> Option<(&'p PointEntry, &'p SourceRecord)> {
    match planned {
        Planned::Ready(step) => Some((&step.point, &step.rec)),
        Planned::Broken { point, rec, .. } => Some((point, rec)),
        Planned::NoBackup(_) => None,
    }
}
