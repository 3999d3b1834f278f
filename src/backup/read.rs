//! The readers: each listed file opened through its directory's handle, read (again if
//! it changed meanwhile), chunked, hashed and checked against the index.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};

use crate::catalog::Catalog;
use crate::error::Result;
use crate::fsmeta::fd_xattrs;
use crate::fsread::{open_listed, DataReader, OpenError};
use crate::repo::chunker::ChunkStream;
use crate::repo::id::BlobId;
use crate::repo::pack::BlobKind;
use crate::safe_fs::Dir;

use super::pipeline::*;

/// Reads, chunks and hashes files; sends new chunks on, returns each file's chunk list.
pub(super) fn read_files(
    sh: &Shared<'_>,
    jobs: Receiver<FileJob>,
    blobs: Sender<NewBlob>,
) -> Result<()> {
    let catalog = sh.catalog.connect()?;
    let _pin = catalog.pin_snapshot()?;
    for job in jobs {
        if sh.stopped() {
            return Ok(());
        }
        let result = match job.input {
            Input::At(dir, name, path) => {
                read_path(sh, &catalog, &blobs, (&dir, &name, &path), job.dev, job.ino)
            }
            Input::Stream(open) => (|| {
                let (ids, len) = if sh.log {
                    cut_log(sh, &catalog, &blobs, open()?)?
                } else {
                    chunk_into(sh, &catalog, &blobs, open()?, u64::MAX, false)?
                };
                Ok(ReadOk {
                    ids,
                    size: len,
                    holes: Vec::new(),
                    xattrs: Vec::new(),
                    meta: None,
                    warning: None,
                })
            })(),
        };
        if let Ok(r) = &result {
            let data = r.size - r.holes.iter().map(|h| h[1]).sum::<u64>();
            sh.bytes_read.fetch_add(data, Ordering::Relaxed);
            sh.files_read.fetch_add(1, Ordering::Relaxed);
        }
        let _ = job.done.send(result);
    }
    Ok(())
}

/// Whether two `fstat`s of one handle show the same version of the file.
pub(super) fn same_version(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.size() == b.size()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && a.ctime() == b.ctime()
        && a.ctime_nsec() == b.ctime_nsec()
}

/// Reads one listed file: checks that it is still the regular file the walk saw, skips
/// its holes, and reads it again (up to `READ_ATTEMPTS` times) while it changes under the
/// reader; what is stored always agrees with the size recorded.
pub(super) fn read_path(
    sh: &Shared<'_>,
    catalog: &Catalog,
    blobs: &Sender<NewBlob>,
    (dir, name, path): (&Dir, &OsStr, &Path),
    dev: u64,
    ino: u64,
) -> ReadResult {
    let (file, mut before) = open_listed(dir, name, dev, ino).map_err(|e| match e {
        OpenError::Vanished => ReadError::Vanished,
        OpenError::Replaced(what) => ReadError::Failed(format!(
            "it was replaced by {what} after it was listed; skipped"
        )),
        OpenError::Failed(e) => ReadError::Failed(e.to_string()),
    })?;
    let mut warning = None;
    let xattrs = match fd_xattrs(file.as_raw_fd()) {
        Ok(x) => x,
        Err(e) => {
            warning = Some(format!(
                "{}: extended attributes not stored: {e}",
                path.display()
            ));
            Vec::new()
        }
    };
    let min = sh.repo.chunker.params().min_size as u64;
    for attempt in 1..=READ_ATTEMPTS {
        let size = before.len();
        // Small files are one chunk anyway; only larger ones pay for the lseeks.
        let holes = if size >= min && crate::fsread::may_be_sparse(&before) {
            crate::fsread::holes(&file, size)
        } else {
            Vec::new()
        };
        let mut reader = DataReader::new(&file, &holes, size);
        let data_len = size - holes.iter().map(|h| h[1]).sum::<u64>();
        let (ids, read) = chunk_into(sh, catalog, blobs, &mut reader, data_len, true)?;
        let (got_size, got_holes) = reader.layout(size, &holes);
        debug_assert_eq!(got_size - got_holes.iter().map(|h| h[1]).sum::<u64>(), read);
        let after = file.metadata()?;
        if got_size == size && same_version(&before, &after) {
            return Ok(ReadOk {
                ids,
                size,
                holes,
                xattrs,
                meta: Some(after),
                warning,
            });
        }
        if attempt == READ_ATTEMPTS {
            return Ok(ReadOk {
                ids,
                size: got_size,
                holes: got_holes,
                xattrs,
                meta: Some(after),
                warning: Some(format!(
                    "{} changed while it was read ({READ_ATTEMPTS} attempts): stored as last \
                     read, {got_size} bytes, which may mix old and new data",
                    path.display()
                )),
            });
        }
        tracing::debug!(
            "{} changed while it was read; reading it again",
            path.display()
        );
        before = after;
    }
    unreachable!("the last attempt returns")
}

