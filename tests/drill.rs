//! Restore drills through the real binary against real containers: a full stack drilled
//! to PASS without touching the stack, then the same backup failing on RTO, on checks
//! that cannot hold or do not run, and a JUnit file a parser reads.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::docker::{self, skip, Container};
use common::{assert_fails, assert_ok, text, unique, Env, Kind};

/// Everything that identifies a container's life: ID and start time.
fn identity(c: &Container) -> String {
    let o = Command::new("docker")
        .args(["inspect", "-f", "{{.Id}} {{.State.StartedAt}}", &c.name])
        .output()
        .unwrap();
    text(&o.stdout).trim().to_string()
}

/// What carries the drill label: containers and networks.
fn labelled() -> String {
    let mut out = String::new();
    for what in [
        &["ps", "-a", "-q", "--filter", "label=io.drctl.drill"][..],
        &["network", "ls", "-q", "--filter", "label=io.drctl.drill"][..],
    ] {
        let o = Command::new("docker").args(what).output().unwrap();
        out.push_str(text(&o.stdout).trim());
    }
    out
}

fn tree_sums(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let data = std::fs::read(e.path()).unwrap();
                let sum = data
                    .iter()
                    .fold(0u64, |a, b| a.wrapping_mul(31).wrapping_add(*b as u64));
                out.insert(e.path().display().to_string(), sum);
            }
        }
    }
    out
}

/// The stack's own state, which a drill must leave exactly as it was.
fn stack_state(pg: &Container, maria: &Container, cache: &Container, files: &Path) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{:?}",
        identity(pg),
        identity(maria),
        identity(cache),
        pg.psql(
            "pg-pw",
            "shop",
            "SELECT count(*) || ' ' || sum(abalance) || ' ' || sum(hashtext(filler)::bigint) FROM pgbench_accounts"
        ),
        maria.mariadb_sql("maria-pw", "CHECKSUM TABLE crm.contacts"),
        cache.redis_cli("redis-pw", &["DBSIZE"]),
        cache.redis_cli("redis-pw", &["GET", "session:1"]),
        tree_sums(files)
    )
}

