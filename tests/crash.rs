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

fn data_packs(env: &Env) -> usize {
    env.objects()
        .iter()
        .filter(|(k, _)| k.starts_with("data/"))
        .count()
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
    for i in 0..KILLS {
        let late = i >= KILLS - 4;
        if late {
            // Fresh data, so this run has packs of its own to upload before it dies.
            std::fs::write(
                src.join(format!("new-{i}.bin")),
                random_bytes(40 << 20, 500 + i as u64),
            )
            .unwrap();
        }
        let before = data_packs(&env);
        let mut child = env
            .cmd()
            .args(["backup", "--stack", "s", src_arg])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if late {
            // Killed once it has stored at least two new packs: the next run must reuse them.
            let deadline = Instant::now() + Duration::from_secs(60);
            while data_packs(&env) < before + 2
                && child.try_wait().unwrap().is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            let upto = clean_time.as_secs_f64() * 0.6;
            std::thread::sleep(Duration::from_secs_f64(rng.gen_range(0.02..upto.max(0.05))));
        }
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        child.wait().unwrap();
        if !finished {
            killed += 1;
        }
        assert_ok(&env.run(&["check"]));
        let snaps = env.snapshot_count();
        assert!(snaps == 0 || finished, "kill {i} left a snapshot behind");
    }
    assert!(killed >= 10, "only {killed} backups were killed mid-run");

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
    assert!(
        std::fs::read(restored.join("new-11.bin")).unwrap()
            == std::fs::read(src.join("new-11.bin")).unwrap()
    );
    assert_eq!(
        std::fs::read_dir(restored.join("small")).unwrap().count(),
        300
    );
}

for_each_store!(crash_safety);
