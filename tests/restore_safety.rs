//! Restores into hostile or unusual targets, with the real binary: links planted where
//! the snapshot has directories and files, at the top and deep down; a wrong `--path`;
//! names that hold terminal escapes; dry runs of restores that need `--force`; and a tree
//! deeper than any path the kernel resolves at once.

mod common;

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{assert_fails, assert_ok, text, Env, Kind};

/// The source tree: directories and files at the top and three levels down.
fn make_source(src: &Path) {
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::write(src.join("data/a.txt"), b"snapshot a").unwrap();
    std::fs::write(src.join("top.txt"), b"snapshot top").unwrap();
    std::fs::create_dir_all(src.join("l1/l2/l3/deep")).unwrap();
    std::fs::write(src.join("l1/l2/l3/deep/x.txt"), b"snapshot x").unwrap();
    std::fs::write(src.join("l1/l2/l3/f.txt"), b"snapshot f").unwrap();
    std::fs::set_permissions(src.join("l1/l2/l3/f.txt"), PermissionsExt::from_mode(0o640)).unwrap();
}

/// Places outside the target that links will point at, with what they hold now.
struct Outside {
    dir: PathBuf,
    deep_dir: PathBuf,
    file: PathBuf,
    deep_file: PathBuf,
}

impl Outside {
    fn new(base: &Path) -> Outside {
        let o = Outside {
            dir: base.join("outside-dir"),
            deep_dir: base.join("outside-deep-dir"),
            file: base.join("outside-file"),
            deep_file: base.join("outside-deep-file"),
        };
        for d in [&o.dir, &o.deep_dir] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("keep"), b"host").unwrap();
            std::fs::set_permissions(d, PermissionsExt::from_mode(0o755)).unwrap();
        }
        for f in [&o.file, &o.deep_file] {
            std::fs::write(f, b"host file").unwrap();
            std::fs::set_permissions(f, PermissionsExt::from_mode(0o644)).unwrap();
        }
        o
    }

    /// Plants links in `target` where the snapshot has directories and files.
    fn plant(&self, target: &Path) {
        let link = |to: &Path, at: &str| {
            let at = target.join(at);
            if std::fs::symlink_metadata(&at).is_ok() {
                if at.is_dir() && !at.is_symlink() {
                    std::fs::remove_dir_all(&at).unwrap();
                } else {
                    std::fs::remove_file(&at).unwrap();
                }
            }
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(to, &at).unwrap();
        };
        link(&self.dir, "data");
        link(&self.file, "top.txt");
        link(&self.deep_dir, "l1/l2/l3/deep");
        link(&self.deep_file, "l1/l2/l3/f.txt");
    }

    /// Nothing was written, created, removed or re-moded outside the target.
    fn assert_untouched(&self) {
        for d in [&self.dir, &self.deep_dir] {
            let names: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, vec![OsStr::new("keep")], "{} changed", d.display());
            assert_eq!(std::fs::read(d.join("keep")).unwrap(), b"host");
            assert_eq!(std::fs::metadata(d).unwrap().mode() & 0o7777, 0o755);
        }
        for f in [&self.file, &self.deep_file] {
            assert_eq!(std::fs::read(f).unwrap(), b"host file", "{}", f.display());
            assert_eq!(std::fs::metadata(f).unwrap().mode() & 0o7777, 0o644);
        }
    }
}

/// The target holds the snapshot's contents, as real directories and files.
fn assert_restored(target: &Path) {
    for d in ["data", "l1/l2/l3/deep"] {
        let m = std::fs::symlink_metadata(target.join(d)).unwrap();
        assert!(m.is_dir(), "{d} is not a directory: {m:?}");
    }
    for (f, want) in [
        ("data/a.txt", "snapshot a"),
        ("top.txt", "snapshot top"),
        ("l1/l2/l3/deep/x.txt", "snapshot x"),
        ("l1/l2/l3/f.txt", "snapshot f"),
    ] {
        let m = std::fs::symlink_metadata(target.join(f)).unwrap();
        assert!(m.is_file(), "{f} is not a regular file: {m:?}");
        assert_eq!(std::fs::read_to_string(target.join(f)).unwrap(), want);
    }
    assert_eq!(
        std::fs::metadata(target.join("l1/l2/l3/f.txt"))
            .unwrap()
            .mode()
            & 0o777,
        0o640
    );
}

