//! PostgreSQL's WAL, received continuously inside the database container by the server's
//! own `pg_receivewal` over the local socket (replication from the container itself is
//! what a stock `pg_hba.conf` allows), through a physical replication slot so that the
//! server keeps what was not received yet. drctl reads the files it writes and ships them.

use super::{Login, Session};
use crate::config::SourceDef;
use crate::docker::{self, Docker};
use crate::error::Result;
use crate::source::{exec_stream, LoginAt, StreamFile};
use std::io::Read;

/// Where `pg_receivewal` writes, in the container's own file system: not in the data
/// directory, which base backups would then carry.
const RECEIVE_ROOT: &str = "/tmp/drctl-wal";
/// Beside the receive directory: files from before the slot was created again.
const EARLIER: &str = "earlier";
/// In the receive directory: touched each time drctl looks.
const ALIVE: &str = ".drctl-alive";
/// A receiver nobody has looked at for this long is ended (see [`WalReceiver::receive`]).
pub const ORPHAN_AFTER_SECS: u64 = 30;

/// A replication slot as the server reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotState {
    /// Its name.
    pub name: String,
    /// WAL the server keeps for it.
    pub retained_bytes: u64,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: String,
    /// A receiver streams from it.
    pub active: bool,
    /// The server's bound (`max_slot_wal_keep_size`), if any.
    pub limit_bytes: Option<u64>,
}

/// One source's WAL receiver in its container.
pub struct WalReceiver {
    session: Session,
    slot: String,
    dir: String,
    /// The database system streamed from now, and the one before it when it changed
    /// (the files moved aside are that one's).
    systems: std::sync::Mutex<(Option<String>, Option<String>)>,
}

/// The server's WAL position and the receiver's, at one moment (see
/// [`WalReceiver::position`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The server's clock when asked.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Where its WAL ended (flushed), in bytes from the start.
    pub server: u64,
    /// What the receiver has flushed: `None` without a slot.
    pub received: Option<u64>,
    /// The server's `wal_segment_size`.
    pub segment_size: u64,
}

/// A file in the receive directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its name there (`…03.partial` while being written).
    pub file: String,
    /// Its WAL name, without `.partial`.
    pub name: String,
    /// Still being written.
    pub partial: bool,
    /// The timeline the name carries.
    pub timeline: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (seconds, fractional).
    pub mtime: String,
}

impl WalReceiver {
    /// Logs in to the source's running container; the slot is named for the source.
    pub fn open(docker: &Docker, def: &SourceDef) -> Result<WalReceiver> {
        let at = LoginAt::source(docker, def)?;
        let session = Session::open(at)?;
        let source: String = def
            .name
            .get_ref()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        Ok(WalReceiver {
            session,
            slot: format!("drctl_{source}"),
            dir: format!("{RECEIVE_ROOT}/{source}"),
            systems: Default::default(),
        })
    }

