//! `drctl discover` against Compose projects run by docker-compose from the test image:
//! the stack files it writes pass `config check` unchanged, every stack backs up, no
//! credential lands in a file, and a second run reports what changed instead of writing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::docker::{image, skip, Container};
use common::{assert_ok, text, unique, Env, Kind};

/// A Compose project, brought down with its volumes when dropped.
struct Project {
    name: String,
    dir: PathBuf,
}

impl Project {
    fn up(name: &str, dir: &Path, compose: &str) -> Project {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("docker-compose.yml"), compose).unwrap();
        std::fs::write(dir.join(".env"), "TAG=1\n").unwrap();
        let p = Project {
            name: name.to_string(),
            dir: dir.to_path_buf(),
        };
        let o = p.compose(&["up", "-d"]);
        assert!(o.status.success(), "compose up {name}: {}", text(&o.stderr));
        p
    }

    fn compose(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker-compose")
            .arg("-p")
            .arg(&self.name)
            .arg("-f")
            .arg(self.dir.join("docker-compose.yml"))
            .args(args)
            .output()
            .unwrap()
    }

    /// The container of a service (docker-compose 1.x names it PROJECT_SERVICE_1).
    fn container(&self, service: &str) -> String {
        let o = self.compose(&["ps", "-q", service]);
        let id = text(&o.stdout).trim().to_string();
        let o = Command::new("docker")
            .args(["inspect", "-f", "{{.Name}}", &id])
            .output()
            .unwrap();
        text(&o.stdout).trim().trim_start_matches('/').to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "-t", "2"]);
    }
}

/// Waits until `cmd` succeeds in `container`.
fn wait_for(container: &str, env: &[(&str, &str)], cmd: &[&str]) {
    let c = Container::adopt(container);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !c.exec(env, cmd).status.success() {
        assert!(Instant::now() < deadline, "{container} never became ready");
        std::thread::sleep(Duration::from_millis(300));
    }
    std::mem::forget(c); // compose removes it
}

const SLEEP: &str = r#"["bash", "-c", "trap 'exit 0' TERM INT; sleep infinity & wait"]"#;

