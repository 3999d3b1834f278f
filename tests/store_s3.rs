//! Integration test of the S3 store against a real S3-compatible server.
//!
//! `scripts/test.sh` starts a throwaway Garage server and exports
//! `DRCTL_TEST_S3_ENDPOINT`, `DRCTL_TEST_S3_BUCKET`, `DRCTL_TEST_S3_REGION` and the
//! `AWS_*` credentials. Without them the test fails, unless `DRCTL_TEST_NO_S3=1`.
//!
//! Everything runs in one test function on purpose: the wrong-credentials case changes
//! `AWS_SECRET_ACCESS_KEY` / `AWS_ACCESS_KEY_ID` for a moment, which must not race with
//! other requests in this process.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use drctl::store::s3::{S3Config, S3Store};
use drctl::store::{Store, StoreError};
use rand::{RngCore, SeedableRng};

struct Env {
    endpoint: String,
    bucket: String,
    region: Option<String>,
}

fn test_env() -> Option<Env> {
    if std::env::var("DRCTL_TEST_NO_S3").as_deref() == Ok("1") {
        eprintln!("DRCTL_TEST_NO_S3=1: skipping the S3 store test");
        return None;
    }
    let Ok(endpoint) = std::env::var("DRCTL_TEST_S3_ENDPOINT") else {
        panic!(
            "DRCTL_TEST_S3_ENDPOINT is not set: run scripts/test.sh, which starts a throwaway \
             Garage S3 server and sets DRCTL_TEST_S3_* and AWS_* (or set DRCTL_TEST_NO_S3=1 to \
             skip this test)"
        );
    };
    let bucket = std::env::var("DRCTL_TEST_S3_BUCKET").expect(
        "DRCTL_TEST_S3_BUCKET must be set with DRCTL_TEST_S3_ENDPOINT (run scripts/test.sh)",
    );
    let region = std::env::var("DRCTL_TEST_S3_REGION").ok();
    Some(Env {
        endpoint,
        bucket,
        region,
    })
}

fn config(env: &Env, bucket: &str, prefix: &str, endpoint: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
        endpoint: Some(endpoint.to_owned()),
        region: env.region.clone(),
        path_style: true,
        profile: None,
    }
}

fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    Bytes::from(data)
}

