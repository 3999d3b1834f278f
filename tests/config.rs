//! Stack configuration: the shipped files parse, and `drctl config check` reports errors
//! with file, line and column.

mod common;

use common::{assert_fails, assert_ok, text, Env, Kind};

fn run_with_config(dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
        .env("DRCTL_CONFIG", dir.join("drctl.toml"))
        .args(["config", "check"])
        .output()
        .unwrap()
}

#[test]
fn every_shipped_stack_file_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules");
    let stacks = drctl::config::load_stacks(&dir).unwrap();
    let names: Vec<&str> = stacks.iter().map(|s| s.name.as_str()).collect();
    // The reference server's own stacks, by its own names.
    for expected in [
        "pro-0kt-stack",
        "seller1-prod",
        "seller1-dev",
        "varbase",
        "commerce",
        "myshop",
        "python",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(files >= 3);
    // Every data directory of the reference server is a source, or a comment says why
    // it is left out.
    let shipped: String = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    for d in [
        "nginx",
        "homarr",
        "authelia",
        "gitea",
        "minio",
        "portainer",
        "pgadmin",
        "mailhog",
        "n8n-utils",
        "jupyter",
        "uptime",
        "restic",
        "seller1-dev",
        "myshop",
        "commerce",
        "varbase",
        "python",
        "seller1-prod",
    ] {
        assert!(
            shipped.contains(&format!("/mnt/data/{d}")),
            "/mnt/data/{d} is not named"
        );
    }
    for c in [
        "pro-0kt-postgres",
        "pro-0kt-mariadb",
        "pro-0kt-redis",
        "pro-0kt-nginx",
    ] {
        assert!(shipped.contains(c), "{c} is not named");
    }
    // Through the binary, with the project directory standing in for /etc/drctl.
    let etc = tempfile::tempdir().unwrap();
    std::fs::write(
        etc.path().join("drctl.toml"),
        "[repository]\nurl = \"file:///srv/backup\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&dir, etc.path().join("schedules")).unwrap();
    let drills_dir = dir.with_file_name("restore-drills");
    let drills = drctl::config::drill::load_drills(&drills_dir, &stacks).unwrap();
    assert!(drills
        .iter()
        .any(|d| d.name == "seller1-prod" && d.checks.len() >= 4));
    std::os::unix::fs::symlink(&drills_dir, etc.path().join("restore-drills")).unwrap();
    let o = run_with_config(etc.path());
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains(&format!("{} stack(s)", stacks.len()))
            && text(&o.stdout).contains(&format!("{} drill(s)", drills.len())),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn config_check_names_file_line_and_column() {
    let etc = tempfile::tempdir().unwrap();
    std::fs::write(etc.path().join("drctl.toml"), "").unwrap();
    std::fs::create_dir(etc.path().join("schedules")).unwrap();
    std::fs::write(
        etc.path().join("schedules/good.toml"),
        "[stack.a]\nschedule = \"0 * * * *\"\n",
    )
    .unwrap();
    std::fs::write(
        etc.path().join("schedules/web.toml"),
        "[stack.web]\nrpo = \"15m\"\n\n[[stack.web.source]]\nname = \"db\"\nkind = \"postgress\"\n",
    )
    .unwrap();
    let o = run_with_config(etc.path());
    assert_fails(&o, 2, "schedules/web.toml:6:8");
    assert!(text(&o.stderr).contains("postgress"), "{}", text(&o.stderr));
    // The same stack in two files.
    std::fs::write(etc.path().join("schedules/web.toml"), "[stack.a]\n").unwrap();
    let o = run_with_config(etc.path());
    assert_fails(&o, 2, "stack a is already defined");
    std::fs::remove_file(etc.path().join("schedules/web.toml")).unwrap();
    assert_ok(&run_with_config(etc.path()));
}

/// A configuration directory (standing in for /etc/drctl) with the given files.
fn etc_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let etc = tempfile::tempdir().unwrap();
    std::fs::create_dir(etc.path().join("schedules")).unwrap();
    std::fs::create_dir(etc.path().join("restore-drills")).unwrap();
    std::fs::write(
        etc.path().join("drctl.toml"),
        "[repository]\nurl = \"file:///srv/backup\"\n",
    )
    .unwrap();
    for (name, body) in files {
        std::fs::write(etc.path().join(name), body).unwrap();
    }
    etc
}

/// `config check` with nothing of the caller's environment (DRCTL_*, the data directory).
fn config_check(etc: &std::path::Path) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_drctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DRCTL_") {
            c.env_remove(k);
        }
    }
    c.env("DRCTL_CONFIG", etc.join("drctl.toml"))
        .env("XDG_DATA_HOME", etc.join("xdg"))
        .args(["config", "check"])
        .output()
        .unwrap()
}

