//! Files copied into a container as a one-entry tar archive built on the fly.

use bytes::Bytes;
use futures::StreamExt;

use super::{api_error, Docker};
use crate::error::Result;

impl Docker {
    /// Copies one file into a container (running or not) from a stream of its bytes: a
    /// one-entry tar archive built on the fly, so the file is never held whole.
    pub fn upload_file(
        &self,
        container: &str,
        dir: &str,
        file: &TarFile,
        body: tokio::sync::mpsc::Receiver<Bytes>,
    ) -> Result<tokio::task::JoinHandle<Result<()>>> {
        let header = Bytes::from(file.header());
        let padding = Bytes::from(vec![0u8; file.padding() + 1024]);
        let stream = futures::stream::once(async move { header })
            .chain(futures::stream::unfold(body, |mut rx| async move {
                rx.recv().await.map(|b| (b, rx))
            }))
            .chain(futures::stream::once(async move { padding }));
        let client = self.client.clone();
        let (container, dir) = (container.to_string(), dir.to_string());
        Ok(self.rt.spawn(async move {
            client
                .upload_to_container(
                    &container,
                    Some(
                        bollard::query_parameters::UploadToContainerOptionsBuilder::default()
                            .path(&dir)
                            .build(),
                    ),
                    bollard::body_stream(stream),
                )
                .await
                .map_err(|e| api_error(&format!("copying into container {container}"), e))
        }))
    }
}

/// A regular file for [`Docker::upload_file`]: its tar header is built up front, so the
/// size must be known.
pub struct TarFile {
    /// File name inside the target directory.
    pub name: String,
    /// Exact size in bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds since the epoch).
    pub mtime: i64,
}

impl TarFile {
    /// A ustar header for this file.
    fn header(&self) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        let put = |h: &mut Vec<u8>, off: usize, len: usize, value: &[u8]| {
            h[off..off + value.len().min(len)].copy_from_slice(&value[..value.len().min(len)]);
        };
        let octal = |v: u64, len: usize| format!("{v:0width$o}\0", width = len - 1).into_bytes();
        put(&mut h, 0, 100, self.name.as_bytes());
        put(&mut h, 100, 8, &octal(self.mode as u64, 8));
        put(&mut h, 108, 8, &octal(self.uid as u64, 8));
        put(&mut h, 116, 8, &octal(self.gid as u64, 8));
        put(&mut h, 124, 12, &octal(self.size, 12));
        put(&mut h, 136, 12, &octal(self.mtime.max(0) as u64, 12));
        put(&mut h, 148, 8, b"        ");
        h[156] = b'0';
        put(&mut h, 257, 6, b"ustar\0");
        put(&mut h, 263, 2, b"00");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// Zero bytes after the data up to the next 512-byte block.
    fn padding(&self) -> usize {
        ((512 - self.size % 512) % 512) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_header_has_a_valid_checksum_and_fields() {
        let f = TarFile {
            name: "dump.rdb".into(),
            size: 1000,
            mode: 0o644,
            uid: 999,
            gid: 999,
            mtime: 1_700_000_000,
        };
        let h = f.header();
        assert_eq!(h.len(), 512);
        assert_eq!(&h[0..8], b"dump.rdb");
        assert_eq!(&h[124..136], b"00000001750\0");
        let mut copy = h.clone();
        copy[148..156].copy_from_slice(b"        ");
        let sum: u32 = copy.iter().map(|&b| b as u32).sum();
        let stored = std::str::from_utf8(&h[148..154]).unwrap();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
        assert_eq!(f.padding(), 24);
    }
}
