//! A recovered stack's drill checks, run against the live stack: its servers with the
//! credentials its file gives, its volumes where they were restored.

use std::path::PathBuf;

use crate::config::drill::Check;
use crate::docker::Docker;
use crate::drill::checks::{evaluate, Subject};
use crate::stack::Step;

/// One check's result against the recovered stack.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// The check, as `drill` names it.
    pub name: String,
    /// The source it looks at.
    pub source: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found, or why it could not run.
    pub value: String,
}

/// Runs `checks` against the restored `steps`; a check of a source that `restored` says
/// did not come back fails with that.
pub fn run(
    docker: Option<&Docker>,
    checks: &[Check],
    steps: &[&Step<'_>],
    restored: &dyn Fn(&str) -> bool,
) -> Vec<CheckOutcome> {
    let mut out = Vec::new();
    for check in checks {
        let step = steps.iter().find(|s| s.rec.name == check.source);
        let result = match step {
            Some(s) if restored(&check.source) => evaluate(
                check,
                &Subject {
                    kind: s.rec.kind,
                    docker,
                    container: Some(s.target.container.as_str()),
                    def: s.target.def,
                    dir: volume_dir(docker, s),
                    point_time: Some(s.point.point.time),
                    first_db: s.rec.databases.first().cloned(),
                },
            ),
            _ => Err(format!("source {} was not restored", check.source)),
        };
        let (passed, value) = match result {
            Ok((passed, v)) => (passed, v),
            Err(e) => (false, e),
        };
        out.push(CheckOutcome {
            name: check.name(),
            source: check.source.clone(),
            passed,
            value,
        });
    }
    out
}

/// Where a volume source now is: where it was restored to, its named volume's mount
/// point, else its path.
pub fn volume_dir(docker: Option<&Docker>, s: &Step<'_>) -> Option<PathBuf> {
    if s.target.dir.is_some() {
        return s.target.dir.clone();
    }
    if let (Some(v), Some(d)) = (&s.rec.volume, docker) {
        if let Ok(p) = d.volume_path(v) {
            return Some(p);
        }
    }
    s.rec.path.as_ref().map(PathBuf::from)
}
