//! `drctl copy`: an offsite copy that restores on its own, resumes after kills, copies
//! nothing twice, and never passes on a damaged object.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_fails, assert_ok, random_bytes, text, unique, Env, Kind};
use drctl::store::s3::{S3Config, S3Store};
use drctl::store::Store;
use rand::{Rng, SeedableRng};

/// Writes a few files of random bytes under `dir` (`tag` varies the contents).
fn write_tree(dir: &Path, tag: u64, files: usize, size: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..files {
        let name = dir.join(format!("f{tag}-{i}.bin"));
        std::fs::write(name, random_bytes(size, tag * 1000 + i as u64)).unwrap();
    }
}

/// Asserts that `restored` holds exactly the files of `original` (recursively).
fn assert_same_tree(original: &Path, restored: &Path) {
    let mut n = 0;
    for e in walk(original) {
        let rel = e.strip_prefix(original).unwrap();
        let got = std::fs::read(restored.join(rel))
            .unwrap_or_else(|err| panic!("{} missing from the restore: {err}", rel.display()));
        assert!(
            got == std::fs::read(&e).unwrap(),
            "{} differs",
            rel.display()
        );
        n += 1;
    }
    assert!(n > 0, "nothing compared");
    assert_eq!(walk(restored).len(), n, "the restore holds other files");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A tree of random files under `env`'s `data`, backed up as stack `files`.
fn backed_up(env: &Env, tag: u64, files: usize, size: usize) -> PathBuf {
    let data = env.path("data");
    write_tree(&data, tag, files, size);
    assert_ok(&env.run(&["backup", "--stack", "files", data.to_str().unwrap()]));
    data
}

/// Restores the newest snapshot with `cmd` (aimed at a copy) and compares it with `data`.
fn assert_restores(mut cmd: Command, env: &Env, data: &Path) {
    let out = env.path("restored");
    let o = cmd
        .args(["restore", "latest", "--to", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&o);
    assert_same_tree(data, &out.join(data.strip_prefix("/").unwrap()));
}

/// `copy --json`, its report.
fn copy_json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json", "copy"];
    a.extend_from_slice(args);
    let o = env.run(&a);
    assert_ok(&o);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The same environment aimed at the copy at `url` (its own catalog).
fn at_copy(env: &Env, url: &str) -> Command {
    let mut c = env.cmd();
    c.env("DRCTL_REPO", url)
        .env("DRCTL_CATALOG", env.path("copy-catalog.db"));
    c
}

#[test]
fn a_local_copy_restores_alone_and_a_second_run_reads_nothing() {
    let env = Env::init(Kind::Local).unwrap();
    let data = backed_up(&env, 1, 4, 3 << 20);
    let dest = format!("file://{}", env.path("offsite").display());

    let first = copy_json(&env, &["--to", &dest]);
    assert!(first["copied"].as_u64().unwrap() >= 3, "{first}");
    assert_eq!(first["wrote_config"], true);
    // Every object of the source but its prune state is in the copy, byte for byte.
    let source_keys: Vec<(String, u64)> = env.objects();
    for (key, _) in &source_keys {
        let copied = std::fs::read(env.path("offsite").join(key)).unwrap();
        assert!(copied == env.get(key), "{key} differs in the copy");
    }

    // New data: only its objects travel.
    write_tree(&data, 2, 1, 2 << 20);
    assert_ok(&env.run(&["backup", "--stack", "files", data.to_str().unwrap()]));
    let new = env.objects().len() - source_keys.len();
    let second = copy_json(&env, &["--to", &dest]);
    assert_eq!(second["copied"].as_u64().unwrap() as usize, new, "{second}");
    // Everything the first run copied, the config aside (it is no listed object).
    assert_eq!(
        second["present"].as_u64().unwrap() as usize,
        source_keys.len() - 1
    );

    // With every source pack damaged, a run with nothing new still succeeds and finds no
    // damage: it read no pack.
    for (key, _) in env.objects() {
        if key.starts_with("data/") || key.starts_with("meta/") {
            let mut b = env.get(&key);
            b[10] ^= 0xff;
            env.put(&key, b);
        }
    }
    let third = copy_json(&env, &["--to", &dest]);
    assert_eq!(third["copied"], 0, "{third}");
    assert_eq!(third["damaged"].as_array().unwrap().len(), 0, "{third}");

    // The source gone, the copy alone restores the newest snapshot whole.
    std::fs::remove_dir_all(env.path("repo")).unwrap();
    let o = at_copy(&env, &dest)
        .args(["check", "--read-data"])
        .output()
        .unwrap();
    assert_ok(&o);
    assert_restores(at_copy(&env, &dest), &env, &data);
}

#[test]
fn a_damaged_source_object_is_named_and_not_copied() {
    let env = Env::init(Kind::Local).unwrap();
    backed_up(&env, 3, 3, 1 << 20);
    let pack = env
        .objects()
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.starts_with("data/"))
        .unwrap();
    let mut b = env.get(&pack);
    b[100] ^= 1;
    env.put(&pack, b);
    let dest = env.path("offsite");
    let o = env.run(&["copy", "--to", dest.to_str().unwrap()]);
    assert_fails(&o, 1, "1 damaged object(s) in the source were not copied");
    assert!(
        text(&o.stderr).contains(&format!("damage: {pack}")),
        "{}",
        text(&o.stderr)
    );
    assert!(!dest.join(&pack).exists(), "the damaged pack was copied");
    // Everything else did travel.
    let copied = walk(&dest).len();
    assert_eq!(copied, env.objects().len() - 1);
}

#[test]
fn a_copy_notifies_its_outcome_and_a_dead_notifier_fails_nothing() {
    let env = Env::init(Kind::Local).unwrap();
    backed_up(&env, 4, 2, 1 << 20);
    let dest = env.path("offsite");
    let (url, bodies) = common::listener();
    let config = |hook: &str| {
        std::fs::write(
            env.path("drctl.toml"),
            format!(
                "[remotes.offsite]\nurl = \"file://{}\"\n[remotes.offsite.notify]\nwebhook = \"{hook}\"\n",
                dest.display()
            ),
        )
        .unwrap()
    };
    config(&url);
    assert_ok(&env.run(&["copy", "--to", "offsite"]));
    let next_body = || -> serde_json::Value {
        let body = bodies.recv_timeout(std::time::Duration::from_secs(10));
        serde_json::from_str(&body.unwrap()).unwrap()
    };
    let ok = next_body();
    assert_eq!(ok["event"], "success", "{ok}");
    assert!(ok["stack"].as_str().unwrap().starts_with("copy "), "{ok}");
    assert!(ok["bytes_added"].as_u64().unwrap() > 0, "{ok}");

    // A damaged source object: the copy fails, and says so to the webhook.
    backed_up(&env, 5, 1, 1 << 20);
    let known: Vec<String> = walk(&dest)
        .iter()
        .map(|p| p.strip_prefix(&dest).unwrap().display().to_string())
        .collect();
    let pack = env
        .objects()
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| k.starts_with("data/") && !known.contains(k))
        .unwrap();
    let original = env.get(&pack);
    let mut b = original.clone();
    b[100] ^= 1;
    env.put(&pack, b);
    assert_fails(&env.run(&["copy", "--to", "offsite"]), 1, "damaged");
    let failed = next_body();
    assert_eq!(failed["event"], "failure", "{failed}");
    assert!(
        failed["error"].as_str().unwrap().contains("damaged"),
        "{failed}"
    );

    // Repaired, the next copy succeeds even with its receiver down: a warning only.
    env.put(&pack, original);
    config("http://127.0.0.1:9/hook");
    let o = env.run(&["copy", "--to", "offsite"]);
    assert_ok(&o);
    assert!(text(&o.stderr).contains("warning: "), "{}", text(&o.stderr));
    assert!(dest.join(&pack).exists());
}

