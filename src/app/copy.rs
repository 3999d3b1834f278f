//! `copy`: the objects one repository lacks, from another; no key, no catalog.

use std::time::Instant;

use serde_json::json;

use crate::cli::CopyArgs;
use crate::copy::{self, CopyOptions};
use crate::error::{Error, Result};
use crate::human::human_bytes;
use crate::notify::{Event, Notice, Notifier};
use crate::repo::layout::Objects;
use crate::settings::parse_retention;
use crate::store::s3::LockMode;

use super::{hostname, print_json, App};

impl App {
    pub(super) fn copy(&self, a: &CopyArgs) -> Result<()> {
        let from_at = match &a.from {
            Some(f) => self.settings.remote(f)?,
            None => self.settings.location(),
        };
        let mut to_at = self.settings.remote(&a.to)?;
        if let Some(period) = &a.object_lock {
            let mode = match &a.object_lock_mode {
                Some(m) => m.parse().map_err(Error::Usage)?,
                None => LockMode::Compliance,
            };
            to_at.object_lock = Some(parse_retention(period, mode).map_err(Error::Usage)?);
        }
        if from_at.url.trim_end_matches('/') == to_at.url.trim_end_matches('/')
            && from_at.endpoint == to_at.endpoint
        {
            return Err(Error::Usage(format!(
                "--from and --to are the same repository ({})",
                from_at.url
            )));
        }
        let from = Objects::new(self.backend_at(&from_at, false)?);
        let to = Objects::new(self.backend_at(&to_at, !a.dry_run)?);
        let started = self.now;
        let t0 = Instant::now();
        let result = self.copy_between(a, &from, &to);
        if !a.dry_run {
            let max_lag = to_at
                .max_lag
                .as_deref()
                .and_then(|l| crate::timespec::parse_duration(l).ok())
                .map_or(copy::state::DEFAULT_MAX_LAG_SECS, |d| d.num_seconds());
            let outcome = match &result {
                Ok(done) => Ok(*done),
                Err(e) => Err(e.to_string()),
            };
            let (f, t) = (from.describe(), to.describe());
            let state_dir = &self.settings.state_dir;
            if let Err(e) = copy::state::record(state_dir, &f, &t, started, outcome, max_lag) {
                eprintln!("warning: recording the copy's state: {e}");
            }
            if let Some(n) = Notifier::new(to_at.notify.as_ref()) {
                let (event, status, error) = match &result {
                    Ok(_) => (Event::Success, "ok", None),
                    Err(e) => (Event::Failure, "failed", Some(e.to_string())),
                };
                let what = format!("copy {f} -> {t}");
                let mut notice = Notice::new(event, &what, &hostname(), started, status, error);
                notice.duration_ms = Some(t0.elapsed().as_millis() as u64);
                notice.bytes_added = result.as_ref().ok().map(|(_, bytes)| *bytes);
                for w in n.send(&notice) {
                    eprintln!("warning: {w}");
                }
            }
        }
        result.map(drop)
    }

    /// Plans and runs one copy; the objects and bytes written.
    fn copy_between(&self, a: &CopyArgs, from: &Objects, to: &Objects) -> Result<(usize, u64)> {
        let t0 = Instant::now();
        let plan = self.rt.block_on(copy::plan(from, to))?;
        if !self.quiet && !self.json {
            eprintln!(
                "copy of repository {} from {} to {}: {} object(s), {} to copy; {} already there{}",
                &plan.repo_id[..plan.repo_id.len().min(8)],
                from.describe(),
                to.describe(),
                plan.objects(),
                human_bytes(plan.bytes()),
                plan.present,
                if plan.write_config {
                    " (a new copy: its config first)"
                } else {
                    ""
                }
            );
        }
        if a.dry_run {
            if self.json {
                print_json(&json!({
                    "dry_run": true,
                    "objects": plan.objects(),
                    "bytes": plan.bytes(),
                    "present": plan.present,
                    "write_config": plan.write_config,
                }))?;
            }
            return Ok((0, 0));
        }
        self.rt.block_on(to.check_writable())?;
        let progress = self.progress("copying");
        progress.set_total(plan.bytes());
        let opts = CopyOptions {
            jobs: a.jobs as usize,
            read_back: a.read_back,
        };
        let report = self.rt.block_on(copy::execute(
            &plan,
            from,
            to,
            &opts,
            &self.interrupt,
            &|n| progress.add_bytes(n),
        ));
        progress.finish();
        let report = report?;
        let secs = t0.elapsed().as_secs_f64();
        for v in &report.vanished {
            eprintln!("note: {v} left the source during the copy (a prune there); not copied");
        }
        if self.json {
            print_json(&json!({
                "copied": report.copied,
                "bytes": report.bytes,
                "present": plan.present,
                "wrote_config": report.wrote_config,
                "damaged": report.damaged,
                "vanished": report.vanished,
                "seconds": secs,
            }))?;
        } else if !self.quiet {
            eprintln!(
                "copied {} object(s), {} in {secs:.1}s",
                report.copied,
                human_bytes(report.bytes)
            );
        }
        if !report.damaged.is_empty() {
            for d in &report.damaged {
                eprintln!("damage: {d}");
            }
            return Err(Error::Damage(format!(
                "{} damaged object(s) in the source were not copied; everything else was \
                 (run `drctl check` on the source)",
                report.damaged.len()
            )));
        }
        Ok((report.copied, report.bytes))
    }
}
