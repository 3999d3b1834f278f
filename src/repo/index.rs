//! Index files: which blobs live in which pack, sealed with the metadata key.
//!
//! Writers must read the index to deduplicate, so it is sealed with the symmetric
//! metadata key (a write secret), not with age. It carries each pack's wrapped key too,
//! so a restore can open any blob with one range GET and no pack header read.

use super::crypto::{self, CryptoError, Key};
use super::id::PackId;
use super::pack::{decode_entries, encode_entries, BlobEntry, BlobKind};

const MAGIC: &[u8; 8] = b"DRCTLIX1";
/// An index file lists at most this many blobs (unless one pack holds more), so none has
/// to be huge.
pub const FILE_BLOBS: usize = 100_000;
const AAD: &[u8] = b"drctl index v1";

/// One pack as an index file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPack {
    /// The pack's name.
    pub id: PackId,
    /// Data or metadata pack.
    pub kind: BlobKind,
    /// Stored size in bytes.
    pub size: u64,
    /// The age-wrapped pack key.
    pub wrapped_key: Vec<u8>,
    /// The blobs inside.
    pub blobs: Vec<BlobEntry>,
}

/// Groups packs, in order, into the index files that list them: each group up to
/// [`FILE_BLOBS`] blobs.
pub fn file_groups(packs: Vec<IndexedPack>) -> Vec<Vec<IndexedPack>> {
    let mut groups = Vec::new();
    let (mut group, mut blobs) = (Vec::new(), 0);
    for p in packs {
        if blobs > 0 && blobs + p.blobs.len() > FILE_BLOBS {
            groups.push(std::mem::take(&mut group));
            blobs = 0;
        }
        blobs += p.blobs.len();
        group.push(p);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// Serializes, compresses and seals an index file.
pub fn encode(meta_key: &Key, packs: &[IndexedPack]) -> Vec<u8> {
    let mut plain = Vec::new();
    plain.extend_from_slice(MAGIC);
    plain.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    for p in packs {
        plain.extend_from_slice(&p.id.0);
        plain.push(p.kind as u8);
        plain.extend_from_slice(&p.size.to_le_bytes());
        plain.extend_from_slice(&(p.wrapped_key.len() as u16).to_le_bytes());
        plain.extend_from_slice(&p.wrapped_key);
        encode_entries(&p.blobs, &mut plain);
    }
    let packed = zstd::bulk::compress(&plain, 3).expect("zstd on a buffer cannot fail");
    crypto::seal(meta_key, AAD, &packed)
}

/// Opens and parses an index file.
pub fn decode(meta_key: &Key, stored: &[u8]) -> Result<Vec<IndexedPack>, CryptoError> {
    let bad = || CryptoError("index file is malformed".into());
    let packed = crypto::open(meta_key, AAD, stored)?;
    let plain = zstd::stream::decode_all(&packed[..]).map_err(|_| bad())?;
    if plain.get(..8) != Some(MAGIC) {
        return Err(bad());
    }
    let n = u32::from_le_bytes(plain.get(8..12).ok_or_else(bad)?.try_into().unwrap()) as usize;
    let mut at = 12;
    let mut packs = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let b = plain.get(at..).ok_or_else(bad)?;
        let id = PackId::from_slice(b).ok_or_else(bad)?;
        let kind = BlobKind::from_u8(*b.get(32).ok_or_else(bad)?).ok_or_else(bad)?;
        let size = u64::from_le_bytes(b.get(33..41).ok_or_else(bad)?.try_into().unwrap());
        let wl = u16::from_le_bytes(b.get(41..43).ok_or_else(bad)?.try_into().unwrap()) as usize;
        let wrapped_key = b.get(43..43 + wl).ok_or_else(bad)?.to_vec();
        let (blobs, used) = decode_entries(&b[43 + wl..]).ok_or_else(bad)?;
        at += 43 + wl + used;
        packs.push(IndexedPack {
            id,
            kind,
            size,
            wrapped_key,
            blobs,
        });
    }
    if at != plain.len() {
        return Err(bad());
    }
    Ok(packs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::id::BlobId;
    use crate::repo::pack::Compression;

    #[test]
    fn round_trip_and_wrong_key() {
        let key = crypto::random_key();
        let packs = vec![IndexedPack {
            id: PackId([3; 32]),
            kind: BlobKind::Tree,
            size: 1234,
            wrapped_key: vec![9; 200],
            blobs: vec![BlobEntry {
                id: BlobId([4; 32]),
                kind: BlobKind::Tree,
                compression: Compression::Zstd,
                offset: 210,
                stored_len: 77,
                raw_len: 100,
            }],
        }];
        let stored = encode(&key, &packs);
        assert_eq!(decode(&key, &stored).unwrap(), packs);
        assert!(decode(&crypto::random_key(), &stored).is_err());
    }
}
