//! Credentials on containers' command lines: found where drctl needs them, recorded
//! nowhere, and replaced by throwaway ones in drill scratch servers.

mod common;

use common::docker::{self, skip};
use common::{assert_ok, text, unique, Env, Kind};

/// A local repository with a stack `name` of one source and a drill of one check, both
/// given as the TOML lines of their tables.
fn one_source_stack(name: &str, source: &str, check: &str) -> Env {
    let env = Env::init(Kind::Local).unwrap();
    for (dir, text) in [
        (
            "schedules",
            format!(
                "[stack.{name}]\nrpo = \"1h\"\nrto = \"30m\"\n[[stack.{name}.source]]\n{source}\n"
            ),
        ),
        (
            "restore-drills",
            format!("[drill.{name}]\nstack = \"{name}\"\n[[drill.{name}.check]]\n{check}\n"),
        ),
    ] {
        std::fs::create_dir_all(env.path(dir)).unwrap();
        std::fs::write(env.path(&format!("{dir}/{name}.toml")), text).unwrap();
    }
    env
}

/// A Redis container started with `--requirepass` on its command line backs up, drills
/// PASS, and its password appears in no output, no catalog and no manifest.
#[test]
fn a_redis_password_on_the_command_line_is_used_and_never_recorded() {
    if skip() {
        return;
    }
    let pw = format!("cmdline-{}", unique("pw"));
    let c = docker::redis_requirepass(&unique("drctl-t-rpass"), &pw);
    c.redis_cli(&pw, &["SET", "session:1", "alive"]);
    let env = one_source_stack(
        "cache",
        &format!(
            "name = \"cache\"\nkind = \"redis\"\ncontainer = \"{}\"",
            c.name
        ),
        "source = \"cache\"\nredis_keys = \">= 1\"",
    );
    let mut outputs = String::new();
    let o = env.run(&["--json", "backup", "cache"]);
    assert_ok(&o);
    outputs += &text(&o.stdout);
    outputs += &text(&o.stderr);
    let o = env.run(&["--json", "drill", "cache"]);
    assert_ok(&o);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r[0]["verdict"], "PASS", "{r:#}");
    outputs += &text(&o.stdout);
    outputs += &text(&o.stderr);
    for args in [
        &["--json", "snapshots", "cache"][..],
        &["--json", "snapshots"][..],
        &["status"][..],
    ] {
        let o = env.run(args);
        assert_ok(&o);
        outputs += &text(&o.stdout);
        outputs += &text(&o.stderr);
    }
    assert!(
        !outputs.contains(&pw),
        "the password was printed: {outputs}"
    );
    assert!(
        outputs.contains("<redacted>"),
        "the command is recorded, redacted"
    );
    let catalog = std::fs::read(&env.catalog).unwrap();
    assert!(
        !catalog.windows(pw.len()).any(|w| w == pw.as_bytes()),
        "the password is in the catalog"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&env.catalog)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "catalog mode {mode:o}");
    for (k, _) in env.objects() {
        let body = env.get(&k);
        assert!(
            !body.windows(pw.len()).any(|w| w == pw.as_bytes()),
            "the password is in {k}"
        );
    }
    // The production server was never touched, and still needs its password.
    assert_eq!(c.redis_cli(&pw, &["GET", "session:1"]), "alive");
}

/// A PostgreSQL server configured by its environment (its own superuser, database and
/// data directory, as compose files do it) backs up and drills PASS: the scratch server
/// starts with the same non-secret environment and drctl's throwaway password, and the
/// production password is recorded nowhere.
#[test]
fn a_server_configured_by_its_environment_drills_pass() {
    if skip() {
        return;
    }
    let pw = format!("envpw-{}", unique("pw"));
    let c = docker::postgres_as(
        &unique("drctl-t-envpg"),
        "shop",
        &pw,
        &[
            "-e",
            "POSTGRES_DB=shopdb",
            "-e",
            "PGDATA=/var/lib/postgresql/pgdata",
        ],
    );
    c.psql_as(
        "shop",
        &pw,
        "shopdb",
        "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 42)",
    );
    let env = one_source_stack(
        "shop",
        &format!(
            "name = \"db\"\nkind = \"postgres\"\ncontainer = \"{}\"",
            c.name
        ),
        "source = \"db\"\ndatabase = \"shopdb\"\nsql = \"SELECT count(*) FROM orders\"\n\
         expect = \"= 42\"",
    );
    let o = env.run(&["--json", "backup", "shop"]);
    assert_ok(&o);
    let mut outputs = text(&o.stdout) + &text(&o.stderr);
    let o = env.run(&["--json", "drill", "shop"]);
    outputs += &text(&o.stdout);
    outputs += &text(&o.stderr);
    assert_ok(&o);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r[0]["verdict"], "PASS", "{r:#}");
    let o = env.run(&["--json", "snapshots", "shop"]);
    assert_ok(&o);
    outputs += &text(&o.stdout);
    assert!(
        outputs.contains("PGDATA") && outputs.contains("/var/lib/postgresql/pgdata"),
        "the non-secret environment is recorded: {outputs}"
    );
    assert!(
        !outputs.contains(&pw),
        "the password was printed: {outputs}"
    );
    for (k, _) in env.objects() {
        let body = env.get(&k);
        assert!(
            !body.windows(pw.len()).any(|w| w == pw.as_bytes()),
            "the password is in {k}"
        );
    }
    assert_eq!(
        c.psql_as("shop", &pw, "shopdb", "SELECT count(*) FROM orders"),
        "42"
    );
}

/// A scratch server that does not start fails the drill, and the message carries the
/// container's own last log lines, not only "it is exited".
#[test]
fn a_scratch_server_that_does_not_start_is_explained_by_its_own_log() {
    if skip() {
        return;
    }
    // Production starts because of a mount that a scratch container does not get.
    let host = tempfile::tempdir().unwrap();
    let mount = format!("{}:/var/tmp/production:ro", host.path().display());
    let c = docker::postgres_cmd(
        &unique("drctl-t-nostart"),
        "postgres",
        &format!("pw-{}", unique("pw")),
        &["-v", &mount],
        &[
            "bash",
            "-c",
            "[ -d /var/tmp/production ] || { echo 'scratch-failure: no /var/tmp/production here' >&2; exit 3; }; exec drctl-postgres",
        ],
    );
    let env = one_source_stack(
        "nostart",
        &format!(
            "name = \"db\"\nkind = \"postgres\"\ncontainer = \"{}\"",
            c.name
        ),
        "source = \"db\"\ndatabase = \"postgres\"\nsql = \"SELECT 1\"\nexpect = \"= 1\"",
    );
    assert_ok(&env.run(&["backup", "nostart"]));
    let o = env.run(&["--json", "drill", "nostart"]);
    let all = text(&o.stdout) + &text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{all}");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_ne!(r[0]["verdict"], "PASS", "{r:#}");
    assert!(
        all.contains("did not start: it is exited")
            && all.contains("its last log lines")
            && all.contains("scratch-failure: no /var/tmp/production here"),
        "{all}"
    );
}
