//! The archive of a MariaDB/MySQL source's binary log. Every poll drctl asks the server
//! which files it has and how far each is written (see `source::mysql::binlog`), stores
//! each finished file it has not stored yet, and stores the file being written again when
//! it grew, at most every `partial_every`. The server keeps its files; drctl only reads.
//!
//! Which files: those not stored yet from the oldest one stored on (per database
//! system). With nothing stored yet, from the file the newest base backup (the dumps)
//! starts in, or else from the file being written: a server's older files were never
//! asked for. A server recreated empty while the archive runs is shipped from its first
//! file.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::Utc;

use super::{
    prefix_of, ship_until_interrupted, store_file, ArchiveRequest, Growing, StoredPartial,
};
use crate::docker::Docker;
use crate::error::Result;
use crate::pitr::parse_binlog;
use crate::repo::snapshot::WalFile;
use crate::session::Session;
use crate::source::mysql::binlog::BinlogReader;

/// What the archive has stored of each database system's files.
struct Shipped {
    /// Finished files stored, by system.
    done: BTreeSet<(Option<String>, String)>,
    /// Per system, the first file number to ship.
    from: Vec<(Option<String>, u64)>,
    /// Where a system first seen at start-up begins: the newest base backup's file per
    /// system, from the recovery points.
    bases: Vec<(Option<String>, u64)>,
    /// The systems seen by this run.
    seen: BTreeSet<Option<String>>,
    /// The file being written, as last stored.
    partial: Option<StoredPartial>,
}

/// Runs until interrupted; returns `Error::Interrupted` then.
pub fn run<A>(session: &mut Session<A>, docker: &Docker, req: &ArchiveRequest<'_>) -> Result<()> {
    let reader = BinlogReader::open(docker, req.def)?;
    let mut shipped = Shipped::load(session, req)?;
    ship_until_interrupted(req, || ship(session, &reader, req, &mut shipped))
}

impl Shipped {
    /// What the repository holds of the source's binary log, and its base backups.
    fn load<A>(session: &Session<A>, req: &ArchiveRequest<'_>) -> Result<Shipped> {
        let (stack, source) = (req.stack.name.as_str(), req.def.name.get_ref().as_str());
        let mut done = BTreeSet::new();
        let mut from: Vec<(Option<String>, u64)> = Vec::new();
        for s in session.catalog().snapshots(Some(stack))? {
            let Some(w) = s
                .snapshot
                .wal
                .filter(|_| s.snapshot.source.as_deref() == Some(source))
            else {
                continue;
            };
            let Some((_, n)) = parse_binlog(&w.name) else {
                continue;
            };
            match from.iter_mut().find(|(sys, _)| *sys == w.system) {
                Some((_, first)) => *first = (*first).min(n),
                None => from.push((w.system.clone(), n)),
            }
            if !w.partial {
                done.insert((w.system, w.name));
            }
        }
        let mut bases: Vec<(Option<String>, u64)> = Vec::new();
        for p in session.catalog().points(stack)? {
            let Some(base) = p.point.source(source).and_then(|r| r.base.as_ref()) else {
                continue;
            };
            let Some((_, n)) = crate::pitr::binlog_start(base) else {
                continue;
            };
            // Points come oldest first: the newest base wins.
            bases.retain(|(sys, _)| *sys != base.system);
            bases.push((base.system.clone(), n));
        }
        Ok(Shipped {
            done,
            from,
            bases,
            seen: BTreeSet::new(),
            partial: None,
        })
    }

    /// The first file number to ship of `system`, whose file being written is `current`.
    fn first(&mut self, system: &Option<String>, current: u64) -> u64 {
        if let Some((_, n)) = self.from.iter().find(|(s, _)| s == system) {
            return *n;
        }
        // New to the repository: at start-up from its newest base (or now); a server
        // that appears while the archive runs from its beginning.
        let n = if self.seen.is_empty() {
            self.bases
                .iter()
                .find(|(s, _)| s == system)
                .map_or(current, |(_, n)| (*n).min(current))
        } else {
            0
        };
        self.from.push((system.clone(), n));
        n
    }
}

/// One look at the server: finished files stored, the file being written stored again
/// when due.
fn ship<A>(
    session: &mut Session<A>,
    reader: &BinlogReader<'_>,
    req: &ArchiveRequest<'_>,
    shipped: &mut Shipped,
) -> Result<()> {
    // Every transaction committed before this moment is within the sizes listed next.
    let looked = Utc::now();
    let listing = reader.list()?;
    let system = listing.system;
    let Some(((current, size), finished)) = listing.files.split_last() else {
        return Ok(());
    };
    let number = |name: &str| parse_binlog(name).map_or(0, |(_, n)| n);
    let first = shipped.first(&system, number(current));
    shipped.seen.insert(system.clone());
    let wal = |name: &str, partial: bool, covers_until| WalFile {
        name: name.to_string(),
        timeline: 1,
        partial,
        covers_until,
        history: Vec::new(),
        system: system.clone(),
    };
    let new: Vec<&(String, u64)> = finished
        .iter()
        .filter(|(name, _)| {
            number(name) >= first && !shipped.done.contains(&(system.clone(), name.clone()))
        })
        .collect();
    let last_writes = match new.is_empty() {
        true => Vec::new(),
        false => reader.last_writes(&new.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>())?,
    };
    for (name, size) in new {
        let written = last_writes.iter().find(|(n, _)| n == name).map(|(_, t)| *t);
        let prefix = prefix_of(shipped.partial.as_ref(), name, &system);
        store_file(
            session,
            req,
            reader.stream(name, *size),
            wal(name, false, super::covers_until(true, written, looked)),
            prefix,
        )?;
        shipped.done.insert((system.clone(), name.clone()));
        // The finished file replaces its growing copies.
        if let Some(p) = shipped.partial.take_if(|p| p.is_of(name, &system)) {
            session.forget_snapshot(&p.snapshot)?;
        }
    }
    let growing = Growing {
        name: current,
        system: &system,
        size: *size,
        mtime: "",
    };
    if !growing.due(shipped.partial.as_ref(), req, true) {
        return Ok(());
    }
    let at = Instant::now();
    let prefix = prefix_of(shipped.partial.as_ref(), current, &system);
    let stored = store_file(
        session,
        req,
        reader.stream(current, *size),
        wal(current, true, looked),
        prefix,
    )?;
    growing.stored(session, &mut shipped.partial, stored, at)?;
    if req.interrupt.load(Ordering::SeqCst) {
        return Err(crate::error::Error::Interrupted);
    }
    Ok(())
}