fn assert_no_panic(o: &std::process::Output) {
    let err = text(&o.stderr);
    assert!(
        o.status.code().is_some_and(|c| c != 101) && !err.contains("panicked"),
        "drctl crashed ({:?}): {err}",
        o.status
    );
}

const VOLUME_STACK: &str =
    "[stack.web]\nrpo = \"15m\"\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"/srv/files\"\n";

#[test]
fn out_of_range_durations_and_times_are_errors_not_panics() {
    let env = Env::init(Kind::Local).unwrap();
    let before = env.objects();
    let to = env.path("restored");
    for args in [
        vec![
            "restore",
            "web",
            "--at",
            "99999999999 days ago",
            "--to",
            to.to_str().unwrap(),
        ],
        vec![
            "restore",
            "web",
            "--at",
            "+10000-01-01T00:00",
            "--to",
            to.to_str().unwrap(),
        ],
        vec!["prune", "--grace", "99999999999999h"],
        vec!["prune", "--grace", "99999999999999999999999s"],
        vec!["--now", "99999999999 days ago", "status"],
    ] {
        let o = env.run(&args);
        assert_no_panic(&o);
        assert_fails(&o, 2, "out of range");
    }
    assert!(!to.exists(), "a rejected restore created its target");
    assert_eq!(
        env.objects(),
        before,
        "a rejected command wrote to the repository"
    );

    // The same values in files: rc 2 at the value's place.
    for (body, place) in [
        ("[stack.web]\nrpo = \"99999999999999h\"\n", "s.toml:2:7"),
        ("[stack.web]\nrto = \"9223372036854775807s\"\n", "s.toml:2:7"),
        ("[stack.web.keep]\nlast = 1\nwithin = \"99999999999 days\"\n", "s.toml:3:10"),
        (
            "[stack.web]\n[[stack.web.hook]]\nwhen = \"pre\"\ncommand = \"true\"\ntimeout = \"2562047788015216w\"\n",
            "s.toml:5:11",
        ),
        ("[stack.web.notify]\ntimeout = \"99999999999999999999h\"\n", "s.toml:2:11"),
    ] {
        let etc = etc_with(&[("schedules/s.toml", body.as_bytes())]);
        let o = config_check(etc.path());
        assert_no_panic(&o);
        assert_fails(&o, 2, &format!("schedules/{place}: duration"));
        assert!(text(&o.stderr).contains("out of range"), "{}", text(&o.stderr));
    }
    let etc = etc_with(&[
        ("schedules/s.toml", VOLUME_STACK.as_bytes()),
        (
            "restore-drills/d.toml",
            b"[drill.web]\nstack = \"web\"\nrpo = \"99999999999999h\"\n",
        ),
    ]);
    let o = config_check(etc.path());
    assert_no_panic(&o);
    assert_fails(&o, 2, "restore-drills/d.toml:3:7: duration");
}

