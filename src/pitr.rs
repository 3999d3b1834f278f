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
//! Pure functions of the catalog's entries: no I/O, the clock not needed.

mod pick;

pub use pick::{common_windows, pick_time};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::repo::point::{BaseBackup, PointEntry, SourceRecord};
use crate::repo::snapshot::{SnapshotEntry, WalFile};

/// Bytes in a WAL segment (the server default, which the official images keep).
const SEGMENT_BYTES: u64 = 0x100_0000;
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

/// A segment file's timeline and number; `None` for history files and other names.
fn parse_segment(name: &str) -> Option<(u32, u64)> {
    if name.len() != 24 || !name.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let tli = u32::from_str_radix(&name[..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..], 16).ok()?;
    Some((tli, log * SEGMENTS_PER_LOG + seg))
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

/// One source's archived WAL: the best stored copy of each file (a completed one over a
/// growing one, a later growing one over an earlier).
pub struct ArchivedWal {
    files: BTreeMap<String, SnapshotEntry>,
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
        let mut files: BTreeMap<String, SnapshotEntry> = BTreeMap::new();
        for s in snapshots {
            let Some(w) = s.snapshot.wal.as_ref() else {
                continue;
            };
            if s.snapshot.stack != stack || s.snapshot.source.as_deref() != Some(source) {
                continue;
            }
            let rank = |w: &WalFile| (!w.partial, w.covers_until);
            if files
                .get(&w.name)
                .is_none_or(|old| rank(w) > rank(wal(old)))
            {
                files.insert(w.name.clone(), s.clone());
            }
        }
        ArchivedWal { files }
    }

    /// Whether nothing is archived.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The file stored last (the archive's position and how current it is).
    pub fn newest(&self) -> Option<&WalFile> {
        self.files
            .values()
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
                    && s.snapshot
                        .wal
                        .as_ref()
                        .is_some_and(|w| self.files.get(&w.name).is_some_and(|b| b.id != s.id))
            })
            .collect()
    }

    /// The timeline a base backup's replay follows and the timelines on the way, each
    /// with the segment where the next one takes over (`None` for the last).
    fn path(&self, base: &BaseBackup) -> Vec<(u32, Option<u64>)> {
        let start = lsn(&base.wal_start).unwrap_or(0);
        let mut best = vec![(base.timeline, None)];
        for s in self.files.values() {
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
        let path = self.path(base);
        let timeline = path.last().map_or(base.timeline, |p| p.0);
        let mut files: Vec<SnapshotEntry> = path[1..]
            .iter()
            .filter_map(|(tli, _)| self.files.get(&history_name(*tli)).cloned())
            .collect();
        let on_path = |seg: u64| {
            path.iter()
                .find(|(_, switch)| switch.is_none_or(|s| s > seg))
                .map(|(tli, _)| *tli)
        };
        let newest_seg = self
            .files
            .keys()
            .filter_map(|n| parse_segment(n))
            // Segments of a timeline after it was left behind are not on the way.
            .filter(|(tli, seg)| on_path(*seg) == Some(*tli))
            .map(|(_, seg)| seg)
            .max();
        let mut seg = lsn(&base.wal_start).map_or(0, segment_at);
        let mut end = None;
        let mut missing = None;
        while let Some(tli) = on_path(seg) {
            if newest_seg.is_none_or(|n| seg > n) {
                break;
            }
            let name = segment_name(tli, seg);
            let Some(s) = self.files.get(&name) else {
                missing = Some(name);
                break;
            };
            let w = wal(s);
            end = Some(w.covers_until);
            files.push(s.clone());
            if w.partial {
                if newest_seg.is_some_and(|n| n > seg) {
                    missing = Some(name);
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
        Some((base.timeline, segment_at(lsn(&base.wal_start)?)))
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
            Some(Base {
                point: p,
                rec,
                end: p.point.time + chrono::Duration::milliseconds(rec.duration_ms as i64),
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
        let to = replay.end.filter(|e| *e > b.end).unwrap_or(b.end);
        match out.windows.last_mut() {
            Some(last) if b.end <= last.to => last.to = last.to.max(to),
            _ => out.windows.push(Span { from: b.end, to }),
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
            "WAL segment {} is missing from the archive: nothing between {} and {} can be \
             restored",
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
mod tests {
    use super::*;
    use crate::config::SourceKind;
    use crate::repo::id::{BlobId, PointId, SnapshotId};
    use crate::repo::point::{RecoveryPoint, SourceStatus};
    use crate::repo::snapshot::{Snapshot, TimelineSwitch};
    use chrono::TimeZone;

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap() + chrono::Duration::seconds(s as i64)
    }

    /// A stored WAL file of source `db`; `covers` in seconds after 10:00.
    fn file(name: &str, partial: bool, covers: u32, history: &[(u32, &str)]) -> SnapshotEntry {
        let n = (name.len() + covers as usize + partial as usize) as u8;
        let mut id = [n; 32];
        id[..name.len().min(24)].copy_from_slice(&name.as_bytes()[..name.len().min(24)]);
        SnapshotEntry {
            id: SnapshotId(id),
            snapshot: Snapshot {
                time: at(covers),
                stack: "s".into(),
                hostname: "h".into(),
                paths: vec![name.into()],
                source: Some("db".into()),
                tree: BlobId([0; 32]),
                summary: Default::default(),
                drctl_version: "x".into(),
                wal: Some(WalFile {
                    name: name.into(),
                    timeline: u32::from_str_radix(&name[..8], 16).unwrap(),
                    partial,
                    covers_until: at(covers),
                    history: history
                        .iter()
                        .map(|(p, e)| TimelineSwitch {
                            parent: *p,
                            end: e.to_string(),
                        })
                        .collect(),
                }),
            },
        }
    }

    fn point_with_base(ended: u32, timeline: u32, start: &str) -> PointEntry {
        let mut rec = SourceRecord::new("db", SourceKind::Postgres);
        rec.status = SourceStatus::Ok;
        rec.snapshot = Some(SnapshotId([ended as u8; 32]));
        rec.base = Some(BaseBackup {
            file: "base.tar".into(),
            timeline,
            wal_start: start.into(),
        });
        PointEntry {
            id: PointId([ended as u8; 32]),
            point: RecoveryPoint {
                stack: "s".into(),
                time: at(ended),
                hostname: "h".into(),
                sources: vec![rec],
                duration_ms: 0,
                drctl_version: "x".into(),
            },
        }
    }

    fn names(r: &Replay) -> Vec<String> {
        r.files.iter().map(|s| wal(s).name.clone()).collect()
    }

    #[test]
    fn names_and_positions() {
        assert_eq!(lsn("1/2000028"), Some(0x1_0200_0028));
        assert_eq!(
            segment_name(1, segment_at(lsn("1/2000028").unwrap())),
            "000000010000000100000002"
        );
        assert_eq!(parse_segment("0000000200000001000000FF"), Some((2, 0x1FF)));
        assert_eq!(parse_segment("00000002.history"), None);
        let h =
            parse_history("1\t0/3000158\tbefore 2026-11-20\n\n2\t0/5000000\tno recovery target\n");
        assert_eq!(
            h,
            vec![
                TimelineSwitch {
                    parent: 1,
                    end: "0/3000158".into()
                },
                TimelineSwitch {
                    parent: 2,
                    end: "0/5000000".into()
                }
            ]
        );
    }

    #[test]
    fn a_replay_follows_its_timeline_and_takes_the_newest_copy_of_each_segment() {
        let snaps = vec![
            file("000000010000000000000001", false, 5, &[]),
            file("000000010000000000000002", false, 10, &[]),
            file("000000010000000000000003", true, 12, &[]),
            file("000000010000000000000003", true, 15, &[]),
        ];
        let wal = ArchivedWal::of(&snaps, "s", "db");
        let p = point_with_base(1, 1, "0/2000028");
        let r = wal.replay(p.point.sources[0].base.as_ref().unwrap());
        assert_eq!(
            names(&r),
            ["000000010000000000000002", "000000010000000000000003"]
        );
        assert_eq!((r.timeline, r.end, r.missing), (1, Some(at(15)), None));
        assert_eq!(
            wal.superseded(&snaps, "s", "db").len(),
            1,
            "the earlier growing copy"
        );
        assert_eq!(wal.newest().unwrap().covers_until, at(15));
    }

    #[test]
    fn after_a_restore_the_replay_branches_to_the_newer_timeline_at_its_switch() {
        // Timeline 2 branched from 1 inside segment 3; timeline 1 went on to segment 4.
        let snaps = vec![
            file("000000010000000000000002", false, 10, &[]),
            file("000000010000000000000003", false, 20, &[]),
            file("000000010000000000000004", true, 25, &[]),
            file("00000002.history", false, 40, &[(1, "0/3000A00")]),
            file("000000020000000000000003", false, 50, &[]),
            file("000000020000000000000004", true, 60, &[]),
            file("000000010000000000000005", true, 30, &[]),
        ];
        let wal = ArchivedWal::of(&snaps, "s", "db");
        let old = point_with_base(1, 1, "0/2000028");
        let r = wal.replay(old.point.sources[0].base.as_ref().unwrap());
        assert_eq!(
            names(&r),
            [
                "00000002.history",
                "000000010000000000000002",
                "000000020000000000000003",
                "000000020000000000000004"
            ]
        );
        assert_eq!(
            (r.timeline, r.end, r.missing.as_deref()),
            (2, Some(at(60)), None)
        );
        // A base taken after the branch point on timeline 1 cannot follow timeline 2.
        let late = point_with_base(21, 1, "0/4000028");
        let r = wal.replay(late.point.sources[0].base.as_ref().unwrap());
        assert_eq!(names(&r), ["000000010000000000000004"]);
        assert_eq!(r.timeline, 1);
        // A base on timeline 2 replays timeline 2 only.
        let new = point_with_base(45, 2, "0/3000F00");
        let r = wal.replay(new.point.sources[0].base.as_ref().unwrap());
        assert_eq!(
            names(&r),
            ["000000020000000000000003", "000000020000000000000004"]
        );
    }

    #[test]
    fn a_missing_segment_breaks_the_window_until_the_next_base_backup() {
        let mut snaps: Vec<SnapshotEntry> = (1..=8)
            .filter(|s| *s != 4)
            .map(|s| file(&segment_name(1, s), s == 8, 10 * s as u32, &[]))
            .collect();
        snaps.push(file("000000010000000000000003", true, 25, &[]));
        let wal = ArchivedWal::of(&snaps, "s", "db");
        let points = vec![
            point_with_base(5, 1, "0/1000028"),
            point_with_base(55, 1, "0/6000028"),
        ];
        let bases = bases(&points, "db");
        let cov = coverage(&bases, &wal);
        assert_eq!(
            cov.windows,
            vec![
                Span {
                    from: at(5),
                    to: at(30)
                },
                Span {
                    from: at(55),
                    to: at(80)
                }
            ]
        );
        assert_eq!(
            cov.gaps,
            vec![Gap {
                missing: "000000010000000000000004".into(),
                broken: Span {
                    from: at(30),
                    to: at(55)
                }
            }]
        );
        assert_eq!(
            cov.last_position.as_deref(),
            Some("000000010000000000000008")
        );
        // Inside the window of either base: restored; inside the gap: refused, named.
        let (b, r) = plan_replay(&bases, &wal, at(20)).unwrap();
        assert_eq!((b.end, r.files.len()), (at(5), 3));
        let (b, _) = plan_replay(&bases, &wal, at(70)).unwrap();
        assert_eq!(b.end, at(55));
        let e = plan_replay(&bases, &wal, at(40)).unwrap_err();
        assert!(
            e.starts_with("WAL segment 000000010000000000000004 is missing"),
            "{e}"
        );
        let e = plan_replay(&bases, &wal, at(90)).unwrap_err();
        assert!(e.contains("outside its recovery window"), "{e}");
        let e = plan_replay(&bases, &wal, at(2)).unwrap_err();
        assert!(e.contains("outside its recovery window"), "{e}");
    }

    #[test]
    fn a_gap_at_the_end_reaches_to_the_archives_newest_time() {
        let snaps = vec![
            file("000000010000000000000001", false, 10, &[]),
            file("000000010000000000000003", true, 30, &[]),
        ];
        let wal = ArchivedWal::of(&snaps, "s", "db");
        let points = vec![point_with_base(1, 1, "0/1000028")];
        let cov = coverage(&bases(&points, "db"), &wal);
        assert_eq!(cov.gaps.len(), 1);
        assert_eq!(
            cov.gaps[0].broken,
            Span {
                from: at(10),
                to: at(30)
            }
        );
        assert!(ArchivedWal::older_than("000000010000000000000001", (1, 2)));
        assert!(!ArchivedWal::older_than("00000001.history", (1, 2)));
    }
}
