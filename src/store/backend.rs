//! A store wrapped with bounded concurrency and retries, used by everything above it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::{ObjectInfo, Store, StoreError};

/// A store's failure, with the store it came from (for messages).
#[derive(Debug, thiserror::Error)]
#[error("{store}: {source}")]
pub struct BackendError {
    /// The store's description.
    pub store: String,
    /// What failed.
    #[source]
    pub source: StoreError,
}

/// Errors that can say "the object does not exist".
pub trait ObjectMissing {
    /// Whether this is the store saying an object does not exist.
    fn object_missing(&self) -> bool;
}

impl ObjectMissing for BackendError {
    fn object_missing(&self) -> bool {
        matches!(self.source, StoreError::NotFound(_))
    }
}

/// Retry and concurrency policy.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts for a transient failure, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub backoff: Duration,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            concurrency: 8,
            attempts: 4,
            backoff: Duration::from_millis(200),
        }
    }
}

/// A `Store` with retries for transient errors only, and a bound on requests in flight.
#[derive(Clone)]
pub struct Backend {
    inner: Arc<dyn Store>,
    permits: Arc<Semaphore>,
    opts: BackendOptions,
}

macro_rules! with_retries {
    ($self:ident, $call:expr) => {{
        let _permit = $self
            .permits
            .acquire()
            .await
            .expect("semaphore never closes");
        let mut delay = $self.opts.backoff;
        let mut attempt = 1;
        loop {
            match $call.await {
                Err(e) if e.is_transient() && attempt < $self.opts.attempts => {
                    tracing::debug!("retrying after {e} (attempt {attempt})");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                r => break r.map_err(|e| $self.error(e)),
            }
        }
    }};
}

impl Backend {
    /// Wraps a store.
    pub fn new(inner: Arc<dyn Store>, opts: BackendOptions) -> Self {
        Backend {
            permits: Arc::new(Semaphore::new(opts.concurrency)),
            inner,
            opts,
        }
    }

    /// The store's description for messages.
    pub fn describe(&self) -> String {
        self.inner.describe()
    }

    fn error(&self, source: StoreError) -> BackendError {
        BackendError {
            store: self.inner.describe(),
            source,
        }
    }

    /// See [`Store::check_access`].
    pub async fn check_access(&self) -> Result<(), BackendError> {
        with_retries!(self, self.inner.check_access())
    }

    /// See [`Store::check_writable`].
    pub async fn check_writable(&self) -> Result<(), BackendError> {
        self.inner.check_writable().await.map_err(|e| self.error(e))
    }

    /// See [`Store::put`].
    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), BackendError> {
        with_retries!(self, self.inner.put(key, data.clone()))
    }

    /// See [`Store::get`].
    pub async fn get(&self, key: &str) -> Result<Bytes, BackendError> {
        with_retries!(self, self.inner.get(key))
    }

    /// See [`Store::get_range`].
    pub async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        with_retries!(self, self.inner.get_range(key, offset, len))
    }

    /// See [`Store::stat`].
    pub async fn stat(&self, key: &str) -> Result<ObjectInfo, BackendError> {
        with_retries!(self, self.inner.stat(key))
    }

    /// See [`Store::list`].
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BackendError> {
        with_retries!(self, self.inner.list(prefix))
    }

    /// See [`Store::delete`].
    pub async fn delete(&self, key: &str) -> Result<(), BackendError> {
        with_retries!(self, self.inner.delete(key))
    }
}

/// Whether an error is the store saying an object does not exist.
pub fn is_not_found(e: &impl ObjectMissing) -> bool {
    e.object_missing()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::store::file::FileStore;

    /// A real local store whose first `failures` reads fail with the given error kind.
    struct Flaky {
        inner: FileStore,
        failures: AtomicU32,
        transient: bool,
        calls: AtomicU32,
    }

    #[async_trait]
    impl Store for Flaky {
        fn describe(&self) -> String {
            "flaky".into()
        }
        async fn check_access(&self) -> Result<(), StoreError> {
            self.inner.check_access().await
        }
        async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
            self.inner.put(key, data).await
        }
        async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(if self.transient {
                    StoreError::Transient {
                        key: key.into(),
                        detail: "503 SlowDown".into(),
                    }
                } else {
                    StoreError::Other("400 bad request".into())
                });
            }
            self.inner.get(key).await
        }
        async fn get_range(&self, key: &str, o: u64, l: u64) -> Result<Bytes, StoreError> {
            self.inner.get_range(key, o, l).await
        }
        async fn stat(&self, key: &str) -> Result<ObjectInfo, StoreError> {
            self.inner.stat(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
            self.inner.list(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key).await
        }
    }

    fn backend(dir: &std::path::Path, failures: u32, transient: bool) -> (Backend, Arc<Flaky>) {
        let flaky = Arc::new(Flaky {
            inner: FileStore::new(dir),
            failures: AtomicU32::new(failures),
            transient,
            calls: AtomicU32::new(0),
        });
        let opts = BackendOptions {
            concurrency: 2,
            attempts: 4,
            backoff: Duration::from_millis(1),
        };
        (Backend::new(flaky.clone(), opts), flaky)
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (b, flaky) = backend(dir.path(), 3, true);
        b.put("k", Bytes::from_static(b"v")).await.unwrap();
        assert_eq!(b.get("k").await.unwrap(), Bytes::from_static(b"v"));
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            4,
            "three retries, then success"
        );

        let (b, flaky) = backend(dir.path(), 10, true);
        let err = b.get("k").await.unwrap_err();
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            4,
            "gives up after the attempts"
        );
        assert!(err.to_string().contains("503"), "{err}");

        let (b, flaky) = backend(dir.path(), 1, false);
        assert!(b.get("k").await.is_err());
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            1,
            "a permanent error is not retried"
        );

        let (b, flaky) = backend(dir.path(), 0, true);
        assert!(is_not_found(&b.get("missing").await.unwrap_err()));
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            1,
            "not found is not retried"
        );
    }
}
