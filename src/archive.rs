//! `drctl archive STACK`: a PostgreSQL source's WAL, shipped to the repository as it is
//! written, for restores to a time between base backups.
//!
//! `pg_receivewal` runs in the database container on a replication slot (see
//! `source::postgres::wal`), restarted whenever it ends (a server restart). Every poll,
//! each completed segment and history file is stored as a snapshot of its own (chunked,
//! deduplicated, encrypted like everything else, its manifest saying which WAL file it
//! is), then removed from the container; the growing segment is stored again whenever it
//! changed, at most every `partial_every`, replacing the copy stored before it, so that
//! the archive trails the server by seconds, not by a 16 MiB segment.
//!
//! A MariaDB/MySQL source's binary log is shipped the same way ([`binlog`]): each file
//! the server has finished once, the one it is writing again as it grows.

mod binlog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::backup::{self, BackupRequest, LogPiece};
use crate::config::{SourceDef, SourceKind, Stack};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::id::SnapshotId;
use crate::repo::snapshot::WalFile;
use crate::session::Session;
use crate::source::postgres::wal::{Position, Received, WalReceiver};

/// What to archive and how often.
pub struct ArchiveRequest<'a> {
    /// The stack.
    pub stack: &'a Stack,
    /// Its PostgreSQL source.
    pub def: &'a SourceDef,
    /// Recorded in the snapshots.
    pub hostname: String,
    /// Set by SIGINT/SIGTERM: the archive stops cleanly.
    pub interrupt: Arc<AtomicBool>,
    /// How often the received files are looked at.
    pub poll: Duration,
    /// The growing segment is stored again at most this often.
    pub partial_every: Duration,
    /// Progress display (hidden for a service).
    pub progress: &'a Progress,
}

/// How often an unchanged growing segment is stored again: the archive's heartbeat.
pub const IDLE_REFRESH: Duration = Duration::from_secs(10);

/// The growing segment as last stored.
struct StoredPartial {
    name: String,
    /// The database system it came from: a server recreated empty repeats the names.
    system: Option<String>,
    size: u64,
    mtime: String,
    snapshot: SnapshotId,
    /// How it was cut: the next copy of the file, or the completed file, follows it.
    cut: Vec<LogPiece>,
    at: Instant,
}

/// A log file's copy just stored.
struct Stored {
    snapshot: SnapshotId,
    cut: Vec<LogPiece>,
}

/// When the server had written what: its position sampled as the archive runs, to date
/// what a copy of the received WAL holds. A copy holding the server's WAL up to position
/// P covers every transaction committed by the last moment the server had written no
/// more than P. The receiver's own clock says nothing of that: one that is behind, or
/// stuck, writes (or keeps) files that look fresh.
struct Coverage {
    /// (when, the server's position then), oldest first.
    samples: std::collections::VecDeque<(DateTime<Utc>, u64)>,
    /// The last copy dated: the position it holds up to, and its time. A copy holding
    /// as much or more covers at least as long.
    dated: Option<(u64, DateTime<Utc>)>,
    /// The newest time the repository's copies covered when the archive started: what it
    /// receives from then on continues them.
    stored: Option<DateTime<Utc>>,
}

impl Coverage {
    fn new(stored: Option<DateTime<Utc>>) -> Coverage {
        Coverage {
            samples: Default::default(),
            dated: None,
            stored,
        }
    }

    fn sample(&mut self, p: &Position) {
        if self.samples.back().is_none_or(|(t, _)| *t < p.at) {
            self.samples.push_back((p.at, p.server));
        }
    }

    /// Until when a copy holding the WAL up to `held` covers; `None` when nothing says.
    fn until(&mut self, held: u64) -> Option<DateTime<Utc>> {
        let reached = self.samples.iter().rposition(|(_, p)| *p <= held);
        let sampled = reached.map(|i| self.samples[i].0);
        let dated = self.dated.filter(|(h, _)| *h <= held).map(|(_, t)| t);
        let until = sampled.max(dated).max(self.stored);
        if let Some(i) = reached {
            // Copies come in the order the WAL does: older samples date none better.
            self.samples.drain(..i);
        }
        if let Some(t) = until {
            self.dated = Some((held, t));
        }
        until
    }