fn keys(infos: &[drctl::store::ObjectInfo]) -> BTreeSet<String> {
    infos.iter().map(|i| i.key.clone()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Asserts that no known secret appears in an error message.
fn assert_no_secret(err: &StoreError, secrets: &[&str]) {
    let msg = format!("{err} / {err:?}");
    for secret in secrets {
        assert!(
            secret.is_empty() || !msg.contains(secret),
            "error message leaks a secret key: {msg}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_against_real_server() {
    let Some(env) = test_env() else {
        return;
    };
    let real_secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default();
    let prefix = format!("drctl-test/{:016x}", rand::random::<u64>());
    let store = S3Store::new(config(&env, &env.bucket, &prefix, &env.endpoint))
        .await
        .expect("create store");
    store.check_access().await.expect("check_access");

    let described = store.describe();
    assert!(described.contains(&env.bucket), "{described}");
    assert!(described.contains(&prefix), "{described}");
    assert!(
        real_secret.is_empty() || !described.contains(&real_secret),
        "{described}"
    );

    // Round trip of a large object.
    let big_key = "data/ab/ab0123456789";
    let big = random_bytes(20 << 20, 1);
    store.put(big_key, big.clone()).await.expect("put 20 MiB");
    let got = store.get(big_key).await.expect("get 20 MiB");
    assert_eq!(got.len(), big.len());
    assert!(got == big, "20 MiB object differs after the round trip");

    // Ranges: middle, start, the very end.
    for (offset, len) in [
        (5_000_000u64, 1_234_567u64),
        (0, 1),
        (0, 4096),
        (big.len() as u64 - 100, 100),
        (big.len() as u64 - 1, 1),
    ] {
        let part = store
            .get_range(big_key, offset, len)
            .await
            .unwrap_or_else(|e| panic!("get_range({offset}, {len}): {e}"));
        assert_eq!(part.len() as u64, len);
        assert!(
            part[..] == big[offset as usize..(offset + len) as usize],
            "range {offset}+{len} differs"
        );
    }
    // A range past the end of the object is an error, and not a retryable one.
    let err = store
        .get_range(big_key, big.len() as u64 - 10, 20)
        .await
        .expect_err("range running past the end");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    let err = store
        .get_range(big_key, big.len() as u64 + 10, 20)
        .await
        .expect_err("range starting past the end");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");

    // Stat.
    let info = store.stat(big_key).await.expect("stat");
    assert_eq!(info.key, big_key);
    assert_eq!(info.size, big.len() as u64);
    assert!(info.modified.is_some(), "stat without a modification time");

    // Listing returns exactly what was put, relative to the store prefix.
    let small = [
        ("index/aa11", 10usize),
        ("index/bb22", 0),
        ("index/sub/cc33", 3000),
        ("snapshots/2024-01-01", 77),
    ];
    for (i, (key, len)) in small.iter().enumerate() {
        store
            .put(key, random_bytes(*len, 100 + i as u64))
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
    // A sibling prefix that shares the beginning of ours must never show up.
    let sibling = S3Store::new(config(
        &env,
        &env.bucket,
        &format!("{prefix}-sibling"),
        &env.endpoint,
    ))
    .await
    .expect("sibling store");
    sibling
        .put("index/zz99", Bytes::from_static(b"other"))
        .await
        .expect("put in sibling");

    let index = store.list("index/").await.expect("list index/");
    assert_eq!(
        keys(&index),
        set(&["index/aa11", "index/bb22", "index/sub/cc33"])
    );
    for info in &index {
        let expected = small.iter().find(|(k, _)| *k == info.key).unwrap().1;
        assert_eq!(info.size, expected as u64, "size of {}", info.key);
    }
    let all = store.list("").await.expect("list everything");
    assert_eq!(
        keys(&all),
        set(&[
            big_key,
            "index/aa11",
            "index/bb22",
            "index/sub/cc33",
            "snapshots/2024-01-01"
        ])
    );
    assert!(store.list("nothing/").await.expect("list empty").is_empty());
    assert_eq!(
        store
            .get("index/bb22")
            .await
            .expect("get empty object")
            .len(),
        0
    );

    // Deleting, and missing objects.
    store.delete("index/aa11").await.expect("delete");
    match store.get("index/aa11").await {
        Err(StoreError::NotFound(key)) => assert_eq!(key, "index/aa11"),
        other => panic!("get after delete: {other:?}"),
    }
    store
        .delete("index/aa11")
        .await
        .expect("deleting a missing object is fine");
    match store.get("index/never-written").await {
        Err(StoreError::NotFound(key)) => assert_eq!(key, "index/never-written"),
        other => panic!("get of a missing object: {other:?}"),
    }
    match store.get_range("index/never-written", 0, 10).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("get_range of a missing object: {other:?}"),
    }
    match store.stat("index/never-written").await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("stat of a missing object: {other:?}"),
    }

    // A bucket that does not exist.
    let missing_bucket = format!("drctl-missing-{:08x}", rand::random::<u32>());
    let nobucket = S3Store::new(config(&env, &missing_bucket, "p", &env.endpoint))
        .await
        .expect("store for a missing bucket");
    match nobucket.check_access().await {
        Err(StoreError::Missing(what)) => assert!(what.contains(&missing_bucket), "{what}"),
        other => panic!("check_access on a missing bucket: {other:?}"),
    }
    match nobucket.list("").await {
        Err(StoreError::Missing(_)) => {}
        other => panic!("list on a missing bucket: {other:?}"),
    }
    match nobucket.put("x", Bytes::from_static(b"x")).await {
        Err(StoreError::Missing(_)) => {}
        other => panic!("put into a missing bucket: {other:?}"),
    }

    // An endpoint nobody listens on fails fast.
    let dead = S3Store::new(config(&env, &env.bucket, "p", "http://127.0.0.1:1"))
        .await
        .expect("store for a dead endpoint");
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), dead.check_access())
        .await
        .expect("check_access on a dead endpoint took more than 10 s");
    match result {
        Err(ref err @ StoreError::Unreachable { ref endpoint, .. }) => {
            assert!(endpoint.contains("127.0.0.1:1"), "{err}");
            assert!(err.is_transient());
        }
        other => panic!("check_access on a dead endpoint: {other:?}"),
    }
    eprintln!("dead endpoint reported after {:?}", started.elapsed());

    // Wrong credentials. The SDK reads the environment when the first request needs
    // credentials, so the variables are restored only after the requests.
    let real_key_id = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default();
    let wrong_secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    std::env::set_var("AWS_SECRET_ACCESS_KEY", wrong_secret);
    let bad_secret = S3Store::new(config(&env, &env.bucket, &prefix, &env.endpoint))
        .await
        .expect("store with a wrong secret");
    let check = bad_secret.check_access().await;
    let put = bad_secret
        .put("index/denied", Bytes::from_static(b"no"))
        .await;
    let get = bad_secret.get(big_key).await;
    std::env::set_var("AWS_ACCESS_KEY_ID", "GK00000000000000000000dead");
    let bad_key = S3Store::new(config(&env, &env.bucket, &prefix, &env.endpoint))
        .await
        .expect("store with an unknown key id");
    let unknown_key = bad_key.get(big_key).await;
    std::env::set_var("AWS_ACCESS_KEY_ID", &real_key_id);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &real_secret);
    for (what, result) in [
        ("check_access", check.map(|_| Bytes::new())),
        ("put", put.map(|_| Bytes::new())),
        ("get", get),
        ("get with an unknown key id", unknown_key),
    ] {
        match result {
            Err(err @ StoreError::Denied { .. }) => {
                assert!(!err.is_transient());
                assert_no_secret(&err, &[wrong_secret, &real_secret]);
                eprintln!("{what} with wrong credentials: {err}");
            }
            other => panic!("{what} with wrong credentials: {other:?}"),
        }
    }

    // Clean up.
    for s in [&store, &sibling] {
        for info in s.list("").await.expect("list for cleanup") {
            s.delete(&info.key).await.expect("cleanup delete");
        }
        assert!(s.list("").await.expect("list after cleanup").is_empty());
    }
}
