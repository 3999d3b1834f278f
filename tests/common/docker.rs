//! Throwaway database containers for tests, driven through the `docker` CLI.
//!
//! Every container runs the local image built by `scripts/test-images.sh` (PostgreSQL 15,
//! MariaDB 10.11 and Redis 7 in one Debian image; nothing is pulled), carries the label
//! `drctl-test=1`, and is removed with its anonymous volumes when its [`Container`] is
//! dropped. The constructors wait until the server answers queries, so a test can use it
//! right away. Passwords reach `docker` through its environment (`-e NAME` without a
//! value), never through its command line.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::text;

/// How long a constructor (or [`Container::start`]) waits for the server to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// True when the Docker daemon answers.
/// Whether to skip a Docker test: only when DRCTL_TEST_NO_DOCKER=1; a missing daemon
/// otherwise fails the test.
pub fn skip() -> bool {
    if std::env::var("DRCTL_TEST_NO_DOCKER").as_deref() == Ok("1") {
        return true;
    }
    assert!(
        docker_available(),
        "docker is not available (set DRCTL_TEST_NO_DOCKER=1 to skip the docker tests)"
    );
    false
}

pub fn docker_available() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The test image's tag; builds the image on first use (once per process, and across
/// processes the script's lock makes later callers wait for the first build).
pub fn image() -> String {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-images.sh");
            let o = Command::new("bash")
                .arg(&script)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            let tag = text(&o.stdout).trim().to_string();
            if !o.status.success() || tag.is_empty() {
                return Err(format!(
                    "{} failed ({:?}):\n{}",
                    script.display(),
                    o.status.code(),
                    text(&o.stderr)
                ));
            }
            Ok(tag)
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `docker ARGS`, with `env` set on the docker process itself.
fn docker(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("docker");
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("cannot run docker")
}

fn docker_ok(args: &[&str]) -> String {
    let o = docker(args, &[]);
    assert!(
        o.status.success(),
        "docker {} failed ({:?}): {}",
        args.join(" "),
        o.status.code(),
        text(&o.stderr)
    );
    text(&o.stdout).trim().to_string()
}

/// What "ready" means for a container, so that [`Container::start`] can wait again.
#[derive(Clone, Debug)]
enum Ready {
    /// Superuser and password.
    Postgres(String, String),
    Mariadb(String),
    Redis(String),
    Running,
}

/// A test container; dropping it runs `docker rm -f -v`.
#[derive(Debug)]
pub struct Container {
    pub name: String,
    ready: Option<Ready>,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", "-v", &self.name], &[]);
    }
}

/// PostgreSQL 15 (superuser `postgres`, database `postgres`), data in
/// /var/lib/postgresql/data.
pub fn postgres(name: &str, password: &str) -> Container {
    postgres_with(name, password, &[])
}

/// [`postgres`] with extra `docker run` arguments (`-v VOLUME:/var/lib/postgresql/data`,
/// `-e POSTGRES_DB=app`, ...). Like the official image it stops on SIGINT (fast shutdown).
pub fn postgres_with(name: &str, password: &str, extra_args: &[&str]) -> Container {
    postgres_as(name, "postgres", password, extra_args)
}

/// [`postgres_with`] whose superuser is `user` (`POSTGRES_USER`), as many compose files
/// configure the official image.
pub fn postgres_as(name: &str, user: &str, password: &str, extra_args: &[&str]) -> Container {
    postgres_cmd(name, user, password, extra_args, &["drctl-postgres"])
}

/// [`postgres_as`] started by a command of its own, which must end in `drctl-postgres`.
pub fn postgres_cmd(
    name: &str,
    user: &str,
    password: &str,
    extra_args: &[&str],
    cmd: &[&str],
) -> Container {
    let mut args = vec!["--stop-signal", "SIGINT"];
    args.extend_from_slice(extra_args);
    run(
        name,
        &[("POSTGRES_PASSWORD", password), ("POSTGRES_USER", user)],
        &args,
        cmd,
        Ready::Postgres(user.into(), password.into()),
    )
}

/// MariaDB 10.11; `root` (localhost and `%`) logs in with `root_password` only. Data in
/// /var/lib/mysql.
pub fn mariadb(name: &str, root_password: &str) -> Container {
    mariadb_with(name, root_password, &[])
}

/// [`mariadb`] with extra `docker run` arguments (`-v VOLUME:/var/lib/mysql`,
/// `-e MARIADB_DATABASE=app`, ...).
pub fn mariadb_with(name: &str, root_password: &str, extra_args: &[&str]) -> Container {
    mariadb_cmd(name, root_password, extra_args, &[])
}

