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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::backup::{self, BackupRequest};
use crate::config::{SourceDef, Stack};
use crate::docker::Docker;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::repo::id::SnapshotId;
use crate::repo::snapshot::WalFile;
use crate::session::Session;
use crate::source::postgres::wal::{Received, WalReceiver};

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
const IDLE_REFRESH: Duration = Duration::from_secs(10);

/// The growing segment as last stored.
struct StoredPartial {
    name: String,
    /// The database system it came from: a server recreated empty repeats the names.
    system: Option<String>,
    size: u64,
    mtime: String,
    snapshot: SnapshotId,
    at: Instant,
}

/// Runs until interrupted; returns `Error::Interrupted` then.
pub fn run<A>(session: &mut Session<A>, docker: &Docker, req: &ArchiveRequest<'_>) -> Result<()> {
    let receiver = WalReceiver::open(docker, req.def)?;
    let limit = req.def.wal_keep_limit();
    for note in receiver.prepare(limit)? {
        eprintln!("warning: {note}");
    }
    let stop = AtomicBool::new(false);
    let streaming = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let receiving = scope.spawn(|| keep_receiving(&receiver, limit, &stop, &streaming));
        let result = ship_until_interrupted(session, &receiver, req, &streaming);
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

fn ship_until_interrupted<A>(
    session: &mut Session<A>,
    receiver: &WalReceiver,
    req: &ArchiveRequest<'_>,
    streaming: &AtomicBool,
) -> Result<()> {
    let mut partial: Option<StoredPartial> = None;
    let mut last_warning = String::new();
    while !req.interrupt.load(Ordering::SeqCst) {
        let t0 = Instant::now();
        match ship_received(session, receiver, req, &mut partial, streaming) {
            Ok(()) => last_warning.clear(),
            Err(Error::Interrupted) => break,
            // The server restarting, the store unreachable: said once, tried again.
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
    receiver: &WalReceiver,
    req: &ArchiveRequest<'_>,
    partial: &mut Option<StoredPartial>,
    streaming: &AtomicBool,
) -> Result<()> {
    for f in receiver.list()? {
        let system = receiver.system_of(&f);
        if f.is_final() {
            store(session, receiver, req, &f, system.clone())?;
            receiver.remove(&f)?;
            // The completed segment replaces its growing copies.
            if let Some(p) =
                partial.take_if(|p| p.name == f.name && p.system == system && !f.partial)
            {
                session.forget_snapshot(&p.snapshot)?;
            }
            continue;
        }
        let same = partial
            .as_ref()
            .is_some_and(|p| p.name == f.name && p.system == system);
        let unchanged = same
            && partial
                .as_ref()
                .is_some_and(|p| p.size == f.size && p.mtime == f.mtime);
        let age = partial.as_ref().map(|p| p.at.elapsed());
        // Unchanged while the receiver streams: nothing was written since. Stored again
        // now and then all the same, so that the archive says how current it is.
        let due = match age {
            None => true,
            Some(a) if unchanged => a >= IDLE_REFRESH && streaming.load(Ordering::SeqCst),
            Some(a) => a >= req.partial_every,
        };
        if !due {
            continue;
        }
        let at = Instant::now();
        let snapshot = store(session, receiver, req, &f, system.clone())?;
        let stored = StoredPartial {
            name: f.name.clone(),
            system,
            size: f.size,
            mtime: f.mtime.clone(),
            snapshot,
            at,
        };
        // An earlier copy of the same segment is superseded; the last copy of another
        // is not: that segment may never be completed (its server was replaced, or
        // restored onto a new timeline), and the copy holds its last transactions.
        if let Some(old) = partial.replace(stored).filter(|_| same) {
            session.forget_snapshot(&old.snapshot)?;
        }
    }
    Ok(())
}

/// Stores one received file as a snapshot of the source.
fn store<A>(
    session: &mut Session<A>,
    receiver: &WalReceiver,
    req: &ArchiveRequest<'_>,
    f: &Received,
    system: Option<String>,
) -> Result<SnapshotId> {
    // Everything the server had sent before this moment is in what is read next.
    let covers_until = Utc::now();
    let history = if f.name.ends_with(".history") {
        crate::pitr::parse_history(&receiver.read(f)?)
    } else {
        Vec::new()
    };
    let outcome = backup::run(
        session,
        BackupRequest {
            stack: req.stack.name.clone(),
            paths: Vec::new(),
            hostname: req.hostname.clone(),
            now: covers_until,
            interrupt: req.interrupt.clone(),
            progress: req.progress,
            streams: vec![receiver.stream(f)],
            exclude: Vec::new(),
            source: Some(req.def.name.get_ref().clone()),
            wal: Some(WalFile {
                name: f.name.clone(),
                timeline: f.timeline,
                partial: f.partial,
                covers_until,
                history,
                system,
            }),
        },
    )?;
    if !f.partial {
        tracing::info!("stored {} as snapshot {}", f.name, outcome.id.short());
    }
    Ok(outcome.id)
}
