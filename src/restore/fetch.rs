//! Fetching packs with range GETs, each needed span once, and writing every blob into
//! every file that holds it.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::plan::{FilePlan, PackWork};
use super::skeleton::finish_fd;
use crate::error::{IoContext, Result};
use crate::fswrite::{prepare_sparse, write_content, XattrRefusals};
use crate::progress::Progress;
use crate::repo::pack::BlobKind;
use crate::repo::Repo;
use crate::safe_fs::Dir;

/// Spans read with one range GET are at most this long.
const MAX_SPAN: u64 = 8 << 20;
/// Unneeded bytes between two needed blobs that are cheaper to read than to skip.
const MAX_GAP: u64 = 256 << 10;

/// Where the pack workers write.
pub(super) struct Output<'a> {
    pub(super) root: &'a Dir,
    pub(super) target: &'a Path,
    pub(super) files: &'a [FilePlan],
    pub(super) as_root: bool,
    pub(super) refusals: &'a XattrRefusals,
    pub(super) written: &'a AtomicU64,
    pub(super) progress: &'a Progress,
}

/// Fetches the needed spans of one pack and writes their blobs into the files.
pub(super) fn restore_pack(repo: &Repo, w: &PackWork, out: &Output<'_>) -> Result<()> {
    let pack = crate::repo::layout::Handle::pack(BlobKind::Data, &w.pack);
    let mut i = 0;
    while i < w.blobs.len() {
        // Merge neighbouring blobs into one range GET.
        let start = w.blobs[i].0.entry.offset;
        let mut end = start + w.blobs[i].0.entry.stored_len as u64;
        let mut j = i + 1;
        while j < w.blobs.len() {
            let e = &w.blobs[j].0.entry;
            if e.offset > end + MAX_GAP || e.offset + e.stored_len as u64 - start > MAX_SPAN {
                break;
            }
            end = end.max(e.offset + e.stored_len as u64);
            j += 1;
        }
        let busy = repo.fetching.start();
        let span = repo.block_on(repo.objects().get_range(&pack, start, end - start))?;
        drop(busy);
        for (loc, uses) in &w.blobs[i..j] {
            let at = (loc.entry.offset - start) as usize;
            let raw = {
                let _busy = repo.fetching.start();
                repo.decode_blob(loc, &span[at..at + loc.entry.stored_len as usize])?
            };
            for u in uses {
                let f = &out.files[u.file];
                let shown = || out.target.join(&f.rel).display().to_string();
                // One open per write, as before, but resolved below the target with no
                // link followed on the way.
                let file = out
                    .root
                    .create_file_beneath(&f.rel)
                    .ctx(|| format!("creating {}", shown()))?;
                prepare_sparse(&file, &f.node)
                    .and_then(|()| write_content(&file, &f.node, u.offset, &raw))
                    .ctx(|| format!("writing {}", shown()))?;
                out.written.fetch_add(raw.len() as u64, Ordering::Relaxed);
                out.progress.add_bytes(raw.len() as u64);
                if f.remaining.fetch_sub(1, Ordering::AcqRel) == 1
                    && !f.failed.load(Ordering::SeqCst)
                {
                    let shown = out.target.join(&f.rel);
                    finish_fd(file.as_fd(), &f.node, out.as_root, &shown, out.refusals)?;
                    out.progress.add_file();
                }
            }
        }
        i = j;
    }
    Ok(())
}
