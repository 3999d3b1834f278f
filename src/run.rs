//! One run of a job: take the stack's lock, tell the notifier, run the pre hooks, back up
//! the sources into a recovery point, run the post hooks, record the outcome in the run
//! history. `backup STACK`, `run`, `run --due` and the daemon all come through here.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::catalog::{RunRecord, RunStatus};
use crate::config::{HookWhen, SourceDef, Stack};
use crate::error::{Error, Result};
use crate::hooks;
use crate::lock::StackLock;
use crate::notify::{Event, Notice, Notifier};
use crate::progress::Progress;
use crate::repo::run::RunLog;
use crate::session::Session;
use crate::stack::{self, StackOutcome};

/// What a run needs from its surroundings.
pub struct RunEnv<'a> {
    /// Where the per-stack lock files live.
    pub lock_dir: &'a Path,
    /// This host's name, for the point and the notices.
    pub hostname: &'a str,
    /// The clock: the run's start time.
    pub now: DateTime<Utc>,
    /// Set by SIGINT/SIGTERM.
    pub interrupt: &'a Arc<AtomicBool>,
    /// A progress display per source.
    pub progress: &'a dyn Fn(&str) -> Progress,
}

/// How a run ended: the point (when one was written), warnings, and the error that
/// decides the exit code (`None`: success).
pub struct RunOutcome {
    /// The recovery point and per-source results, when the backup got that far.
    pub backup: Option<StackOutcome>,
    /// Unreadable files, failing notifiers, hooks that failed with `continue`.
    pub warnings: Vec<String>,
    /// The run's status as recorded.
    pub status: RunStatus,
    /// Why it did not succeed.
    pub error: Option<Error>,
}

/// Runs the given sources of a stack (all when `only` is empty) as one recovery point.
pub fn run_stack<A>(
    session: &mut Session<A>,
    stack: &Stack,
    only: &[String],
    env: &RunEnv<'_>,
) -> Result<RunOutcome> {
    let sources = stack::select(stack, only)?;
    let started = Instant::now();
    let notices = Notices {
        notifier: Notifier::new(stack.def.notify.as_ref()),
        stack,
        env,
        started,
    };
    let mut warnings = Vec::new();

    let _lock = match StackLock::acquire(env.lock_dir, &stack.name, env.now) {
        Ok(l) => l,
        Err(e @ Error::Locked(_)) => {
            let row = record(stack, None, env.now, started, RunStatus::Skipped, Some(&e));
            commit_runs(session, vec![row], &mut warnings)?;
            notices.send(
                notices.notice(Event::Skipped, "skipped", Some(e.to_string())),
                &mut warnings,
            );
            return Ok(RunOutcome {
                backup: None,
                warnings,
                status: RunStatus::Skipped,
                error: Some(e),
            });
        }
        Err(e) => return Err(e),
    };
    notices.send(notices.notice(Event::Start, "running", None), &mut warnings);

    let (backup, mut error) = back_up(session, stack, &sources, env, &mut warnings);
    run_post_hooks(stack, env, backup.as_ref(), &mut error, &mut warnings);
    let status = status_of(error.as_ref());

    let mut rows = backup
        .as_ref()
        .map_or(Vec::new(), |b| record_sources(stack, env.now, b));
    rows.push(record(
        stack,
        backup.as_ref(),
        env.now,
        started,
        status,
        error.as_ref(),
    ));
    commit_runs(session, rows, &mut warnings)?;
    notices.send(
        notices.outcome(status, error.as_ref(), backup.as_ref()),
        &mut warnings,
    );
    Ok(RunOutcome {
        backup,
        warnings,
        status,
        error,
    })
}

/// The notices of one run: each names the stack, the host and the start, and a notifier
/// that cannot be reached is a warning, never a failed run.
struct Notices<'r> {
    notifier: Option<Notifier>,
    stack: &'r Stack,
    env: &'r RunEnv<'r>,
    started: Instant,
}

impl Notices<'_> {
    /// A notice of `event`; every event after the start carries the time taken so far.
    fn notice(&self, event: Event, status: &str, error: Option<String>) -> Notice {
        let mut n = Notice::new(
            event,
            &self.stack.name,
            self.env.hostname,
            self.env.now,
            status,
            error,
        );
        n.duration_ms = (event != Event::Start).then(|| self.started.elapsed().as_millis() as u64);
        n
    }

    /// The closing notice: success or failure, with the point and the bytes it added.
    fn outcome(
        &self,
        status: RunStatus,
        error: Option<&Error>,
        backup: Option<&StackOutcome>,
    ) -> Notice {
        let mut n = self.notice(
            if status == RunStatus::Ok {
                Event::Success
            } else {
                Event::Failure
            },
            status.as_str(),
            error.map(|e| e.to_string()),
        );
        n.point_id = backup.map(|b| b.id.to_string());
        n.bytes_added = backup.map(|b| b.point.sources.iter().map(|s| s.bytes_added).sum());
        n
    }

    /// Sends `n` when the stack has a notifier; what failed to arrive becomes a warning.
    fn send(&self, n: Notice, warnings: &mut Vec<String>) {
        if let Some(nf) = &self.notifier {
            warnings.extend(nf.send(&n));
        }
    }
}

