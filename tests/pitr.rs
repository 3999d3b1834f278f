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
    env_with(container, "", "")
}

/// A stack `shop` whose source `db` has `pitr = true`, with more lines for the stack
/// and for the source.
fn env_with(container: &str, stack: &str, source: &str) -> Env {
    let env = Env::init(Kind::Local).unwrap();
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/shop.toml"),
        format!(
            "[stack.shop]\n{stack}[[stack.shop.source]]\nname = \"db\"\nkind = \"postgres\"\n\
             container = \"{container}\"\ndatabases = [\"shop\"]\npitr = true\n{source}"
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

/// The newest stored copy of a growing segment: the time it covers and the bytes it
/// added to the repository.
fn newest_partial(env: &Env) -> Option<(chrono::DateTime<chrono::Utc>, u64)> {
    env.json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["wal"]["partial"] == true)
        .map(|s| {
            (
                s["wal"]["covers_until"].as_str().unwrap().parse().unwrap(),
                s["summary"]["bytes_added"].as_u64().unwrap(),
            )
        })
        .max_by_key(|(at, _)| *at)
}

/// The bytes the stored copy of completed segment `name` added to the repository.
fn segment_bytes_added(env: &Env, name: &str) -> u64 {
    env.json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["wal"]["name"] == name && s["wal"]["partial"] == false)
        .and_then(|s| s["summary"]["bytes_added"].as_u64())
        .unwrap_or_else(|| panic!("no stored copy of {name}"))
}

