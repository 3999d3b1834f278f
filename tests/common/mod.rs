//! Shared test harness: a repository on each store, the real drctl binary, and helpers
//! to inspect the store behind drctl's back.
#![allow(dead_code)]

pub mod docker;
pub mod swap;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use drctl::store::file::FileStore;
use drctl::store::s3::{S3Config, S3Store};
use drctl::store::Store;

/// Which store a test runs against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Local,
    S3,
}

/// S3 settings exported by scripts/test.sh.
pub struct S3Env {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
}

/// The Garage started by scripts/test.sh; fails loudly when missing, unless the run
/// opted out with DRCTL_TEST_NO_S3=1 (then S3 tests return early).
pub fn s3_env() -> Option<S3Env> {
    if std::env::var("DRCTL_TEST_NO_S3").as_deref() == Ok("1") {
        return None;
    }
    let endpoint = std::env::var("DRCTL_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("DRCTL_TEST_S3_ENDPOINT is not set: run the suite with scripts/test.sh (or set DRCTL_TEST_NO_S3=1)")
    });
    Some(S3Env {
        endpoint,
        bucket: std::env::var("DRCTL_TEST_S3_BUCKET").expect("DRCTL_TEST_S3_BUCKET"),
        region: std::env::var("DRCTL_TEST_S3_REGION").unwrap_or_else(|_| "garage".into()),
    })
}

/// A repository and everything around it, in a temporary directory.
pub struct Env {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub key_file: PathBuf,
    pub catalog: PathBuf,
    pub s3: Option<S3Env>,
    prefix: String,
}

pub fn unique(tag: &str) -> String {
    use rand::Rng;
    format!("{tag}-{:016x}", rand::thread_rng().gen::<u64>())
}

impl Env {
    /// A fresh, not yet initialized repository; `None` when S3 tests are opted out.
    pub fn new(kind: Kind) -> Option<Env> {
        let dir = tempfile::tempdir().unwrap();
        let prefix = unique("t");
        let (url, s3) = match kind {
            Kind::Local => (
                format!("file://{}", dir.path().join("repo").display()),
                None,
            ),
            Kind::S3 => {
                let s3 = s3_env()?;
                (format!("s3://{}/{prefix}", s3.bucket), Some(s3))
            }
        };
        let empty_config = dir.path().join("drctl.toml");
        std::fs::write(&empty_config, "").unwrap();
        Some(Env {
            kind,
            key_file: dir.path().join("drctl.key"),
            catalog: dir.path().join("catalog.db"),
            url,
            s3,
            prefix,
            dir,
        })
    }

    /// A fresh repository, initialized.
    pub fn init(kind: Kind) -> Option<Env> {
        let env = Env::new(kind)?;
        let o = env.run(&["init"]);
        assert_ok(&o);
        Some(env)
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A drctl command with this repository's settings in its environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_drctl"));
        for (k, _) in std::env::vars() {
            if k.starts_with("DRCTL_") && !k.starts_with("DRCTL_TEST") {
                c.env_remove(k);
            }
        }
        c.env("DRCTL_REPO", &self.url)
            .env("DRCTL_KEY_FILE", &self.key_file)
            .env("DRCTL_CATALOG", &self.catalog)
            .env("DRCTL_CONFIG", self.dir.path().join("drctl.toml"))
            .env("XDG_DATA_HOME", self.dir.path().join("xdg"));
        if let Some(s3) = &self.s3 {
            c.env("DRCTL_ENDPOINT", &s3.endpoint)
                .env("DRCTL_REGION", &s3.region)
                .env("DRCTL_PATH_STYLE", "true");
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs with the working directory `cwd` (paths are recorded as given).
    pub fn run_in(&self, cwd: &Path, args: &[&str]) -> Output {
        self.cmd().current_dir(cwd).args(args).output().unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let o = self.run(&a);
        assert_ok(&o);
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("bad json {e}: {}", text(&o.stdout)))
    }

    /// The raw store under the repository, to look at or damage objects directly.
    pub fn store(&self) -> Arc<dyn Store> {
        match self.kind {
            Kind::Local => Arc::new(FileStore::new(self.dir.path().join("repo"))),
            Kind::S3 => {
                let s3 = self.s3.as_ref().unwrap();
                let cfg = S3Config {
                    bucket: s3.bucket.clone(),
                    prefix: self.prefix.clone(),
                    endpoint: Some(s3.endpoint.clone()),
                    region: Some(s3.region.clone()),
                    path_style: true,
                    profile: None,
                };
                Arc::new(rt().block_on(S3Store::new(cfg)).unwrap())
            }
        }
    }

    /// Every object with its size, sorted.
    pub fn objects(&self) -> Vec<(String, u64)> {
        let store = self.store();
        let mut v: Vec<(String, u64)> = rt()
            .block_on(store.list(""))
            .unwrap()
            .into_iter()
            .map(|o| (o.key, o.size))
            .collect();
        v.sort();
        v
    }

    /// Total bytes in the store.
    pub fn repo_bytes(&self) -> u64 {
        self.objects().iter().map(|(_, s)| s).sum()
    }

    pub fn get(&self, key: &str) -> Vec<u8> {
        rt().block_on(self.store().get(key)).unwrap().to_vec()
    }

    pub fn put(&self, key: &str, data: Vec<u8>) {
        let store = self.store();
        rt().block_on(async {
            // Objects are never overwritten by drctl; a test replacing one deletes first.
            store.delete(key).await.unwrap();
            store.put(key, data.into()).await.unwrap();
        });
    }

    pub fn snapshot_count(&self) -> usize {
        self.json(&["snapshots"]).as_array().unwrap().len()
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "drctl failed with {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Asserts the exit code and that stderr's `error:` line contains `needle`.
pub fn assert_fails(o: &Output, code: i32, needle: &str) {
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stderr: {err}\nstdout: {}",
        text(&o.stdout)
    );
    assert!(
        err.lines().any(|l| l.starts_with("error: ")),
        "stderr has no error: line: {err}"
    );
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
}

/// SIGKILLs `child` now and reaps it; whether it had finished on its own first (then the
/// kill proved nothing).
pub fn kill_now(child: &mut std::process::Child) -> bool {
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    child.wait().unwrap();
    finished
}

/// Deterministic incompressible bytes (xorshift), fast enough for hundreds of MiB.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Generates store tests for both stores: `mod local` and `mod s3`, one test each.
#[macro_export]
macro_rules! for_each_store {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(#[test] fn $name() { super::$name($crate::common::Kind::Local) })*
        }
        mod s3 {
            $(#[test] fn $name() { super::$name($crate::common::Kind::S3) })*
        }
    };
}

/// A one-shot HTTP listener that records the bodies it receives.
pub fn listener() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, Read};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let mut s = s;
            let _ =
                std::io::Write::write_all(&mut s, b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (url, rx)
}

/// Every file under `dir` (its path below `dir`) with its contents, in path order: what a
/// restore must give back.
pub fn tree_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}
