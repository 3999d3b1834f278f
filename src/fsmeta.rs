//! Reading file system metadata into tree nodes, and the files cache stamp.

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use crate::repo::tree::{Node, NodeKind, Xattr};

/// A file's identity as the files cache compares it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds.
    pub mtime_ns: i64,
    /// Status change time in nanoseconds.
    pub ctime_ns: i64,
    /// Inode number.
    pub inode: u64,
}

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

/// Calls a list/get xattr function with a growing buffer (the value may grow between the
/// size query and the read: ERANGE means try again).
fn xattr_buf(mut call: impl FnMut(*mut libc::c_void, usize) -> isize) -> std::io::Result<Vec<u8>> {
    let mut cap = 256usize;
    loop {
        let mut buf = vec![0u8; cap];
        let n = call(buf.as_mut_ptr().cast(), buf.len());
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ERANGE) && cap < (1 << 24) {
            // The size query tells how much is needed now.
            let need = call(std::ptr::null_mut(), 0);
            cap = if need > 0 {
                need as usize + 64
            } else {
                cap * 4
            };
            continue;
        }
        return Err(e);
    }
}

/// Whether an xattr error means "this file system or file has none", not a failure.
fn no_xattrs(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTSUP) | Some(libc::ENODATA) | Some(libc::ENOSYS)
    )
}

/// Reads every extended attribute through `list` and `get` (fd or path flavours).
fn read_xattrs(
    list: impl Fn(*mut libc::c_char, usize) -> isize,
    get: impl Fn(*const libc::c_char, *mut libc::c_void, usize) -> isize,
) -> std::io::Result<Vec<Xattr>> {
    let names = match xattr_buf(|p, n| list(p.cast(), n)) {
        Ok(n) => n,
        Err(e) if no_xattrs(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let c = std::ffi::CString::new(name).expect("split at NUL");
        match xattr_buf(|p, n| get(c.as_ptr(), p, n)) {
            Ok(v) => out.push(Xattr::new(std::ffi::OsStr::from_bytes(name), &v)),
            // Removed since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("extended attribute {}: {e}", String::from_utf8_lossy(name)),
                ))
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The extended attributes of an open file (one `flistxattr` when it has none).
pub fn fd_xattrs(fd: std::os::fd::RawFd) -> std::io::Result<Vec<Xattr>> {
    // SAFETY: the buffers passed are valid for the lengths given.
    read_xattrs(
        |p, n| unsafe { libc::flistxattr(fd, p, n) },
        |name, p, n| unsafe { libc::fgetxattr(fd, name, p, n) },
    )
}

/// The extended attributes of the entry `name` of `dir` itself, never of what a symlink
/// there points to (for entries that are not opened: links, special files, cached files).
pub fn at_xattrs(dir: &crate::safe_fs::Dir, name: &std::ffi::OsStr) -> std::io::Result<Vec<Xattr>> {
    let c = dir.proc_path(name)?;
    // SAFETY: as above; `c` outlives both calls.
    read_xattrs(
        |p, n| unsafe { libc::llistxattr(c.as_ptr(), p, n) },
        |name, p, n| unsafe { libc::lgetxattr(c.as_ptr(), name, p, n) },
    )
}