/// Backs up `src` as `.`, so the snapshot's root holds its entries.
fn backup_id(env: &Env, src: &Path) -> String {
    let o = env.run_in(src, &["--json", "backup", "--stack", "s", "."]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["snapshot_id"]
        .as_str()
        .or_else(|| v["id"].as_str())
        .unwrap_or_else(|| panic!("no snapshot id in {v}"))
        .to_string()
}

#[test]
fn restore_overwrite_replaces_planted_links_and_writes_nothing_outside() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    make_source(&src);
    let id = backup_id(&env, &src);
    let outside = Outside::new(&env.path("host"));
    let target = env.path("target");
    std::fs::create_dir_all(&target).unwrap();
    outside.plant(&target);

    let o = env.run(&[
        "restore",
        &id,
        "--to",
        target.to_str().unwrap(),
        "--overwrite",
    ]);
    assert_ok(&o);
    outside.assert_untouched();
    assert_restored(&target);

    // Again over the restored tree with the links planted anew: the same.
    outside.plant(&target);
    assert_ok(&env.run(&[
        "restore",
        &id,
        "--to",
        target.to_str().unwrap(),
        "--overwrite",
    ]));
    outside.assert_untouched();
    assert_restored(&target);

    // Without --overwrite a non-empty target is refused and left as it is.
    outside.plant(&target);
    assert_fails(
        &env.run(&["restore", &id, "--to", target.to_str().unwrap()]),
        2,
        "not empty",
    );
    assert!(target.join("data").is_symlink());
    outside.assert_untouched();
}

#[test]
fn stack_restore_with_force_replaces_planted_links_and_writes_nothing_outside() {
    let env = Env::init(Kind::Local).unwrap();
    let live = env.path("live");
    make_source(&live);
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/stack.toml"),
        format!(
            "[stack.web]\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\n",
            live.display()
        ),
    )
    .unwrap();
    assert_ok(&env.run(&["backup", "web"]));
    // A container that can write its volume replaces directories and files with links.
    let outside = Outside::new(&env.path("host"));
    outside.plant(&live);

    assert_fails(&env.run(&["restore", "web"]), 2, "holds data");
    outside.assert_untouched();
    let o = env.run(&["restore", "web", "--force"]);
    assert_ok(&o);
    outside.assert_untouched();
    assert_restored(&live);
}

#[test]
fn restore_of_a_missing_path_creates_no_target() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    make_source(&src);
    let id = backup_id(&env, &src);
    let target = env.path("new/target");
    let o = env.run(&[
        "restore",
        &id,
        "--path",
        "nosuch",
        "--to",
        target.to_str().unwrap(),
    ]);
    assert_fails(&o, 2, "nosuch");
    assert!(!target.exists(), "the target was created");
    assert!(!env.path("new").exists(), "the target's parent was created");
    // A path that is there still restores, in its place under the target.
    assert_ok(&env.run(&[
        "restore",
        &id,
        "--path",
        "l1/l2",
        "--to",
        target.to_str().unwrap(),
    ]));
    let restored: PathBuf = target.join("l1/l2/l3/f.txt");
    assert_eq!(std::fs::read(restored).unwrap(), b"snapshot f");
}

#[test]
fn ls_quotes_names_that_hold_control_characters() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let names: [&[u8]; 4] = [b"a\nb", b"red\x1b[31mX", b"it's here", b"bad\xffbyte"];
    for n in names {
        std::fs::write(src.join(OsStr::from_bytes(n)), b"x").unwrap();
    }
    std::os::unix::fs::symlink(OsStr::from_bytes(b"to\nwhere"), src.join("link")).unwrap();
    let id = backup_id(&env, &src);
    let o = env.run(&["ls", &id]);
    assert_ok(&o);
    assert!(
        !o.stdout.contains(&0x1b),
        "an escape sequence went to the terminal raw"
    );
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    // One line per entry: no name makes a line of its own.
    let base = "";
    for want in [
        format!("$'{base}/a\\nb'"),
        format!("$'{base}/red\\033[31mX'"),
        format!("'{base}/it'\\''s here'"),
        format!("$'{base}/bad\\377byte'"),
        format!("{base}/link -> $'to\\nwhere'"),
    ] {
        assert!(
            lines.iter().any(|l| l.ends_with(&want)),
            "no line ends with {want}:\n{out}"
        );
    }
    // JSON keeps names as (lossy) text.
    let v = env.json(&["ls", &id]);
    let paths: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    assert!(paths.contains(&format!("{base}/a\nb")), "{paths:?}");
    assert!(
        paths.contains(&format!("{base}/bad\u{fffd}byte")),
        "{paths:?}"
    );
}

