//! The whole host, as the reference server runs it: Compose projects run by
//! docker-compose from the test image. `drctl discover` writes stack files that pass
//! `config check --live` unchanged and back up; then the host is destroyed and `drctl
//! recover --all`, from the repository and the key file alone, brings every project back
//! whole, in dependency order, checked and timed.

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
        std::fs::write(dir.join(".env"), format!("TAG={name}\n")).unwrap();
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

    /// Everything of the project gone, as with a dead host: containers, volumes and
    /// networks, found by Compose's label (its files may be gone too).
    fn destroy(&self) {
        let label = format!("label=com.docker.compose.project={}", self.name);
        for (list, rm) in [
            (
                vec!["ps", "-aq", "--filter", &label],
                vec!["rm", "-f", "-v"],
            ),
            (
                vec!["volume", "ls", "-q", "--filter", &label],
                vec!["volume", "rm", "-f"],
            ),
            (
                vec!["network", "ls", "-q", "--filter", &label],
                vec!["network", "rm"],
            ),
        ] {
            let o = Command::new("docker").args(&list).output().unwrap();
            for id in text(&o.stdout).split_whitespace() {
                let _ = Command::new("docker").args(&rm).arg(id).output();
            }
        }
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-v", "-t", "2"]);
        self.destroy();
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
const PG_PW: &str = "pg-Secret-1";
const REDIS_PW: &str = "redis-Secret-2";
const MARIA_PW: &str = "maria-Secret-3";
const SHARED_PG_PW: &str = "pg-Secret-4";

/// A Drupal site's shape: users, nodes with their field data and revisions, taxonomy,
/// a cache table with binary data, and the key-value store.
const DRUPAL_SCHEMA: &str = "
CREATE TABLE users (uid serial PRIMARY KEY, uuid uuid NOT NULL DEFAULT gen_random_uuid(), langcode varchar(12) NOT NULL DEFAULT 'en');
CREATE TABLE users_field_data (uid int PRIMARY KEY REFERENCES users, name varchar(60) UNIQUE, mail varchar(254), created int, status smallint);
CREATE TABLE node (nid serial PRIMARY KEY, vid int, type varchar(32), uuid uuid NOT NULL DEFAULT gen_random_uuid());
CREATE TABLE node_field_data (nid int REFERENCES node, vid int, langcode varchar(12), title varchar(255), uid int REFERENCES users, status smallint, created int, changed int, PRIMARY KEY (nid, langcode));
CREATE TABLE node_revision (vid serial PRIMARY KEY, nid int REFERENCES node, revision_log text, revision_timestamp int);
CREATE TABLE taxonomy_term_field_data (tid serial PRIMARY KEY, vid varchar(32), name varchar(255), description__value text);
CREATE TABLE taxonomy_index (nid int REFERENCES node, tid int REFERENCES taxonomy_term_field_data, PRIMARY KEY (nid, tid));
CREATE TABLE cache_render (cid varchar(255) PRIMARY KEY, data bytea, expire int, tags text);
CREATE TABLE key_value (collection varchar(128), name varchar(128), value bytea, PRIMARY KEY (collection, name));
INSERT INTO users (uid) SELECT g FROM generate_series(1, 200) g;
INSERT INTO users_field_data SELECT g, 'user' || g, 'user' || g || '@example.com', 1700000000 + g, 1 FROM generate_series(1, 200) g;
INSERT INTO node (nid, vid, type) SELECT g, g, CASE WHEN g % 3 = 0 THEN 'page' ELSE 'article' END FROM generate_series(1, 3000) g;
INSERT INTO node_field_data SELECT g, g, 'en', 'Node number ' || g || ' é ü ☃', 1 + g % 200, 1, 1700000000 + g, 1700100000 + g FROM generate_series(1, 3000) g;
INSERT INTO node_revision (nid, revision_log, revision_timestamp) SELECT 1 + g % 3000, repeat('edit ', g % 20), 1700000000 + g FROM generate_series(1, 6000) g;
INSERT INTO taxonomy_term_field_data (vid, name, description__value) SELECT 'tags', 'tag' || g, md5(g::text) FROM generate_series(1, 100) g;
INSERT INTO taxonomy_index SELECT g, 1 + g % 100 FROM generate_series(1, 3000) g;
INSERT INTO cache_render SELECT 'entity_view:node:' || g, decode(md5(g::text) || md5((g * 7)::text), 'hex'), -1, 'node:' || g FROM generate_series(1, 2000) g;
INSERT INTO key_value SELECT 'state', 'system.cron_last' || g, convert_to(g::text, 'UTF8') FROM generate_series(1, 50) g;
";

/// What the test host holds that a recovery must give back.
#[derive(Debug, PartialEq)]
struct HostState {
    drupal: Vec<String>,
    shared_pg: Vec<String>,
    maria: String,
    redis: Vec<String>,
    sqlite: String,
    files: Vec<Vec<(String, Vec<u8>)>>,
}

/// The three projects: a shop (PostgreSQL with a Drupal schema, Redis with a password on
/// its command line, a web container with a bind-mounted files tree, an automation
/// container with a SQLite file in a named volume), shared databases (PostgreSQL and
/// MariaDB) and a development app on the shared project's network.
struct Host {
    root: PathBuf,
    shop: Project,
    shared: Project,
    dev: Project,
}

impl Host {
    fn up(root: &Path) -> Host {
        let img = image();
        let shop_name = unique("shop-prod");
        let files = root.join("data/shop/files");
        std::fs::create_dir_all(files.join("styles/thumb")).unwrap();
        std::fs::write(files.join("logo.png"), b"png").unwrap();
        std::fs::write(
            files.join("styles/thumb/a.jpg"),
            common::random_bytes(200_000, 3),
        )
        .unwrap();
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
    environment: {{ POSTGRES_PASSWORD: "{PG_PW}", POSTGRES_USER: postgres }}
  redis:
    image: {img}
    command: ["redis-server", "--requirepass", "{REDIS_PW}", "--dir", "/tmp", "--bind", "0.0.0.0", "--protected-mode", "no"]
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
    environment: {{ MARIADB_ROOT_PASSWORD: "{MARIA_PW}" }}
  postgres:
    image: {img}
    command: ["drctl-postgres"]
    stop_signal: SIGINT
    environment: {{ POSTGRES_PASSWORD: "{SHARED_PG_PW}", POSTGRES_USER: postgres }}
"#
            ),
        );
        let dev_name = unique("dev");
        let dev_files = root.join("data/dev");
        std::fs::create_dir_all(&dev_files).unwrap();
        std::fs::write(dev_files.join("app.py"), b"print('hi')").unwrap();
        let dev = Project::up(
            &dev_name,
            &root.join(&dev_name),
            &format!(
                r#"version: "2.4"
services:
  app:
    image: {img}
    command: {SLEEP}
    volumes: ["{}:/srv/app"]
    networks: [default, shared]
networks:
  shared:
    external:
      name: {}_default
"#,
                dev_files.display(),
                shared.name
            ),
        );
        Host {
            root: root.to_path_buf(),
            shop,
            shared,
            dev,
        }
    }

    /// Everything of the host gone: its projects' containers, volumes and networks, its
    /// data and project directories, and drctl's configuration, catalog and state. Only
    /// the repository, the key file and an empty drctl.toml stay.
    fn die(&self, env: &Env) {
        for p in [&self.shop, &self.shared, &self.dev] {
            p.destroy();
        }
        std::fs::remove_dir_all(&self.root).unwrap();
        for e in std::fs::read_dir(env.dir.path()).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if !["repo", "drctl.key", "drctl.toml"].contains(&name.as_str()) {
                if p.is_dir() {
                    std::fs::remove_dir_all(&p).unwrap();
                } else {
                    std::fs::remove_file(&p).unwrap();
                }
            }
        }
    }

    fn db(&self) -> Container {
        Container::adopt(&self.shop.container("db"))
    }

    fn wait_ready(&self) {
        let pg = [
            "psql",
            "-U",
            "postgres",
            "-h",
            "/var/run/postgresql",
            "-c",
            "select 1",
        ];
        wait_for(&self.shop.container("db"), &[("PGPASSWORD", PG_PW)], &pg);
        wait_for(
            &self.shared.container("postgres"),
            &[("PGPASSWORD", SHARED_PG_PW)],
            &pg,
        );
        wait_for(
            &self.shop.container("redis"),
            &[("REDISCLI_AUTH", REDIS_PW)],
            &["redis-cli", "ping"],
        );
        wait_for(
            &self.shared.container("mariadb"),
            &[("MYSQL_PWD", MARIA_PW)],
            &["mariadb", "-uroot", "-e", "select 1"],
        );
    }

    /// Fills every database, cache and volume.
    fn fill(&self) {
        let db = self.db();
        db.psql(PG_PW, "postgres", "CREATE DATABASE drupal");
        db.psql(PG_PW, "drupal", DRUPAL_SCHEMA);
        std::mem::forget(db);
        let pg = Container::adopt(&self.shared.container("postgres"));
        pg.psql(SHARED_PG_PW, "postgres", "CREATE DATABASE devdb");
        pg.psql(
            SHARED_PG_PW,
            "devdb",
            "CREATE TABLE items AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 500) g",
        );
        std::mem::forget(pg);
        let maria = Container::adopt(&self.shared.container("mariadb"));
        maria.mariadb_sql(
            MARIA_PW,
            "CREATE DATABASE legacy; USE legacy; CREATE TABLE legacy.orders (id INT PRIMARY KEY, total DECIMAL(10,2), note VARCHAR(64)); \
             INSERT INTO legacy.orders SELECT seq, seq * 1.5, CONCAT('order ', seq) FROM seq_1_to_800;",
        );
        std::mem::forget(maria);
        let redis = Container::adopt(&self.shop.container("redis"));
        for i in 0..40 {
            redis.redis_cli(
                REDIS_PW,
                &["SET", &format!("session:{i}"), &format!("user {i}")],
            );
        }
        redis.redis_cli(REDIS_PW, &["HSET", "cart:7", "sku", "A-1", "qty", "3"]);
        std::mem::forget(redis);
        let automation = Container::adopt(&self.shop.container("automation"));
        automation.exec_ok(
            &[],
            &[
                "sh",
                "-c",
                "printf 'SQLite format 3\\000 n8n' > /home/node/.n8n/database.sqlite",
            ],
        );
        std::mem::forget(automation);
    }

    /// What a recovery must bring back.
    fn state(&self) -> HostState {
        let db = self.db();
        let drupal = db.pg_table_sums(PG_PW, "drupal");
        std::mem::forget(db);
        let pg = Container::adopt(&self.shared.container("postgres"));
        let shared_pg = pg.pg_table_sums(SHARED_PG_PW, "devdb");
        std::mem::forget(pg);
        let maria = Container::adopt(&self.shared.container("mariadb"));
        let maria_sum = maria.mariadb_sql(
            MARIA_PW,
            "SELECT COUNT(*), MD5(GROUP_CONCAT(id, ':', total, ':', note ORDER BY id)) FROM legacy.orders",
        );
        std::mem::forget(maria);
        let redis = Container::adopt(&self.shop.container("redis"));
        let mut keys: Vec<String> = redis
            .redis_cli(REDIS_PW, &["--scan"])
            .lines()
            .map(|k| format!("{k}={}", redis.redis_cli(REDIS_PW, &["DUMP", k]).len()))
            .collect();
        keys.sort();
        keys.push(redis.redis_cli(REDIS_PW, &["HGET", "cart:7", "qty"]));
        std::mem::forget(redis);
        let automation = Container::adopt(&self.shop.container("automation"));
        let sqlite = automation.exec_ok(&[], &["md5sum", "/home/node/.n8n/database.sqlite"]);
        std::mem::forget(automation);
        HostState {
            drupal,
            shared_pg,
            maria: maria_sum,
            redis: keys,
            sqlite,
            files: [
                self.root.join("data"),
                self.shop.dir.clone(),
                self.shared.dir.clone(),
                self.dev.dir.clone(),
            ]
            .iter()
            .map(|d| common::tree_files(d))
            .collect(),
        }
    }
}

