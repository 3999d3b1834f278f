//! The repository core end to end, on the local store and on S3 (Garage): round trip,
//! deduplication, catalog loss, tampering and the environment errors.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{assert_fails, assert_ok, random_bytes, text, Env, Kind};

/// Everything about a tree that a restore must reproduce, keyed by relative path.
fn describe_tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, String> = BTreeMap::new();
    fn walk(
        dir: &Path,
        root: &Path,
        out: &mut BTreeMap<String, String>,
        inodes: &mut BTreeMap<u64, String>,
    ) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let mut d = format!(
                "mode={:o} uid={} gid={}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            );
            if ft.is_symlink() {
                d = format!("symlink -> {}", std::fs::read_link(&p).unwrap().display());
            } else {
                d.push_str(&format!(" mtime={}.{:09}", m.mtime(), m.mtime_nsec()));
            }
            if ft.is_file() {
                let data = std::fs::read(&p).unwrap();
                d.push_str(&format!(
                    " size={} blake3={}",
                    data.len(),
                    blake3::hash(&data)
                ));
                if m.nlink() > 1 {
                    let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone());
                    d.push_str(&format!(" linked-with={first}"));
                }
            }
            if ft.is_dir() {
                d.push_str(" dir");
                walk(&p, root, out, inodes);
            }
            out.insert(rel, d);
        }
    }
    walk(root, root, &mut out, &mut inodes);
    out
}

/// The file system's inode flags (chattr), 0 where the file system has none.
fn inode_flags(p: &Path) -> libc::c_long {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(p).unwrap();
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one c_long.
    if unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return 0;
    }
    flags
}

fn make_fixture(base: &Path) {
    let data = base.join("data");
    std::fs::create_dir_all(data.join("nested/deeper/deepest")).unwrap();
    std::fs::create_dir_all(data.join("empty-dir")).unwrap();
    std::fs::write(data.join("empty-file"), b"").unwrap();
    std::fs::write(data.join("nested/deeper/deepest/leaf.txt"), b"deep leaf\n").unwrap();
    std::fs::write(
        data.join("nested/a.sql"),
        "INSERT INTO t VALUES (1);\n".repeat(5000),
    )
    .unwrap();
    std::fs::write(data.join("big.bin"), random_bytes(50 << 20, 7)).unwrap();
    std::os::unix::fs::symlink("nested/a.sql", data.join("link-to-sql")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", data.join("dangling")).unwrap();
    std::fs::hard_link(data.join("nested/a.sql"), data.join("hard-link.sql")).unwrap();
    let secret = data.join("secret.key");
    std::fs::write(&secret, b"top secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(data.join("name with spaces — ünïcødé ✓.txt"), b"unicode").unwrap();
    let ro = data.join("nested/read-only");
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(ro.join("inside"), b"x").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(data.join("nested/deeper"), Some(1234), Some(5678)).unwrap();
        std::os::unix::fs::lchown(data.join("link-to-sql"), Some(4321), Some(8765)).unwrap();
    }
}

fn round_trip(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    make_fixture(&src);
    let o = env.run_in(&src, &["backup", "--stack", "web", "data"]);
    assert_ok(&o);
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps[0]["paths"][0], "data", "paths are recorded as given");
    assert_eq!(snaps[0]["stack"], "web");

    let out = env.path("out");
    assert_ok(&env.run(&["restore", "web", "--to", out.to_str().unwrap()]));
    assert_eq!(
        describe_tree(&src.join("data")),
        describe_tree(&out.join("data"))
    );
    for dir in [
        "data",
        "data/nested",
        "data/nested/deeper/deepest",
        "data/empty-dir",
    ] {
        let flags = inode_flags(&out.join(dir));
        assert_eq!(
            flags & 0x0002_0000,
            0,
            "{dir} keeps the restore's allocation hint"
        );
    }

    // One file to stdout.
    let o = env.run(&["dump", "web", "data/nested/deeper/deepest/leaf.txt"]);
    assert_ok(&o);
    assert_eq!(o.stdout, b"deep leaf\n");
    let o = env.run(&["dump", "latest", "data/big.bin"]);
    assert_ok(&o);
    assert!(o.stdout == std::fs::read(src.join("data/big.bin")).unwrap());

    // A non-empty target is refused without --overwrite; with it, the restore replaces.
    let o = env.run(&["restore", "web", "--to", out.to_str().unwrap()]);
    assert_fails(&o, 2, "not empty");
    std::fs::write(out.join("data/nested/a.sql"), b"clobbered").unwrap();
    assert_ok(&env.run(&[
        "restore",
        "web",
        "--to",
        out.to_str().unwrap(),
        "--overwrite",
    ]));
    assert_eq!(
        describe_tree(&src.join("data")),
        describe_tree(&out.join("data"))
    );

    // One path only, at its place under the target.
    let part = env.path("part");
    assert_ok(&env.run(&[
        "restore",
        "web",
        "--path",
        "data/nested/deeper",
        "--to",
        part.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read(part.join("data/nested/deeper/deepest/leaf.txt")).unwrap(),
        b"deep leaf\n"
    );
    assert!(!part.join("data/big.bin").exists());

    let ls = env.json(&["ls", "latest", "data/nested"]);
    let paths: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"/data/nested/deeper/deepest/leaf.txt"),
        "{paths:?}"
    );
    assert!(!paths.contains(&"/data/big.bin"));
    assert_ok(&env.run(&["check", "--read-data"]));
}

