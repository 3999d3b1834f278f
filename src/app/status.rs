//! `status`: each stack against its RPO, the archives, the metrics file.

use chrono::Utc;

use super::{human_bytes, local_time, out, print_json, App};
use crate::catalog::Catalog;
use crate::config::{SourceDef, Stack};
use crate::error::{Error, Result};
use crate::status;

impl App {
    /// Rewrites the metrics file when one is configured; a failure is a warning, never a
    /// failed backup.
    pub(super) fn write_metrics_file(&self, catalog: &Catalog, stacks: &[Stack]) {
        let Some(path) = &self.metrics_file else {
            return;
        };
        let result = self
            .backup_jobs(stacks)
            .and_then(|jobs| status::compute(catalog, stacks, &jobs, Utc::now().max(self.now)))
            .and_then(|mut st| {
                st.copies = crate::copy::state::load(&self.settings.state_dir);
                status::metrics(&st, catalog)
            })
            .and_then(|text| status::write_metrics(path, &text));
        if let Err(e) = result {
            eprintln!("warning: {e}");
        }
    }

    /// `status [STACK...] [--check]`.
    pub(super) fn status(&self, only: &[String], check: bool) -> Result<()> {
        let mut stacks = self.stacks()?;
        for name in only {
            self.find_stack(&stacks, name)?;
        }
        if !only.is_empty() {
            stacks.retain(|s| only.contains(&s.name));
        }
        let jobs = self.backup_jobs(&stacks)?;
        let session = self.open()?;
        let catalog = session.catalog();
        let mut st = status::compute(catalog, &stacks, &jobs, self.now)?;
        self.read_slots(&stacks, &mut st);
        st.copies = crate::copy::state::load(&self.settings.state_dir);
        if let Some(path) = &self.metrics_file {
            status::write_metrics(path, &status::metrics(&st, catalog)?)?;
        }
        if self.json {
            print_json(&serde_json::to_value(&st).expect("json"))?;
        } else if !self.quiet {
            let mut text = format!(
                "{:<20} {:<8} {:>10} {:>8}  {:<19}  {:<19}  {:<10}  {}\n",
                "STACK", "STATE", "AGE", "RPO", "NEXT RUN", "LAST RUN", "ADDED 7D", "LAST DRILL"
            );
            for s in &st.stacks {
                text.push_str(&format!(
                    "{:<20} {:<8} {:>10} {:>8}  {:<19}  {:<19}  {:<10}  {}\n",
                    s.stack,
                    s.health.as_str(),
                    s.age_seconds.map_or("-".into(), age),
                    s.rpo_seconds.map_or("-".into(), age),
                    s.next_run.map_or("-".into(), |t| local_time(&t)),
                    s.last_run.as_ref().map_or("-".into(), |r| format!(
                        "{} {}",
                        local_time(&r.started),
                        r.status.as_str()
                    )),
                    human_bytes(s.added_last_7d),
                    s.last_drill.as_ref().map_or("-".into(), |d| format!(
                        "{} {} ({:.0}s)",
                        local_time(&d.started),
                        d.verdict.as_str(),
                        d.rto_secs
                    ))
                ));
            }
            for s in &st.stacks {
                for src in &s.sources {
                    if s.health == status::Health::Degraded {
                        match (&src.failed, src.last_success) {
                            (Some(why), _) => text.push_str(&format!(
                                "{}/{}: FAILED in its newest run: {why}\n",
                                s.stack, src.source
                            )),
                            (None, None) => text.push_str(&format!(
                                "{}/{}: never backed up\n",
                                s.stack, src.source
                            )),
                            _ => {}
                        }
                    }
                    if let Some(p) = &src.pitr {
                        text.push_str(&pitr_line(&s.stack, &src.source, p));
                    }
                    if let Some(why) = &src.pitr_unavailable {
                        text.push_str(&format!(
                            "{}/{}: PITR unavailable: {why}\n",
                            s.stack, src.source
                        ));
                    }
                }
            }
            text.push_str(&copy_lines(&st));
            text.push_str(&format!(
                "repository: {} in {} pack(s), {} added in the last 7 days\n",
                human_bytes(st.repository_bytes),
                st.repository_packs,
                human_bytes(st.added_last_7d)
            ));
            out(&text)?;
        }
        if check {
            judge(&st)?;
        }
        Ok(())
    }

