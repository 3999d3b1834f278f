//! Files that keep changing kind under a reader: swapped for symlinks, FIFOs and
//! directories, and a bounded wait for a command that must not hang.

use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::text;

/// Waits for `child` at most `limit`; kills it and fails the test when it hangs.
pub fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{what} still ran after {limit:?}; stderr: {}",
                text(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub const MARKER: &[u8] = b"OUTSIDE-THE-TREE-7f3a";

/// Keeps turning the files of `dir` into symlinks (to `secret`), FIFOs and directories
/// and back, about half of them swapped at any time.
pub fn swapper(dir: PathBuf, secret: PathBuf, n: usize) -> impl Fn() + Send + 'static {
    let step = std::sync::atomic::AtomicUsize::new(0);
    move || {
        let i = step.fetch_add(1, Ordering::Relaxed);
        let swap = dir.join(format!("f{:04}", i % n));
        let back = dir.join(format!("f{:04}", (i + n / 2) % n));
        for (p, special) in [(&swap, true), (&back, false)] {
            let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir(p));
            if !special {
                let _ = std::fs::write(p, format!("regular file {}\n", p.display()));
                continue;
            }
            let _ = match i % 3 {
                0 => std::os::unix::fs::symlink(&secret, p),
                1 => {
                    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
                    // SAFETY: mkfifo with a valid path.
                    unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
                    Ok(())
                }
                _ => std::fs::create_dir(p),
            };
        }
    }
}

/// Walks `dir` and fails if any file holds the marker.
pub fn assert_no_marker(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            assert_no_marker(&p);
        } else if m.is_file() {
            let data = std::fs::read(&p).unwrap();
            assert!(
                !data.windows(MARKER.len()).any(|w| w == MARKER),
                "{} holds the symlink target's contents",
                p.display()
            );
        }
    }
}

/// Runs `change` over and over in a thread of its own until stopped (or dropped).
pub struct Changer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Changer {
    /// Starts changing.
    pub fn start(change: impl Fn() + Send + 'static) -> Changer {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                change();
            }
        });
        Changer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and waits for the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Changer {
    fn drop(&mut self) {
        self.halt();
    }
}
