//! Files that change under the reader: truncated or grown while read, and swapped for
//! symlinks, FIFOs and directories between the walk and the read.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::swap::{assert_no_marker, swapper, wait_bounded, Changer, MARKER};
use common::{assert_ok, random_bytes, text, Env, Kind};

/// Runs a backup of `src` while `change` keeps running in another thread.
fn backup_while(env: &Env, src: &Path, change: impl Fn() + Send + 'static) -> Output {
    let changer = Changer::start(change);
    let child = env
        .cmd()
        .args(["backup", "--stack", "s", src.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_bounded(child, Duration::from_secs(120), "the backup");
    changer.stop();
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
    let changer = Changer::start(swapper(dir.clone(), secret.clone(), n));
    let child = env
        .cmd()
        .args(["backup", "--stack", "s", src.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = wait_bounded(child, Duration::from_secs(30), "the interrupted backup");
    changer.stop();
    common::assert_fails(&o, 130, "interrupted");
    assert_eq!(
        env.snapshot_count(),
        before,
        "the interrupted run committed nothing"
    );
}
