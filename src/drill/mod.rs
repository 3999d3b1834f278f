//! Restore drills: the newest (or a chosen) recovery point of a stack restored into
//! scratch resources, checked, and timed against the stack's RPO and RTO.
//!
//! A drill never touches the stack's own containers, networks, volumes or paths: database
//! sources load into throwaway servers ([`scratch`]) and volumes into scratch directories,
//! and the containers a volume source stops at backup time are left alone. The result
//! (phases, checks, verdict) is stored in the repository under `drills/`, encrypted like
//! everything else, so the history survives the host.

pub mod checks;
pub mod junit;
pub mod report;
mod run;
pub mod scratch;
mod window;

pub use run::run;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::drill::Drill;
use crate::config::Stack;
use crate::progress::Progress;
pub use crate::repo::drill::{CheckResult, DrillResult, Phase, PitrDrill, SourceResult, Verdict};

/// What a drill needs besides the repository.
pub struct DrillRequest<'a> {
    /// The drill.
    pub drill: &'a Drill,
    /// Its stack's configuration.
    pub stack: &'a Stack,
    /// What time to restore to.
    pub at: DrillAt,
    /// The clock.
    pub now: DateTime<Utc>,
    /// This host's name.
    pub hostname: String,
    /// Where scratch directories go.
    pub state_dir: &'a Path,
    /// Leave the scratch resources in place.
    pub keep: bool,
    /// Set by SIGINT/SIGTERM.
    pub interrupt: Arc<AtomicBool>,
    /// Progress displays on a terminal.
    pub progress: &'a dyn Fn(&'static str) -> Progress,
}

/// What time a drill restores to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillAt {
    /// Each source's newest point.
    Newest,
    /// This time: point-in-time sources replayed to it, the others from their newest
    /// point at or before it.
    Time(DateTime<Utc>),
    /// A whole second drawn at random from the window every point-in-time source can
    /// reach (without one: between the stack's oldest and newest points).
    Random,
}

/// The restored source whose recovery point lags its schedule most.
#[derive(Debug, PartialEq)]
struct PointLag {
    source: String,
    point_time: DateTime<Utc>,
    /// The newest slot its schedule had reached, if it has a schedule.
    slot: Option<DateTime<Utc>>,
    age: chrono::Duration,
}

/// How old each restored source's point was at the newest slot at which its schedule
/// wanted a backup, as of `reference` (without a schedule: at `reference` itself); the
/// worst source. Judged per source, since a source may have a schedule of its own. A
/// backup that silently stopped shows up, and a drill that starts while the slot's own
/// backup is still running is not blamed for it.
fn point_lag(
    stack: &Stack,
    sources: &[SourceResult],
    reference: DateTime<Utc>,
) -> Option<PointLag> {
    let jobs = crate::schedule::jobs(std::slice::from_ref(stack)).unwrap_or_default();
    sources
        .iter()
        .filter_map(|s| {
            let point_time = s.point_time?;
            let slot = jobs
                .iter()
                .find(|j| crate::schedule::job_sources(j, stack).contains(&s.name))
                .and_then(|j| j.latest_slot(reference));
            let age = (slot.unwrap_or(reference) - point_time).max(chrono::Duration::zero());
            Some(PointLag {
                source: s.name.clone(),
                point_time,
                slot,
                age,
            })
        })
        .max_by_key(|l| l.age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 20, h, m, s).unwrap()
    }

    fn restored(name: &str, point_time: DateTime<Utc>) -> SourceResult {
        SourceResult {
            name: name.into(),
            kind: SourceKind::Volume,
            point: None,
            point_time: Some(point_time),
            image: None,
            bytes: 0,
            seconds: 0.0,
            error: None,
            replayed_to: None,
        }
    }

    fn stack(toml: &str) -> Stack {
        crate::config::parse_stack_file(Path::new("s.toml"), toml)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn point_age_is_judged_against_each_sources_newest_scheduled_slot() {
        let s = stack(
            "[stack.shop]\nschedule = \"*/15 * * * *\"\n\
             [[stack.shop.source]]\nname = \"db\"\nkind = \"volume\"\npath = \"/d\"\n\
             [[stack.shop.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"/f\"\nschedule = \"0 3 * * *\"\n",
        );
        let minutes = |l: PointLag| (l.source, l.age.num_seconds());
        // The 10:00 backups finished at 10:00:20; a drill at 10:15:30, while the 10:15 backup
        // still runs, is 14m40s behind its schedule, not 15m10s.
        let sources = [
            restored("db", at(10, 0, 20)),
            restored("files", at(3, 0, 5)),
        ];
        assert_eq!(
            point_lag(&s, &sources, at(10, 15, 30)).map(minutes),
            Some(("db".into(), 14 * 60 + 40))
        );
        // Backups of db stopped after 10:00: by 12:07 the 12:00 slot shows it; the daily
        // files source is on time, and judged against its own 03:00 slot.
        let lag = point_lag(&s, &sources, at(12, 7, 0)).unwrap();
        assert_eq!(lag.slot, Some(at(12, 0, 0)));
        assert_eq!(minutes(lag), ("db".into(), 2 * 3600 - 20));
        // The daily source's point missing a day shows on its own.
        let sources = [
            restored("db", at(12, 0, 10)),
            restored("files", at(3, 0, 5) - chrono::Duration::days(1)),
        ];
        assert_eq!(
            point_lag(&s, &sources, at(12, 7, 0)).map(minutes),
            Some(("files".into(), 86400 - 5))
        );
        // A point newer than the slot (a manual backup) is not negative.
        let sources = [restored("db", at(10, 5, 0))];
        assert_eq!(
            point_lag(&s, &sources, at(10, 7, 0)).map(minutes),
            Some(("db".into(), 0))
        );
        // No schedule: the age at the reference time.
        let s = stack("[stack.shop]\n[[stack.shop.source]]\nname = \"db\"\nkind = \"volume\"\npath = \"/d\"\n");
        let sources = [restored("db", at(10, 0, 20))];
        assert_eq!(
            point_lag(&s, &sources, at(10, 15, 30)).map(minutes),
            Some(("db".into(), 15 * 60 + 10))
        );
    }
}