#[test]
fn discovered_stack_files_check_and_back_up_and_a_second_run_reports_changes() {
    if skip() {
        return;
    }
    let env = Env::init(Kind::Local).unwrap();
    let img = image();
    let root = env.path("hosts");
    let shop_name = unique("shop-prod");
    let files = root.join("data/shop/files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("logo.png"), b"png").unwrap();
    let shop = Project::up(
        &shop_name,
        &root.join(&shop_name),
        &format!(
            r#"version: "2.4"
services:
  db:
    image: {img}
    command: ["drctl-postgres"]
    stop_signal: SIGINT
    environment: {{ POSTGRES_PASSWORD: "pg-Secret-1", POSTGRES_USER: postgres }}
  redis:
    image: {img}
    command: ["redis-server", "--requirepass", "redis-Secret-2", "--dir", "/tmp", "--bind", "0.0.0.0", "--protected-mode", "no"]
  web:
    image: {img}
    command: {SLEEP}
    volumes: ["{}:/var/www/files"]
  automation:
    image: {img}
    command: {SLEEP}
    volumes: ["n8n:/home/node/.n8n"]
volumes:
  n8n: {{}}
"#,
            files.display()
        ),
    );
    let shared_name = unique("shared");
    let shared = Project::up(
        &shared_name,
        &root.join(&shared_name),
        &format!(
            r#"version: "2.4"
services:
  mariadb:
    image: {img}
    command: ["drctl-mariadb"]
    environment: {{ MARIADB_ROOT_PASSWORD: "maria-Secret-3" }}
"#
        ),
    );
    let dev_name = unique("dev");
    let dev_files = root.join("data/dev");
    std::fs::create_dir_all(&dev_files).unwrap();
    std::fs::write(dev_files.join("app.py"), b"print('hi')").unwrap();
    let _dev = Project::up(
        &dev_name,
        &root.join(&dev_name),
        &format!(
            r#"version: "2.4"
services:
  app:
    image: {img}
    command: {SLEEP}
    volumes: ["{}:/srv/app"]
"#,
            dev_files.display()
        ),
    );
    let db = shop.container("db");
    let redis = shop.container("redis");
    let maria = shared.container("mariadb");
    wait_for(
        &db,
        &[("PGPASSWORD", "pg-Secret-1")],
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
    wait_for(&redis, &[], &["redis-cli", "-a", "redis-Secret-2", "ping"]);
    wait_for(
        &maria,
        &[],
        &["mariadb", "-uroot", "-pmaria-Secret-3", "-e", "select 1"],
    );
    let automation = Container::adopt(&shop.container("automation"));
    assert!(automation
        .exec(
            &[],
            &["sh", "-c", "echo x > /home/node/.n8n/database.sqlite"]
        )
        .status
        .success());
    std::mem::forget(automation);

    // Printed by default; written with --write; both name every project.
    let o = env.run(&["discover"]);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains(&format!("[stack.{shop_name}]")),
        "{}",
        text(&o.stdout)
    );
    let o = env.run(&["discover", "--write", env.dir.path().to_str().unwrap()]);
    assert_ok(&o);
    let shop_file = env.path(&format!("schedules/{shop_name}.toml"));
    let written = std::fs::read_to_string(&shop_file).unwrap();
    for secret in ["pg-Secret-1", "redis-Secret-2", "maria-Secret-3"] {
        assert!(
            !written.contains(secret),
            "a credential was copied: {written}"
        );
    }
    assert!(
        written.contains("pause = ["),
        "the SQLite holder is not paused: {written}"
    );
    assert!(
        written.contains(&format!("path = \"{}\"", shop.dir.display())),
        "{written}"
    );
    assert!(env
        .path(&format!("restore-drills/{shop_name}.toml"))
        .exists());

    // Accepted unchanged, against this host too, and every stack backs up.
    let o = env.run(&["config", "check", "--live"]);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("PostgreSQL 15"),
        "{}",
        text(&o.stdout)
    );
    // Production and development get their own starting targets.
    assert!(written.contains("rpo = \"15m\""), "{written}");
    let dev_file =
        std::fs::read_to_string(env.path(&format!("schedules/{dev_name}.toml"))).unwrap();
    assert!(
        dev_file.contains("rpo = \"1d\"") && dev_file.contains(" 3 * * *"),
        "{dev_file}"
    );
    for stack in [&shop_name, &shared_name, &dev_name] {
        let o = env.run(&["backup", stack]);
        assert_ok(&o);
    }
    let o = env.json(&["snapshots", &shop_name]);
    let sources = o[0]["sources"].as_array().unwrap().len();
    assert_eq!(sources, 5, "{o}"); // db, redis, web, automation, compose

    // A second run changes no file and says what changed.
    let o = env.run(&["discover", "--write", env.dir.path().to_str().unwrap()]);
    assert_ok(&o);
    assert!(text(&o.stderr).contains("unchanged"), "{}", text(&o.stderr));
    let o = shop.compose(&["rm", "-s", "-f", "redis"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = env.run(&["discover", "--write", env.dir.path().to_str().unwrap()]);
    assert_ok(&o);
    assert!(
        text(&o.stderr).contains(&format!(
            "source redis matches nothing running now (container {redis})"
        )),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&shop_file).unwrap(), written);
}

#[test]
fn config_check_live_names_every_problem_in_one_run() {
    if skip() {
        return;
    }
    let env = Env::init(Kind::Local).unwrap();
    let maria = common::docker::mariadb(&unique("drctl-t-live"), "pw");
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/s.toml"),
        format!(
            "[stack.a]\n[[stack.a.source]]\nname = \"db\"\nkind = \"postgres\"\ncontainer = \"drctl-no-such-container\"\n\
             [[stack.a.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\nstop = [\"drctl-no-such-web\"]\n\
             [stack.b]\n[[stack.b.source]]\nname = \"db\"\nkind = \"mysql\"\ncontainer = \"{}\"\npitr = true\n\
             [[stack.b.source]]\nname = \"shop\"\nkind = \"mysql\"\ncontainer = \"{}\"\ndatabases = [\"nosuchdb\"]\n\
             [[stack.b.source]]\nname = \"fine\"\nkind = \"mysql\"\ncontainer = \"{}\"\n",
            env.path("no-such-dir").display(),
            maria.name,
            maria.name,
            maria.name
        ),
    )
    .unwrap();
    // Statically valid.
    assert_ok(&env.run(&["config", "check"]));
    let o = env.run(&["config", "check", "--live"]);
    common::assert_fails(&o, 2, "4 of 5 source(s) would fail on this host");
    let err = text(&o.stderr);
    for needle in [
        "problem: a/db: container drctl-no-such-container does not exist",
        "problem: a/files: ",
        "no-such-dir cannot be read",
        "container drctl-no-such-web does not exist",
        "problem: b/db: binary logging is off",
        "problem: b/shop: database nosuchdb does not exist",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from {err}");
    }
    assert!(text(&o.stdout).contains("b/fine"), "{}", text(&o.stdout));
}
