//! Opening a file the walk listed without being fooled by what replaced it, and reading a
//! sparse file's data without its holes.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};

use crate::safe_fs::Dir;

/// Why a listed file was not opened.
pub enum OpenError {
    /// Gone since the walk listed it.
    Vanished,
    /// Something else stands at its path now (a symlink, FIFO, directory, another file).
    Replaced(String),
    /// Could not be opened (permissions, I/O).
    Failed(io::Error),
}

/// What a file type is called in a message.
fn kind_name(m: &Metadata) -> &'static str {
    let ft = m.file_type();
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symlink"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "another file"
    }
}

/// Opens `name` in `dir` for reading if it is still the regular file `(dev, ino)` the walk
/// saw.
///
/// The open follows no link and does not block on a FIFO or device swapped in
/// ([`Dir::open_file`]); the handle's own `fstat` then decides, so whatever raced the
/// check is never read.
pub fn open_listed(
    dir: &Dir,
    name: &OsStr,
    dev: u64,
    ino: u64,
) -> Result<(File, Metadata), OpenError> {
    let f = dir.open_file(name).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => OpenError::Vanished,
        Some(libc::ELOOP) => OpenError::Replaced("a symlink".into()),
        _ => OpenError::Failed(e),
    })?;
    let meta = f.metadata().map_err(OpenError::Failed)?;
    if !meta.file_type().is_file() {
        return Err(OpenError::Replaced(kind_name(&meta).into()));
    }
    if meta.dev() != dev || meta.ino() != ino {
        return Err(OpenError::Replaced("another file".into()));
    }
    crate::safe_fs::clear_nonblock(f.as_fd()).map_err(OpenError::Failed)?;
    Ok((f, meta))
}

/// Whether the file may hold holes: it occupies fewer blocks than its size needs. Files
/// that do not cost no `lseek` at all.
pub fn may_be_sparse(meta: &Metadata) -> bool {
    meta.blocks().saturating_mul(512) < meta.size()
}

/// The holes of an open file up to `size`, as `[offset, length]`, found with
/// `SEEK_DATA`/`SEEK_HOLE`; empty where the file system does not tell.
pub fn holes(f: &File, size: u64) -> Vec<[u64; 2]> {
    let fd = f.as_raw_fd();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        // SAFETY: lseek on an open descriptor; the offset only moves and is never used
        // for reading here (data is read with pread).
        let data = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                // No data after `pos`: the rest is one hole.
                out.push([pos, size - pos]);
            } else {
                // SEEK_DATA not supported: read it all.
                return Vec::new();
            }
            break;
        }
        let data = (data as u64).min(size);
        if data > pos {
            out.push([pos, data - pos]);
        }
        if data >= size {
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data as libc::off_t, libc::SEEK_HOLE) };
        if hole < 0 {
            return Vec::new();
        }
        pos = (hole as u64).max(data + 1).min(size);
    }
    out
}

/// Reads a file's data regions (everything but `holes`) one after the other, with pread.
///
/// Stops at the file's end wherever it is now; `layout()` then tells the size and holes
/// that the bytes read stand for, so a file truncated meanwhile is recorded as read.
pub struct DataReader<'a> {
    file: &'a File,
    /// Data regions `(offset, length)`; without holes one region to the end of the file.
    regions: Vec<(u64, u64)>,
    region: usize,
    /// Offset in the file of the next read.
    pos: u64,
    /// The file ended before the regions did.
    short: bool,
}

impl<'a> DataReader<'a> {
    /// A reader of `file` that skips `holes` (sorted, within `size`).
    pub fn new(file: &'a File, holes: &[[u64; 2]], size: u64) -> Self {
        let mut regions = Vec::with_capacity(holes.len() + 1);
        if holes.is_empty() {
            // No holes: read to the end, however far it has grown.
            regions.push((0, u64::MAX));
        } else {
            let mut pos = 0u64;
            for h in holes {
                if h[0] > pos {
                    regions.push((pos, h[0] - pos));
                }
                pos = h[0] + h[1];
            }
            if pos < size {
                regions.push((pos, size - pos));
            }
        }
        let first = regions.first().map_or(0, |r| r.0);
        DataReader {
            file,
            regions,
            region: 0,
            pos: first,
            short: false,
        }
    }

    /// The size and holes that the bytes read stand for: as listed when every region was
    /// read in full, else cut at the last byte read.
    pub fn layout(&self, size: u64, holes: &[[u64; 2]]) -> (u64, Vec<[u64; 2]>) {
        if holes.is_empty() {
            return (self.pos, Vec::new());
        }
        if !self.short {
            return (size, holes.to_vec());
        }
        let end = self.pos;
        let kept = holes
            .iter()
            .filter(|h| h[0] < end)
            .map(|h| [h[0], h[1].min(end - h[0])])
            .collect();
        (end, kept)
    }
}

impl Read for DataReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(&(start, len)) = self.regions.get(self.region) {
            if self.short || buf.is_empty() {
                return Ok(0);
            }
            let left = start.saturating_add(len).saturating_sub(self.pos);
            if left == 0 {
                self.region += 1;
                if let Some(r) = self.regions.get(self.region) {
                    self.pos = r.0;
                }
                continue;
            }
            let want = (buf.len() as u64).min(left) as usize;
            let n = self.file.read_at(&mut buf[..want], self.pos)?;
            if n == 0 {
                self.short = true;
                return Ok(0);
            }
            self.pos += n as u64;
            return Ok(n);
        }
        Ok(0)
    }
}
