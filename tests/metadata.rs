//! Damaged or missing metadata: a lost config, a garbage catalog, a truncated snapshot,
//! recovery point or drill result, a deleted or damaged index. The repository stays usable, `check` names what is
//! damaged, and what can be rebuilt from the repository itself is.

mod common;

use common::{assert_fails, assert_ok, random_bytes, text, Env, Kind};

fn source(env: &Env, name: &str, seed: u64) -> std::path::PathBuf {
    let dir = env.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.bin"), random_bytes(3 << 20, seed)).unwrap();
    std::fs::write(dir.join("b.txt"), format!("{name} text\n").repeat(1000)).unwrap();
    dir
}

fn keys_under(env: &Env, prefix: &str) -> Vec<String> {
    env.objects()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(prefix))
        .collect()
}

/// Every file below `dir`.
fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn restores_identical(env: &Env, stack: &str, src: &std::path::Path) {
    let out = env.path(&format!("out-{stack}-{}", rand::random::<u32>()));
    assert_ok(&env.run(&["restore", stack, "--to", out.to_str().unwrap()]));
    let got = out.join(src.strip_prefix("/").unwrap());
    for f in ["a.bin", "b.txt"] {
        assert!(
            std::fs::read(src.join(f)).unwrap() == std::fs::read(got.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

fn lost_config(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = source(&env, "web", 1);
    assert_ok(&env.run(&["backup", "--stack", "web", src.to_str().unwrap()]));
    common::rt().block_on(env.store().delete("config")).unwrap();
    let before = env.objects();

    // `init` with a new key file would build a second repository over the first.
    let o = env
        .cmd()
        .env("DRCTL_KEY_FILE", env.path("other.key"))
        .arg("init")
        .output()
        .unwrap();
    assert_fails(&o, 2, "refusing to initialise over them");
    assert!(
        text(&o.stderr).contains("drctl repair config"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(env.objects(), before, "init wrote nothing");
    assert!(!env.path("other.key").exists());
    // Every other command says what happened, and not to run init.
    let o = env.run(&["snapshots"]);
    assert_fails(&o, 2, "do not run `drctl init` here");

    // The key file of another repository cannot claim it.
    let other = Env::init(Kind::Local).unwrap();
    let o = env
        .cmd()
        .env("DRCTL_KEY_FILE", &other.key_file)
        .args(["repair", "config"])
        .output()
        .unwrap();
    assert_fails(&o, 2, "does not open this repository's objects");
    assert_eq!(env.objects(), before);

    assert_ok(&env.run(&["repair", "config"]));
    assert_ok(&env.run(&["check", "--read-data"]));
    restores_identical(&env, "web", &src);
    // And a second backup deduplicates against the first: same chunker, same IDs.
    let o = env.json(&["backup", "--stack", "web", src.to_str().unwrap()]);
    assert!(
        o["summary"]["bytes_added"].as_u64().unwrap() < 10_000,
        "{o}"
    );
}

fn garbage_catalog(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let src = source(&env, "web", 2);
    assert_ok(&env.run(&["backup", "--stack", "web", src.to_str().unwrap()]));
    std::fs::write(&env.catalog, random_bytes(64 << 10, 3)).unwrap();
    let o = env.run(&["--json", "snapshots"]);
    assert_ok(&o);
    assert!(
        text(&o.stderr).contains("is damaged"),
        "{}",
        text(&o.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let aside: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("catalog.db.damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "kept for inspection");
    // `catalog rebuild` itself copes with a garbage catalog too.
    std::fs::write(
        &env.catalog,
        b"not a database at all, but longer than a header....",
    )
    .unwrap();
    assert_ok(&env.run(&["catalog", "rebuild"]));
    restores_identical(&env, "web", &src);
}

fn truncated_snapshot(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let (web, db) = (source(&env, "web", 4), source(&env, "db", 5));
    assert_ok(&env.run(&["backup", "--stack", "web", web.to_str().unwrap()]));
    let first = keys_under(&env, "snapshots/");
    assert_ok(&env.run(&["backup", "--stack", "db", db.to_str().unwrap()]));
    let key = keys_under(&env, "snapshots/")
        .into_iter()
        .find(|k| !first.contains(k))
        .unwrap();
    let id = key.rsplit('/').next().unwrap()[..8].to_string();
    let bytes = env.get(&key);
    env.put(&key, bytes[..bytes.len() / 2].to_vec());

    // Warm catalog: check reads the store, not the catalog.
    let o = env.run(&["check", "--read-data"]);
    assert_fails(&o, 1, "check found 1 problem");
    assert!(text(&o.stdout).contains(&id) || text(&o.stderr).contains(&id));
    // Cold catalog: the damaged one is skipped with a warning, the rest works.
    std::fs::remove_file(&env.catalog).unwrap();
    let o = env.run(&["--json", "snapshots"]);
    assert_ok(&o);
    assert!(text(&o.stderr).contains(&id), "{}", text(&o.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    restores_identical(&env, "web", &web);
    assert_fails(&env.run(&["check"]), 1, "check found 1 problem");
}

/// A stack with one volume source and a drill of it; returns the source directory.
fn stack_with_drill(env: &Env) -> std::path::PathBuf {
    let data = source(env, "files", 8);
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/shop.toml"),
        format!(
            "[stack.shop]\n[[stack.shop.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    std::fs::write(
        env.path("restore-drills/shop.toml"),
        "[drill.shop]\nstack = \"shop\"\n",
    )
    .unwrap();
    data
}

/// A damaged recovery point and a damaged drill result are named by `check` (rc 1) and,
/// from a cold catalog, skipped with a warning while the intact ones stay usable.
fn truncated_point_and_drill_result(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let data = stack_with_drill(&env);
    assert_ok(&env.run(&["backup", "shop"]));
    assert_ok(&env.run(&["drill", "shop"]));
    let (points, drills) = (keys_under(&env, "points/"), keys_under(&env, "drills/"));
    assert_eq!((points.len(), drills.len()), (1, 1));
    assert_ok(&env.run(&["backup", "shop"]));
    assert_ok(&env.run(&["drill", "shop"]));
    let damaged_point = keys_under(&env, "points/")
        .into_iter()
        .find(|k| !points.contains(k))
        .unwrap();
    let short = |k: &str| k.rsplit('/').next().unwrap()[..8].to_string();
    for key in [&damaged_point, &drills[0]] {
        let bytes = env.get(key);
        env.put(key, bytes[..bytes.len() / 2].to_vec());
    }

    // Warm catalog: check reads both from the store and names them.
    let o = env.run(&["check"]);
    assert_fails(&o, 1, "check found 2 problem");
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    for key in [&damaged_point, &drills[0]] {
        assert!(all.contains(&short(key)), "{key} not named: {all}");
    }
    // Cold catalog: each damaged one is skipped with a warning; the rest is usable.
    std::fs::remove_file(&env.catalog).unwrap();
    let o = env.run(&["--json", "snapshots", "shop"]);
    assert_ok(&o);
    assert!(
        text(&o.stderr).contains(&short(&damaged_point)),
        "{}",
        text(&o.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let o = env.run(&["--json", "drill", "history"]);
    assert_ok(&o);
    let history: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    let out = env.path("out-shop");
    assert_ok(&env.run(&["restore", "shop", "--to", out.to_str().unwrap()]));
    let restored: Vec<_> = walkdir(&out)
        .into_iter()
        .filter(|p| p.ends_with("a.bin"))
        .collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert!(std::fs::read(&restored[0]).unwrap() == std::fs::read(data.join("a.bin")).unwrap());
    assert_fails(&env.run(&["check"]), 1, "check found 2 problem");
}

fn lost_index(kind: Kind) {
    let Some(env) = Env::init(kind) else { return };
    let (web, db) = (source(&env, "web", 6), source(&env, "db", 7));
    assert_ok(&env.run(&["backup", "--stack", "web", web.to_str().unwrap()]));
    let first = keys_under(&env, "index/");
    assert_ok(&env.run(&["backup", "--stack", "db", db.to_str().unwrap()]));
    // One index file damaged, the other deleted; a cold catalog.
    let second: Vec<_> = keys_under(&env, "index/")
        .into_iter()
        .filter(|k| !first.contains(k))
        .collect();
    let bytes = env.get(&first[0]);
    env.put(&first[0], bytes[..bytes.len() - 7].to_vec());
    for k in &second {
        common::rt().block_on(env.store().delete(k)).unwrap();
    }
    std::fs::remove_file(&env.catalog).unwrap();

    let o = env.run(&["snapshots"]);
    assert_ok(&o);
    assert!(
        text(&o.stderr).contains("repair index"),
        "{}",
        text(&o.stderr)
    );
    let o = env.run(&["check"]);
    assert_fails(&o, 1, "problem");
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        all.contains("index file") && all.contains("is damaged"),
        "{all}"
    );

    let o = env.json(&["repair", "index"]);
    assert_eq!(o["damaged_index_files"].as_array().unwrap().len(), 1, "{o}");
    assert!(o["packs_indexed"].as_u64().unwrap() >= 2, "{o}");
    assert_ok(&env.run(&["check", "--read-data"]));
    restores_identical(&env, "web", &web);
    restores_identical(&env, "db", &db);
    // Nothing was lost for dedup either.
    let o = env.json(&["backup", "--stack", "db", db.to_str().unwrap()]);
    assert!(
        o["summary"]["bytes_added"].as_u64().unwrap() < 10_000,
        "{o}"
    );
}

for_each_store!(
    lost_config,
    garbage_catalog,
    truncated_snapshot,
    truncated_point_and_drill_result,
    lost_index
);