/// Prunes twice, the grace period waited out between: the bytes deleted.
fn prune_twice(env: &Env) -> u64 {
    let first = env.json(&["prune", "--grace", "0s"]);
    let grace = first["grace_secs"].as_f64().unwrap();
    std::thread::sleep(Duration::from_secs_f64(grace + 1.0));
    let second = env.json(&["prune", "--grace", "0s"]);
    first["bytes_deleted"].as_u64().unwrap() + second["bytes_deleted"].as_u64().unwrap()
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

    // A copy of the growing segment adds what was written since the copy before, not a
    // whole new chunk: megabytes of WAL, then one small commit.
    c.psql(
        PW,
        "shop",
        "CREATE TABLE bulk AS SELECT md5(g::text) || md5((g * 7)::text) AS t \
         FROM generate_series(1, 20000) g",
    );
    let bulk_at = chrono::Utc::now();
    wait_for("the bulk WAL", Duration::from_secs(10), || {
        newest_partial(&env).is_some_and(|(at, _)| at > bulk_at)
    });
    c.psql(PW, "shop", "INSERT INTO orders VALUES (default)");
    let small_at = chrono::Utc::now();
    wait_for("the small commit", Duration::from_secs(10), || {
        newest_partial(&env).is_some_and(|(at, _)| at > small_at)
    });
    let (_, added) = newest_partial(&env).unwrap();
    assert!(
        added < 200 * 1024,
        "a copy after one small commit added {added} bytes"
    );

    // The completed segment follows the cut of its last growing copy: it adds what was
    // written after that copy, not its megabytes a second time, and the copies before
    // left nothing for a prune to take but their trees. The WAL so far lies in the
    // segment's first 4 MiB, which every growing copy stored unfinished.
    let at = c.psql(
        PW,
        "postgres",
        "SELECT file_name || ' ' || file_offset FROM pg_walfile_name_offset(pg_current_wal_lsn())",
    );
    let (growing, offset) = at.split_once(' ').unwrap();
    let offset: u64 = offset.parse().unwrap();
    assert!(
        (1 << 20..4 << 20).contains(&offset),
        "the WAL ends at {offset} in {growing}"
    );
    let done = switch_wal(&c);
    assert_eq!(done, growing, "the bulk WAL crossed into another segment");
    wait_for(
        "the completed bulk segment",
        Duration::from_secs(20),
        || completed(&env).contains(&done),
    );
    let added = segment_bytes_added(&env, &done);
    let freed = prune_twice(&env);
    eprintln!("completed segment added {added} bytes; prune freed {freed}");
    assert!(
        added < 256 * 1024 && freed < 64 * 1024,
        "the completed segment {done} added {added} bytes after its growing copies, and \
         prune freed {freed} bytes"
    );
    common::assert_ok(&env.run(&["check", "--read-data"]));

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

/// Inserts a marker row carrying its own commit-time clock every ~100 ms until `until`,
/// each in a transaction of its own. The loop runs in the server: a `docker exec` per
/// marker can take over a second on a loaded machine, leaving gaps the test would take
/// for a short replay.
fn markers_until(c: &Container, until: chrono::DateTime<chrono::Utc>) {
    let sql = format!(
        "DO $$ BEGIN WHILE clock_timestamp() < '{}'::timestamptz LOOP \
         INSERT INTO markers VALUES (clock_timestamp()); COMMIT; PERFORM pg_sleep(0.1); \
         END LOOP; END $$",
        until.to_rfc3339()
    );
    c.psql(PW, "shop", &sql);
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
    let o = restore_at(env, t);
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

/// A container name and a volume of its own for its data directory (a restore to a time
/// writes it from this host), with the `-v` argument that mounts it.
fn on_a_volume(prefix: &str) -> (String, docker::Volume, String) {
    let name = unique(prefix);
    let vol = docker::volume(&format!("{name}-data"));
    let mount = format!("{}:/var/lib/postgresql/data", vol.name);
    (name, vol, mount)
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
    let (name, _vol, mount) = on_a_volume("drctl-t-pitr");
    let (c, env, archive) = archived_shop(&name, "", "", &["-v", &mount]);

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

/// The database `shop`: 20000 orders and an empty table of markers.
fn create_shop(c: &Container) {
    c.psql(PW, "postgres", "CREATE DATABASE shop");
    c.psql(
        PW,
        "shop",
        "CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 20000) g",
    );
    c.psql(PW, "shop", "CREATE TABLE markers (at timestamptz)");
}

/// A server with a table of orders and one of markers, archived by a running
/// `drctl archive`, with a base backup.
fn archived_shop(
    name: &str,
    stack: &str,
    source: &str,
    extra_args: &[&str],
) -> (Container, Env, Child) {
    let c = docker::postgres_with(name, PW, extra_args);
    create_shop(&c);
    let env = env_with(name, stack, source);
    let archive = start_archive(&env);
    wait_for_receiver(&c);
    // The archive is live, so the base backup's own WAL is the archive's to keep.
    wait_for("a first copy of the WAL", Duration::from_secs(30), || {
        !archived(&env).is_empty()
    });
    common::assert_ok(&env.run(&["backup", "shop"]));
    // The base restores once the archive reaches its end: a test that stops the archive
    // right away would otherwise have no window at all.
    let points = env.json(&["snapshots", "shop"]);
    let ended: chrono::DateTime<chrono::Utc> = points[0]["sources"][0]["base"]["ended"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    wait_for(
        "the archive past the base backup",
        Duration::from_secs(30),
        || archived(&env).iter().any(|(_, _, at)| *at >= ended),
    );
    (c, env, archive)
}

/// The repository's snapshot holding the WAL file `name`, as an object key.
fn wal_object(env: &Env, name: &str) -> String {
    let snaps = env.json(&["snapshots"]);
    let id = snaps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["wal"]["name"] == name && s["wal"]["partial"] == false)
        .map(|s| s["id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{name} is not archived"));
    env.objects()
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.starts_with("snapshots/") && k.ends_with(&id))
        .unwrap()
}

/// The first gap `status` reports for the source: (missing segment, from, to).
fn status_gap(
    env: &Env,
) -> Option<(
    String,
    chrono::DateTime<chrono::Utc>,
    chrono::DateTime<chrono::Utc>,
)> {
    let o = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let g = &v["stacks"][0]["sources"][0]["pitr"]["gaps"][0];
    let time = |v: &serde_json::Value| v.as_str().unwrap().parse().unwrap();
    g.is_object().then(|| {
        (
            g["missing"].as_str().unwrap().to_string(),
            time(&g["broken"]["from"]),
            time(&g["broken"]["to"]),
        )
    })
}

/// A segment deleted from the repository: `check` names it and the span it breaks,
/// `status --check` fails, a restore to a time in that span fails naming it, and a
/// restore to a time before it still works.
#[test]
fn a_missing_segment_is_named_and_only_its_span_is_unrestorable() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-gap");
    let vol = docker::volume(&format!("{name}-data"));
    let mount = format!("{}:/var/lib/postgresql/data", vol.name);
    let (c, env, archive) = archived_shop(&name, "rpo = \"1h\"\n", "", &["-v", &mount]);
    let packs_of_base = data_packs(&env);
    let start = chrono::Utc::now();
    let before_gap = chrono::DateTime::from_timestamp(start.timestamp() + 2, 0).unwrap();
    markers_until(&c, before_gap + chrono::Duration::seconds(1));
    let segments: Vec<String> = (0..3).map(|_| switch_wal(&c)).collect();
    wait_for("three segments", Duration::from_secs(30), || {
        completed(&env).contains(&segments[2])
    });
    // More time in the archive after the missing segment.
    let later = chrono::Utc::now();
    markers_until(&c, later + chrono::Duration::seconds(2));
    wait_for("the later markers", Duration::from_secs(30), || {
        archived(&env)
            .iter()
            .any(|(_, _, at)| *at > later + chrono::Duration::seconds(2))
    });
    common::assert_ok(&env.run(&["status", "--check"]));

    let missing = &segments[1];
    let key = wal_object(&env, missing);
    common::rt().block_on(env.store().delete(&key)).unwrap();

    let o = env.run(&["check"]);
    let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("WAL segment {missing} is missing"))
            && said.contains("nothing between"),
        "{said}"
    );
    let o = env.run(&["status", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("GAP"), "{}", text(&o.stdout));
    let (named, from, to) = status_gap(&env).expect("status names the gap");
    assert_eq!(&named, missing);
    assert!(from >= before_gap && from < to, "{from} {to}");

    let rows = c.psql(PW, "shop", "SELECT count(*) FROM orders");
    let inside = from + (to - from) / 2;
    let o = restore_at(&env, inside);
    common::assert_fails(&o, 1, &format!("WAL segment {missing} is missing"));
    assert_eq!(
        c.psql(PW, "shop", "SELECT count(*) FROM orders"),
        rows,
        "server untouched"
    );

    // The WAL's data damaged: the restore fails while it stages the WAL, and the server,
    // already replaying, stops in recovery instead of taking the end of what was staged
    // for the end of the WAL.
    let wal_packs: Vec<String> = data_packs(&env)
        .into_iter()
        .filter(|k| !packs_of_base.contains(k))
        .collect();
    assert!(!wal_packs.is_empty());
    let originals: Vec<(String, Vec<u8>)> =
        wal_packs.iter().map(|k| (k.clone(), env.get(k))).collect();
    for (k, bytes) in &originals {
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        env.put(k, bad);
    }
    let o = restore_at(&env, before_gap);
    common::assert_fails(&o, 1, "is damaged");
    assert!(!c.running(), "the server stopped in recovery");
    let o = std::process::Command::new("docker")
        .args(["run", "--rm", "-v", &format!("{}:/d", vol.name)])
        .arg(docker::image())
        .args(["test", "-e", "/d/recovery.signal"])
        .output()
        .unwrap();
    assert!(o.status.success(), "the server was promoted");
    for (k, bytes) in originals {
        env.put(&k, bytes);
    }
    // Restored again, the stopped server's data directory is replaced, but only if forced.
    let o = env.run(&["restore", "shop", "--at", &before_gap.to_rfc3339()]);
    common::assert_fails(&o, 2, "is stopped and its data directory");

    restore_and_verify(&env, &c, before_gap, 2);
    stop_archive(archive);
}

