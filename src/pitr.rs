//! Point-in-time recovery over what the archive holds: which stored WAL files carry a
//! base backup forward to a time, on which timeline, and where the archive breaks.
//!
//! PostgreSQL names each WAL segment `TTTTTTTTLLLLLLLLSSSSSSSS` (timeline, then the
//! segment number, 16 MiB segments) and each new timeline's history `TTTTTTTT.history`,
//! listing the timelines before it and where each ended. A base backup replays from the
//! segment of its start position: along its own timeline, then along the newest timeline
//! that branched from it after that position (what `recovery_target_timeline =
//! 'latest'` would follow). At a branch the newer timeline's copy of the segment holds
//! the older one's part too, so it is the one replayed. A segment missing between the
//! base and later archived segments ends the replay there: a gap (WAL-G's `wal-verify`
//! calls it `LOST_SEGMENTS`).
//!
//! A MariaDB/MySQL binary log fits the same model: its files (`mysql-bin.000007`) are
//! numbered like segments on a single timeline, a base (the dumps) records the file and
//! offset it replays from (`mysql-bin.000007:342`), and the file being written is stored
//! again as it grows, like the growing segment.
//!
//! Pure functions of the catalog's entries: no I/O, the clock not needed.

mod pick;

pub use pick::{common_windows, pick_time};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::repo::point::{BaseBackup, PointEntry, SourceRecord};
use crate::repo::snapshot::{SnapshotEntry, WalFile};

/// Bytes in a WAL segment (the server default, which the official images keep).
pub const SEGMENT_BYTES: u64 = 0x100_0000;
/// Segments per 4 GiB "log" (the middle eight digits of a segment name).
const SEGMENTS_PER_LOG: u64 = 0x1_0000_0000 / SEGMENT_BYTES;

/// A WAL position (`X/Y`) as a number.
pub fn lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

/// The segment number holding a position.
fn segment_at(pos: u64) -> u64 {
    pos / SEGMENT_BYTES
}

/// Seconds since the epoch with a fraction, as PostgreSQL's `extract(epoch …)` and
/// `find -printf %T@` print them.
pub fn parse_epoch(text: &str) -> Option<DateTime<Utc>> {
    let secs: f64 = text.trim().parse().ok()?;
    DateTime::from_timestamp_micros((secs * 1e6).round() as i64)
}

/// A binary log file's name prefix and number (`mysql-bin.000007`).
pub fn parse_binlog(name: &str) -> Option<(&str, u64)> {
    let (prefix, number) = name.rsplit_once('.')?;
    if prefix.is_empty() || number.len() < 6 || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((prefix, number.parse().ok()?))
}

/// The binary log file a base backup's position (`mysql-bin.000007:342`) names: its
/// prefix and number; `None` for a WAL position.
pub fn binlog_start(base: &BaseBackup) -> Option<(&str, u64)> {
    let (file, _) = base.wal_start.rsplit_once(':')?;
    parse_binlog(file)
}

/// Whether `name` is a WAL segment's file name.
pub fn is_wal_segment(name: &str) -> bool {
    name.len() == 24 && name.chars().all(|c| c.is_ascii_hexdigit())
}

/// The log file a base backup replays from: the segment its WAL start lies in, or the
/// binary log file its position names.
fn start_of(base: &BaseBackup) -> Option<u64> {
    match binlog_start(base) {
        Some((_, n)) => Some(n),
        None => lsn(&base.wal_start).map(segment_at),
    }
}

/// What a log file is, for messages: "WAL segment" or "binary log file".
pub fn log_file_kind(name: &str) -> &'static str {
    if parse_binlog(name).is_some() {
        "binary log file"
    } else {
        "WAL segment"
    }
}

/// The name of log file `seg` on timeline `tli`, as the base's server names its files.
fn file_name(base: &BaseBackup, tli: u32, seg: u64) -> String {
    match binlog_start(base) {
        Some((prefix, _)) => format!("{prefix}.{seg:06}"),
        None => segment_name(tli, seg),
    }
}

/// A log file's timeline and number (a WAL segment, or a binary log file on timeline 1);
/// `None` for history files and other names.
fn parse_segment(name: &str) -> Option<(u32, u64)> {
    if !is_wal_segment(name) {
        return parse_binlog(name).map(|(_, n)| (1, n));
    }
    let (tli, log, seg) = segment_parts(name)?;
    Some((tli, log * SEGMENTS_PER_LOG + seg))
}

