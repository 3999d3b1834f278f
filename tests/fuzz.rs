//! Hostile input, generated: mutations of the shipped configuration and of command lines.
//! Whatever comes in, drctl never panics; a configuration it rejects is an exit 2 whose
//! `error:` line names a place (`file:line:column`) that exists in one of the files.
//!
//! Deterministic: the seed is `DRCTL_FUZZ_SEED` (a fixed default), printed with every
//! failure together with the mutated input, so that a failure can be replayed.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_ok, text, Env, Kind};

/// xorshift64*: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn seed() -> u64 {
    std::env::var("DRCTL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_203)
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped files, as (path relative to the configuration directory, contents).
fn shipped() -> Vec<(String, Vec<u8>)> {
    let mut files = vec![(
        "drctl.toml".to_string(),
        b"[repository]\nurl = \"s3://backups/server1\"\nendpoint = \"http://127.0.0.1:3900\"\nregion = \"garage\"\npath_style = true\nkey_file = \"/etc/drctl/drctl.key\"\n".to_vec(),
    )];
    for dir in ["schedules", "restore-drills"] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(manifest_dir().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        names.sort();
        for p in names {
            let rel = format!("{dir}/{}", p.file_name().unwrap().to_str().unwrap());
            files.push((rel, std::fs::read(&p).unwrap()));
        }
    }
    files
}

/// Values that have broken parsers before, or that a validator must reject.
const HOSTILE_VALUES: &[&str] = &[
    "\"99999999999999h\"",
    "\"9223372036854775807s\"",
    "\"99999999999 days\"",
    "\"0s\"",
    "\"-5m\"",
    "\"\"",
    "\" \"",
    "\"0 0 30 2 *\"",
    "\"* * *\"",
    "\"61 * * * *\"",
    "\"0 0 0 1 1 * 2020\"",
    "\"/etc/shadow\"",
    "\"../../etc/passwd\"",
    "\"a/../../b\"",
    "\"[z-a]\"",
    "\"a/{b\"",
    "\"not a url\"",
    "\"ftp://host/x\"",
    "\"Mars/Base\"",
    "\"\\u0000\"",
    "\"caf\\u00e9\"",
    "\"oracle\"",
    "\"pre\"",
    "18446744073709551616",
    "-1",
    "0",
    "1e400",
    "nan",
    "true",
    "[]",
    "[\"x\", 1]",
    "{}",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "\"\"\"multi\nline\"\"\"",
];

/// Values aimed at what a key holds.
fn typed_values(key: &str) -> &'static [&'static str] {
    match key {
        "rpo" | "rto" | "within" | "timeout" | "fresher_than" => &[
            "\"99999999999999h\"",
            "\"9223372036854775807s\"",
            "\"2562047788015216w\"",
            "\"99999999999999999999d\"",
            "\"36526d\"",
            "\"0s\"",
            "\"0m\"",
            "\"-1h\"",
            "\"1.5h\"",
            "\"15\"",
            "\"m\"",
        ],
        "schedule" => &[
            "\"0 0 30 2 *\"",
            "\"0 0 31 4 *\"",
            "\"0 0 29 2 1\"",
            "\"0 0 0 1 1 * 2020\"",
            "\"* * *\"",
            "\"60 * * * *\"",
            "\"0 0 * * 8\"",
            "\"*/0 * * * *\"",
            "\"0 0 1-0 * *\"",
            "\"@reboot\"",
            "\"0 0 29 2 *\"",
        ],
        "path" => &[
            "\"/etc/shadow\"",
            "\"../../etc\"",
            "\"a/../../b\"",
            "\"..\"",
            "\"\"",
            "\"rel/dir\"",
            "\"a\\u0000b\"",
            "\"//\"",
        ],
        "exclude" => &["[\"[z-a]\"]", "[\"a/{b\"]", "[\"***\"]", "[\"\"]", "[1]"],
        "timezone" => &["\"Mars/Base\"", "\"\"", "\"UTC+25\"", "\"utc\""],
        "url" | "endpoint" | "webhook" | "healthchecks" => &[
            "\"not a url\"",
            "\"http://\"",
            "\"ftp://h/x\"",
            "\"127.0.0.1:3900\"",
            "\"s3://\"",
            "\"file://\"",
        ],
        "name" | "stack" | "source" => &[
            "\"../../etc\"",
            "\"\"",
            "\"a b\"",
            "\"x/y\"",
            "\".\"",
            "\"db\"",
            "\"files\"",
            "\"seller1-prod\"",
        ],
        "kind" => &["\"oracle\"", "\"volume\"", "\"redis\"", "\"Postgres\""],
        _ => &["-1", "18446744073709551616", "0", "\"\"", "[]", "\"x\""],
    }
}

