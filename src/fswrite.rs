//! Writing what a tree node records beyond plain bytes: a sparse file's holes and
//! extended attributes (POSIX ACLs among them).

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use crate::repo::tree::{Node, Xattr};
use crate::safe_fs::Dir;

/// Gives a new file with holes its full size, so the holes exist without being written.
pub fn prepare_sparse(file: &File, node: &Node) -> std::io::Result<()> {
    if node.holes.is_empty() {
        return Ok(());
    }
    // Extends only: a file already grown by an earlier chunk keeps its data.
    if file.metadata()?.len() < node.size {
        file.set_len(node.size)?;
    }
    Ok(())
}

/// Writes `bytes`, the content of `node` from content offset `at`, where they belong in
/// the file: around its holes, which stay unwritten.
pub fn write_content(file: &File, node: &Node, at: u64, bytes: &[u8]) -> std::io::Result<()> {
    if node.holes.is_empty() {
        return file.write_all_at(bytes, at);
    }
    for (offset, range) in node.data_pieces(at, bytes.len() as u64) {
        file.write_all_at(&bytes[range], offset)?;
    }
    Ok(())
}

/// Calls `sink` with a file's bytes in order, given its content in order: holes come out
/// as zeros (for `dump` and streams, which have no holes).
pub struct HoleFiller<'a> {
    node: &'a Node,
    /// Content bytes passed so far.
    content: u64,
    /// File bytes emitted so far.
    emitted: u64,
}

impl<'a> HoleFiller<'a> {
    /// A filler for `node`'s content.
    pub fn new(node: &'a Node) -> Self {
        HoleFiller {
            node,
            content: 0,
            emitted: 0,
        }
    }

    fn zeros(
        &mut self,
        until: u64,
        sink: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        while self.emitted < until {
            let n = (until - self.emitted).min(ZEROS.len() as u64) as usize;
            sink(&ZEROS[..n])?;
            self.emitted += n as u64;
        }
        Ok(())
    }

    /// Passes the next content bytes on, with the zeros of the holes before them.
    pub fn push(
        &mut self,
        bytes: &[u8],
        sink: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if self.node.holes.is_empty() {
            self.content += bytes.len() as u64;
            return sink(bytes);
        }
        for (offset, range) in self.node.data_pieces(self.content, bytes.len() as u64) {
            self.zeros(offset, sink)?;
            self.emitted += range.len() as u64;
            sink(&bytes[range])?;
        }
        self.content += bytes.len() as u64;
        Ok(())
    }

    /// Emits the trailing hole.
    pub fn finish(
        mut self,
        sink: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        if !self.node.holes.is_empty() {
            let size = self.node.size;
            self.zeros(size, sink)?;
        }
        Ok(())
    }
}

/// Collects the xattrs a restore target refused, to warn once per restore rather than
/// once per file.
#[derive(Default)]
pub struct XattrRefusals {
    first: Mutex<Option<(String, usize)>>,
}

impl XattrRefusals {
    fn note(&self, path: &Path, name: &str, e: &std::io::Error) {
        let mut first = self.first.lock().unwrap();
        match first.as_mut() {
            Some((_, n)) => *n += 1,
            None => *first = Some((format!("{} ({name}): {e}", path.display()), 1)),
        }
    }

    /// The one warning for the restore, if anything was refused.
    pub fn warning(&self) -> Option<String> {
        self.first.lock().unwrap().as_ref().map(|(first, n)| {
            format!(
                "the target refused extended attributes or ACLs of {n} file(s), first \
                 {first}; they were restored without them"
            )
        })
    }
}

/// Whether an error says the target does not take this attribute (unsupported here, not
/// permitted for this user or on this kind of file), as opposed to an I/O failure.
fn refused(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTSUP)
            | Some(libc::EPERM)
            | Some(libc::EACCES)
            | Some(libc::EINVAL)
            | Some(libc::ENOSPC)
            | Some(libc::E2BIG)
            | Some(libc::ERANGE)
    )
}

fn set_all(
    xattrs: &[Xattr],
    path: &Path,
    refusals: &XattrRefusals,
    set: impl Fn(&std::ffi::CStr, &[u8]) -> libc::c_int,
) -> std::io::Result<()> {
    let mut noted = false;
    for x in xattrs {
        let name = x.os_name();
        let Ok(c) = std::ffi::CString::new(name.as_bytes()) else {
            continue;
        };
        if set(&c, &x.value_bytes()) != 0 {
            let e = std::io::Error::last_os_error();
            if refused(&e) {
                // Counted once per file.
                if !noted {
                    refusals.note(path, &x.name, &e);
                    noted = true;
                }
                // A file system without xattrs refuses the rest alike.
                if e.raw_os_error() == Some(libc::ENOTSUP) {
                    return Ok(());
                }
                continue;
            }
            return Err(std::io::Error::new(
                e.kind(),
                format!("setting {} on {}: {e}", x.name, path.display()),
            ));
        }
    }
    Ok(())
}

/// Sets a node's xattrs on an open file or directory.
pub fn set_xattrs_fd(
    fd: BorrowedFd<'_>,
    path: &Path,
    node: &Node,
    refusals: &XattrRefusals,
) -> std::io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: name and value are valid for the lengths given.
    set_all(&node.xattrs, path, refusals, |name, v| unsafe {
        libc::fsetxattr(fd, name.as_ptr(), v.as_ptr().cast(), v.len(), 0)
    })
}

/// Sets a node's xattrs on the entry `name` of `dir` itself (a symlink or special file),
/// never through a symlink.
pub fn set_xattrs_at(
    dir: &Dir,
    name: &OsStr,
    path: &Path,
    node: &Node,
    refusals: &XattrRefusals,
) -> std::io::Result<()> {
    if node.xattrs.is_empty() {
        return Ok(());
    }
    let c = dir.proc_path(name)?;
    // SAFETY: as above; `c` outlives the calls.
    set_all(&node.xattrs, path, refusals, |name, v| unsafe {
        libc::lsetxattr(c.as_ptr(), name.as_ptr(), v.as_ptr().cast(), v.len(), 0)
    })
}