#[test]
fn config_check_rejects_what_cannot_work_at_its_place() {
    let drill = |check: &str| {
        format!("[drill.web]\nstack = \"web\"\n[[drill.web.check]]\nsource = \"files\"\n{check}")
    };
    let source = |extra: &str| {
        format!("[stack.web]\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"/srv\"\n{extra}")
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        // A misspelt table must not fall back to defaults.
        ("drctl.toml", "[repositry]\nurl = \"file:///x\"\n".into(), "drctl.toml:1:2", "unknown field `repositry`"),
        ("drctl.toml", "[repository]\nurl = \"file:///x\"\nendpont = \"http://h\"\n".into(), "drctl.toml:3:1", "unknown field `endpont`"),
        ("drctl.toml", "[repository]\nendpoint = \"not a url\"\n".into(), "drctl.toml:2:12", "not a URL"),
        ("schedules/s.toml", "[stacks.web]\n".into(), "s.toml:1:2", "unknown field `stacks`"),
        ("schedules/s.toml", format!("{VOLUME_STACK}[stack.web.kep]\nlast = 1\n"), "s.toml:7:12", "unknown field `kep`"),
        ("schedules/s.toml", source("colour = \"red\"\n"), "s.toml:6:1", "unknown field `colour`"),
        ("schedules/s.toml", source("exclude = [\"ok/**\", \"[z-a]\"]\n"), "s.toml:6:21", "exclude pattern \"[z-a]\""),
        ("schedules/s.toml", source("exclude = [\"a/{b\"]\n"), "s.toml:6:12", "exclude pattern"),
        ("schedules/s.toml", source("pitr = true\n"), "s.toml:6:8", "pitr is for postgres and mysql sources"),
        ("schedules/s.toml", source("stop_grace = \"10s\"\n"), "s.toml:6:14", "stop_grace without stop"),
        ("schedules/s.toml", source("stop = [\"web\"]\nstop_grace = \"0s\"\n"), "s.toml:7:14", "longer than 0s"),
        ("schedules/s.toml", source("stop = [\"web\"]\nstop_grace = \"soon\"\n"), "s.toml:7:14", "cannot read duration"),
        ("schedules/s.toml", source("wal_keep_limit = \"1GiB\"\n"), "s.toml:6:18", "wal_keep_limit needs pitr = true"),
        ("schedules/s.toml", "[stack.web]\n[[stack.web.source]]\nname = \"db\"\nkind = \"postgres\"\ncontainer = \"c\"\npitr = true\nwal_keep_limit = \"lots\"\n".into(), "s.toml:7:18", "cannot read size"),
        ("schedules/s.toml", "[stack.web]\n[[stack.web.source]]\nname = \"db\"\nkind = \"postgres\"\ncontainer = \"c\"\npitr = true\nwal_keep_limit = \"1MiB\"\n".into(), "s.toml:7:18", "at least 64MiB"),
        ("schedules/s.toml", "[stack.web]\nschedule = \"0 0 30 2 *\"\n".into(), "s.toml:2:12", "never fires"),
        ("schedules/s.toml", "[stack.web]\nschedule = \"0 0 0 1 1 * 2020\"\n".into(), "s.toml:2:12", "never fires"),
        ("schedules/s.toml", "[stack.web]\nrpo = \"0s\"\n".into(), "s.toml:2:7", "longer than 0s"),
        ("schedules/s.toml", "[stack.web]\nrto = \"0m\"\n".into(), "s.toml:2:7", "longer than 0s"),
        ("schedules/s.toml", "[stack.web]\n[[stack.web.source]]\nname = \"../../etc\"\nkind = \"volume\"\npath = \"/srv\"\n".into(), "s.toml:3:8", "invalid source name"),
        ("schedules/s.toml", "[stack.\"my web\"]\n".into(), "s.toml:1:8", "invalid stack name"),
        ("schedules/s.toml", "[stack.web.notify]\nwebhook = \"ftp://h/x\"\n".into(), "s.toml:2:11", "notify URL"),
        ("schedules/s.toml", "[stack.web]\n[stack.web.keep]\n".into(), "s.toml:2:1", "keep has no rule"),
        ("restore-drills/d.toml", drill("path = \"/etc/shadow\"\n"), "d.toml:5:8", "absolute"),
        ("restore-drills/d.toml", drill("path = \"../../etc/shadow\"\n"), "d.toml:5:8", "climbs out"),
        ("restore-drills/d.toml", drill("path = \"x\"\nmin_file = 3\n"), "d.toml:6:1", "unknown field `min_file`"),
        ("restore-drills/d.toml", "[drill.web]\nstack = \"web\"\nschedule = \"0 0 31 4 *\"\n".into(), "d.toml:3:12", "never fires"),
        ("restore-drills/d.toml", "[drills.web]\nstack = \"web\"\n".into(), "d.toml:1:2", "unknown field `drills`"),
        ("restore-drills/d.toml", "[drill.web]\nstack = \"web\"\nat = \"2026-11-20 03:00\"\n".into(), "d.toml:3:6", "\"newest\" point or a \"random\" time"),
    ];
    for (file, body, place, what) in &cases {
        let mut files: Vec<(&str, &[u8])> = vec![];
        if !file.starts_with("schedules/") {
            files.push(("schedules/s.toml", VOLUME_STACK.as_bytes()));
        }
        files.push((file, body.as_bytes()));
        let etc = etc_with(&files);
        let o = config_check(etc.path());
        assert_no_panic(&o);
        assert_fails(&o, 2, &format!("{place}: "));
        assert!(
            text(&o.stderr).contains(what),
            "{file} {body:?}: wanted {what:?}, got {}",
            text(&o.stderr)
        );
    }
    // What these cases start from is valid.
    let etc = etc_with(&[
        (
            "schedules/s.toml",
            source("exclude = [\"ok/**\", \"*.tmp\"]\n").as_bytes(),
        ),
        (
            "restore-drills/d.toml",
            drill("path = \"styles/\"\nmin_files = 3\n").as_bytes(),
        ),
    ]);
    assert_ok(&config_check(etc.path()));
}