/// `restore shop --at T --force`.
fn restore_at(env: &Env, t: chrono::DateTime<chrono::Utc>) -> std::process::Output {
    env.run(&["restore", "shop", "--at", &t.to_rfc3339(), "--force"])
}

/// The keys of the repository's data packs.
fn data_packs(env: &Env) -> BTreeSet<String> {
    env.objects()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("data/"))
        .collect()
}

/// The archive stops (its drctl killed): the receiver it left in the container ends by
/// itself, `status --check` fails once the archive trails by more than the RPO, and the
/// server keeps no more WAL for the slot than the configured bound.
#[test]
fn a_stopped_archive_is_late_and_its_slot_stays_within_the_bound() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-stop");
    let (hook, notices) = common::listener();
    let stack = format!("rpo = \"15s\"\n[stack.shop.notify]\nwebhook = \"{hook}\"\n");
    let (c, env, mut archive) = archived_shop(&name, &stack, "wal_keep_limit = \"64MiB\"\n", &[]);
    assert_eq!(
        c.psql(PW, "postgres", "SHOW max_slot_wal_keep_size"),
        "64MB"
    );
    common::assert_ok(&env.run(&["status", "--check"]));

    archive.kill().unwrap();
    archive.wait().unwrap();
    let killed = Instant::now();
    wait_for("status --check to fail", Duration::from_secs(40), || {
        env.run(&["status", "--check"]).status.code() == Some(1)
    });
    let o = env.run(&["--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stacks"][0]["health"], "LATE", "{v}");
    let lag = v["stacks"][0]["sources"][0]["pitr"]["lag_seconds"]
        .as_i64()
        .unwrap();
    assert!(lag > 15, "late before the RPO: {lag}s");
    // The unattended run notifies the stream that stopped, once (the backup's own
    // notices came before).
    common::assert_ok(&env.run(&["run", "--due"]));
    let stalled = || {
        notices
            .try_iter()
            .map(|n| serde_json::from_str::<serde_json::Value>(&n).unwrap())
            .filter(|n| n["status"] == "archive_stalled")
            .collect::<Vec<_>>()
    };
    std::thread::sleep(Duration::from_secs(1));
    let notice = stalled().pop().expect("a notice of the stopped archive");
    assert_eq!(notice["event"], "failure", "{notice}");
    let why = notice["error"].as_str().unwrap();
    assert!(
        why.contains("the continuous archive trails by") && why.contains("drctl archive shop"),
        "{why}"
    );
    common::assert_ok(&env.run(&["run", "--due"]));
    std::thread::sleep(Duration::from_secs(1));
    assert!(stalled().is_empty(), "notified twice");

    // The receiver left behind streams on until its watchdog sees nobody reading.
    wait_for(
        "the orphaned receiver to end",
        Duration::from_secs(60),
        || {
            c.psql(
                PW,
                "postgres",
                "SELECT count(*) FROM pg_replication_slots WHERE active",
            ) == "0"
        },
    );
    let ended = killed.elapsed();
    eprintln!("orphaned receiver ended {ended:?} after drctl was killed");
    assert!(ended >= Duration::from_secs(25), "ended early: {ended:?}");

    // Eight segments (128 MiB) past a 64 MiB bound: the server drops the slot's WAL.
    for _ in 0..8 {
        switch_wal(&c);
    }
    c.psql(PW, "postgres", "CHECKPOINT");
    let current = c.psql(
        PW,
        "postgres",
        "SELECT pg_walfile_name(pg_current_wal_lsn())",
    );
    let oldest = c.psql(
        PW,
        "postgres",
        &format!(
            "SELECT min(name) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{{24}}$' AND name <= '{current}'"
        ),
    );
    let segno = |n: &str| {
        u64::from_str_radix(&n[8..16], 16).unwrap() * 256
            + u64::from_str_radix(&n[16..24], 16).unwrap()
    };
    let kept = segno(&current) - segno(&oldest) + 1;
    assert!(
        kept <= 64 / 16 + 2,
        "pg_wal keeps {kept} segments: {oldest} to {current}"
    );
    let wal_status = c.psql(
        PW,
        "postgres",
        "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'drctl_db'",
    );
    assert_eq!(wal_status, "lost");
    let o = env.run(&["status", "--check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("GAP"), "{}", text(&o.stdout));
}

/// The receiver in the container stops streaming while its process lives on (frozen),
/// then is left a growing segment cut short, which `pg_receivewal` refuses to start
/// from. The archive's time comes from the server's position, not from the receiver's
/// files: `status --check` fails once the archive trails by more than the RPO, and passes
/// again once the receiver catches up; the cut segment is removed and received again.
#[test]
fn a_stuck_or_wedged_receiver_is_late_and_the_archive_recovers_from_it() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-stuck");
    let (c, env, archive) = archived_shop(&name, "rpo = \"15s\"\n", "", &[]);
    common::assert_ok(&env.run(&["status", "--check"]));
    let markers = || {
        for _ in 0..4 {
            c.psql(PW, "shop", "INSERT INTO markers VALUES (clock_timestamp())");
        }
    };
    let late = |markers: &dyn Fn()| {
        wait_for("status --check to fail", Duration::from_secs(60), || {
            markers();
            env.run(&["status", "--check"]).status.code() == Some(1)
        });
        let v = env.json(&["status"]);
        assert_eq!(v["stacks"][0]["health"], "LATE", "{v}");
        let lag = v["stacks"][0]["sources"][0]["pitr"]["lag_seconds"]
            .as_i64()
            .unwrap();
        assert!(lag > 15, "late before the RPO: {lag}s");
    };
    let current = |markers: &dyn Fn()| {
        wait_for("status --check to pass", Duration::from_secs(60), || {
            markers();
            env.run(&["status", "--check"]).status.success()
        });
    };

    // Frozen: its files stay as fresh as they were; the server writes on.
    c.exec_ok(&[], &["pkill", "-STOP", "-x", "pg_receivewal"]);
    late(&markers);
    c.exec_ok(&[], &["pkill", "-CONT", "-x", "pg_receivewal"]);
    current(&markers);

    // Killed while it made its growing segment: cut short where it stood.
    stop_archive(archive);
    c.exec(&[], &["pkill", "-KILL", "-x", "pg_receivewal"]);
    let cut = c.exec_ok(
        &[],
        &[
            "sh",
            "-c",
            "f=$(ls /tmp/drctl-wal/db/*.partial | tail -n 1); truncate -s 40000 \"$f\"; echo \"$f\"",
        ],
    );
    assert!(cut.trim().ends_with(".partial"), "{cut}");
    markers();
    let archive = start_archive(&env);
    current(&markers);
    // Every marker is in the archive again.
    let newest = newest_marker(&c);
    wait_for(
        "the newest marker archived",
        Duration::from_secs(30),
        || archived(&env).iter().any(|(_, _, t)| *t >= newest),
    );
    let said = stop_archive(archive);
    assert!(said.contains("neither empty nor a whole segment"), "{said}");
}