    /// The oldest sample's time: a copy holding less than its position covers less.
    fn oldest(&self) -> Option<DateTime<Utc>> {
        self.samples.front().map(|(t, _)| *t)
    }
}

impl StoredPartial {
    /// Whether it is a copy of file `name` of `system`.
    fn is_of(&self, name: &str, system: &Option<String>) -> bool {
        self.name == name && self.system == *system
    }
}

/// How the last stored copy cut file `name` of `system`, if it is that file's copy.
fn prefix_of(last: Option<&StoredPartial>, name: &str, system: &Option<String>) -> Vec<LogPiece> {
    last.filter(|p| p.is_of(name, system))
        .map(|p| p.cut.clone())
        .unwrap_or_default()
}

/// Runs until interrupted; returns `Error::Interrupted` then.
pub fn run<A>(session: &mut Session<A>, docker: &Docker, req: &ArchiveRequest<'_>) -> Result<()> {
    if req.def.kind == SourceKind::Mysql {
        return binlog::run(session, docker, req);
    }
    let receiver = WalReceiver::open(docker, req.def)?;
    let limit = req.def.wal_keep_limit();
    for note in receiver.prepare(limit)? {
        eprintln!("warning: {note}");
    }
    let snapshots = session.catalog().snapshots(Some(&req.stack.name))?;
    let mut coverage = Coverage::new(
        crate::pitr::ArchivedWal::of(&snapshots, &req.stack.name, req.def.name.get_ref())
            .newest()
            .map(|w| w.covers_until),
    );
    coverage.sample(&receiver.position()?);
    let stop = AtomicBool::new(false);
    let streaming = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let receiving = scope.spawn(|| keep_receiving(&receiver, limit, &stop, &streaming));
        let mut partial = None;
        let result = ship_until_interrupted(req, || {
            let mut look = Look {
                receiver: &receiver,
                coverage: &mut coverage,
                position: None,
            };
            ship_received(session, &mut look, req, &mut partial, &streaming)
        });
        stop.store(true, Ordering::SeqCst);
        // The receiver ends when its walsender is terminated; ask until it has.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !receiving.is_finished() && Instant::now() < deadline {
            let _ = receiver.stop();
            std::thread::sleep(Duration::from_millis(200));
        }
        result
    })
}