/// [`mariadb_with`] with server options after the image's command, as the official image
/// passes them to `mariadbd` (`--log-bin`, `--binlog-format=ROW`, ...).
pub fn mariadb_cmd(
    name: &str,
    root_password: &str,
    extra_args: &[&str],
    options: &[&str],
) -> Container {
    let mut cmd = vec!["drctl-mariadb"];
    cmd.extend_from_slice(options);
    run(
        name,
        &[("MARIADB_ROOT_PASSWORD", root_password)],
        extra_args,
        &cmd,
        Ready::Mariadb(root_password.into()),
    )
}

/// Redis 7 with `requirepass`; data (dump.rdb on stop) in /data.
pub fn redis(name: &str, password: &str) -> Container {
    redis_with(name, password, &[])
}

/// [`redis`] with extra `docker run` arguments (`-v VOLUME:/data`, ...).
pub fn redis_with(name: &str, password: &str, extra_args: &[&str]) -> Container {
    run(
        name,
        &[("REDIS_PASSWORD", password)],
        extra_args,
        &["drctl-redis"],
        Ready::Redis(password.into()),
    )
}

/// Redis with its password on the command line (`redis-server --requirepass PW`), the way
/// many compose files run the official image: no password in the environment.
pub fn redis_requirepass(name: &str, password: &str) -> Container {
    run(
        name,
        &[],
        &[],
        &[
            "redis-server",
            "--requirepass",
            password,
            "--dir",
            "/tmp",
            "--bind",
            "0.0.0.0",
            "--protected-mode",
            "no",
        ],
        Ready::Redis(password.into()),
    )
}

/// A container that only sleeps (for stop/pause tests); it exits at once on TERM.
pub fn sleeper(name: &str) -> Container {
    sleeper_with(name, &[])
}

/// [`sleeper`] with extra `docker run` arguments.
pub fn sleeper_with(name: &str, extra_args: &[&str]) -> Container {
    run(
        name,
        &[],
        extra_args,
        &[
            "bash",
            "-c",
            "trap 'exit 0' TERM INT; sleep infinity & wait",
        ],
        Ready::Running,
    )
}

/// `docker run -d --name NAME ... IMAGE CMD`, replacing any old container of that name,
/// then waits until it is ready.
fn run(
    name: &str,
    env: &[(&str, &str)],
    extra_args: &[&str],
    cmd: &[&str],
    ready: Ready,
) -> Container {
    let image = image();
    let _ = docker(&["rm", "-f", "-v", name], &[]);
    let mut args = vec!["run", "-d", "--name", name, "--label", "drctl-test=1"];
    for (k, _) in env {
        args.extend(["-e", k]);
    }
    args.extend_from_slice(extra_args);
    args.push(&image);
    args.extend_from_slice(cmd);
    let o = docker(&args, env);
    assert!(
        o.status.success(),
        "docker run {name} failed ({:?}): {}",
        o.status.code(),
        text(&o.stderr)
    );
    // From here on a panic removes the container.
    let c = Container {
        name: name.to_string(),
        ready: Some(ready),
    };
    c.wait_ready();
    c
}

/// A named volume, removed (with `docker volume rm -f`) when dropped.
#[derive(Debug)]
pub struct Volume {
    pub name: String,
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = docker(&["volume", "rm", "-f", &self.name], &[]);
    }
}

/// Creates the named volume `name` (labelled `drctl-test=1`).
pub fn volume(name: &str) -> Volume {
    docker_ok(&["volume", "create", "--label", "drctl-test=1", name]);
    Volume {
        name: name.to_string(),
    }
}

impl Container {
    /// Takes charge of an existing container (created by other means): it is removed
    /// when the value is dropped; [`Container::start`] does not wait for anything.
    pub fn adopt(name: &str) -> Container {
        Container {
            name: name.to_string(),
            ready: None,
        }
    }

    /// `docker exec -e K ... NAME CMD...` (the values travel in docker's environment).
    pub fn exec(&self, env: &[(&str, &str)], cmd: &[&str]) -> Output {
        let mut args = vec!["exec"];
        for (k, _) in env {
            args.extend(["-e", k]);
        }
        args.push(&self.name);
        args.extend_from_slice(cmd);
        docker(&args, env)
    }

    /// [`Container::exec`] that must succeed; returns stdout, trimmed.
    pub fn exec_ok(&self, env: &[(&str, &str)], cmd: &[&str]) -> String {
        let o = self.exec(env, cmd);
        assert!(
            o.status.success(),
            "in container {}: {:?} failed ({:?})\nstdout: {}\nstderr: {}",
            self.name,
            cmd,
            o.status.code(),
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout).trim().to_string()
    }