#[test]
fn a_full_stack_drill_passes_untouched_then_fails_on_rto_and_bad_checks() {
    if skip() {
        return;
    }
    // The stack: PostgreSQL with a million rows, MariaDB, Redis and a volume.
    let pg = docker::postgres(&unique("drctl-t-dpg"), "pg-pw");
    pg.psql("pg-pw", "postgres", "CREATE DATABASE shop");
    pg.exec_ok(
        &[("PGPASSWORD", "pg-pw")],
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
    let maria = docker::mariadb(&unique("drctl-t-dmaria"), "maria-pw");
    maria.mariadb_sql(
        "maria-pw",
        "CREATE DATABASE crm; CREATE TABLE crm.contacts (id INT PRIMARY KEY, name TEXT); \
         INSERT INTO crm.contacts VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')",
    );
    let cache = docker::redis(&unique("drctl-t-dredis"), "redis-pw");
    cache.redis_cli("redis-pw", &["SET", "session:1", "alive"]);
    let env = Env::init(Kind::Local).unwrap();
    let files = env.path("files");
    std::fs::create_dir_all(files.join("uploads")).unwrap();
    for i in 0..12 {
        std::fs::write(files.join(format!("uploads/{i}.jpg")), format!("image {i}")).unwrap();
    }
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/shop.toml"),
        format!(
            "[stack.shop]\nrpo = \"1h\"\nrto = \"30m\"\n\
             [[stack.shop.source]]\nname = \"db\"\nkind = \"postgres\"\ncontainer = \"{}\"\ndatabases = [\"shop\"]\n\
             [[stack.shop.source]]\nname = \"crm\"\nkind = \"mysql\"\ncontainer = \"{}\"\ndatabases = [\"crm\"]\n\
             [[stack.shop.source]]\nname = \"cache\"\nkind = \"redis\"\ncontainer = \"{}\"\n\
             [[stack.shop.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\nstop = [\"{}\"]\n",
            pg.name,
            maria.name,
            cache.name,
            files.display(),
            cache.name
        ),
    )
    .unwrap();
    assert_ok(&env.run(&["backup", "shop"]));

    let checks = "\
        [[drill.shop.check]]\nsource = \"db\"\nsql = \"SELECT count(*) FROM pgbench_accounts\"\nexpect = \">= 1000000\"\n\
        [[drill.shop.check]]\nsource = \"crm\"\nsql = \"SELECT name FROM contacts WHERE id = 2\"\nexpect = \"bob\"\n\
        [[drill.shop.check]]\nsource = \"cache\"\nredis_keys = \">= 1\"\n\
        [[drill.shop.check]]\nsource = \"files\"\npath = \"uploads\"\nmin_files = 12\n";
    let drills = env.path("restore-drills");
    std::fs::create_dir_all(&drills).unwrap();
    std::fs::write(
        drills.join("shop.toml"),
        format!("[drill.shop]\nstack = \"shop\"\n{checks}"),
    )
    .unwrap();
    assert_ok(&env.run(&["config", "check"]));

    // 1. PASS, every phase timed and every check evaluated, the stack untouched, nothing left.
    let before = stack_state(&pg, &maria, &cache, &files);
    let junit = env.path("drill.xml");
    let o = env.run(&[
        "--json",
        "drill",
        "shop",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_ok(&o);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &r[0];
    assert_eq!(r["verdict"], "PASS", "{r:#}");
    let phases: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "start scratch servers",
            "fetch and decrypt",
            "database load",
            "volume write",
            "checks"
        ]
    );
    let seconds = |i: usize| r["phases"][i]["seconds"].as_f64().unwrap();
    assert!((0..5).all(|i| seconds(i) > 0.0), "{r:#}");
    // Fetching and decrypting streams into the load and the write: it overlaps them.
    assert_eq!(r["phases"][1]["concurrent"], true, "{r:#}");
    assert!(seconds(1) <= seconds(2) + seconds(3), "{r:#}");
    let checks_out = r["checks"].as_array().unwrap();
    assert_eq!(checks_out.len(), 4);
    assert!(checks_out.iter().all(|c| c["passed"] == true), "{r:#}");
    assert_eq!(checks_out[0]["value"], "1000000");
    assert_eq!(checks_out[3]["value"], "12 file(s)");
    let rto = r["rto_secs"].as_f64().unwrap();
    assert!(rto > 0.0 && rto <= 1800.0, "{rto}");
    assert_eq!(stack_state(&pg, &maria, &cache, &files), before);
    assert_eq!(labelled(), "", "scratch containers or networks left");
    let scratch = env.path("drill-scratch");
    assert!(
        !scratch.exists() || std::fs::read_dir(&scratch).unwrap().next().is_none(),
        "scratch directories left"
    );
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); \
             print(r.get('tests'), r.get('failures'), len(r.findall('.//testcase')))",
            junit.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        text(&parsed.stdout).trim(),
        "6 0 6",
        "{}",
        text(&parsed.stderr)
    );

    // 2. The same drill with an RTO below the measured time: FAIL, exit 1, the RTO named.
    std::fs::write(
        drills.join("shop.toml"),
        format!("[drill.shop]\nstack = \"shop\"\nrto = \"1s\"\n{checks}"),
    )
    .unwrap();
    let o = env.run(&["drill", "shop"]);
    assert_fails(&o, 1, "drill FAIL: shop");
    assert!(
        text(&o.stdout).contains("RTO missed"),
        "{}",
        text(&o.stdout)
    );

    // 3. A check that cannot hold and one whose SQL errors: FAIL, naming each, with the
    // database's own error.
    std::fs::write(
        drills.join("shop.toml"),
        "[drill.shop]\nstack = \"shop\"\n\
         [[drill.shop.check]]\nsource = \"db\"\nsql = \"SELECT count(*) FROM pgbench_accounts\"\nexpect = \">= 10000000\"\n\
         [[drill.shop.check]]\nsource = \"db\"\nsql = \"SELECT count(*) FROM no_such_table\"\nexpect = \">= 1\"\n",
    )
    .unwrap();
    let junit = env.path("fail.xml");
    let o = env.run(&["drill", "shop", "--junit", junit.to_str().unwrap()]);
    assert_fails(&o, 1, "drill FAIL: shop");
    let out = text(&o.stdout);
    assert!(
        out.contains(
            "check failed: db: SELECT count(*) FROM pgbench_accounts >= 10000000: found 1000000"
        ),
        "{out}"
    );
    assert!(
        out.contains("check failed: db: SELECT count(*) FROM no_such_table >= 1")
            && out.contains("relation \"no_such_table\" does not exist"),
        "{out}"
    );
    let parsed = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); \
             print(r.get('tests'), r.get('failures'), [c.get('name') for c in r.iter('testcase') if c.find('failure') is not None])",
            junit.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        text(&parsed.stdout).trim(),
        "4 2 ['db: SELECT count(*) FROM pgbench_accounts >= 10000000', 'db: SELECT count(*) FROM no_such_table >= 1']",
        "{}",
        text(&parsed.stderr)
    );
    assert_eq!(stack_state(&pg, &maria, &cache, &files), before);
    assert_eq!(labelled(), "", "scratch containers or networks left");

    // History, status and metrics show the drills, from the repository even with the
    // catalog gone (the host lost).
    std::fs::remove_file(env.path("catalog.db")).unwrap();
    let h = env.json(&["drill", "history"]);
    let verdicts: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["PASS", "FAIL", "FAIL"]);
    assert_eq!(h[1]["rto_target_secs"], 1.0);
    let metrics = env.path("drctl.prom");
    let st = env.json(&["--metrics-file", metrics.to_str().unwrap(), "status"]);
    assert_eq!(st["stacks"][0]["last_drill"]["verdict"], "FAIL", "{st:#}");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.contains("drctl_drill_last_pass{stack=\"shop\",drill=\"shop\"} 0"),
        "{prom}"
    );

    // The HTML report is self-contained and its chart renders in a real browser.
    let html = env.path("report.html");
    assert_ok(&env.run(&["drill", "report", "--html", html.to_str().unwrap()]));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("RTO target"));
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("src="),
        "the page loads nothing from elsewhere"
    );
    let shot = env.path("report.png");
    let o = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1000,900",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", html.display()),
        ])
        .output()
        .expect("chromium (Debian package chromium) is installed");
    assert!(shot.exists(), "no screenshot: {}", text(&o.stderr));
    let (rto, target) = (
        color_pixels(&shot, drctl::drill::report::RTO_LINE),
        color_pixels(&shot, drctl::drill::report::TARGET_LINE),
    );
    assert!(
        rto > 300 && target > 300,
        "the chart's lines are not in the screenshot: {rto} RTO-line and {target} target-line pixels"
    );
}