/// Keeps `pg_receivewal` running: it ends whenever the server goes away, and starts again
/// (slot and directory made again if a restore replaced them) once it is back.
/// `streaming` says whether it runs now.
fn keep_receiving(receiver: &WalReceiver, limit: u64, stop: &AtomicBool, streaming: &AtomicBool) {
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let received = receiver.prepare(limit).and_then(|notes| {
            for note in notes {
                eprintln!("warning: {note}");
            }
            streaming.store(true, Ordering::SeqCst);
            let ended = receiver.receive();
            streaming.store(false, Ordering::SeqCst);
            ended
        });
        match received {
            Ok(_) if stop.load(Ordering::SeqCst) => return,
            Ok(ended) => eprintln!("note: {ended}; starting it again"),
            Err(e) => eprintln!("warning: WAL receiver: {e}; trying again"),
        }
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(500);
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Ships what there is every poll until interrupted. A failed look (the server
/// restarting, the store unreachable) is said once and tried again.
fn ship_until_interrupted(
    req: &ArchiveRequest<'_>,
    mut ship: impl FnMut() -> Result<()>,
) -> Result<()> {
    let mut last_warning = String::new();
    while !req.interrupt.load(Ordering::SeqCst) {
        let t0 = Instant::now();
        match ship() {
            Ok(()) => last_warning.clear(),
            Err(Error::Interrupted) => break,
            Err(e) => {
                let text = e.to_string();
                if text != last_warning {
                    eprintln!("warning: archive of {}: {text}", req.def.name.get_ref());
                    last_warning = text;
                }
            }
        }
        while t0.elapsed() < req.poll && !req.interrupt.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Err(Error::Interrupted)
}

/// One look at the receive directory: completed files stored and removed, the growing
/// segment stored again when due.
fn ship_received<A>(
    session: &mut Session<A>,
    look: &mut Look<'_>,
    req: &ArchiveRequest<'_>,
    partial: &mut Option<StoredPartial>,
    streaming: &AtomicBool,
) -> Result<()> {
    let receiver = look.receiver;
    for f in receiver.list()? {
        let system = receiver.system_of(&f);
        if f.is_final() {
            let prefix = prefix_of(partial.as_ref(), &f.name, &system);
            let covers = look.covers(&f)?;
            store(session, receiver, req, &f, system.clone(), prefix, covers)?;
            receiver.remove(&f)?;
            // The completed segment replaces its growing copies.
            if let Some(p) = partial.take_if(|p| p.is_of(&f.name, &system) && !f.partial) {
                session.forget_snapshot(&p.snapshot)?;
            }
            continue;
        }
        let growing = Growing {
            name: &f.name,
            system: &system,
            size: f.size,
            mtime: &f.mtime,
        };
        if !growing.due(partial.as_ref(), req, streaming.load(Ordering::SeqCst)) {
            continue;
        }
        let at = Instant::now();
        let prefix = prefix_of(partial.as_ref(), &f.name, &system);
        let covers = look.covers(&f)?;
        let stored = store(session, receiver, req, &f, system.clone(), prefix, covers)?;
        growing.stored(session, partial, stored, at)?;
    }
    Ok(())
}

/// One look at the receive directory, and the server's position taken once in it,
/// before the first copy is read.
struct Look<'a> {
    receiver: &'a WalReceiver,
    coverage: &'a mut Coverage,
    position: Option<Position>,
}

impl Look<'_> {
    /// Until when the copy of `f` about to be read covers (see [`Coverage`]). A file
    /// whose position is not known (a timeline history, one from the server streamed from
    /// before) is dated by its receiver's clock.
    fn covers(&mut self, f: &Received) -> Result<DateTime<Utc>> {
        let p = match self.position {
            Some(p) => p,
            None => {
                let p = self.receiver.position()?;
                self.coverage.sample(&p);
                *self.position.insert(p)
            }
        };
        let by_clock = covers_until(f.is_final(), f.written_at(), Utc::now());
        Ok(match f.holds_until(&p) {
            Some(held) => self.coverage.until(held).unwrap_or_else(|| {
                // Received before anything sampled, into an empty repository.
                self.coverage.oldest().map_or(by_clock, |t| by_clock.min(t))
            }),
            None => by_clock,
        })
    }
}

/// The file the server is writing, as one look found it.
struct Growing<'a> {
    name: &'a str,
    system: &'a Option<String>,
    size: u64,
    /// Its modification time, where the look gives one.
    mtime: &'a str,
}

impl Growing<'_> {
    /// Whether the copy stored last is of this file.
    fn same(&self, last: Option<&StoredPartial>) -> bool {
        last.is_some_and(|p| p.is_of(self.name, self.system))
    }

    /// Whether to store it again now: it changed and the last copy is `partial_every`
    /// old. Unchanged while the server is `live`, nothing was written since; it is stored
    /// again now and then all the same, so that the archive says how current it is.
    fn due(&self, last: Option<&StoredPartial>, req: &ArchiveRequest<'_>, live: bool) -> bool {
        let unchanged =
            self.same(last) && last.is_some_and(|p| p.size == self.size && p.mtime == self.mtime);
        match last.map(|p| p.at.elapsed()) {
            None => true,
            Some(a) if unchanged => a >= IDLE_REFRESH && live,
            Some(a) => a >= req.partial_every,
        }
    }

    /// Records the copy just stored. An earlier copy of the same file is
    /// superseded; the last copy of another is not: that file may never be completed
    /// (its server was replaced, or restored onto a new timeline), and the copy holds its
    /// last transactions.
    fn stored<A>(
        &self,
        session: &mut Session<A>,
        last: &mut Option<StoredPartial>,
        stored: Stored,
        at: Instant,
    ) -> Result<()> {
        let same = self.same(last.as_ref());
        let copy = StoredPartial {
            name: self.name.to_string(),
            system: self.system.clone(),
            size: self.size,
            mtime: self.mtime.to_string(),
            snapshot: stored.snapshot,
            cut: stored.cut,
            at,
        };
        if let Some(old) = last.replace(copy).filter(|_| same) {
            session.forget_snapshot(&old.snapshot)?;
        }
        Ok(())
    }
}