#[test]
fn a_copy_refuses_a_destination_holding_another_repository() {
    let a = Env::init(Kind::Local).unwrap();
    let b = Env::init(Kind::Local).unwrap();
    let before = b.objects();
    let o = a.run(&["copy", "--to", &b.url]);
    assert_fails(&o, 2, "holds another repository");
    assert_eq!(b.objects(), before, "the other repository was touched");
    let o = a.run(&["copy", "--to", "offsite"]);
    assert_fails(&o, 2, "neither a repository URL nor a remote");
    let o = a.run(&["copy", "--to", &a.url]);
    assert_fails(&o, 2, "the same repository");
}

/// A second Garage bucket reachable only with a key of its own, named in an AWS
/// credentials file as profile `offsite`.
struct Offsite {
    bucket: String,
    credentials: std::path::PathBuf,
}

fn garage(args: &[&str]) -> String {
    let bin = std::env::var("DRCTL_TEST_GARAGE_BIN").expect("DRCTL_TEST_GARAGE_BIN");
    let conf = std::env::var("DRCTL_TEST_GARAGE_CONF").expect("DRCTL_TEST_GARAGE_CONF");
    let o = Command::new(bin)
        .arg("-c")
        .arg(conf)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "garage {args:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

impl Offsite {
    /// `[remotes.offsite]`: the bucket's `copy` prefix, reached with the key of its own.
    fn remote(&self, env: &Env) -> String {
        let s3 = env.s3.as_ref().unwrap();
        format!(
            "[remotes.offsite]\nurl = \"s3://{}/copy\"\nendpoint = \"{}\"\nregion = \"{}\"\n\
             path_style = true\nprofile = \"offsite\"\n",
            self.bucket, s3.endpoint, s3.region
        )
    }
}

fn offsite_bucket(env: &Env) -> Offsite {
    let bucket = unique("offsite");
    let key = unique("offsite-key");
    garage(&["bucket", "create", &bucket]);
    let out = garage(&["key", "create", &key]);
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    let (id, secret) = (field("Key ID:"), field("Secret key:"));
    garage(&[
        "bucket", "allow", "--read", "--write", "--owner", &bucket, "--key", &key,
    ]);
    let credentials = env.path("aws-credentials");
    std::fs::write(
        &credentials,
        format!("[offsite]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    Offsite {
        bucket,
        credentials,
    }
}

#[test]
fn a_copy_between_garage_buckets_with_their_own_keys_survives_kills() {
    let Some(env) = Env::init(Kind::S3) else {
        return;
    };
    let off = offsite_bucket(&env);
    std::fs::write(env.path("drctl.toml"), off.remote(&env)).unwrap();
    let cmd = || {
        let mut c = env.cmd();
        c.env("AWS_SHARED_CREDENTIALS_FILE", &off.credentials)
            .env("AWS_CONFIG_FILE", env.path("no-aws-config"));
        c
    };
    // The production key cannot reach the offsite bucket at all.
    let o = env
        .cmd()
        .env("DRCTL_REPO", format!("s3://{}/copy", off.bucket))
        .arg("snapshots")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));

    let data = env.path("data");
    write_tree(&data, 4, 2, 8 << 20);
    let backup = |tag: u64| {
        write_tree(&data, tag, 1, 6 << 20);
        assert_ok(&env.run(&["backup", "--stack", "files", data.to_str().unwrap()]));
    };
    backup(5);
    let t = Instant::now();
    assert_ok(&cmd().args(["copy", "--to", "offsite"]).output().unwrap());
    let clean = t.elapsed().as_secs_f64();

    // The same bucket as the repository of the copying machine.
    let copy_config = off
        .remote(&env)
        .replace("[remotes.offsite]", "[repository]");
    std::fs::write(env.path("copy.toml"), copy_config).unwrap();
    let on_copy = || {
        let mut c = cmd();
        c.env_remove("DRCTL_REPO")
            .env_remove("DRCTL_ENDPOINT")
            .env("DRCTL_CONFIG", env.path("copy.toml"))
            .env("DRCTL_CATALOG", env.path("copy-catalog.db"));
        c
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let (mut killed, mut attempts) = (0, 0);
    let mut window = clean;
    while killed < 10 {
        attempts += 1;
        assert!(
            attempts <= 40,
            "only {killed} of {attempts} copies killed mid-run"
        );
        // New objects each time, so every run has work to be killed in.
        backup(100 + attempts);
        let to_copy = || -> u64 {
            let o = cmd()
                .args(["--json", "copy", "--dry-run", "--to", "offsite"])
                .output()
                .unwrap();
            assert_ok(&o);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            v["objects"].as_u64().unwrap()
        };
        let before = to_copy();
        let mut child = cmd()
            .args(["copy", "--to", "offsite"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs_f64(
            rng.gen_range(0.02..window.max(0.05)),
        ));
        if common::kill_now(&mut child) {
            window *= 0.6;
            continue;
        }
        // Only a kill between the first object and the last counts: one before any
        // copying proves nothing.
        let after = to_copy();
        if after == before || after == 0 {
            window *= 1.3;
            continue;
        }
        killed += 1;
        // Killed anywhere, the copy is a consistent repository (packs land before the
        // index files and snapshots that name them).
        assert_ok(&on_copy().arg("check").output().unwrap());
    }
    eprintln!("{killed} copies killed mid-run in {attempts} attempts");
    let last = cmd()
        .args(["--json", "copy", "--to", "offsite"])
        .output()
        .unwrap();
    assert_ok(&last);
    let again: serde_json::Value = serde_json::from_slice(
        &cmd()
            .args(["--json", "copy", "--to", "offsite"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(again["copied"], 0, "{again}");

    // The production prefix deleted, the copy restores byte for byte, with its own key.
    let store = env.store();
    let rt = common::rt();
    for o in rt.block_on(store.list("")).unwrap() {
        rt.block_on(store.delete(&o.key)).unwrap();
    }
    assert_ok(&on_copy().args(["check", "--read-data"]).output().unwrap());
    assert_restores(on_copy(), &env, &data);
}

#[test]
fn status_shows_each_copys_lag_and_check_fails_a_late_or_failed_copy() {
    let env = Env::init(Kind::Local).unwrap();
    backed_up(&env, 7, 1, 1 << 20);
    let dest = env.path("offsite");
    std::fs::write(
        env.path("drctl.toml"),
        format!(
            "[remotes.offsite]\nurl = \"file://{}\"\nmax_lag = \"6h\"\n",
            dest.display()
        ),
    )
    .unwrap();
    let at =
        |now: &str, args: &[&str]| env.cmd().env("DRCTL_NOW", now).args(args).output().unwrap();
    assert_ok(&at("2026-11-20T10:00:00Z", &["copy", "--to", "offsite"]));

    let o = at("2026-11-20T12:00:00Z", &["--json", "status"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["copies"][0]["last_success"], "2026-11-20T10:00:00Z",
        "{v}"
    );
    assert_eq!(v["copies"][0]["max_lag_secs"], 21600);
    let o = at("2026-11-20T12:00:00Z", &["status", "--check"]);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("OK, 2.0 h behind (bound 6.0 h)"),
        "{}",
        text(&o.stdout)
    );

    // Past its bound: late, in the check and in the metrics file.
    let metrics = env.path("drctl.prom");
    let o = at(
        "2026-11-20T17:00:00Z",
        &[
            "--metrics-file",
            metrics.to_str().unwrap(),
            "status",
            "--check",
        ],
    );
    assert_fails(&o, 1, "1 copy(ies) behind their bound or failed");
    assert!(
        text(&o.stderr).contains("7.0 h behind its source (bound 6.0 h)"),
        "{}",
        text(&o.stderr)
    );
    let m = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        m.contains("drctl_copy_lag_seconds{") && m.contains("} 25200"),
        "{m}"
    );

    // A run that fails is named until one succeeds.
    std::fs::write(dest.join("config"), b"{\"version\": 1, \"id\": \"other\"}").unwrap();
    let o = at("2026-11-20T17:10:00Z", &["copy", "--to", "offsite"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = at("2026-11-20T17:10:00Z", &["status", "--check"]);
    assert_fails(&o, 1, "copy(ies) behind their bound or failed");
    assert!(
        text(&o.stderr).contains("its last run failed"),
        "{}",
        text(&o.stderr)
    );
}

/// Object Lock asked of a destination without it is refused before anything is written,
/// rather than leaving objects that only look protected: Garage implements no Object
/// Lock, and a directory cannot have it. A bad lock setting is a configuration error
/// naming its place.
#[test]
fn a_copy_with_object_lock_refuses_a_destination_without_it() {
    let Some(env) = Env::init(Kind::S3) else {
        return;
    };
    let s3 = env.s3.as_ref().unwrap();
    let off = offsite_bucket(&env);
    let remote = off.remote(&env);
    std::fs::write(
        env.path("drctl.toml"),
        format!("{remote}object_lock = \"30d\"\n"),
    )
    .unwrap();
    backed_up(&env, 7, 1, 1 << 20);
    let copy = |args: &[&str]| {
        env.cmd()
            .env("AWS_SHARED_CREDENTIALS_FILE", &off.credentials)
            .env("AWS_CONFIG_FILE", env.path("no-aws-config"))
            .arg("copy")
            .args(args)
            .output()
            .unwrap()
    };
    let o = copy(&["--to", "offsite"]);
    assert_fails(&o, 2, "has no Object Lock, so its objects cannot be locked");
    // The flag asks the same of a remote configured without it.
    std::fs::write(env.path("drctl.toml"), &remote).unwrap();
    let o = copy(&["--to", "offsite", "--object-lock", "7d"]);
    assert_fails(&o, 2, "has no Object Lock");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &off.credentials);
    let offsite = S3Config {
        bucket: off.bucket.clone(),
        prefix: String::new(),
        endpoint: Some(s3.endpoint.clone()),
        region: Some(s3.region.clone()),
        path_style: true,
        profile: Some("offsite".into()),
    };
    let written = common::rt().block_on(async {
        let store = S3Store::new(offsite).await.unwrap();
        store.list("").await.unwrap()
    });
    assert!(written.is_empty(), "written to the bucket: {written:?}");

    let dir = env.path("offsite-dir");
    let o = copy(&["--to", dir.to_str().unwrap(), "--object-lock", "7d"]);
    assert_fails(&o, 2, "is not an S3 bucket: Object Lock needs one");
    assert!(!dir.exists(), "the directory was created");
    let o = copy(&[
        "--to",
        "offsite",
        "--object-lock",
        "7d",
        "--object-lock-mode",
        "forever",
    ]);
    assert_fails(&o, 2, "neither \"compliance\" nor \"governance\"");

    std::fs::write(
        env.path("drctl.toml"),
        format!("{remote}object_lock = \"0s\"\n"),
    )
    .unwrap();
    let o = copy(&["--to", "offsite"]);
    assert_fails(&o, 2, "drctl.toml:7:");
    assert!(
        text(&o.stderr).contains("must be longer than 0s"),
        "{}",
        text(&o.stderr)
    );
}