    /// Creates the slot when missing (or lost: the server dropped WAL it held past its
    /// bound), reserving WAL from now on; bounds what the server keeps for it to `limit`
    /// bytes where the server keeps WAL without bound; ends any receiver still streaming
    /// from it (one left by a killed drctl), so that this one can take over. What changed,
    /// for the operator.
    pub fn prepare(&self, limit: u64) -> Result<Vec<String>> {
        let slot = &self.slot;
        let mut notes = Vec::new();
        let lost = self.session.psql(
            "postgres",
            &format!(
                "SELECT 'dropped', pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE slot_name = '{slot}' AND wal_status = 'lost' AND NOT active"
            ),
        )?;
        // `pg_drop_replication_slot` returns void: the literal says a row was there.
        if lost.contains("dropped") {
            notes.push(format!(
                "replication slot {slot} had lost WAL the archive had not received (the \
                 server's bound was reached): dropped and created again; the archive has a \
                 gap until the next base backup"
            ));
        }
        let out = self.session.psql_multi(&[
            &format!(
                "SELECT 'created', pg_create_physical_replication_slot('{slot}', true) \
                 WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}')"
            ),
            "SELECT 'bound ' || setting FROM pg_settings WHERE name = 'max_slot_wal_keep_size'",
            "SELECT 'system ' || system_identifier FROM pg_control_system()",
            "SELECT 'segment ' || setting FROM pg_settings WHERE name = 'wal_segment_size'",
            &self.end_receiver_sql(),
        ])?;
        if let Some(system) = out.lines().find_map(|l| l.trim().strip_prefix("system ")) {
            let mut systems = self.systems.lock().expect("not poisoned");
            if systems.0.as_deref().is_some_and(|s| s != system) {
                systems.1 = systems.0.take();
            }
            systems.0 = Some(system.to_string());
        }
        let created = out.lines().any(|l| l.starts_with("created|"));
        let bound: Option<i64> = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("bound "))
            .and_then(|v| v.trim().parse().ok());
        let limit_mb = (limit >> 20).max(1);
        if bound == Some(-1) {
            self.session.psql_multi(&[
                &format!("ALTER SYSTEM SET max_slot_wal_keep_size = '{limit_mb}MB'"),
                "SELECT pg_reload_conf()",
            ])?;
            notes.push(format!(
                "set max_slot_wal_keep_size = {limit_mb}MB on the server (it kept WAL for \
                 replication slots without bound): if the archive stops for longer than that \
                 much WAL takes, the server drops it rather than fill its disk"
            ));
        }
        let dir = &self.dir;
        // Files received from a server this slot no longer streams from (one restored or
        // recreated) are still shipped, from beside the directory pg_receivewal starts
        // from: it would resume from the newest of them.
        let mut setup = if created {
            format!(
                "mkdir -p {dir}/{EARLIER} && for f in {dir}/0*; do [ -e \"$f\" ] && \
                 mv \"$f\" {dir}/{EARLIER}/; done; true"
            )
        } else {
            format!("mkdir -p {dir}")
        };
        // A growing segment neither empty nor whole (`pg_receivewal` killed while it
        // created it) makes `pg_receivewal` refuse to start, again and again. It goes:
        // the slot keeps the server's copy of whatever of it was not confirmed, and
        // `pg_receivewal` begins at the segment's start.
        let whole = out
            .lines()
            .find_map(|l| l.trim().strip_prefix("segment "))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(whole) = whole {
            setup.push_str(&format!(
                "; for f in {dir}/*.partial; do [ -f \"$f\" ] || continue; \
                 s=$(stat -c %s \"$f\"); if [ \"$s\" != 0 ] && [ \"$s\" != {whole} ]; then \
                 rm -f \"$f\" && echo \"$f ($s bytes)\"; fi; done; true"
            ));
        }
        let removed =
            self.session
                .docker
                .run_ok(&self.session.container, &["sh", "-c", &setup], &[])?;
        for f in removed.lines().filter(|l| !l.trim().is_empty()) {
            notes.push(format!(
                "removed the growing WAL segment {f}: neither empty nor a whole segment, \
                 pg_receivewal would not start from it; it is received again from the slot"
            ));
        }
        Ok(notes)
    }

    /// Where the server's WAL ends now and how far the receiver has it (what it last
    /// reported flushed, which the slot keeps as its `restart_lsn`): a receiver that is
    /// behind, stuck or gone holds less than the server wrote, however fresh its files.
    pub fn position(&self) -> Result<Position> {
        let out = self.session.psql(
            "postgres",
            &format!(
                "SELECT extract(epoch FROM clock_timestamp()), \
                 (pg_current_wal_flush_lsn() - '0/0')::bigint, \
                 (SELECT (restart_lsn - '0/0')::bigint FROM pg_replication_slots \
                  WHERE slot_name = '{}'), \
                 (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size')",
                self.slot
            ),
        )?;
        let f: Vec<&str> = out.trim().split('|').collect();
        let bad =
            || crate::error::Error::Failed(format!("unexpected answer from the server: {out}"));
        Ok(Position {
            at: f
                .first()
                .and_then(|v| crate::pitr::parse_epoch(v))
                .ok_or_else(bad)?,
            server: f.get(1).and_then(|v| v.parse().ok()).ok_or_else(bad)?,
            received: f.get(2).and_then(|v| v.parse().ok()),
            segment_size: f.get(3).and_then(|v| v.parse().ok()).ok_or_else(bad)?,
        })
    }

    /// The slot's state on the server: `None` when it has none.
    pub fn slot(&self) -> Result<Option<SlotState>> {
        let out = self.session.psql(
            "postgres",
            &format!(
                "SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint, \
                 coalesce(wal_status, ''), active, \
                 (SELECT setting FROM pg_settings WHERE name = 'max_slot_wal_keep_size') \
                 FROM pg_replication_slots WHERE slot_name = '{}'",
                self.slot
            ),
        )?;
        let line = out.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let f: Vec<&str> = line.split('|').collect();
        Ok(Some(SlotState {
            name: self.slot.clone(),
            retained_bytes: f.first().and_then(|v| v.parse().ok()).unwrap_or(0),
            wal_status: f.get(1).unwrap_or(&"").to_string(),
            active: f.get(2) == Some(&"t"),
            limit_bytes: f
                .get(3)
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .map(|mb| (mb as u64) << 20),
        }))
    }

    /// Runs `pg_receivewal` until it ends (the server stopped, or [`Self::stop`]); its
    /// error output, for the log.
    ///
    /// A `docker exec` outlives the client that started it: were drctl killed, the
    /// receiver would stream on, holding the slot and filling the container's `/tmp`
    /// with nobody shipping it. A watchdog beside it in the container ends it once drctl
    /// has not listed the directory for [`ORPHAN_AFTER_SECS`].
    pub fn receive(&self) -> Result<String> {
        let alive = format!("{}/{ALIVE}", self.dir);
        let script = format!(
            "touch {alive}; \"$@\" & pid=$!; \
             while kill -0 $pid 2>/dev/null; do sleep 1; \
               seen=$(stat -c %Y {alive} 2>/dev/null || echo 0); \
               if [ $(( $(date +%s) - seen )) -gt {ORPHAN_AFTER_SECS} ]; then \
                 echo 'drctl stopped reading the received WAL: receiver ended' >&2; \
                 kill $pid; fi; \
             done; wait $pid"
        );
        let out = self.session.docker.run(
            &self.session.container,
            &[
                "sh",
                "-c",
                &script,
                "drctl-receive",
                "pg_receivewal",
                "-D",
                &self.dir,
                "-S",
                &self.slot,
                "--no-loop",
                "--synchronous",
            ],
            &self.session.env,
            None,
        )?;
        Ok(format!(
            "pg_receivewal {}: {}",
            docker::exit_text(out.exit_code),
            docker::stderr_summary(&out.stderr)
        ))
    }

    /// Ends the running receiver: its walsender is terminated and `--no-loop` makes it
    /// exit.
    pub fn stop(&self) -> Result<()> {
        self.session.psql("postgres", &self.end_receiver_sql())?;
        Ok(())
    }

    /// Terminates the walsender streaming from the slot, if any.
    fn end_receiver_sql(&self) -> String {
        format!(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots \
             WHERE slot_name = '{}' AND active_pid IS NOT NULL",
            self.slot
        )
    }

    /// The database system that wrote a received file.
    pub fn system_of(&self, file: &Received) -> Option<String> {
        let systems = self.systems.lock().expect("not poisoned");
        if file.file.starts_with(EARLIER) {
            systems.1.clone().or_else(|| systems.0.clone())
        } else {
            systems.0.clone()
        }
    }

    /// The WAL files received, oldest name first. Each look tells the receiver's
    /// watchdog that drctl is still there.
    pub fn list(&self) -> Result<Vec<Received>> {
        let dir = &self.dir;
        let out = self.session.docker.run_ok(
            &self.session.container,
            &[
                "sh",
                "-c",
                &format!(
                    "touch {dir}/{ALIVE} && find {dir} -maxdepth 2 -type f -printf '%P %s %T@\\n'"
                ),
            ],
            &[],
        )?;
        let mut files: Vec<Received> = out.lines().filter_map(parse_listing).collect();
        files.sort_by(|a, b| a.name.cmp(&b.name).then(a.partial.cmp(&b.partial)));
        Ok(files)
    }

    /// The file's bytes, read in the container.
    /// A growing segment is stored without the zeros `pg_receivewal` pads it with (a
    /// restore pads it again: see [`pad_segment`]), so that its stored copy ends where the
    /// WAL does and the next copy shares all but its last piece.
    pub fn stream(&self, file: &Received) -> StreamFile {
        let mut stream = exec_stream(
            &self.session.docker,
            &self.session.container,
            file.name.clone(),
            vec!["cat".into(), format!("{}/{}", self.dir, file.file)],
            Vec::new(),
            None,
        );
        if file.partial {
            let open = stream.open;
            stream.open = Box::new(move || {
                open().map(|r| Box::new(TrimTrailingZeros::new(r)) as Box<dyn Read + Send>)
            });
        }
        stream
    }

    /// A small file's contents (a timeline history).
    pub fn read(&self, file: &Received) -> Result<String> {
        let path = format!("{}/{}", self.dir, file.file);
        self.session
            .docker
            .run_ok(&self.session.container, &["cat", &path], &[])
    }

    /// Removes a file that is stored.
    pub fn remove(&self, file: &Received) -> Result<()> {
        let path = format!("{}/{}", self.dir, file.file);
        self.session
            .docker
            .run_ok(&self.session.container, &["rm", "-f", &path], &[])
            .map(|_| ())
    }
}

