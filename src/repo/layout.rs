//! The repository's layout: which kind of object lives under which key, and the store as
//! seen through it. Keys are spelled here and nowhere else (restic's `FileType` and
//! `Handle`); the rest of drctl names objects by handle.

use bytes::Bytes;

use super::id::{DrillId, IndexId, PackId, PointId, RunId, SnapshotId};
use super::pack::BlobKind;
use crate::error::Result;
use crate::store::{Backend, ObjectInfo};

/// A kind of object, each under its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    /// The repository's `config`.
    Config,
    /// Key objects (none are written today; their prefix is reserved).
    Keys,
    /// Index files: which blobs each pack holds.
    Index,
    /// Snapshot manifests.
    Snapshot,
    /// Recovery point manifests.
    Point,
    /// Drill results.
    Drill,
    /// Run logs: the run history, so that a new host knows it.
    Run,
    /// Prune marks: packs waiting for their grace period.
    Mark,
    /// Locks (prune's).
    Lock,
    /// Packs of data or tree blobs.
    Pack(BlobKind),
}

impl FileType {
    /// Every kind but `config`, the small ones first (what `init` refuses to build over).
    pub const CONTENT: [FileType; 10] = [
        FileType::Keys,
        FileType::Index,
        FileType::Snapshot,
        FileType::Point,
        FileType::Drill,
        FileType::Run,
        FileType::Mark,
        FileType::Lock,
        FileType::Pack(BlobKind::Tree),
        FileType::Pack(BlobKind::Data),
    ];

    /// The key prefix of its objects (`config` is a key of its own).
    pub fn prefix(self) -> &'static str {
        match self {
            FileType::Config => "config",
            FileType::Keys => "keys/",
            FileType::Index => "index/",
            FileType::Snapshot => "snapshots/",
            FileType::Point => "points/",
            FileType::Drill => "drills/",
            FileType::Run => "runs/",
            FileType::Mark => "marks/",
            FileType::Lock => "locks/",
            FileType::Pack(BlobKind::Data) => "data/",
            FileType::Pack(BlobKind::Tree) => "meta/",
        }
    }
}

/// One object: its kind and its name within the kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handle {
    /// Its kind.
    pub kind: FileType,
    /// Its name (a hex ID for most kinds).
    pub name: String,
}

impl Handle {
    /// The repository's `config`.
    pub fn config() -> Handle {
        Handle::new(FileType::Config, "")
    }

    /// A pack of `kind`.
    pub fn pack(kind: BlobKind, id: &PackId) -> Handle {
        Handle::new(FileType::Pack(kind), id.to_hex())
    }

    /// An index file.
    pub fn index(id: &IndexId) -> Handle {
        Handle::new(FileType::Index, id.to_hex())
    }

    /// A snapshot manifest.
    pub fn snapshot(id: &SnapshotId) -> Handle {
        Handle::new(FileType::Snapshot, id.to_hex())
    }

    /// A recovery point manifest.
    pub fn point(id: &PointId) -> Handle {
        Handle::new(FileType::Point, id.to_hex())
    }

    /// A drill result.
    pub fn drill(id: &DrillId) -> Handle {
        Handle::new(FileType::Drill, id.to_hex())
    }

    /// A run log.
    pub fn run(id: &RunId) -> Handle {
        Handle::new(FileType::Run, id.to_hex())
    }

    /// An object of `kind` by name.
    pub fn new(kind: FileType, name: impl Into<String>) -> Handle {
        Handle {
            kind,
            name: name.into(),
        }
    }

    /// Its key in the store: packs sit in 256 directories by their first byte, so that
    /// no directory of a file store grows past a few thousand entries.
    pub fn key(&self) -> String {
        match self.kind {
            FileType::Config => "config".into(),
            FileType::Pack(_) if self.name.len() >= 2 => {
                format!("{}{}/{}", self.kind.prefix(), &self.name[..2], self.name)
            }
            kind => format!("{}{}", kind.prefix(), self.name),
        }
    }

