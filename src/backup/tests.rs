//! A log file stored again as it grows: each copy follows the cut of the copy before.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{run, BackupRequest, LogPiece};
use crate::catalog::Catalog;
use crate::progress::Progress;
use crate::repo::chunker::tests::pseudo_random;
use crate::repo::snapshot::WalFile;
use crate::session::Session;
use crate::source::StreamFile;

struct Copies {
    _dir: tempfile::TempDir,
    session: Session<crate::session::WriteOnly>,
    progress: Progress,
}

impl Copies {
    fn new() -> Copies {
        let (dir, repo) = crate::repo::temp_repo();
        let catalog = Catalog::open(&dir.path().join("catalog.db"), &repo.config.id).unwrap();
        Copies {
            session: Session::open(repo, catalog).unwrap(),
            _dir: dir,
            progress: Progress::new(false, "test"),
        }
    }

    /// Stores `data` as a copy of one growing log file; its cut and the bytes it added.
    fn store(&mut self, data: &[u8], prefix: &[LogPiece]) -> (Vec<LogPiece>, u64) {
        let data = data.to_vec();
        let out = run(
            &mut self.session,
            BackupRequest {
                stack: "db".into(),
                paths: Vec::new(),
                hostname: "test".into(),
                now: chrono::Utc::now(),
                interrupt: Arc::new(AtomicBool::new(false)),
                progress: &self.progress,
                streams: vec![StreamFile {
                    name: "mysql-bin.000001".into(),
                    open: Box::new(move || Ok(Box::new(std::io::Cursor::new(data)) as _)),
                }],
                exclude: Vec::new(),
                source: Some("db".into()),
                wal: Some(WalFile {
                    name: "mysql-bin.000001".into(),
                    timeline: 1,
                    partial: true,
                    covers_until: chrono::Utc::now(),
                    history: Vec::new(),
                    system: None,
                }),
                log_prefix: prefix.to_vec(),
            },
        )
        .unwrap();
        (out.log_cut, out.snapshot.summary.bytes_added)
    }

    /// Whether `cut` is a partition of `data` into the blobs it names.
    fn cuts(&self, cut: &[LogPiece], data: &[u8]) -> bool {
        let mut at = 0usize;
        for p in cut {
            let piece = &data[at..at + p.len as usize];
            if self.session.repo().keys.blob_id(piece) != p.id {
                return false;
            }
            at += p.len as usize;
        }
        at == data.len()
    }
}

#[test]
fn a_growing_log_file_adds_what_was_written_since_its_last_copy() {
    let mut c = Copies::new();
    let file = pseudo_random(11 << 20, 1);

    // The first copy: fixed 4 MiB blocks, the last one shorter.
    let (first, _) = c.store(&file[..(9 << 20) + 5000], &[]);
    let lens: Vec<u64> = first.iter().map(|p| p.len).collect();
    assert_eq!(lens, [4 << 20, 4 << 20, (1 << 20) + 5000]);
    assert!(c.cuts(&first, &file[..(9 << 20) + 5000]));

    // Grown by 1.5 MiB: the copy before is followed, one piece added up to the block's end.
    let (second, added) = c.store(&file[..(10 << 20) + 5000 + (512 << 10)], &first);
    assert_eq!(second[..3], first[..]);
    assert_eq!(second.len(), 4);
    assert!((1_500_000..1_700_000).contains(&added), "added {added}");

    // A small last piece is stored again with what follows it, not followed.
    let (third, _) = c.store(&file[..(10 << 20) + 5000 + (512 << 10) + 100], &second);
    let (fourth, added) = c.store(&file[..(10 << 20) + 5000 + (512 << 10) + 300], &third);
    assert_eq!(third.len(), 5);
    assert_eq!(fourth[..4], third[..4]);
    assert_eq!(fourth[4].len, 300);
    assert!(added < 2000, "added {added}");
    assert!(c.cuts(&fourth, &file[..(10 << 20) + 5000 + (512 << 10) + 300]));

    // Bytes the copy before holds changed (the file was replaced under its name): the
    // changed piece is stored as it now is, and the rest is cut in blocks from there.
    let mut replaced = file.clone();
    replaced[(5 << 20) + 7] ^= 1;
    let (fifth, _) = c.store(&replaced, &fourth);
    assert_eq!(fifth[0], fourth[0]);
    assert_ne!(fifth[1], fourth[1]);
    assert!(c.cuts(&fifth, &replaced));

    // Shorter than the copy before: what is there, cut along it.
    let (sixth, _) = c.store(&file[..(6 << 20)], &fourth);
    assert_eq!(sixth[0], fourth[0]);
    assert!(c.cuts(&sixth, &file[..(6 << 20)]));
}

#[test]
fn a_slowly_written_block_is_stored_again_whole_once_it_is_whole() {
    let mut c = Copies::new();
    let file = pseudo_random(6 << 20, 3);
    let mut cut = Vec::new();
    // Twenty copies, each 100 KiB longer: twenty pieces in the first block.
    for n in 1..=20 {
        cut = c.store(&file[..n * 100 * 1024], &cut).0;
    }
    assert_eq!(cut.len(), 20);
    assert!(cut.iter().all(|p| p.len == 100 * 1024));
    // Past the block's end: the block is whole, the next copy stores it as one blob.
    cut = c.store(&file[..5 << 20], &cut).0;
    assert_eq!(
        cut.len(),
        22,
        "the pieces, the rest of the block, the next block"
    );
    assert_eq!(cut[20].len, (4 << 20) - 20 * 100 * 1024);
    let (merged, added) = c.store(&file[..(5 << 20) + 4096], &cut);
    let lens: Vec<u64> = merged.iter().map(|p| p.len).collect();
    assert_eq!(lens, [4 << 20, 1 << 20, 4096]);
    assert!(added > 4 << 20, "added {added}");
    assert!(c.cuts(&merged, &file[..(5 << 20) + 4096]));
    // And from then on it is followed as it is.
    let (next, added) = c.store(&file[..(5 << 20) + 8192], &merged);
    assert_eq!(next[..2], merged[..2]);
    assert!(added < 10_000, "added {added}");
}
