//! Files that change under the reader: truncated or grown while read, and swapped for
//! symlinks, FIFOs and directories between the walk and the read.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_ok, random_bytes, text, Env, Kind};

/// Waits for `child` at most `limit`; kills it and fails the test when it hangs.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> Output {
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

/// Runs a backup of `src` while `change` keeps running in another thread.
fn backup_while(env: &Env, src: &Path, change: impl Fn() + Send + 'static) -> Output {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let changer = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            change();
        }
    });
    let child = env
        .cmd()
        .args(["backup", "--stack", "s", src.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_bounded(child, Duration::from_secs(120), "the backup");
    stop.store(true, Ordering::Relaxed);
    changer.join().unwrap();
    o
}

/// The size `ls` records for `path`, the bytes `dump` gives, and a restore's file length.
fn recorded(env: &Env, path: &Path) -> (u64, u64, u64) {
    let p = path.to_str().unwrap();
    let ls = env.json(&["ls", "latest", p]);
    let size = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"].as_str() == Some(p))
        .unwrap_or_else(|| panic!("{p} not in {ls}"))["size"]
        .as_u64()
        .unwrap();
    let o = env.run(&["dump", "latest", p]);
    assert_ok(&o);
    let out = env.path(&common::unique("out"));
    assert_ok(&env.run(&["restore", "s", "--path", p, "--to", out.to_str().unwrap()]));
    let restored = std::fs::metadata(out.join(p.trim_start_matches('/')))
        .unwrap()
        .len();
    (size, o.stdout.len() as u64, restored)
}

fn assert_torn_warning(o: &Output, file: &Path) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains(&format!(
            "warning: {} changed while it was read",
            file.display()
        )),
        "{err}"
    );
    assert!(err.contains("error: snapshot"), "{err}");
}

/// A file truncated again and again while the backup reads it: stored as last read, with
/// a warning and exit 1; the size recorded is the content's length.
#[test]
fn truncated_while_read() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("big.bin");
    let full = Arc::new(random_bytes(96 << 20, 3));
    std::fs::write(&file, &*full).unwrap();
    let f = file.clone();
    let o = backup_while(&env, &src, move || {
        // Shrink it step by step, then write it whole again: it never holds still.
        let h = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        let mut len = h.metadata().unwrap().len();
        if len < (8 << 20) {
            drop(h);
            std::fs::write(&f, &*full).unwrap();
            return;
        }
        len -= 1 << 20;
        h.set_len(len).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    });
    assert_torn_warning(&o, &file);
    let (size, dumped, restored) = recorded(&env, &file);
    assert_eq!(size, dumped, "the tree's size and the content agree");
    assert_eq!(size, restored);
    assert_ok(&env.run(&["check", "--read-data"]));
}

/// A file that keeps growing while it is read: the same.
#[test]
fn grown_while_read() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("log.bin");
    std::fs::write(&file, random_bytes(64 << 20, 4)).unwrap();
    let f = file.clone();
    let tail = random_bytes(256 << 10, 5);
    let o = backup_while(&env, &src, move || {
        let mut h = std::fs::OpenOptions::new().append(true).open(&f).unwrap();
        h.write_all(&tail).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    });
    assert_torn_warning(&o, &file);
    let (size, dumped, restored) = recorded(&env, &file);
    assert_eq!(size, dumped, "the tree's size and the content agree");
    assert_eq!(size, restored);
    assert!(size > 64 << 20, "recorded {size}");
}

const MARKER: &[u8] = b"OUTSIDE-THE-TREE-7f3a";

/// Keeps turning the files of `dir` into symlinks (to `secret`), FIFOs and directories
/// and back, about half of them swapped at any time.
fn swapper(dir: PathBuf, secret: PathBuf, n: usize) -> impl Fn() + Send + 'static {
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
fn assert_no_marker(dir: &Path) {
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

/// Files swapped for symlinks, FIFOs and directories between the walk and the read: the
/// backup ends, stores nothing from outside the tree, and SIGTERM still stops it (130).
#[test]
fn swapped_between_walk_and_read() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    let dir = src.join("hot");
    std::fs::create_dir_all(&dir).unwrap();
    let secret = env.path("secret.txt");
    std::fs::write(&secret, MARKER.repeat(1000)).unwrap();
    let n = 600;
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i:04}")), b"regular file\n").unwrap();
    }
    // The race is timing-bound: run backups until one caught a swapped file (at most 8).
    let mut caught = false;
    for round in 0..8 {
        // Large new files first in walk order keep the readers busy while the walk lists
        // the small ones: the wait between listing and reading is what the swapper hits.
        for k in 0..2 {
            std::fs::write(
                src.join(format!("a{k}.bin")),
                random_bytes(48 << 20, round * 2 + k + 100),
            )
            .unwrap();
        }
        let o = backup_while(&env, &src, swapper(dir.clone(), secret.clone(), n));
        let err = text(&o.stderr);
        assert!(
            matches!(o.status.code(), Some(0) | Some(1)),
            "rc {:?}: {err}",
            o.status.code()
        );
        let out = env.path(&format!("out{round}"));
        assert_ok(&env.run(&["restore", "s", "--to", out.to_str().unwrap()]));
        assert_no_marker(&out);
        if err.contains("after it was listed; skipped") {
            caught = true;
            break;
        }
    }
    assert!(
        caught,
        "no file was caught being swapped in 8 backups (the race did not happen?)"
    );
    assert_ok(&env.run(&["check", "--read-data"]));

    // Again, with a large new file so the run is still going when SIGTERM comes.
    let before = env.snapshot_count();
    std::fs::write(src.join("big.bin"), random_bytes(256 << 20, 9)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let change = swapper(dir.clone(), secret.clone(), n);
    let changer = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            change();
        }
    });
    let child = env
        .cmd()
        .args(["backup", "--stack", "s", src.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = wait_bounded(child, Duration::from_secs(30), "the interrupted backup");
    stop.store(true, Ordering::Relaxed);
    changer.join().unwrap();
    common::assert_fails(&o, 130, "interrupted");
    assert_eq!(
        env.snapshot_count(),
        before,
        "the interrupted run committed nothing"
    );
}