/// A reader that leaves out the zeros at the end of its input (and only those).
struct TrimTrailingZeros<R> {
    inner: R,
    /// Read but not handed out yet: zeros that came before it, then data.
    zeros: u64,
    data: Vec<u8>,
    at: usize,
    /// Zeros at the end of what was read, held until data follows them.
    held: u64,
}

impl<R: Read> TrimTrailingZeros<R> {
    fn new(inner: R) -> Self {
        TrimTrailingZeros {
            inner,
            zeros: 0,
            data: Vec::new(),
            at: 0,
            held: 0,
        }
    }
}

impl<R: Read> Read for TrimTrailingZeros<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.zeros > 0 {
                let n = (self.zeros.min(out.len() as u64)) as usize;
                out[..n].fill(0);
                self.zeros -= n as u64;
                return Ok(n);
            }
            if self.at < self.data.len() {
                let n = (self.data.len() - self.at).min(out.len());
                out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            self.data.resize(256 * 1024, 0);
            let n = self.inner.read(&mut self.data)?;
            if n == 0 {
                self.data.clear();
                return Ok(0);
            }
            let trailing = self.data[..n].iter().rev().take_while(|b| **b == 0).count();
            self.data.truncate(n - trailing);
            self.at = 0;
            if self.data.is_empty() {
                self.held += trailing as u64;
            } else {
                self.zeros = std::mem::replace(&mut self.held, trailing as u64);
            }
        }
    }
}

