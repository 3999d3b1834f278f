//! Memory must not grow with the repository: the peak RSS of the same backup into an empty
//! repository and into one whose index already holds millions of chunk entries.
//!
//! ```sh
//! cargo build --release && cargo run --release --example index_bench -- [ENTRIES] [DATA_MIB]
//! ```
//! Defaults: 5,000,000 entries, 256 MiB of data. Needs GNU time (`/usr/bin/time`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use drctl::repo::id::{BlobId, PackId};
use drctl::repo::index::IndexedPack;
use drctl::repo::pack::{BlobEntry, BlobKind, Compression};
use drctl::repo::Repo;
use drctl::store::backend::BackendOptions;
use drctl::store::file::FileStore;
use drctl::store::Backend;

fn drctl_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/release/examples/index_bench -> target/release/drctl
    exe.parent().unwrap().parent().unwrap().join("drctl")
}

fn run(dir: &Path, args: &[&str]) -> (u64, f64) {
    let t = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg(drctl_bin())
        .args(args)
        .env(
            "DRCTL_REPO",
            format!("file://{}", dir.join("repo").display()),
        )
        .env("DRCTL_KEY_FILE", dir.join("key"))
        .env("DRCTL_CATALOG", dir.join("catalog.db"))
        .env("DRCTL_CONFIG", dir.join("none.toml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "drctl {args:?} failed: {err}");
    let rss_kb: u64 = err.lines().last().unwrap().trim().parse().unwrap();
    (rss_kb, t.elapsed().as_secs_f64())
}

fn xorshift_fill(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for c in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
}

fn make_data(dir: &Path, mib: usize, seed: u64) {
    let data = dir.join(format!("data{seed}"));
    std::fs::create_dir_all(data.join("small")).unwrap();
    let mut big = vec![0u8; (mib / 2) << 20];
    xorshift_fill(&mut big, seed * 7919 + 1);
    std::fs::write(data.join("media.bin"), &big).unwrap();
    let line = format!("INSERT INTO orders VALUES ({seed}, 'paid', 12.50, '2026-11-20');\n");
    std::fs::write(
        data.join("dump.sql"),
        line.repeat(((mib / 4) << 20) / line.len()),
    )
    .unwrap();
    for i in 0..(mib * 4) {
        let mut b = vec![0u8; 16 << 10];
        xorshift_fill(&mut b, seed * 1_000_003 + 1000 + i as u64);
        std::fs::write(data.join("small").join(format!("f{i:05}")), &b).unwrap();
    }
}

/// Writes index files listing `entries` made-up blobs in made-up 16-blob packs.
fn fill_index(dir: &Path, entries: usize) {
    let rt = Arc::new(tokio::runtime::Runtime::new().unwrap());
    let backend = Backend::new(
        Arc::new(FileStore::new(dir.join("repo"))),
        BackendOptions::default(),
    );
    let repo = Repo::open(backend, &dir.join("key"), rt).unwrap();
    let wrapped = drctl::repo::crypto::wrap_key(&repo.keys.recipients, &[0; 32]);
    let mut n = 0u64;
    let mut batch = Vec::new();
    let id = |n: u64, tag: u8| {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&n.to_le_bytes());
        b[8] = tag;
        *blake3::hash(&b).as_bytes()
    };
    while (n as usize) < entries {
        let blobs: Vec<BlobEntry> = (0..16)
            .map(|i| BlobEntry {
                id: BlobId(id(n + i, 1)),
                kind: BlobKind::Data,
                compression: Compression::Zstd,
                offset: 300 + i * (1 << 20),
                stored_len: 1 << 20,
                raw_len: 1 << 20,
            })
            .collect();
        batch.push(IndexedPack {
            id: PackId(id(n, 2)),
            kind: BlobKind::Data,
            size: 16 << 20,
            wrapped_key: wrapped.clone(),
            blobs,
        });
        n += 16;
        if batch.len() * 16 >= 100_000 {
            repo.write_index(&batch).unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        repo.write_index(&batch).unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let entries: usize = args.get(1).map_or(5_000_000, |s| s.parse().unwrap());
    let mib: usize = args.get(2).map_or(256, |s| s.parse().unwrap());
    let work = tempfile::tempdir().unwrap();
    // DRCTL_BENCH_KEEP=1 keeps the repositories for a closer look.
    let keep = std::env::var("DRCTL_BENCH_KEEP").is_ok();
    let mut results = Vec::new();
    for (label, n) in [("empty repository", 0), ("large index", entries)] {
        let dir = work.path().join(label.replace(' ', "-"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("none.toml"), "").unwrap();
        run(&dir, &["init"]);
        let t = Instant::now();
        if n > 0 {
            fill_index(&dir, n);
        }
        let filled = t.elapsed().as_secs_f64();
        let (load_rss, load_s) = run(&dir, &["snapshots"]);
        // Peak RSS depends on how the pipeline's stages happen to overlap: take the
        // median of three backups of fresh data.
        let mut rss_runs = Vec::new();
        let mut secs = 0.0;
        for seed in 1..=3 {
            make_data(&dir, mib, seed);
            let data = dir.join(format!("data{seed}"));
            let (rss, s) = run(
                &dir,
                &["backup", "--stack", "bench", data.to_str().unwrap()],
            );
            rss_runs.push(rss);
            secs += s / 3.0;
        }
        rss_runs.sort();
        let rss = rss_runs[1];
        println!(
            "{label:>16}: {n:>9} index entries (written in {filled:.1}s), catalog load {load_s:.1}s / {} MB RSS, backups of {mib} MiB {secs:.2}s, peak RSS {:?} MB, median {} MB",
            load_rss / 1024,
            rss_runs.iter().map(|r| r / 1024).collect::<Vec<_>>(),
            rss / 1024
        );
        results.push(rss);
    }
    if keep {
        println!("kept in {}", work.keep().display());
    }
    let ratio = results[1] as f64 / results[0] as f64;
    println!("RESULT backup_rss_ratio={ratio:.3} (large index / empty)");
}