/// What `docker WHAT -q --filter FILTER` lists.
fn listed(what: &str, filter: &str) -> String {
    let mut args: Vec<&str> = what.split(' ').collect();
    args.extend(["-q", "--filter", filter]);
    let o = Command::new("docker").args(&args).output().unwrap();
    text(&o.stdout).trim().to_string()
}

/// What `docker WHAT -q` lists with a host drill's label.
fn labelled(what: &str) -> String {
    listed(what, "label=drctl.host-drill")
}

/// Runs drctl with `args`, and SIGKILLs it `settle` after the first container matching
/// `filter` exists: half-way through what it was doing.
fn kill_once_it_has_containers(env: &Env, args: &[&str], filter: &str, settle: Duration) {
    let mut child = env
        .cmd()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while listed("ps -a", filter).is_empty() {
        assert!(
            Instant::now() < deadline,
            "drctl {args:?} never created a container"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(settle);
    assert!(
        !common::kill_now(&mut child),
        "drctl {args:?} ended before it was killed"
    );
}

/// Every container of the host's projects: name, ID and start time.
fn live_containers(host: &Host) -> Vec<String> {
    let mut out = Vec::new();
    for p in [&host.shop, &host.shared, &host.dev] {
        let label = format!("label=com.docker.compose.project={}", p.name);
        let o = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .output()
            .unwrap();
        for id in text(&o.stdout).split_whitespace() {
            let o = Command::new("docker")
                .args([
                    "inspect",
                    "-f",
                    "{{.Name}} {{.Id}} {{.State.StartedAt}}",
                    id,
                ])
                .output()
                .unwrap();
            out.push(text(&o.stdout).trim().to_string());
        }
    }
    out.sort();
    assert_eq!(out.len(), 7, "{out:?}");
    out
}

#[test]
fn a_discovered_host_backs_up_and_comes_back_whole_from_the_repository_alone() {
    if skip() {
        return;
    }
    let env = Env::init(Kind::Local).unwrap();
    let root = env.path("hosts");
    let host = Host::up(&root);
    host.wait_ready();
    host.fill();
    let (shop_name, shared_name, dev_name) = (&host.shop.name, &host.shared.name, &host.dev.name);

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
    let dev_file =
        std::fs::read_to_string(env.path(&format!("schedules/{dev_name}.toml"))).unwrap();
    for secret in [PG_PW, REDIS_PW, MARIA_PW, SHARED_PG_PW] {
        assert!(
            !written.contains(secret) && !dev_file.contains(secret),
            "a credential was copied: {written}"
        );
    }
    assert!(
        written.contains("pause = ["),
        "the SQLite holder is not paused: {written}"
    );
    assert!(
        written.contains(&format!("path = \"{}\"", host.shop.dir.display()))
            && written.contains(&format!("[stack.{shop_name}.compose]")),
        "{written}"
    );
    // The development app joins the shared project's network: it depends on it.
    assert!(
        dev_file.contains(&format!("depends_on = [\"{shared_name}\"]")),
        "{dev_file}"
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
    assert!(
        dev_file.contains("rpo = \"1d\"") && dev_file.contains(" 3 * * *"),
        "{dev_file}"
    );
    for stack in [shop_name, shared_name, dev_name] {
        assert_ok(&env.run(&["backup", stack]));
    }
    let o = env.json(&["snapshots", shop_name]);
    let sources = o[0]["sources"].as_array().unwrap().len();
    assert_eq!(sources, 5, "{o}"); // db, redis, web, automation, compose
    let before = host.state();

    // The host dies: every container, volume, network and data directory, and drctl's
    // configuration, catalog and state. The repository and the key file are elsewhere.
    host.die(&env);

    let t0 = Instant::now();
    let o = env.run(&["recover", "--all"]);
    let took = t0.elapsed();
    assert_ok(&o);
    let summary = text(&o.stdout);
    eprintln!(
        "recover --all took {took:?}:\n{}\n{summary}",
        text(&o.stderr)
    );
    // Dependencies first: the shared databases back before the app that uses them
    // starts.
    let said = text(&o.stderr);
    let pos = |line: String| {
        said.find(&line)
            .unwrap_or_else(|| panic!("no {line:?} in: {said}"))
    };
    assert!(
        pos(format!("stack {shared_name}: volumes and databases back"))
            < pos(format!(
                "stack {dev_name}: starting the rest of the project"
            )),
        "{said}"
    );
    assert!(
        summary.contains("(RTO 1h: met)") && summary.contains("(RTO 8h: met)"),
        "{summary}"
    );
    for n in [shop_name, shared_name, dev_name] {
        assert!(
            summary.contains(&format!("stack {n}: recovered")),
            "{summary}"
        );
    }
    assert!(!summary.contains("FAILED"), "{summary}");
    assert!(summary.contains("3 stack(s) recovered in"), "{summary}");
    host.wait_ready();
    assert_eq!(host.state(), before);
    // Every service runs again, and the configuration is back as it was written.
    for (p, service) in [
        (&host.shop, "web"),
        (&host.shop, "automation"),
        (&host.dev, "app"),
    ] {
        let c = Container::adopt(&p.container(service));
        assert!(c.running(), "{service} is not running");
        std::mem::forget(c); // compose removes it
    }
    assert_eq!(std::fs::read_to_string(&shop_file).unwrap(), written);

    // The same data restored stack by stack into the running projects: what the
    // recovery's own overhead (creating, starting, waiting) is measured against.
    let mut restores = Duration::ZERO;
    for n in [shop_name, shared_name, dev_name] {
        let t = Instant::now();
        assert_ok(&env.run(&["restore", n, "--force"]));
        restores += t.elapsed();
    }
    eprintln!(
        "recover --all: {:.1}s; restore of each stack into its running project: {:.1}s in all; ratio {:.2}",
        took.as_secs_f64(),
        restores.as_secs_f64(),
        took.as_secs_f64() / restores.as_secs_f64()
    );
    host.wait_ready();
    assert_eq!(host.state(), before);

    // A host drill rehearses all that into scratch projects and touches nothing live.
    let live_before = live_containers(&host);
    // One killed half-way leaves its scratch, which the next one removes.
    kill_once_it_has_containers(
        &env,
        &["drill", "--host"],
        "label=drctl.host-drill",
        Duration::from_millis(1500),
    );
    assert!(!labelled("ps -a").is_empty());
    let junit = env.path("host-drill.xml");
    let o = env.run(&["drill", "--host", "--junit", junit.to_str().unwrap()]);
    assert_ok(&o);
    let report = text(&o.stdout);
    eprintln!("drill --host:\n{report}");
    assert!(
        text(&o.stderr).contains("whose drctl was killed"),
        "{}",
        text(&o.stderr)
    );
    assert!(report.contains("PASS"), "{report}\n{}", text(&o.stderr));
    for n in [shop_name, shared_name, dev_name] {
        assert!(report.contains(&format!("stack {n}")), "{report}");
    }
    assert_eq!(live_containers(&host), live_before);
    assert_eq!(host.state(), before);
    for what in ["ps -a", "network ls", "volume ls"] {
        assert_eq!(labelled(what), "", "docker {what}: the drill left these");
    }
    let scratch_root = env.path("host-drills");
    assert!(
        !scratch_root.exists() || std::fs::read_dir(&scratch_root).unwrap().next().is_none(),
        "the drill left its directory"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("host") && !xml.contains("<failure"), "{xml}");
    let o = env.json(&["drill", "history"]);
    assert!(o.to_string().contains("\"host\""), "{o}");

    // The host dies again, and its recovery is killed half-way: run again with --force,
    // it completes over what the first one wrote.
    host.die(&env);
    kill_once_it_has_containers(
        &env,
        &["recover", "--all"],
        &format!("label=com.docker.compose.project={shop_name}"),
        Duration::from_secs(3),
    );
    let o = env.run(&["recover", "--all", "--force"]);
    assert_ok(&o);
    assert!(
        text(&o.stdout).contains("3 stack(s) recovered in"),
        "{}",
        text(&o.stdout)
    );
    host.wait_ready();
    assert_eq!(host.state(), before);

    // Discovery on the recovered host finds the same stacks; a change is reported.
    let o = env.run(&["discover", "--write", env.dir.path().to_str().unwrap()]);
    assert_ok(&o);
    assert!(text(&o.stderr).contains("unchanged"), "{}", text(&o.stderr));
    let redis = host.shop.container("redis");
    let o = host.shop.compose(&["rm", "-s", "-f", "redis"]);
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

#[test]
fn without_compose_recover_restores_the_project_files_and_prints_the_commands_that_finish() {
    if skip() {
        return;
    }
    let env = Env::init(Kind::Local).unwrap();
    let proj = env.path("srv/shop");
    let data = env.path("data/shop");
    for d in [&proj, &data] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(proj.join("docker-compose.yml"), "services: {}\n").unwrap();
    std::fs::write(proj.join(".env"), "TAG=1\n").unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/shop.toml"),
        format!(
            "[stack.shop]\nrto = \"1h\"\n[stack.shop.compose]\nproject = \"shop-x\"\ndir = \"{}\"\nfiles = [\"{}/docker-compose.yml\"]\n\
             [[stack.shop.source]]\nname = \"compose\"\nkind = \"volume\"\npath = \"{}\"\n\
             [[stack.shop.source]]\nname = \"data\"\nkind = \"volume\"\npath = \"{}\"\n",
            proj.display(),
            proj.display(),
            proj.display(),
            data.display()
        ),
    )
    .unwrap();
    assert_ok(&env.run(&["backup", "shop"]));
    let files = common::tree_files(&proj);
    for d in [&proj, &data, &env.path("schedules")] {
        std::fs::remove_dir_all(d).unwrap();
    }
    // A host with neither docker-compose nor the docker CLI on its PATH.
    let empty = tempfile::tempdir().unwrap();
    let o = env
        .cmd()
        .env("PATH", empty.path())
        .args(["recover", "--all"])
        .output()
        .unwrap();
    common::assert_fails(&o, 1, "1 of 1 stack(s) did not fully recover: shop");
    let summary = text(&o.stdout);
    let p = proj.display();
    for needle in [
        "problem: neither docker-compose nor `docker compose` is installed".to_string(),
        "to finish it, run:".to_string(),
        format!("cd {p} && docker compose -p shop-x -f {p}/docker-compose.yml up --no-start"),
        "drctl restore shop --source data".to_string(),
        format!("cd {p} && docker compose -p shop-x -f {p}/docker-compose.yml up -d"),
    ] {
        assert!(
            summary.contains(&needle),
            "{needle:?} missing from {summary}"
        );
    }
    // The project files are back; the rest waits for the commands.
    assert_eq!(common::tree_files(&proj), files);
    assert!(!data.exists());
}