/// A WAL segment's name as its three numbers: timeline, log, and segment within the
/// log (how many segments a log holds depends on the server's segment size).
pub fn segment_parts(name: &str) -> Option<(u32, u64, u64)> {
    if !is_wal_segment(name) {
        return None;
    }
    let tli = u32::from_str_radix(&name[..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..], 16).ok()?;
    Some((tli, log, seg))
}

/// The file name of segment `seg` on timeline `tli`.
pub fn segment_name(tli: u32, seg: u64) -> String {
    format!(
        "{tli:08X}{:08X}{:08X}",
        seg / SEGMENTS_PER_LOG,
        seg % SEGMENTS_PER_LOG
    )
}

/// The history file of a timeline.
fn history_name(tli: u32) -> String {
    format!("{tli:08X}.history")
}

/// Parses a timeline history file: `parent<TAB>X/Y<TAB>reason` lines.
pub fn parse_history(text: &str) -> Vec<crate::repo::snapshot::TimelineSwitch> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let parent = f.next()?.parse().ok()?;
            let end = f.next()?;
            lsn(end)?;
            Some(crate::repo::snapshot::TimelineSwitch {
                parent,
                end: end.to_string(),
            })
        })
        .collect()
}

/// One source's archived WAL: per database system, the best stored copy of each file (a
/// completed one over a growing one, a later growing one over an earlier). A server
/// recreated empty under the same container name is a new system whose WAL names repeat
/// the old one's; a base backup replays only its own system's WAL.
pub struct ArchivedWal {
    systems: BTreeMap<Option<String>, Files>,
}

/// WAL files by name.
type Files = BTreeMap<String, SnapshotEntry>;

/// Which of two copies of a file to keep.
fn rank(w: &WalFile) -> (bool, DateTime<Utc>) {
    (!w.partial, w.covers_until)
}

/// Adds a copy unless a better one of the file is there.
fn keep_best(files: &mut Files, s: &SnapshotEntry) {
    let w = wal(s);
    if files
        .get(&w.name)
        .is_none_or(|old| rank(w) > rank(wal(old)))
    {
        files.insert(w.name.clone(), s.clone());
    }
}

/// What replaying onto one base backup can reach.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The timeline recovery follows (`recovery_target_timeline`).
    pub timeline: u32,
    /// The files to supply, history files first, then the segments in order.
    pub files: Vec<SnapshotEntry>,
    /// The time the last segment covers: the newest time this replay can reach.
    pub end: Option<DateTime<Utc>>,
    /// The first segment missing before segments archived after it: a gap.
    pub missing: Option<String>,
}

fn wal(s: &SnapshotEntry) -> &WalFile {
    s.snapshot
        .wal
        .as_ref()
        .expect("only WAL snapshots are kept")
}

impl ArchivedWal {
    /// The WAL snapshots of `stack`'s `source` among `snapshots`.
    pub fn of(snapshots: &[SnapshotEntry], stack: &str, source: &str) -> ArchivedWal {
        let mut systems: BTreeMap<Option<String>, Files> = BTreeMap::new();
        for s in snapshots {
            let Some(w) = s.snapshot.wal.as_ref() else {
                continue;
            };
            if s.snapshot.stack != stack || s.snapshot.source.as_deref() != Some(source) {
                continue;
            }
            keep_best(systems.entry(w.system.clone()).or_default(), s);
        }
        ArchivedWal { systems }
    }

    /// The files a base backup of `system` can replay: its system's, and those stored
    /// before drctl recorded systems (`None`: then every system's, as before).
    fn files_for(&self, system: Option<&str>) -> Files {
        let mut files = Files::new();
        for (sys, fs) in &self.systems {
            if system.is_none() || sys.is_none() || sys.as_deref() == system {
                for s in fs.values() {
                    keep_best(&mut files, s);
                }
            }
        }
        files
    }

    /// Whether nothing is archived.
    pub fn is_empty(&self) -> bool {
        self.systems.values().all(BTreeMap::is_empty)
    }

    /// The file stored last (the archive's position and how current it is).
    pub fn newest(&self) -> Option<&WalFile> {
        self.systems
            .values()
            .flat_map(BTreeMap::values)
            .map(wal)
            .filter(|w| parse_segment(&w.name).is_some())
            .max_by_key(|w| (w.covers_until, w.name.clone()))
    }

