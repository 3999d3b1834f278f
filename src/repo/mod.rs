//! The repository: format, keys and the typed operations on objects in a store.

pub mod busy;
pub mod chunker;
pub mod crypto;
pub mod drill;
pub mod id;
pub mod index;
pub mod keys;
pub mod layout;
pub mod pack;
pub mod point;
pub mod repo_config;
pub mod run;
pub mod snapshot;
pub mod tree;

#[cfg(test)]
mod open_tests;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::store::backend::is_not_found;
use crate::store::Backend;
use chunker::Chunker;
use crypto::Key;
use id::{content_hash, DrillId, IndexId, PackId, PointId, RunId, SnapshotId};
use index::IndexedPack;
use keys::Keys;
use layout::{FileType, Handle, Objects};
use pack::{BlobEntry, Compression};
use point::RecoveryPoint;
use repo_config::{RepoConfig, VersionProbe, FORMAT_VERSION, OLDEST_FORMAT_VERSION};
use snapshot::Snapshot;

/// Up to this many packs, [`Repo::missing_packs`] asks after each rather than listing.
pub const ASK_AT_MOST: usize = 64;

/// Whether the store holds objects of a repository (other than `config`): a short
/// description of the first kind found, looking at the small prefixes first.
async fn repository_objects(objects: &Objects) -> Result<Option<String>> {
    for kind in FileType::CONTENT {
        let found = match objects.list_raw(kind).await {
            Ok(found) => found,
            // No bucket or directory at all: certainly no repository.
            Err(crate::store::backend::BackendError {
                source: crate::store::StoreError::Missing(_),
                ..
            }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if !found.is_empty() {
            return Ok(Some(format!(
                "{} object(s) under {}",
                found.len(),
                kind.prefix()
            )));
        }
    }
    Ok(None)
}

/// Packs a prune found unreferenced and will delete once the mark is older than its
/// grace period (judged by the store's clock). Plain JSON: pack names reveal nothing,
/// and a forged mark can only make backups upload data again, since prune deletes only
/// packs it finds unreferenced itself.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    /// The packs.
    pub packs: Vec<PackId>,
    /// Who marked them.
    pub hostname: String,
    /// Those of `packs` that no index listed when marked. One that an index lists by the
    /// time the mark is ripe was claimed by a backup after the mark (its own upload, not
    /// yet committed), so this mark no longer dooms it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unindexed: Vec<PackId>,
}

/// Where a blob is: enough to fetch it with one range GET and open it.
#[derive(Debug, Clone)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: PackId,
    /// The pack's age-wrapped key.
    pub wrapped_key: Arc<Vec<u8>>,
    /// Offset, lengths and encoding in the pack.
    pub entry: BlobEntry,
}

impl BlobLocation {
    /// The pack's object.
    pub fn pack_handle(&self) -> Handle {
        Handle::pack(self.entry.kind, &self.pack)
    }
}

/// An open repository: verified config, matching keys, a store, and an async runtime.
pub struct Repo {
    /// The store with retries and limits, by handle.
    objects: Objects,
    /// The verified `config` object.
    pub config: RepoConfig,
    /// Keys loaded from the key file.
    pub keys: Keys,
    /// The key file path, for messages.
    pub key_file: String,
    /// The chunker for this repository's secret gear table.
    pub chunker: Chunker,
    rt: Arc<tokio::runtime::Runtime>,
    pack_keys: Mutex<HashMap<PackId, Key>>,
    /// Time in which data blobs were being fetched and decrypted (a drill's fetch phase).
    pub fetching: busy::BusyClock,
}

