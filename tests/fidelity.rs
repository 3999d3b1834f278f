//! What a restore gives back besides contents: sparse files' holes, extended attributes
//! and POSIX ACLs.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_ok, random_bytes, text, Env, Kind};

/// The data regions of a file (SEEK_DATA/SEEK_HOLE), as `(offset, length)`.
fn data_regions(path: &Path) -> Vec<(u64, u64)> {
    let f = File::open(path).unwrap();
    let size = f.metadata().unwrap().len();
    let mut out = Vec::new();
    let mut pos = 0i64;
    loop {
        // SAFETY: lseek on an open file.
        let data = unsafe { libc::lseek(f.as_raw_fd(), pos, libc::SEEK_DATA) };
        if data < 0 || data as u64 >= size {
            break;
        }
        let hole = unsafe { libc::lseek(f.as_raw_fd(), data, libc::SEEK_HOLE) };
        out.push((data as u64, (hole - data) as u64));
        pos = hole;
    }
    out
}

/// Reads `len` bytes at `offset`.
fn read_at(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    File::open(path)
        .unwrap()
        .read_exact_at(&mut buf, offset)
        .unwrap();
    buf
}

/// A 10 GiB file holding 2 MiB of data backs up and restores in seconds, with its holes.
#[test]
fn sparse_file_keeps_its_holes() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let big = src.join("disk.img");
    let f = File::create(&big).unwrap();
    f.set_len(10 << 30).unwrap();
    let pieces: [(u64, usize, u64); 3] = [
        (0, 512 << 10, 1),
        (4 << 30, 1 << 20, 2),
        ((10 << 30) - (512 << 10), 512 << 10, 3),
    ];
    for (at, len, seed) in pieces {
        f.write_all_at(&random_bytes(len, seed), at).unwrap();
    }
    drop(f);
    // A small one that starts with a hole, for `dump`.
    let small = src.join("small.img");
    let f = File::create(&small).unwrap();
    f.set_len(8 << 20).unwrap();
    f.write_all_at(&random_bytes(300 << 10, 4), 5 << 20)
        .unwrap();
    drop(f);
    let regions = data_regions(&big);
    assert!(
        regions.len() >= 3,
        "the file system keeps holes: {regions:?}"
    );

    let t = Instant::now();
    assert_ok(&env.run(&["backup", "--stack", "s", src.to_str().unwrap()]));
    let backup_time = t.elapsed();
    assert!(
        backup_time < Duration::from_secs(20),
        "backup took {backup_time:?}"
    );
    assert!(
        env.repo_bytes() < 16 << 20,
        "the repository holds {} bytes",
        env.repo_bytes()
    );

    let out = env.path("out");
    let t = Instant::now();
    assert_ok(&env.run(&["restore", "s", "--to", out.to_str().unwrap()]));
    let restore_time = t.elapsed();
    assert!(
        restore_time < Duration::from_secs(20),
        "restore took {restore_time:?}"
    );
    let restored = out.join(big.strip_prefix("/").unwrap());
    let m = std::fs::metadata(&restored).unwrap();
    assert_eq!(m.len(), 10 << 30);
    assert!(
        m.blocks() * 512 < 64 << 20,
        "the restored file occupies {} bytes",
        m.blocks() * 512
    );
    assert_eq!(data_regions(&restored), regions, "the same data regions");
    for (at, len) in &regions {
        assert!(
            read_at(&restored, *at, *len) == read_at(&big, *at, *len),
            "data at {at} differs"
        );
    }
    // Between the regions it reads as zeros, as the original does.
    assert_eq!(read_at(&restored, 1 << 30, 4096), vec![0u8; 4096]);

    let o = env.run(&["dump", "latest", small.to_str().unwrap()]);
    assert_ok(&o);
    assert!(
        o.stdout == std::fs::read(&small).unwrap(),
        "dump fills holes"
    );
    let rs = out.join(small.strip_prefix("/").unwrap());
    assert!(std::fs::read(&rs).unwrap() == std::fs::read(&small).unwrap());
    assert_ok(&env.run(&["check", "--read-data"]));

    // Unchanged, it is not read as 10 GiB the second time either.
    let t = Instant::now();
    assert_ok(&env.run(&["backup", "--stack", "s", src.to_str().unwrap()]));
    assert!(t.elapsed() < Duration::from_secs(20));
}

