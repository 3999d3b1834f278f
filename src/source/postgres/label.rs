//! Where a base backup starts, read from the `backup_label` the server writes at the head
//! of its tar, as the tar streams by. The label's position is the backup checkpoint's
//! redo point, exactly where replay must begin; reading it costs no exec before the
//! backup (a `pg_current_wal_lsn()` would be one more, and only a bound).

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

/// The label's name in the tar.
const LABEL: &str = "backup_label";
/// How far into the stream the label must appear: the server sends it first, a few
/// hundred bytes; anything further means a tar drctl does not understand.
const LOOK_LIMIT: usize = 64 * 1024;
/// A tar header block.
const BLOCK: usize = 512;

/// What the label says.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseStart {
    /// `START WAL LOCATION`, as PostgreSQL prints an LSN.
    pub wal_start: String,
    /// `START TIMELINE`.
    pub timeline: u32,
}

/// The label's text parsed; `None` when a line is missing.
pub fn parse_label(text: &str) -> Option<BaseStart> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().next().unwrap_or_default())
    };
    let wal_start = field("START WAL LOCATION:")?;
    crate::pitr::lsn(wal_start)?;
    Some(BaseStart {
        wal_start: wal_start.to_string(),
        timeline: field("START TIMELINE:")?.parse().ok()?,
    })
}

/// The label in the first bytes of a tar: `Ok(None)` until enough is read to say.
fn find_in_tar(head: &[u8]) -> io::Result<Option<BaseStart>> {
    let mut at = 0;
    while head.len() >= at + BLOCK {
        let header = &head[at..at + BLOCK];
        if header.iter().all(|b| *b == 0) {
            return Err(io::Error::other(
                "the base backup's tar ends before its backup_label",
            ));
        }
        let name = &header[..100];
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(100)];
        let name = name.strip_prefix(b"./").unwrap_or(name);
        let size = std::str::from_utf8(&header[124..136])
            .ok()
            .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
            .and_then(|s| u64::from_str_radix(s, 8).ok())
            .ok_or_else(|| io::Error::other("the base backup is not a tar"))?
            as usize;
        let data = at + BLOCK;
        if name == LABEL.as_bytes() {
            if head.len() < data + size {
                return Ok(None);
            }
            let text = String::from_utf8_lossy(&head[data..data + size]);
            return parse_label(&text).map(Some).ok_or_else(|| {
                io::Error::other(format!(
                    "the base backup's backup_label is not understood: {text:?}"
                ))
            });
        }
        at = data + size.div_ceil(BLOCK) * BLOCK;
    }
    Ok(None)
}

/// A base backup's stream, passed through unchanged, that keeps what its label says.
pub struct LabelTap<R> {
    inner: R,
    head: Vec<u8>,
    found: Arc<Mutex<Option<BaseStart>>>,
    done: bool,
}

impl<R: Read> LabelTap<R> {
    /// Reads `inner`, putting the label into `found` once it has gone by.
    pub fn new(inner: R, found: Arc<Mutex<Option<BaseStart>>>) -> Self {
        LabelTap {
            inner,
            head: Vec::new(),
            found,
            done: false,
        }
    }

    fn look(&mut self, read: &[u8]) -> io::Result<()> {
        let want = LOOK_LIMIT.saturating_sub(self.head.len()).min(read.len());
        self.head.extend_from_slice(&read[..want]);
        if let Some(start) = find_in_tar(&self.head)? {
            *self.found.lock().unwrap() = Some(start);
            self.done = true;
            self.head = Vec::new();
        } else if self.head.len() >= LOOK_LIMIT || read.is_empty() {
            return Err(io::Error::other(
                "the base backup has no backup_label at its start",
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for LabelTap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if !self.done && !buf.is_empty() {
            self.look(&buf[..n])?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n\
                        CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\n\
                        BACKUP FROM: primary\nSTART TIME: 2026-12-07 14:00:00 UTC\n\
                        LABEL: drctl base backup\nSTART TIMELINE: 3\n";

    fn member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{:011o}\0", data.len());
        h[124..136].copy_from_slice(size.as_bytes());
        let mut out = h;
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        out
    }

    fn read_all(tar: &[u8], step: usize) -> (io::Result<Vec<u8>>, Option<BaseStart>) {
        struct Small<'a>(&'a [u8], usize);
        impl Read for Small<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(self.1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let found = Arc::new(Mutex::new(None));
        let mut out = Vec::new();
        let r = LabelTap::new(Small(tar, step), found.clone()).read_to_end(&mut out);
        let got = found.lock().unwrap().clone();
        (r.map(|_| out), got)
    }

    #[test]
    fn the_label_is_read_as_the_tar_goes_by_in_reads_of_any_size() {
        let mut tar = member("backup_label", TEXT.as_bytes());
        let mut dotted = member("./backup_label", TEXT.as_bytes());
        dotted.extend(vec![0u8; 2 * BLOCK]);
        tar.extend(member("PG_VERSION", b"16\n"));
        tar.extend(vec![0u8; 2 * BLOCK]);
        let want = BaseStart {
            wal_start: "0/2000028".into(),
            timeline: 3,
        };
        for step in [1, 7, 512, 100_000] {
            let (out, got) = read_all(&tar, step);
            assert_eq!(out.unwrap(), tar, "the stream passes unchanged");
            assert_eq!(got.as_ref(), Some(&want), "reads of {step}");
        }
        // After another member, as a later server might order them.
        let mut later = member("./tablespace_map", b"");
        later.extend(&tar);
        assert_eq!(read_all(&later, 100).1, Some(want.clone()));
        // As GNU tar names it.
        assert_eq!(read_all(&dotted, 9).1, Some(want));
    }

    #[test]
    fn a_tar_without_a_label_or_with_a_garbled_one_fails_the_stream() {
        let mut tar = member("PG_VERSION", b"16\n");
        tar.extend(vec![0u8; 2 * BLOCK]);
        let err = read_all(&tar, 4096).0.unwrap_err().to_string();
        assert!(err.contains("before its backup_label"), "{err}");
        let bad = member("backup_label", b"START WAL LOCATION: nonsense\n");
        let err = read_all(&bad, 4096).0.unwrap_err().to_string();
        assert!(err.contains("not understood"), "{err}");
        let err = read_all(b"not a tar at all", 4096)
            .0
            .unwrap_err()
            .to_string();
        assert!(err.contains("no backup_label"), "{err}");
        let big = member("huge", &vec![1u8; 2 * LOOK_LIMIT]);
        let err = read_all(&big, 4096).0.unwrap_err().to_string();
        assert!(err.contains("no backup_label"), "{err}");
    }
}
