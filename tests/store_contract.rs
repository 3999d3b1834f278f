//! The store contract: the same cases against the file store and against S3 (a real Garage
//! server, started by `scripts/test.sh`). What the repository relies on of a store is
//! written here once, so a new store is held to exactly it.

use std::sync::Arc;

use bytes::Bytes;
use drctl::store::file::FileStore;
use drctl::store::s3::{S3Config, S3Store};
use drctl::store::{Store, StoreError};
use rand::{RngCore, SeedableRng};

fn bytes(len: usize, seed: u64) -> Bytes {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    Bytes::from(data)
}

fn keys(mut infos: Vec<drctl::store::ObjectInfo>) -> Vec<String> {
    infos.sort_by(|a, b| a.key.cmp(&b.key));
    infos.into_iter().map(|i| i.key).collect()
}

/// Every case, in order, on an empty store; `sibling` shares the start of its root.
async fn contract(store: Arc<dyn Store>, sibling: Arc<dyn Store>) {
    // Put, then get the whole object back.
    let big = bytes(5 << 20, 1);
    store.put("data/ab/ab01", big.clone()).await.unwrap();
    assert!(store.get("data/ab/ab01").await.unwrap() == big);
    store.put("index/empty", Bytes::new()).await.unwrap();
    assert!(store.get("index/empty").await.unwrap().is_empty());

    // Ranged gets: inside, at the start, the very end; past the end is an error that a
    // retry cannot fix.
    let end = big.len() as u64;
    for (offset, len) in [
        (1_000_000u64, 123_457u64),
        (0, 1),
        (end - 100, 100),
        (end - 1, 1),
    ] {
        let part = store.get_range("data/ab/ab01", offset, len).await.unwrap();
        assert!(
            part[..] == big[offset as usize..(offset + len) as usize],
            "{offset}+{len}"
        );
    }
    for (offset, len) in [(end - 10, 20), (end + 10, 20)] {
        let e = store
            .get_range("data/ab/ab01", offset, len)
            .await
            .expect_err("a range past the end");
        assert!(!e.is_transient(), "{e:?}");
        assert!(matches!(e, StoreError::Other(_)), "{e:?}");
    }

    // Stat.
    let info = store.stat("data/ab/ab01").await.unwrap();
    assert_eq!((info.key.as_str(), info.size), ("data/ab/ab01", end));
    assert!(info.modified.is_some());

    // List by prefix: exactly what is under it, nested keys included, with sizes;
    // nothing of a sibling root.
    store.put("index/aa", bytes(10, 2)).await.unwrap();
    store.put("index/sub/bb", bytes(3000, 3)).await.unwrap();
    store.put("indexes/not-index", bytes(1, 4)).await.unwrap();
    sibling.put("index/zz", bytes(5, 5)).await.unwrap();
    let listed = store.list("index/").await.unwrap();
    let size_of = |k: &str| listed.iter().find(|i| i.key == k).map(|i| i.size);
    assert_eq!(
        (
            size_of("index/aa"),
            size_of("index/sub/bb"),
            size_of("index/empty")
        ),
        (Some(10), Some(3000), Some(0))
    );
    assert_eq!(
        keys(listed),
        ["index/aa", "index/empty", "index/sub/bb"].map(String::from)
    );
    assert_eq!(keys(store.list("").await.unwrap()).len(), 5);
    assert!(store.list("nothing/").await.unwrap().is_empty());

    // A missing object: not found, for every read, and not retried.
    for e in [
        store.get("index/missing").await.unwrap_err(),
        store.stat("index/missing").await.unwrap_err(),
        store.get_range("index/missing", 0, 1).await.unwrap_err(),
    ] {
        assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
        assert!(!e.is_transient());
    }

    // Delete: gone from reads and listings; deleting a missing object is fine.
    store.delete("index/aa").await.unwrap();
    assert!(matches!(
        store.get("index/aa").await.unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(!keys(store.list("index/").await.unwrap()).contains(&"index/aa".to_string()));
    store.delete("index/aa").await.unwrap();
    store.delete("never/was").await.unwrap();

    // Atomic replace: while one object is rewritten between two contents, every reader
    // sees one of them whole, never a mix or a short object.
    let (a, b) = (bytes(2 << 20, 6), bytes(2 << 20, 7));
    store.put("config", a.clone()).await.unwrap();
    let writer = {
        let (store, a, b) = (store.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            for i in 0..12 {
                let body = if i % 2 == 0 { b.clone() } else { a.clone() };
                store.put("config", body).await.unwrap();
            }
        })
    };
    // A read cut short by the replace may fail as transient (S3 servers end the body;
    // `Backend` retries it); one that succeeds is never torn.
    let (mut reads, mut cut) = (0, 0);
    while !writer.is_finished() || reads < 4 {
        match store.get("config").await {
            Ok(got) => {
                assert!(got == a || got == b, "a torn read of {} bytes", got.len());
                reads += 1;
            }
            Err(e) if e.is_transient() => cut += 1,
            Err(e) => panic!("a read during a replace failed: {e:?}"),
        }
    }
    eprintln!("{reads} whole reads, {cut} cut short (transient) during the replaces");
    writer.await.unwrap();
    assert!(store.get("config").await.unwrap() == a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let root = FileStore::new(dir.path().join("repo"));
    root.create_root().unwrap();
    let sibling = FileStore::new(dir.path().join("repo-sibling"));
    sibling.create_root().unwrap();
    contract(Arc::new(root), Arc::new(sibling)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_store_keeps_the_contract() {
    if std::env::var("DRCTL_TEST_NO_S3").as_deref() == Ok("1") {
        eprintln!("DRCTL_TEST_NO_S3=1: skipped");
        return;
    }
    let endpoint = std::env::var("DRCTL_TEST_S3_ENDPOINT")
        .expect("DRCTL_TEST_S3_ENDPOINT: run scripts/test.sh, which starts Garage");
    let bucket = std::env::var("DRCTL_TEST_S3_BUCKET").unwrap();
    let prefix = format!("contract/{:016x}", rand::random::<u64>());
    let open = |prefix: String| {
        S3Store::new(S3Config {
            bucket: bucket.clone(),
            prefix,
            endpoint: Some(endpoint.clone()),
            region: std::env::var("DRCTL_TEST_S3_REGION").ok(),
            path_style: true,
            profile: None,
        })
    };
    let store = open(prefix.clone()).await.unwrap();
    store.check_access().await.unwrap();
    let sibling = open(format!("{prefix}-sibling")).await.unwrap();
    contract(Arc::new(store), Arc::new(sibling)).await;
}
