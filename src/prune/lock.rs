//! The prune lock: one prune at a time per repository, taken over from a holder that is
//! gone (a dead process on this host, or a lock not refreshed for its lifetime).

use std::time::SystemTime;

use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::repo::layout::{FileType, Handle};
use crate::repo::Repo;

/// A prune lock not refreshed for this long is taken to be left by a dead prune (on
/// another host, where its process cannot be asked).
const LOCK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// A running prune rewrites its lock this often, well inside the lifetime.
const LOCK_REFRESH: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Names of prune locks start with this (other commands may lock differently one day).
const PRUNE_LOCK: &str = "prune-";

/// Who holds a prune lock: the lock object's body.
#[derive(Debug, Serialize, serde::Deserialize)]
struct LockHolder {
    hostname: String,
    pid: u32,
}

/// Holds the prune lock and keeps it fresh; deletes it when dropped.
pub(super) struct PruneLock<'a> {
    repo: &'a Repo,
    key: Handle,
    /// The store's clock, read from the lock object's own time.
    pub(super) store_now: SystemTime,
    /// Stops the refresher.
    stop: Option<std::sync::mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl<'a> PruneLock<'a> {
    /// Takes the lock, taking over locks whose holder is gone (with a warning in
    /// `warnings`); fails with `Error::Locked` while another prune is alive.
    pub(super) fn take(repo: &'a Repo, hostname: &str, warnings: &mut Vec<String>) -> Result<Self> {
        let body = serde_json::to_vec(&LockHolder {
            hostname: hostname.to_string(),
            pid: std::process::id(),
        })
        .expect("lock body serializes");
        let body = Bytes::from(body);
        let key = Handle::new(
            FileType::Lock,
            format!("{PRUNE_LOCK}{}", hex::encode(rand::random::<[u8; 8]>())),
        );
        repo.block_on(repo.objects().put(&key, body.clone()))?;
        let mut lock = PruneLock {
            repo,
            store_now: SystemTime::now(),
            key,
            stop: None,
            refresher: None,
        };
        let mine = repo.block_on(repo.objects().stat(&lock.key))?;
        let store_now = mine.modified.unwrap_or_else(SystemTime::now);
        lock.store_now = store_now;
        for other in repo.block_on(repo.objects().list(FileType::Lock))? {
            if other.handle == lock.key || !other.handle.name.starts_with(PRUNE_LOCK) {
                continue;
            }
            let age = other
                .modified
                .and_then(|m| store_now.duration_since(m).ok())
                .unwrap_or_default();
            let holder: Option<LockHolder> = match repo.block_on(repo.objects().get(&other.handle))
            {
                Ok(b) => serde_json::from_slice(&b).ok(),
                // Released between list and get.
                Err(e) if crate::store::backend::is_not_found(&e) => continue,
                Err(e) => return Err(e),
            };
            let who = holder.as_ref().map_or_else(
                || "an unreadable holder".to_string(),
                |h| format!("pid {} on {}", h.pid, h.hostname),
            );
            let gone = if age >= LOCK_LIFETIME {
                Some(format!(
                    "not refreshed for {}s (a live prune refreshes it every {}s)",
                    age.as_secs(),
                    LOCK_REFRESH.as_secs()
                ))
            } else if holder
                .as_ref()
                .is_some_and(|h| h.hostname == hostname && !process_alive(h.pid))
            {
                Some("that process is gone".to_string())
            } else {
                None
            };
            match gone {
                Some(why) => {
                    repo.block_on(repo.objects().delete(&other.handle))?;
                    warnings.push(format!(
                        "took over the prune lock {} of {who}: {why}",
                        other.handle
                    ));
                }
                None => {
                    return Err(Error::Locked(format!(
                        "another prune holds the repository's prune lock ({who}, refreshed {}s ago); skipped",
                        age.as_secs()
                    )))
                }
            }
        }
        // Keep it fresh for as long as this prune runs.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (objects, rt, key) = (
            repo.objects().clone(),
            repo.runtime().clone(),
            lock.key.clone(),
        );
        lock.refresher = Some(std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(LOCK_REFRESH)
            {
                if let Err(e) = rt.block_on(objects.put(&key, body.clone())) {
                    tracing::warn!("cannot refresh the prune lock {key}: {e}");
                }
            }
        }));
        lock.stop = Some(stop);
        Ok(lock)
    }
}

impl Drop for PruneLock<'_> {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let _ = self.repo.block_on(self.repo.objects().delete(&self.key));
    }
}

/// Whether a process of this host with that pid exists.
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