impl Repo {
    /// Creates a repository and its key file; refuses to overwrite either.
    pub fn init(
        backend: Backend,
        key_path: &Path,
        rt: Arc<tokio::runtime::Runtime>,
        now: DateTime<Utc>,
        compression_level: i32,
    ) -> Result<Repo> {
        if key_path.exists() {
            return Err(Error::Key {
                path: key_path.display().to_string(),
                reason: "already exists; refusing to overwrite it".into(),
            });
        }
        rt.block_on(backend.check_access())?;
        let objects = Objects::new(backend);
        match rt.block_on(objects.stat(&Handle::config())) {
            Ok(_) => {
                return Err(Error::Repository {
                    url: objects.describe(),
                    reason: "a repository already exists here; refusing to overwrite it".into(),
                })
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
        if let Some(found) = rt.block_on(repository_objects(&objects))? {
            return Err(Error::Repository {
                url: objects.describe(),
                reason: format!(
                    "its config object is missing, but it holds a repository's objects ({found}); \
                     refusing to initialise over them: run `drctl repair config` with the \
                     repository's key file to restore the config"
                ),
            });
        }
        let keys = Keys::generate(hex::encode(crypto::random_key()));
        let config = RepoConfig::new(&keys, now, compression_level);
        keys.save_new(key_path)?;
        if let Err(e) = rt.block_on(objects.put(&Handle::config(), Bytes::from(config.to_bytes())))
        {
            // A key file for a repository that does not exist would only block a retry.
            let _ = std::fs::remove_file(key_path);
            return Err(e);
        }
        Ok(Repo::assemble(objects, config, keys, key_path, rt))
    }

    /// Writes the `config` object again from the key file, for a repository that lost
    /// only its config: refuses when one exists, or when the key file opens none of the
    /// index files or manifests present (it would be another repository's key).
    pub fn restore_config(
        backend: Backend,
        key_path: &Path,
        rt: Arc<tokio::runtime::Runtime>,
        now: DateTime<Utc>,
    ) -> Result<Repo> {
        let objects = Objects::new(backend);
        let url = objects.describe();
        match rt.block_on(objects.stat(&Handle::config())) {
            Ok(_) => {
                return Err(Error::Repository {
                    url,
                    reason: "its config object exists; nothing to repair".into(),
                })
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
        let keys = Keys::load(key_path)?;
        // Everything but the compression level and creation time follows from the keys
        // (the chunker parameters are fixed in this format version); the level only
        // affects new blobs.
        let config = RepoConfig::new(&keys, now, repo_config::DEFAULT_COMPRESSION_LEVEL);
        let repo = Repo::assemble(objects, config, keys, key_path, rt);
        let index = repo.list_index()?;
        let proof = match index.first() {
            Some(id) => repo.block_on(repo.read_index(*id)).map(|_| ()),
            None => match repo.list_snapshot_ids()?.first() {
                Some(id) if repo.keys.identity.is_some() => {
                    repo.block_on(repo.read_snapshot(*id)).map(|_| ())
                }
                _ => Err(Error::Repository {
                    url: url.clone(),
                    reason:
                        "it holds no index file or snapshot to prove the key file belongs to it"
                            .into(),
                }),
            },
        };
        proof.map_err(|e| Error::Key {
            path: key_path.display().to_string(),
            reason: format!(
                "does not open this repository's objects ({e}); refusing to write a config for it"
            ),
        })?;
        repo.block_on(
            repo.objects
                .put(&Handle::config(), Bytes::from(repo.config.to_bytes())),
        )?;
        Ok(repo)
    }

    /// Opens a repository: checks the format version, then that the key file matches.
    pub fn open(
        backend: Backend,
        key_path: &Path,
        rt: Arc<tokio::runtime::Runtime>,
    ) -> Result<Repo> {
        let objects = Objects::new(backend);
        let url = objects.describe();
        let raw = match rt.block_on(objects.get(&Handle::config())) {
            Ok(b) => b,
            Err(e) if is_not_found(&e) => {
                let reason = match rt.block_on(repository_objects(&objects))? {
                    Some(found) => format!(
                        "its config object is missing, but it holds a repository's objects \
                         ({found}); do not run `drctl init` here: `drctl repair config` \
                         restores the config from the repository's key file"
                    ),
                    None => "no drctl repository here (run `drctl init` to create one)".into(),
                };
                return Err(Error::Repository { url, reason });
            }
            Err(e) => return Err(e),
        };
        let not_ours = || Error::Repository {
            url: url.clone(),
            reason: "the config object is not a drctl repository config".into(),
        };
        let probe: VersionProbe = serde_json::from_slice(&raw).map_err(|_| not_ours())?;
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&probe.version) {
            return Err(Error::UnsupportedVersion {
                url,
                found: probe.version,
                oldest: OLDEST_FORMAT_VERSION,
                supported: FORMAT_VERSION,
            });
        }
        let config: RepoConfig = serde_json::from_slice(&raw).map_err(|_| not_ours())?;
        let keys = Keys::load(key_path)?;
        let key_err = |reason: String| Error::Key {
            path: key_path.display().to_string(),
            reason,
        };
        if keys.repository != config.id {
            return Err(key_err(format!(
                "belongs to repository {}, not to {} ({url})",
                short(&keys.repository),
                short(&config.id)
            )));
        }
        if !config.verify(&keys) {
            return Err(key_err(format!(
                "does not match repository {} ({url}): its secrets do not authenticate the config",
                short(&config.id)
            )));
        }
        if !config.chunker_is_valid() {
            return Err(not_ours());
        }
        Ok(Repo::assemble(objects, config, keys, key_path, rt))
    }

    fn assemble(
        objects: Objects,
        config: RepoConfig,
        keys: Keys,
        key_path: &Path,
        rt: Arc<tokio::runtime::Runtime>,
    ) -> Repo {
        Repo {
            chunker: Chunker::new(&keys.chunker_key, config.chunker),
            objects,
            config,
            keys,
            key_file: key_path.display().to_string(),
            rt,
            pack_keys: Mutex::new(HashMap::new()),
            fetching: busy::BusyClock::default(),
        }
    }

    /// The store, by handle.
    pub fn objects(&self) -> &Objects {
        &self.objects
    }

    /// The async runtime (for pipelines that spawn uploads or downloads).
    pub fn runtime(&self) -> &Arc<tokio::runtime::Runtime> {
        &self.rt
    }

    /// Runs a future to completion from a non-async thread.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The identity, or a clear error for a write-only key file.
    pub fn identity(&self) -> Result<&age::x25519::Identity> {
        self.keys.identity(&self.key_file)
    }

    /// Names of all index files.
    pub fn list_index(&self) -> Result<Vec<IndexId>> {
        let objs = self.block_on(self.objects.list(FileType::Index))?;
        Ok(objs
            .iter()
            .filter_map(|o| IndexId::from_hex(&o.handle.name))
            .collect())
    }

    /// Reads and opens one index file.
    pub async fn read_index(&self, id: IndexId) -> Result<Vec<IndexedPack>> {
        let raw = self.objects.get(&Handle::index(&id)).await?;
        if content_hash(&raw) != id.0 {
            return Err(Error::Damage(format!(
                "index file {} is damaged: its contents do not match its name",
                id.short()
            )));
        }
        index::decode(&self.keys.meta_key, &raw)
            .map_err(|e| Error::Damage(format!("index file {}: {e}", id.short())))
    }

    /// Seals and uploads an index file.
    pub fn write_index(&self, packs: &[IndexedPack]) -> Result<IndexId> {
        let stored = index::encode(&self.keys.meta_key, packs);
        let id = IndexId(content_hash(&stored));
        self.block_on(self.objects.put(&Handle::index(&id), Bytes::from(stored)))?;
        Ok(id)
    }

    /// Names of the manifests (snapshots, points, drill results) of a kind.
    fn list_manifests(&self, kind: FileType) -> Result<Vec<[u8; 32]>> {
        let objs = self.block_on(self.objects.list(kind))?;
        Ok(objs
            .iter()
            .filter_map(|o| {
                let mut out = [0u8; 32];
                hex::decode_to_slice(&o.handle.name, &mut out).ok()?;
                Some(out)
            })
            .collect())
    }

    /// Reads, checks and decrypts one manifest; `what` names it in errors.
    async fn read_manifest<T: serde::de::DeserializeOwned>(
        &self,
        handle: &Handle,
        hash: &[u8; 32],
        what: String,
    ) -> Result<T> {
        let identity = self.identity()?;
        let raw = self.objects.get(handle).await?;
        let damaged = |why: String| Error::Damage(format!("{what} is damaged: {why}"));
        if &content_hash(&raw) != hash {
            return Err(damaged("its contents do not match its name".into()));
        }
        let plain = crypto::age_decrypt(identity, &raw).map_err(|e| damaged(e.to_string()))?;
        serde_json::from_slice(&plain).map_err(|e| damaged(e.to_string()))
    }

    /// Encrypts and uploads a manifest named by the hash of its stored bytes.
    fn write_manifest<T: serde::Serialize>(
        &self,
        handle: impl Fn(&[u8; 32]) -> Handle,
        value: &T,
    ) -> Result<[u8; 32]> {
        let plain = serde_json::to_vec(value).expect("manifests serialize");
        let stored = crypto::age_encrypt(&self.keys.recipients, &plain);
        let hash = content_hash(&stored);
        self.block_on(self.objects.put(&handle(&hash), Bytes::from(stored)))?;
        Ok(hash)
    }

    /// The prune marks in the store, with their store times.
    pub fn list_marks(&self) -> Result<Vec<(Handle, Option<std::time::SystemTime>)>> {
        let objs = self.block_on(self.objects.list(FileType::Mark))?;
        Ok(objs.into_iter().map(|o| (o.handle, o.modified)).collect())
    }

    /// Reads one prune mark.
    pub fn read_mark(&self, mark: &Handle) -> Result<Mark> {
        let raw = self.block_on(self.objects.get(mark))?;
        serde_json::from_slice(&raw)
            .map_err(|e| Error::Damage(format!("prune mark {mark} does not parse: {e}")))
    }

    /// Uploads a prune mark; returns its handle.
    pub fn write_mark(&self, mark: &Mark) -> Result<Handle> {
        let bytes = serde_json::to_vec(mark).expect("marks serialize");
        let handle = Handle::new(FileType::Mark, hex::encode(content_hash(&bytes)));
        self.block_on(self.objects.put(&handle, Bytes::from(bytes)))?;
        Ok(handle)
    }

    /// Every pack the prune marks in the store name, and those of them marked while no
    /// index listed them (a backup's own upload, which it claims by indexing it).
    pub fn marked_packs(&self) -> Result<(HashSet<PackId>, HashSet<PackId>)> {
        let (mut all, mut unindexed) = (HashSet::new(), HashSet::new());
        for (key, _) in self.list_marks()? {
            match self.read_mark(&key) {
                Ok(m) => {
                    all.extend(m.packs);
                    unindexed.extend(m.unindexed);
                }
                // Deleted between list and get: the prune that owned it is done with it.
                Err(e) if crate::store::backend::is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok((all, unindexed))
    }

    /// The packs (data and tree) the store holds right now.
    pub fn list_pack_ids(&self) -> Result<HashSet<PackId>> {
        let mut out = HashSet::new();
        for kind in [pack::BlobKind::Data, pack::BlobKind::Tree] {
            for o in self.block_on(self.objects.list(FileType::Pack(kind)))? {
                if let Some(id) = PackId::from_hex(&o.handle.name) {
                    out.insert(id);
                }
            }
        }
        Ok(out)
    }

    /// Which of `packs` the store no longer holds. A few are asked after one by one: a
    /// copy of a WAL file relies on a handful, and listing every pack of a large
    /// repository for them, twice per commit every few seconds, would cost more than the
    /// copy. Many are checked against one listing.
    pub fn missing_packs(&self, packs: &HashSet<PackId>) -> Result<HashSet<PackId>> {
        use futures::StreamExt;
        if packs.len() > ASK_AT_MOST {
            let present = self.list_pack_ids()?;
            return Ok(packs.difference(&present).copied().collect());
        }
        let held = |id: PackId| async move {
            for kind in [pack::BlobKind::Data, pack::BlobKind::Tree] {
                match self.objects.stat(&Handle::pack(kind, &id)).await {
                    Ok(_) => return Ok(None),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(Some(id))
        };
        let asked: Vec<Result<Option<PackId>>> = self.block_on(
            futures::stream::iter(packs.iter().copied())
                .map(held)
                .buffer_unordered(16)
                .collect(),
        );
        asked.into_iter().filter_map(Result::transpose).collect()
    }

    /// Deletes one snapshot manifest (a commit that turned out unsound).
    pub fn delete_snapshot(&self, id: &SnapshotId) -> Result<()> {
        self.block_on(self.objects.delete(&Handle::snapshot(id)))
    }

    /// Deletes one index file (rewritten without packs that are gone).
    pub fn delete_index(&self, id: &IndexId) -> Result<()> {
        self.block_on(self.objects.delete(&Handle::index(id)))
    }

    /// Names of all snapshot manifests.
    pub fn list_snapshot_ids(&self) -> Result<Vec<SnapshotId>> {
        Ok(self
            .list_manifests(FileType::Snapshot)?
            .into_iter()
            .map(SnapshotId)
            .collect())
    }

    /// Reads and decrypts one snapshot manifest.
    pub async fn read_snapshot(&self, id: SnapshotId) -> Result<Snapshot> {
        self.read_manifest(
            &Handle::snapshot(&id),
            &id.0,
            format!("snapshot {}", id.short()),
        )
        .await
    }

    /// Encrypts and uploads a snapshot manifest: the commit point of a backup.
    pub fn write_snapshot(&self, snap: &Snapshot) -> Result<SnapshotId> {
        self.write_manifest(|h| Handle::snapshot(&SnapshotId(*h)), snap)
            .map(SnapshotId)
    }

    /// Stores a drill's result under `drills/`, encrypted like every manifest.
    pub fn write_drill(&self, result: &drill::DrillResult) -> Result<DrillId> {
        self.write_manifest(|h| Handle::drill(&DrillId(*h)), result)
            .map(DrillId)
    }

    /// Stores a run log under `runs/`, encrypted like every manifest.
    pub fn write_run(&self, log: &run::RunLog) -> Result<RunId> {
        self.write_manifest(|h| Handle::run(&RunId(*h)), log)
            .map(RunId)
    }

    /// Names of all run logs.
    pub fn list_run_ids(&self) -> Result<Vec<RunId>> {
        Ok(self
            .list_manifests(FileType::Run)?
            .into_iter()
            .map(RunId)
            .collect())
    }

    /// Reads one run log.
    pub async fn read_run(&self, id: RunId) -> Result<run::RunLog> {
        self.read_manifest(&Handle::run(&id), &id.0, format!("run log {}", id.short()))
            .await
    }

    /// Names of all drill results.
    pub fn list_drill_ids(&self) -> Result<Vec<DrillId>> {
        Ok(self
            .list_manifests(FileType::Drill)?
            .into_iter()
            .map(DrillId)
            .collect())
    }

    /// Reads one drill result.
    pub async fn read_drill(&self, id: DrillId) -> Result<drill::DrillResult> {
        self.read_manifest(
            &Handle::drill(&id),
            &id.0,
            format!("drill result {}", id.short()),
        )
        .await
    }

    /// Names of all recovery point manifests.
    pub fn list_point_ids(&self) -> Result<Vec<PointId>> {
        Ok(self
            .list_manifests(FileType::Point)?
            .into_iter()
            .map(PointId)
            .collect())
    }

    /// Reads and decrypts one recovery point manifest.
    pub async fn read_point(&self, id: PointId) -> Result<RecoveryPoint> {
        self.read_manifest(
            &Handle::point(&id),
            &id.0,
            format!("recovery point {}", id.short()),
        )
        .await
    }

    /// Encrypts and uploads a recovery point manifest, after its sources' snapshots.
    pub fn write_point(&self, point: &RecoveryPoint) -> Result<PointId> {
        self.write_manifest(|h| Handle::point(&PointId(*h)), point)
            .map(PointId)
    }

    /// The key of a pack, unwrapped once and cached.
    pub fn pack_key(&self, pack: &PackId, wrapped: &[u8]) -> Result<Key> {
        if let Some(k) = self.pack_keys.lock().unwrap().get(pack) {
            return Ok(*k);
        }
        let k = pack::unwrap_pack_key(self.identity()?, wrapped).map_err(|e| {
            Error::Damage(format!(
                "pack {} is damaged: its key does not open: {e}",
                pack.short()
            ))
        })?;
        self.pack_keys.lock().unwrap().insert(*pack, k);
        Ok(k)
    }

    /// Opens, decompresses and verifies one sealed blob cut from its pack.
    pub fn decode_blob(&self, loc: &BlobLocation, sealed: &[u8]) -> Result<Vec<u8>> {
        let key = self.pack_key(&loc.pack, &loc.wrapped_key)?;
        let e = &loc.entry;
        let damaged = |why: &str| {
            Error::Damage(format!(
                "pack {} is damaged: blob {} {why}",
                loc.pack.short(),
                e.id.short()
            ))
        };
        let payload =
            pack::open_blob(&key, e, sealed).map_err(|_| damaged("failed authentication"))?;
        let raw = match e.compression {
            Compression::None => payload,
            Compression::Zstd => decompress(&payload, e.raw_len as usize)
                .map_err(|_| damaged("does not decompress"))?,
        };
        if raw.len() != e.raw_len as usize || self.keys.blob_id(&raw) != e.id {
            return Err(damaged("does not match its ID"));
        }
        Ok(raw)
    }

    /// Fetches one blob with a range GET and verifies it.
    pub async fn read_blob(&self, loc: &BlobLocation) -> Result<Vec<u8>> {
        let _busy = self.fetching.start();
        let sealed = self
            .objects
            .get_range(
                &loc.pack_handle(),
                loc.entry.offset,
                loc.entry.stored_len as u64,
            )
            .await?;
        self.decode_blob(loc, &sealed)
    }
}

/// zstd decompression with one context per thread: creating a context per blob costs
/// more than decompressing a small blob.
fn decompress(payload: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut()
            .expect("just set")
            .decompress(payload, raw_len)
    })
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

/// A repository on a file store in a new temporary directory, which holds it: for unit
/// tests.
#[cfg(test)]
pub(crate) fn temp_repo() -> (tempfile::TempDir, Repo) {
    use crate::store::backend::BackendOptions;
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::file::FileStore::new(dir.path().join("store"));
    store.create_root().unwrap();
    let rt = Arc::new(tokio::runtime::Runtime::new().unwrap());
    let backend = Backend::new(Arc::new(store), BackendOptions::default());
    let repo = Repo::init(backend, &dir.path().join("key"), rt, Utc::now(), 3).unwrap();
    (dir, repo)
}