/// Pads a staged copy of a growing segment back to a whole segment with zeros, as
/// `pg_receivewal` wrote it (the archive stores it without them); a completed segment
/// is whole already.
pub fn pad_segment(file: &std::fs::File, name: &str) -> std::io::Result<()> {
    if crate::pitr::is_wal_segment(name) && file.metadata()?.len() < crate::pitr::SEGMENT_BYTES {
        file.set_len(crate::pitr::SEGMENT_BYTES)?;
    }
    Ok(())
}

impl Received {
    /// When it was last written, from its modification time.
    pub fn written_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        crate::pitr::parse_epoch(&self.mtime)
    }

    /// The WAL position it holds up to, when it is a segment of the server streamed from
    /// now: its end when completed, else no further than the receiver has flushed.
    pub fn holds_until(&self, p: &Position) -> Option<u64> {
        if self.file.starts_with(EARLIER) || p.segment_size == 0 {
            return None;
        }
        let (_, log, seg) = crate::pitr::segment_parts(&self.name)?;
        let segno = log
            .checked_mul((1u64 << 32) / p.segment_size)?
            .checked_add(seg)?;
        let end = segno.checked_add(1)?.checked_mul(p.segment_size)?;
        if self.partial {
            Some(end.min(p.received?))
        } else {
            Some(end)
        }
    }

    /// Whether it will not change any more: completed, or left by a receiver from before
    /// the slot was created again.
    pub fn is_final(&self) -> bool {
        !self.partial || self.file.starts_with(EARLIER)
    }
}