    /// Runs `sql` with psql as `postgres` over the unix socket in database `db`; returns
    /// the unaligned, tuples-only output. Fails on the first SQL error.
    pub fn psql(&self, password: &str, db: &str, sql: &str) -> String {
        self.psql_as("postgres", password, db, sql)
    }

    /// [`Container::psql`] as `user`.
    pub fn psql_as(&self, user: &str, password: &str, db: &str, sql: &str) -> String {
        self.exec_ok(
            &[("PGPASSWORD", password)],
            &[
                "psql",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                user,
                "-h",
                "/var/run/postgresql",
                "-d",
                db,
                "-Atc",
                sql,
            ],
        )
    }

    /// Every table of schema `public` in `db` with its row count and a sum of its rows'
    /// hashes: equal before and after a round trip, whatever the row order.
    pub fn pg_table_sums(&self, password: &str, db: &str) -> Vec<String> {
        let tables = self.psql(
            password,
            db,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        );
        tables
            .lines()
            .map(|t| {
                let sum = self.psql(
                    password,
                    db,
                    &format!("SELECT count(*) || ' ' || coalesce(sum(hashtext(x::text)::bigint), 0) FROM {t} x"),
                );
                format!("{t} {sum}")
            })
            .collect()
    }

    /// Runs `sql` with the mariadb client as root; tab-separated rows, no column names.
    pub fn mariadb_sql(&self, password: &str, sql: &str) -> String {
        self.exec_ok(
            &[("MYSQL_PWD", password)],
            &["mariadb", "-uroot", "-N", "-B", "-e", sql],
        )
    }

    /// `redis-cli ARGS...` authenticated with `password`.
    pub fn redis_cli(&self, password: &str, args: &[&str]) -> String {
        let mut cmd = vec!["redis-cli"];
        cmd.extend_from_slice(args);
        self.exec_ok(&[("REDISCLI_AUTH", password)], &cmd)
    }

    /// The full container id.
    pub fn id(&self) -> String {
        docker_ok(&["inspect", "-f", "{{.Id}}", &self.name])
    }

    /// `created`, `running`, `paused`, `exited`, ...; empty when there is no such
    /// container.
    pub fn status(&self) -> String {
        let o = docker(&["inspect", "-f", "{{.State.Status}}", &self.name], &[]);
        text(&o.stdout).trim().to_string()
    }

    pub fn running(&self) -> bool {
        self.status() == "running"
    }

    /// Everything the container logged (stdout and stderr).
    pub fn logs(&self) -> String {
        let o = docker(&["logs", &self.name], &[]);
        format!("{}{}", text(&o.stdout), text(&o.stderr))
    }

    /// `docker stop`.
    pub fn stop(&self) {
        docker_ok(&["stop", &self.name]);
    }

    /// `docker start`, then waits until the server answers again.
    pub fn start(&self) {
        docker_ok(&["start", &self.name]);
        self.wait_ready();
    }

    pub fn pause(&self) {
        docker_ok(&["pause", &self.name]);
    }

    pub fn unpause(&self) {
        docker_ok(&["unpause", &self.name]);
    }

    /// `docker rm -f -v` now rather than on drop.
    pub fn remove(&self) {
        docker_ok(&["rm", "-f", "-v", &self.name]);
    }

    /// Waits (up to [`READY_TIMEOUT`]) until the server answers a query; panics with the
    /// container's logs when it exits or the time is up.
    pub fn wait_ready(&self) {
        let Some(ready) = &self.ready else { return };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.is_ready(ready) {
                return;
            }
            let status = self.status();
            if status != "running" && status != "created" && status != "restarting" {
                panic!(
                    "container {} is {status:?} instead of ready; logs:\n{}",
                    self.name,
                    self.logs()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "container {} not ready after {READY_TIMEOUT:?}; logs:\n{}",
                    self.name,
                    self.logs()
                );
            }
            sleep(Duration::from_millis(200));
        }
    }

    fn is_ready(&self, ready: &Ready) -> bool {
        let o = match ready {
            Ready::Running => return self.running(),
            Ready::Postgres(user, pw) => self.exec(
                &[("PGPASSWORD", pw)],
                &[
                    "psql",
                    "-U",
                    user,
                    "-d",
                    "postgres",
                    "-h",
                    "/var/run/postgresql",
                    "-Atc",
                    "select 1",
                ],
            ),
            Ready::Mariadb(pw) => self.exec(
                &[("MYSQL_PWD", pw)],
                &["mariadb", "-uroot", "-N", "-e", "select 1"],
            ),
            Ready::Redis(pw) => self.exec(&[("REDISCLI_AUTH", pw)], &["redis-cli", "ping"]),
        };
        let want = if matches!(ready, Ready::Redis(_)) {
            "PONG"
        } else {
            "1"
        };
        o.status.success() && text(&o.stdout).trim() == want
    }
}
