//! The commands of unattended operation: run, daemon, schedule, forget, prune.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;

use super::drill::verdicts;
use super::{local_time, out, print_json, App};
use crate::catalog::History;
use crate::catalog::{Catalog, RunStatus};
use crate::cli::{InstallArgs, PruneArgs};
use crate::config::drill::Drill;
use crate::config::{SourceDef, Stack};
use crate::error::{Error, IoContext, Result};
use crate::schedule::{self, install, Job};
use crate::session::{Session, WriteOnly};

impl App {
    /// The backup jobs of the stacks (what status judges against the RPO).
    pub(super) fn backup_jobs(&self, stacks: &[Stack]) -> Result<Vec<Job>> {
        schedule::jobs(stacks).map_err(Error::Config)
    }

    /// Every backup and drill job of the configuration.
    fn jobs(&self, stacks: &[Stack], drills: &[Drill]) -> Result<Vec<Job>> {
        let mut jobs = self.backup_jobs(stacks)?;
        jobs.extend(schedule::drill_jobs(drills).map_err(Error::Config)?);
        Ok(jobs)
    }

    /// What is known of a job's past runs.
    fn job_history(&self, catalog: &Catalog, stacks: &[Stack], job: &Job) -> Result<History> {
        if let Some(d) = &job.drill {
            return catalog.drill_history(d);
        }
        let stack = self.find_stack(stacks, &job.stack)?;
        catalog.job_history(
            &job.stack,
            job.source.as_deref(),
            &schedule::job_sources(job, stack),
        )
    }

    /// Runs one job: a backup (recorded in the run history) or a drill (its result
    /// stored). Errors of the job itself come back in the inner result.
    fn run_one<A>(
        &self,
        session: &mut Session<A>,
        stacks: &[Stack],
        drills: &[Drill],
        job: &Job,
        now: chrono::DateTime<Utc>,
    ) -> Result<Result<()>> {
        if let Some(name) = &job.drill {
            let drill = drills
                .iter()
                .find(|d| &d.name == name)
                .expect("drill jobs come from these drills");
            // A drill reads data: a write-only key fails this job, not the others.
            return Ok(session
                .fork_readable()
                .and_then(|mut s| self.run_drills(&mut s, stacks, &[drill], None, false, now))
                .and_then(|r| verdicts(&r)));
        }
        let stack = self.find_stack(stacks, &job.stack)?;
        let only = schedule::job_sources(job, stack);
        let outcome = self.run_job(session, stack, &only, now)?;
        Ok(self.report_run(outcome))
    }

    /// `run --due`: every due job once, oldest slot first. Exit: 1 if any failed, else 3
    /// if any was skipped, else 0.
    pub(super) fn run_due(&self) -> Result<()> {
        let (stacks, drills) = self.drills()?;
        let jobs = self.jobs(&stacks, &drills)?;
        let mut session = self.open()?;
        let due = self.due_now(session.catalog(), &stacks, &jobs, self.now)?;
        if !due.is_empty() {
            self.writable(session.repo())?;
        }
        let mut worst: Option<Error> = None;
        for (job, slot) in due {
            if self.interrupt.load(Ordering::SeqCst) {
                return Err(Error::Interrupted);
            }
            if !self.quiet && !self.json {
                eprintln!("running {} (due since {})", job.name(), local_time(&slot));
            }
            let result = self.run_one(&mut session, &stacks, &drills, job, self.now)?;
            if let Err(e) = result {
                if matches!(e, Error::Interrupted) {
                    self.write_metrics_file(session.catalog(), &stacks);
                    return Err(e);
                }
                eprintln!("error: {e}");
                let replace = match (&worst, &e) {
                    (None, _) => true,
                    (Some(Error::Locked(_)), f) => !matches!(f, Error::Locked(_)),
                    _ => false,
                };
                if replace {
                    worst = Some(e);
                }
            }
        }
        self.watch_archives(session.catalog(), &stacks, Utc::now().max(self.now));
        self.write_metrics_file(session.catalog(), &stacks);
        match worst {
            None => Ok(()),
            Some(Error::Locked(m)) => Err(Error::Locked(format!("{m} (and possibly others)"))),
            Some(_) => Err(Error::Failed(
                "one or more due jobs failed (see above)".into(),
            )),
        }
    }

