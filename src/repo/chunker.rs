//! Content-defined chunking: FastCDC-style normalized gear hashing with a keyed gear table.
//!
//! The gear table is derived from the repository's chunker key, so chunk boundaries (which
//! anyone can infer from object sizes) say nothing about content to someone without it.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use super::crypto::Key;

/// Chunk size bounds, stored in the repository config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// No cut before this many bytes.
    pub min_size: usize,
    /// Target average; must be a power of two.
    pub avg_size: usize,
    /// Always cut at this many bytes.
    pub max_size: usize,
    /// Normalized chunking level: the mask before the average size has this many bits
    /// more than `log2(avg_size)`, the one after it this many fewer. Level 1 in
    /// repositories of format version 2; those of version 1 have no such field and keep
    /// level 2, so their boundaries (and their dedup) stay where they were.
    #[serde(
        default = "ChunkerParams::level_before_it_was_stored",
        skip_serializing_if = "ChunkerParams::is_level_before_it_was_stored"
    )]
    pub normalization: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
            // Level 2 cuts more evenly, but its boundaries find their way back slowly
            // after an insert: 1 MiB inserted into random data cost 10 MiB or more of new
            // chunks under 7 of 400 repository keys at level 2 (worst 13.3 MB), under
            // none at level 1 (worst 8.7 MB). See `insert_cost_over_keys`.
            normalization: 1,
        }
    }
}

impl ChunkerParams {
    /// The level of every repository of format version 1, which does not store it.
    pub const LEVEL_BEFORE_IT_WAS_STORED: u32 = 2;

    fn level_before_it_was_stored() -> u32 {
        Self::LEVEL_BEFORE_IT_WAS_STORED
    }

    fn is_level_before_it_was_stored(level: &u32) -> bool {
        *level == Self::LEVEL_BEFORE_IT_WAS_STORED
    }

    /// Whether these bounds are usable.
    pub fn is_valid(&self) -> bool {
        let bits = self.avg_size.trailing_zeros();
        self.avg_size.is_power_of_two()
            && self.normalization <= 4
            && bits > self.normalization
            && self.min_size >= 64
            && self.min_size < self.avg_size
            && self.avg_size < self.max_size
            && self.max_size <= 64 * 1024 * 1024
    }
}

/// Finds cut points; cheap to share between threads.
#[derive(Clone)]
pub struct Chunker {
    gear: Box<[u64; 256]>,
    params: ChunkerParams,
    /// Harder mask used before the average size (normalized chunking, level 2).
    mask_small: u64,
    /// Easier mask used after it.
    mask_large: u64,
}

impl Chunker {
    /// A chunker whose gear table is derived from `key`.
    pub fn new(key: &Key, params: ChunkerParams) -> Self {
        let mut xof = blake3::Hasher::new_keyed(key)
            .update(b"drctl gear table v1")
            .finalize_xof();
        let mut gear = Box::new([0u64; 256]);
        let mut buf = [0u8; 8];
        for g in gear.iter_mut() {
            xof.fill(&mut buf);
            *g = u64::from_le_bytes(buf);
        }
        let bits = params.avg_size.trailing_zeros();
        // The high bits of a gear hash mix the most history: test those.
        let mask = |n: u32| !0u64 << (64 - n);
        Chunker {
            gear,
            params,
            mask_small: mask(bits + params.normalization),
            mask_large: mask(bits - params.normalization),
        }
    }

    /// The parameters in use.
    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Length of the next chunk at the start of `data`; `data` ends at EOF or holds at
    /// least `max_size` bytes.
    pub fn cut(&self, data: &[u8]) -> usize {
        let p = &self.params;
        let n = data.len();
        if n <= p.min_size {
            return n;
        }
        let normal = p.avg_size.min(n);
        let limit = p.max_size.min(n);
        // A gear hash depends only on the last 64 bytes, so starting 64 bytes before the
        // minimum gives the same cut points as hashing from the start.
        let mut h = 0u64;
        let mut i = p.min_size - 64;
        for &b in &data[i..p.min_size] {
            h = (h << 1).wrapping_add(self.gear[b as usize]);
        }
        i = p.min_size;
        while i < normal {
            h = (h << 1).wrapping_add(self.gear[data[i] as usize]);
            if h & self.mask_small == 0 {
                return i + 1;
            }
            i += 1;
        }
        while i < limit {
            h = (h << 1).wrapping_add(self.gear[data[i] as usize]);
            if h & self.mask_large == 0 {
                return i + 1;
            }
            i += 1;
        }
        limit
    }
}

