//! Docker stacks end to end, with the real binary and real containers: databases dumped
//! through `docker exec` and restored into recreated containers, volumes with held
//! containers, point-in-time choice, and every failure path of a source.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::docker::{self, skip, Container};
use common::{assert_fails, assert_ok, text, unique, Env, Kind};

/// A local repository with a stack file; the store is not what these tests are about
/// (the S3 path is covered by the repository tests).
fn env_with(stack_toml: &str) -> Env {
    let env = Env::init(Kind::Local).unwrap();
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(env.path("schedules/stack.toml"), stack_toml).unwrap();
    env
}

fn points(env: &Env, stack: &str) -> Vec<serde_json::Value> {
    env.json(&["snapshots", stack])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Whether no recovery point of the stack is complete (every listed point has a failed source).
fn no_complete_point(env: &Env, stack: &str) -> bool {
    points(env, stack).iter().all(|p| {
        p["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["status"] != "ok")
    })
}

#[test]
fn postgres_round_trip_with_a_million_rows_and_a_role() {
    if skip() {
        return;
    }
    let pw = "pg-secret-1";
    let name = unique("drctl-t-pg");
    let c = docker::postgres(&name, pw);
    c.psql(pw, "postgres", "CREATE DATABASE shop");
    c.exec_ok(
        &[("PGPASSWORD", pw)],
        &[
            "/usr/lib/postgresql/15/bin/pgbench",
            "-q",
            "-i",
            "-s",
            "10",
            "-U",
            "postgres",
            "-h",
            "/var/run/postgresql",
            "shop",
        ],
    );
    c.psql(
        pw,
        "postgres",
        "CREATE ROLE shop_app LOGIN PASSWORD 'app-pw'",
    );
    c.psql(pw, "shop", "GRANT SELECT ON pgbench_accounts TO shop_app");
    let before = c.pg_table_sums(pw, "shop");
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("pgbench_accounts 1000000 ")),
        "{before:?}"
    );

    let env = env_with(&format!(
        "[stack.shop]\nrpo = \"15m\"\n[[stack.shop.source]]\nname = \"db\"\nkind = \"postgres\"\ncontainer = \"{name}\"\n"
    ));
    let o = env.run(&["backup", "shop"]);
    assert_ok(&o);
    assert!(!text(&o.stderr).contains(pw), "password in output");
    let p = &points(&env, "shop")[0];
    let db = &p["sources"][0];
    assert_eq!(db["status"], "ok");
    assert!(db["server_version"].as_str().unwrap().starts_with("15."));
    assert!(db["tool_versions"]["pg_dump"]
        .as_str()
        .unwrap()
        .contains("pg_dump"));
    assert!(db["image_digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(db["databases"].as_array().unwrap().contains(&"shop".into()));

    // The container is gone and a new, empty one takes its name.
    c.remove();
    let c = docker::postgres(&name, pw);
    assert_eq!(
        c.psql(
            pw,
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname='shop'"
        ),
        "0"
    );
    let o = env.run(&["restore", "shop"]);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("restored db from"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(c.pg_table_sums(pw, "shop"), before);
    assert_eq!(
        c.psql(
            pw,
            "postgres",
            "SELECT rolname FROM pg_roles WHERE rolname='shop_app'"
        ),
        "shop_app"
    );
    assert_eq!(
        c.psql(
            pw,
            "shop",
            "SELECT has_table_privilege('shop_app', 'pgbench_accounts', 'SELECT')"
        ),
        "t"
    );
    // A second restore finds the data and refuses without --force; with it, replaces.
    assert_fails(&env.run(&["restore", "shop"]), 2, "holds data");
    c.psql(pw, "shop", "DELETE FROM pgbench_branches");
    assert_ok(&env.run(&["restore", "shop", "--force"]));
    assert_eq!(c.pg_table_sums(pw, "shop"), before);
}

#[test]
fn mariadb_round_trip_with_routine_trigger_and_user() {
    if skip() {
        return;
    }
    let pw = "maria-root-pw";
    let name = unique("drctl-t-maria");
    let c = docker::mariadb(&name, pw);
    c.mariadb_sql(
        pw,
        "CREATE DATABASE crm; USE crm;
         CREATE TABLE customers(id INT PRIMARY KEY, name VARCHAR(50), orders INT DEFAULT 0);
         CREATE TABLE audit(id INT AUTO_INCREMENT PRIMARY KEY, customer INT);
         CREATE TRIGGER customers_audit AFTER INSERT ON customers FOR EACH ROW INSERT INTO audit(customer) VALUES (NEW.id);
         CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
         INSERT INTO customers(id, name) SELECT seq, CONCAT('c', seq) FROM seq_1_to_20000;
         CREATE USER 'crm_app'@'%' IDENTIFIED BY 'app-pw'; GRANT SELECT ON crm.* TO 'crm_app'@'%';",
    );
    let checksum = |c: &Container| c.mariadb_sql(pw, "CHECKSUM TABLE crm.customers, crm.audit");
    let before = checksum(&c);
    let env = env_with(&format!(
        "[stack.crm]\n[[stack.crm.source]]\nname = \"db\"\nkind = \"mysql\"\ncontainer = \"{name}\"\n"
    ));
    assert_ok(&env.run(&["backup", "crm"]));
    c.remove();
    let c = docker::mariadb(&name, pw);
    let o = env.run(&["restore", "crm"]);
    assert_ok(&o);
    assert_eq!(checksum(&c), before);
    assert_eq!(c.mariadb_sql(pw, "SELECT crm.double_it(21)"), "42");
    // The trigger survived: a new customer is audited.
    c.mariadb_sql(
        pw,
        "INSERT INTO crm.customers(id, name) VALUES (99999, 'new')",
    );
    assert_eq!(
        c.mariadb_sql(pw, "SELECT count(*) FROM crm.audit WHERE customer = 99999"),
        "1"
    );
    assert_eq!(
        c.mariadb_sql(pw, "SELECT count(*) FROM mysql.user WHERE user = 'crm_app'"),
        "1"
    );
}

#[test]
fn redis_round_trip() {
    if skip() {
        return;
    }
    let pw = "redis-pw";
    let name = unique("drctl-t-redis");
    let c = docker::redis(&name, pw);
    let auth = [("REDISCLI_AUTH", pw)];
    c.exec_ok(
        &auth,
        &[
            "sh",
            "-c",
            "for i in $(seq 0 499); do echo \"SET key:$i 'value $i'\"; done | redis-cli >/dev/null",
        ],
    );
    c.redis_cli(pw, &["HSET", "cart:1", "sku", "A-1", "qty", "3"]);
    // Every key with a digest of its serialized value, in one exec.
    let dump = |c: &Container| {
        c.exec_ok(
            &auth,
            &["sh", "-c", "redis-cli --raw KEYS '*' | sort | while read -r k; do echo \"$k $(redis-cli --raw DUMP \"$k\" | md5sum)\"; done"],
        )
    };
    let before = dump(&c);
    let env = env_with(&format!(
        "[stack.cache]\n[[stack.cache.source]]\nname = \"cache\"\nkind = \"redis\"\ncontainer = \"{name}\"\n"
    ));
    assert_ok(&env.run(&["backup", "cache"]));
    c.remove();
    let c = docker::redis(&name, pw);
    assert_eq!(c.redis_cli(pw, &["DBSIZE"]), "0");
    assert_ok(&env.run(&["restore", "cache"]));
    let after = dump(&c);
    assert_eq!(after.lines().count(), 501);
    assert_eq!(after, before);
    assert_eq!(c.redis_cli(pw, &["HGET", "cart:1", "qty"]), "3");
}

/// Waits (at most 30 s) until a held container is seen stopped.
fn wait_stopped(c: &Container) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while c.status() != "exited" {
        assert!(Instant::now() < deadline, "the container was never stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn volume_with_stop_is_held_only_while_read_and_released_after_a_kill() {
    if skip() {
        return;
    }
    let web = docker::sleeper(&unique("drctl-t-web"));
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("files/cache")).unwrap();
    std::fs::write(
        data.path().join("files/big.bin"),
        common::random_bytes(96 << 20, 1),
    )
    .unwrap();
    std::fs::write(data.path().join("files/cache/x"), b"cached").unwrap();
    std::fs::write(data.path().join("files/note.tmp"), b"tmp").unwrap();
    let env = env_with(&format!(
        "[stack.web]\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\nstop = [\"{}\"]\nstop_grace = \"3s\"\nexclude = [\"cache/**\", \"*.tmp\"]\n",
        data.path().join("files").display(),
        web.name
    ));
    // Watch the container while the backup runs: stopped during it, running after.
    let mut child = env
        .cmd()
        .args(["backup", "web"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen_stopped = false;
    while child.try_wait().unwrap().is_none() {
        seen_stopped |= web.status() == "exited";
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success());
    // The terminal says which container it waits for, and how long at most.
    let said = text(&done.stderr);
    assert!(
        said.contains(&format!("stopping container {} (up to 3.0 s", web.name)),
        "{said}"
    );
    assert!(seen_stopped, "the container was never seen stopped");
    assert_eq!(web.status(), "running");
    let listing = text(&env.run(&["ls", "web"]).stdout);
    assert!(
        listing.contains("big.bin")
            && !listing.contains("note.tmp")
            && !listing.contains("/cache/x"),
        "{listing}"
    );

    // Killed while the container is stopped: the next drctl command starts it again.
    // New contents, so this read takes as long as the first (the files cache would
    // otherwise make it too short to be caught).
    std::fs::write(
        data.path().join("files/big.bin"),
        common::random_bytes(96 << 20, 99),
    )
    .unwrap();
    let mut child = env.cmd().args(["backup", "web"]).spawn().unwrap();
    wait_stopped(&web);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(web.status(), "exited");
    let o = env.run(&["snapshots"]);
    assert_ok(&o);
    assert!(text(&o.stderr).contains(&web.name), "{}", text(&o.stderr));
    assert_eq!(web.status(), "running");

    // Ctrl-C while the container is stopped: exit 130, the container runs again, and
    // no new recovery point.
    let before = points(&env, "web").len();
    let mut child = env.cmd().args(["backup", "web"]).spawn().unwrap();
    wait_stopped(&web);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(web.status(), "running");
    assert_eq!(points(&env, "web").len(), before);

    // Restore into the live path: refused while it holds data, then forced; the container
    // is stopped meanwhile and running after.
    std::fs::write(data.path().join("files/big.bin"), b"changed").unwrap();
    assert_fails(&env.run(&["restore", "web"]), 2, "holds data");
    assert_ok(&env.run(&["restore", "web", "--force"]));
    assert_eq!(
        std::fs::read(data.path().join("files/big.bin")).unwrap(),
        common::random_bytes(96 << 20, 1)
    );
    assert!(!data.path().join("files/note.tmp").exists());
    assert_eq!(web.status(), "running");
}

#[test]
fn restore_at_a_time_between_points_takes_the_earlier_one() {
    if skip() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let env = env_with(&format!(
        "[stack.app]\n[[stack.app.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\n",
        data.path().display()
    ));
    let mut times = Vec::new();
    for (minute, v) in ["first", "second", "third"].into_iter().enumerate() {
        std::fs::write(data.path().join("state.txt"), v).unwrap();
        std::fs::write(data.path().join(format!("{v}.txt")), v).unwrap();
        // The clock passed in, a minute apart: no waiting for the wall clock to move.
        let now = format!("2026-11-20T10:0{minute}:00Z");
        assert_ok(
            &env.cmd()
                .env("DRCTL_NOW", &now)
                .args(["backup", "app"])
                .output()
                .unwrap(),
        );
        times.push(now.parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    }
    let ps = points(&env, "app");
    assert_eq!(ps.len(), 3);
    let between = times[1] + chrono::Duration::milliseconds(500);
    let to = tempfile::tempdir().unwrap();
    let at = between.to_rfc3339();
    // The plan names the second point and changes nothing.
    let o = env.run(&[
        "restore",
        "app",
        "--at",
        &at,
        "--to",
        to.path().to_str().unwrap(),
        "--dry-run",
    ]);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains(&ps[1]["id"].as_str().unwrap()[..8]),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(std::fs::read_dir(to.path()).unwrap().count(), 0);
    assert_ok(&env.run(&[
        "restore",
        "app",
        "--at",
        &at,
        "--to",
        to.path().to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(to.path().join("state.txt")).unwrap(),
        "second"
    );
    assert!(to.path().join("second.txt").exists());
    assert!(!to.path().join("third.txt").exists());
    // Before the first point there is nothing to restore.
    let early = (times[0] - chrono::Duration::seconds(60)).to_rfc3339();
    assert_fails(
        &env.run(&["restore", "app", "--at", &early, "--to", "/nonexistent"]),
        2,
        "no complete backup",
    );
}

/// A failed backup: exit 1, the message names stack, source and cause, no complete point.
fn assert_source_fails(env: &Env, stack: &str, source: &str, cause: &str) -> Output {
    let o = env.run(&["backup", stack]);
    assert_fails(&o, 1, &format!("stack {stack}, source {source}: "));
    assert!(
        text(&o.stderr).contains(cause),
        "cause {cause:?} not in: {}",
        text(&o.stderr)
    );
    assert!(no_complete_point(env, stack));
    o
}

#[test]
fn failing_sources_record_no_complete_point() {
    if skip() {
        return;
    }
    let pw = "right-password";
    let name = unique("drctl-t-pgfail");
    let c = docker::postgres(&name, pw);
    c.psql(pw, "postgres", "CREATE DATABASE big");
    c.exec_ok(
        &[("PGPASSWORD", pw)],
        &[
            "/usr/lib/postgresql/15/bin/pgbench",
            "-q",
            "-i",
            "-s",
            "20",
            "-U",
            "postgres",
            "-h",
            "/var/run/postgresql",
            "big",
        ],
    );
    let wrong = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(wrong.path(), "not-the-password\n").unwrap();
    let env = env_with(&format!(
        r#"[stack.badpw]
[[stack.badpw.source]]
name = "db"
kind = "postgres"
container = "{name}"
password_file = "{}"

[stack.nodb]
[[stack.nodb.source]]
name = "db"
kind = "postgres"
container = "{name}"
databases = ["nope"]

[stack.gone]
[[stack.gone.source]]
name = "db"
kind = "postgres"
container = "{name}-missing"

[stack.big]
[[stack.big.source]]
name = "db"
kind = "postgres"
container = "{name}"
databases = ["big"]
"#,
        wrong.path().display()
    ));
    let o = assert_source_fails(&env, "badpw", "db", "password authentication failed");
    assert!(!text(&o.stderr).contains("not-the-password"));
    assert_source_fails(&env, "nodb", "db", "database nope does not exist");
    assert_source_fails(&env, "gone", "db", "does not exist");

    // pg_dump killed inside the container halfway through.
    let child = env
        .cmd()
        .args(["backup", "big"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = c.exec(&[], &["pkill", "-9", "-x", "pg_dump"]);
        if o.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "pg_dump never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_fails(&o, 1, "stack big, source db: ");
    assert!(
        text(&o.stderr).contains("pg_dump was killed"),
        "{}",
        text(&o.stderr)
    );
    assert!(no_complete_point(&env, "big"));

    // A dump whose stream ends early, with exit 0: the completion marker is missing.
    c.exec_ok(
        &[],
        &["sh", "-c", "printf '#!/bin/sh\\n/usr/lib/postgresql/15/bin/pg_dump \"$@\" | head -c 100000\\n' > /usr/local/bin/pg_dump && chmod +x /usr/local/bin/pg_dump"],
    );
    assert_source_fails(&env, "big", "db", "without its completion marker");
    c.exec_ok(&[], &["rm", "/usr/local/bin/pg_dump"]);

    // A stopped container.
    c.stop();
    assert_source_fails(&env, "big", "db", "is not running");
    c.start();
    // And once everything is right again, the point is complete.
    assert_ok(&env.run(&["backup", "big"]));
    assert!(!no_complete_point(&env, "big"));
}

#[test]
fn restore_elsewhere_leaves_the_stacks_containers_alone() {
    if skip() {
        return;
    }
    let web = docker::sleeper(&unique("drctl-t-web"));
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("index.html"), b"live").unwrap();
    let env = env_with(&format!(
        "[stack.web]\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\nstop = [\"{}\"]\n",
        data.path().display(),
        web.name
    ));
    assert_ok(&env.run(&["backup", "web"]));
    let started = || {
        let o = std::process::Command::new("docker")
            .args(["inspect", "-f", "{{.State.StartedAt}}", &web.name])
            .output()
            .unwrap();
        assert!(o.status.success());
        text(&o.stdout).trim().to_string()
    };
    let before = started();
    assert_eq!(web.status(), "running");

    // Restored elsewhere: the container is neither stopped nor restarted.
    let to = tempfile::tempdir().unwrap();
    let o = env.run(&[
        "restore",
        "web",
        "--source",
        "files",
        "--to",
        to.path().to_str().unwrap(),
    ]);
    assert_ok(&o);
    assert_eq!(
        std::fs::read(to.path().join("index.html")).unwrap(),
        b"live"
    );
    assert_eq!(web.status(), "running");
    assert_eq!(started(), before, "the container was restarted");

    // And it needs no Docker at all: an unreachable daemon changes nothing.
    let to2 = tempfile::tempdir().unwrap();
    let o = env
        .cmd()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["restore", "web", "--to", to2.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(
        std::fs::read(to2.path().join("index.html")).unwrap(),
        b"live"
    );
    assert_eq!(started(), before, "the container was restarted");
}

/// A volume whose files keep turning into symlinks, FIFOs and directories while its
/// container is held: the backup ends in bounded time and stores nothing from outside the
/// tree, and SIGTERM in the middle exits 130 with the container running again.
#[test]
fn volume_under_swaps_ends_and_sigterm_puts_the_held_container_back() {
    use common::swap::{assert_no_marker, swapper, wait_bounded, Changer, MARKER};
    use std::process::Stdio;

    if skip() {
        return;
    }
    let web = docker::sleeper(&unique("drctl-t-swap"));
    let data = tempfile::tempdir().unwrap();
    let files = data.path().join("files");
    let hot = files.join("hot");
    std::fs::create_dir_all(&hot).unwrap();
    // Outside the volume: what a planted symlink would leak.
    let secret = data.path().join("secret.txt");
    std::fs::write(&secret, MARKER.repeat(1000)).unwrap();
    let n = 300;
    for i in 0..n {
        std::fs::write(hot.join(format!("f{i:04}")), b"regular file\n").unwrap();
    }
    let env = env_with(&format!(
        "[stack.web]\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\nstop = [\"{}\"]\n",
        files.display(),
        web.name
    ));
    let changer = Changer::start(swapper(hot.clone(), secret.clone(), n));

    let child = env
        .cmd()
        .args(["backup", "web"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_bounded(child, Duration::from_secs(120), "the backup under swaps");
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "rc {:?}: {}",
        o.status.code(),
        text(&o.stderr)
    );
    assert_eq!(web.status(), "running");
    let out = tempfile::tempdir().unwrap();
    let to = out.path().join("files");
    assert_ok(&env.run(&[
        "restore",
        "web",
        "--source",
        "files",
        "--to",
        to.to_str().unwrap(),
    ]));
    assert_no_marker(out.path());

    // A large new file keeps the read going while the container is stopped.
    std::fs::write(files.join("big.bin"), common::random_bytes(96 << 20, 7)).unwrap();
    let before = points(&env, "web").len();
    let child = env
        .cmd()
        .args(["backup", "web"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_stopped(&web);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = wait_bounded(child, Duration::from_secs(30), "the interrupted backup");
    changer.stop();
    assert_fails(&o, 130, "interrupted");
    assert_eq!(web.status(), "running");
    assert_eq!(points(&env, "web").len(), before);
}

/// `pitr = true`: each run also stores the server's own physical base backup, with the
/// timeline and WAL position it starts from; the tar alone starts a server holding the
/// data (it carries the WAL that makes it consistent), and the dumps restore as before.
#[test]
fn a_pitr_source_stores_a_base_backup_that_starts_a_server_by_itself() {
    if skip() {
        return;
    }
    let pw = "pg-base-1";
    let name = unique("drctl-t-pgbase");
    let c = docker::postgres(&name, pw);
    c.psql(pw, "postgres", "CREATE DATABASE shop");
    c.psql(
        pw,
        "shop",
        "CREATE TABLE orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 5000) g",
    );
    let env = env_with(&format!(
        "[stack.shop]\n[[stack.shop.source]]\nname = \"db\"\nkind = \"postgres\"\ncontainer = \"{name}\"\ndatabases = [\"shop\"]\npitr = true\n"
    ));
    assert_ok(&env.run(&["backup", "shop"]));
    let db = &points(&env, "shop")[0]["sources"][0];
    assert_eq!(db["status"], "ok", "{db:#}");
    assert_eq!(db["base"]["file"], "base.tar", "{db:#}");
    assert_eq!(db["base"]["timeline"], 1, "{db:#}");
    assert!(db["base"]["wal_start"].as_str().unwrap().contains('/'));

    let out = env.path("out");
    assert_ok(&env.run(&["restore", "shop", "--to", out.to_str().unwrap()]));
    let tar = out.join("db/base.tar");
    assert!(out.join("db/shop.sql").exists() && tar.exists());
    let data = env.path("pgdata");
    std::fs::create_dir_all(&data).unwrap();
    // As the server's own user, whatever that user is called on this host.
    let o = std::process::Command::new("tar")
        .arg("--numeric-owner")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(data.join("PG_VERSION").exists() && data.join("backup_label").exists());
    c.psql(pw, "shop", "DELETE FROM orders");
    let mount = format!("{}:/var/lib/postgresql/data", data.display());
    let copy = docker::postgres_with(&unique("drctl-t-pgbase-copy"), pw, &["-v", &mount]);
    assert_eq!(
        copy.psql(pw, "shop", "SELECT count(*), sum(id) FROM orders"),
        "5000|12502500"
    );
}