/// `NAME SIZE MTIME` as `find -printf` gives it, for WAL segment and history files only.
fn parse_listing(line: &str) -> Option<Received> {
    let mut parts = line.split_whitespace();
    let (file, size, mtime) = (parts.next()?, parts.next()?, parts.next()?);
    let base = match file.split_once('/') {
        Some((EARLIER, rest)) => rest,
        Some(_) => return None,
        None => file,
    };
    let (name, partial) = match base.strip_suffix(".partial") {
        Some(n) => (n, true),
        None => (file, false),
    };
    let timeline = wal_timeline(name)?;
    Some(Received {
        file: file.to_string(),
        name: name.to_string(),
        partial,
        timeline,
        size: size.parse().ok()?,
        mtime: mtime.to_string(),
    })
}

/// The timeline of a WAL segment (`TTTTTTTTLLLLLLLLSSSSSSSS`) or history file
/// (`TTTTTTTT.history`); `None` for any other name.
pub fn wal_timeline(name: &str) -> Option<u32> {
    let hex = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    };
    let tli = match name.strip_suffix(".history") {
        Some(t) if t.len() == 8 && hex(t) => t,
        None if name.len() == 24 && hex(name) => &name[..8],
        _ => return None,
    };
    u32::from_str_radix(tli, 16).ok().filter(|t| *t > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wal_names_are_listed() {
        assert_eq!(wal_timeline("000000010000000000000003"), Some(1));
        assert_eq!(wal_timeline("0000000A0000000100000003"), Some(10));
        assert_eq!(wal_timeline("00000002.history"), Some(2));
        for bad in [
            "00000001000000000000003",
            "0000000100000000000000zz",
            "000000010000000000000003.tmp",
            "00000000.history",
            "archive_status",
            "0000000a0000000100000003",
        ] {
            assert_eq!(wal_timeline(bad), None, "{bad}");
        }
        let r = parse_listing("000000010000000000000004.partial 16777216 1764925000.25").unwrap();
        assert_eq!(
            (r.name.as_str(), r.partial, r.size),
            ("000000010000000000000004", true, 16777216)
        );
        assert_eq!(
            r.written_at().unwrap().timestamp_micros(),
            1_764_925_000_250_000
        );
        assert!(parse_listing("notwal 1 2").is_none());
        let r = parse_listing("earlier/000000010000000000000004.partial 16 1.5").unwrap();
        assert_eq!(
            (r.file.as_str(), r.name.as_str()),
            (
                "earlier/000000010000000000000004.partial",
                "000000010000000000000004"
            )
        );
        assert!(parse_listing("other/000000010000000000000004 16 1.5").is_none());
    }
}

#[cfg(test)]
mod trim_tests {
    use super::*;

    fn trimmed(input: &[u8], read_size: usize) -> Vec<u8> {
        /// Hands out at most `n` bytes a read, like a stream of small frames.
        struct Small<'a>(&'a [u8], usize);
        impl Read for Small<'_> {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        TrimTrailingZeros::new(Small(input, read_size))
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn only_the_zeros_at_the_end_are_left_out() {
        let mut data = vec![0u8; 300_000];
        data.extend_from_slice(b"wal");
        data.extend(vec![0u8; 700_000]);
        data.extend_from_slice(b"more\0\0x");
        let mut padded = data.clone();
        padded.extend(vec![0u8; 1 << 20]);
        for read_size in [1, 7, 4096, 1 << 20] {
            assert_eq!(trimmed(&padded, read_size), data, "reads of {read_size}");
        }
        assert!(trimmed(&[0; 5000], 100).is_empty());
        assert_eq!(trimmed(b"abc", 2), b"abc");
    }
}
