//! Crash safety: backups killed with SIGKILL at random moments leave a repository that
//! checks clean, holds no partial snapshot, and whose next backup reuses what was stored.

mod common;

use std::time::{Duration, Instant};

use common::{assert_ok, random_bytes, Env, Kind};
use rand::{Rng, SeedableRng};

const KILLS: usize = 12;

fn make_source(env: &Env) -> std::path::PathBuf {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("small")).unwrap();
    std::fs::write(src.join("media.bin"), random_bytes(96 << 20, 11)).unwrap();
    std::fs::write(
        src.join("dump.sql"),
        "INSERT INTO orders VALUES (42, 'paid');\n".repeat(400_000),
    )
    .unwrap();
    for i in 0..300 {
        std::fs::write(
            src.join(format!("small/f{i:03}")),
            random_bytes(4096 + i * 13, 100 + i as u64),
        )
        .unwrap();
    }
    src
}

/// Packs the running backup has stored and recorded in its catalog, not yet indexed: what
/// a killed run leaves for the next one to reuse.
fn recorded_packs(env: &Env) -> i64 {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let Ok(db) = rusqlite::Connection::open_with_flags(&env.catalog, flags) else {
        return 0;
    };
    db.query_row(
        "SELECT count(*) FROM packs WHERE index_id IS NULL",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

fn crash_safety(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = make_source(&env);
    let src_arg = src.to_str().unwrap();

    // How long a clean backup of this data takes, to spread the kills over it.
    let t = Instant::now();
    assert_ok(
        &Env::init(kind)
            .unwrap()
            .run(&["backup", "--stack", "s", src_arg]),
    );
    let clean_time = t.elapsed();

    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut killed = 0;
    let mut committed = 0;
    let mut attempts = 0;
    // Kills land at random moments; a run that finished first (it had less to do, since
    // earlier runs stored part of the data) narrows the window for the next.
    let mut window = clean_time.as_secs_f64() * 0.8;
    while killed < KILLS {
        attempts += 1;
        assert!(
            attempts <= 40,
            "only {killed} of {attempts} backups could be killed mid-run"
        );
        let late = killed >= KILLS - 3;
        if late {
            // Fresh data, so this run has packs of its own to upload before it dies.
            let data = random_bytes(64 << 20, 500 + attempts as u64);
            std::fs::write(src.join(format!("new-{attempts}.bin")), data).unwrap();
        } else {
            // Changed data, so a run after a committed one still has work to be killed in.
            let data = random_bytes(16 << 20, 900 + attempts as u64);
            std::fs::write(src.join("churn.bin"), data).unwrap();
        }
        let before = recorded_packs(&env);
        let mut child = env
            .cmd()
            .args(["backup", "--stack", "s", src_arg])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if late {
            // Killed once it has stored and recorded two new packs: the next run must reuse
            // them. (A pack visible in the store may not be recorded yet: killed then, it is
            // garbage, which is fine but proves nothing.)
            let deadline = Instant::now() + Duration::from_secs(60);
            while recorded_packs(&env) < before + 2
                && child.try_wait().unwrap().is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            std::thread::sleep(Duration::from_secs_f64(
                rng.gen_range(0.02..window.max(0.05)),
            ));
        }
        if common::kill_now(&mut child) {
            window *= 0.6;
        } else {
            killed += 1;
        }
        // Whatever the moment, the repository checks clean. A snapshot exists only if the
        // run got past its commit point, and then `check` has just verified it whole.
        assert_ok(&env.run(&["check"]));
        let snaps = env.snapshot_count();
        assert!(
            snaps <= committed + 1,
            "attempt {attempts}: {snaps} snapshots"
        );
        committed = snaps;
    }

    // What a clean backup of the final tree adds, against what the backup after the kills adds.
    let reference = Env::init(kind).unwrap();
    let clean = reference.json(&["backup", "--stack", "s", src_arg]);
    let clean_added = clean["summary"]["bytes_added"].as_u64().unwrap();
    let done = env.json(&["backup", "--stack", "s", src_arg]);
    let added = done["summary"]["bytes_added"].as_u64().unwrap();
    assert!(
        added < clean_added * 8 / 10,
        "the backup after the kills added {added} of {clean_added} bytes: uploads were not reused"
    );
    assert_ok(&env.run(&["check", "--read-data"]));
    let out = env.path("out");
    assert_ok(&env.run(&["restore", "s", "--to", out.to_str().unwrap()]));
    let restored = out.join(src.strip_prefix("/").unwrap());
    assert!(
        std::fs::read(restored.join("media.bin")).unwrap()
            == std::fs::read(src.join("media.bin")).unwrap()
    );
    let newest = format!("new-{attempts}.bin");
    assert!(
        std::fs::read(restored.join(&newest)).unwrap() == std::fs::read(src.join(&newest)).unwrap()
    );
    assert_eq!(
        std::fs::read_dir(restored.join("small")).unwrap().count(),
        300
    );
}

for_each_store!(crash_safety);