/// Markers every fraction of a second from another thread until `stop` is set.
fn markers_while(c: &Container, stop: &std::sync::atomic::AtomicBool) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        c.psql(PW, "shop", "INSERT INTO markers VALUES (clock_timestamp())");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A drill scheduled to restore to a random time: `run --due` draws a whole second from
/// the recovery window, replays the base backup's WAL to it in a scratch server, and
/// reports how close the replay came (the measured RPO) and how far the archive trailed,
/// beside the RTO, in its summary, the JUnit file and the HTML report. The stack's own
/// server is left alone.
#[test]
fn a_scheduled_drill_to_a_random_time_measures_its_rpo() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-pdrill");
    let c = docker::postgres(&name, PW);
    create_shop(&c);
    let env = env_with_pitr(&name);
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    std::fs::write(
        env.path("restore-drills/shop.toml"),
        "[drill.shop-pitr]\nstack = \"shop\"\nschedule = \"* * * * *\"\nat = \"random\"\nrpo = \"30s\"\n\
         [[drill.shop-pitr.check]]\nsource = \"db\"\nsql = \"SELECT count(*) FROM orders\"\nexpect = \"= 20000\"\n\
         [[drill.shop-pitr.check]]\nsource = \"db\"\nsql = \"SELECT max(at) FROM markers\"\nfresher_than = \"2s\"\n",
    )
    .unwrap();
    let archive = start_archive(&env);
    wait_for_receiver(&c);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let drilled = std::thread::scope(|scope| {
        scope.spawn(|| markers_while(&c, &stop));
        std::thread::sleep(Duration::from_secs(1));
        common::assert_ok(&env.run(&["backup", "shop"]));
        let after = chrono::Utc::now() + chrono::Duration::seconds(5);
        wait_for(
            "five seconds more in the archive",
            Duration::from_secs(30),
            || archived(&env).iter().any(|(_, _, at)| *at > after),
        );
        let status = env.json(&["status"]);
        let window = &status["stacks"][0]["sources"][0]["pitr"]["window"];
        let time = |v: &serde_json::Value| -> chrono::DateTime<chrono::Utc> {
            v.as_str().unwrap().parse().unwrap()
        };
        let from = time(&window["from"]);
        let o = env.run(&["run", "--due"]);
        let to = chrono::Utc::now();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        (o, from, to)
    });
    let (o, from, to) = drilled;
    common::assert_ok(&o);
    let said = text(&o.stdout);
    assert!(
        said.contains("a random time in the recovery window"),
        "{said}"
    );
    assert!(said.contains("RPO measured"), "{said}");

    let history = env.json(&["drill", "history"]);
    let r = &history.as_array().unwrap()[0];
    assert_eq!(r["verdict"], "PASS", "{r}");
    assert_eq!(r["checks"].as_array().unwrap().len(), 2);
    let p = &r["pitr"];
    assert_eq!(p["random"], true);
    let target: chrono::DateTime<chrono::Utc> = p["target"].as_str().unwrap().parse().unwrap();
    assert_eq!(target.timestamp_subsec_nanos(), 0, "a whole second");
    assert!(
        from <= target && target <= to,
        "{target} outside {from}..{to}"
    );
    assert_eq!(r["sources"][0]["point_time"], p["target"]);
    let replayed: chrono::DateTime<chrono::Utc> =
        p["replayed_to"].as_str().unwrap().parse().unwrap();
    assert!(replayed <= target, "replayed past the time: {replayed}");
    let rpo = p["rpo_secs"].as_f64().unwrap();
    assert!(rpo <= 2.0, "measured RPO {rpo}s");
    assert!((rpo - (target - replayed).num_milliseconds() as f64 / 1000.0).abs() < 0.01);
    let lag = p["archive_lag_secs"].as_f64().unwrap();
    assert!(lag < 30.0, "archive lag {lag}s");
    assert!(r["rto_secs"].as_f64().unwrap() > 0.0);

    let (junit, html) = (env.path("drills.xml"), env.path("drills.html"));
    common::assert_ok(&env.run(&[
        "drill",
        "report",
        "--html",
        html.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]));
    let junit = std::fs::read_to_string(junit).unwrap();
    for needle in [
        "name=\"rto_seconds\"".to_string(),
        format!("name=\"target_time\" value=\"{}\"", target.to_rfc3339()),
        "name=\"target_random\" value=\"true\"".to_string(),
        format!("name=\"rpo_measured_seconds\" value=\"{rpo:.3}\""),
        "name=\"archive_lag_seconds\"".to_string(),
        format!("RPO {rpo:.1}s behind"),
    ] {
        assert!(junit.contains(&needle), "{needle} not in {junit}");
    }
    let html = std::fs::read_to_string(html).unwrap();
    assert!(
        html.contains("RPO measured") && html.contains(&format!("{rpo:.1}s behind")),
        "{html}"
    );

    // The stack's own server ran on untouched.
    assert_eq!(c.psql(PW, "postgres", "SELECT pg_is_in_recovery()"), "f");
    assert_eq!(c.psql(PW, "shop", "SELECT count(*) FROM orders"), "20000");
    stop_archive(archive);
}