const INSERTED_BYTES: &[u8] = &[
    b'"', b'[', b']', b'=', b'\n', b'#', b'.', b' ', b'\'', b'{', b'\\', 0x00, 0x7f, 0xff, 0xc3,
    0xe9, 0x80, 0xed,
];

const UNKNOWN_LINES: &[&str] = &[
    "colour = \"red\"\n",
    "[repositry]\n",
    "[stack.x.kep]\nlast = 1\n",
    "[[drill.seller1-prod.chek]]\nsource = \"db\"\n",
    "stack.extra.rpo = \"15m\"\n",
    "[stack.seller1-prod]\n",
    "[drill.seller1-prod]\nstack = \"seller1-prod\"\n",
];

/// Where in `b` each line starts and ends (without its newline).
fn lines(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in b.iter().enumerate() {
        if *c == b'\n' {
            out.push((start, i));
            start = i + 1;
        }
    }
    if start < b.len() {
        out.push((start, b.len()));
    }
    out
}

/// One random change to a file's bytes; returns what it did, for the failure report.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>) -> String {
    let ls = lines(b);
    if ls.is_empty() {
        b.extend_from_slice(rng.pick(UNKNOWN_LINES).as_bytes());
        return "appended a line to an empty file".into();
    }
    let (s, e) = *rng.pick(&ls);
    match rng.below(11) {
        0 => {
            b.drain(s..(e + 1).min(b.len()));
            format!("deleted line at byte {s}")
        }
        1 => {
            let line: Vec<u8> = b[s..e].to_vec();
            b.splice(s..s, line.iter().copied().chain([b'\n']));
            format!("duplicated line at byte {s}")
        }
        2..=4 => {
            // Replace the value of a `key = value` line, mostly with one that is hostile
            // to what that key holds.
            match b[s..e].iter().position(|c| *c == b'=') {
                Some(eq) => {
                    let key = String::from_utf8_lossy(&b[s..s + eq]).trim().to_string();
                    let v = if rng.below(3) > 0 {
                        rng.pick(typed_values(&key))
                    } else {
                        rng.pick(HOSTILE_VALUES)
                    };
                    let end = b[s..e]
                        .iter()
                        .rposition(|c| *c == b'#')
                        .filter(|h| *h > eq)
                        .map_or(e, |h| s + h);
                    b.splice(s + eq + 1..end, format!(" {v} ").into_bytes());
                    format!("value of {key} at byte {s} -> {v}")
                }
                None => {
                    b.splice(s..s, rng.pick(UNKNOWN_LINES).bytes());
                    format!("inserted a line at byte {s}")
                }
            }
        }
        5 => {
            // Misspell a key or a table name: drop, double or change one of its letters.
            let letters: Vec<usize> = (s..e).filter(|i| b[*i].is_ascii_lowercase()).collect();
            if letters.is_empty() {
                return "no letter to misspell".into();
            }
            let i = *rng.pick(&letters);
            match rng.below(3) {
                0 => {
                    b.remove(i);
                }
                1 => b.insert(i, b[i]),
                _ => b[i] = b'a' + (b[i] - b'a' + 1 + rng.below(24) as u8) % 26,
            }
            format!("misspelt at byte {i}")
        }
        6 => {
            let i = rng.below(b.len() + 1);
            let c = *rng.pick(INSERTED_BYTES);
            b.insert(i, c);
            format!("inserted byte {c:#04x} at {i}")
        }
        7 => {
            let i = rng.below(b.len());
            b.truncate(i);
            format!("truncated at byte {i}")
        }
        8 => {
            b.splice(s..s, rng.pick(UNKNOWN_LINES).bytes());
            format!("inserted a line at byte {s}")
        }
        9 => {
            let (s2, e2) = *rng.pick(&ls);
            if s2 == s {
                return "swapped a line with itself".into();
            }
            let (a, b2) = if s < s2 {
                ((s, e), (s2, e2))
            } else {
                ((s2, e2), (s, e))
            };
            let first = b[a.0..a.1].to_vec();
            let second = b[b2.0..b2.1].to_vec();
            b.splice(b2.0..b2.1, first);
            b.splice(a.0..a.1, second);
            format!("swapped lines at bytes {} and {}", a.0, b2.0)
        }
        _ => {
            // Make a number huge, negative or fractional.
            match (s..e).find(|i| b[*i].is_ascii_digit()) {
                Some(i) => {
                    let v = *rng.pick(&["99999999999999999999", "-7", "0", "4294967296", "1.5"]);
                    b.splice(i..i + 1, v.bytes());
                    format!("number at byte {i} -> {v}")
                }
                None => "no number to change".into(),
            }
        }
    }
}

