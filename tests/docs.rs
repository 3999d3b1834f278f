//! The committed completions and man pages match the clap definitions.
//! Regenerate with `DRCTL_UPDATE_DOCS=1 cargo test --test docs`.

use std::path::Path;

fn check(dir: &str, files: Vec<(String, Vec<u8>)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    if std::env::var("DRCTL_UPDATE_DOCS").as_deref() == Ok("1") {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in &files {
            std::fs::write(dir.join(name), data).unwrap();
        }
    }
    let mut stale = Vec::new();
    for (name, data) in &files {
        if std::fs::read(dir.join(name)).ok().as_ref() != Some(data) {
            stale.push(name.clone());
        }
    }
    let expected: std::collections::BTreeSet<_> = files.iter().map(|(n, _)| n.clone()).collect();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !expected.contains(&n) {
            stale.push(format!("{n} (no longer generated)"));
        }
    }
    assert!(
        stale.is_empty(),
        "{} is stale: {stale:?}; run DRCTL_UPDATE_DOCS=1 cargo test --test docs",
        dir.display()
    );
}

#[test]
fn completions_are_current() {
    check("completions", drctl::cli::docs::completions());
}

#[test]
fn man_pages_are_current() {
    check("man", drctl::cli::docs::man_pages());
}
