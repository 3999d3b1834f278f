//! Continuous WAL archiving of PostgreSQL, with the real binary, a real server in the test
//! image started as the official image starts, and its stock `pg_hba.conf`.

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::docker::{self, skip, Container};
use common::{text, unique, Env, Kind};

const PW: &str = "pg-wal-1";

fn env_with_pitr(container: &str) -> Env {
    let env = Env::init(Kind::Local).unwrap();
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/shop.toml"),
        format!(
            "[stack.shop]\n[[stack.shop.source]]\nname = \"db\"\nkind = \"postgres\"\n\
             container = \"{container}\"\ndatabases = [\"shop\"]\npitr = true\n"
        ),
    )
    .unwrap();
    env
}

/// `drctl archive shop` in the background, its output kept for failures.
fn start_archive(env: &Env) -> Child {
    env.cmd()
        .args(["archive", "shop", "--partial-every", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The WAL files the archive holds: (name, partial, covers_until).
fn archived(env: &Env) -> Vec<(String, bool, chrono::DateTime<chrono::Utc>)> {
    let v = env.json(&["snapshots"]);
    v.as_array()
        .unwrap()
        .iter()
        .filter(|s| s["wal"].is_object())
        .map(|s| {
            let w = &s["wal"];
            (
                w["name"].as_str().unwrap().to_string(),
                w["partial"].as_bool().unwrap(),
                w["covers_until"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until the archiver's `pg_receivewal` streams from its slot.
fn wait_for_receiver(c: &Container) {
    wait_for("the receiver", Duration::from_secs(30), || {
        c.psql(
            PW,
            "postgres",
            "SELECT count(*) FROM pg_replication_slots WHERE active",
        ) == "1"
    });
}

/// Switches to a new WAL segment and returns the name of the one it completed.
fn switch_wal(c: &Container) -> String {
    c.psql(PW, "shop", "INSERT INTO orders VALUES (default)");
    c.psql(PW, "postgres", "SELECT pg_walfile_name(pg_switch_wal())")
}

/// Completed segments of timeline 1 stored, by name.
fn completed(env: &Env) -> BTreeSet<String> {
    archived(env)
        .into_iter()
        .filter(|(n, p, _)| !p && !n.ends_with(".history"))
        .map(|(n, _, _)| n)
        .collect()
}

/// The segment after `name` on the same timeline (256 segments of 16 MiB per log file).
fn next_segment(name: &str) -> String {
    let log = u64::from_str_radix(&name[8..16], 16).unwrap();
    let seg = u64::from_str_radix(&name[16..24], 16).unwrap();
    let (log, seg) = if seg == 0xFF {
        (log + 1, 0)
    } else {
        (log, seg + 1)
    };
    format!("{}{log:08X}{seg:08X}", &name[..8])
}

fn assert_contiguous(names: &BTreeSet<String>, from: &str, to: &str) {
    let mut n = from.to_string();
    while n.as_str() <= to {
        assert!(
            names.contains(&n),
            "segment {n} missing from the archive: {names:?}"
        );
        n = next_segment(&n);
    }
}

fn stop_archive(child: Child) -> String {
    // SAFETY: a plain signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    text(&out.stderr)
}

/// Segments arrive within seconds of a commit, the growing one included; a server
/// restart and a killed archiver lose nothing (the slot kept what was not received); a
/// stopped archiver leaves its slot inactive.
#[test]
fn wal_reaches_the_repository_in_seconds_through_restarts_without_a_gap() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-wal");
    let c = docker::postgres(&name, PW);
    c.psql(PW, "postgres", "CREATE DATABASE shop");
    c.psql(
        PW,
        "shop",
        "CREATE TABLE orders (id serial PRIMARY KEY, at timestamptz DEFAULT now())",
    );
    let env = env_with_pitr(&name);
    let archive = start_archive(&env);

    // A completed segment.
    wait_for_receiver(&c);
    let first = switch_wal(&c);
    wait_for("the first segment", Duration::from_secs(20), || {
        completed(&env).contains(&first)
    });

    // The growing segment: a commit is in the archive within seconds.
    let committed = chrono::Utc::now();
    c.psql(PW, "shop", "INSERT INTO orders VALUES (default)");
    let t0 = Instant::now();
    wait_for(
        "the commit in the partial segment",
        Duration::from_secs(10),
        || {
            archived(&env)
                .iter()
                .any(|(_, p, at)| *p && *at > committed)
        },
    );
    eprintln!("commit archived after {:?}", t0.elapsed());
    let partials = archived(&env).iter().filter(|(_, p, _)| *p).count();
    assert_eq!(partials, 1, "each growing copy replaces the one before");

    // The server restarts under the archiver.
    c.stop();
    c.start();
    let after_restart = switch_wal(&c);
    wait_for(
        "a segment after the restart",
        Duration::from_secs(40),
        || completed(&env).contains(&after_restart),
    );

    // The archiver is killed; WAL written meanwhile waits in the slot.
    let mut archive = archive;
    archive.kill().unwrap();
    archive.wait().unwrap();
    let mut while_down = Vec::new();
    for _ in 0..3 {
        while_down.push(switch_wal(&c));
    }
    let archive = start_archive(&env);
    let last = while_down.last().unwrap().clone();
    wait_for(
        "the segments written while it was down",
        Duration::from_secs(40),
        || completed(&env).contains(&last),
    );
    assert_contiguous(&completed(&env), &first, &last);

    let log = stop_archive(archive);
    wait_for("the slot to be released", Duration::from_secs(20), || {
        c.psql(
            PW,
            "postgres",
            "SELECT count(*) FROM pg_replication_slots WHERE active",
        ) == "0"
    });
    assert!(!log.contains(PW), "password in the log: {log}");
}

/// Inserts a marker row carrying its own commit-time clock every ~200 ms until `until`.
fn markers_until(c: &Container, until: chrono::DateTime<chrono::Utc>) {
    while chrono::Utc::now() < until {
        c.psql(PW, "shop", "INSERT INTO markers VALUES (clock_timestamp())");
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// The newest marker row, to the microsecond.
fn newest_marker(c: &Container) -> chrono::DateTime<chrono::Utc> {
    c.psql(
        PW,
        "shop",
        "SELECT to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM markers",
    )
    .parse()
    .unwrap()
}

/// Markers for a few seconds around a whole second T, then the mistake (`DELETE FROM
/// orders`), then a second more of markers, until the archive holds the mistake.
/// Returns T, at least a second before the delete.
fn markers_then_delete(c: &Container, env: &Env) -> chrono::DateTime<chrono::Utc> {
    let start = chrono::Utc::now();
    let t = chrono::DateTime::from_timestamp(start.timestamp() + 3, 0).unwrap();
    markers_until(c, t + chrono::Duration::seconds(2));
    c.psql(PW, "shop", "DELETE FROM orders");
    let deleted = chrono::Utc::now();
    markers_until(c, deleted + chrono::Duration::seconds(1));
    wait_for("the delete in the archive", Duration::from_secs(30), || {
        archived(env).iter().any(|(_, _, at)| *at > deleted)
    });
    t
}

/// Restores to `t` and checks the server holds every order and markers up to within a
/// second of `t`, none after, on timeline `timeline`.
fn restore_and_verify(env: &Env, c: &Container, t: chrono::DateTime<chrono::Utc>, timeline: u32) {
    let o = env.run(&["restore", "shop", "--at", &t.to_rfc3339(), "--force"]);
    common::assert_ok(&o);
    assert!(
        text(&o.stdout).contains("restored db"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(c.psql(PW, "shop", "SELECT count(*) FROM orders"), "20000");
    let newest = newest_marker(c);
    assert!(newest <= t, "a marker after the time: {newest} > {t}");
    assert!(
        t - newest <= chrono::Duration::seconds(1),
        "markers end more than a second before the time: {newest} < {t}"
    );
    // The server runs on, promoted, on a new timeline.
    assert_eq!(c.psql(PW, "postgres", "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(
        c.psql(
            PW,
            "postgres",
            "SELECT timeline_id FROM pg_control_checkpoint()"
        ),
        timeline.to_string()
    );
}

/// The operator's mistake and its undoing: a base backup, writes with a marker row every
/// fraction of a second, then a `DELETE` of a table; `restore --at` one second before the
/// delete, into the same container's data volume, brings every row back, with the
/// markers up to within a second of the time and none after it. The archive runs on
/// through the restore, onto the server's new timeline, and the same mistake made again
/// there is undone from the same base backup: across the branch, to timeline 3.
#[test]
fn restore_at_a_second_before_a_delete_brings_every_row_back() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-pitr");
    let vol = docker::volume(&format!("{name}-data"));
    let mount = format!("{}:/var/lib/postgresql/data", vol.name);
    let c = docker::postgres_with(&name, PW, &["-v", &mount]);
    c.psql(PW, "postgres", "CREATE DATABASE shop");
    c.psql(
        PW,
        "shop",
        "CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g",
    );
    c.psql(PW, "shop", "CREATE TABLE markers (at timestamptz)");
    let env = env_with_pitr(&name);
    let archive = start_archive(&env);
    wait_for_receiver(&c);
    common::assert_ok(&env.run(&["backup", "shop"]));

    let t1 = markers_then_delete(&c, &env);
    restore_and_verify(&env, &c, t1, 2);

    // The archiver follows the restored server onto timeline 2, and the mistake again.
    wait_for(
        "timeline 2's history in the archive",
        Duration::from_secs(40),
        || {
            archived(&env)
                .iter()
                .any(|(n, _, _)| n == "00000002.history")
        },
    );
    let t2 = markers_then_delete(&c, &env);
    assert!(
        c.psql(
            PW,
            "shop",
            &format!(
                "SELECT count(*) FROM markers WHERE at > '{}'",
                t1.to_rfc3339()
            )
        ) != "0",
        "markers written on timeline 2"
    );
    restore_and_verify(&env, &c, t2, 3);
    let log = stop_archive(archive);
    assert!(!log.contains(PW), "password in the log: {log}");
}