/// Runs drctl with nothing of the caller's environment, killing it if it hangs.
fn drctl(args: &[OsString], envs: &[(&str, &Path)], cwd: &Path) -> (Output, Duration) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DRCTL_") {
            c.env_remove(k);
        }
    }
    for (k, v) in envs {
        c.env(k, v);
    }
    c.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = c.spawn().unwrap();
    // Output is small; reading it in threads keeps a full pipe from blocking the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).ok();
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).ok();
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("drctl {args:?} hung for 60 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let out = Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    };
    (out, t.elapsed())
}

fn crashed(o: &Output) -> bool {
    o.status.code().is_none_or(|c| c == 101 || c >= 128) || text(&o.stderr).contains("panicked")
}

/// The places `FILE:LINE:COLUMN` that an error line names under `dir`, checked against
/// the files: the line exists, and the column is at most one past its end.
fn places_in(err: &str, dir: &Path) -> Vec<Result<String, String>> {
    let prefix = format!("{}/", dir.display());
    let mut found = Vec::new();
    let mut rest = err;
    while let Some(i) = rest.find(&prefix) {
        rest = &rest[i + prefix.len()..];
        let end = rest.find(": ").unwrap_or(rest.len());
        let mut parts = rest[..end].rsplitn(3, ':');
        let (col, line, file) = (parts.next(), parts.next(), parts.next());
        let (Some(col), Some(line), Some(file)) = (col, line, file) else {
            found.push(Err(format!("no line:column after {}", &rest[..end])));
            continue;
        };
        let (Ok(line), Ok(col)) = (line.parse::<usize>(), col.parse::<usize>()) else {
            found.push(Err(format!("no line:column in {}", &rest[..end])));
            continue;
        };
        let Ok(bytes) = std::fs::read(dir.join(file)) else {
            found.push(Err(format!("{file} is not a file there")));
            continue;
        };
        let content = String::from_utf8_lossy(&bytes);
        let file_lines: Vec<&str> = content.split('\n').collect();
        let ok = line >= 1
            && col >= 1
            && file_lines
                .get(line - 1)
                .is_some_and(|l| col <= l.chars().count() + 1);
        found.push(if ok {
            Ok(format!("{file}:{line}:{col}"))
        } else {
            Err(format!("{file}:{line}:{col} is not in the file"))
        });
    }
    found
}

#[test]
fn mutated_shipped_configuration_is_accepted_or_rejected_with_a_place() {
    let seed = seed();
    let mut rng = Rng::new(seed);
    let files = shipped();
    assert!(files.len() >= 6, "{} shipped files", files.len());
    let work = tempfile::tempdir().unwrap();
    let rounds = 240;
    let (mut accepted, mut rejected) = (0, 0);
    let t = Instant::now();
    for round in 0..rounds {
        let etc = work.path().join(format!("etc-{round}"));
        for (rel, body) in &files {
            let p = etc.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, body).unwrap();
        }
        let (rel, body) = rng.pick(&files).clone();
        let mut bytes = body.clone();
        let mut did = Vec::new();
        for _ in 0..1 + rng.below(3) {
            did.push(mutate(&mut rng, &mut bytes));
        }
        // Now and then the mutated file is a second copy: every name defined twice.
        let target = if rel != "drctl.toml" && rng.below(12) == 0 {
            did.push("kept the original and added the mutant as a copy".into());
            rel.replace(".toml", "-copy.toml")
        } else {
            rel.clone()
        };
        std::fs::write(etc.join(&target), &bytes).unwrap();
        let xdg = work.path().join("xdg");
        let (o, _) = drctl(
            &["config".into(), "check".into()],
            &[
                ("DRCTL_CONFIG", &etc.join("drctl.toml")),
                ("XDG_DATA_HOME", &xdg),
            ],
            work.path(),
        );
        let err = text(&o.stderr);
        let report = || {
            format!(
                "seed {seed}, round {round}: {target} ({}):\n---\n{}\n---\nrc {:?}, stderr: {err}",
                did.join("; "),
                String::from_utf8_lossy(&bytes),
                o.status.code()
            )
        };
        assert!(!crashed(&o), "drctl crashed: {}", report());
        match o.status.code() {
            Some(0) => accepted += 1,
            Some(2) => {
                rejected += 1;
                let line = err.lines().next().unwrap_or("");
                assert!(line.starts_with("error: "), "no error: line: {}", report());
                let places = places_in(line, &etc);
                assert!(
                    !places.is_empty() && places.iter().all(|p| p.is_ok()),
                    "a rejected file must be named with file:line:column ({places:?}): {}",
                    report()
                );
            }
            _ => panic!("config check exits 0 or 2: {}", report()),
        }
        std::fs::remove_dir_all(&etc).unwrap();
    }
    eprintln!(
        "{rounds} mutations (seed {seed}): {accepted} accepted, {rejected} rejected, {:.1}s",
        t.elapsed().as_secs_f64()
    );
    // Most mutations break something; some are harmless (a deleted comment).
    assert!(
        rejected > rounds / 2 && accepted > 0,
        "{accepted} accepted, {rejected} rejected"
    );
}