    fn due_now<'a>(
        &self,
        catalog: &Catalog,
        stacks: &[Stack],
        jobs: &'a [Job],
        now: chrono::DateTime<Utc>,
    ) -> Result<Vec<(&'a Job, chrono::DateTime<Utc>)>> {
        let mut histories = Vec::new();
        for j in jobs {
            histories.push(self.job_history(catalog, stacks, j)?);
        }
        let history = |j: &Job| {
            let i = jobs
                .iter()
                .position(|x| std::ptr::eq(x, j))
                .expect("job of the list");
            histories[i]
        };
        Ok(schedule::due_jobs(jobs, history, now))
    }

    /// `daemon`: runs jobs as they come due (at most `max` at once, one per stack), on
    /// the real clock; SIGTERM or SIGINT aborts running jobs cleanly (their containers
    /// restarted, no point recorded) and ends it.
    pub(super) fn daemon(&self, max: usize) -> Result<()> {
        let mut session = self.open()?;
        self.writable(session.repo())?;
        let (mut stacks, mut drills) = self.drills()?;
        eprintln!(
            "drctl daemon: {} stack(s), at most {max} job(s) at once",
            stacks.len()
        );
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<(String, RunStatus)>();
        let mut aborted = false;
        std::thread::scope(|scope| -> Result<()> {
            let mut running: Vec<String> = Vec::new();
            let mut last_watch = Instant::now();
            loop {
                while let Ok((stack, status)) = done_rx.try_recv() {
                    running.retain(|s| *s != stack);
                    aborted |= status == RunStatus::Interrupted;
                }
                if self.interrupt.load(Ordering::SeqCst) {
                    if running.is_empty() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                // Edits to the stack files apply without a restart; a broken edit keeps
                // the last good configuration.
                match self.drills() {
                    Ok((s, d)) => (stacks, drills) = (s, d),
                    Err(e) => eprintln!("warning: keeping the previous configuration: {e}"),
                }
                let now = Utc::now();
                session.refresh()?;
                let jobs = self.jobs(&stacks, &drills)?;
                for (job, _slot) in self.due_now(session.catalog(), &stacks, &jobs, now)? {
                    if running.len() >= max || running.contains(&job.stack) {
                        continue;
                    }
                    running.push(job.stack.clone());
                    // Each job on a catalog connection of its own.
                    let (fork, tx, job) = (session.fork(), done_tx.clone(), job.clone());
                    let (stacks, drills) = (stacks.clone(), drills.clone());
                    scope.spawn(move || {
                        let status = self.daemon_job(fork, &stacks, &drills, &job, now);
                        let _ = tx.send((job.stack.clone(), status));
                    });
                }
                // The archives need no look every second.
                if last_watch.elapsed() >= Duration::from_secs(10) {
                    self.watch_archives(session.catalog(), &stacks, now);
                    last_watch = Instant::now();
                }
                self.write_metrics_file(session.catalog(), &stacks);
                // Wake at the next whole second: slots are at least a second apart.
                for _ in 0..20 {
                    if self.interrupt.load(Ordering::SeqCst) || !done_rx.is_empty() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Ok(())
        })?;
        self.write_metrics_file(session.catalog(), &stacks);
        eprintln!("drctl daemon: stopped");
        if aborted {
            return Err(Error::Interrupted);
        }
        Ok(())
    }

    fn daemon_job(
        &self,
        session: Result<Session<WriteOnly>>,
        stacks: &[Stack],
        drills: &[Drill],
        job: &Job,
        now: chrono::DateTime<Utc>,
    ) -> RunStatus {
        let name = job.name();
        let result = session.and_then(|mut s| self.run_one(&mut s, stacks, drills, job, now)?);
        match result {
            Ok(()) => {
                eprintln!("{name}: ok");
                RunStatus::Ok
            }
            Err(e) => {
                eprintln!("error: {name}: {e}");
                match e {
                    Error::Interrupted => RunStatus::Interrupted,
                    Error::Locked(_) => RunStatus::Skipped,
                    _ => RunStatus::Failed,
                }
            }
        }
    }

    /// `schedule list`.
    pub(super) fn schedule_list(&self) -> Result<()> {
        let (stacks, drills) = self.drills()?;
        let jobs = self.jobs(&stacks, &drills)?;
        let session = self.open()?;
        let catalog = session.catalog();
        let mut rows = Vec::new();
        for j in &jobs {
            let h = self.job_history(catalog, &stacks, j)?;
            rows.push((j, h, j.next_slot(self.now), j.due(h, self.now).is_some()));
        }
        if self.json {
            let v: Vec<_> = rows
                .iter()
                .map(|(j, h, next, due)| {
                    json!({"job": j.name(), "stack": j.stack, "source": j.source, "drill": j.drill, "schedule": j.expr,
                           "timezone": j.tz.name(), "last_success": h.last_success,
                           "next_run": next, "due": due})
                })
                .collect();
            return print_json(&serde_json::Value::Array(v));
        }
        let mut text = format!(
            "{:<24} {:<16} {:<14} {:<19}  {:<19}\n",
            "JOB", "SCHEDULE", "TIMEZONE", "LAST SUCCESS", "NEXT RUN"
        );
        for (j, h, next, due) in rows {
            text.push_str(&format!(
                "{:<24} {:<16} {:<14} {:<19}  {}{}\n",
                j.name(),
                j.expr,
                j.tz.name(),
                h.last_success.map_or("never".into(), |t| local_time(&t)),
                next.map_or("-".into(), |t| local_time(&t)),
                if due { "  (due now)" } else { "" }
            ));
        }
        out(&text)
    }

    /// `schedule install --systemd|--cron [--dry-run]`.
    pub(super) fn schedule_install(&self, a: &InstallArgs) -> Result<()> {
        let exe = std::env::current_exe().ctx(|| "finding the drctl binary".into())?;
        let mut args = Vec::new();
        if let Some(c) = &self.settings.config_path {
            args.extend(["--config".to_string(), c.display().to_string()]);
        }
        if let Some(m) = &self.metrics_file {
            args.extend(["--metrics-file".to_string(), m.display().to_string()]);
        }
        let inv = install::Invocation {
            exe: exe.display().to_string(),
            args,
        };
        // Stacks whose continuous archive must run.
        let archives: Vec<String> = self
            .stacks()?
            .into_iter()
            .filter(|s| s.def.source.iter().any(SourceDef::archives_log))
            .map(|s| s.name)
            .collect();
        if a.systemd {
            let mut files = vec![
                (
                    a.unit_dir.join("drctl.service"),
                    install::systemd_service(&inv),
                ),
                (a.unit_dir.join("drctl.timer"), install::systemd_timer()),
            ];
            if !archives.is_empty() {
                files.push((
                    a.unit_dir.join("drctl-archive@.service"),
                    install::systemd_archive_service(&inv),
                ));
            }
            for (path, text) in &files {
                if a.dry_run {
                    out(&format!("# {}\n{text}\n", path.display()))?;
                } else {
                    std::fs::write(path, text).ctx(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
            }
            if !a.dry_run {
                let units: Vec<String> = std::iter::once("drctl.timer".to_string())
                    .chain(
                        archives
                            .iter()
                            .map(|s| format!("drctl-archive@{s}.service")),
                    )
                    .collect();
                eprintln!(
                    "now: systemctl daemon-reload && systemctl enable --now {}",
                    units.join(" ")
                );
            }
            return Ok(());
        }
        let lock_dir = self.settings.state_dir.display().to_string();
        let block = install::cron_block(&inv, &archives, &lock_dir);
        let current = match &a.crontab {
            Some(p) => match std::fs::read_to_string(p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(Error::io(format!("reading {}", p.display()), e)),
            },
            None => {
                let o = std::process::Command::new("crontab")
                    .arg("-l")
                    .output()
                    .ctx(|| "running crontab -l".into())?;
                // crontab -l fails when the user has no crontab yet: start from nothing.
                if o.status.success() {
                    String::from_utf8_lossy(&o.stdout).into_owned()
                } else {
                    String::new()
                }
            }
        };
        let merged = install::merge_cron(&current, &block);
        if a.dry_run {
            return out(&merged);
        }
        match &a.crontab {
            Some(p) => {
                let tmp = p.with_extension("drctl-tmp");
                std::fs::write(&tmp, &merged)
                    .and_then(|_| std::fs::rename(&tmp, p))
                    .ctx(|| format!("writing {}", p.display()))?;
                eprintln!("updated {}", p.display());
            }
            None => {
                use std::io::Write as _;
                let mut child = std::process::Command::new("crontab")
                    .arg("-")
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .ctx(|| "running crontab -".into())?;
                child
                    .stdin
                    .take()
                    .expect("piped")
                    .write_all(merged.as_bytes())
                    .ctx(|| "writing the crontab".into())?;
                let st = child.wait().ctx(|| "running crontab -".into())?;
                if !st.success() {
                    return Err(Error::Failed(format!("crontab - exited {st}")));
                }
                eprintln!("updated the crontab");
            }
        }
        Ok(())
    }

    /// `forget [STACK] [--dry-run]`.
    pub(super) fn forget(&self, only: Option<&str>, dry_run: bool) -> Result<()> {
        let stacks = self.stacks()?;
        let chosen: Vec<&Stack> = match only {
            Some(name) => {
                let s = self.find_stack(&stacks, name)?;
                if s.def.keep.is_none() {
                    return Err(Error::Usage(format!(
                        "stack {name} has no [stack.{name}.keep] policy; nothing to decide by"
                    )));
                }
                vec![s]
            }
            None => stacks.iter().filter(|s| s.def.keep.is_some()).collect(),
        };
        let mut session = self.open_for_reading()?;
        if !dry_run {
            self.writable(session.repo())?;
        }
        let mut plans = Vec::new();
        for s in chosen {
            let policy = s.def.keep.as_ref().expect("filtered").get_ref().policy();
            plans.push(crate::forget::plan(session.catalog(), s, &policy)?);
        }
        if !self.json && !self.quiet {
            let mut text = String::new();
            for p in &plans {
                text.push_str(&format!(
                    "stack {}: keep {}, remove {}\n",
                    p.stack,
                    p.items.len() - p.removed(),
                    p.removed()
                ));
                // Archived WAL is hundreds of files a day, run logs one a run: counted,
                // not listed.
                let count = |kind: &str, keep: bool| {
                    p.items
                        .iter()
                        .filter(|i| i.kind == kind && i.keep == keep)
                        .count()
                };
                if count("wal", true) + count("wal", false) > 0 {
                    text.push_str(&format!(
                        "  WAL files: keep {} (from the oldest kept base backup on), remove {}\n",
                        count("wal", true),
                        count("wal", false)
                    ));
                }
                if count("run", false) > 0 {
                    text.push_str(&format!(
                        "  run logs: remove {} (older than the oldest kept point)\n",
                        count("run", false)
                    ));
                }
                for i in p
                    .items
                    .iter()
                    .filter(|i| i.kind != "wal" && i.kind != "run")
                {
                    text.push_str(&format!(
                        "  {} {:<8} {:<8} {}  {}\n",
                        if i.keep { "keep  " } else { "remove" },
                        i.kind,
                        &i.id[..8],
                        local_time(&i.time),
                        i.reasons.join(", ")
                    ));
                }
            }
            out(&text)?;
        }
        let mut removed = 0;
        if !dry_run {
            for p in &plans {
                removed += crate::forget::execute(&mut session, p)?;
            }
        }
        if self.json {
            print_json(&json!({"dry_run": dry_run, "stacks": plans, "removed": removed}))?;
        } else if !self.quiet && !dry_run {
            out(&format!(
                "removed {removed} manifest(s); run `drctl prune` to reclaim their space\n"
            ))?;
        }
        Ok(())
    }

    /// `prune`.
    pub(super) fn prune(&self, a: &PruneArgs) -> Result<()> {
        let grace = crate::timespec::parse_duration(&a.grace)
            .map_err(|e| Error::Usage(format!("--grace: {e}")))?;
        let mut session = self.open_for_reading()?;
        if !a.dry_run {
            self.writable(session.repo())?;
        }
        let report = crate::prune::run(
            &mut session,
            &crate::prune::PruneOptions {
                dry_run: a.dry_run,
                grace,
                repack_threshold: a.repack_threshold as f64 / 100.0,
                force: a.force,
                hostname: super::hostname(),
            },
        )?;
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        if self.json {
            return print_json(&serde_json::to_value(&report).expect("json"));
        }
        if !self.quiet {
            out(&report.describe())?;
        }
        Ok(())
    }
}