    /// Adds each point-in-time source's replication slot, as its server reports it, to
    /// the status, and judges the stack again. Best effort: a server or Docker that
    /// cannot be reached leaves the slot unknown (the archive lag still tells).
    fn read_slots(&self, stacks: &[Stack], st: &mut status::Status) {
        if !stacks
            .iter()
            .any(|s| s.def.source.iter().any(SourceDef::archives_log))
        {
            return;
        }
        let Ok(docker) = crate::docker::Docker::connect(self.rt.clone()) else {
            return;
        };
        for (stack, state) in stacks.iter().zip(st.stacks.iter_mut()) {
            for (def, src) in stack.def.source.iter().zip(state.sources.iter_mut()) {
                // A binary log has no slot: the server keeps its files by its own settings.
                let Some(p) = src
                    .pitr
                    .as_mut()
                    .filter(|_| def.kind == crate::config::SourceKind::Postgres)
                else {
                    continue;
                };
                p.slot = crate::source::postgres::wal::WalReceiver::open(&docker, def)
                    .and_then(|r| r.slot())
                    .ok()
                    .flatten();
            }
            let rpo = state.rpo_seconds.map(chrono::Duration::seconds);
            state.health = status::pitr_health(state.health, &state.sources, rpo);
        }
    }
}

/// `95s`, `15m`, `3h`, `2d` for an age in seconds.
fn age(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A point-in-time source's line under the status table.
fn pitr_line(stack: &str, source: &str, p: &status::PitrState) -> String {
    let window = p.window.map_or("none".to_string(), |w| {
        format!("{} to {}", local_time(&w.from), local_time(&w.to))
    });
    let mut line = format!(
        "{stack}/{source}: PITR window {window}; archive lag {}; last WAL {}",
        p.lag_seconds.map_or(
            "- (nothing archived: is `drctl archive` running?)".into(),
            age
        ),
        p.coverage.last_position.as_deref().unwrap_or("-")
    );
    for g in &p.coverage.gaps {
        line.push_str(&format!(
            "; GAP: {} missing, {} to {} not restorable",
            g.missing,
            local_time(&g.broken.from),
            local_time(&g.broken.to)
        ));
    }
    if let Some(s) = &p.slot {
        line.push_str(&format!(
            "; slot {} {} keeps {}{}{}",
            s.name,
            if s.active { "streaming" } else { "idle" },
            human_bytes(s.retained_bytes),
            s.limit_bytes
                .map_or(" (no bound)".into(), |l| format!(" of {}", human_bytes(l))),
            if s.wal_status == "lost" {
                " (LOST: the server dropped WAL the archive lacks)"
            } else {
                ""
            }
        ));
    }
    line.push('\n');
    line
}

/// A line per copy made from this host: its state, lag and bound.
fn copy_lines(st: &status::Status) -> String {
    let mut text = String::new();
    for c in &st.copies {
        let lag = c.lag_seconds(st.now).map_or("never completed".into(), |l| {
            format!("{} behind", crate::human::human_secs(l as f64))
        });
        let state = if c.trouble(st.now).is_some() {
            "LATE"
        } else {
            "OK"
        };
        text.push_str(&format!(
            "copy {} -> {}: {state}, {lag} (bound {}){}\n",
            c.from,
            c.to,
            crate::human::human_secs(c.max_lag_secs as f64),
            c.last_error
                .as_ref()
                .map_or(String::new(), |e| format!("; last run failed: {e}"))
        ));
    }
    text
}

/// `status --check`: an error naming every stack that is not OK and every copy that
/// is behind or failed.
fn judge(st: &status::Status) -> Result<()> {
    let late = st.late();
    let copies: Vec<String> = st.copies.iter().filter_map(|c| c.trouble(st.now)).collect();
    if late.is_empty() && !copies.is_empty() {
        for c in &copies {
            eprintln!("{c}");
        }
        return Err(Error::Failed(format!(
            "{} copy(ies) behind their bound or failed",
            copies.len()
        )));
    }
    if !late.is_empty() {
        for c in &copies {
            eprintln!("{c}");
        }
        for s in &late {
            for src in &s.sources {
                for g in src.pitr.iter().flat_map(|p| p.coverage.gaps.iter()) {
                    eprintln!(
                        "stack {}, source {}: {} {} is missing: {} to {} cannot be restored",
                        s.stack,
                        src.source,
                        crate::pitr::log_file_kind(&g.missing),
                        g.missing,
                        local_time(&g.broken.from),
                        local_time(&g.broken.to)
                    );
                }
            }
        }
        let names: Vec<String> = late
            .iter()
            .map(|s| match s.health {
                status::Health::Degraded => format!(
                    "{} (DEGRADED: {} failed)",
                    s.stack,
                    s.failed_sources.join(", ")
                ),
                h => format!("{} ({})", s.stack, h.as_str()),
            })
            .collect();
        return Err(Error::Failed(format!(
            "{} stack(s) not OK: {}",
            late.len(),
            names.join(", ")
        )));
    }
    Ok(())
}
