//! A store in a local directory (`file:///path`).
//!
//! Writes go to a temporary file in the target directory, are fsynced, renamed into
//! place, and the directory is fsynced: a crash leaves the old state or the new one.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use rand::Rng;

use super::{ObjectInfo, Store, StoreError};

/// Prefix of in-progress writes; listings skip them.
const TEMP_PREFIX: &str = ".tmp-";

/// A local directory store.
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// A store rooted at `root` (which `init` creates).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileStore { root: root.into() }
    }

    /// Parses `file:///path` (or a plain path) into the root directory.
    pub fn parse_url(url: &str) -> Option<PathBuf> {
        let p = url.strip_prefix("file://").unwrap_or(url);
        (!p.is_empty()).then(|| PathBuf::from(p))
    }

    /// Creates the root directory (for `init`).
    pub fn create_root(&self) -> Result<(), StoreError> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| StoreError::Other(format!("creating {}: {e}", self.root.display())))
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn root_exists(&self) -> Result<(), StoreError> {
        if self.root.is_dir() {
            Ok(())
        } else {
            Err(StoreError::Missing(format!(
                "directory {}",
                self.root.display()
            )))
        }
    }
}

fn io_err(key: &str, e: std::io::Error) -> StoreError {
    match e.kind() {
        std::io::ErrorKind::NotFound => StoreError::NotFound(key.to_string()),
        // The directory's permissions or its mount, not the operation, are at fault: an
        // environment error like a bucket policy that refuses the write.
        std::io::ErrorKind::ReadOnlyFilesystem => StoreError::ReadOnly {
            what: key.to_string(),
            detail: e.to_string(),
        },
        std::io::ErrorKind::PermissionDenied => StoreError::Denied {
            endpoint: key.to_string(),
            detail: e.to_string(),
        },
        _ => StoreError::Other(format!("{key}: {e}")),
    }
}

fn write_atomic(root: &Path, path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        "{TEMP_PREFIX}{:016x}",
        rand::thread_rng().gen::<u64>()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<ObjectInfo>) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let key = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(&entry.path(), &key, out)?;
        } else {
            out.push(ObjectInfo {
                key,
                size: meta.len(),
                modified: meta.modified().ok(),
            });
        }
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Other(format!("store task failed: {e}")))?
}

#[async_trait]
impl Store for FileStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn check_access(&self) -> Result<(), StoreError> {
        self.root_exists()
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        use std::os::unix::ffi::OsStrExt;
        self.root_exists()?;
        let c = std::ffi::CString::new(self.root.as_os_str().as_bytes())
            .map_err(|e| StoreError::Other(format!("{}: {e}", self.root.display())))?;
        // access(2) answers for this process (root passes permission bits) and reports a
        // read-only mount, without writing anything.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        Err(match io_err(&self.root.display().to_string(), e) {
            StoreError::NotFound(_) => {
                StoreError::Missing(format!("directory {}", self.root.display()))
            }
            other => other,
        })
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), StoreError> {
        let (root, path, key) = (self.root.clone(), self.path(key), key.to_string());
        blocking(move || write_atomic(&root, &path, &data).map_err(|e| io_err(&key, e))).await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let (path, key) = (self.path(key), key.to_string());
        blocking(move || {
            std::fs::read(&path)
                .map(Bytes::from)
                .map_err(|e| io_err(&key, e))
        })
        .await
    }

    async fn get_range(&self, key: &str, offset: u64, len: u64) -> Result<Bytes, StoreError> {
        let (path, key) = (self.path(key), key.to_string());
        blocking(move || {
            let mut f = std::fs::File::open(&path).map_err(|e| io_err(&key, e))?;
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| io_err(&key, e))?;
            let mut buf = Vec::with_capacity(len as usize);
            f.take(len)
                .read_to_end(&mut buf)
                .map_err(|e| io_err(&key, e))?;
            if buf.len() as u64 != len {
                return Err(StoreError::Other(format!(
                    "{key}: short read ({} of {len} bytes at {offset})",
                    buf.len()
                )));
            }
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn stat(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let (path, key) = (self.path(key), key.to_string());
        blocking(move || {
            let m = std::fs::metadata(&path).map_err(|e| io_err(&key, e))?;
            Ok(ObjectInfo {
                key,
                size: m.len(),
                modified: m.modified().ok(),
            })
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.root_exists()?;
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking(move || {
            // Walk only the directory part of the prefix, then filter by the rest.
            let dir = match prefix.rfind('/') {
                Some(i) => &prefix[..i],
                None => "",
            };
            let mut out = Vec::new();
            walk(&root.join(dir), dir, &mut out).map_err(|e| io_err(&prefix, e))?;
            out.retain(|o| o.key.starts_with(&prefix));
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let (path, key) = (self.path(key), key.to_string());
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&key, e)),
        })
        .await
    }
}
