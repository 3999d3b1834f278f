//! Smoke test of the database containers of tests/common/docker.rs: the image builds,
//! each server starts, answers with the right password only, stops promptly, and has the
//! tools that backups use (pg_dump, pgbench, mariadb-dump).
//!
//! Needs a Docker daemon; DRCTL_TEST_NO_DOCKER=1 skips these tests.

mod common;

use std::time::{Duration, Instant};

use common::docker::{self, Container};
use common::unique;

use docker::skip;

/// `docker stop` must be served by the container's own signal handling, not by the
/// 10 s kill timeout.
fn assert_stops_quickly(c: &Container) {
    let t = Instant::now();
    c.stop();
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "docker stop {} took {took:?}",
        c.name
    );
    assert_eq!(c.status(), "exited");
}

#[test]
fn postgres() {
    if skip() {
        return;
    }
    let pw = "pg 'secret\" $x";
    let vol = docker::volume(&unique("drctl-test-pgdata"));
    let data = format!("{}:/var/lib/postgresql/data", vol.name);
    let c = docker::postgres_with(&unique("drctl-test-pg"), pw, &["-v", &data]);
    assert_eq!(c.psql(pw, "postgres", "select 1"), "1");
    assert!(c.running());
    assert_eq!(c.id().len(), 64);

    let wrong = c.exec(
        &[("PGPASSWORD", "wrong")],
        &[
            "psql",
            "-U",
            "postgres",
            "-h",
            "/var/run/postgresql",
            "-c",
            "select 1",
        ],
    );
    assert!(!wrong.status.success(), "a wrong password must fail");

    c.psql(pw, "postgres", "CREATE DATABASE bench");
    c.exec_ok(
        &[("PGPASSWORD", pw)],
        &[
            "/usr/lib/postgresql/15/bin/pgbench",
            "-q",
            "-i",
            "-s",
            "1",
            "-h",
            "/var/run/postgresql",
            "-U",
            "postgres",
            "bench",
        ],
    );
    assert_eq!(
        c.psql(pw, "bench", "select count(*) from pgbench_accounts"),
        "100000"
    );
    let v = c.exec_ok(&[], &["pg_dump", "--version"]);
    assert!(v.contains("PostgreSQL) 15."), "{v}");

    // The data outlives the container through the volume.
    assert_stops_quickly(&c);
    c.remove();
    let c = docker::postgres_with(&c.name, pw, &["-v", &data]);
    assert_eq!(
        c.psql(pw, "bench", "select count(*) from pgbench_branches"),
        "1"
    );
    drop(c);
}

#[test]
fn mariadb() {
    if skip() {
        return;
    }
    let pw = "my 'secret\\ \"x";
    let c = docker::mariadb(&unique("drctl-test-mariadb"), pw);
    assert_eq!(c.mariadb_sql(pw, "select 1"), "1");
    let wrong = c.exec(
        &[("MYSQL_PWD", "wrong")],
        &["mariadb", "-uroot", "-N", "-e", "select 1"],
    );
    assert!(!wrong.status.success(), "a wrong password must fail");
    let none = c.exec(&[], &["mariadb", "-uroot", "-N", "-e", "select 1"]);
    assert!(!none.status.success(), "root must need the password");

    c.mariadb_sql(
        pw,
        "CREATE DATABASE app; CREATE TABLE app.t (v TEXT); INSERT INTO app.t VALUES ('kept')",
    );
    let v = c.exec_ok(&[], &["mariadb-dump", "--version"]);
    assert!(v.contains("MariaDB"), "{v}");
    let dump = c.exec_ok(
        &[("MYSQL_PWD", pw)],
        &["mariadb-dump", "-uroot", "--databases", "app"],
    );
    assert!(dump.contains("INSERT INTO `t` VALUES"), "{dump}");

    assert_stops_quickly(&c);
    c.start();
    assert_eq!(c.mariadb_sql(pw, "select v from app.t"), "kept");
}

#[test]
fn redis() {
    if skip() {
        return;
    }
    let pw = "redis-secret";
    let c = docker::redis(&unique("drctl-test-redis"), pw);
    assert_eq!(c.redis_cli(pw, &["ping"]), "PONG");
    assert_eq!(c.redis_cli(pw, &["set", "k", "v"]), "OK");
    assert_eq!(c.redis_cli(pw, &["get", "k"]), "v");
    let o = c.exec(&[], &["redis-cli", "get", "k"]);
    let noauth = format!("{}{}", common::text(&o.stdout), common::text(&o.stderr));
    assert!(noauth.contains("NOAUTH"), "{noauth}");

    // SIGTERM makes redis save /data/dump.rdb, which a restart loads.
    assert_stops_quickly(&c);
    c.start();
    assert_eq!(c.redis_cli(pw, &["get", "k"]), "v");
}

#[test]
fn sleeper() {
    if skip() {
        return;
    }
    let c = docker::sleeper(&unique("drctl-test-sleeper"));
    assert!(c.running());
    c.pause();
    assert_eq!(c.status(), "paused");
    c.unpause();
    assert!(c.running());
    assert_stops_quickly(&c);
    c.remove();
    assert_eq!(c.status(), "");
}
