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

fn crash_safety(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = make_source(&env);
    let src_arg = src.to_str().unwrap();

    // A clean backup of the same data elsewhere: how long it takes and what it stores.
    let reference = Env::init(kind).unwrap();
    let t = Instant::now();
    let clean = reference.json(&["backup", "--stack", "s", src_arg]);
    let clean_time = t.elapsed();
    let clean_added = clean["summary"]["bytes_added"].as_u64().unwrap();

    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut killed = 0;
    for i in 0..KILLS {
        let mut child = env
            .cmd()
            .args(["backup", "--stack", "s", src_arg])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Early kills hit startup and chunking, late ones hit uploads and the commit.
        let upto = clean_time.as_secs_f64() * (0.3 + 0.6 * i as f64 / KILLS as f64);
        std::thread::sleep(Duration::from_secs_f64(rng.gen_range(0.02..upto.max(0.05))));
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        child.wait().unwrap();
        if !finished {
            killed += 1;
        }
        let o = env.run(&["check"]);
        assert_ok(&o);
        let snaps = env.snapshot_count();
        assert!(snaps == 0 || finished, "kill {i} left a snapshot behind");
    }
    assert!(killed >= 10, "only {killed} backups were killed mid-run");
    assert!(
        env.objects().iter().any(|(k, _)| k.starts_with("data/")),
        "no kill came after an upload"
    );

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
    assert_eq!(
        std::fs::read_dir(restored.join("small")).unwrap().count(),
        300
    );
}

for_each_store!(crash_safety);