/// Flags and values to put into command lines.
const HOSTILE_TIMES: &[&str] = &[
    "2h ago",
    "36525d ago",
    "99999999999 days ago",
    "9223372036854775807s ago",
    "99999999999999999999h ago",
    "36526d ago",
    "-1h ago",
    "ago",
    "1 ago",
    "",
    " ",
    "now",
    "0000-00-00",
    "2026-13-45 25:61",
    "+275760-09-13T00:00:00Z",
    "99999-01-01",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "1969-12-31",
];
const HOSTILE_DURATIONS: &[&str] = &[
    "24h",
    "1w",
    "99999999999999h",
    "9223372036854775807s",
    "18446744073709551616s",
    "2562047788015216w",
    "0s",
    "-1h",
    "1e9h",
    "",
    "h",
    "24",
    "1.5h",
];
const HOSTILE_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "101",
    "65",
    "999999999999",
    "abc",
    "",
    "NaN",
    "inf",
    "1e-300",
    "-0",
    "50%",
];
const GLOBAL_INSERTS: &[&[&str]] = &[
    &["--path-style"],
    &["--path-style=false"],
    &["--path-style=maybe"],
    &["--endpoint", "not a url"],
    &["--endpoint", "http://"],
    &["--endpoint=http://127.0.0.1:1"],
    &["--json"],
    &["-q"],
    &["-v"],
    &["--now", "99999999999 days ago"],
    &["--now", "9999-12-31T23:59:59Z"],
    &["--now", "0001-01-01T00:00:00Z"],
    &["--region", ""],
    &["--at"],
    &["--grace"],
    &["--"],
    &["-"],
];

