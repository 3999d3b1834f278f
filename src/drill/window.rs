//! The times a drill can restore a stack to: each point-in-time source's recovery
//! window from its base backups and archived WAL, and how far its archive trails.

use chrono::{DateTime, Duration, Utc};

use crate::config::Stack;
use crate::error::{Error, Result};
use crate::pitr::{self, Coverage, Span};
use crate::repo::point::PointEntry;
use crate::repo::snapshot::SnapshotEntry;

/// A stack's restorable times as the drill found them at its start.
pub(super) struct Windows {
    stack: String,
    /// Each point-in-time source's coverage.
    pitr: Vec<(String, Coverage)>,
    /// The stack's oldest and newest points, for a stack without one.
    points: Option<Span>,
}

impl Windows {
    /// From the stack's points and snapshots.
    pub fn of(stack: &Stack, points: &[PointEntry], snapshots: &[SnapshotEntry]) -> Windows {
        let pitr = stack
            .def
            .source
            .iter()
            .filter(|d| d.archives_log())
            .map(|d| {
                let name = d.name.get_ref();
                let coverage = pitr::source_coverage(points, snapshots, &stack.name, name);
                (name.clone(), coverage)
            })
            .collect();
        let times = points.iter().map(|p| p.point.time);
        let points = match (times.clone().min(), times.max()) {
            (Some(from), Some(to)) => Some(Span { from, to }),
            _ => None,
        };
        Windows {
            stack: stack.name.clone(),
            pitr,
            points,
        }
    }

    /// A whole second drawn (by `r` in `[0, 1)`) from the window every point-in-time
    /// source reaches; for a stack without one, between its oldest and newest points.
    pub fn random_time(&self, r: f64) -> Result<DateTime<Utc>> {
        let windows = if self.pitr.is_empty() {
            pitr::common_windows(&[self.points.into_iter().collect()])
        } else {
            let each: Vec<Vec<Span>> = self.pitr.iter().map(|(_, c)| c.windows.clone()).collect();
            pitr::common_windows(&each)
        };
        pitr::pick_time(&windows, r).ok_or_else(|| {
            Error::Failed(format!(
                "stack {}: no time to drill to at random: {}",
                self.stack,
                if self.pitr.is_empty() {
                    "it has no recovery point"
                } else {
                    "no second lies in the recovery window of every point-in-time source"
                }
            ))
        })
    }

    /// How far the continuous archive trailed `now` (the worst source); `None` without a
    /// point-in-time source or when nothing is archived.
    pub fn archive_lag(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.pitr
            .iter()
            .filter_map(|(_, c)| c.archived_until)
            .map(|t| (now - t).max(Duration::zero()))
            .max()
    }
}
