//! A host drill: the whole-host recovery rehearsed into scratch (see [`super::scratch`]),
//! everything removed after, and judged like any drill: each stack against its RTO, the
//! whole host against the largest of them, and every check.

use chrono::{DateTime, Utc};

use super::gate::Gate;
use super::run::StackOutcome;
use super::scratch::HostScratch;
use super::{RecoverPlan, StackRecovery};
use crate::docker::compose::Compose;
use crate::docker::Docker;
use crate::drill::{CheckResult, DrillResult, Phase, SourceResult, Verdict};
use crate::error::{Error, Result};

/// The name a host drill's results are stored and reported under.
pub const HOST_DRILL: &str = "host";

/// Recovers every stack of the plan into the scratch with `recover`, each stack waiting
/// for those it depends on as `drctl recover` does, then removes the scratch
/// whatever happened. Returns each stack's outcome, what could not be removed, and the
/// seconds the recovery took (the removal not counted).
pub fn run(
    plan: &RecoverPlan<'_>,
    scratch: &HostScratch,
    say: &dyn Fn(&str),
    (compose, docker): (&Compose, &Docker),
    recover: impl Fn(&StackRecovery<'_>, &Gate<'_>) -> Result<StackOutcome> + Sync,
) -> (Result<Vec<StackOutcome>>, Vec<String>, f64) {
    let t0 = std::time::Instant::now();
    let result = plan
        .run_each(|r, gate| recover(r, gate).map_err(|e| e.context(format!("stack {}", r.name))));
    let seconds = t0.elapsed().as_secs_f64();
    say("host drill: removing the scratch projects");
    let left = scratch.remove(Some(compose), Some(docker));
    (result, left, seconds)
}

/// The drill result of a host drill: one source per stack's source (`stack/source`), a
/// phase per stack, every check, the measured whole-host RTO.
pub fn result(
    outcomes: &[StackOutcome],
    left: &[String],
    seconds: f64,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    hostname: &str,
) -> DrillResult {
    let mut reasons = Vec::new();
    let mut sources = Vec::new();
    let mut checks = Vec::new();
    let mut phases = Vec::new();
    for o in outcomes {
        phases.push(Phase {
            name: format!("stack {}", o.name),
            seconds: o.seconds,
            concurrent: false,
        });
        for s in &o.sources {
            sources.push(SourceResult {
                name: format!("{}/{}", o.name, s.name),
                kind: s.kind,
                point: None,
                point_time: Some(s.time),
                image: None,
                bytes: s.bytes,
                seconds: s.seconds,
                error: s.error.clone(),
                replayed_to: None,
            });
            if let Some(e) = &s.error {
                reasons.push(format!("stack {}, source {}: {e}", o.name, s.name));
            }
        }
        for c in &o.checks {
            checks.push(CheckResult {
                name: format!("{}/{}", o.name, c.name),
                source: c.source.clone(),
                passed: c.passed,
                value: c.passed.then(|| c.value.clone()),
                error: (!c.passed).then(|| c.value.clone()),
                seconds: 0.0,
            });
            if !c.passed {
                reasons.push(format!("check failed: {}/{}: {}", o.name, c.name, c.value));
            }
        }
        reasons.extend(o.problems.iter().map(|p| format!("stack {}: {p}", o.name)));
        reasons.extend(
            o.commands
                .iter()
                .map(|c| format!("stack {}: left to run: {c}", o.name)),
        );
        if o.within_rto() == Some(false) {
            reasons.push(format!(
                "stack {}: took {:.1}s, over its RTO of {}s",
                o.name,
                o.seconds,
                o.rto.map_or(0, |d| d.num_seconds())
            ));
        }
    }
    reasons.extend(left.iter().map(|l| format!("scratch not removed: {l}")));
    let target = outcomes
        .iter()
        .filter_map(|o| o.rto.map(|d| d.num_milliseconds() as f64 / 1000.0))
        .reduce(f64::max);
    if let Some(t) = target {
        if seconds > t {
            reasons.push(format!(
                "the whole host took {seconds:.1}s, over the largest stack RTO of {t:.0}s"
            ));
        }
    }
    let oldest = outcomes.iter().map(|o| o.point_time).min();
    DrillResult {
        drill: HOST_DRILL.into(),
        stack: outcomes
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        started,
        hostname: hostname.into(),
        point_time: oldest,
        sources,
        phases,
        checks,
        rto_secs: seconds,
        rto_target_secs: target,
        point_age_secs: oldest.map(|t| (now - t).num_milliseconds() as f64 / 1000.0),
        rpo_target_secs: None,
        verdict: if reasons.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        reasons,
        warnings: outcomes
            .iter()
            .flat_map(|o| {
                o.notes
                    .iter()
                    .map(move |n| format!("stack {}: {n}", o.name))
            })
            .collect(),
        drctl_version: env!("CARGO_PKG_VERSION").to_string(),
        pitr: None,
    }
}

/// Refuses a host drill of nothing.
pub fn refuse_empty(plan: &RecoverPlan<'_>) -> Result<()> {
    if plan.stacks.is_empty() {
        return Err(Error::Usage(
            "no configured stack has a recovery point to drill".into(),
        ));
    }
    Ok(())
}