/// Pixels of a PNG within a small distance of a `#rrggbb` colour.
fn color_pixels(png_path: &Path, hex: &str) -> usize {
    let want: Vec<i32> = (0..3)
        .map(|i| i32::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap())
        .collect();
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| (0..3).all(|i| (p[i] as i32 - want[i]).abs() <= 24))
        .count()
}

/// Interrupted and killed drills leave nothing behind; a damaged pack and a stale point
/// fail the drill with the cause named.
#[test]
fn killed_damaged_and_stale_drills_fail_cleanly() {
    if skip() {
        return;
    }
    let pg = docker::postgres(&unique("drctl-t-dpg2"), "pg-pw");
    pg.psql(
        "pg-pw",
        "postgres",
        "CREATE TABLE orders AS SELECT g AS id, now() AS created FROM generate_series(1, 1000) g",
    );
    let env = Env::init(Kind::Local).unwrap();
    let files = env.path("files");
    std::fs::create_dir_all(&files).unwrap();
    // Large enough that the drill is still writing it when killed.
    std::fs::write(files.join("big.bin"), common::random_bytes(200 << 20, 5)).unwrap();
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/shop.toml"),
        format!(
            "[stack.shop]\nrpo = \"1h\"\nschedule = \"*/5 * * * *\"\n\
             [[stack.shop.source]]\nname = \"db\"\nkind = \"postgres\"\ncontainer = \"{}\"\ndatabases = [\"postgres\"]\n\
             [[stack.shop.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\n",
            pg.name,
            files.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(env.path("restore-drills")).unwrap();
    std::fs::write(
        env.path("restore-drills/shop.toml"),
        "[drill.shop]\nstack = \"shop\"\n\
         [[drill.shop.check]]\nsource = \"db\"\nsql = \"SELECT max(created) FROM orders\"\nfresher_than = \"1h\"\n\
         [[drill.shop.check]]\nsource = \"files\"\npath = \"big.bin\"\n",
    )
    .unwrap();
    assert_ok(&env.run(&["backup", "shop"]));
    let scratch = env.path("drill-scratch");
    let scratch_empty =
        || !scratch.exists() || std::fs::read_dir(&scratch).unwrap().next().is_none();

    // 6. SIGKILL mid-drill (a scratch server exists), then any command: all of it is gone.
    // SIGINT mid-drill: exit 130, and the drill itself cleans up.
    for (signal, code) in [(libc::SIGKILL, None), (libc::SIGINT, Some(130))] {
        let mut child = env.cmd().args(["drill", "shop"]).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        // A scratch container exists (not only the network, made first: a kill during
        // the container's create could leave one the daemon finishes after the sweep).
        let container = || {
            let o = Command::new("docker")
                .args(["ps", "-q", "--filter", "label=io.drctl.drill"])
                .output()
                .unwrap();
            !text(&o.stdout).trim().is_empty()
        };
        while !container() || scratch_empty() {
            assert!(child.try_wait().unwrap().is_none(), "the drill ended first");
            assert!(
                std::time::Instant::now() < deadline,
                "no scratch resource seen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), code, "after signal {signal}");
        if signal == libc::SIGKILL {
            assert!(!labelled().is_empty(), "a killed drill cannot clean up");
            let o = env.run(&["snapshots"]);
            assert_ok(&o);
            assert!(
                text(&o.stderr).contains("left by a killed drill"),
                "{}",
                text(&o.stderr)
            );
        }
        assert_eq!(labelled(), "", "after signal {signal}");
        assert!(scratch_empty(), "after signal {signal}");
    }

    // A container the daemon finished creating after its drctl was killed and swept (no
    // run directory names it any more) goes at the next drill.
    let stray = unique("drctl-drill-stray");
    let o = Command::new("docker")
        .args([
            "create",
            "--name",
            &stray,
            "--label",
            "io.drctl.drill=20000101T000000-dead",
        ])
        .arg(docker::image())
        .arg("true")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!labelled().is_empty());

    // 5. Backups stopped for longer than the RPO: the restore works, the drill fails on RPO.
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let o = env
        .cmd()
        .env("DRCTL_NOW", &later)
        .args(["--json", "drill", "shop"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!(
            "removed container {stray}, left by a killed drill"
        )),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(labelled(), "", "the stray container is gone");
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &r[0];
    assert!(
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["passed"] == true),
        "{r:#}"
    );
    assert!(
        r["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["error"].is_null()),
        "{r:#}"
    );
    let reasons = r["reasons"].to_string();
    assert!(
        reasons.contains("RPO missed")
            && reasons.contains("at its newest scheduled backup")
            && r["reasons"].as_array().unwrap().len() == 1,
        "{reasons}"
    );
    // Judged against the newest */5 slot two hours on: at least 1h55m behind it.
    assert!(
        r["point_age_secs"].as_f64().unwrap() > 6900.0 - 60.0,
        "{r:#}"
    );

    // 4. A damaged pack: FAIL, naming the pack and the source; nothing left behind.
    let packs: Vec<(String, u64)> = env
        .objects()
        .into_iter()
        .filter(|(k, _)| k.starts_with("data/"))
        .collect();
    let (key, _) = packs.iter().max_by_key(|(_, s)| *s).unwrap().clone();
    let pack_short = key.rsplit('/').next().unwrap()[..8].to_string();
    let mut bytes = env.get(&key);
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    env.put(&key, bytes);
    let o = env.run(&["drill", "shop"]);
    assert_fails(&o, 1, "drill FAIL: shop");
    let out = text(&o.stdout);
    assert!(
        out.contains("reason: files: restore failed") && out.contains(&pack_short),
        "{out}"
    );
    assert_eq!(labelled(), "");
    assert!(scratch_empty());
}
