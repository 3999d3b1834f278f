//! Reading file system metadata into tree nodes, and the files cache stamp.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use crate::catalog::FileStamp;
use crate::repo::tree::{Node, NodeKind};

/// What `lstat` tells, from `std` or from `fstatat` below a directory handle.
pub trait StatFields {
    /// `st_mode`, type bits included.
    fn mode(&self) -> u32;
    /// Owner.
    fn uid(&self) -> u32;
    /// Group.
    fn gid(&self) -> u32;
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Modification time, nanoseconds since the epoch.
    fn mtime_ns(&self) -> i64;
    /// Status change time, nanoseconds since the epoch.
    fn ctime_ns(&self) -> i64;
    /// Device, inode, link count and device number of a special file.
    fn ids(&self) -> (u64, u64, u64, u64);
}

impl StatFields for Metadata {
    fn mode(&self) -> u32 {
        MetadataExt::mode(self)
    }
    fn uid(&self) -> u32 {
        MetadataExt::uid(self)
    }
    fn gid(&self) -> u32 {
        MetadataExt::gid(self)
    }
    fn size(&self) -> u64 {
        MetadataExt::size(self)
    }
    fn mtime_ns(&self) -> i64 {
        self.mtime() * 1_000_000_000 + self.mtime_nsec()
    }
    fn ctime_ns(&self) -> i64 {
        self.ctime() * 1_000_000_000 + self.ctime_nsec()
    }
    fn ids(&self) -> (u64, u64, u64, u64) {
        (self.dev(), self.ino(), self.nlink(), self.rdev())
    }
}

impl StatFields for libc::stat {
    fn mode(&self) -> u32 {
        self.st_mode
    }
    fn uid(&self) -> u32 {
        self.st_uid
    }
    fn gid(&self) -> u32 {
        self.st_gid
    }
    fn size(&self) -> u64 {
        self.st_size as u64
    }
    fn mtime_ns(&self) -> i64 {
        self.st_mtime * 1_000_000_000 + self.st_mtime_nsec
    }
    fn ctime_ns(&self) -> i64 {
        self.st_ctime * 1_000_000_000 + self.st_ctime_nsec
    }
    fn ids(&self) -> (u64, u64, u64, u64) {
        (self.st_dev, self.st_ino, self.st_nlink, self.st_rdev)
    }
}

/// The kind of a file as the tree records it.
pub fn node_kind(meta: &impl StatFields) -> NodeKind {
    match meta.mode() & libc::S_IFMT {
        libc::S_IFDIR => NodeKind::Dir,
        libc::S_IFLNK => NodeKind::Symlink,
        libc::S_IFIFO => NodeKind::Fifo,
        libc::S_IFCHR => NodeKind::CharDevice,
        libc::S_IFBLK => NodeKind::BlockDevice,
        libc::S_IFSOCK => NodeKind::Socket,
        _ => NodeKind::File,
    }
}

/// A node for `name` with everything `lstat` tells (contents and subtree come later).
pub fn node_from_meta(name: &std::ffi::OsStr, meta: &impl StatFields) -> Node {
    let kind = node_kind(meta);
    let mut n = Node::new(kind, name);
    n.mode = meta.mode() & 0o7777;
    n.uid = meta.uid();
    n.gid = meta.gid();
    n.mtime_ns = meta.mtime_ns();
    let (dev, ino, nlink, rdev) = meta.ids();
    if kind == NodeKind::File {
        n.size = meta.size();
        // Only hard-linked files carry their inode: trees of unchanged directories then
        // stay byte-identical across backups and restores, and deduplicate.
        if nlink > 1 {
            n.dev = dev;
            n.inode = ino;
            n.links = nlink;
        }
    }
    if matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice) {
        n.rdev = rdev;
    }
    n
}

/// What the files cache compares to decide whether to read a file again.
pub fn stamp(meta: &impl StatFields) -> FileStamp {
    FileStamp {
        size: meta.size(),
        mtime_ns: meta.mtime_ns(),
        ctime_ns: meta.ctime_ns(),
        inode: meta.ids().1,
    }
}
