//! File system access that never follows a symbolic link below a directory handle.
//!
//! A restore target may hold links planted by whoever could write there (a container in
//! its own volume: `data -> /etc`). Every path below the target is therefore created and
//! opened relative to a directory descriptor: one component at a time with `O_NOFOLLOW`,
//! or several at once with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` where the
//! kernel has it. Metadata is set on descriptors, or with `AT_SYMLINK_NOFOLLOW`. Paths
//! longer than `PATH_MAX` are opened in pieces, so a tree of any depth works.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

/// Longest path handed to one `openat2` call; `PATH_MAX` is 4096 with its NUL.
const CHUNK: usize = 3072;

/// Set once the kernel (or a seccomp filter) turned `openat2` down.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Whether `name` is one plain component: not empty, `.`, `..`, and without `/`.
pub fn is_plain_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && b != b"." && b != b".." && !b.contains(&b'/') && !b.contains(&0)
}

fn plain(name: &OsStr) -> io::Result<CString> {
    if !is_plain_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsafe file name {name:?}"),
        ));
    }
    cstr(name)
}

/// What `fstatat(AT_SYMLINK_NOFOLLOW)` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else.
    Other,
}

/// An open directory; every operation is relative to it and follows no link.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Dir {
    /// Opens a directory the user named; this path is followed as given.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = cstr(path.as_os_str())?;
        // SAFETY: a valid C string; the returned descriptor is owned below.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        Ok(Dir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// A handle on a directory the user named, good only to reach entries below it
    /// (`O_PATH`: it needs search permission, not read permission).
    pub fn open_path(path: &Path) -> io::Result<Dir> {
        let c = cstr(path.as_os_str())?;
        // SAFETY: a valid C string; the returned descriptor is owned below.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        Ok(Dir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A second handle on the same directory.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// Opens the subdirectory `name`; a link there is an error (`ELOOP`/`ENOTDIR`).
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        let fd = self.openat(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok(Dir { fd })
    }

    fn openat(&self, name: &OsStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
        let c = plain(name)?;
        // SAFETY: a valid directory descriptor and C string.
        let fd = check(unsafe {
            libc::openat(
                self.raw(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        })?;
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Opens `rel` (plain components below this directory) with `flags`; no component
    /// may be a link.
    pub fn open_beneath(
        &self,
        rel: &Path,
        flags: libc::c_int,
        mode: libc::mode_t,
    ) -> io::Result<OwnedFd> {
        let mut comps: Vec<&OsStr> = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(s) => comps.push(s),
                Component::CurDir => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("path {} leaves its directory", rel.display()),
                    ))
                }
            }
        }
        let Some((last, parents)) = comps.split_last() else {
            // The directory itself.
            return self.fd.try_clone();
        };
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            match self.open_beneath2(parents, last, flags, mode) {
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                }
                r => return r,
            }
        }
        let mut held: Option<Dir> = None;
        for p in parents {
            let d = held
                .as_ref()
                .unwrap_or(self)
                .openat(p, libc::O_PATH | libc::O_DIRECTORY, 0)?;
            held = Some(Dir { fd: d });
        }
        held.as_ref().unwrap_or(self).openat(last, flags, mode)
    }

    /// `openat2` over as few calls as `PATH_MAX` allows.
    fn open_beneath2(
        &self,
        parents: &[&OsStr],
        last: &OsStr,
        flags: libc::c_int,
        mode: libc::mode_t,
    ) -> io::Result<OwnedFd> {
        let mut held: Option<OwnedFd> = None;
        let mut buf: Vec<u8> = Vec::new();
        let mut i = 0;
        loop {
            buf.clear();
            let mut final_chunk = false;
            while i < parents.len() {
                let n = parents[i].as_bytes();
                if !buf.is_empty() && buf.len() + n.len() + 1 > CHUNK {
                    break;
                }
                plain(parents[i])?;
                if !buf.is_empty() {
                    buf.push(b'/');
                }
                buf.extend_from_slice(n);
                i += 1;
            }
            if i == parents.len() && buf.len() + last.len() < CHUNK {
                plain(last)?;
                if !buf.is_empty() {
                    buf.push(b'/');
                }
                buf.extend_from_slice(last.as_bytes());
                final_chunk = true;
            }
            let (f, m) = if final_chunk {
                (flags, mode)
            } else {
                (libc::O_PATH | libc::O_DIRECTORY, 0)
            };
            let dirfd = held.as_ref().map_or(self.raw(), |f| f.as_raw_fd());
            let fd = openat2(dirfd, &buf, f, m)?;
            if final_chunk {
                return Ok(fd);
            }
            held = Some(fd);
            if i == parents.len() {
                // Only the last component is left, and it did not fit.
                let d = Dir {
                    fd: held.take().expect("just set"),
                };
                return d.openat(last, flags, mode);
            }
        }
    }

    /// Opens the directory at `rel` below this one.
    pub fn open_dir_beneath(&self, rel: &Path) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.open_beneath(rel, libc::O_RDONLY | libc::O_DIRECTORY, 0)?,
        })
    }

    /// The kind of the entry `name`, without following it; `None` if there is none.
    pub fn kind(&self, name: &OsStr) -> io::Result<Option<Kind>> {
        let c = plain(name)?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor, C string and stat buffer.
        let r =
            unsafe { libc::fstatat(self.raw(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if r != 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::ENOENT) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(Some(match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        }))
    }

    /// Creates the directory `name`. An existing directory is kept (`Ok(false)`); with
    /// `replace`, anything else there (a link, a file) is removed first, never followed.
    pub fn mkdir(&self, name: &OsStr, mode: libc::mode_t, replace: bool) -> io::Result<bool> {
        let c = plain(name)?;
        // SAFETY: valid descriptor and C string.
        if unsafe { libc::mkdirat(self.raw(), c.as_ptr(), mode) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
        match self.kind(name)? {
            Some(Kind::Dir) => Ok(false),
            _ if replace => {
                self.remove(name)?;
                check(unsafe { libc::mkdirat(self.raw(), c.as_ptr(), mode) })?;
                Ok(true)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it exists and is not a directory",
            )),
        }
    }

    /// Removes the entry `name` whatever it is (a directory with all it holds); a link
    /// is removed itself. Absent is fine.
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        let c = plain(name)?;
        // SAFETY: valid descriptor and C string.
        if unsafe { libc::unlinkat(self.raw(), c.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(()),
            Some(libc::EISDIR) | Some(libc::EPERM) if self.kind(name)? == Some(Kind::Dir) => {
                self.remove_tree(name)
            }
            _ => Err(e),
        }
    }

    /// Removes a directory tree without recursion on the call stack.
    fn remove_tree(&self, name: &OsStr) -> io::Result<()> {
        // Each level: the directory, its name in its parent.
        let mut stack: Vec<(Dir, OsString)> = vec![(self.open_dir(name)?, name.to_os_string())];
        while !stack.is_empty() {
            let dir = &stack[stack.len() - 1].0;
            let mut sub = None;
            for (n, is_dir) in dir.entries()? {
                if is_dir == Some(true) || (is_dir.is_none() && dir.kind(&n)? == Some(Kind::Dir)) {
                    sub = Some(n);
                    break;
                }
                let c = plain(&n)?;
                check(unsafe { libc::unlinkat(dir.raw(), c.as_ptr(), 0) })?;
            }
            match sub {
                Some(n) => {
                    let d = dir.open_dir(&n)?;
                    stack.push((d, n));
                }
                None => {
                    let (_, n) = stack.pop().expect("not empty");
                    let parent = stack.last().map_or(self, |(d, _)| d);
                    let c = plain(&n)?;
                    check(unsafe { libc::unlinkat(parent.raw(), c.as_ptr(), libc::AT_REMOVEDIR) })?;
                }
            }
        }
        Ok(())
    }

    /// The names in this directory, with whether each is a directory when `d_type` says.
    pub fn entries(&self) -> io::Result<Vec<(OsString, Option<bool>)>> {
        let fd = self.fd.try_clone()?;
        // SAFETY: fdopendir takes ownership of the descriptor on success.
        let dirp = unsafe { libc::fdopendir(fd.as_raw_fd()) };
        if dirp.is_null() {
            return Err(io::Error::last_os_error());
        }
        std::mem::forget(fd);
        // A duplicate shares the offset: start from the beginning.
        unsafe { libc::rewinddir(dirp) };
        let mut out = Vec::new();
        loop {
            // SAFETY: dirp is a valid stream until closedir.
            let ent = unsafe { libc::readdir64(dirp) };
            if ent.is_null() {
                break;
            }
            let (name, t) = unsafe {
                (
                    std::ffi::CStr::from_ptr((*ent).d_name.as_ptr()),
                    (*ent).d_type,
                )
            };
            let b = name.to_bytes();
            if b == b"." || b == b".." {
                continue;
            }
            let is_dir = match t {
                libc::DT_UNKNOWN => None,
                libc::DT_DIR => Some(true),
                _ => Some(false),
            };
            out.push((OsString::from_vec(b.to_vec()), is_dir));
        }
        unsafe { libc::closedir(dirp) };
        Ok(out)
    }

    /// `lstat` of the entry `name`.
    pub fn stat(&self, name: &OsStr) -> io::Result<libc::stat> {
        let c = plain(name)?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor, C string and stat buffer.
        check(unsafe {
            libc::fstatat(self.raw(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW)
        })?;
        Ok(st)
    }

    /// The target of the link `name`.
    pub fn read_link(&self, name: &OsStr) -> io::Result<OsString> {
        let c = plain(name)?;
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: the buffer is as long as passed.
            let n = unsafe {
                libc::readlinkat(self.raw(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if (n as usize) < buf.len() {
                buf.truncate(n as usize);
                return Ok(OsString::from_vec(buf));
            }
            buf.resize(buf.len() * 4, 0);
        }
    }

    /// Opens `name` for reading; a link there is an error. `O_NONBLOCK` keeps a FIFO or
    /// device that stands there now from blocking the open: the caller checks what it got
    /// with `fstat` on the handle, then [`clear_nonblock`] before reading.
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        Ok(File::from(self.openat(
            name,
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
            0,
        )?))
    }

    /// The entry `name` as a path through this handle (`/proc/self/fd/N/name`), for the
    /// calls that have no `*at` form (extended attributes of a link or special file): the
    /// handle pins the directory, and the `l*` calls do not follow the last component.
    pub fn proc_path(&self, name: &OsStr) -> io::Result<CString> {
        let c = plain(name)?;
        let mut p = format!("/proc/self/fd/{}/", self.raw()).into_bytes();
        p.extend_from_slice(c.as_bytes());
        CString::new(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    }

    /// Creates (or opens) the regular file `name` for writing; `exclusive`: it must not
    /// exist. A link there is an error, never followed.
    pub fn create_file(&self, name: &OsStr, exclusive: bool) -> io::Result<File> {
        let mut flags = libc::O_WRONLY | libc::O_CREAT;
        if exclusive {
            flags |= libc::O_EXCL;
        }
        Ok(File::from(self.openat(name, flags, 0o600)?))
    }

    /// Creates the regular file at `rel` below this directory for writing.
    pub fn create_file_beneath(&self, rel: &Path) -> io::Result<File> {
        Ok(File::from(self.open_beneath(
            rel,
            libc::O_WRONLY | libc::O_CREAT,
            0o600,
        )?))
    }

    /// Creates a symbolic link `name` pointing at `target` (which is never followed).
    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> io::Result<()> {
        let (t, c) = (cstr(target)?, plain(name)?);
        check(unsafe { libc::symlinkat(t.as_ptr(), self.raw(), c.as_ptr()) }).map(|_| ())
    }

    /// Creates a FIFO or device node.
    pub fn mknod(&self, name: &OsStr, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
        let c = plain(name)?;
        check(unsafe { libc::mknodat(self.raw(), c.as_ptr(), mode, dev) }).map(|_| ())
    }

    /// Hard-links `from` in this directory as `name` in `to`; a link at `from` is linked
    /// itself, not its target.
    pub fn hard_link(&self, from: &OsStr, to: &Dir, name: &OsStr) -> io::Result<()> {
        let (a, b) = (plain(from)?, plain(name)?);
        check(unsafe { libc::linkat(self.raw(), a.as_ptr(), to.raw(), b.as_ptr(), 0) }).map(|_| ())
    }

    /// Renames `from` to `to`, both in this directory: a link at either is moved or
    /// replaced itself, never followed.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (a, b) = (plain(from)?, plain(to)?);
        // SAFETY: valid descriptor and C strings.
        check(unsafe { libc::renameat(self.raw(), a.as_ptr(), self.raw(), b.as_ptr()) }).map(|_| ())
    }

    /// Sets owner (when given), mode (when given) and times of the entry `name` itself,
    /// without following it.
    pub fn set_meta_at(
        &self,
        name: &OsStr,
        owner: Option<(u32, u32)>,
        mode: Option<u32>,
        mtime_ns: i64,
    ) -> io::Result<()> {
        let c = plain(name)?;
        if let Some((uid, gid)) = owner {
            check(unsafe {
                libc::fchownat(self.raw(), c.as_ptr(), uid, gid, libc::AT_SYMLINK_NOFOLLOW)
            })?;
        }
        if let Some(mode) = mode {
            // glibc refuses this for a link (EOPNOTSUPP) rather than following it.
            check(unsafe {
                libc::fchmodat(
                    self.raw(),
                    c.as_ptr(),
                    mode as libc::mode_t,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })?;
        }
        let times = [timespec(mtime_ns), timespec(mtime_ns)];
        check(unsafe {
            libc::utimensat(
                self.raw(),
                c.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
        .map(|_| ())
    }
}

fn timespec(ns: i64) -> libc::timespec {
    libc::timespec {
        tv_sec: ns.div_euclid(1_000_000_000) as libc::time_t,
        tv_nsec: ns.rem_euclid(1_000_000_000) as libc::c_long,
    }
}

fn openat2(
    dirfd: RawFd,
    path: &[u8],
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS;
    // SAFETY: valid descriptor, C string and open_how of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Sets owner (when given), mode and times through an open descriptor.
pub fn set_meta_fd(
    fd: BorrowedFd<'_>,
    owner: Option<(u32, u32)>,
    mode: u32,
    mtime_ns: i64,
) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    if let Some((uid, gid)) = owner {
        check(unsafe { libc::fchown(raw, uid, gid) })?;
    }
    check(unsafe { libc::fchmod(raw, mode as libc::mode_t) })?;
    let times = [timespec(mtime_ns), timespec(mtime_ns)];
    check(unsafe { libc::futimens(raw, times.as_ptr()) }).map(|_| ())
}

/// Makes reads on `fd` block again (a regular file ignores `O_NONBLOCK` on local file
/// systems, but not on every network one).
pub fn clear_nonblock(fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: plain fcntl on a valid descriptor.
    let fl = check(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
    check(unsafe { libc::fcntl(raw, libc::F_SETFL, fl & !libc::O_NONBLOCK) }).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forced_fallback<T>(f: impl Fn() -> T) -> [T; 2] {
        let a = f();
        NO_OPENAT2.store(true, Ordering::Relaxed);
        let b = f();
        NO_OPENAT2.store(false, Ordering::Relaxed);
        [a, b]
    }

    #[test]
    fn no_operation_follows_a_link() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("f"), b"keep").unwrap();
        let target = t.path().join("target");
        std::fs::create_dir_all(target.join("a/b")).unwrap();
        std::os::unix::fs::symlink(&outside, target.join("a/b/dirlink")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), target.join("a/b/filelink")).unwrap();
        let root = Dir::open(&target).unwrap();

        for r in forced_fallback(|| root.create_file_beneath(Path::new("a/b/dirlink/new"))) {
            assert!(r.is_err());
        }
        for r in forced_fallback(|| root.create_file_beneath(Path::new("a/b/filelink"))) {
            assert!(r.is_err());
        }
        for r in forced_fallback(|| root.open_dir_beneath(Path::new("a/b/dirlink"))) {
            assert!(r.is_err());
        }
        let b = root.open_dir_beneath(Path::new("a/b")).unwrap();
        assert!(b.open_dir(OsStr::new("dirlink")).is_err());
        assert!(b.create_file(OsStr::new("filelink"), false).is_err());
        assert!(b.mkdir(OsStr::new("dirlink"), 0o755, false).is_err());
        assert!(b
            .set_meta_at(OsStr::new("dirlink"), None, Some(0o700), 0)
            .is_err());
        b.set_meta_at(OsStr::new("filelink"), None, None, 0)
            .unwrap();
        assert!(b
            .open_beneath(Path::new("../x"), libc::O_RDONLY, 0)
            .is_err());
        // Replacing removes the link itself.
        assert!(b.mkdir(OsStr::new("dirlink"), 0o755, true).unwrap());
        b.remove(OsStr::new("filelink")).unwrap();
        assert_eq!(b.kind(OsStr::new("dirlink")).unwrap(), Some(Kind::Dir));
        assert_eq!(b.kind(OsStr::new("filelink")).unwrap(), None);
        // What the links pointed at is untouched.
        let names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("f")]);
        assert_eq!(std::fs::read(outside.join("f")).unwrap(), b"keep");
        use std::os::unix::fs::PermissionsExt;
        assert_ne!(
            std::fs::metadata(&outside).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn paths_longer_than_path_max_open_in_pieces() {
        let t = tempfile::tempdir().unwrap();
        let root = Dir::open(t.path()).unwrap();
        let mut d = root.try_clone().unwrap();
        let mut rel = std::path::PathBuf::new();
        for _ in 0..1500 {
            d.mkdir(OsStr::new("abc"), 0o755, false).unwrap();
            d = d.open_dir(OsStr::new("abc")).unwrap();
            rel.push("abc");
        }
        assert!(rel.as_os_str().len() > 4096);
        for r in forced_fallback(|| root.create_file_beneath(&rel.join("f")).map(|_| ())) {
            r.unwrap();
        }
        let mut deep = root.open_dir_beneath(&rel).unwrap();
        assert_eq!(deep.kind(OsStr::new("f")).unwrap(), Some(Kind::Other));
        deep = root.try_clone().unwrap();
        deep.remove(OsStr::new("abc")).unwrap();
        assert_eq!(root.entries().unwrap().len(), 0);
    }
}
