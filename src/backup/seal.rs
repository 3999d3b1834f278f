//! Sealing new blobs into packs and uploading them.

use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};

use crate::error::{Error, Result};
use crate::repo::index::IndexedPack;
use crate::repo::pack::{BlobKind, Compression, FinishedPack, PackWriter};

use super::pipeline::*;

/// Compresses and seals blobs into this thread's own data and metadata packs.
pub(super) fn seal_blobs(sh: &Shared<'_>, blobs: Receiver<NewBlob>, packs: Sender<FinishedPack>) {
    let cfg = &sh.repo.config;
    let recipients = &sh.repo.keys.recipients;
    let mut compressor = match compressor(sh) {
        Ok(c) => c,
        Err(e) => return sh.fail(Error::Failed(format!("zstd: {e}"))),
    };
    let capacity = cfg.pack_size + cfg.chunker.max_size + 4096;
    let mut data_pack: Option<PackWriter> = None;
    let mut meta_pack: Option<PackWriter> = None;
    let mut out = Vec::new();
    for blob in blobs {
        if sh.stopped() {
            return;
        }
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(blob.data.len()));
        let compressed = compressor.compress_to_buffer(&blob.data, &mut out).is_ok()
            && out.len() < blob.data.len();
        let (payload, compression) = if compressed {
            (&out[..], Compression::Zstd)
        } else {
            (&blob.data[..], Compression::None)
        };
        let slot = match blob.kind {
            BlobKind::Data => &mut data_pack,
            BlobKind::Tree => &mut meta_pack,
        };
        let pack = slot.get_or_insert_with(|| {
            let cap = if blob.kind == BlobKind::Data {
                capacity
            } else {
                1 << 20
            };
            PackWriter::new(blob.kind, recipients, cap)
        });
        let before = pack.len();
        pack.add(blob.id, compression, blob.data.len(), payload);
        sh.bytes_added
            .fetch_add((pack.len() - before) as u64, Ordering::Relaxed);
        sh.blobs_added.fetch_add(1, Ordering::Relaxed);
        if pack.len() >= cfg.pack_size {
            let full = slot.take().expect("just filled").finish();
            if packs.send(full).is_err() {
                return;
            }
        }
    }
    // The input is closed: flush what is left, unless the run is being abandoned.
    for p in [data_pack, meta_pack].into_iter().flatten() {
        if sh.stopped() || p.is_empty() || packs.send(p.finish()).is_err() {
            return;
        }
    }
}

/// A compressor at the run's level; a log file's with small tables (see
/// [`LOG_HASH_LOG`]).
fn compressor(sh: &Shared<'_>) -> std::io::Result<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::CParameter;
    let mut c = zstd::bulk::Compressor::new(sh.compression_level)?;
    if sh.log {
        c.set_parameter(CParameter::HashLog(LOG_HASH_LOG))?;
        c.set_parameter(CParameter::ChainLog(LOG_CHAIN_LOG))?;
    }
    Ok(c)
}

/// Uploads packs, `UPLOADS_IN_FLIGHT` at once, and records each in the catalog the moment
/// it is stored: a backup killed right after an upload still leaves the next run knowing
/// that pack, so it is reused instead of uploaded again.
pub(super) fn upload_packs(sh: &Shared<'_>, packs: Receiver<FinishedPack>) -> Result<()> {
    let mut catalog = sh.catalog.connect()?;
    let rt = sh.repo.runtime().clone();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<(IndexedPack, Result<()>)>();
    let mut in_flight = 0usize;
    let mut packs_open = true;
    let closed = crossbeam_channel::never();
    while packs_open || in_flight > 0 {
        // Take a pack only when a slot is free: a pack held here while waiting would be
        // one more 16 MiB buffer alive (the sealers wait instead, holding theirs).
        let ready = packs_open && in_flight < UPLOADS_IN_FLIGHT;
        crossbeam_channel::select! {
            recv(if ready { &packs } else { &closed }) -> pack => {
                let Ok(pack) = pack else {
                    packs_open = false;
                    continue;
                };
                let meta = IndexedPack {
                    id: pack.id,
                    kind: pack.kind,
                    size: pack.bytes.len() as u64,
                    wrapped_key: pack.wrapped_key.clone(),
                    blobs: pack.entries.clone(),
                };
                let (objects, handle, bytes, done_tx) =
                    (sh.repo.objects().clone(), crate::repo::layout::Handle::pack(pack.kind, &pack.id), pack.bytes, done_tx.clone());
                in_flight += 1;
                rt.spawn(async move {
                    let result = objects.put(&handle, bytes).await;
                    let _ = done_tx.send((meta, result));
                });
            }
            recv(done_rx) -> done => {
                let (meta, result) = done.expect("this thread holds a sender");
                in_flight -= 1;
                result?;
                catalog.add_uploaded_pack(&meta)?;
            }
        }
    }
    Ok(())
}
