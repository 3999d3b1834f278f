//! Pack objects: many sealed blobs under one random pack key, with a sealed trailer.
//!
//! ```text
//! "DRCTLPK1" | u16 wrapped_len | age-wrapped pack key | blob* | sealed trailer | u32 trailer_len | "DRCTLPK1"
//! blob    = nonce(24) | XChaCha20-Poly1305(zstd or raw plaintext) | tag(16); AAD = id | kind | compression
//! trailer = u32 count | count × (id 32 | kind u8 | compression u8 | offset u64 | stored u32 | raw u32)
//! ```
//! Each blob opens alone with the pack key (a range GET suffices), and the trailer lets
//! every index be rebuilt from packs alone. The pack's name is BLAKE3 of all its bytes.

use age::x25519::{Identity, Recipient};
use bytes::Bytes;

use super::crypto::{self, CryptoError, Key};
use super::id::{content_hash, BlobId, PackId};

const MAGIC: &[u8; 8] = b"DRCTLPK1";
const TRAILER_AAD: &[u8] = b"drctl pack trailer v1";
const ENTRY_LEN: usize = 32 + 1 + 1 + 8 + 4 + 4;

/// What a blob holds; trees and manifests go to metadata packs, file data to data packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    /// File or stream contents.
    Data = 0,
    /// A directory tree.
    Tree = 1,
}

impl BlobKind {
    /// Decodes the format byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(BlobKind::Data),
            1 => Some(BlobKind::Tree),
            _ => None,
        }
    }
}

/// How a blob's plaintext was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as is (it did not shrink).
    None = 0,
    /// zstd.
    Zstd = 1,
}

impl Compression {
    /// Decodes the format byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Compression::None),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Where one blob sits in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobEntry {
    /// Keyed hash of the plaintext.
    pub id: BlobId,
    /// Data or tree.
    pub kind: BlobKind,
    /// How the payload was stored.
    pub compression: Compression,
    /// Byte offset of the sealed blob in the pack.
    pub offset: u64,
    /// Sealed length, overhead included.
    pub stored_len: u32,
    /// Plaintext length.
    pub raw_len: u32,
}

/// Associated data binding a blob's ciphertext to its ID, kind and compression.
fn blob_aad(id: &BlobId, kind: BlobKind, compression: Compression) -> [u8; 34] {
    let mut aad = [0u8; 34];
    aad[..32].copy_from_slice(&id.0);
    aad[32] = kind as u8;
    aad[33] = compression as u8;
    aad
}

/// Encodes trailer or index entries.
pub(crate) fn encode_entries(entries: &[BlobEntry], out: &mut Vec<u8>) {
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.id.0);
        out.push(e.kind as u8);
        out.push(e.compression as u8);
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.stored_len.to_le_bytes());
        out.extend_from_slice(&e.raw_len.to_le_bytes());
    }
}

