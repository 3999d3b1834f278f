//! Unattended operation through the real binary: `run --due` against a clock passed in,
//! the per-stack lock, status and metrics, notifications, schedule install, forget and
//! prune (alone, and against concurrent backups from two hosts).

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::docker::{self, skip};
use common::{assert_fails, assert_ok, listener, text, unique, Env, Kind};

/// Writes `schedules/<name>.toml` next to the env's drctl.toml.
fn stack_file(env: &Env, name: &str, body: &str) {
    let dir = env.path("schedules");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), body).unwrap();
}

/// A volume stack over a fresh directory with a few files.
fn volume_stack(env: &Env, name: &str, extra: &str) -> PathBuf {
    let data = env.path(&format!("data-{name}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), format!("{name} a")).unwrap();
    stack_file(
        env,
        name,
        &format!(
            "[stack.{name}]\n{extra}\n[[stack.{name}.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\n",
            data.display()
        ),
    );
    data
}

fn at(env: &Env, now: &str, args: &[&str]) -> std::process::Output {
    env.cmd().env("DRCTL_NOW", now).args(args).output().unwrap()
}

/// Point times of a stack, as RFC 3339 UTC minutes (`10:03`).
fn point_minutes(env: &Env, stack: &str) -> Vec<String> {
    let o = at(env, "2030-01-01T00:00:00Z", &["--json", "snapshots", stack]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["time"].as_str().unwrap()[11..16].to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn run_due_from_repeated_invocations_runs_exactly_the_expected_jobs() {
    let env = Env::init(Kind::Local).unwrap();
    volume_stack(&env, "shop", "schedule = \"*/15 * * * *\"");
    volume_stack(
        &env,
        "blog",
        "schedule = \"0 * * * *\"\ntimezone = \"Europe/Moscow\"",
    );
    // Every 5 minutes like cron, the host down from 10:20 to 10:50, and 10:03 twice.
    let invocations = [
        "09:58", "10:03", "10:03", "10:08", "10:13", "10:18", "10:53", "10:58", "11:03",
    ];
    for t in invocations {
        let o = at(&env, &format!("2026-11-20T{t}:00Z"), &["run", "--due"]);
        assert_ok(&o);
    }
    // shop: first sight, 10:00, 10:15, one catch-up for 10:30 and 10:45, 11:00.
    assert_eq!(
        point_minutes(&env, "shop"),
        ["09:58", "10:03", "10:18", "10:53", "11:03"]
    );
    // blog: hourly in Moscow (whole hours in UTC too): first sight, 10:00, 11:00.
    assert_eq!(point_minutes(&env, "blog"), ["09:58", "10:03", "11:03"]);

    // schedule list knows the last success and the next slot.
    let o = at(
        &env,
        "2026-11-20T11:04:00Z",
        &["--json", "schedule", "list"],
    );
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let shop = v
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == "shop")
        .unwrap();
    assert_eq!(shop["last_success"], "2026-11-20T11:03:00Z");
    assert_eq!(shop["next_run"], "2026-11-20T11:15:00Z");
    assert_eq!(shop["due"], false);
}

#[test]
fn run_due_runs_scheduled_drills_once_per_slot_after_due_backups() {
    let env = Env::init(Kind::Local).unwrap();
    volume_stack(&env, "shop", "schedule = \"0 0 * * *\"\nrpo = \"2d\"");
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    // Sundays 04:00 in Moscow: 01:00 UTC.
    std::fs::write(
        env.path("restore-drills/shop.toml"),
        "[drill.weekly]\nstack = \"shop\"\nschedule = \"0 4 * * 0\"\ntimezone = \"Europe/Moscow\"\n\
         [[drill.weekly.check]]\nsource = \"files\"\npath = \"a.txt\"\n",
    )
    .unwrap();
    assert_ok(&at(&env, "2026-11-21T23:00:00Z", &["backup", "shop"]));
    // Saturday 23:30 (the drill is new: it runs at once), Sunday 00:30 (the backup only),
    // 01:05 (the drill's slot), 01:10 (nothing), and a week later at 02:00, when both are
    // due: the backup (older slot) first, so the drill restores the new point.
    for t in [
        "2026-11-21T23:30",
        "2026-11-22T00:30",
        "2026-11-22T01:05",
        "2026-11-22T01:10",
        "2026-11-29T02:00",
    ] {
        assert_ok(&at(&env, &format!("{t}:00Z"), &["run", "--due"]));
    }
    let o = at(
        &env,
        "2026-11-29T02:01:00Z",
        &["--json", "drill", "history"],
    );
    assert_ok(&o);
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let runs: Vec<(String, String, String)> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["started"].as_str().unwrap()[..16].to_string(),
                r["point_time"].as_str().unwrap()[..16].to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("2026-11-21T23:30", "2026-11-21T23:00", "PASS"),
        ("2026-11-22T01:05", "2026-11-22T00:30", "PASS"),
        ("2026-11-29T02:00", "2026-11-29T02:00", "PASS"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(runs, want);
    assert_eq!(
        point_minutes(&env, "shop"),
        ["23:00", "00:30", "02:00"],
        "backups ran at their own slots"
    );
    let o = at(
        &env,
        "2026-11-29T02:01:00Z",
        &["--json", "schedule", "list"],
    );
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let drill = v
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job"] == "drill weekly")
        .unwrap_or_else(|| panic!("no drill job in {v:#}"));
    assert_eq!(drill["last_success"], "2026-11-29T02:00:00Z");
    assert_eq!(drill["next_run"], "2026-12-06T01:00:00Z");

    // A drill that fails makes the invocation fail (exit 1), and is not retried every
    // minute: its result is the answer for its slot.
    std::fs::remove_file(env.path("data-shop/a.txt")).unwrap();
    std::fs::write(env.path("data-shop/b.txt"), "b").unwrap();
    assert_ok(&at(&env, "2026-12-06T00:30:00Z", &["run", "--due"]));
    let o = at(&env, "2026-12-06T01:02:00Z", &["run", "--due"]);
    assert_fails(&o, 1, "drill FAIL: weekly");
    assert_ok(&at(&env, "2026-12-06T01:03:00Z", &["run", "--due"]));
    let h = env.json(&["drill", "history", "weekly"]);
    assert_eq!(h.as_array().unwrap().len(), 4);
}

#[test]
fn the_daemon_runs_a_due_drill_and_stores_its_result() {
    let env = Env::init(Kind::Local).unwrap();
    volume_stack(&env, "shop", "");
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    std::fs::write(
        env.path("restore-drills/shop.toml"),
        "[drill.often]\nstack = \"shop\"\nschedule = \"0 0 1 1 *\"\n\
         [[drill.often.check]]\nsource = \"files\"\npath = \"a.txt\"\n",
    )
    .unwrap();
    assert_ok(&env.run(&["backup", "shop"]));
    // The drill has never run, so it is due at once; the stack has no backup schedule.
    let mut daemon = env
        .cmd()
        .args(["daemon"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let history = loop {
        let h = env.json(&["drill", "history"]);
        if !h.as_array().unwrap().is_empty() {
            break h;
        }
        assert!(daemon.try_wait().unwrap().is_none(), "the daemon exited");
        assert!(Instant::now() < deadline, "the daemon never ran the drill");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Once, not again every second: its result answers its slot.
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.wait().unwrap();
    let mut stderr = String::new();
    daemon
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("drill often: ok"), "{stderr}");
    assert_eq!(history[0]["verdict"], "PASS", "{history:#}");
    assert_eq!(env.json(&["drill", "history"]).as_array().unwrap().len(), 1);
}

#[test]
fn a_second_run_finds_the_lock_and_a_killed_holder_never_blocks() {
    let env = Env::init(Kind::Local).unwrap();
    let (hook_url, events) = listener();
    let flag = env.path("in-hook");
    volume_stack(
        &env,
        "slow",
        &format!(
            "schedule = \"0 3 * * *\"\n[stack.slow.notify]\nwebhook = \"{hook_url}\"\ntimeout = \"5s\"\n\
             [[stack.slow.hook]]\nwhen = \"pre\"\ncommand = \"touch {} && sleep 4\"\n",
            flag.display()
        ),
    );
    let mut first = env.cmd().args(["run", "slow"]).spawn().unwrap();
    let t = Instant::now();
    while !flag.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "pre hook never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = env.run(&["run", "slow"]);
    assert_fails(&o, 3, "stack slow: another run holds its lock");
    assert!(text(&o.stderr).contains(&format!("pid {}", first.id())));
    // The skip is recorded and alerted.
    let status = env.json(&["status"]);
    assert_eq!(status["stacks"][0]["last_run"]["status"], "skipped");
    let mut seen = Vec::new();
    while let Ok(b) = events.recv_timeout(Duration::from_secs(5)) {
        seen.push(b);
        if seen.iter().any(|b| b.contains("\"skipped\"")) {
            break;
        }
    }
    assert!(
        seen.iter().any(|b| b.contains("\"event\":\"skipped\"")),
        "{seen:?}"
    );

    // SIGKILL the holder: the kernel drops its lock and the next run proceeds.
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::remove_file(&flag).unwrap();
    let o = env.run(&["run", "slow"]);
    assert_ok(&o);
    assert_eq!(point_minutes(&env, "slow").len(), 1);
}

#[test]
fn status_check_metrics_and_a_dead_notifier() {
    let env = Env::init(Kind::Local).unwrap();
    let dead_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    volume_stack(
        &env,
        "shop",
        &format!(
            "schedule = \"*/15 * * * *\"\nrpo = \"15m\"\n[stack.shop.notify]\n\
             healthchecks = \"http://127.0.0.1:{dead_port}/ping/x\"\ntimeout = \"2s\"\n"
        ),
    );
    volume_stack(&env, "never", "rpo = \"1d\"");
    // The notifier is down: the backup still succeeds, with a warning.
    let o = at(&env, "2026-11-20T10:00:00Z", &["run", "shop"]);
    assert_ok(&o);
    assert!(
        text(&o.stderr).contains("warning: notification to http://127.0.0.1"),
        "{}",
        text(&o.stderr)
    );

    let o = at(&env, "2026-11-20T10:10:00Z", &["--json", "status"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_name: BTreeMap<String, serde_json::Value> = v["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stack"].as_str().unwrap().to_string(), s.clone()))
        .collect();
    assert_eq!(by_name["shop"]["health"], "OK");
    assert_eq!(by_name["shop"]["age_seconds"], 600);
    assert_eq!(by_name["shop"]["next_run"], "2026-11-20T10:15:00Z");
    assert_eq!(by_name["never"]["health"], "MISSING");

    // Only the stack with a point: OK at 10:10, LATE at 10:20.
    std::fs::remove_file(env.path("schedules/never.toml")).unwrap();
    assert_ok(&at(&env, "2026-11-20T10:10:00Z", &["status", "--check"]));
    let metrics = env.path("drctl.prom");
    let o = at(
        &env,
        "2026-11-20T10:20:00Z",
        &[
            "--metrics-file",
            metrics.to_str().unwrap(),
            "status",
            "--check",
        ],
    );
    assert_fails(&o, 1, "1 stack(s) not OK: shop (LATE)");
    assert!(text(&o.stdout).contains("LATE"));

    // The metrics file parses as Prometheus text format, with the values status showed.
    let parsed = parse_prometheus(&metrics);
    assert_eq!(parsed["drctl_rpo_met{stack=shop}"], 0.0);
    assert_eq!(parsed["drctl_rpo_seconds{stack=shop}"], 900.0);
    assert_eq!(
        parsed["drctl_recovery_point_age_seconds{stack=shop}"],
        1200.0
    );
    assert_eq!(
        parsed["drctl_last_run_success{source=files,stack=shop}"],
        1.0
    );
    assert_eq!(
        parsed["drctl_last_success_timestamp_seconds{source=files,stack=shop}"],
        1_795_168_800.0
    );
    assert!(parsed["drctl_repository_size_bytes"] > 0.0);
}

/// Parses a metrics file with the Prometheus project's own Python client parser; returns
/// `name{label=value,...}` (labels sorted) to value.
/// The daemon, sent SIGTERM while a volume backup holds a stopped container, aborts the
/// job, starts the container again and exits within seconds, leaving no point behind.
#[test]
fn daemon_stops_on_sigterm_mid_backup_and_restarts_held_containers() {
    if skip() {
        return;
    }
    let web = docker::sleeper(&unique("drctl-t-dweb"));
    let env = Env::init(Kind::Local).unwrap();
    let data = env.path("data-web");
    std::fs::create_dir_all(&data).unwrap();
    // Large enough that the read (with the container stopped) outlasts the signal's trip.
    std::fs::write(data.join("big.bin"), common::random_bytes(160 << 20, 4)).unwrap();
    stack_file(
        &env,
        "web",
        &format!(
            "[stack.web]\nschedule = \"* * * * *\"\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\nstop = [\"{}\"]\n",
            data.display(),
            web.name
        ),
    );
    let mut daemon = env
        .cmd()
        .args(["daemon"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The job is due at once (no run yet); wait until it holds the container.
    let deadline = Instant::now() + Duration::from_secs(60);
    while web.status() != "exited" {
        assert!(
            daemon.try_wait().unwrap().is_none(),
            "the daemon exited before the backup held the container"
        );
        assert!(
            Instant::now() < deadline,
            "the daemon never stopped the container"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let signalled = Instant::now();
    let status = loop {
        if let Some(s) = daemon.try_wait().unwrap() {
            break s;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(20),
            "the daemon did not exit within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    let mut stderr = String::new();
    daemon
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        took < Duration::from_secs(10),
        "exit took {took:?}\n{stderr}"
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // The container runs again, started by the daemon itself (no later command did it).
    assert_eq!(web.status(), "running", "{stderr}");
    // No recovery point and no snapshot, complete or not, and the store is consistent.
    let o = env.run(&["--json", "snapshots"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().map(|a| a.len()), Some(0), "{v}");
    assert!(point_minutes(&env, "web").is_empty());
    assert_ok(&env.run(&["check"]));
    // The run is in the history as interrupted, so the job stays due.
    let o = env.run(&["--json", "schedule", "list"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["due"], true, "{v}");
    assert!(v[0]["last_success"].is_null(), "{v}");
}

fn parse_prometheus(path: &Path) -> BTreeMap<String, f64> {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}}" if labels else s.name, s.value)
"#;
    let o = Command::new("python3")
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "the metrics file does not parse (is prometheus_client installed? .ci/run installs it): {}",
        text(&o.stderr)
    );
    text(&o.stdout)
        .lines()
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn schedule_install_output_verifies_and_the_cron_block_is_replaced_not_duplicated() {
    let env = Env::init(Kind::Local).unwrap();
    volume_stack(&env, "shop", "schedule = \"*/15 * * * *\"");
    // A stack with a point-in-time source: its archive is kept running too.
    std::fs::write(
        env.path("schedules/orders.toml"),
        "[stack.orders]\n[[stack.orders.source]]\nname = \"db\"\nkind = \"postgres\"\n\
         container = \"pg\"\npitr = true\n",
    )
    .unwrap();
    let o = env.run(&["schedule", "install", "--systemd", "--dry-run"]);
    assert_ok(&o);
    let out = text(&o.stdout);
    let units = env.path("units");
    std::fs::create_dir_all(&units).unwrap();
    // Each file is printed after a `# /path` line.
    let mut names: Vec<PathBuf> = Vec::new();
    let mut bodies: Vec<String> = Vec::new();
    for line in out.lines() {
        if let Some(path) = line.strip_prefix("# /") {
            // A template is verified as an instance of it.
            let file = Path::new(path).file_name().unwrap().to_str().unwrap();
            names.push(units.join(file.replace("@.service", "@orders.service")));
            bodies.push(String::new());
        } else if let Some(b) = bodies.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    for (n, b) in names.iter().zip(&bodies) {
        std::fs::write(n, b).unwrap();
    }
    assert_eq!(names.len(), 3, "{out}");
    assert!(out.contains("Persistent=true") && out.contains("run --due"));
    assert!(
        out.contains("--quiet archive %i") && out.contains("Restart=always"),
        "{out}"
    );
    let v = Command::new("systemd-analyze")
        .arg("verify")
        .args(&names)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    assert!(
        v.status.success() && text(&v.stderr).trim().is_empty(),
        "systemd-analyze verify: {}{}",
        text(&v.stdout),
        text(&v.stderr)
    );

    let crontab = env.path("crontab");
    std::fs::write(
        &crontab,
        "MAILTO=ops@example.com\n0 5 * * * /usr/bin/other\n",
    )
    .unwrap();
    let args = [
        "schedule",
        "install",
        "--cron",
        "--crontab",
        crontab.to_str().unwrap(),
    ];
    assert_ok(&env.run(&args));
    let once = std::fs::read_to_string(&crontab).unwrap();
    assert!(once.starts_with("MAILTO=ops@example.com\n0 5 * * * /usr/bin/other\n"));
    assert_eq!(once.matches("run --due").count(), 1, "{once}");
    assert_eq!(once.matches("--quiet archive orders").count(), 1, "{once}");
    assert!(once.contains("flock -n "), "{once}");
    assert_ok(&env.run(&args));
    assert_eq!(std::fs::read_to_string(&crontab).unwrap(), once);
}

#[test]
fn forget_keeps_the_policy_and_prune_reclaims_only_after_the_grace_period() {
    let env = Env::init(Kind::Local).unwrap();
    // An empty repository: prune refuses, and says why.
    assert_fails(
        &env.run(&["prune"]),
        1,
        "refusing to prune: the repository lists no snapshots",
    );

    let data = volume_stack(&env, "shop", "[stack.shop.keep]\nlast = 2\n");
    let mut expected = Vec::new();
    for (i, t) in ["10:00", "11:00", "12:00", "13:00"].iter().enumerate() {
        // A new 3 MiB file each time, and the previous one dropped: old data dies.
        for f in std::fs::read_dir(&data).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        std::fs::write(
            data.join(format!("big{i}")),
            common::random_bytes(3 << 20, i as u64),
        )
        .unwrap();
        assert_ok(&at(&env, &format!("2026-11-20T{t}:00Z"), &["run", "shop"]));
        expected.push(common::tree_files(&data));
    }
    let packs = || -> Vec<(String, u64)> {
        env.objects()
            .into_iter()
            .filter(|(k, _)| k.starts_with("data/") || k.starts_with("meta/"))
            .collect()
    };
    let before = env.repo_bytes();

    let o = env.run(&["--json", "forget", "--dry-run"]);
    assert_ok(&o);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let items = plan["stacks"][0]["items"].as_array().unwrap();
    let kept = |kind: &str| -> Vec<bool> {
        items
            .iter()
            .filter(|i| i["kind"] == kind)
            .map(|i| i["keep"].as_bool().unwrap())
            .collect()
    };
    assert_eq!(kept("point"), [false, false, true, true]);
    // The run history goes back as far as the kept points: the runs of 10:00 and 11:00.
    assert_eq!(kept("run"), [false, false]);
    let run_logs = || {
        env.objects()
            .iter()
            .filter(|(k, _)| k.starts_with("runs/"))
            .count()
    };
    assert_eq!(run_logs(), 4);
    assert_eq!(
        point_minutes(&env, "shop").len(),
        4,
        "a dry run removes nothing"
    );
    let o = env.run(&["forget"]);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("run logs: remove 2 (older than the oldest kept point)"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(point_minutes(&env, "shop"), ["12:00", "13:00"]);
    assert_eq!(run_logs(), 2);

    // First prune: marks, deletes nothing; the grace period has not passed.
    let packs_before = packs();
    let r = env.json(&["prune", "--grace", "1h"]);
    assert_eq!(r["packs_deleted"], 0);
    assert!(r["packs_marked"].as_u64().unwrap() >= 1, "{r}");
    // Repacking may add packs; none is gone.
    assert!(packs_before.iter().all(|p| packs().contains(p)));
    let r = env.json(&["prune", "--grace", "1h"]);
    assert_eq!(r["packs_deleted"], 0, "{r}");
    assert!(r["packs_waiting"].as_u64().unwrap() >= 1, "{r}");
    // The grace period is never shorter than twice the longest backup, whatever is asked.
    let r = env.json(&["prune", "--grace", "0s", "--dry-run"]);
    let longest = r["longest_backup_secs"].as_f64().unwrap();
    assert!(longest > 0.0, "{r}");
    assert_eq!(r["grace_secs"].as_f64().unwrap(), 2.0 * longest, "{r}");
    // Past the grace period: the marked packs go.
    std::thread::sleep(Duration::from_secs_f64(2.0 * longest));
    let r = env.json(&["prune", "--grace", "0s"]);
    assert!(r["packs_deleted"].as_u64().unwrap() >= 1, "{r}");
    assert!(
        env.repo_bytes() < before - (5 << 20),
        "{} !< {before}",
        env.repo_bytes()
    );

    // What is left restores exactly and checks clean.
    assert_ok(&env.run(&["check", "--read-data"]));
    for (t, want) in [("12:00", &expected[2]), ("13:00", &expected[3])] {
        let to = env.path(&format!("restored-{}", &t[..2]));
        let o = env.run(&[
            "restore",
            "shop",
            "--at",
            &format!("2026-11-20T{t}:30Z"),
            "--to",
            to.to_str().unwrap(),
        ]);
        assert_ok(&o);
        assert_eq!(&common::tree_files(&to), want, "point of {t}");
    }
}

/// Two hosts (two catalogs) back up into one bucket while a third forgets and prunes, many
/// times; afterwards every remaining snapshot restores byte for byte and check is clean.
#[test]
fn concurrent_backups_from_two_hosts_and_prune_lose_nothing() {
    let Some(env) = Env::init(Kind::S3) else {
        eprintln!("skipped: no S3 test server (DRCTL_TEST_NO_S3)");
        return;
    };
    const ROUNDS: usize = 6;
    for h in ["host1", "host2"] {
        stack_file(
            &env,
            h,
            &format!("[stack.{h}]\n[stack.{h}.keep]\nlast = 2\n"),
        );
    }
    let third = |args: &[&str]| {
        let o = env
            .cmd()
            .env("DRCTL_CATALOG", env.path("catalog-3.db"))
            .args(args)
            .output()
            .unwrap();
        assert_ok(&o);
        o
    };
    // Each host backs up its own directory with its own catalog; returns the snapshots it
    // made and their expected contents.
    // Prunes finished so far: the hosts go on past ROUNDS until at least three prunes have
    // run among their backups, however fast the backups are next to the prunes.
    let prunes_done = std::sync::atomic::AtomicUsize::new(0);
    let host = |h: usize| {
        let (env, prunes_done) = (&env, &prunes_done);
        move || {
            let name = format!("host{h}");
            let data = env.path(&name);
            std::fs::create_dir_all(&data).unwrap();
            let mut made = Vec::new();
            let go_on = |round: usize| {
                round < ROUNDS
                    || (prunes_done.load(std::sync::atomic::Ordering::SeqCst) < 3
                        && round < 10 * ROUNDS)
            };
            let mut round = 0;
            while go_on(round) {
                let seed = (h * 100 + round) as u64;
                // Content shared by both hosts (dedup across hosts) plus new data each round;
                // the file of two rounds ago goes, so its data dies once forgotten.
                std::fs::write(data.join("shared"), common::random_bytes(2 << 20, 7)).unwrap();
                std::fs::write(
                    data.join(format!("r{round}")),
                    common::random_bytes(1 << 20, seed),
                )
                .unwrap();
                if round >= 2 {
                    std::fs::remove_file(data.join(format!("r{}", round - 2))).unwrap();
                }
                let o = env
                    .cmd()
                    .current_dir(env.dir.path())
                    .env("DRCTL_CATALOG", env.path(&format!("catalog-{h}.db")))
                    .args(["--json", "backup", "--stack", &name, &name])
                    .output()
                    .unwrap();
                assert_ok(&o);
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                made.push((
                    v["snapshot_id"].as_str().unwrap().to_string(),
                    name.clone(),
                    common::tree_files(&data),
                ));
                round += 1;
            }
            made
        }
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    let (made, prunes, mut deleted) = std::thread::scope(|s| {
        let a = s.spawn(host(1));
        let b = s.spawn(host(2));
        let pruner = s.spawn(|| {
            let (mut prunes, mut deleted) = (0, 0);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                third(&["forget"]);
                // --force: at first no snapshot exists yet, and packs of backups in flight
                // are indexed before their snapshot; the marks must protect them anyway.
                let o = third(&["--json", "prune", "--grace", "3s", "--force"]);
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                prunes += 1;
                prunes_done.store(prunes, std::sync::atomic::Ordering::SeqCst);
                deleted += v["packs_deleted"].as_u64().unwrap();
            }
            (prunes, deleted)
        });
        // Stops the pruner however the hosts end: a host that failed must fail the test,
        // not leave it waiting on a pruner that never stops.
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let stop_pruner = StopOnDrop(&done);
        let mut made = a.join().unwrap();
        made.extend(b.join().unwrap());
        drop(stop_pruner);
        let (p, d) = pruner.join().unwrap();
        (made, p, d)
    });
    assert!(prunes >= 3, "only {prunes} prune(s) ran during the backups");
    // Settle: forget the policy's leftovers, then prune until no mark waits. Prune may
    // lengthen the grace period (twice the longest backup), so it says how long to wait.
    third(&["forget"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let o = third(&["--json", "prune", "--grace", "3s"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        deleted += v["packs_deleted"].as_u64().unwrap();
        if v["packs_waiting"] == 0 && v["packs_marked"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "marks never ripened: {v}");
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(
        deleted >= 1,
        "no pack was ever deleted: the test did not exercise prune"
    );

    assert_ok(&env.run(&["check", "--read-data"]));
    let listed = env.json(&["snapshots"]);
    let remaining: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(remaining.len(), 4, "keep last = 2 per host: {listed}");
    for id in &remaining {
        let (_, name, want) = made
            .iter()
            .find(|(m, _, _)| m == id)
            .expect("a snapshot we made");
        let to = env.path(&format!("restore-{}", &id[..8]));
        assert_ok(&env.run(&["restore", id, "--to", to.to_str().unwrap()]));
        assert_eq!(
            &common::tree_files(&to.join(name)),
            want,
            "snapshot {id} of {name}"
        );
    }
}

#[test]
fn a_point_with_a_failed_source_is_degraded_and_check_takes_named_stacks() {
    let env = Env::init(Kind::Local).unwrap();
    volume_stack(&env, "calm", "rpo = \"1h\"");
    let files = env.path("shop-files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("a"), "a").unwrap();
    stack_file(
        &env,
        "shop",
        &format!(
            "[stack.shop]\nrpo = \"1h\"\n[[stack.shop.source]]\nname = \"files\"\nkind = \"volume\"\n\
             path = \"{}\"\n[[stack.shop.source]]\nname = \"uploads\"\nkind = \"volume\"\n\
             path = \"{}\"\n",
            files.display(),
            env.path("no-uploads").display()
        ),
    );
    assert_ok(&at(&env, "2026-11-20T10:00:00Z", &["run", "calm"]));
    let o = at(&env, "2026-11-20T10:00:00Z", &["run", "shop"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));

    let o = at(&env, "2026-11-20T10:05:00Z", &["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let shop = v["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stack"] == "shop")
        .unwrap()
        .clone();
    assert_eq!(shop["health"], "DEGRADED", "{shop}");
    assert_eq!(shop["failed_sources"], serde_json::json!(["uploads"]));
    // What did back up still has its age.
    assert_eq!(shop["age_seconds"], 300);
    let o = at(&env, "2026-11-20T10:05:00Z", &["status"]);
    let out = text(&o.stdout);
    assert!(
        out.contains("DEGRADED") && out.contains("shop/uploads: FAILED in its newest run"),
        "{out}"
    );
    assert!(out.contains("no-uploads"), "the error is not shown: {out}");

    // --check judges the named stacks only.
    let o = at(&env, "2026-11-20T10:05:00Z", &["status", "--check"]);
    assert_fails(&o, 1, "1 stack(s) not OK: shop (DEGRADED: uploads failed)");
    assert_ok(&at(
        &env,
        "2026-11-20T10:05:00Z",
        &["status", "--check", "calm"],
    ));
    let o = at(
        &env,
        "2026-11-20T10:05:00Z",
        &["status", "--check", "calm", "shop"],
    );
    assert_fails(&o, 1, "shop (DEGRADED");
    let o = at(
        &env,
        "2026-11-20T10:05:00Z",
        &["status", "--check", "nosuch"],
    );
    assert_fails(&o, 2, "no stack nosuch");

    // Fixed, the next run makes it whole again.
    std::fs::create_dir_all(env.path("no-uploads")).unwrap();
    assert_ok(&at(&env, "2026-11-20T10:10:00Z", &["run", "shop"]));
    assert_ok(&at(
        &env,
        "2026-11-20T10:15:00Z",
        &["status", "--check", "shop"],
    ));
}

#[test]
fn a_new_host_lists_the_stacks_and_gets_their_configuration_and_data_back_from_the_repository() {
    let env = Env::init(Kind::Local).unwrap();
    let data = volume_stack(&env, "shop", "rpo = \"1h\"\nrto = \"30m\"");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("sub/b.bin"), common::random_bytes(300_000, 7)).unwrap();
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    let drill = "[drill.shop]\nstack = \"shop\"\n[[drill.shop.check]]\nsource = \"files\"\npath = \"sub\"\nmin_files = 1\n";
    std::fs::write(env.path("restore-drills/shop.toml"), drill).unwrap();
    assert_ok(&env.run(&["backup", "shop"]));
    assert_ok(&env.run(&["run", "shop"]));
    assert_ok(&env.run(&["drill", "shop"]));
    let stack_file = std::fs::read_to_string(env.path("schedules/shop.toml")).unwrap();
    let old_status = env.json(&["status"]);

    // The new host: the repository and the key file, nothing else.
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("drctl.toml"), "").unwrap();
    let new_host = |args: &[&str]| {
        env.cmd()
            .env("DRCTL_CONFIG", host.path().join("drctl.toml"))
            .env("DRCTL_CATALOG", host.path().join("catalog.db"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = new_host(&["recover", "--list"]);
    assert_ok(&o);
    let listed = text(&o.stdout);
    assert!(
        listed.contains("shop") && listed.contains("schedules/shop.toml, restore-drills/shop.toml"),
        "{listed}"
    );
    assert_fails(&new_host(&["recover"]), 2, "--all");
    assert_fails(
        &new_host(&["recover", "nosuch", "--config-only"]),
        2,
        "no recovery point of stack nosuch",
    );

    // A dry run writes and restores nothing.
    let o = new_host(&["recover", "--all", "--dry-run"]);
    assert_ok(&o);
    assert!(
        text(&o.stderr).contains("would write"),
        "{}",
        text(&o.stderr)
    );
    assert!(text(&o.stdout).contains("dry run: nothing was changed"));
    assert!(!host.path().join("schedules").exists());

    let o = new_host(&[
        "recover",
        "--all",
        "--config-only",
        "--config-to",
        host.path().to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert_eq!(
        std::fs::read_to_string(host.path().join("schedules/shop.toml")).unwrap(),
        stack_file
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("restore-drills/shop.toml")).unwrap(),
        drill
    );
    // The configuration is whole: it checks, and names the stack and its drill.
    let o = new_host(&["config", "check"]);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("1 stack(s)") && text(&o.stdout).contains("1 drill(s)"),
        "{}",
        text(&o.stdout)
    );
    // It sees the old host's run and drill history, from the repository.
    let o = new_host(&["--json", "status"]);
    let new_status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for field in ["last_run", "last_drill"] {
        let old = &old_status["stacks"][0][field];
        assert!(old.is_object(), "{old_status}");
        assert_eq!(&new_status["stacks"][0][field], old, "{field}");
    }
    // A second run replaces nothing.
    std::fs::write(
        host.path().join("schedules/shop.toml"),
        format!("{stack_file}# edited\n"),
    )
    .unwrap();
    let o = new_host(&["recover", "shop", "--config-only"]);
    assert_ok(&o);
    assert!(
        text(&o.stderr).contains("kept the existing"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        std::fs::read_to_string(host.path().join("schedules/shop.toml"))
            .unwrap()
            .ends_with("# edited\n")
    );

    // The data is gone too: recover puts it back, checks it, and times it.
    let before = common::tree_files(&data);
    std::fs::remove_dir_all(&data).unwrap();
    let o = new_host(&["recover", "--all"]);
    assert_ok(&o);
    let summary = text(&o.stdout);
    assert!(
        summary.contains("stack shop: recovered from the point of")
            && summary.contains("(RTO 30m: met)")
            && summary.contains("checks: 1 of 1 passed"),
        "{summary}"
    );
    assert_eq!(common::tree_files(&data), before);
    // Recovering over data that is back is refused, source by source, and says so.
    let o = new_host(&["--json", "recover", "--all"]);
    assert_fails(&o, 1, "1 of 1 stack(s) did not fully recover: shop");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let err = v["stacks"][0]["sources"][0]["error"].as_str().unwrap();
    assert!(err.contains("holds data"), "{v}");
    assert_eq!(common::tree_files(&data), before);
    // With --force (a recovery interrupted half-way, run again) it replaces what is there.
    std::fs::write(data.join("a.txt"), "half-written").unwrap();
    std::fs::write(data.join("stray.tmp"), "x").unwrap();
    assert_ok(&new_host(&["recover", "--all", "--force"]));
    assert_eq!(common::tree_files(&data), before);
}
