//! Scheduling: which jobs are due at a given moment, from their cron expressions and their
//! last successful runs. Everything takes the clock as an argument, so `run --due` is a
//! pure function of (configuration, run history, now) and tests can drive time.

pub mod install;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::catalog::History;
use crate::config::drill::Drill;
use crate::config::{parse_cron, Stack};

/// A failed attempt is not retried before this long after it started, so that a stack
/// whose database is down is not hammered (and its alerts not repeated) every minute.
pub const RETRY_AFTER: Duration = Duration::minutes(10);

/// One scheduled job: a whole stack's backup, one source with a schedule of its own, or a
/// restore drill of a stack.
#[derive(Debug, Clone)]
pub struct Job {
    /// The stack (a drill's: the stack it restores).
    pub stack: String,
    /// The source, when it is scheduled on its own; `None`: the stack's other sources.
    pub source: Option<String>,
    /// The drill, when the job is a restore drill rather than a backup.
    pub drill: Option<String>,
    /// The cron expression as written.
    pub expr: String,
    schedule: cron::Schedule,
    /// The zone the expression is read in.
    pub tz: Tz,
}

impl Job {
    /// Makes a job from an expression already checked by the configuration parser.
    pub fn new(stack: &str, source: Option<&str>, expr: &str, tz: Tz) -> Result<Job, String> {
        Ok(Job {
            stack: stack.to_string(),
            source: source.map(str::to_string),
            drill: None,
            expr: expr.to_string(),
            schedule: parse_cron(expr)?,
            tz,
        })
    }

    /// `stack`, `stack/source` or `drill NAME`, for messages and lists.
    pub fn name(&self) -> String {
        match (&self.drill, &self.source) {
            (Some(d), _) => format!("drill {d}"),
            (None, Some(s)) => format!("{}/{s}", self.stack),
            (None, None) => self.stack.clone(),
        }
    }

    /// The newest slot at or before `now`.
    pub fn latest_slot(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.tz);
        // `after` is exclusive; a slot exactly at `now` counts as reached.
        let probe = local + Duration::nanoseconds(1);
        self.schedule
            .after(&probe)
            .next_back()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The first slot after `now`.
    pub fn next_slot(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&now.with_timezone(&self.tz))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The slot to run for now, if any: the latest slot has no successful run started at
    /// or after it, and no failed one in the last `RETRY_AFTER`. Missed slots coalesce:
    /// only the latest one counts.
    pub fn due(&self, history: History, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let slot = self.latest_slot(now)?;
        if history.last_success.is_some_and(|t| t >= slot) {
            return None;
        }
        if history
            .last_failure
            .is_some_and(|t| t >= slot && now - t < RETRY_AFTER)
        {
            return None;
        }
        Some(slot)
    }
}

/// Every job of the configured stacks: one per stack with a schedule (covering its sources
/// that have none of their own) and one per source with its own schedule.
pub fn jobs(stacks: &[Stack]) -> Result<Vec<Job>, String> {
    let mut out = Vec::new();
    for s in stacks {
        let tz: Tz = match &s.def.timezone {
            Some(t) => t
                .get_ref()
                .parse()
                .map_err(|_| format!("unknown time zone {}", t.get_ref()))?,
            None => Tz::UTC,
        };
        let own: Vec<_> = s
            .def
            .source
            .iter()
            .filter(|d| d.schedule.is_some())
            .collect();
        if let Some(expr) = &s.def.schedule {
            if own.len() < s.def.source.len() || s.def.source.is_empty() {
                out.push(Job::new(&s.name, None, expr.get_ref(), tz)?);
            }
        }
        for d in own {
            let expr = d.schedule.as_ref().expect("filtered");
            out.push(Job::new(
                &s.name,
                Some(d.name.get_ref()),
                expr.get_ref(),
                tz,
            )?);
        }
    }
    Ok(out)
}

/// A job per drill with a schedule. A drill's history is its stored results: one that
/// ran, whatever its verdict, is done for its slot (a FAIL is an answer, not a reason to
/// run again every minute).
pub fn drill_jobs(drills: &[Drill]) -> Result<Vec<Job>, String> {
    drills
        .iter()
        .filter_map(|d| d.schedule.as_ref().map(|expr| (d, expr)))
        .map(|(d, expr)| {
            let mut job = Job::new(&d.stack, None, expr, d.timezone)?;
            job.drill = Some(d.name.clone());
            Ok(job)
        })
        .collect()
}

/// The sources a job runs: its own source, or the stack's sources without a schedule of
/// their own.
pub fn job_sources(job: &Job, stack: &Stack) -> Vec<String> {
    match &job.source {
        Some(s) => vec![s.clone()],
        None => stack
            .def
            .source
            .iter()
            .filter(|d| d.schedule.is_none())
            .map(|d| d.name.get_ref().clone())
            .collect(),
    }
}