/// pgbench writing from inside the container until it is stopped (or the server goes).
fn start_pgbench(c: &Container) {
    c.exec_ok(
        &[("PGPASSWORD", PW)],
        &[
            "sh",
            "-c",
            "nohup pgbench -U postgres -h /var/run/postgresql -c 2 -T 600 -n shop \
             >/tmp/pgbench.log 2>&1 &",
        ],
    );
}

/// The operator's worst morning: pgbench writes throughout; a base backup; markers every
/// fraction of a second through a server restart and a restart of drctl's archiver; then
/// `DELETE FROM pgbench_accounts`; then the container and its volume are lost, and a new
/// empty server comes up under the same name (whose WAL repeats the old names). `restore
/// --at` one second before the delete, into that container: every table is back, the
/// markers run up to within a second of the time and none after it.
#[test]
fn restore_at_into_a_recreated_empty_container_after_restarts_under_load() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-recreate");
    let mount_of = |v: &docker::Volume| format!("{}:/var/lib/postgresql/data", v.name);
    let vol = docker::volume(&format!("{name}-data"));
    let c = docker::postgres_with(&name, PW, &["-v", &mount_of(&vol)]);
    c.psql(PW, "postgres", "CREATE DATABASE shop");
    c.exec_ok(
        &[("PGPASSWORD", PW)],
        &[
            "pgbench",
            "-U",
            "postgres",
            "-h",
            "/var/run/postgresql",
            "-i",
            "-q",
            "shop",
        ],
    );
    c.psql(PW, "shop", "CREATE TABLE markers (at timestamptz)");
    let env = env_with_pitr(&name);
    let archive = start_archive(&env);
    wait_for_receiver(&c);
    start_pgbench(&c);
    // With the archive live, the base backup leaves its WAL to it (`-X none`): the
    // restore below needs the archive's copy of the backup's own WAL.
    wait_for("a first copy of the WAL", Duration::from_secs(30), || {
        !archived(&env).is_empty()
    });
    common::assert_ok(&env.run(&["backup", "shop"]));
    let points = env.json(&["snapshots", "shop"]);
    let base = &points[0]["sources"][0]["base"];
    assert_eq!(base["wal_in_archive"], true, "{points}");
    assert!(base["ended"].is_string(), "{points}");
    markers_until(&c, chrono::Utc::now() + chrono::Duration::seconds(2));

    // The server restarts mid-stream (pgbench with it), then drctl's archiver.
    c.stop();
    c.start();
    start_pgbench(&c);
    markers_until(&c, chrono::Utc::now() + chrono::Duration::seconds(2));
    let mut archive = archive;
    archive.kill().unwrap();
    archive.wait().unwrap();
    markers_until(&c, chrono::Utc::now() + chrono::Duration::seconds(2));
    let archive = start_archive(&env);

    // The mistake, at least a second after T.
    let start = chrono::Utc::now();
    let t = chrono::DateTime::from_timestamp(start.timestamp() + 3, 0).unwrap();
    markers_until(&c, t + chrono::Duration::seconds(2));
    c.psql(PW, "shop", "DELETE FROM pgbench_accounts");
    let deleted = chrono::Utc::now();
    markers_until(&c, deleted + chrono::Duration::seconds(1));
    // Until the killed archiver's receiver ends (30 s without drctl) the new one cannot
    // stream from the slot, and a stored copy covers only what was written before it.
    wait_for("the delete in the archive", Duration::from_secs(90), || {
        archived(&env).iter().any(|(_, _, at)| *at > deleted)
    });
    let history_at_t = |c: &Container| {
        c.psql(
            PW,
            "shop",
            &format!(
                "SELECT count(*) FROM pgbench_history WHERE mtime <= '{}'",
                t.naive_utc()
            ),
        )
    };
    let written = history_at_t(&c);
    assert_ne!(written, "0", "pgbench wrote before the time");

    // The container and its volume are lost; an empty server takes the name, and its
    // own WAL reaches the archive under the same names.
    drop(c);
    drop(vol);
    let vol = docker::volume(&format!("{name}-data"));
    let c = docker::postgres_with(&name, PW, &["-v", &mount_of(&vol)]);
    let recreated = chrono::Utc::now();
    wait_for_receiver(&c);
    let mut reused = Vec::new();
    for _ in 0..4 {
        c.psql(
            PW,
            "postgres",
            "CREATE TABLE IF NOT EXISTS x (i int); INSERT INTO x VALUES (1)",
        );
        reused.push(c.psql(PW, "postgres", "SELECT pg_walfile_name(pg_switch_wal())"));
    }
    let last = reused.last().unwrap().clone();
    wait_for("the new server's WAL", Duration::from_secs(30), || {
        archived(&env)
            .iter()
            .any(|(n, p, at)| *n == last && !p && *at > recreated)
    });

    let o = restore_at(&env, t);
    if !o.status.success() {
        let snaps = env.run(&["--json", "snapshots"]);
        let check = env.run(&["check"]);
        panic!(
            "restore failed: {}\n{}\n{}{}",
            text(&o.stderr),
            text(&snaps.stdout),
            text(&check.stdout),
            text(&check.stderr)
        );
    }
    let said = text(&o.stdout);
    assert!(said.contains("restored db to "), "{said}");
    for (table, rows) in [
        ("pgbench_accounts", "100000"),
        ("pgbench_branches", "1"),
        ("pgbench_tellers", "10"),
    ] {
        assert_eq!(
            c.psql(PW, "shop", &format!("SELECT count(*) FROM {table}")),
            rows,
            "{table}"
        );
    }
    // pgbench's own log of transactions up to the time is there, but for the few that
    // began before it and committed after it.
    let (restored, written): (u64, u64) =
        (history_at_t(&c).parse().unwrap(), written.parse().unwrap());
    assert!(
        restored <= written && written - restored <= 20,
        "pgbench_history to the time: {restored} restored, {written} written"
    );
    let newest = newest_marker(&c);
    assert!(newest <= t, "a marker after the time: {newest} > {t}");
    assert!(
        t - newest <= chrono::Duration::seconds(1),
        "markers end more than a second before the time: {newest} < {t}"
    );
    let log = stop_archive(archive);
    assert!(!log.contains(PW), "password in the log: {log}");
}

