//! The replay and coverage over made-up archives.

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
                timeline: parse_segment(name)
                    .map_or_else(|| u32::from_str_radix(&name[..8], 16).unwrap(), |(t, _)| t),
                partial,
                covers_until: at(covers),
                history: history
                    .iter()
                    .map(|(p, e)| TimelineSwitch {
                        parent: *p,
                        end: e.to_string(),
                    })
                    .collect(),
                system: None,
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
        system: None,
        ended: None,
        wal_in_archive: false,
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
            config: Vec::new(),
        },
    }
}

/// The span from `from` to `to` seconds after 10:00.
fn span(from: u32, to: u32) -> Span {
    Span {
        from: at(from),
        to: at(to),
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
    let h = parse_history("1\t0/3000158\tbefore 2026-11-20\n\n2\t0/5000000\tno recovery target\n");
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
fn a_base_backup_replays_only_the_wal_of_its_own_database_system() {
    let of = |name, covers, system: &str| {
        let mut f = file(name, false, covers, &[]);
        f.id.0[31] = covers as u8;
        f.snapshot.wal.as_mut().unwrap().system = Some(system.into());
        f
    };
    // The server was recreated empty at 20 s: the new system's segments repeat the
    // old names, later.
    let snaps = vec![
        of("000000010000000000000002", 10, "A"),
        of("000000010000000000000003", 15, "A"),
        of("000000010000000000000002", 30, "B"),
        of("000000010000000000000003", 35, "B"),
    ];
    let archive = ArchivedWal::of(&snaps, "s", "db");
    let mut old = point_with_base(1, 1, "0/2000028");
    old.point.sources[0].base.as_mut().unwrap().system = Some("A".into());
    let r = archive.replay(old.point.sources[0].base.as_ref().unwrap());
    let systems: Vec<_> = r.files.iter().map(|s| wal(s).system.clone()).collect();
    assert_eq!(systems, [Some("A".into()), Some("A".into())]);
    assert_eq!(r.end, Some(at(15)));
    let mut new = point_with_base(25, 1, "0/2000028");
    new.point.sources[0].base.as_mut().unwrap().system = Some("B".into());
    let r = archive.replay(new.point.sources[0].base.as_ref().unwrap());
    assert_eq!(r.end, Some(at(35)));
    // Nothing is superseded across systems, and the archive's end is the newest.
    assert!(archive.superseded(&snaps, "s", "db").is_empty());
    assert_eq!(archive.newest().unwrap().covers_until, at(35));
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
    assert_eq!(cov.windows, vec![span(5, 30), span(55, 80)]);
    assert_eq!(
        cov.gaps,
        vec![Gap {
            missing: "000000010000000000000004".into(),
            broken: span(30, 55)
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
fn binary_log_files_replay_in_order_from_the_dumps_position_and_a_missing_one_is_named() {
    assert_eq!(parse_binlog("mysql-bin.000012"), Some(("mysql-bin", 12)));
    assert_eq!(parse_binlog("mysql-bin.index"), None);
    assert_eq!(parse_segment("mysql-bin.1234567"), Some((1, 1_234_567)));
    let mut snaps: Vec<SnapshotEntry> = (1..=6)
        .filter(|s| *s != 3)
        .map(|s| file(&format!("mysql-bin.{s:06}"), s == 6, 10 * s as u32, &[]))
        .collect();
    // An earlier copy of the growing file, superseded by the later one.
    snaps.push(file("mysql-bin.000006", true, 55, &[]));
    let wal = ArchivedWal::of(&snaps, "s", "db");
    let points = vec![
        point_with_base(5, 1, "mysql-bin.000001:342"),
        point_with_base(42, 1, "mysql-bin.000004:1021"),
    ];
    let bases = bases(&points, "db");
    let cov = coverage(&bases, &wal);
    assert_eq!(cov.windows, vec![span(5, 20), span(42, 60)]);
    assert_eq!(cov.gaps.len(), 1);
    assert_eq!(cov.gaps[0].missing, "mysql-bin.000003");
    assert_eq!(cov.last_position.as_deref(), Some("mysql-bin.000006"));
    let (b, r) = plan_replay(&bases, &wal, at(58)).unwrap();
    assert_eq!(b.end, at(42));
    assert_eq!(
        names(&r),
        ["mysql-bin.000004", "mysql-bin.000005", "mysql-bin.000006"]
    );
    let e = plan_replay(&bases, &wal, at(30)).unwrap_err();
    assert!(
        e.starts_with("binary log file mysql-bin.000003 is missing"),
        "{e}"
    );
    // Retention keeps from the oldest kept base's file on.
    let first = ArchivedWal::first_needed(points[1].point.sources[0].base.as_ref().unwrap());
    assert_eq!(first, Some((1, 4)));
    assert!(ArchivedWal::older_than("mysql-bin.000003", first.unwrap()));
    assert!(!ArchivedWal::older_than("mysql-bin.000004", first.unwrap()));
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
    assert_eq!(cov.gaps[0].broken, span(10, 30));
    assert!(ArchivedWal::older_than("000000010000000000000001", (1, 2)));
    assert!(!ArchivedWal::older_than("00000001.history", (1, 2)));
}

#[test]
fn a_base_without_its_wal_restores_only_once_the_archive_reaches_its_end() {
    // Taken from 10:00:20 to 10:00:40 with `-X none`; the archive reaches 10:00:35.
    let mut p = point_with_base(20, 1, "0/2000028");
    let base = p.point.sources[0].base.as_mut().unwrap();
    base.ended = Some(at(40));
    base.wal_in_archive = true;
    let points = vec![point_with_base(5, 1, "0/1000028"), p];
    let all = bases(&points, "db");
    // The recorded end, not the point's time plus the duration (0 here).
    assert_eq!(all[1].end, at(40));
    let archive = |covers: u32| {
        vec![
            file("000000010000000000000001", false, 10, &[]),
            file("000000010000000000000002", true, covers, &[]),
        ]
    };
    let snaps = archive(35);
    let wal = ArchivedWal::of(&snaps, "s", "db");
    let cov = coverage(&all, &wal);
    assert_eq!(cov.windows, vec![span(5, 35)]);
    assert!(cov.gaps.is_empty());
    assert_eq!(plan_replay(&all, &wal, at(30)).unwrap().0.end, at(5));
    // Before the archive reaches its end, the new base is no way to 10:00:40.
    assert!(plan_replay(&all, &wal, at(40)).is_err());
    // Once it does, it is the newest base to start from.
    let snaps = archive(50);
    let wal = ArchivedWal::of(&snaps, "s", "db");
    assert_eq!(coverage(&all, &wal).windows, vec![span(5, 50)]);
    assert_eq!(plan_replay(&all, &wal, at(45)).unwrap().0.end, at(40));

    // A base whose tar holds its WAL restores to its end whatever the archive holds.
    let mut p = point_with_base(20, 1, "0/2000028");
    p.point.sources[0].base.as_mut().unwrap().ended = Some(at(40));
    let points = vec![p];
    let snaps = archive(35);
    let cov = coverage(&bases(&points, "db"), &ArchivedWal::of(&snaps, "s", "db"));
    assert_eq!(cov.windows, vec![span(40, 40)]);
}
