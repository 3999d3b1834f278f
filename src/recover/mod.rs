//! Host recovery: on a new machine, every stack back from the repository alone, in the
//! order their dependencies need, each checked live and timed against its RTO.
//!
//! A stack comes back in the order a Compose project can take it: its project directory
//! (compose files, overrides, `.env`) first, then the project created but not started
//! (`up --no-start`: its networks, named volumes and containers), then the volumes
//! restored into what Compose made, then the database containers started, waited for
//! and loaded, then the rest of the project started, then the stack's drill checks run
//! against the live result. [`RecoverPlan`] chooses and orders; [`run`] does it.

pub mod gate;
pub mod host_drill;
mod live_checks;
mod run;
pub mod scratch;

pub use live_checks::CheckOutcome;
pub use run::{recover_stack, Context, Phase, SourceOutcome, StackOutcome};

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};

use chrono::{DateTime, Utc};

use crate::config::drill::{Check, Drill};
use crate::config::Stack;
use crate::error::{Error, Result};
use crate::repo::point::PointEntry;
use gate::{Gate, Stages};

/// One stack to recover.
pub struct StackRecovery<'a> {
    /// Its name.
    pub name: String,
    /// Its newest recovery point at or before the time (whose configuration was written).
    pub point: PointEntry,
    /// Its configuration on this host, once written back.
    pub stack: Option<&'a Stack>,
    /// The checks of its drills, run against the recovered stack.
    pub checks: Vec<Check>,
}

impl StackRecovery<'_> {
    /// The recovery time objective the stack's file sets.
    pub fn rto(&self) -> Option<chrono::Duration> {
        let rto = self.stack?.def.rto.as_ref()?;
        crate::timespec::parse_duration(rto.get_ref()).ok()
    }

    /// The stacks it names in `depends_on`.
    pub fn depends_on(&self) -> Vec<String> {
        self.stack.map_or(Vec::new(), Stack::depends_on)
    }
}

/// What a recovery will do: the stacks, dependencies first.
pub struct RecoverPlan<'a> {
    /// The time asked for (`--at`).
    pub at: Option<DateTime<Utc>>,
    /// The stacks in the order they are recovered.
    pub stacks: Vec<StackRecovery<'a>>,
    /// Replace data already in the targets.
    pub force: bool,
}

impl<'a> RecoverPlan<'a> {
    /// Orders the chosen stacks (each with its point) by their dependencies, with their
    /// configuration and drill checks as this host now has them.
    pub fn build(
        chosen: Vec<(String, PointEntry)>,
        stacks: &'a [Stack],
        drills: &[Drill],
        at: Option<DateTime<Utc>>,
    ) -> Result<RecoverPlan<'a>> {
        let mut by_name: BTreeMap<String, StackRecovery<'a>> = chosen
            .into_iter()
            .map(|(name, point)| {
                let checks = drills
                    .iter()
                    .filter(|d| d.stack == name)
                    .flat_map(|d| d.checks.iter().cloned())
                    .collect();
                let r = StackRecovery {
                    stack: stacks.iter().find(|s| s.name == name),
                    name: name.clone(),
                    point,
                    checks,
                };
                (name, r)
            })
            .collect();
        let deps: BTreeMap<String, Vec<String>> = by_name
            .iter()
            .map(|(n, r)| (n.clone(), r.depends_on()))
            .collect();
        let names: Vec<String> = by_name.keys().cloned().collect();
        let ordered = order(&names, &deps)?;
        Ok(RecoverPlan {
            at,
            force: false,
            stacks: ordered.iter().filter_map(|n| by_name.remove(n)).collect(),
        })
    }
}

