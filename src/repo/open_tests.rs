//! Opening repositories of every format version this drctl reads.

use std::sync::Arc;

use super::keys::Keys;
use super::repo_config::{RepoConfig, FORMAT_VERSION};
use super::{temp_repo, Repo};
use crate::store::backend::{Backend, BackendOptions};

#[test]
fn a_version_1_repository_opens_with_level_2_and_one_with_another_level_does_not() {
    let (dir, repo) = temp_repo();
    assert_eq!(repo.chunker.params().normalization, 1);
    let keys = Keys::load(&dir.path().join("key")).unwrap();
    let stored = dir.path().join("store/config");
    let mut config: RepoConfig = serde_json::from_slice(&std::fs::read(&stored).unwrap()).unwrap();
    assert_eq!(config.version, FORMAT_VERSION);
    let rt = Arc::new(tokio::runtime::Runtime::new().unwrap());
    let open = |config: &RepoConfig| {
        std::fs::write(&stored, config.to_bytes()).unwrap();
        let store = crate::store::file::FileStore::new(dir.path().join("store"));
        let backend = Backend::new(Arc::new(store), BackendOptions::default());
        Repo::open(backend, &dir.path().join("key"), rt.clone())
    };
    config.version = 1;
    config.chunker.normalization = 2;
    config.mac = config.compute_mac(&keys);
    let opened = open(&config).unwrap();
    assert_eq!(opened.chunker.params().normalization, 2);
    config.chunker.normalization = 1;
    config.mac = config.compute_mac(&keys);
    let e = open(&config).err().unwrap().to_string();
    assert!(e.contains("not a drctl repository config"), "{e}");
}