/// Splits a byte stream into chunks, reading ahead at most `2 × max_size` (in a buffer of
/// at most `3 × max_size`).
pub struct ChunkStream<'a, R> {
    chunker: &'a Chunker,
    reader: R,
    /// Read-ahead: `buf[start..end]` is read and not cut yet. The buffer only grows, so
    /// it is zeroed once, not before every read (a stream hands out small reads).
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes expected but not read yet: sizes the buffer so small files stay small.
    expected: u64,
}

impl<'a, R: Read> ChunkStream<'a, R> {
    /// Chunks of `reader`.
    pub fn new(chunker: &'a Chunker, reader: R) -> Self {
        Self::with_size_hint(chunker, reader, u64::MAX)
    }

    /// Chunks of `reader`, which is expected to hold about `size` bytes.
    pub fn with_size_hint(chunker: &'a Chunker, reader: R, size: u64) -> Self {
        ChunkStream {
            chunker,
            reader,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            expected: size,
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        let max = self.chunker.params.max_size;
        if self.end - self.start >= max || self.eof {
            return Ok(());
        }
        // What is left is moved to the front once a whole `max_size` has been cut from
        // it, so each byte is moved at most once.
        if self.start >= max {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.start + 2 * max;
        while self.end < want {
            // One byte past the expected end, so EOF shows without another large buffer.
            let step = self
                .expected
                .saturating_add(1)
                .max(4096)
                .min((want - self.end) as u64) as usize;
            if self.buf.len() < self.end + step {
                self.buf.resize(self.end + step, 0);
            }
            match self.reader.read(&mut self.buf[self.end..self.end + step]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => {
                    self.end += k;
                    self.expected = self.expected.saturating_sub(k as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.next_slice()?.map(<[u8]>::to_vec))
    }

    /// The next chunk where it lies in the read-ahead, valid until the next call: a
    /// chunk already stored is hashed and dropped without a copy.
    pub fn next_slice(&mut self) -> io::Result<Option<&[u8]>> {
        self.fill()?;
        let start = self.start;
        let avail = &self.buf[start..self.end];
        if avail.is_empty() {
            return Ok(None);
        }
        let n = self.chunker.cut(avail);
        self.start += n;
        Ok(Some(&self.buf[start..start + n]))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Bytes that do not compress (xorshift; `seed` not 0).
    pub(crate) fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn chunks(c: &Chunker, data: &[u8]) -> Vec<Vec<u8>> {
        let mut s = ChunkStream::new(c, data);
        let mut out = vec![];
        while let Some(ch) = s.next_chunk().unwrap() {
            out.push(ch);
        }
        out
    }

    #[test]
    fn a_stream_of_small_reads_is_cut_as_the_whole_buffer_is() {
        /// Hands out at most 1000 bytes a read, like an exec stream's frames.
        struct Small<'a>(&'a [u8]);
        impl Read for Small<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(1000).min(out.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let c = Chunker::new(&[3; 32], ChunkerParams::default());
        let data = pseudo_random(12 << 20, 9);
        let mut s = ChunkStream::new(&c, Small(&data));
        let mut got = vec![];
        while let Some(ch) = s.next_chunk().unwrap() {
            got.push(ch);
        }
        assert_eq!(got, chunks(&c, &data));
        assert!(s.buf.len() <= 3 * c.params().max_size);
    }

    #[test]
    fn sizes_stay_in_bounds_and_concatenate_back() {
        let c = Chunker::new(&[7; 32], ChunkerParams::default());
        let data = pseudo_random(40 << 20, 1);
        let cs = chunks(&c, &data);
        assert_eq!(cs.concat(), data);
        for ch in &cs[..cs.len() - 1] {
            assert!(
                ch.len() >= 256 * 1024 && ch.len() <= 4 << 20,
                "{}",
                ch.len()
            );
        }
        let avg = data.len() / cs.len();
        assert!(avg > 600 << 10 && avg < 2 << 20, "average {avg}");
    }

    #[test]
    fn boundaries_resynchronize_after_an_insert() {
        let c = Chunker::new(&[7; 32], ChunkerParams::default());
        let data = pseudo_random(30 << 20, 2);
        let mut edited = data[..15 << 20].to_vec();
        edited.extend_from_slice(&pseudo_random(1 << 20, 3));
        edited.extend_from_slice(&data[15 << 20..]);
        let new_bytes = new_bytes(&c, &data, &edited);
        assert!(
            new_bytes < 10 << 20,
            "{new_bytes} new bytes after a 1 MiB insert"
        );
    }

    /// New bytes when `edited` is chunked after `data`.
    fn new_bytes(c: &Chunker, data: &[u8], edited: &[u8]) -> usize {
        let a: std::collections::HashSet<_> = chunks(c, data).into_iter().collect();
        chunks(c, edited)
            .iter()
            .filter(|ch| !a.contains(*ch))
            .map(|ch| ch.len())
            .sum()
    }

    #[test]
    fn an_insert_costs_little_under_every_key() {
        // The boundaries are keyed, so how fast they find their way back after an insert
        // varies by repository: it must hold for every key, not for one. 1 MiB inserted
        // into 24 MiB of random data, under 24 keys.
        let data = pseudo_random(24 << 20, 5);
        let mut edited = data[..12 << 20].to_vec();
        edited.extend_from_slice(&pseudo_random(1 << 20, 6));
        edited.extend_from_slice(&data[12 << 20..]);
        let mut costs: Vec<usize> = (0..24u8)
            .map(|k| {
                new_bytes(
                    &Chunker::new(&[k; 32], ChunkerParams::default()),
                    &data,
                    &edited,
                )
            })
            .collect();
        costs.sort_unstable();
        let (median, worst) = (costs[costs.len() / 2], costs[costs.len() - 1]);
        assert!(median < 4 << 20, "median cost {median}: {costs:?}");
        assert!(worst < 10 << 20, "worst cost {worst}: {costs:?}");
    }

    #[test]
    fn level_2_is_what_repositories_made_before_the_level_was_stored_cut_with() {
        let old: ChunkerParams =
            serde_json::from_str(r#"{"min_size":262144,"avg_size":1048576,"max_size":4194304}"#)
                .unwrap();
        assert_eq!(old.normalization, 2);
        assert!(old.is_valid());
        assert_eq!(
            serde_json::to_string(&old).unwrap().find("normalization"),
            None
        );
        // Different cuts from level 1 under the same key: the level is really used.
        let data = pseudo_random(20 << 20, 8);
        let lens = |p| -> Vec<usize> {
            chunks(&Chunker::new(&[4; 32], p), &data)
                .iter()
                .map(Vec::len)
                .collect()
        };
        assert_ne!(lens(old), lens(ChunkerParams::default()));
        let silly = ChunkerParams {
            normalization: 25,
            ..old
        };
        assert!(!silly.is_valid());
    }

    /// How much an insert costs across repository keys, at each level: the figures behind
    /// the default level. `cargo test --release --lib insert_cost_over_keys -- --ignored
    /// --nocapture` (DRCTL_KEYS keys, 100 by default; a few seconds a key).
    #[test]
    #[ignore]
    fn insert_cost_over_keys() {
        let keys: u32 = std::env::var("DRCTL_KEYS").map_or(100, |k| k.parse().unwrap());
        // As in the integration test: 1 MiB inserted at 100 MiB into 200 MiB. Only the
        // 50 MiB around the insert are chunked: boundaries agree again long before.
        let data = pseudo_random(50 << 20, 2);
        let mut edited = data[..10 << 20].to_vec();
        edited.extend_from_slice(&pseudo_random(1 << 20, 3));
        edited.extend_from_slice(&data[10 << 20..]);
        for level in [1, 2] {
            let params = ChunkerParams {
                normalization: level,
                ..ChunkerParams::default()
            };
            let mut costs: Vec<usize> = (0..keys)
                .map(|k| {
                    let key = *blake3::hash(&k.to_le_bytes()).as_bytes();
                    new_bytes(&Chunker::new(&key, params), &data, &edited)
                })
                .collect();
            costs.sort_unstable();
            let over = costs.iter().filter(|&&c| c >= 10 << 20).count();
            let mean = costs.iter().sum::<usize>() / costs.len();
            println!(
                "level {level}: {keys} keys, mean {mean} B, median {} B, worst {} B, \
                 {over} at 10 MiB or more",
                costs[costs.len() / 2],
                costs[costs.len() - 1]
            );
        }
    }

    #[test]
    fn the_key_changes_the_boundaries() {
        let data = pseudo_random(20 << 20, 4);
        let a = chunks(&Chunker::new(&[1; 32], ChunkerParams::default()), &data);
        let b = chunks(&Chunker::new(&[2; 32], ChunkerParams::default()), &data);
        let la: Vec<_> = a.iter().map(|c| c.len()).collect();
        let lb: Vec<_> = b.iter().map(|c| c.len()).collect();
        assert_ne!(la, lb);
    }

    #[test]
    fn small_and_empty_inputs() {
        let c = Chunker::new(&[7; 32], ChunkerParams::default());
        assert!(chunks(&c, b"").is_empty());
        assert_eq!(chunks(&c, b"abc"), vec![b"abc".to_vec()]);
    }
}