    /// Every stored copy the archive does not need: growing copies of a segment that is
    /// stored complete, and earlier growing copies of one still growing.
    pub fn superseded<'a>(
        &self,
        snapshots: &'a [SnapshotEntry],
        stack: &str,
        source: &str,
    ) -> Vec<&'a SnapshotEntry> {
        snapshots
            .iter()
            .filter(|s| {
                s.snapshot.stack == stack
                    && s.snapshot.source.as_deref() == Some(source)
                    && s.snapshot.wal.as_ref().is_some_and(|w| {
                        self.systems
                            .get(&w.system)
                            .and_then(|fs| fs.get(&w.name))
                            .is_some_and(|b| b.id != s.id)
                    })
            })
            .collect()
    }

    /// The timeline a base backup's replay follows and the timelines on the way, each
    /// with the segment where the next one takes over (`None` for the last).
    fn path(files: &Files, base: &BaseBackup) -> Vec<(u32, Option<u64>)> {
        let start = lsn(&base.wal_start).unwrap_or(0);
        let mut best = vec![(base.timeline, None)];
        for s in files.values() {
            let w = wal(s);
            if w.timeline <= best.last().map_or(0, |b| b.0) || w.history.is_empty() {
                continue;
            }
            // The base's timeline must be an ancestor that went on past the base's start.
            let Some(from) = w.history.iter().position(|h| h.parent == base.timeline) else {
                continue;
            };
            if lsn(&w.history[from].end).is_none_or(|end| end < start) {
                continue;
            }
            let mut path: Vec<(u32, Option<u64>)> = w.history[from..]
                .iter()
                .map(|h| (h.parent, lsn(&h.end).map(segment_at)))
                .collect();
            path.push((w.timeline, None));
            best = path;
        }
        best
    }

    /// What a replay onto `base` can reach: the segments from the one its start lies in,
    /// each on the timeline the replay is on there, up to the first one missing.
    pub fn replay(&self, base: &BaseBackup) -> Replay {
        let stored = self.files_for(base.system.as_deref());
        let path = Self::path(&stored, base);
        let timeline = path.last().map_or(base.timeline, |p| p.0);
        let mut files: Vec<SnapshotEntry> = path[1..]
            .iter()
            .filter_map(|(tli, _)| stored.get(&history_name(*tli)).cloned())
            .collect();
        let on_path = |seg: u64| {
            path.iter()
                .find(|(_, switch)| switch.is_none_or(|s| s > seg))
                .map(|(tli, _)| *tli)
        };
        let by_number: BTreeMap<(u32, u64), &SnapshotEntry> = stored
            .iter()
            .filter_map(|(n, s)| Some((parse_segment(n)?, s)))
            .collect();
        let newest_seg = by_number
            .keys()
            // Segments of a timeline after it was left behind are not on the way.
            .filter(|(tli, seg)| on_path(*seg) == Some(*tli))
            .map(|(_, seg)| *seg)
            .max();
        let mut seg = start_of(base).unwrap_or(0);
        let mut end = None;
        let mut missing = None;
        while let Some(tli) = on_path(seg) {
            if newest_seg.is_none_or(|n| seg > n) {
                break;
            }
            let Some(s) = by_number.get(&(tli, seg)) else {
                missing = Some(file_name(base, tli, seg));
                break;
            };
            let w = wal(s);
            end = Some(w.covers_until);
            files.push((*s).clone());
            if w.partial {
                if newest_seg.is_some_and(|n| n > seg) {
                    missing = Some(w.name.clone());
                }
                break;
            }
            seg += 1;
        }
        Replay {
            timeline,
            files,
            end,
            missing,
        }
    }

    /// The oldest segment a base backup needs (for retention): its start's segment on its
    /// own timeline.
    pub fn first_needed(base: &BaseBackup) -> Option<(u32, u64)> {
        Some((base.timeline, start_of(base)?))
    }

    /// Whether a stored WAL file is older than everything `bases` need: a segment before
    /// the oldest base's first one. History files are always kept (they are tiny, and a
    /// later timeline's history names the earlier ones).
    pub fn older_than(name: &str, oldest: (u32, u64)) -> bool {
        parse_segment(name).is_some_and(|(_, seg)| seg < oldest.1)
    }
}

/// A base backup of a source, as the points record it.
#[derive(Debug, Clone)]
pub struct Base<'a> {
    /// The point holding it.
    pub point: &'a PointEntry,
    /// The source's record in it.
    pub rec: &'a SourceRecord,
    /// When the backup ended: the earliest time it restores to.
    pub end: DateTime<Utc>,
}

/// Every base backup of `source` in `points`, oldest first.
pub fn bases<'a>(points: &'a [PointEntry], source: &str) -> Vec<Base<'a>> {
    let mut out: Vec<Base<'a>> = points
        .iter()
        .filter_map(|p| {
            let rec = p
                .point
                .source(source)
                .filter(|r| r.status == crate::repo::point::SourceStatus::Ok && r.base.is_some())?;
            let base = rec.base.as_ref()?;
            Some(Base {
                point: p,
                rec,
                end: base.ended.unwrap_or_else(|| {
                    p.point.time + chrono::Duration::milliseconds(rec.duration_ms as i64)
                }),
            })
        })
        .collect();
    out.sort_by_key(|b| b.end);
    out
}