/// The due jobs and their slots, oldest slot first (the job that waited longest runs
/// first when several are due at once).
pub fn due_jobs(
    jobs: &[Job],
    history: impl Fn(&Job) -> History,
    now: DateTime<Utc>,
) -> Vec<(&Job, DateTime<Utc>)> {
    let mut due: Vec<_> = jobs
        .iter()
        .filter_map(|j| j.due(history(j), now).map(|slot| (j, slot)))
        .collect();
    due.sort_by_key(|(j, slot)| (*slot, j.name()));
    due
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn job(expr: &str, tz: Tz) -> Job {
        Job::new("shop", None, expr, tz).unwrap()
    }

    #[test]
    fn every_15_minutes_runs_once_per_slot() {
        let j = job("*/15 * * * *", Tz::UTC);
        let mut h = History {
            last_success: Some(utc(2026, 11, 20, 9, 40)),
            last_failure: None,
        };
        // 10:07: the 10:00 slot has no success: due once, for 10:00.
        assert_eq!(
            j.due(h, utc(2026, 11, 20, 10, 7)),
            Some(utc(2026, 11, 20, 10, 0))
        );
        h.last_success = Some(utc(2026, 11, 20, 10, 7));
        // Not again at 10:08 or 10:14 ...
        assert_eq!(j.due(h, utc(2026, 11, 20, 10, 8)), None);
        assert_eq!(
            j.due(h, Utc.with_ymd_and_hms(2026, 11, 20, 10, 14, 59).unwrap()),
            None
        );
        // ... until 10:15 exactly.
        assert_eq!(
            j.due(h, utc(2026, 11, 20, 10, 15)),
            Some(utc(2026, 11, 20, 10, 15))
        );
        assert_eq!(
            j.next_slot(utc(2026, 11, 20, 10, 7)),
            Some(utc(2026, 11, 20, 10, 15))
        );
    }

    #[test]
    fn missed_slots_coalesce_into_one_catch_up_run() {
        let j = job("*/15 * * * *", Tz::UTC);
        let h = History {
            last_success: Some(utc(2026, 11, 20, 2, 0)),
            last_failure: None,
        };
        // The host was down from 02:05 to 09:50: one run, for the latest slot only.
        let now = utc(2026, 11, 20, 9, 50);
        assert_eq!(j.due(h, now), Some(utc(2026, 11, 20, 9, 45)));
        // A job that never ran is due at once.
        assert_eq!(
            j.due(History::default(), now),
            Some(utc(2026, 11, 20, 9, 45))
        );
    }

    #[test]
    fn daily_in_moscow_runs_at_local_midnight_across_the_new_year() {
        let tz: Tz = "Europe/Moscow".parse().unwrap();
        let j = job("0 0 * * *", tz);
        // Moscow is UTC+3: local midnight of 2027-01-01 is 2026-12-31 21:00 UTC.
        let new_year = utc(2026, 12, 31, 21, 0);
        let h = History {
            last_success: Some(utc(2026, 12, 30, 21, 0)),
            last_failure: None,
        };
        assert_eq!(j.due(h, utc(2026, 12, 31, 20, 59)), None);
        assert_eq!(j.next_slot(utc(2026, 12, 31, 12, 0)), Some(new_year));
        assert_eq!(j.due(h, new_year), Some(new_year));
        let h = History {
            last_success: Some(new_year),
            last_failure: None,
        };
        assert_eq!(j.due(h, utc(2027, 1, 1, 20, 0)), None);
        assert_eq!(j.next_slot(new_year), Some(utc(2027, 1, 1, 21, 0)));
    }

    #[test]
    fn a_failure_is_retried_after_a_pause_not_every_minute() {
        let j = job("0 * * * *", Tz::UTC);
        let h = History {
            last_success: Some(utc(2026, 11, 20, 9, 0)),
            last_failure: Some(utc(2026, 11, 20, 10, 0)),
        };
        assert_eq!(j.due(h, utc(2026, 11, 20, 10, 5)), None);
        assert_eq!(
            j.due(h, utc(2026, 11, 20, 10, 10)),
            Some(utc(2026, 11, 20, 10, 0))
        );
        // A failure before the slot does not hold the new slot back.
        let h = History {
            last_success: None,
            last_failure: Some(utc(2026, 11, 20, 9, 59)),
        };
        assert_eq!(
            j.due(h, utc(2026, 11, 20, 10, 1)),
            Some(utc(2026, 11, 20, 10, 0))
        );
    }

    #[test]
    fn due_jobs_come_oldest_slot_first() {
        let jobs = vec![
            Job::new("a", None, "*/15 * * * *", Tz::UTC).unwrap(),
            Job::new("b", None, "0 * * * *", Tz::UTC).unwrap(),
        ];
        let due = due_jobs(&jobs, |_| History::default(), utc(2026, 11, 20, 10, 20));
        let names: Vec<_> = due.iter().map(|(j, s)| (j.name(), *s)).collect();
        assert_eq!(
            names,
            vec![
                ("b".to_string(), utc(2026, 11, 20, 10, 0)),
                ("a".to_string(), utc(2026, 11, 20, 10, 15)),
            ]
        );
    }
}
