//! Stack configuration: the shipped files parse, and `drctl config check` reports errors
//! with file, line and column.

mod common;

use common::{assert_fails, assert_ok, text};

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
    for expected in [
        "seller1-prod",
        "shared-postgres",
        "shared-mariadb",
        "proxy",
        "git",
        "objects",
        "seller1-dev",
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
    assert!(files >= 4);
    // Through the binary, with the project directory standing in for /etc/drctl.
    let etc = tempfile::tempdir().unwrap();
    std::fs::write(
        etc.path().join("drctl.toml"),
        "[repository]\nurl = \"file:///srv/backup\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&dir, etc.path().join("schedules")).unwrap();
    let drills_dir = dir.with_file_name("restore-drills");
    let drills = drctl::drill::config::load_drills(&drills_dir, &stacks).unwrap();
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
