//! The key file: the age identity (to read) and the repository's write secrets.
//!
//! A full key file reads and writes. A write-only key file (`drctl key export
//! --write-only`) holds the public recipients instead of the identity: enough to chunk,
//! deduplicate and seal new data, never enough to read any back.

use std::io::Write;
use std::path::Path;

use age::secrecy::ExposeSecret;
use age::x25519::{Identity, Recipient};
use serde::{Deserialize, Serialize};

use super::crypto::{random_key, Key};
use super::id::BlobId;
use crate::error::{Error, Result};

/// Version of the key file layout.
const KEY_FILE_FORMAT: u32 = 1;

/// Loaded keys of one repository.
#[derive(Clone)]
pub struct Keys {
    /// The repository these keys belong to (its config's `id`).
    pub repository: String,
    /// The age identity; `None` in a write-only key file.
    pub identity: Option<Identity>,
    /// Public recipients that pack keys and manifests are encrypted to.
    pub recipients: Vec<Recipient>,
    /// Derives the gear table of the chunker.
    pub chunker_key: Key,
    /// Keys BLAKE3 for blob IDs.
    pub id_key: Key,
    /// Seals index files and authenticates the config.
    pub meta_key: Key,
}

#[derive(Serialize, Deserialize)]
struct KeyFileToml {
    format: u32,
    repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    recipients: Vec<String>,
    chunker_key: String,
    id_key: String,
    meta_key: String,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, even in debug output.
        f.debug_struct("Keys")
            .field("repository", &self.repository)
            .field("write_only", &self.identity.is_none())
            .finish()
    }
}

impl Keys {
    /// New keys for a new repository.
    pub fn generate(repository: String) -> Self {
        let identity = Identity::generate();
        Keys {
            repository,
            recipients: vec![identity.to_public()],
            identity: Some(identity),
            chunker_key: random_key(),
            id_key: random_key(),
            meta_key: random_key(),
        }
    }

    /// The same keys without the identity.
    pub fn write_only(&self) -> Self {
        Keys {
            identity: None,
            ..self.clone()
        }
    }

    /// The blob ID of a plaintext: keyed BLAKE3, so IDs say nothing across repositories.
    pub fn blob_id(&self, data: &[u8]) -> BlobId {
        BlobId(*blake3::keyed_hash(&self.id_key, data).as_bytes())
    }

    /// A check value stored in the config that proves a key file's write secrets match.
    pub fn key_check(&self) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.meta_key);
        h.update(b"drctl key check v1");
        h.update(&self.chunker_key);
        h.update(&self.id_key);
        h.finalize().to_hex().to_string()
    }

    /// The identity, or the error a write-only key file gives for reading commands.
    pub fn identity(&self, path: &str) -> Result<&Identity> {
        self.identity.as_ref().ok_or_else(|| Error::Key {
            path: path.to_string(),
            reason: "this is a write-only key file; reading the repository needs the full key"
                .into(),
        })
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let bad = |reason: String| Error::Key {
            path: shown.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        warn_if_exposed(path);
        let raw: KeyFileToml =
            toml::from_str(&text).map_err(|_| bad("not a drctl key file".into()))?;
        if raw.format != KEY_FILE_FORMAT {
            return Err(bad(format!(
                "key file format {} is not supported (this drctl reads format {KEY_FILE_FORMAT})",
                raw.format
            )));
        }
        let key = |name: &str, s: &str| -> Result<Key> {
            let mut k = [0u8; 32];
            hex::decode_to_slice(s, &mut k)
                .map_err(|_| bad(format!("{name} is not 64 hex digits")))?;
            Ok(k)
        };
        let identity = match raw.identity {
            Some(s) => Some(
                s.parse::<Identity>()
                    .map_err(|_| bad("identity is not an age secret key".into()))?,
            ),
            None => None,
        };
        let recipients = raw
            .recipients
            .iter()
            .map(|r| r.parse::<Recipient>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("a recipient is not an age public key".into()))?;
        if recipients.is_empty() {
            return Err(bad("no recipients".into()));
        }
        Ok(Keys {
            repository: raw.repository,
            identity,
            recipients,
            chunker_key: key("chunker_key", &raw.chunker_key)?,
            id_key: key("id_key", &raw.id_key)?,
            meta_key: key("meta_key", &raw.meta_key)?,
        })
    }

    /// Writes a new key file with mode 0600; refuses to replace an existing file.
    pub fn save_new(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let raw = KeyFileToml {
            format: KEY_FILE_FORMAT,
            repository: self.repository.clone(),
            identity: self
                .identity
                .as_ref()
                .map(|i| i.to_string().expose_secret().to_string()),
            recipients: self.recipients.iter().map(|r| r.to_string()).collect(),
            chunker_key: hex::encode(self.chunker_key),
            id_key: hex::encode(self.id_key),
            meta_key: hex::encode(self.meta_key),
        };
        let kind = if self.identity.is_some() {
            "full key: reads and writes the repository"
        } else {
            "write-only key: backs up, cannot read"
        };
        let text = format!(
            "# drctl key file ({kind}).\n# Keep it secret and keep a copy off this host: \
             without it the repository cannot be read.\n{}",
            toml::to_string(&raw).expect("key file serializes")
        );
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::Key {
                        path: path.display().to_string(),
                        reason: "already exists; refusing to overwrite it".into(),
                    }
                } else {
                    Error::io(format!("creating key file {}", path.display()), e)
                }
            })?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(format!("writing key file {}", path.display()), e))
    }
}

/// Warns (once per process) when a key file can be read by its group or by others.
fn warn_if_exposed(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    static WARNED: std::sync::Once = std::sync::Once::new();
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            WARNED.call_once(|| {
                tracing::warn!(
                    "key file {} is readable by others (mode {mode:03o}); `chmod 600 {}`",
                    path.display(),
                    path.display()
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let keys = Keys::generate("r1".into());
        keys.save_new(&path).unwrap();
        let back = Keys::load(&path).unwrap();
        assert_eq!(back.id_key, keys.id_key);
        assert_eq!(back.key_check(), keys.key_check());
        assert!(back.identity.is_some());
        assert!(keys.save_new(&path).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let wo = dir.path().join("wo");
        keys.write_only().save_new(&wo).unwrap();
        let wo = Keys::load(&wo).unwrap();
        assert!(wo.identity.is_none());
        assert!(wo.identity("wo").is_err());
        assert_eq!(wo.blob_id(b"x"), keys.blob_id(b"x"));
    }

    #[test]
    fn blob_ids_are_keyed() {
        let a = Keys::generate("a".into());
        let b = Keys::generate("b".into());
        assert_eq!(a.blob_id(b"same"), a.blob_id(b"same"));
        assert_ne!(a.blob_id(b"same"), b.blob_id(b"same"));
    }

    #[test]
    fn garbage_is_not_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "hello").unwrap();
        let err = Keys::load(&path).unwrap_err();
        assert!(err.to_string().contains("not a drctl key file"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
