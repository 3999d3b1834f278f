//! Sealing primitives: XChaCha20-Poly1305 for blobs and index files, age for pack keys and
//! snapshot manifests. Nothing here is home-made; this module only fixes the framing.

use std::io::{Read, Write};

use age::x25519::{Identity, Recipient};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// Bytes a sealed message adds to its plaintext: a 24-byte nonce and a 16-byte tag.
pub const SEAL_OVERHEAD: usize = 24 + 16;

/// A 256-bit symmetric key.
pub type Key = [u8; 32];

/// Decryption or authentication failed: wrong key or damaged data.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CryptoError(pub String);

/// A fresh random 256-bit key.
pub fn random_key() -> Key {
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    k
}

/// Appends `nonce || ciphertext || tag` for `plaintext` to `out`.
///
/// Sealing in place in the caller's buffer saves a copy of every blob on the backup path.
pub fn seal_into(key: &Key, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
    let mut nonce = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut nonce);
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let cipher = XChaCha20Poly1305::new(key.into());
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut out[start..])
        .expect("a message under 256 GiB always seals");
    out.extend_from_slice(&tag);
}

/// Seals `plaintext` into a new buffer.
pub fn seal(key: &Key, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    seal_into(key, aad, plaintext, &mut out);
    out
}

/// Opens a sealed message, verifying it was sealed with `key` and `aad`.
pub fn open(key: &Key, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(CryptoError("sealed data is truncated".into()));
    }
    let (nonce, rest) = sealed.split_at(24);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let mut buf = ct.to_vec();
    XChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            aad,
            &mut buf,
            Tag::from_slice(tag),
        )
        .map_err(|_| CryptoError("authentication failed".into()))?;
    Ok(buf)
}

/// Encrypts `data` with age to every recipient.
pub fn age_encrypt(recipients: &[Recipient], data: &[u8]) -> Vec<u8> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .expect("x25519 recipients are always compatible");
    let mut out = Vec::with_capacity(data.len() + 256);
    let mut w = encryptor
        .wrap_output(&mut out)
        .expect("writing to a Vec cannot fail");
    w.write_all(data).expect("writing to a Vec cannot fail");
    w.finish().expect("writing to a Vec cannot fail");
    out
}

/// Decrypts an age message with the identity.
pub fn age_decrypt(identity: &Identity, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let d = age::Decryptor::new_buffered(data).map_err(|e| CryptoError(e.to_string()))?;
    let mut r = d
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| CryptoError(e.to_string()))?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)
        .map_err(|e| CryptoError(e.to_string()))?;
    Ok(out)
}

/// Wraps a pack key to the recipients: one X25519 operation per recipient.
pub fn wrap_key(recipients: &[Recipient], key: &Key) -> Vec<u8> {
    age_encrypt(recipients, key)
}

/// Unwraps a pack key with the identity.
pub fn unwrap_key(identity: &Identity, wrapped: &[u8]) -> Result<Key, CryptoError> {
    let k = age_decrypt(identity, wrapped)?;
    k.try_into()
        .map_err(|_| CryptoError("wrapped key has the wrong length".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let key = random_key();
        let sealed = seal(&key, b"aad", b"hello world");
        assert_eq!(sealed.len(), 11 + SEAL_OVERHEAD);
        assert_eq!(open(&key, b"aad", &sealed).unwrap(), b"hello world");
        assert!(open(&key, b"other", &sealed).is_err(), "aad is bound");
        assert!(
            open(&random_key(), b"aad", &sealed).is_err(),
            "key is bound"
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open(&key, b"aad", &bad).is_err(), "flip at {i} detected");
        }
        assert!(open(&key, b"aad", &sealed[..10]).is_err());
    }

    #[test]
    fn age_wrap_needs_the_identity() {
        let id = Identity::generate();
        let other = Identity::generate();
        let key = random_key();
        let wrapped = wrap_key(&[id.to_public()], &key);
        assert_eq!(unwrap_key(&id, &wrapped).unwrap(), key);
        assert!(unwrap_key(&other, &wrapped).is_err());
    }
}