/// Chunks `input`, sends the chunks not stored yet to the sealers, and returns the chunk
/// list and the bytes read. `small_ok`: read a small input into one buffer.
pub(super) fn chunk_into(
    sh: &Shared<'_>,
    catalog: &Catalog,
    blobs: &Sender<NewBlob>,
    mut input: impl Read,
    size_hint: u64,
    small_ok: bool,
) -> std::result::Result<(Vec<BlobId>, u64), ReadError> {
    let chunker = &sh.repo.chunker;
    let min = chunker.params().min_size;
    let mut ids = Vec::with_capacity((size_hint.min(1 << 40) >> 20) as usize + 1);
    let mut read = 0u64;
    // A file below the minimum chunk size is one chunk: read it straight into its own
    // buffer, with no chunking buffer to fill and copy out of.
    let mut head = Vec::new();
    let mut whole = None;
    if small_ok && (size_hint as usize) < min {
        let mut buf = Vec::with_capacity(size_hint as usize + 1);
        (&mut input).take(min as u64).read_to_end(&mut buf)?;
        if buf.len() < min {
            whole = Some(buf);
        } else {
            // It grew past the minimum since it was listed: chunk it as a stream.
            head = buf;
        }
    }
    if let Some(chunk) = whole {
        if !chunk.is_empty() {
            read = chunk.len() as u64;
            ids.push(store_chunk(sh, catalog, blobs, Cow::Owned(chunk))?);
        }
        return Ok((ids, read));
    }
    let mut stream =
        ChunkStream::with_size_hint(chunker, std::io::Cursor::new(head).chain(input), size_hint);
    while let Some(chunk) = stream.next_slice()? {
        read += chunk.len() as u64;
        ids.push(store_chunk(sh, catalog, blobs, Cow::Borrowed(chunk))?);
    }
    Ok((ids, read))
}

/// Cuts a log file at the multiples of [`LOG_BLOCK`]: along the cut of the copy stored
/// before as far as the bytes are the same (see [`LogPiece`]), but for a last piece under
/// [`OPEN_PIECE`] and a whole block in more than [`BLOCK_PIECES`] pieces, which are read
/// again; what follows up to each multiple as one piece. Every piece goes through the
/// dedup check like any chunk, so a piece that differs from the copy before is stored as
/// what it now holds, and the cut goes on from there.
fn cut_log(
    sh: &Shared<'_>,
    catalog: &Catalog,
    blobs: &Sender<NewBlob>,
    mut input: impl Read,
) -> std::result::Result<(Vec<BlobId>, u64), ReadError> {
    let block = LOG_BLOCK as u64;
    let mut cut: Vec<LogPiece> = Vec::new();
    let mut next_piece = |len: u64| -> std::result::Result<Option<LogPiece>, ReadError> {
        let mut piece = Vec::with_capacity(len as usize);
        (&mut input).take(len).read_to_end(&mut piece)?;
        if piece.is_empty() {
            return Ok(None);
        }
        let len = piece.len() as u64;
        let id = store_chunk(sh, catalog, blobs, Cow::Owned(piece))?;
        Ok(Some(LogPiece { id, len }))
    };
    let prefix = &sh.log_prefix;
    let (mut at, mut i) = (0u64, 0usize);
    let mut ended = false;
    while i < prefix.len() {
        // The pieces before that fill the block from `at`, and whether they fill it.
        let block_end = (at / block + 1) * block;
        let (mut end, mut j) = (at, i);
        while j < prefix.len() && end + prefix[j].len <= block_end {
            end += prefix[j].len;
            j += 1;
        }
        let merge = end == block_end && j - i > BLOCK_PIECES;
        if !merge && i + 1 == prefix.len() && prefix[i].len < OPEN_PIECE {
            // A small last piece is stored again with what follows it.
            break;
        }
        let len = if merge { block_end - at } else { prefix[i].len };
        let Some(piece) = next_piece(len)? else {
            ended = true;
            break;
        };
        let same = if merge {
            piece.len == len
        } else {
            piece == prefix[i]
        };
        at += piece.len;
        cut.push(piece);
        if !same {
            break;
        }
        i = if merge { j } else { i + 1 };
    }
    if !ended {
        while let Some(piece) = next_piece((at / block + 1) * block - at)? {
            at += piece.len;
            cut.push(piece);
        }
    }
    let ids = cut.iter().map(|p| p.id).collect();
    let read = cut.iter().map(|p| p.len).sum();
    *sh.log_cut.lock().unwrap() = cut;
    Ok((ids, read))
}

/// Hashes one chunk and sends it to the sealers unless it is stored already; its id.
fn store_chunk(
    sh: &Shared<'_>,
    catalog: &Catalog,
    blobs: &Sender<NewBlob>,
    chunk: Cow<'_, [u8]>,
) -> std::result::Result<BlobId, ReadError> {
    if sh.stopped() {
        return Err("interrupted".into());
    }
    let id = sh.repo.keys.blob_id(&chunk);
    sh.progress.add_bytes(chunk.len() as u64);
    match sh.is_new(catalog, &id) {
        Ok(true) => {
            let blob = NewBlob {
                id,
                kind: BlobKind::Data,
                data: chunk.into_owned(),
            };
            if blobs.send(blob).is_err() {
                return Err("interrupted".into());
            }
        }
        Ok(false) => {}
        Err(e) => {
            sh.fail(e);
            return Err("catalog failed".into());
        }
    }
    Ok(id)
}