fn sh(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (install the attr and acl packages)"))
}

fn must(cmd: &str, args: &[&str]) {
    let o = sh(cmd, args);
    assert!(o.status.success(), "{cmd} {args:?}: {}", text(&o.stderr));
}

/// Every xattr and ACL under `dir`, as getfattr prints them (paths relative to `dir`).
fn attrs(dir: &Path) -> String {
    let o = Command::new("getfattr")
        .current_dir(dir)
        .args(["-R", "-h", "-d", "-m", "-", "-e", "hex", "."])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let acl = Command::new("getfacl")
        .current_dir(dir)
        .args(["-R", "-P", "-p", "."])
        .output()
        .unwrap();
    format!("{}\n{}", text(&o.stdout), text(&acl.stdout))
}

/// Whether the file system under `dir` takes user xattrs.
fn user_xattrs_work(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    std::fs::write(&probe, b"").unwrap();
    let ok = sh(
        "setfattr",
        &["-n", "user.probe", "-v", "1", probe.to_str().unwrap()],
    )
    .status
    .success();
    std::fs::remove_file(&probe).unwrap();
    ok
}

/// Extended attributes (user.*, binary values) and POSIX ACLs (access and default) come
/// back with the files and directories; a target that refuses them gets one warning.
#[test]
fn xattrs_and_acls_round_trip() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    let data = src.join("data");
    std::fs::create_dir_all(data.join("shared")).unwrap();
    if !user_xattrs_work(&src) {
        eprintln!(
            "SKIPPED: the file system of {} refuses user xattrs",
            src.display()
        );
        return;
    }
    let file = data.join("report.txt");
    std::fs::write(&file, b"quarterly").unwrap();
    let big = data.join("big.bin");
    std::fs::write(&big, random_bytes(2 << 20, 8)).unwrap();
    let p = |x: &Path| x.to_str().unwrap().to_string();
    must(
        "setfattr",
        &["-n", "user.comment", "-v", "hello", &p(&file)],
    );
    must("setfattr", &["-n", "user.bin", "-v", "0x00ff10", &p(&big)]);
    must(
        "setfattr",
        &["-n", "user.dir", "-v", "yes", &p(&data.join("shared"))],
    );
    must("setfacl", &["-m", "u:1234:rw", &p(&file)]);
    must(
        "setfacl",
        &["-d", "-m", "u:1234:rx", &p(&data.join("shared"))],
    );
    must("setfacl", &["-m", "g:5678:rwx", &p(&data.join("shared"))]);
    let before = attrs(&src);
    assert!(before.contains("user.comment"), "{before}");
    assert!(before.contains("system.posix_acl_default"), "{before}");

    assert_ok(&env.run_in(&src, &["backup", "--stack", "s", "data"]));
    let out = env.path("out");
    let o = env.run(&["restore", "s", "--to", out.to_str().unwrap()]);
    assert_ok(&o);
    assert!(!text(&o.stderr).contains("warning"), "{}", text(&o.stderr));
    assert_eq!(attrs(&out), before);
    // The second backup takes unchanged files from the files cache: their attributes stay.
    assert_ok(&env.run_in(&src, &["backup", "--stack", "s", "data"]));
    let out2 = env.path("out2");
    assert_ok(&env.run(&["restore", "s", "--to", out2.to_str().unwrap()]));
    assert_eq!(attrs(&out2), before);

    // A target that takes no xattrs at all (ramfs): restored, with one warning.
    let ram = env.path("ram");
    std::fs::create_dir_all(&ram).unwrap();
    let mounted = unsafe { libc::geteuid() } == 0
        && Command::new("mount")
            .args(["-t", "ramfs", "none", ram.to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED the refusing target: cannot mount a ramfs here");
        return;
    }
    let target = ram.join("t");
    let o = env.run(&["restore", "s", "--to", target.to_str().unwrap()]);
    let _ = Command::new("umount").arg(&ram).status();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(
        err.matches("warning:").count(),
        1,
        "one warning for the whole restore: {err}"
    );
    assert!(
        err.contains("refused extended attributes or ACLs of 3 file(s)"),
        "{err}"
    );
}