/// MariaDB with binary logging off (the official images' default) and `pitr = true`:
/// the source backs up with dumps, `status` says that PITR is unavailable and what to add
/// to the container's command, and a restore to a time between two dumps says which dump
/// it restores and why.
#[test]
fn mariadb_without_binary_logging_backs_up_with_dumps_and_says_what_to_change() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-binlog");
    let c = docker::mariadb(&name, MPW);
    c.mariadb_sql(
        MPW,
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id int); INSERT INTO shop.orders VALUES (1)",
    );
    let env = mysql_env(&name);
    common::assert_ok(&env.run(&["backup", "shop"]));
    std::thread::sleep(Duration::from_millis(1100));
    let between = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(1100));
    c.mariadb_sql(MPW, "INSERT INTO shop.orders VALUES (2)");
    common::assert_ok(&env.run(&["backup", "shop"]));

    let o = env.run(&["status", "--check"]);
    common::assert_ok(&o);
    let said = text(&o.stdout);
    assert!(
        said.contains(&format!(
            "shop/db: PITR unavailable: binary logging is off in container {name}: add \
             --log-bin --binlog-format=ROW --server-id=1 to its command"
        )),
        "{said}"
    );
    let v = env.json(&["status"]);
    let src = &v["stacks"][0]["sources"][0];
    assert!(src["pitr_unavailable"]
        .as_str()
        .unwrap()
        .contains("--log-bin"));
    assert!(src.get("pitr").is_none(), "{src}");

    let o = restore_at(&env, between);
    common::assert_ok(&o);
    let said = text(&o.stdout);
    assert!(
        said.contains("its newest backup at or before")
            && said.contains("binary logging is off in container"),
        "{said}"
    );
    assert_eq!(c.mariadb_sql(MPW, "SELECT count(*) FROM shop.orders"), "1");
}

const MPW: &str = "maria-binlog-1";

/// A stack `shop` whose source `db` is the MariaDB server in `container`, with `pitr`.
fn mysql_env(container: &str) -> Env {
    let env = Env::init(Kind::Local).unwrap();
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/shop.toml"),
        format!(
            "[stack.shop]\nrpo = \"1h\"\n[[stack.shop.source]]\nname = \"db\"\nkind = \"mysql\"\n\
             container = \"{container}\"\ndatabases = [\"shop\"]\npitr = true\n"
        ),
    )
    .unwrap();
    env
}

/// MariaDB's options for a row-based binary log, as the official image takes them.
const BINLOG_OPTIONS: [&str; 3] = [
    "--log-bin=mysql-bin",
    "--binlog-format=ROW",
    "--server-id=1",
];

/// A MariaDB server writing a binary log, holding `shop.orders` (5000 rows) and an
/// empty `shop.markers`, and a stack `shop` backing it up with `pitr = true`.
fn binlog_shop(name: &str) -> (Container, Env) {
    let c = docker::mariadb_cmd(name, MPW, &[], &BINLOG_OPTIONS);
    c.mariadb_sql(
        MPW,
        "CREATE DATABASE shop; CREATE TABLE shop.orders (id int PRIMARY KEY, note text); \
         INSERT INTO shop.orders SELECT seq, md5(seq) FROM shop.seq_1_to_5000; \
         CREATE TABLE shop.markers (at datetime(6))",
    );
    let env = mysql_env(name);
    (c, env)
}

/// Asserts that the restored markers end at `t`: none after it, and the newest within a
/// second before it.
fn assert_markers_end_at(c: &Container, t: chrono::DateTime<chrono::Utc>) {
    let newest: chrono::DateTime<chrono::Utc> = c
        .mariadb_sql(
            MPW,
            "SELECT DATE_FORMAT(max(at), '%Y-%m-%dT%H:%i:%s.%fZ') FROM shop.markers",
        )
        .parse()
        .unwrap();
    assert!(newest <= t, "a marker after the time: {newest} > {t}");
    assert!(
        t - newest <= chrono::Duration::seconds(1),
        "markers end more than a second before the time: {newest} < {t}"
    );
}

/// `INSERT` of a marker row carrying its own clock (UTC, to the microsecond) every
/// ~100 ms until `until`; the loop runs in the server, as [`markers_until`]'s does.
fn maria_markers_until(c: &Container, until: chrono::DateTime<chrono::Utc>) {
    let sql = format!(
        "DELIMITER //\nBEGIN NOT ATOMIC WHILE UTC_TIMESTAMP(6) < '{}' DO \
         INSERT INTO shop.markers VALUES (UTC_TIMESTAMP(6)); DO SLEEP(0.1); \
         END WHILE; END//",
        until.format("%Y-%m-%d %H:%M:%S%.6f")
    );
    c.mariadb_sql(MPW, &sql);
}