#[test]
fn invalid_utf8_is_an_error_at_its_line_and_column() {
    for (file, body, place) in [
        (
            "schedules/s.toml",
            &b"[stack.web]\nrpo = \"15m\"\n# caf\xe9 au lait\n"[..],
            "schedules/s.toml:3:6",
        ),
        (
            "schedules/s.toml",
            &b"[stack.web]\nrpo = \"\xc3\xa9\xff\"\n"[..],
            "schedules/s.toml:2:9",
        ),
        ("drctl.toml", &b"\xfe[repository]\n"[..], "drctl.toml:1:1"),
        (
            "restore-drills/d.toml",
            &b"[drill.web]\nstack = \"web\" # \x80\n"[..],
            "restore-drills/d.toml:2:17",
        ),
    ] {
        let mut files: Vec<(&str, &[u8])> = vec![];
        if !file.starts_with("schedules/") {
            files.push(("schedules/s.toml", VOLUME_STACK.as_bytes()));
        }
        files.push((file, body));
        let etc = etc_with(&files);
        let o = config_check(etc.path());
        assert_no_panic(&o);
        assert_fails(&o, 2, &format!("{place}: invalid UTF-8"));
    }
}

#[test]
fn a_name_defined_twice_names_both_places() {
    let etc = etc_with(&[
        ("schedules/a.toml", VOLUME_STACK.as_bytes()),
        (
            "schedules/b.toml",
            b"# the same stack again\n\n[stack.web]\nrpo = \"1h\"\n",
        ),
    ]);
    let o = config_check(etc.path());
    assert_fails(
        &o,
        2,
        "schedules/b.toml:3:8: stack web is already defined at ",
    );
    assert!(
        text(&o.stderr).contains("schedules/a.toml:1:8"),
        "{}",
        text(&o.stderr)
    );
    std::fs::remove_file(etc.path().join("schedules/b.toml")).unwrap();
    let drill = b"[drill.weekly]\nstack = \"web\"\n";
    std::fs::write(etc.path().join("restore-drills/a.toml"), drill).unwrap();
    std::fs::write(
        etc.path().join("restore-drills/b.toml"),
        b"[drill.nightly]\nstack = \"web\"\n\n  [drill.weekly]\nstack = \"web\"\n",
    )
    .unwrap();
    let o = config_check(etc.path());
    assert_fails(
        &o,
        2,
        "restore-drills/b.toml:4:10: drill weekly is already defined at ",
    );
    assert!(
        text(&o.stderr).contains("restore-drills/a.toml:1:8"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_bad_endpoint_is_rc_2_before_anything_is_touched() {
    let env = Env::new(Kind::Local).unwrap();
    for (endpoint, args) in [
        ("not a url", vec!["--repo", "s3://bucket/p", "init"]),
        ("127.0.0.1:3900", vec!["--repo", "s3://bucket/p", "init"]),
        ("ftp://127.0.0.1", vec!["init"]),
        ("http://", vec!["snapshots"]),
    ] {
        let mut c = env.cmd();
        c.args(["--endpoint", endpoint]).args(&args);
        let o = c.output().unwrap();
        assert_no_panic(&o);
        assert_fails(&o, 2, "endpoint");
        assert!(text(&o.stderr).contains(endpoint), "{}", text(&o.stderr));
        // The environment variable is checked the same way.
        let o = env
            .cmd()
            .env("DRCTL_ENDPOINT", endpoint)
            .args(&args)
            .output()
            .unwrap();
        assert_fails(&o, 2, "DRCTL_ENDPOINT");
    }
    assert!(!env.key_file.exists(), "a rejected init wrote a key file");
    assert!(
        !env.path("repo").exists(),
        "a rejected init created the repository"
    );
    assert!(
        !env.path("xdg").exists(),
        "a rejected command created the data directory"
    );
}

#[test]
fn path_style_does_not_swallow_the_command() {
    let env = Env::new(Kind::Local).unwrap();
    // The flag takes no separate value: `init` is the command.
    assert_ok(&env.run(&["--path-style", "init"]));
    assert!(env.key_file.exists() && env.path("repo/config").exists());
    assert_ok(&env.run(&["--path-style=false", "snapshots"]));
    assert_ok(&env.run(&["snapshots", "--path-style"]));
    assert_ok(
        &env.cmd()
            .env("DRCTL_PATH_STYLE", "false")
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    // An exported but empty endpoint is no endpoint.
    assert_ok(
        &env.cmd()
            .env("DRCTL_ENDPOINT", "")
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    let o = env.run(&["--path-style=maybe", "snapshots"]);
    assert_fails(&o, 2, "maybe");
}

/// A read-only bind mount of `dir` over itself, undone on drop; `None` where this
/// process may not mount (the test then says so and checks nothing).
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn mount(dir: &std::path::Path) -> Option<ReadOnly> {
        let ok = std::process::Command::new("mount")
            .args(["--bind", "-o", "ro"])
            .arg(dir)
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let m = ReadOnly(dir.to_path_buf());
        if std::fs::write(dir.join(".probe"), b"x").is_ok() {
            let _ = std::fs::remove_file(dir.join(".probe"));
            return None;
        }
        Some(m)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_repository_is_rc_2_before_anything_is_held() {
    let env = Env::init(Kind::Local).unwrap();
    std::fs::create_dir(env.path("data")).unwrap();
    std::fs::write(env.path("data/a.txt"), b"a").unwrap();
    assert_ok(&env.run(&[
        "backup",
        "--stack",
        "web",
        env.path("data").to_str().unwrap(),
    ]));
    let before = env.objects();
    let Some(_ro) = ReadOnly::mount(&env.path("repo")) else {
        eprintln!("note: cannot mount read-only here; nothing checked");
        return;
    };
    std::fs::write(env.path("data/b.txt"), b"b").unwrap();
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/s.toml"),
        format!(
            "[stack.files]\nschedule = \"* * * * *\"\n[[stack.files.source]]\nname = \"data\"\nkind = \"volume\"\npath = \"{}\"\n",
            env.path("data").display()
        ),
    )
    .unwrap();
    for args in [
        vec!["backup", "files"],
        vec!["run", "--due"],
        vec![
            "backup",
            "--stack",
            "web",
            env.path("data").to_str().unwrap(),
        ],
        vec!["prune"],
    ] {
        assert_fails(&env.run(&args), 2, "read-only");
    }
    // Reading still works.
    assert_ok(&env.run(&["snapshots"]));
    assert_ok(&env.run(&["ls", "latest"]));
    assert_eq!(env.objects(), before);
    // A write that gets past the start (the mount turned read-only mid-run) is the same
    // environment error, not a failed run.
    let store = drctl::store::file::FileStore::new(env.path("repo"));
    let e = common::rt()
        .block_on(drctl::store::Store::put(
            &store,
            "data/zz/x",
            bytes::Bytes::from_static(b"x"),
        ))
        .unwrap_err();
    assert!(
        matches!(e, drctl::store::StoreError::ReadOnly { .. }),
        "{e:?}"
    );
}

#[test]
fn a_catalog_path_that_cannot_be_opened_is_rc_2() {
    let env = Env::init(Kind::Local).unwrap();
    std::fs::write(env.path("plain-file"), b"x").unwrap();
    std::fs::create_dir(env.path("a-directory")).unwrap();
    for catalog in [env.path("plain-file/catalog.db"), env.path("a-directory")] {
        let o = env
            .cmd()
            .env("DRCTL_CATALOG", &catalog)
            .arg("snapshots")
            .output()
            .unwrap();
        assert_fails(&o, 2, "cannot be opened");
        assert!(text(&o.stderr).contains("hint: the catalog is a cache"));
    }
    assert_eq!(std::fs::read(env.path("plain-file")).unwrap(), b"x");
}

/// The catalog names every file backed up: it and the directories drctl makes for it are
/// the owner's alone, an older catalog left readable is tightened, and a key file that
/// others can read is named in a warning.
#[test]
fn the_catalog_is_private_and_an_exposed_key_file_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::init(Kind::Local).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let chmod = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let catalog = env.path("cache-home/drctl/catalog.db");
    let snapshots = || {
        let o = env
            .cmd()
            .env("DRCTL_CATALOG", &catalog)
            .arg("snapshots")
            .output()
            .unwrap();
        assert_ok(&o);
        text(&o.stderr)
    };
    chmod(&env.key_file, 0o600);
    assert!(!snapshots().contains("readable by others"));
    assert_eq!(mode(&catalog), 0o600);
    assert_eq!(mode(catalog.parent().unwrap()), 0o700);
    assert_eq!(mode(&env.path("cache-home")), 0o700);
    chmod(&catalog, 0o644);
    snapshots();
    assert_eq!(mode(&catalog), 0o600, "an exposed catalog is tightened");

    chmod(&env.key_file, 0o640);
    let stderr = snapshots();
    assert!(
        stderr.contains(&format!(
            "key file {} is readable by others (mode 640)",
            env.key_file.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        mode(&env.key_file),
        0o640,
        "the key file is the operator's to change"
    );
}

#[test]
fn drill_check_paths_stay_inside_the_restored_volume() {
    let env = Env::init(Kind::Local).unwrap();
    // What a container could plant in its own volume: links to the host's files.
    let host = env.path("host-secrets");
    std::fs::create_dir(&host).unwrap();
    for f in ["shadow", "passwd", "group"] {
        std::fs::write(host.join(f), f).unwrap();
    }
    let data = env.path("data");
    std::fs::create_dir_all(data.join("releases/v2")).unwrap();
    std::fs::write(data.join("releases/v2/a"), "a").unwrap();
    std::fs::write(data.join("releases/v2/b"), "b").unwrap();
    let link =
        |target: &str, name: &str| std::os::unix::fs::symlink(target, data.join(name)).unwrap();
    link("releases/v2", "current");
    link(host.to_str().unwrap(), "abs");
    let climb = format!(
        "{}{}",
        "../".repeat(40),
        host.to_str().unwrap().trim_start_matches('/')
    );
    link(&climb, "up");
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/s.toml"),
        format!(
            "[stack.web]\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    let mut drills = String::new();
    for (name, path, min) in [("inside", "current", 2), ("abs", "abs", 3), ("up", "up", 3)] {
        drills.push_str(&format!(
            "[drill.{name}]\nstack = \"web\"\n[[drill.{name}.check]]\nsource = \"files\"\npath = \"{path}\"\nmin_files = {min}\n"
        ));
    }
    std::fs::write(env.path("restore-drills/d.toml"), drills).unwrap();
    assert_ok(&env.run(&["backup", "web"]));
    // A link that stays inside the tree is followed.
    assert_ok(&env.run(&["drill", "inside"]));
    for (name, why) in [
        ("abs", "outside the restored volume"),
        ("up", "leads out of the restored volume"),
    ] {
        let o = env.run(&["--json", "drill", name]);
        assert_fails(&o, 1, &format!("drill FAIL: {name}"));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let check = &v[0]["checks"][0];
        assert_eq!(check["passed"], false, "{v:#}");
        assert!(
            check["error"].as_str().is_some_and(|e| e.contains(why)),
            "{name}: {check:#}"
        );
    }
}

/// A host given only the write-only key backs its stacks up (snapshots, points) and is
/// refused, before anything is touched, by every command that reads data: restore,
/// check, prune, a drill; a due drill under `run --due` fails alone, the due backup runs.
#[test]
fn a_write_only_key_backs_up_stacks_and_reads_nothing() {
    let env = Env::init(Kind::Local).unwrap();
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a"), "a").unwrap();
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/s.toml"),
        format!(
            "[stack.web]\nschedule = \"* * * * *\"\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    std::fs::write(
        env.path("restore-drills/d.toml"),
        "[drill.d]\nstack = \"web\"\nschedule = \"* * * * *\"\n[[drill.d.check]]\nsource = \"files\"\npath = \"a\"\n",
    )
    .unwrap();
    let wo = env.path("write-only.key");
    assert_ok(&env.run(&["key", "export", "--write-only", wo.to_str().unwrap()]));
    let with_wo = |args: &[&str]| {
        env.cmd()
            .env("DRCTL_KEY_FILE", &wo)
            .args(args)
            .output()
            .unwrap()
    };
    assert_ok(&with_wo(&["backup", "web"]));
    let out = env.path("out");
    for args in [
        vec!["restore", "web", "--to", out.to_str().unwrap()],
        vec!["check"],
        vec!["prune"],
        vec!["drill", "d"],
    ] {
        assert_fails(&with_wo(&args), 2, "write-only");
    }
    assert!(!out.exists(), "a refused restore created its target");
    // Nothing was stored by the refused drill; the full key sees the point and can read.
    let history = env.run(&["--json", "drill", "history"]);
    assert_ok(&history);
    assert_eq!(text(&history.stdout).trim(), "[]");

    // Both jobs are due: the backup commits a second point, the drill fails on its own.
    std::fs::write(data.join("b"), "b").unwrap();
    let o = with_wo(&["run", "--due", "--now", "2099-01-01 00:00:30"]);
    assert_fails(&o, 1, "one or more due jobs failed");
    assert!(
        text(&o.stderr).contains("write-only"),
        "{}",
        text(&o.stderr)
    );
    // The one volume of the stack is restored into --to itself.
    assert_ok(&env.run(&["restore", "web", "--to", out.to_str().unwrap()]));
    assert_eq!(std::fs::read(out.join("b")).unwrap(), b"b");
}

#[test]
fn compose_tables_and_dependencies_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drctl.toml"), "").unwrap();
    let schedules = dir.path().join("schedules");
    std::fs::create_dir_all(&schedules).unwrap();
    let check = |text: &str| {
        std::fs::write(schedules.join("s.toml"), text).unwrap();
        run_with_config(dir.path())
    };
    let good = "[stack.shared]\n[stack.shop]\ndepends_on = [\"shared\"]\n\
                [stack.shop.compose]\nproject = \"shop\"\ndir = \"/srv/shop\"\nfiles = [\"docker-compose.yml\"]\n";
    assert_ok(&check(good));
    for (text, needle) in [
        (
            "[stack.shop.compose]\nproject = \"Shop!\"\ndir = \"/srv/shop\"\n",
            "s.toml:2:11: compose project \"Shop!\"",
        ),
        (
            "[stack.shop.compose]\nproject = \"shop\"\ndir = \"srv/shop\"\n",
            "s.toml:3:7: compose dir \"srv/shop\" must be absolute",
        ),
        (
            "[stack.shop.compose]\nproject = \"shop\"\n",
            "missing field `dir`",
        ),
        (
            "[stack.shop]\ndepends_on = [\"nosuch\"]\n",
            "stack shop depends on \"nosuch\", which no stack file defines",
        ),
        (
            "[stack.shop]\ndepends_on = [\"shop\"]\n",
            "stack shop depends on \"shop\", itself",
        ),
        (
            "[stack.a]\ndepends_on = [\"b\"]\n[stack.b]\ndepends_on = [\"a\"]\n[stack.c]\n",
            "the stacks a, b depend on each other",
        ),
    ] {
        assert_fails(&check(text), 2, needle);
    }
}
