//! Reading file system metadata into tree nodes, and the files cache stamp.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use crate::catalog::FileStamp;
use crate::repo::tree::{Node, NodeKind};

/// The kind of a file as the tree records it.
pub fn node_kind(meta: &Metadata) -> NodeKind {
    let ft = meta.file_type();
    if ft.is_dir() {
        NodeKind::Dir
    } else if ft.is_symlink() {
        NodeKind::Symlink
    } else if ft.is_fifo() {
        NodeKind::Fifo
    } else if ft.is_char_device() {
        NodeKind::CharDevice
    } else if ft.is_block_device() {
        NodeKind::BlockDevice
    } else if ft.is_socket() {
        NodeKind::Socket
    } else {
        NodeKind::File
    }
}

/// A node for `name` with everything `lstat` tells (contents and subtree come later).
pub fn node_from_meta(name: &std::ffi::OsStr, meta: &Metadata) -> Node {
    let kind = node_kind(meta);
    let mut n = Node::new(kind, name);
    n.mode = meta.mode() & 0o7777;
    n.uid = meta.uid();
    n.gid = meta.gid();
    n.mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
    if kind == NodeKind::File {
        n.size = meta.size();
        // Only hard-linked files carry their inode: trees of unchanged directories then
        // stay byte-identical across backups and restores, and deduplicate.
        if meta.nlink() > 1 {
            n.dev = meta.dev();
            n.inode = meta.ino();
            n.links = meta.nlink();
        }
    }
    if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        n.rdev = meta.rdev();
    }
    n
}

/// What the files cache compares to decide whether to read a file again.
pub fn stamp(meta: &Metadata) -> FileStamp {
    FileStamp {
        size: meta.size(),
        mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
        inode: meta.ino(),
    }
}