/// MariaDB as the official image runs it with `--log-bin --binlog-format=ROW
/// --server-id=1` on its command: dumps with their binary log position, the binary log
/// archived through a server restart and a killed archiver, then markers every fraction
/// of a second and a `DELETE`. The container is then removed and created again empty
/// under the same name, with the archive running on (the new server numbers its files
/// from 1 again, under the same names); `restore --at` one second before the delete
/// brings every order back, with the markers up to within a second of the time and none
/// after it. A drill to that time, before, replays it in a scratch server.
#[test]
fn mariadb_restore_at_a_second_before_a_delete_replays_the_binary_log() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-binlog-pitr");
    let (c, env) = binlog_shop(&name);
    common::assert_ok(&env.run(&["backup", "shop"]));
    let mut archive = start_archive(&env);
    maria_markers_until(&c, chrono::Utc::now() + chrono::Duration::seconds(1));

    // The server restarts (a new binary log file), and the archiver is killed and
    // started again: nothing is lost, the server kept its files.
    let stopping = chrono::Utc::now();
    c.stop();
    let stopped = chrono::Utc::now();
    c.start();
    archive.kill().unwrap();
    archive.wait().unwrap();
    maria_markers_until(&c, chrono::Utc::now() + chrono::Duration::seconds(1));
    let archive = start_archive(&env);

    let start = chrono::Utc::now();
    let t = chrono::DateTime::from_timestamp(start.timestamp() + 3, 0).unwrap();
    maria_markers_until(&c, t + chrono::Duration::seconds(2));
    c.mariadb_sql(MPW, "DELETE FROM shop.orders");
    let deleted = chrono::Utc::now();
    maria_markers_until(&c, deleted + chrono::Duration::seconds(1));
    wait_for("the delete in the archive", Duration::from_secs(30), || {
        archived(&env).iter().any(|(_, _, at)| *at > deleted)
    });
    let files: BTreeSet<String> = archived(&env).into_iter().map(|(n, _, _)| n).collect();
    assert!(
        files.contains("mysql-bin.000001") && files.contains("mysql-bin.000002"),
        "{files:?}"
    );
    // The file the restart finished was stored after the server came back, yet covers
    // only until its last write, during the shutdown: what came after is in the next file.
    let (_, _, until) = archived(&env)
        .into_iter()
        .find(|(n, p, _)| n == "mysql-bin.000001" && !p)
        .unwrap();
    assert!(
        stopping <= until && until <= stopped,
        "mysql-bin.000001 covers until {until}, stopped between {stopping} and {stopped}"
    );

    // A drill to the same time replays it in a scratch server, and measures how close.
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    std::fs::write(
        env.path("restore-drills/shop.toml"),
        "[drill.shop-pitr]\nstack = \"shop\"\nrpo = \"30s\"\n[[drill.shop-pitr.check]]\n\
         source = \"db\"\ndatabase = \"shop\"\nsql = \"SELECT count(*) FROM orders\"\nexpect = \"= 5000\"\n",
    )
    .unwrap();
    common::assert_ok(&env.run(&["drill", "shop-pitr", "--at", &t.to_rfc3339()]));
    let history = env.json(&["drill", "history"]);
    let r = &history.as_array().unwrap()[0];
    assert_eq!(r["verdict"], "PASS", "{r}");
    let replayed: chrono::DateTime<chrono::Utc> =
        r["pitr"]["replayed_to"].as_str().unwrap().parse().unwrap();
    assert!(
        replayed <= t && t - replayed <= chrono::Duration::seconds(2),
        "replayed to {replayed} for {t}"
    );

    // The host's server is replaced by an empty one under the same name.
    c.remove();
    let c = docker::mariadb_cmd(&name, MPW, &[], &BINLOG_OPTIONS);
    c.mariadb_sql(MPW, "CREATE DATABASE other; FLUSH BINARY LOGS");
    wait_for(
        "the new server's first file in the archive",
        Duration::from_secs(30),
        || {
            archived(&env)
                .iter()
                .filter(|(n, p, _)| n == "mysql-bin.000001" && !p)
                .count()
                == 2
        },
    );

    let v = env.json(&["status"]);
    let window = &v["stacks"][0]["sources"][0]["pitr"]["window"];
    assert!(window.is_object(), "{v}");
    let o = restore_at(&env, t);
    common::assert_ok(&o);
    let said = text(&o.stdout);
    eprintln!("{said}\narchived: {files:?}");
    assert!(
        said.contains("archived binary log file(s) replayed") && said.contains("restored db"),
        "{said}"
    );
    assert_eq!(
        c.mariadb_sql(MPW, "SELECT count(*) FROM shop.orders"),
        "5000"
    );
    assert_markers_end_at(&c, t);
    let log = stop_archive(archive);
    assert!(!log.contains(MPW), "password in the log: {log}");
}

/// A binary log file deleted from the repository: `check` names it, `status --check`
/// fails with the gap, a restore to a time it covers fails naming it, and a restore to a
/// time before it still replays to the second.
#[test]
fn mariadb_missing_binary_log_file_is_named_and_only_its_span_is_unrestorable() {
    if skip() {
        return;
    }
    let name = unique("drctl-t-binlog-gap");
    let (c, env) = binlog_shop(&name);
    common::assert_ok(&env.run(&["backup", "shop"]));
    let archive = start_archive(&env);
    let start = chrono::Utc::now();
    let before_gap = chrono::DateTime::from_timestamp(start.timestamp() + 2, 0).unwrap();
    maria_markers_until(&c, before_gap + chrono::Duration::seconds(1));
    // Three more files, the middle one to be lost; markers in each.
    for _ in 0..3 {
        c.mariadb_sql(MPW, "FLUSH BINARY LOGS");
        maria_markers_until(&c, chrono::Utc::now() + chrono::Duration::seconds(1));
    }
    let later = chrono::Utc::now();
    wait_for(
        "the last markers in the archive",
        Duration::from_secs(30),
        || {
            let a = archived(&env);
            a.iter().any(|(n, p, _)| n == "mysql-bin.000003" && !p)
                && a.iter().any(|(_, _, at)| *at > later)
        },
    );
    common::assert_ok(&env.run(&["status", "--check"]));

    let missing = "mysql-bin.000002";
    let key = wal_object(&env, missing);
    common::rt().block_on(env.store().delete(&key)).unwrap();

    let o = env.run(&["check"]);
    let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("binary log file {missing} is missing")),
        "{said}"
    );
    let o = env.run(&["status", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("GAP"), "{}", text(&o.stdout));
    let (named, from, to) = status_gap(&env).expect("status names the gap");
    assert_eq!(named, missing);
    assert!(from < to, "{from} {to}");

    let inside = from + (to - from) / 2;
    let o = restore_at(&env, inside);
    common::assert_fails(&o, 1, &format!("binary log file {missing} is missing"));
    assert_eq!(
        c.mariadb_sql(MPW, "SELECT count(*) FROM shop.orders"),
        "5000",
        "server untouched"
    );

    // Before the gap: replayed to within a second of the time, nothing after it.
    let o = restore_at(&env, before_gap);
    common::assert_ok(&o);
    assert_markers_end_at(&c, before_gap);
    stop_archive(archive);
}