#[test]
fn mutated_command_lines_never_panic() {
    let seed = seed();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let env = Env::init(Kind::Local).unwrap();
    let data = env.path("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.txt"), "a").unwrap();
    std::fs::write(data.join("sub/b.txt"), "b").unwrap();
    std::fs::create_dir_all(env.path("schedules")).unwrap();
    std::fs::write(
        env.path("schedules/s.toml"),
        format!(
            "[stack.web]\nschedule = \"0 * * * *\"\nrpo = \"1h\"\n[[stack.web.source]]\nname = \"files\"\nkind = \"volume\"\npath = \"{}\"\n[stack.web.keep]\nlast = 3\n",
            data.display()
        ),
    )
    .unwrap();
    assert_ok(&env.run(&["backup", "web"]));
    let to = env.path("restored");
    let to = to.to_str().unwrap();
    let datas = data.to_str().unwrap();
    // Base command lines: each reads, or writes only inside the test's directory. Nothing
    // here installs schedules, runs a daemon or writes key files elsewhere.
    let bases: Vec<Vec<&str>> = vec![
        vec!["restore", "web", "--at", "2h ago", "--to", to],
        vec!["restore", "web", "--dry-run", "--at", "now"],
        vec!["restore", "latest", "--to", to, "--path", "sub"],
        vec!["prune", "--dry-run", "--grace", "24h"],
        vec!["prune", "--dry-run", "--repack-threshold", "25"],
        vec!["forget", "--dry-run", "web"],
        vec!["snapshots", "web"],
        vec!["ls", "latest", "sub"],
        vec!["dump", "latest", "a.txt"],
        vec!["check", "--read-data=50"],
        vec!["status", "--check"],
        vec!["schedule", "list"],
        vec!["config", "check"],
        vec!["drill", "--at", "1h ago", "--all"],
        vec!["drill", "history", "web"],
        vec!["init", "--compression", "3"],
        vec!["backup", "--stack", "adhoc", datas],
        vec!["run", "web", "--source", "files"],
        vec!["catalog", "rebuild"],
    ];
    let rounds = 220;
    let mut codes = std::collections::BTreeMap::new();
    let t = Instant::now();
    let mut slowest = (Duration::ZERO, String::new());
    for round in 0..rounds {
        let base = rng.pick(&bases);
        let mut args: Vec<OsString> = base.iter().map(OsString::from).collect();
        for _ in 0..1 + rng.below(3) {
            let n = args.len();
            // Mostly values, so that most command lines get past the parser into drctl.
            match rng.below(10) {
                0..=4 => {
                    // A value after a flag that takes one.
                    let takes_value: Vec<usize> = (1..n)
                        .filter(|i| {
                            args[*i - 1]
                                .to_str()
                                .is_some_and(|a| a.starts_with("--") && !a.contains('='))
                        })
                        .collect();
                    if !takes_value.is_empty() {
                        let i = *rng.pick(&takes_value);
                        let flag = args[i - 1].to_str().unwrap().to_string();
                        let v = match flag.as_str() {
                            "--at" | "--now" => *rng.pick(HOSTILE_TIMES),
                            "--grace" => *rng.pick(HOSTILE_DURATIONS),
                            "--repack-threshold" | "--compression" | "--jobs" => {
                                *rng.pick(HOSTILE_NUMBERS)
                            }
                            _ => *rng.pick(HOSTILE_TIMES),
                        };
                        args[i] = v.into();
                    } else {
                        args.insert(0, "--now".into());
                        args.insert(1, (*rng.pick(HOSTILE_TIMES)).into());
                    }
                }
                5 | 6 => {
                    let i = rng.below(n + 1);
                    let ins = rng.pick(GLOBAL_INSERTS);
                    for (k, a) in ins.iter().enumerate() {
                        args.insert(i + k, a.into());
                    }
                }
                7 if n > 1 => {
                    args.remove(rng.below(n));
                }
                8 if n > 1 => {
                    let i = rng.below(n - 1);
                    if rng.below(2) == 0 {
                        args.swap(i, i + 1);
                    } else {
                        let a = args[i].clone();
                        args.insert(i, a);
                    }
                }
                _ => {
                    // An argument that is not UTF-8.
                    let i = rng.below(n);
                    args[i] = OsString::from_vec(b"\xff\xfe-\x80".to_vec());
                }
            }
        }
        let mut envs: Vec<(&str, &Path)> = vec![];
        let repo = env.url.clone();
        let vars = [
            ("DRCTL_REPO", PathBuf::from(&repo)),
            ("DRCTL_KEY_FILE", env.key_file.clone()),
            ("DRCTL_CATALOG", env.catalog.clone()),
            ("DRCTL_CONFIG", env.path("drctl.toml")),
            ("XDG_DATA_HOME", env.path("xdg")),
        ];
        for (k, v) in &vars {
            envs.push((k, v.as_path()));
        }
        let (o, took) = drctl(&args, &envs, env.dir.path());
        let err = text(&o.stderr);
        let report = || {
            format!(
                "seed {seed}, round {round}: drctl {args:?}: rc {:?}, stderr: {err}",
                o.status.code()
            )
        };
        assert!(!crashed(&o), "drctl crashed: {}", report());
        let code = o.status.code().unwrap();
        assert!(matches!(code, 0..=3), "unexpected exit code: {}", report());
        if code == 2 {
            assert!(
                err.lines().any(|l| l.starts_with("error:")),
                "rc 2 without an error: line: {}",
                report()
            );
        }
        if std::env::var_os("DRCTL_FUZZ_VERBOSE").is_some() {
            eprintln!("{code} {args:?}: {}", err.lines().next().unwrap_or(""));
        }
        *codes.entry(code).or_insert(0) += 1;
        if took > slowest.0 {
            slowest = (took, format!("{args:?}"));
        }
    }
    eprintln!(
        "{rounds} command lines (seed {seed}): exit codes {codes:?} in {:.1}s; slowest {:.2}s: {}",
        t.elapsed().as_secs_f64(),
        slowest.0.as_secs_f64(),
        slowest.1
    );
    assert!(
        codes.get(&2).copied().unwrap_or(0) > rounds / 4,
        "{codes:?}"
    );
}