impl<'a> RecoverPlan<'a> {
    /// Runs `recover` on every stack, each on a thread of its own, all at once: each
    /// waits at its [`Gate`] for the stacks it depends on only where they matter (see
    /// [`gate`]), never for a stack it does not need nor for the rest of a dependency's
    /// recovery (its other containers, its checks). A stack that ends counts as in for
    /// those waiting on it. An error (Ctrl-C, an unwritable configuration) stops the
    /// stacks still waiting on another; the running ones finish and the first error is
    /// returned. The outcomes come in the order they end.
    pub fn run_each<O: Send>(
        &self,
        recover: impl Fn(&StackRecovery<'a>, &Gate<'_>) -> Result<O> + Sync,
    ) -> Result<Vec<O>> {
        let (tx, rx) = std::sync::mpsc::channel();
        let stages = Stages::default();
        let in_plan = |d: &String| self.stacks.iter().any(|r| &r.name == d);
        std::thread::scope(|scope| {
            for r in &self.stacks {
                let deps = r.depends_on().into_iter().filter(in_plan).collect();
                let (tx, recover, stages) = (tx.clone(), &recover, &stages);
                scope.spawn(move || {
                    let gate = stages.gate(&r.name, deps);
                    let result = panic::catch_unwind(AssertUnwindSafe(|| recover(r, &gate)));
                    let failed = !matches!(result, Ok(Ok(_)));
                    // Sent before the others are stopped, so that it is the error
                    // returned; they are stopped before this one counts as in, so that
                    // none waiting on it goes on.
                    let _ = tx.send(result);
                    if failed {
                        stages.stop();
                    }
                    stages.ended(&r.name);
                });
            }
        });
        drop(tx);
        let mut outcomes = Vec::new();
        let mut first_error = None;
        for result in rx {
            match result {
                Ok(Ok(o)) => outcomes.push(o),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(p) => panic::resume_unwind(p),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(outcomes),
        }
    }
}

/// Checks the stacks' `depends_on`: each names a configured stack other than itself, and
/// no chain of them comes back to where it started (`config check`).
pub fn check_dependencies(stacks: &[Stack]) -> Result<()> {
    let names: Vec<String> = stacks.iter().map(|s| s.name.clone()).collect();
    for s in stacks {
        for d in &s.def.depends_on {
            let d = d.get_ref();
            if d == &s.name || !names.contains(d) {
                return Err(Error::Config(format!(
                    "{}: stack {} depends on {d:?}, {}",
                    s.place,
                    s.name,
                    if d == &s.name {
                        "itself"
                    } else {
                        "which no stack file defines"
                    }
                )));
            }
        }
    }
    let deps = stacks
        .iter()
        .map(|s| (s.name.clone(), s.depends_on()))
        .collect();
    order(&names, &deps).map(drop)
}

/// `names` ordered so that each comes after the stacks it depends on (those among
/// `names`; one not being recovered is assumed to be there), and otherwise by name. A
/// cycle is a configuration error naming it.
pub fn order(names: &[String], deps: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut left: Vec<&String> = names.iter().collect();
    left.sort();
    while !left.is_empty() {
        let ready = left.iter().position(|n| {
            deps.get(*n)
                .into_iter()
                .flatten()
                .all(|d| !names.contains(d) || out.contains(d) || d == *n)
        });
        match ready {
            Some(i) => out.push(left.remove(i).clone()),
            None => {
                let cycle: Vec<&str> = left.iter().map(|s| s.as_str()).collect();
                return Err(Error::Config(format!(
                    "the stacks {} depend on each other (depends_on): no order recovers them",
                    cycle.join(", ")
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::gate::Stage;
    use super::*;

    fn deps(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dependencies_come_first_and_the_rest_by_name() {
        let d = deps(&[
            ("seller1-prod", &["pro-0kt-stack"]),
            ("commerce", &["pro-0kt-stack", "seller1-prod"]),
            ("pro-0kt-stack", &[]),
        ]);
        let got = order(
            &names(&["commerce", "seller1-prod", "pro-0kt-stack", "alpha"]),
            &d,
        )
        .unwrap();
        assert_eq!(
            got,
            names(&["alpha", "pro-0kt-stack", "seller1-prod", "commerce"])
        );
        // A dependency not being recovered does not hold the others back.
        let got = order(&names(&["commerce"]), &d).unwrap();
        assert_eq!(got, names(&["commerce"]));
    }

    #[test]
    fn a_stack_waits_for_its_dependencies_only_where_they_matter_and_for_no_other() {
        let file = |name: &str, deps: &str| {
            let text = format!("[stack.{name}]\ndepends_on = [{deps}]\n");
            crate::config::parse_stack_file(std::path::Path::new("x.toml"), &text)
                .unwrap()
                .remove(0)
        };
        let stacks = vec![
            file("shared", ""),
            file("dev", "\"shared\""),
            file("shop", ""),
            file("report", "\"dev\", \"shop\""),
        ];
        let point = |name: &str| {
            let p = crate::repo::point::RecoveryPoint {
                stack: name.into(),
                time: chrono::Utc::now(),
                hostname: String::new(),
                sources: Vec::new(),
                duration_ms: 0,
                drctl_version: String::new(),
                config: Vec::new(),
            };
            (
                name.to_string(),
                PointEntry {
                    id: crate::repo::id::PointId([0; 32]),
                    point: p,
                },
            )
        };
        let chosen = ["report", "shop", "dev", "shared"].map(point).to_vec();
        let plan = RecoverPlan::build(chosen, &stacks, &[], None).unwrap();
        let log = std::sync::Mutex::new(Vec::<String>::new());
        let say = |e: String| log.lock().unwrap().push(e);
        let has = |e: &str| log.lock().unwrap().iter().any(|l| l == e);
        let wait_for = |e: &str, who: &str| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !has(e) {
                assert!(std::time::Instant::now() < deadline, "{who} never saw {e}");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        };
        let ended = plan
            .run_each(|r, gate| {
                let name = r.name.as_str();
                say(format!("begin {name}"));
                match name {
                    // Every stack begins at once: shared waits until dev has begun, and
                    // dev until report has, though both depend on something.
                    "shared" => wait_for("begin dev", name),
                    "dev" => wait_for("begin report", name),
                    _ => {}
                }
                gate.wait(Stage::Created)?;
                say(format!("create {name}"));
                gate.reached(Stage::Created);
                if name == "shared" {
                    // dev creates its project once shared's is, before shared's data.
                    wait_for("create dev", name);
                }
                if name != "dev" {
                    // dev never says its data is in: report waits for its end.
                    say(format!("data in {name}"));
                    gate.reached(Stage::DataIn);
                }
                if name == "shop" {
                    wait_for("end dev", name);
                }
                gate.wait(Stage::DataIn)?;
                say(format!("start {name}"));
                if name == "shared" {
                    // dev starts once shared's data is in, before shared ends.
                    wait_for("start dev", name);
                }
                say(format!("end {name}"));
                Ok(r.name.clone())
            })
            .unwrap();
        assert_eq!(ended.len(), 4);
        let log = log.into_inner().unwrap();
        let at = |e: &str| log.iter().position(|l| l == e).unwrap();
        assert!(at("create shared") < at("create dev"), "{log:?}");
        assert!(at("create dev") < at("data in shared"), "{log:?}");
        assert!(at("data in shared") < at("start dev"), "{log:?}");
        assert!(at("start dev") < at("end shared"), "{log:?}");
        assert!(at("end dev") < at("start report"), "{log:?}");
        assert!(at("data in shop") < at("start report"), "{log:?}");

        // An error stops the stacks waiting on another, and is what the run returns.
        let started = std::sync::Mutex::new(Vec::new());
        let e = plan
            .run_each(|r, gate| {
                gate.wait(Stage::DataIn)?;
                started.lock().unwrap().push(r.name.clone());
                match r.name.as_str() {
                    "shared" => Err(Error::Failed("shared failed".into())),
                    _ => Ok(()),
                }
            })
            .unwrap_err();
        assert!(e.to_string().contains("shared failed"), "{e}");
        let started = started.into_inner().unwrap();
        assert!(!started.contains(&"dev".to_string()), "{started:?}");
        assert!(!started.contains(&"report".to_string()), "{started:?}");
    }

    #[test]
    fn a_cycle_is_refused_by_name() {
        let d = deps(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]);
        let e = order(&names(&["a", "b", "c"]), &d).unwrap_err();
        assert!(e.to_string().contains("a, b depend on each other"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