    /// The handle a listed key of `kind` stands for; `None` for a key that is none of
    /// its objects.
    pub fn from_key(kind: FileType, key: &str) -> Option<Handle> {
        let rest = key.strip_prefix(kind.prefix())?;
        let name = match kind {
            FileType::Config => return rest.is_empty().then(Handle::config),
            FileType::Pack(_) => rest.rsplit('/').next()?,
            _ => rest,
        };
        (!name.is_empty()).then(|| Handle::new(kind, name))
    }
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// An object a listing found.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Which one.
    pub handle: Handle,
    /// Its size in bytes.
    pub size: u64,
    /// When the store last wrote it, when the store says.
    pub modified: Option<std::time::SystemTime>,
}

/// The store through the layout: objects by handle. Cheap to clone, for tasks that upload
/// or refresh on their own.
#[derive(Clone)]
pub struct Objects {
    backend: Backend,
}

impl Objects {
    /// Objects of the store behind `backend`.
    pub fn new(backend: Backend) -> Objects {
        Objects { backend }
    }

    /// The store's URL without credentials, for messages.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Fails when the store can tell it cannot be written (a read-only mount).
    pub async fn check_writable(&self) -> Result<()> {
        Ok(self.backend.check_writable().await?)
    }

    /// Saves an object.
    pub async fn put(&self, h: &Handle, data: Bytes) -> Result<()> {
        Ok(self.backend.put(&h.key(), data).await?)
    }

    /// Loads a whole object.
    pub async fn get(&self, h: &Handle) -> Result<Bytes> {
        Ok(self.backend.get(&h.key()).await?)
    }

    /// Loads `len` bytes at `offset`.
    pub async fn get_range(&self, h: &Handle, offset: u64, len: u64) -> Result<Bytes> {
        Ok(self.backend.get_range(&h.key(), offset, len).await?)
    }

    /// Size and time of one object.
    pub async fn stat(&self, h: &Handle) -> Result<ObjectInfo> {
        Ok(self.backend.stat(&h.key()).await?)
    }

    /// Deletes an object (a missing one is no error).
    pub async fn delete(&self, h: &Handle) -> Result<()> {
        Ok(self.backend.delete(&h.key()).await?)
    }

    /// Every object of `kind`; keys that are none of its objects are left out.
    pub async fn list(&self, kind: FileType) -> Result<Vec<Listed>> {
        Ok(self
            .backend
            .list(kind.prefix())
            .await?
            .into_iter()
            .filter_map(|o| {
                Some(Listed {
                    handle: Handle::from_key(kind, &o.key)?,
                    size: o.size,
                    modified: o.modified,
                })
            })
            .collect())
    }

    /// [`list`](Self::list) that reports a missing bucket or directory as such, for `init`.
    pub(super) async fn list_raw(
        &self,
        kind: FileType,
    ) -> std::result::Result<Vec<ObjectInfo>, crate::store::backend::BackendError> {
        self.backend.list(kind.prefix()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_spelled_once_and_read_back() {
        let id = PackId([0xab; 32]);
        let h = Handle::pack(BlobKind::Data, &id);
        assert_eq!(h.key(), format!("data/ab/{}", id.to_hex()));
        assert_eq!(
            Handle::from_key(FileType::Pack(BlobKind::Data), &h.key()),
            Some(h)
        );
        let ix = Handle::index(&IndexId([1; 32]));
        assert_eq!(ix.key(), format!("index/{}", "01".repeat(32)));
        assert_eq!(Handle::from_key(FileType::Index, &ix.key()), Some(ix));
        assert_eq!(Handle::config().key(), "config");
        assert_eq!(
            Handle::new(FileType::Lock, "prune-1f").key(),
            "locks/prune-1f"
        );
        // Another kind's key, or the bare prefix, is no handle of this kind.
        assert_eq!(Handle::from_key(FileType::Index, "indexes/x"), None);
        assert_eq!(Handle::from_key(FileType::Snapshot, "snapshots/"), None);
        assert_eq!(
            Handle::from_key(FileType::Pack(BlobKind::Tree), "data/ab/abcd"),
            None
        );
    }
}