/// Until when a copy of a log file read after `now` holds every transaction, by the
/// clock: for a binary log, `now` is when the server listed its files and sizes, and the
/// copy is read up to that size; for a WAL file whose position is unknown, the receiver
/// must keep up for this to hold (see [`Coverage`] for the others). Everything written
/// before `now` is in it if it is the file being written. A `finished` file holds
/// nothing written after its `last_write`, however late it is stored (the archive
/// behind the server, or started again after a while): it covers until then, or a window
/// would claim what the next file holds, which is not stored yet and perhaps never will
/// be (its container gone).
fn covers_until(
    finished: bool,
    last_write: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    match (finished, last_write) {
        (true, Some(t)) => t.min(now),
        _ => now,
    }
}

/// Stores one received file as a snapshot of the source, following `prefix`, the cut of
/// its copy stored before.
fn store<A>(
    session: &mut Session<A>,
    receiver: &WalReceiver,
    req: &ArchiveRequest<'_>,
    f: &Received,
    system: Option<String>,
    prefix: Vec<LogPiece>,
    covers_until: DateTime<Utc>,
) -> Result<Stored> {
    let history = if f.name.ends_with(".history") {
        crate::pitr::parse_history(&receiver.read(f)?)
    } else {
        Vec::new()
    };
    store_file(
        session,
        req,
        receiver.stream(f),
        WalFile {
            name: f.name.clone(),
            timeline: f.timeline,
            partial: f.partial,
            covers_until,
            history,
            system,
        },
        prefix,
    )
}

