//! Behaviour a user relies on beyond the round trip: the files cache, points in time,
//! catalogs shared by processes or hosts, interruption, and quiet pipes.

mod common;

use std::time::Duration;

use common::{assert_fails, assert_ok, random_bytes, text, Env, Kind};

fn files_cache_rereads_only_changed_files(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..50 {
        std::fs::write(src.join(format!("d/f{i}")), format!("file {i}")).unwrap();
    }
    // A relative path: no directory above it (the test's own, where the catalog changes)
    // is recorded, so an unchanged tree must add nothing at all.
    let backup = || {
        let o = env.run_in(&src, &["--json", "backup", "--stack", "s", "d"]);
        assert_ok(&o);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let first = backup();
    assert_eq!(first["summary"]["files_read"], 50);
    // Content change, mtime-only change, and an inode change (replace by rename).
    std::fs::write(src.join("d/f1"), "changed").unwrap();
    let f2 = std::fs::File::options()
        .write(true)
        .open(src.join("d/f2"))
        .unwrap();
    f2.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    std::fs::write(src.join("d/tmp"), "file 3").unwrap();
    std::fs::rename(src.join("d/tmp"), src.join("d/f3")).unwrap();
    let second = backup();
    assert_eq!(second["summary"]["files"], 50);
    assert_eq!(second["summary"]["files_read"], 3, "{second}");
    let third = backup();
    assert_eq!(third["summary"]["files_read"], 0);
    assert_eq!(
        third["summary"]["bytes_added"], 0,
        "an unchanged tree adds nothing"
    );
}

fn restore_at_a_point_in_time(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut times = Vec::new();
    // The clock passed in, a minute apart (and minutes ago, for "1h ago" below): no
    // waiting for the wall clock to move.
    let start = chrono::Utc::now() - chrono::Duration::minutes(10);
    for v in 1..=3 {
        std::fs::write(src.join("state.txt"), format!("version {v}")).unwrap();
        let now = start + chrono::Duration::minutes(v);
        let o = env
            .cmd()
            .env(
                "DRCTL_NOW",
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
            .args(["--json", "backup", "--stack", "web", src.to_str().unwrap()])
            .output()
            .unwrap();
        assert_ok(&o);
        let o: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        times.push(o["time"].as_str().unwrap().to_string());
    }
    let rel = src.strip_prefix("/").unwrap().join("state.txt");
    // Exactly at the second snapshot's time, and between the second and the third.
    let second: chrono::DateTime<chrono::Utc> = times[1].parse().unwrap();
    for at in [second, second + chrono::Duration::milliseconds(500)] {
        let out = env.path(&format!("at-{}", at.timestamp_millis()));
        let at = at.to_rfc3339();
        assert_ok(&env.run(&["restore", "web", "--at", &at, "--to", out.to_str().unwrap()]));
        assert_eq!(
            std::fs::read_to_string(out.join(&rel)).unwrap(),
            "version 2"
        );
    }
    let out = env.path("latest");
    assert_ok(&env.run(&["restore", "web", "--to", out.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(out.join(&rel)).unwrap(),
        "version 3"
    );
    let o = env.run(&[
        "restore",
        "web",
        "--at",
        "2000-01-01T00:00:00Z",
        "--to",
        env.path("none").to_str().unwrap(),
    ]);
    assert_fails(&o, 2, "no snapshot at or before");
    let o = env.run(&[
        "restore",
        "web",
        "--at",
        "tuesday-ish",
        "--to",
        env.path("none").to_str().unwrap(),
    ]);
    assert_fails(&o, 2, "cannot read time");
    // Relative time: an hour ago there was nothing yet.
    let o = env.run(&[
        "restore",
        "web",
        "--at",
        "1h ago",
        "--to",
        env.path("none").to_str().unwrap(),
    ]);
    assert_fails(&o, 2, "no snapshot");
    let o = env.run(&[
        "restore",
        "nosuchstack",
        "--to",
        env.path("none").to_str().unwrap(),
    ]);
    assert_fails(&o, 2, "no stack or snapshot named nosuchstack");
}

fn two_hosts_and_concurrent_processes(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    for stack in ["a", "b", "c"] {
        std::fs::create_dir_all(src.join(stack)).unwrap();
        std::fs::write(
            src.join(stack).join("data.bin"),
            random_bytes(6 << 20, stack.len() as u64 + stack.as_bytes()[0] as u64),
        )
        .unwrap();
        std::fs::write(
            src.join(stack).join("shared.bin"),
            random_bytes(4 << 20, 99),
        )
        .unwrap();
    }
    // Three backups at once through one catalog.
    let handles: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|s| {
            env.cmd()
                .args([
                    "--quiet",
                    "backup",
                    "--stack",
                    s,
                    src.join(s).to_str().unwrap(),
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut h in handles {
        assert!(h.wait().unwrap().success());
    }
    // A second host (its own catalog) sees them all, and its backup deduplicates against them.
    let host2 = env.path("host2.db");
    let o = env
        .cmd()
        .env("DRCTL_CATALOG", &host2)
        .args(["--json", "snapshots"])
        .output()
        .unwrap();
    assert_ok(&o);
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let o = env
        .cmd()
        .env("DRCTL_CATALOG", &host2)
        .args([
            "--json",
            "backup",
            "--stack",
            "a",
            src.join("a").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["summary"]["bytes_added"].as_u64().unwrap() < 100_000,
        "{v}"
    );
    // The first host's catalog refreshes and sees the second host's snapshot.
    assert_eq!(env.snapshot_count(), 4);
    assert_ok(&env.run(&["check", "--read-data"]));
}

fn interrupt_commits_nothing(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big.bin"), random_bytes(300 << 20, 5)).unwrap();
    let child = env
        .cmd()
        .args(["backup", "--stack", "s", src.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupted once it has stored data, not at a guessed moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !env.objects().iter().any(|(k, _)| k.starts_with("data/")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never stored a pack"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_fails(&o, 130, "interrupted");
    assert_eq!(env.snapshot_count(), 0);
    assert_ok(&env.run(&["check"]));
}

fn pipes_get_no_progress_output(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), random_bytes(5 << 20, 1)).unwrap();
    let o = env.run(&["backup", "--stack", "s", src.to_str().unwrap()]);
    assert_ok(&o);
    assert!(o.stderr.is_empty(), "stderr on a pipe: {}", text(&o.stderr));
    assert!(
        text(&o.stdout).starts_with("snapshot "),
        "{}",
        text(&o.stdout)
    );
    // --json: exactly one document on stdout.
    let o = env.run(&[
        "--json",
        "restore",
        "s",
        "--to",
        env.path("out").to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert!(o.stderr.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["files"], 1);
    // A closed pipe is not an error.
    let mut child = env
        .cmd()
        .args([
            "dump",
            "s",
            &format!("{}/f", src.strip_prefix("/").unwrap().display()),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{:?} {}", o.status, text(&o.stderr));
}

fn usage_errors(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let o = env.run(&["backup", "--stack", "s"]);
    assert_eq!(o.status.code(), Some(2));
    let o = env.run(&["backup", "--stack", "s", "/no/such/path"]);
    assert_fails(&o, 2, "/no/such/path");
    let o = env.run(&["check", "--read-data=250"]);
    assert_fails(&o, 2, "percentage");
    let o = env.run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let bad = env.path("bad.toml");
    std::fs::write(&bad, "[repository]\nurl = \"file:///x\"\nbucket = 3\n").unwrap();
    let o = env
        .cmd()
        .env("DRCTL_CONFIG", &bad)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_fails(&o, 2, "bad.toml:3:1");
}

for_each_store!(
    files_cache_rereads_only_changed_files,
    restore_at_a_point_in_time,
    two_hosts_and_concurrent_processes,
    interrupt_commits_nothing,
    pipes_get_no_progress_output,
    usage_errors,
);