/// Where a source can be restored to, and where not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    /// Spans of time a restore reaches, oldest first, not overlapping.
    pub windows: Vec<Span>,
    /// Missing segments and the time each leaves unreachable.
    pub gaps: Vec<Gap>,
    /// The newest archived segment.
    pub last_position: Option<String>,
    /// The time the archive reaches.
    pub archived_until: Option<DateTime<Utc>>,
}

/// A span of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// From.
    pub from: DateTime<Utc>,
    /// To.
    pub to: DateTime<Utc>,
}

/// A missing segment and the span it breaks: from the time the archive reaches before it
/// to the next base backup after it (or the archive's end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The missing segment's file name.
    pub missing: String,
    /// The span no restore reaches.
    pub broken: Span,
}

/// The recovery window of a source from its base backups and archived WAL.
pub fn coverage(bases: &[Base<'_>], wal: &ArchivedWal) -> Coverage {
    let newest = wal.newest();
    let mut out = Coverage {
        last_position: newest.map(|w| w.name.clone()),
        archived_until: newest.map(|w| w.covers_until),
        ..Coverage::default()
    };
    for (i, b) in bases.iter().enumerate() {
        let base = b.rec.base.as_ref().expect("bases have one");
        let replay = wal.replay(base);
        // A base whose tar holds its WAL restores to its end by itself; one whose WAL is
        // in the archive only, once the archive reaches its end.
        let reaches = replay.end.filter(|e| *e >= b.end);
        let to = reaches.unwrap_or(b.end);
        if reaches.is_some() || !base.wal_in_archive {
            match out.windows.last_mut() {
                Some(last) if b.end <= last.to => last.to = last.to.max(to),
                _ => out.windows.push(Span { from: b.end, to }),
            }
        }
        if let Some(missing) = replay.missing {
            let next = bases[i + 1..].iter().map(|n| n.end).find(|e| *e > to);
            let until = next.or(out.archived_until).unwrap_or(to);
            if until > to && !out.gaps.iter().any(|g| g.missing == missing) {
                out.gaps.push(Gap {
                    missing,
                    broken: Span {
                        from: to,
                        to: until,
                    },
                });
            }
        }
    }
    out
}

/// The recovery window of `stack`'s `source` from the catalog's points and snapshots.
pub fn source_coverage(
    points: &[PointEntry],
    snapshots: &[SnapshotEntry],
    stack: &str,
    source: &str,
) -> Coverage {
    coverage(
        &bases(points, source),
        &ArchivedWal::of(snapshots, stack, source),
    )
}

/// The base backup and WAL that restore a source to `t`: the newest base before `t`
/// whose replay reaches it. An error message names the window, or the missing segment
/// and the span it breaks.
pub fn plan_replay<'a>(
    bases: &[Base<'a>],
    wal: &ArchivedWal,
    t: DateTime<Utc>,
) -> std::result::Result<(Base<'a>, Replay), String> {
    for b in bases.iter().rev().filter(|b| b.end <= t) {
        let replay = wal.replay(b.rec.base.as_ref().expect("bases have one"));
        if replay.end.is_some_and(|e| e >= t) {
            return Ok((b.clone(), replay));
        }
    }
    let cov = coverage(bases, wal);
    if let Some(g) = cov
        .gaps
        .iter()
        .find(|g| g.broken.from < t && t < g.broken.to)
    {
        return Err(format!(
            "{} {} is missing from the archive: nothing between {} and {} can be restored",
            log_file_kind(&g.missing),
            g.missing,
            crate::timespec::local_time(&g.broken.from),
            crate::timespec::local_time(&g.broken.to)
        ));
    }
    if wal.is_empty() {
        return Err("no WAL is archived for it: is `drctl archive` running?".into());
    }
    let windows: Vec<String> = cov
        .windows
        .iter()
        .map(|w| {
            format!(
                "{} to {}",
                crate::timespec::local_time(&w.from),
                crate::timespec::local_time(&w.to)
            )
        })
        .collect();
    Err(format!(
        "{} is outside its recovery window, {}",
        crate::timespec::local_time(&t),
        if windows.is_empty() {
            "which is empty (no base backup)".to_string()
        } else {
            windows.join(" and ")
        }
    ))
}

#[cfg(test)]
mod tests;