/// What every hook sees of the run, in its environment.
fn hook_env(
    stack: &Stack,
    now: DateTime<Utc>,
    status: &str,
    error: Option<&str>,
    point: Option<String>,
) -> Vec<(&'static str, String)> {
    vec![
        ("DRCTL_STACK", stack.name.clone()),
        ("DRCTL_STARTED", now.to_rfc3339()),
        ("DRCTL_STATUS", status.to_string()),
        ("DRCTL_ERROR", error.unwrap_or("").to_string()),
        ("DRCTL_POINT_ID", point.unwrap_or_default()),
    ]
}

/// The pre hooks, then the backup of the sources: the point when one was written, and
/// the error that decides the run (a failed pre hook means no backup at all).
fn back_up<A>(
    session: &mut Session<A>,
    stack: &Stack,
    sources: &[&SourceDef],
    env: &RunEnv<'_>,
    warnings: &mut Vec<String>,
) -> (Option<StackOutcome>, Option<Error>) {
    let result = hooks::run(
        &stack.name,
        &stack.def.hook,
        HookWhen::Pre,
        &hook_env(stack, env.now, "running", None, None),
    )
    .and_then(|w| {
        warnings.extend(w);
        stack::backup(
            session,
            stack,
            sources,
            env.hostname,
            env.now,
            env.interrupt,
            env.progress,
        )
    });
    let (backup, error) = match result {
        Ok(outcome) => {
            let err = outcome.failures.last().cloned().map(Error::Failed);
            (Some(outcome), err)
        }
        Err(e) => (None, Some(e)),
    };
    if let Some(b) = &backup {
        warnings.extend(b.warnings.iter().cloned());
    }
    (backup, error)
}

/// The post hooks, told how the backup went. Their failure fails a run that had
/// succeeded; after an earlier error it is only a warning, so that error is the one
/// reported.
fn run_post_hooks(
    stack: &Stack,
    env: &RunEnv<'_>,
    backup: Option<&StackOutcome>,
    error: &mut Option<Error>,
    warnings: &mut Vec<String>,
) {
    let post_env = hook_env(
        stack,
        env.now,
        status_of(error.as_ref()).as_str(),
        error.as_ref().map(|e| e.to_string()).as_deref(),
        backup.map(|b| b.id.to_string()),
    );
    match hooks::run(&stack.name, &stack.def.hook, HookWhen::Post, &post_env) {
        Ok(w) => warnings.extend(w),
        Err(e) => {
            if error.is_none() {
                *error = Some(e);
            } else {
                warnings.push(e.to_string());
            }
        }
    }
}

/// Records a run's rows in the repository and the catalog; a repository that cannot
/// take them (the reason the run failed, often) is a warning: the catalog has them.
fn commit_runs<A>(
    session: &mut Session<A>,
    runs: Vec<RunRecord>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    match session.commit_runs(&RunLog { runs }) {
        Err(e @ (Error::Store { .. } | Error::Io { .. })) => {
            warnings.push(format!(
                "the run history could not be stored in the repository: {e}"
            ));
            Ok(())
        }
        other => other,
    }
}

/// A row of the run history per source of the point, as its record says it went.
fn record_sources(stack: &Stack, now: DateTime<Utc>, backup: &StackOutcome) -> Vec<RunRecord> {
    let mut rows = Vec::new();
    for r in &backup.point.sources {
        let st = match r.status {
            crate::repo::point::SourceStatus::Ok => RunStatus::Ok,
            crate::repo::point::SourceStatus::Failed => RunStatus::Failed,
        };
        rows.push(RunRecord {
            stack: stack.name.clone(),
            source: Some(r.name.clone()),
            started: now,
            ended: now + chrono::Duration::milliseconds(r.duration_ms as i64),
            status: st,
            bytes_read: r.bytes,
            bytes_added: r.bytes_added,
            duration_ms: r.duration_ms,
            error: r.error.clone(),
            point_id: Some(backup.id),
        });
    }
    rows
}

/// The recorded status of a run that ended with `error`.
fn status_of(error: Option<&Error>) -> RunStatus {
    match error {
        None => RunStatus::Ok,
        Some(Error::Interrupted) => RunStatus::Interrupted,
        Some(_) => RunStatus::Failed,
    }
}

/// The stack's own row of the run history.
fn record(
    stack: &Stack,
    backup: Option<&StackOutcome>,
    now: DateTime<Utc>,
    started: Instant,
    status: RunStatus,
    error: Option<&Error>,
) -> RunRecord {
    let ms = started.elapsed().as_millis() as u64;
    let sum = |f: fn(&crate::repo::point::SourceRecord) -> u64| {
        backup.map_or(0, |b| b.point.sources.iter().map(f).sum())
    };
    RunRecord {
        stack: stack.name.clone(),
        source: None,
        started: now,
        ended: now + chrono::Duration::milliseconds(ms as i64),
        status,
        bytes_read: sum(|s| s.bytes),
        bytes_added: sum(|s| s.bytes_added),
        duration_ms: ms,
        error: error.map(|e| e.to_string()),
        point_id: backup.map(|b| b.id),
    }
}
