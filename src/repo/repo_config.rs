//! The `config` object: format version, chunker parameters and recipients.
//!
//! Readable without keys, so the version can be checked first; authenticated with the
//! metadata key, so nobody with only bucket access can swap the recipients.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::chunker::ChunkerParams;
use super::keys::Keys;

/// The repository format this drctl writes. Version 2 stores the chunker's normalization
/// level (`ChunkerParams::normalization`); a drctl that reads only version 1 would take
/// the new field's MAC failure for a wrong key, so it is told to upgrade instead.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this drctl still reads (version 1: chunker level 2, no field).
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// zstd level for new repositories. Level 1, not 3: on these machines level 3 costs twice
/// the CPU on SQL dumps (the bulk of what drctl stores) for a repository 0.2% smaller
/// (measured on the benchmark data set; see README), and backups are CPU-bound.
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 1;

/// The repository's `config` object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RepoConfig {
    /// Format version; checked before anything else.
    pub version: u32,
    /// Random repository ID; key files and catalogs name it.
    pub id: String,
    /// When `drctl init` ran.
    pub created: DateTime<Utc>,
    /// Chunk size bounds.
    pub chunker: ChunkerParams,
    /// zstd level for new blobs.
    pub compression_level: i32,
    /// Target pack size in bytes.
    pub pack_size: usize,
    /// age recipients (public keys) that pack keys and manifests are encrypted to.
    pub recipients: Vec<String>,
    /// Proves a key file's write secrets belong here (see `Keys::key_check`).
    pub key_check: String,
    /// Keyed BLAKE3 (metadata key) of this document with `mac` empty.
    pub mac: String,
}

impl RepoConfig {
    /// A new config for keys made by `Keys::generate`, compressing at `compression_level`.
    pub fn new(keys: &Keys, now: DateTime<Utc>, compression_level: i32) -> Self {
        let mut c = RepoConfig {
            version: FORMAT_VERSION,
            id: keys.repository.clone(),
            created: now,
            chunker: ChunkerParams::default(),
            compression_level,
            pack_size: 16 * 1024 * 1024,
            recipients: keys.recipients.iter().map(|r| r.to_string()).collect(),
            key_check: keys.key_check(),
            mac: String::new(),
        };
        c.mac = c.compute_mac(keys);
        c
    }

    pub(super) fn compute_mac(&self, keys: &Keys) -> String {
        let mut unsigned = self.clone();
        unsigned.mac.clear();
        let bytes = serde_json::to_vec(&unsigned).expect("config serializes");
        let key = blake3::derive_key("drctl 2026 config mac", &keys.meta_key);
        blake3::keyed_hash(&key, &bytes).to_hex().to_string()
    }

    /// Whether the chunker parameters are usable and what this version holds: version 1
    /// stores no level, so any other than its own was put there by someone, not drctl.
    pub fn chunker_is_valid(&self) -> bool {
        self.chunker.is_valid()
            && (self.version > 1
                || self.chunker.normalization == ChunkerParams::LEVEL_BEFORE_IT_WAS_STORED)
    }

    /// Whether the MAC verifies under these keys.
    pub fn verify(&self, keys: &Keys) -> bool {
        self.key_check == keys.key_check() && self.mac == self.compute_mac(keys)
    }

    /// Parses a stored config without keys (its MAC unchecked): enough to tell which
    /// repository a store holds, for a copier that holds no key.
    pub fn unverified(raw: &[u8]) -> Option<RepoConfig> {
        serde_json::from_slice(raw).ok()
    }

    /// Serialized form.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("config serializes")
    }
}

/// Only the version, parsed before the rest so a newer format is named, not misread.
#[derive(Deserialize)]
pub struct VersionProbe {
    /// The format version.
    pub version: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_written_before_the_normalization_level_was_stored_keeps_level_2_and_its_mac() {
        let keys = Keys::generate("r".repeat(16));
        let mut old = RepoConfig::new(&keys, Utc::now(), 1);
        old.version = 1;
        old.chunker.normalization = 2;
        old.mac = old.compute_mac(&keys);
        let text = String::from_utf8(old.to_bytes()).unwrap();
        // What a repository made before the field existed holds: no such key at all.
        assert!(!text.contains("normalization"), "{text}");
        let read: RepoConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(read.chunker.normalization, 2);
        assert!(read.verify(&keys));

        let new = RepoConfig::new(&keys, Utc::now(), 1);
        let text = String::from_utf8(new.to_bytes()).unwrap();
        assert!(text.contains("\"normalization\": 1"), "{text}");
        let read: RepoConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(read.chunker.normalization, 1);
        assert!(read.verify(&keys));
        // The level is under the MAC like the rest.
        let forged = text.replace("\"normalization\": 1", "\"normalization\": 3");
        let forged: RepoConfig = serde_json::from_str(&forged).unwrap();
        assert!(!forged.verify(&keys));
    }
}