/// A compromised server controls what its `pg_basebackup` writes: here its tar says that
/// `pg_hba.conf` and `postgresql.auto.conf` are links to absolute paths, which on the
/// host that restores name files of that host. A drill (which edits `pg_hba.conf`) and a
/// restore to a time (which edits `postgresql.auto.conf`) run as root on this host; each
/// fails naming the link, and the files the links name here are untouched. A tar with a
/// link to a directory of this host and a file through it stops the unpacking: nothing
/// is written there.
#[test]
fn links_in_a_base_backup_are_never_followed_on_the_restoring_host() {
    if skip() {
        return;
    }
    let (name, _vol, mount) = on_a_volume("drctl-t-plink");
    let c = docker::postgres_with(&name, PW, &["-v", &mount]);
    create_shop(&c);
    let victims = tempfile::tempdir().unwrap();
    let v = victims.path().to_str().unwrap();
    let (hba, auto) = (victims.path().join("hba"), victims.path().join("auto"));
    std::fs::write(&hba, "this host's file\n").unwrap();
    std::fs::write(&auto, "this host's other file\n").unwrap();
    let wrapper = format!(
        "#!/bin/sh\n\
         /usr/bin/pg_basebackup \"$@\" >/tmp/real.tar || exit 1\n\
         rm -rf /tmp/x && mkdir /tmp/x && cd /tmp/x && tar -xf /tmp/real.tar && \
         ln -sf {v}/hba pg_hba.conf && ln -sf {v}/auto postgresql.auto.conf && \
         tar -cf - backup_label $(ls -A | grep -vx backup_label)\n"
    );
    c.exec_ok(
        &[("W", &wrapper)],
        &[
            "sh",
            "-c",
            "printf '%s' \"$W\" >/usr/local/bin/pg_basebackup && chmod +x /usr/local/bin/pg_basebackup",
        ],
    );
    let env = env_with_pitr(&name);
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    std::fs::write(
        env.path("restore-drills/shop.toml"),
        "[drill.shop]\nstack = \"shop\"\n[[drill.shop.check]]\nsource = \"db\"\n\
         sql = \"SELECT count(*) FROM orders\"\nexpect = \"= 20000\"\n",
    )
    .unwrap();
    let archive = start_archive(&env);
    wait_for_receiver(&c);
    common::assert_ok(&env.run(&["backup", "shop"]));
    c.psql(PW, "shop", "INSERT INTO markers VALUES (clock_timestamp())");
    let t = chrono::Utc::now();
    wait_for("the marker in the archive", Duration::from_secs(30), || {
        archived(&env).iter().any(|(_, _, at)| *at > t)
    });
    let at = t.to_rfc3339();

    let o = env.run(&["drill", "shop", "--at", &at]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        said.contains("pg_hba.conf in the restored data directory")
            && said.contains(&format!("is a symbolic link (to {v}/hba)")),
        "{said}"
    );

    // Its next tar holds a link to a directory of this host and, after it, a file
    // through that link: unpacking stops there (tar keeps such a link a plain file until
    // the end), and nothing is written outside the data directory.
    let wrapper = format!(
        "#!/bin/sh\n\
         /usr/bin/pg_basebackup \"$@\" >/tmp/real.tar || exit 1\n\
         rm -rf /tmp/x /tmp/y && mkdir -p /tmp/x /tmp/y/evil && cd /tmp/x && \
         tar -xf /tmp/real.tar && ln -s {v} evil && echo pwned >/tmp/y/evil/pwned && \
         tar -cf /tmp/a.tar backup_label $(ls -A | grep -vx backup_label) && \
         tar -rf /tmp/a.tar -C /tmp/y evil/pwned && cat /tmp/a.tar\n"
    );
    c.exec_ok(
        &[("W", &wrapper)],
        &[
            "sh",
            "-c",
            "printf '%s' \"$W\" >/usr/local/bin/pg_basebackup",
        ],
    );
    common::assert_ok(&env.run(&["backup", "shop"]));
    c.psql(PW, "shop", "INSERT INTO markers VALUES (clock_timestamp())");
    let t2 = chrono::Utc::now();
    wait_for(
        "the second marker in the archive",
        Duration::from_secs(30),
        || archived(&env).iter().any(|(_, _, at)| *at > t2),
    );
    let o = env.run(&["drill", "shop", "--at", &t2.to_rfc3339()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let said = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        said.contains("unpacking the base backup") && said.contains("evil/pwned"),
        "{said}"
    );
    assert_eq!(std::fs::read_dir(victims.path()).unwrap().count(), 2);

    // The restore to the first time takes the first base backup, which it refuses too.
    let o = restore_at(&env, t);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let said = text(&o.stderr);
    assert!(
        said.contains("postgresql.auto.conf in the restored data directory")
            && said.contains(&format!("is a symbolic link (to {v}/auto)")),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&hba).unwrap(), "this host's file\n");
    assert_eq!(
        std::fs::read_to_string(&auto).unwrap(),
        "this host's other file\n"
    );
    assert_eq!(std::fs::read_dir(victims.path()).unwrap().count(), 2);
    stop_archive(archive);
}