/// Stores a log file read from `stream` as a snapshot of the source that says which
/// file it is, following `prefix`, the cut of its copy stored before.
fn store_file<A>(
    session: &mut Session<A>,
    req: &ArchiveRequest<'_>,
    stream: crate::source::StreamFile,
    wal: WalFile,
    prefix: Vec<LogPiece>,
) -> Result<Stored> {
    let (name, partial) = (wal.name.clone(), wal.partial);
    let outcome = backup::run(
        session,
        BackupRequest {
            stack: req.stack.name.clone(),
            paths: Vec::new(),
            hostname: req.hostname.clone(),
            now: wal.covers_until,
            interrupt: req.interrupt.clone(),
            progress: req.progress,
            streams: vec![stream],
            exclude: Vec::new(),
            source: Some(req.def.name.get_ref().clone()),
            wal: Some(wal),
            log_prefix: prefix,
        },
    )?;
    let summary = &outcome.snapshot.summary;
    if !partial {
        tracing::info!("stored {name} as snapshot {}", outcome.id.short());
    }
    tracing::debug!(
        "stored {name}{}: {} bytes read, {} blobs and {} bytes added",
        if partial { " (growing)" } else { "" },
        summary.bytes_read,
        summary.blobs_added,
        summary.bytes_added
    );
    Ok(Stored {
        snapshot: outcome.id,
        cut: outcome.log_cut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(file: &str, partial: bool, written: DateTime<Utc>) -> Received {
        Received {
            file: file.into(),
            name: "000000010000000000000004".into(),
            partial,
            timeline: 1,
            size: 16 << 20,
            mtime: format!("{:.6}", written.timestamp_micros() as f64 / 1e6),
        }
    }

    #[test]
    fn a_completed_file_covers_until_its_last_write_and_the_growing_one_until_now() {
        let now = Utc::now();
        let earlier = now - chrono::Duration::seconds(12);
        let covers_until = |f: &Received, now| covers_until(f.is_final(), f.written_at(), now);
        let covered = |f: &Received| (covers_until(f, now) - earlier).num_milliseconds();
        // Completed twelve seconds before it is stored: what came since is in the next file.
        assert_eq!(
            covered(&received("000000010000000000000004", false, earlier)),
            0
        );
        // Left by a receiver from before (it is not written to any more): the same.
        let left = received("earlier/000000010000000000000004.partial", true, earlier);
        assert_eq!(covered(&left), 0);
        // Being written: everything sent before the copy is read.
        let growing = received("000000010000000000000004.partial", true, earlier);
        assert_eq!(covers_until(&growing, now), now);
        // A clock ahead in the container claims nothing after now.
        let ahead = received(
            "000000010000000000000004",
            false,
            now + chrono::Duration::hours(1),
        );
        assert_eq!(covers_until(&ahead, now), now);
    }
}

#[cfg(test)]
mod coverage_tests {
    use super::*;

    const SEG: u64 = 16 << 20;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn position(s: i64, server: u64, received: u64) -> Position {
        Position {
            at: at(s),
            server,
            received: Some(received),
            segment_size: SEG,
        }
    }

    fn file(name: &str, partial: bool) -> Received {
        Received {
            file: format!("{name}{}", if partial { ".partial" } else { "" }),
            name: name.into(),
            partial,
            timeline: 1,
            size: SEG,
            mtime: "1800000100.0".into(),
        }
    }

    #[test]
    fn a_copy_holds_its_segment_and_a_growing_one_no_more_than_the_receiver_confirmed() {
        let p = position(0, 10 * SEG, 4 * SEG + 100);
        // Segment 4 of log 0 ends at 5 segments; a growing copy holds what was confirmed.
        assert_eq!(
            file("000000010000000000000004", false).holds_until(&p),
            Some(5 * SEG)
        );
        assert_eq!(
            file("000000010000000000000004", true).holds_until(&p),
            Some(4 * SEG + 100)
        );
        // Log 1 starts after 256 segments of 16 MiB.
        assert_eq!(
            file("000000010000000100000000", false).holds_until(&p),
            Some(257 * SEG)
        );
        assert_eq!(file("00000002.history", false).holds_until(&p), None);
    }

    #[test]
    fn a_receiver_behind_the_server_covers_only_what_the_server_had_written_then() {
        let mut c = Coverage::new(Some(at(-100)));
        c.sample(&position(0, 5 * SEG, 5 * SEG));
        c.sample(&position(10, 9 * SEG, 6 * SEG));
        c.sample(&position(20, 12 * SEG, 6 * SEG));
        // The receiver has 6 segments: the server had written more from t=10 on, so a
        // copy covers until t=0, however recently the receiver wrote it.
        assert_eq!(c.until(6 * SEG), Some(at(0)));
        // It catches up: the copy holding 9 segments covers until t=10.
        assert_eq!(c.until(9 * SEG), Some(at(10)));
        // A receiver stuck there covers no later, however long it is looked at.
        c.sample(&position(30, 20 * SEG, 9 * SEG));
        assert_eq!(c.until(9 * SEG), Some(at(10)));
        // Caught up with the newest sample: covers until then.
        assert_eq!(c.until(20 * SEG), Some(at(30)));
    }

    #[test]
    fn wal_from_before_the_first_sample_continues_what_the_repository_covered() {
        let mut c = Coverage::new(Some(at(-100)));
        c.sample(&position(0, 50 * SEG, 10 * SEG));
        assert_eq!(c.until(11 * SEG), Some(at(-100)));
        let mut empty = Coverage::new(None);
        empty.sample(&position(0, 50 * SEG, 10 * SEG));
        assert_eq!(empty.until(11 * SEG), None);
        assert_eq!(empty.oldest(), Some(at(0)));
    }
}
