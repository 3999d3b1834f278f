//! Distinct 32-byte ID types, so a pack ID can never be passed where a blob ID is wanted.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Full lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// The first 8 hex digits, as shown to users.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..4])
            }

            /// Parses 64 hex digits.
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).ok()?;
                Some(Self(out))
            }

            /// Takes the ID from the first 32 bytes of a slice.
            pub fn from_slice(s: &[u8]) -> Option<Self> {
                Some(Self(s.get(..32)?.try_into().ok()?))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_hex(&s).ok_or_else(|| serde::de::Error::custom("invalid id"))
            }
        }
    };
}

id_type!(
    /// A blob: keyed BLAKE3 of its plaintext.
    BlobId
);
id_type!(
    /// A pack object: BLAKE3 of its stored bytes.
    PackId
);
id_type!(
    /// An index object: BLAKE3 of its stored bytes.
    IndexId
);
id_type!(
    /// A snapshot manifest object: BLAKE3 of its stored bytes.
    SnapshotId
);

id_type!(
    /// A recovery point manifest object: BLAKE3 of its stored bytes.
    PointId
);

id_type!(
    /// A drill result object: BLAKE3 of its stored bytes.
    DrillId
);

id_type!(
    /// A run log object: BLAKE3 of its stored bytes.
    RunId
);

/// Plain BLAKE3 of stored bytes, which names packs, index files and snapshots.
pub fn content_hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_short_form() {
        let id = BlobId([0xab; 32]);
        assert_eq!(BlobId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(id.short(), "abababab");
        assert_eq!(BlobId::from_hex("zz"), None);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<BlobId>(&json).unwrap(), id);
    }
}
