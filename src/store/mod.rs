//! Object stores: the raw byte layer under the repository.
//!
//! A `Store` knows nothing of packs or encryption: it saves, loads, lists and deletes
//! named objects. `file` and `s3` implement it; `Backend` wraps one with bounded
//! concurrency and retries for transient errors, so neither implementation repeats them.

pub mod backend;
pub mod file;
pub mod s3;

use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

pub use backend::Backend;

/// One object as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Name relative to the store's root, with `/` separators (`data/ab/ab12…`).
    pub key: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Last modification time as the store reports it, when it does.
    pub modified: Option<SystemTime>,
}

/// Why a store operation failed; the kind decides retries and the exit code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("object {0} not found")]
    NotFound(String),
    /// The bucket (or local root directory) does not exist.
    #[error("{0} does not exist")]
    Missing(String),
    /// The endpoint could not be reached (connection refused, DNS, timeout).
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// Credentials were refused or lack permission.
    #[error("access denied by {endpoint}: {detail}")]
    Denied { endpoint: String, detail: String },
    /// The store can be read but not written (a read-only file system).
    #[error("{what} is read-only: {detail}")]
    ReadOnly { what: String, detail: String },
    /// A failure worth retrying (throttling, 5xx, reset connection, short read).
    #[error("transient error on {key}: {detail}")]
    Transient { key: String, detail: String },
    /// Any other failure; not retried.
    #[error("{0}")]
    Other(String),
}

impl StoreError {
    /// Whether retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Transient { .. } | StoreError::Unreachable { .. }
        )
    }
}

/// The raw object store interface every backend implements.
///
/// Keys are relative to the store's root (a directory or `bucket/prefix`). Writes are
/// atomic: after `put` returns, readers see the whole object or, before it, nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A description for messages: the URL without credentials.
    fn describe(&self) -> String;

    /// Verifies that the root (bucket or directory) exists and is reachable.
    async fn check_access(&self) -> Result<(), StoreError>;

    /// Verifies, without writing, that objects can be written, where the store can tell
    /// (a local directory on a read-only file system); stores that cannot tell say yes
    /// and report a refused write when it happens.
    async fn check_writable(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Saves an object. Replacing one is atomic: a reader sees the old object whole or the
    /// new one whole (`tests/store_contract.rs`), though the repository itself only ever
    /// writes new names.
    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError>;

    /// Loads a whole object.
    async fn get(&self, key: &str) -> Result<Bytes, StoreError>;

    /// Loads `len` bytes starting at `offset`; a short object is an error.
    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError>;

    /// Size and time of one object.
    async fn stat(&self, key: &str) -> Result<ObjectInfo, StoreError>;

    /// Every object whose key starts with `prefix` (e.g. `"index/"`), in no set order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;

    /// Deletes an object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}