fn deduplication(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), random_bytes(100 << 20, 1)).unwrap();
    assert_ok(&env.run(&["backup", "--stack", "s", src.to_str().unwrap()]));
    let first = env.repo_bytes();
    assert!(first > 100 << 20, "the first backup stored {first} bytes");
    // Same data again, even under another name: under 1% more.
    std::fs::write(src.join("copy.bin"), random_bytes(100 << 20, 1)).unwrap();
    assert_ok(&env.run(&["backup", "--stack", "s", src.to_str().unwrap()]));
    let second = env.repo_bytes();
    assert!(
        ((second - first) as f64) < first as f64 * 0.01,
        "second backup of the same 100 MiB added {} bytes",
        second - first
    );

    // 1 MiB inserted in the middle of a 200 MiB file: under 10 MiB more.
    let big = random_bytes(200 << 20, 2);
    let f = env.path("big");
    std::fs::create_dir_all(&f).unwrap();
    std::fs::write(f.join("big.bin"), &big).unwrap();
    assert_ok(&env.run(&["backup", "--stack", "big", f.to_str().unwrap()]));
    let before = env.repo_bytes();
    let mut edited = big[..100 << 20].to_vec();
    edited.extend_from_slice(&random_bytes(1 << 20, 3));
    edited.extend_from_slice(&big[100 << 20..]);
    std::fs::write(f.join("big.bin"), &edited).unwrap();
    assert_ok(&env.run(&["backup", "--stack", "big", f.to_str().unwrap()]));
    let added = env.repo_bytes() - before;
    assert!(added < 10 << 20, "a 1 MiB insert added {added} bytes");
    let out = env.path("out");
    assert_ok(&env.run(&["restore", "big", "--to", out.to_str().unwrap()]));
    let restored = std::fs::read(out.join(f.strip_prefix("/").unwrap()).join("big.bin")).unwrap();
    assert!(restored == edited, "the edited file restores byte for byte");
}

fn catalog_loss(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    make_fixture(&src);
    assert_ok(&env.run_in(&src, &["backup", "--stack", "web", "data"]));
    std::fs::write(src.join("data/later.txt"), b"later").unwrap();
    assert_ok(&env.run_in(&src, &["backup", "--stack", "web", "data"]));
    let listed = env.json(&["snapshots"]);
    std::fs::remove_file(&env.catalog).unwrap();
    let _ = std::fs::remove_file(env.catalog.with_extension("db-wal"));
    let _ = std::fs::remove_file(env.catalog.with_extension("db-shm"));
    assert_eq!(
        env.json(&["snapshots"]),
        listed,
        "the snapshot list survives the catalog"
    );
    let out = env.path("out");
    assert_ok(&env.run(&["restore", "web", "--to", out.to_str().unwrap()]));
    assert_eq!(
        describe_tree(&src.join("data")),
        describe_tree(&out.join("data"))
    );
    // An explicit rebuild gives the same answer.
    let o = env.json(&["catalog", "rebuild"]);
    assert_eq!(o["snapshots"], 2);
    assert_eq!(env.json(&["snapshots"]), listed);
}

