//! Prune against backups that outlive its grace period, killed prunes, and interrupted
//! stack backups: nothing a snapshot needs is ever deleted, and nothing blocks for hours.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{assert_fails, assert_ok, random_bytes, text, Env, Kind};
use rand::{Rng, SeedableRng};

fn write_files(dir: &Path, n: usize, size: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("f{i}.bin")),
            random_bytes(size, seed + i as u64),
        )
        .unwrap();
    }
}

fn same_tree(a: &Path, b: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for n in names {
        let (x, y) = (a.join(&n), b.join(&n));
        if x.is_dir() {
            continue;
        }
        assert!(
            std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
            "{} differs after restore",
            y.display()
        );
    }
}

/// A backup paused (SIGSTOP) across two `prune --grace 0s` runs, at random points, ten
/// rounds: it either fails with nothing committed, or commits a snapshot that checks
/// clean with `--read-data` and restores byte for byte. Each round deduplicates against
/// a snapshot that was forgotten just before, so prune has packs to delete under it.
#[test]
fn a_backup_paused_across_two_prunes_never_commits_missing_data() {
    let seed = std::env::var("DRCTL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261203u64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let env = Env::init(Kind::Local).unwrap();
    // Prunes run as another host would: their own catalog.
    let prune_catalog = env.path("prune-catalog.db");
    let prune = |env: &Env| {
        env.cmd()
            .env("DRCTL_CATALOG", &prune_catalog)
            .args(["prune", "--grace", "0s"])
            .output()
            .unwrap()
    };
    let keep = env.path("keep");
    write_files(&keep, 1, 4096, 1);
    assert_ok(&env.run(&["backup", "--stack", "keep", keep.to_str().unwrap()]));

    let (mut failed, mut committed, mut retried) = (0, 0, 0);
    let mut window = 1.0f64;
    for round in 0..10u64 {
        // Old data, backed up and then forgotten: its packs are prune's to take.
        let old = env.path(&format!("old{round}"));
        write_files(&old, 4, 3 << 20, 100 * round);
        assert_ok(&env.run(&["backup", "--stack", "old", old.to_str().unwrap()]));
        let snaps = env.json(&["snapshots"]);
        let old_id = snaps
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stack"] == "old")
            .map(|s| s["id"].as_str().unwrap().to_string())
            .unwrap();
        let key = env
            .objects()
            .into_iter()
            .map(|(k, _)| k)
            .find(|k| k.starts_with("snapshots/") && k.ends_with(&old_id))
            .unwrap();
        rt_delete(&env, &key);

        // The new backup: the old files again (deduplicated) and new ones (uploaded).
        let src = env.path(&format!("src{round}"));
        write_files(&src, 4, 3 << 20, 100 * round);
        write_files(&src.join("new"), 3, 3 << 20, 100 * round + 50);
        let before = env.snapshot_count();
        let started = Instant::now();
        let child = env
            .cmd()
            .args(["backup", "--stack", "s", src.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(rng.gen_range(0.05..window)));
        let pid = child.id() as libc::pid_t;
        // SAFETY: signals to our own child, which has not been waited for.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        for _ in 0..2 {
            let o = prune(&env);
            assert_ok(&o);
        }
        unsafe { libc::kill(pid, libc::SIGCONT) };
        let o = child.wait_with_output().unwrap();
        let took = started.elapsed().as_secs_f64();
        match o.status.code() {
            Some(0) => {
                committed += 1;
                // Refused at the commit, read again and committed.
                if text(&o.stderr).contains("reading the affected files again") {
                    retried += 1;
                }
                assert_eq!(env.snapshot_count(), before + 1);
                assert_ok(&env.run(&["check", "--read-data"]));
                let out = env.path(&format!("out{round}"));
                assert_ok(&env.run(&["restore", "s", "--to", out.to_str().unwrap()]));
                let restored = out.join(src.strip_prefix("/").unwrap());
                same_tree(&src, &restored);
                same_tree(&src.join("new"), &restored.join("new"));
            }
            Some(1) => {
                failed += 1;
                assert_fails(&o, 1, "nothing was committed");
                assert_eq!(env.snapshot_count(), before, "{}", text(&o.stderr));
                assert_ok(&env.run(&["check", "--read-data"]));
                // The next backup, unpaused, commits a sound snapshot.
                assert_ok(&env.run(&["backup", "--stack", "s", src.to_str().unwrap()]));
                assert_ok(&env.run(&["check", "--read-data"]));
            }
            other => panic!("round {round}: rc {other:?}: {}", text(&o.stderr)),
        }
        // Keep the pause inside the backup as the data gets deduplicated more.
        window = (took * 0.7).clamp(0.1, 3.0);
    }
    eprintln!("{committed} committed ({retried} after reading again), {failed} failed safely");
    assert!(
        failed + retried > 0,
        "no round paused the backup while prune deleted what it uses: the test proves nothing"
    );
}

fn rt_delete(env: &Env, key: &str) {
    common::rt().block_on(env.store().delete(key)).unwrap();
}

/// A prune killed with SIGKILL leaves its lock behind; the next prune (and a dry run)
/// takes it over at once, saying so, instead of waiting hours.
#[test]
fn a_killed_prunes_lock_is_taken_over_with_a_warning() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    write_files(&src, 2, 1 << 20, 7);
    assert_ok(&env.run(&["backup", "--stack", "s", src.to_str().unwrap()]));
    // The lock a prune of this host with a dead pid left.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let host = text(
        &std::process::Command::new("hostname")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let body = format!("{{\"hostname\":{host:?},\"pid\":{dead_pid}}}");
    env.put("locks/prune-00000000deadbeef", body.into_bytes());
    let o = env.run(&["prune", "--dry-run"]);
    assert_ok(&o);
    let o = env.run(&["prune"]);
    assert_ok(&o);
    let err = text(&o.stderr);
    assert!(
        err.contains("warning: took over the prune lock")
            && err.contains(&format!("pid {dead_pid}"))
            && err.contains("that process is gone"),
        "{err}"
    );
    assert!(!env.objects().iter().any(|(k, _)| k.starts_with("locks/")));

    // A live prune's lock (this test process is alive) is respected: skipped, rc 3.
    let body = format!("{{\"hostname\":{host:?},\"pid\":{}}}", std::process::id());
    env.put("locks/prune-00000000cafef00d", body.into_bytes());
    let o = env.run(&["prune"]);
    assert_fails(&o, 3, "another prune holds the repository's prune lock");
    assert_ok(&env.run(&["prune", "--dry-run"]));

    // Another host's lock is taken over once it is past its lifetime without a refresh.
    let body = "{\"hostname\":\"elsewhere\",\"pid\":1}".to_string();
    let root = env.dir.path().join("repo");
    std::fs::remove_file(root.join("locks/prune-00000000cafef00d")).unwrap();
    env.put("locks/prune-0000000000000001", body.into_bytes());
    let o = env.run(&["prune"]);
    assert_fails(&o, 3, "pid 1 on elsewhere");
    let f = std::fs::File::options()
        .write(true)
        .open(root.join("locks/prune-0000000000000001"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(31 * 60))
        .unwrap();
    let o = env.run(&["prune"]);
    assert_ok(&o);
    assert!(
        text(&o.stderr).contains("not refreshed for"),
        "{}",
        text(&o.stderr)
    );
}

/// A stack backup killed after one source committed its snapshot leaves a snapshot no
/// recovery point names. It is never offered for restore, and once a later point exists,
/// `forget` removes it and `prune` reclaims its data.
#[test]
fn orphan_source_snapshots_of_a_killed_stack_backup_are_collected() {
    let env = Env::init(Kind::Local).unwrap();
    let (a, b) = (env.path("a"), env.path("b"));
    write_files(&a, 1, 8 << 20, 300);
    write_files(&b, 4, 24 << 20, 400);
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/stack.toml"),
        format!(
            "[stack.web]\n[stack.web.keep]\nlast = 1\n\
             [[stack.web.source]]\nname = \"a\"\nkind = \"volume\"\npath = \"{}\"\n\
             [[stack.web.source]]\nname = \"b\"\nkind = \"volume\"\npath = \"{}\"\n",
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    let manifests = |env: &Env| {
        env.objects()
            .iter()
            .filter(|(k, _)| k.starts_with("snapshots/"))
            .count()
    };
    let mut child = env.cmd().args(["backup", "web"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while manifests(&env) == 0 {
        assert!(Instant::now() < deadline, "source a never committed");
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(manifests(&env), 1, "killed after source a only");
    assert!(env
        .json(&["snapshots", "web"])
        .as_array()
        .unwrap()
        .is_empty());
    let out = env.path("out");
    assert_fails(
        &env.run(&["restore", "web", "--to", out.to_str().unwrap()]),
        2,
        "no snapshot",
    );
    assert!(!out.exists());

    // A complete point later: the orphan is garbage, and forget says so.
    write_files(&a, 1, 8 << 20, 301);
    assert_ok(&env.run(&["backup", "web"]));
    assert_eq!(manifests(&env), 3);
    let plan = env.json(&["forget", "--dry-run"]);
    let items = plan["stacks"][0]["items"].as_array().unwrap().clone();
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "orphan" && i["keep"] == false),
        "{plan}"
    );
    assert_ok(&env.run(&["forget"]));
    assert_eq!(manifests(&env), 2, "the point's two snapshots stay");
    let before = env.repo_bytes();
    assert_ok(&env.run(&["prune", "--grace", "0s"]));
    // The grace period is at least twice the longest backup: let the marks ripen.
    age_marks(&env);
    assert_ok(&env.run(&["prune", "--grace", "0s"]));
    assert!(
        env.repo_bytes() < before - (7 << 20),
        "the orphan's 8 MiB are reclaimed"
    );
    assert_ok(&env.run(&["check", "--read-data"]));
    assert_ok(&env.run(&["restore", "web", "--to", out.to_str().unwrap()]));
}

/// After a forget and a prune that repacked and merged the index files, `check` from
/// five freshly rebuilt catalogs finds nothing (the index names one live copy of each blob, whatever order a catalog
/// reads it in), and agrees with restore.
#[test]
fn check_after_a_repacking_prune_is_clean_from_any_fresh_catalog() {
    let env = Env::init(Kind::Local).unwrap();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    // Small files: one blob each, many to a pack.
    for i in 0..400u64 {
        std::fs::write(src.join(format!("f{i:03}")), random_bytes(40_000, i)).unwrap();
    }
    assert_ok(&env.run(&["backup", "--stack", "s", src.to_str().unwrap()]));
    let first: Vec<String> = env
        .objects()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("snapshots/"))
        .collect();
    // Half the files change: half of each pack of the first snapshot is dead once it goes.
    for i in (0..400u64).step_by(2) {
        std::fs::write(
            src.join(format!("f{i:03}")),
            random_bytes(40_000, 10_000 + i),
        )
        .unwrap();
    }
    assert_ok(&env.run(&["backup", "--stack", "s", src.to_str().unwrap()]));
    for k in &first {
        rt_delete(&env, k);
    }
    let index_files = |env: &Env| {
        env.objects()
            .iter()
            .filter(|(k, _)| k.starts_with("index/"))
            .count()
    };
    let other = env.path("other");
    write_files(&other, 1, 4096, 7);
    assert_ok(&env.run(&["backup", "--stack", "other", other.to_str().unwrap()]));
    assert_eq!(index_files(&env), 3, "one per backup");
    let o = env.json(&["prune"]);
    // The three small index files are merged into one; the repack wrote one more.
    assert_eq!(index_files(&env), 2, "{o}");
    assert!(o["packs_repacked"].as_u64().unwrap() >= 1, "{o}");
    assert!(o["blobs_repacked"].as_u64().unwrap() >= 100, "{o}");
    for round in 0..5 {
        std::fs::remove_file(&env.catalog).unwrap();
        let o = env.run(&["--json", "check"]);
        assert_ok(&o);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            report["problems"].as_array().unwrap().len(),
            0,
            "round {round}: {report}"
        );
    }
    assert_ok(&env.run(&["check", "--read-data"]));
    let out = env.path("out");
    assert_ok(&env.run(&["restore", "s", "--to", out.to_str().unwrap()]));
    same_tree(&src, &out.join(src.strip_prefix("/").unwrap()));
    // Once the grace period is over the old packs go, and everything still checks.
    assert_ok(&env.run(&["prune", "--grace", "0s"]));
    assert_ok(&env.run(&["prune", "--grace", "0s"]));
    std::fs::remove_file(&env.catalog).unwrap();
    assert_ok(&env.run(&["check", "--read-data"]));
}

/// Makes every prune mark an hour old (the local store's clock is the file's mtime).
fn age_marks(env: &Env) {
    for (k, _) in env.objects() {
        if k.starts_with("marks/") {
            let f = std::fs::File::options()
                .write(true)
                .open(env.dir.path().join("repo").join(&k))
                .unwrap();
            f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
                .unwrap();
        }
    }
}