#[test]
fn stack_dry_run_prints_the_plan_and_marks_what_needs_force() {
    let env = Env::init(Kind::Local).unwrap();
    let live = env.path("live");
    let other = env.path("other");
    for d in [&live, &other] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("state.txt"), b"backed up").unwrap();
    }
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/stack.toml"),
        format!(
            "[stack.app]\n[[stack.app.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\n\
             [[stack.app.source]]\nname = \"more\"\nkind = \"volume\"\npath = \"{}\"\n",
            live.display(),
            other.display()
        ),
    )
    .unwrap();
    assert_ok(&env.run(&["backup", "app"]));
    std::fs::write(live.join("state.txt"), b"changed").unwrap();
    // `more` is emptied: it does not need --force.
    std::fs::remove_file(other.join("state.txt")).unwrap();

    let o = env.run(&["restore", "app", "--dry-run"]);
    assert_ok(&o);
    let out = text(&o.stdout);
    assert!(out.contains("files"), "{out}");
    assert!(out.contains("more"), "{out}");
    assert_eq!(out.matches("NEEDS --force").count(), 1, "{out}");
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    assert_eq!(std::fs::read(live.join("state.txt")).unwrap(), b"changed");
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);

    let v = env.json(&["restore", "app", "--dry-run"]);
    let sources = v["sources"].as_array().unwrap();
    let by_name = |n: &str| sources.iter().find(|s| s["source"] == n).unwrap().clone();
    assert_eq!(by_name("files")["needs_force"], true, "{v}");
    assert_eq!(by_name("more")["needs_force"], false, "{v}");

    // With --force nothing needs marking; a real run without it is still refused.
    let o = env.run(&["restore", "app", "--dry-run", "--force"]);
    assert_ok(&o);
    assert!(!text(&o.stdout).contains("NEEDS --force"));
    assert_fails(&env.run(&["restore", "app"]), 2, "holds data");
    assert_eq!(std::fs::read(live.join("state.txt")).unwrap(), b"changed");
}

const DEPTH: usize = 4000;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Builds `DEPTH` nested directories `d` under `top` through directory handles (the path
/// is longer than PATH_MAX), with a file at the bottom.
fn make_deep(top: &Path) {
    let t = CString::new(top.as_os_str().as_bytes()).unwrap();
    unsafe {
        let mut fd = libc::open(t.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        assert!(fd >= 0);
        for _ in 0..DEPTH {
            assert_eq!(libc::mkdirat(fd, c("d").as_ptr(), 0o755), 0);
            let next = libc::openat(fd, c("d").as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            assert!(next >= 0);
            libc::close(fd);
            fd = next;
        }
        let f = libc::openat(
            fd,
            c("bottom.txt").as_ptr(),
            libc::O_WRONLY | libc::O_CREAT,
            0o644,
        );
        assert!(f >= 0);
        assert_eq!(libc::write(f, b"deep".as_ptr().cast(), 4), 4);
        libc::close(f);
        libc::close(fd);
    }
}

/// What the file at the bottom of a deep tree holds.
fn read_deep(top: &Path) -> Vec<u8> {
    let t = CString::new(top.as_os_str().as_bytes()).unwrap();
    unsafe {
        let mut fd = libc::open(t.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        assert!(fd >= 0);
        for i in 0..DEPTH {
            let next = libc::openat(
                fd,
                c("d").as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            );
            assert!(next >= 0, "level {i} is missing");
            libc::close(fd);
            fd = next;
        }
        let f = libc::openat(fd, c("bottom.txt").as_ptr(), libc::O_RDONLY);
        assert!(f >= 0, "bottom.txt is missing");
        let mut buf = [0u8; 64];
        let n = libc::read(f, buf.as_mut_ptr().cast(), buf.len());
        libc::close(f);
        libc::close(fd);
        buf[..n as usize].to_vec()
    }
}

/// Removes a deep tree without recursion (the test thread's stack is small).
fn remove_deep(top: &Path) {
    let parent = drctl::safe_fs::Dir::open(top.parent().unwrap()).unwrap();
    parent.remove(top.file_name().unwrap()).unwrap();
}

#[test]
fn restore_and_ls_of_a_tree_4000_levels_deep() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    make_deep(&src);
    let id = backup_id(&env, &src);
    let target = env.path("target");
    let o = env.run(&["restore", &id, "--to", target.to_str().unwrap()]);
    assert_ok(&o);
    assert_eq!(read_deep(&target), b"deep");

    let o = env.run(&["ls", &id]);
    assert_ok(&o);
    let out = text(&o.stdout);
    let deepest = format!("{}/bottom.txt", "/d".repeat(DEPTH));
    assert!(
        out.lines().any(|l| l.ends_with(&deepest)),
        "ls does not show the bottom file"
    );
    assert_eq!(out.lines().count(), DEPTH + 1);
    // A second backup of the unchanged tree reuses the files cache and the same trees.
    let again = backup_id(&env, &src);
    let diff = env.json(&["snapshots"]);
    let trees: Vec<_> = diff
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == id.as_str() || s["id"] == again.as_str())
        .map(|s| s["tree"].clone())
        .collect();
    assert_eq!(trees.len(), 2);
    assert_eq!(trees[0], trees[1]);
    remove_deep(&target);
    remove_deep(&src);
}
