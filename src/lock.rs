//! One run per stack at a time on a host, across processes.
//!
//! The lock is `flock` on a file per stack: the kernel drops it when the holder exits,
//! however it exits, so a lock left by a killed drctl never blocks the next run. The file
//! also records who holds it, for the message the second run prints.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{Error, IoContext, Result};

/// A held stack lock; released when dropped.
#[derive(Debug)]
pub struct StackLock {
    _file: File,
    path: PathBuf,
}

impl StackLock {
    /// Takes the lock of `stack` under `dir`, or fails at once with `Error::Locked` naming
    /// the holder.
    pub fn acquire(dir: &Path, stack: &str, now: DateTime<Utc>) -> Result<StackLock> {
        std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{stack}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::WouldBlock {
                return Err(Error::io(format!("locking {}", path.display()), err));
            }
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(Error::Locked(format!(
                "stack {stack}: another run holds its lock{}; skipped",
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" ({holder})")
                }
            )));
        }
        let note = format!("pid {}, since {}", std::process::id(), now.to_rfc3339());
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(note.as_bytes()))
            .ctx(|| format!("writing {}", path.display()))?;
        Ok(StackLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let first = StackLock::acquire(dir.path(), "shop", now).unwrap();
        let err = StackLock::acquire(dir.path(), "shop", now).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        // Other stacks are independent.
        let _other = StackLock::acquire(dir.path(), "blog", now).unwrap();
        drop(first);
        StackLock::acquire(dir.path(), "shop", now).unwrap();
    }
}