fn tampering(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::write(src.join("data/victim.bin"), random_bytes(3 << 20, 9)).unwrap();
    assert_ok(&env.run_in(&src, &["backup", "--stack", "web", "data"]));
    let snap = env.json(&["snapshots"])[0]["id"].as_str().unwrap()[..8].to_string();
    // A second stack whose data lives elsewhere stays unaffected.
    std::fs::create_dir_all(src.join("other")).unwrap();
    std::fs::write(src.join("other/fine.txt"), b"fine").unwrap();
    assert_ok(&env.run_in(&src, &["backup", "--stack", "other", "other"]));

    let packs: Vec<(String, u64)> = env
        .objects()
        .into_iter()
        .filter(|(k, _)| k.starts_with("data/"))
        .collect();
    let (key, _) = packs.iter().max_by_key(|(_, s)| *s).unwrap().clone();
    let pack_short = &key.rsplit('/').next().unwrap()[..8];
    let mut bytes = env.get(&key);
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    env.put(&key, bytes);

    assert_ok(&env.run(&["check"]));
    let o = env.run(&["check", "--read-data"]);
    assert_fails(&o, 1, pack_short);
    assert!(
        text(&o.stderr).contains(&snap),
        "the affected snapshot is named: {}",
        text(&o.stderr)
    );

    let out = env.path("out");
    let o = env.run(&["restore", "web", "--to", out.to_str().unwrap()]);
    assert_fails(&o, 1, pack_short);
    assert!(
        text(&o.stderr).contains("victim.bin"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        !out.join("data/victim.bin").exists(),
        "no damaged file is left looking restored"
    );
    let o = env.run(&["dump", "web", "data/victim.bin"]);
    assert_fails(&o, 1, pack_short);

    let out2 = env.path("out2");
    assert_ok(&env.run(&["restore", "other", "--to", out2.to_str().unwrap()]));
    assert_eq!(std::fs::read(out2.join("other/fine.txt")).unwrap(), b"fine");
}

fn environment_errors(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    let before = env.objects();
    let backup = |e: &Env| e.run(&["backup", "--stack", "s", src.to_str().unwrap()]);

    // A key file of another repository.
    let other = Env::init(Kind::Local).unwrap();
    let o = env
        .cmd()
        .env("DRCTL_KEY_FILE", &other.key_file)
        .args(["backup", "--stack", "s", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert_fails(&o, 2, "belongs to repository");
    // Not a key file at all, and no key file.
    let junk = env.path("junk.key");
    std::fs::write(&junk, "nonsense").unwrap();
    let o = env
        .cmd()
        .env("DRCTL_KEY_FILE", &junk)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_fails(&o, 2, "not a drctl key file");
    let o = env
        .cmd()
        .env("DRCTL_KEY_FILE", env.path("nope.key"))
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_fails(&o, 2, "nope.key");
    assert_eq!(env.objects(), before, "nothing was written");
    assert!(!env.catalog.exists(), "no catalog was created");

    // A newer format version.
    let mut config: serde_json::Value = serde_json::from_slice(&env.get("config")).unwrap();
    config["version"] = 3.into();
    env.put("config", serde_json::to_vec(&config).unwrap());
    let before = env.objects();
    let o = backup(&env);
    assert_fails(&o, 2, "format version 3; this drctl reads versions 1 to 2");
    assert_eq!(env.objects(), before, "nothing was written");

    match kind {
        Kind::S3 => {
            let s3 = env.s3.as_ref().unwrap();
            // A bucket that does not exist.
            let o = env
                .cmd()
                .env("DRCTL_REPO", "s3://no-such-bucket-drctl/x")
                .args(["backup", "--stack", "s", src.to_str().unwrap()])
                .output()
                .unwrap();
            assert_fails(&o, 2, "does not exist");
            let o = env
                .cmd()
                .env("DRCTL_REPO", "s3://no-such-bucket-drctl/x")
                .env("DRCTL_KEY_FILE", env.path("new.key"))
                .args(["init"])
                .output()
                .unwrap();
            assert_fails(&o, 2, "does not exist");
            assert!(
                !env.path("new.key").exists(),
                "no key file for a repository that was not made"
            );
            // An endpoint nobody listens on: fails fast.
            let t = std::time::Instant::now();
            let o = env
                .cmd()
                .env("DRCTL_ENDPOINT", "http://127.0.0.1:1")
                .args(["snapshots"])
                .output()
                .unwrap();
            assert_fails(&o, 2, "cannot reach");
            assert!(t.elapsed().as_secs() < 30, "took {:?}", t.elapsed());
            assert!(!text(&o.stderr).contains(
                &std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "\u{0}".into())
            ));
            let _ = s3;
        }
        Kind::Local => {
            let o = env
                .cmd()
                .env(
                    "DRCTL_REPO",
                    format!("file://{}", env.path("missing").display()),
                )
                .args(["snapshots"])
                .output()
                .unwrap();
            assert_fails(&o, 2, "no drctl repository here");
            assert!(!env.path("missing").exists(), "nothing was created");
        }
    }
    // init refuses to overwrite a repository or a key file.
    let o = env.run(&["init"]);
    assert_fails(&o, 2, "refusing to overwrite");
    let o = env
        .cmd()
        .env("DRCTL_KEY_FILE", env.path("fresh.key"))
        .args(["init"])
        .output()
        .unwrap();
    assert_fails(&o, 2, "refusing to overwrite");
    assert!(!env.path("fresh.key").exists());
}

fn write_only_key(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let wo = env.path("write-only.key");
    assert_ok(&env.run(&["key", "export", "--write-only", wo.to_str().unwrap()]));
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"written by a host that cannot read").unwrap();
    let o = env
        .cmd()
        .env("DRCTL_KEY_FILE", &wo)
        .env("DRCTL_CATALOG", env.path("wo.db"))
        .args(["backup", "--stack", "s", src.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&o);
    let o = env
        .cmd()
        .env("DRCTL_KEY_FILE", &wo)
        .env("DRCTL_CATALOG", env.path("wo.db"))
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_fails(&o, 2, "write-only");
    let out = env.path("out");
    assert_ok(&env.run(&["restore", "s", "--to", out.to_str().unwrap()]));
    assert_eq!(
        std::fs::read(out.join(src.strip_prefix("/").unwrap()).join("f")).unwrap(),
        b"written by a host that cannot read"
    );
}

for_each_store!(
    round_trip,
    deduplication,
    catalog_loss,
    tampering,
    environment_errors,
    write_only_key
);