/// Decodes what `encode_entries` wrote; returns the entries and the bytes consumed.
pub(crate) fn decode_entries(b: &[u8]) -> Option<(Vec<BlobEntry>, usize)> {
    let n = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let body = b.get(4..4 + n.checked_mul(ENTRY_LEN)?)?;
    let entries = body
        .chunks_exact(ENTRY_LEN)
        .map(|e| {
            Some(BlobEntry {
                id: BlobId::from_slice(e)?,
                kind: BlobKind::from_u8(e[32])?,
                compression: Compression::from_u8(e[33])?,
                offset: u64::from_le_bytes(e[34..42].try_into().ok()?),
                stored_len: u32::from_le_bytes(e[42..46].try_into().ok()?),
                raw_len: u32::from_le_bytes(e[46..50].try_into().ok()?),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((entries, 4 + body.len()))
}

/// A pack being filled.
pub struct PackWriter {
    kind: BlobKind,
    key: Key,
    wrapped_key: Vec<u8>,
    buf: Vec<u8>,
    entries: Vec<BlobEntry>,
}

/// A sealed pack ready to upload.
pub struct FinishedPack {
    /// BLAKE3 of `bytes`.
    pub id: PackId,
    /// Data or tree pack.
    pub kind: BlobKind,
    /// The whole object.
    pub bytes: Bytes,
    /// The age-wrapped pack key, kept in the index so restores need no header read.
    pub wrapped_key: Vec<u8>,
    /// The blobs inside.
    pub entries: Vec<BlobEntry>,
}

impl PackWriter {
    /// A new pack whose key is wrapped to `recipients`.
    pub fn new(kind: BlobKind, recipients: &[Recipient], capacity: usize) -> Self {
        let key = crypto::random_key();
        let wrapped_key = crypto::wrap_key(recipients, &key);
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(wrapped_key.len() as u16).to_le_bytes());
        buf.extend_from_slice(&wrapped_key);
        PackWriter {
            kind,
            key,
            wrapped_key,
            buf,
            entries: Vec::new(),
        }
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seals `payload` (the stored form of a plaintext of `raw_len` bytes) into the pack.
    pub fn add(&mut self, id: BlobId, compression: Compression, raw_len: usize, payload: &[u8]) {
        let offset = self.buf.len() as u64;
        let aad = blob_aad(&id, self.kind, compression);
        crypto::seal_into(&self.key, &aad, payload, &mut self.buf);
        self.entries.push(BlobEntry {
            id,
            kind: self.kind,
            compression,
            offset,
            stored_len: (self.buf.len() as u64 - offset) as u32,
            raw_len: raw_len as u32,
        });
    }

    /// Appends the trailer and names the pack; re-reads the trailer before publishing it.
    pub fn finish(mut self) -> FinishedPack {
        let mut trailer = Vec::with_capacity(4 + self.entries.len() * ENTRY_LEN);
        encode_entries(&self.entries, &mut trailer);
        let sealed = crypto::seal(&self.key, TRAILER_AAD, &trailer);
        self.buf.extend_from_slice(&sealed);
        self.buf
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(MAGIC);
        let check = read_trailer(&self.buf, &self.key).expect("a pack just written parses");
        assert_eq!(check, self.entries, "pack trailer round trip");
        FinishedPack {
            id: PackId(content_hash(&self.buf)),
            kind: self.kind,
            bytes: Bytes::from(self.buf),
            wrapped_key: self.wrapped_key,
            entries: self.entries,
        }
    }
}

/// The wrapped pack key from a pack's first bytes (at least 10 + the wrapped length).
pub fn read_wrapped_key(head: &[u8]) -> Option<Vec<u8>> {
    if head.get(..8)? != MAGIC {
        return None;
    }
    let n = u16::from_le_bytes(head.get(8..10)?.try_into().ok()?) as usize;
    Some(head.get(10..10 + n)?.to_vec())
}

/// Decrypts and parses the trailer of a whole pack.
pub fn read_trailer(pack: &[u8], key: &Key) -> Result<Vec<BlobEntry>, CryptoError> {
    let bad = || CryptoError("pack trailer is malformed".into());
    let n = pack.len();
    if n < 12 || &pack[n - 8..] != MAGIC {
        return Err(bad());
    }
    let tlen = u32::from_le_bytes(pack[n - 12..n - 8].try_into().unwrap()) as usize;
    let start = (n - 12).checked_sub(tlen).ok_or_else(bad)?;
    let plain = crypto::open(key, TRAILER_AAD, &pack[start..n - 12])?;
    let (entries, used) = decode_entries(&plain).ok_or_else(bad)?;
    if used != plain.len() {
        return Err(bad());
    }
    Ok(entries)
}

/// Opens one sealed blob (as cut from its pack) and returns its stored payload.
pub fn open_blob(key: &Key, entry: &BlobEntry, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    crypto::open(
        key,
        &blob_aad(&entry.id, entry.kind, entry.compression),
        sealed,
    )
}

/// Unwraps the pack key with the identity.
pub fn unwrap_pack_key(identity: &Identity, wrapped: &[u8]) -> Result<Key, CryptoError> {
    crypto::unwrap_key(identity, wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_open_alone_and_trailer_lists_them() {
        let id = Identity::generate();
        let mut w = PackWriter::new(BlobKind::Data, &[id.to_public()], 1024);
        let a = BlobId([1; 32]);
        let b = BlobId([2; 32]);
        w.add(a, Compression::None, 5, b"hello");
        w.add(b, Compression::Zstd, 100, b"compressed-ish");
        let p = w.finish();
        assert_eq!(p.id, PackId(content_hash(&p.bytes)));
        let key = unwrap_pack_key(&id, &read_wrapped_key(&p.bytes).unwrap()).unwrap();
        let entries = read_trailer(&p.bytes, &key).unwrap();
        assert_eq!(entries, p.entries);
        let e = entries[1];
        let sealed = &p.bytes[e.offset as usize..e.offset as usize + e.stored_len as usize];
        assert_eq!(open_blob(&key, &e, sealed).unwrap(), b"compressed-ish");
        // The AAD binds the ID: a blob cannot be passed off as another.
        let forged = BlobEntry { id: a, ..e };
        assert!(open_blob(&key, &forged, sealed).is_err());
    }
}
