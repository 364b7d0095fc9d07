//! Unpacking an untrusted template tarball. Nothing in the archive is trusted: every path
//! is resolved inside the new root (`openat2` with `RESOLVE_IN_ROOT`, the last component
//! never followed), so a member that is a symbolic link to `/` cannot make a later member
//! land on, or change the mode of, a host file; names with `..` are refused; device nodes
//! are dropped and set-id bits cleared unless the provider allows them; the archive's
//! size and number of entries are bounded.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::error::{Error, IoContext, Result};

/// What an import may bring in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// Bytes of file contents, at most.
    pub max_bytes: u64,
    /// Files, directories and links, at most.
    pub max_entries: u64,
    /// Keep set-user-id and set-group-id bits (a provider's decision for a template
    /// they trust; off by default).
    pub allow_setid: bool,
    /// Fit the tree for containers as the engine's own templates are (see
    /// [`crate::fitting`]; off by default: an imported tree is the provider's).
    pub fit: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_bytes: 16 << 30,
            max_entries: 1_000_000,
            allow_setid: false,
            fit: false,
        }
    }
}

/// What an unpack did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: u64,
    pub bytes: u64,
    /// Device nodes and sockets left out.
    pub devices_dropped: u64,
    /// Files whose set-uid/set-gid bits were cleared.
    pub setid_cleared: u64,
}

/// What an import brought in so far, held to its [`ImportOptions`]: used alike for
/// tarballs and for directory trees.
#[derive(Debug)]
pub struct Tally {
    pub opts: ImportOptions,
    pub done: Unpacked,
    /// What is being imported, for messages.
    pub source: String,
}

impl Tally {
    pub fn new(opts: &ImportOptions, source: impl Into<String>) -> Tally {
        Tally {
            opts: *opts,
            done: Unpacked::default(),
            source: source.into(),
        }
    }

    /// Counts one more entry; refused past the bound.
    pub fn entry(&mut self) -> Result<()> {
        self.done.entries += 1;
        if self.done.entries > self.opts.max_entries {
            return Err(refuse(format!(
                "{} has more than {} entries, the most a template may have",
                self.source, self.opts.max_entries
            )));
        }
        Ok(())
    }

    /// Counts `bytes` more of file contents (before they are written); refused past the
    /// bound.
    pub fn bytes(&mut self, bytes: u64) -> Result<()> {
        if self.done.bytes.saturating_add(bytes) > self.opts.max_bytes {
            return Err(refuse(format!(
                "{} unpacks to more than {}, the most a template may hold",
                self.source,
                crate::size::format_bytes(self.opts.max_bytes)
            )));
        }
        self.done.bytes += bytes;
        Ok(())
    }

    /// The mode a file of `mode` gets: set-uid/set-gid cleared unless allowed.
    pub fn mode(&mut self, mode: u32) -> u32 {
        let mode = mode & 0o7777;
        if mode & 0o6000 != 0 && !self.opts.allow_setid {
            self.done.setid_cleared += 1;
            return mode & !0o6000;
        }
        mode
    }
}

fn refuse(msg: impl Into<String>) -> Error {
    Error::Unsupported(msg.into())
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// `openat2(dir, path, flags, resolve)` as an owned descriptor.
pub(crate) fn openat2(
    dir: RawFd,
    path: &Path,
    flags: i32,
    resolve: u64,
) -> std::io::Result<OwnedFd> {
    let c =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let fd = crate::runtime::rootfs::openat2(dir, &c, flags, resolve)
        .map_err(std::io::Error::from_raw_os_error)?;
    // SAFETY: a fresh descriptor that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A directory under construction, every operation confined to it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    shown: PathBuf,
}

const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

fn cname(name: &OsStr) -> Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| refuse("a name in the archive contains NUL"))
}

impl Root {
    pub fn open(path: &Path) -> Result<Root> {
        let fd = openat2(
            libc::AT_FDCWD,
            path,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
        .ctx("open", path)?;
        Ok(Root {
            fd,
            shown: path.to_path_buf(),
        })
    }

    fn err(&self, op: &'static str, rel: &Path, e: std::io::Error) -> Error {
        Error::io(op, self.shown.join(rel), e)
    }

    /// The directory holding `rel` (created, with missing parents, if need be), resolved
    /// inside the root; and `rel`'s last component.
    fn parent(&self, rel: &Path) -> Result<(OwnedFd, CString)> {
        let leaf = rel
            .file_name()
            .ok_or_else(|| refuse(format!("{}: not a file name", rel.display())))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let fd = self.dir(parent)?;
        Ok((fd, cname(leaf)?))
    }

    /// Opens (creating if missing) directory `rel` inside the root.
    fn dir(&self, rel: &Path) -> Result<OwnedFd> {
        let path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        match openat2(
            self.fd.as_raw_fd(),
            path,
            libc::O_PATH | libc::O_DIRECTORY,
            IN_ROOT,
        ) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(self.err("open directory", rel, e)),
        }
        let (parent, leaf) = self.parent(rel)?;
        // SAFETY: mkdirat on our descriptor with a NUL-terminated name.
        if unsafe { libc::mkdirat(parent.as_raw_fd(), leaf.as_ptr(), 0o755) } != 0 {
            let e = errno();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(self.err("create directory", rel, e));
            }
        }
        openat2(
            parent.as_raw_fd(),
            Path::new(OsStr::from_bytes(leaf.as_bytes())),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            libc::RESOLVE_BENEATH,
        )
        .map_err(|e| self.err("open directory", rel, e))
    }

    /// Removes whatever non-directory is at `leaf` in `dir` (a later member replaces an
    /// earlier one, as with tar).
    fn clear(dir: &OwnedFd, leaf: &CString) {
        // SAFETY: unlinkat on our descriptor; failure (nothing there) is fine.
        unsafe { libc::unlinkat(dir.as_raw_fd(), leaf.as_ptr(), 0) };
    }

    fn chown_at(
        &self,
        dir: &OwnedFd,
        leaf: &CString,
        uid: u32,
        gid: u32,
        rel: &Path,
    ) -> Result<()> {
        // SAFETY: fchownat on our descriptor, never following a link.
        let rc = unsafe {
            libc::fchownat(
                dir.as_raw_fd(),
                leaf.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            return Err(self.err("chown", rel, errno()));
        }
        Ok(())
    }

    /// Opens `rel` as it is inside the root (nothing is created on the way).
    pub fn open_in(&self, rel: &Path, flags: i32) -> std::io::Result<OwnedFd> {
        openat2(self.fd.as_raw_fd(), rel, flags | libc::O_CLOEXEC, IN_ROOT)
    }

    /// Whether `rel` is there (a link at its end counts, whatever it leads to).
    pub fn exists(&self, rel: &Path) -> bool {
        self.open_in(rel, libc::O_PATH | libc::O_NOFOLLOW).is_ok()
    }

    /// Removes the non-directory `rel` if it is there (nothing is created on the way).
    pub fn remove(&self, rel: &Path) {
        let (Some(parent), Some(leaf)) = (rel.parent(), rel.file_name()) else {
            return;
        };
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let (Ok(dir), Ok(leaf)) = (
            self.open_in(parent, libc::O_PATH | libc::O_DIRECTORY),
            cname(leaf),
        ) {
            Self::clear(&dir, &leaf);
        }
    }

    /// Creates directory `rel`; its owner and mode are set by [`Root::finish_dir`] once
    /// its contents are in (so a read-only directory can still be filled).
    pub fn mkdir(&self, rel: &Path) -> Result<()> {
        self.dir(rel).map(drop)
    }

    /// Sets owner, mode and time of directory `rel` (never through a link).
    pub fn finish_dir(&self, rel: &Path, mode: u32, uid: u32, gid: u32, mtime: i64) -> Result<()> {
        let path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let fd = openat2(
            self.fd.as_raw_fd(),
            path,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS,
        )
        .map_err(|e| self.err("open directory", rel, e))?;
        set_meta(&fd, mode, uid, gid, mtime).map_err(|e| self.err("set owner and mode of", rel, e))
    }

    /// Creates regular file `rel` with `data`.
    pub fn file(
        &self,
        rel: &Path,
        data: &mut dyn Read,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: i64,
    ) -> Result<u64> {
        let (dir, leaf) = self.parent(rel)?;
        Self::clear(&dir, &leaf);
        // SAFETY: openat on our descriptor: a new file, never through a link.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                leaf.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd < 0 {
            return Err(self.err("create", rel, errno()));
        }
        // SAFETY: a fresh descriptor that we own.
        let mut file = unsafe { File::from_raw_fd(fd) };
        let n = std::io::copy(data, &mut file).map_err(|e| self.err("write", rel, e))?;
        set_meta(&OwnedFd::from(file), mode, uid, gid, mtime)
            .map_err(|e| self.err("set owner and mode of", rel, e))?;
        Ok(n)
    }

    /// Creates symbolic link `rel` pointing at `target` (stored as is: it is resolved
    /// inside the container, never by the host).
    pub fn symlink(&self, rel: &Path, target: &Path, uid: u32, gid: u32) -> Result<()> {
        let (dir, leaf) = self.parent(rel)?;
        Self::clear(&dir, &leaf);
        let t = cname(target.as_os_str())?;
        // SAFETY: symlinkat on our descriptor.
        if unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), leaf.as_ptr()) } != 0 {
            return Err(self.err("create link", rel, errno()));
        }
        self.chown_at(&dir, &leaf, uid, gid, rel)
    }

    /// Creates `rel` as a hard link to `target`, both inside the root.
    pub fn hard_link(&self, rel: &Path, target: &Path) -> Result<()> {
        let (tdir, tleaf) = self.parent(target)?;
        let (dir, leaf) = self.parent(rel)?;
        Self::clear(&dir, &leaf);
        // SAFETY: linkat between our descriptors; flags 0 never follows a link.
        let rc = unsafe {
            libc::linkat(
                tdir.as_raw_fd(),
                tleaf.as_ptr(),
                dir.as_raw_fd(),
                leaf.as_ptr(),
                0,
            )
        };
        if rc != 0 {
            return Err(self.err("create hard link", rel, errno()));
        }
        Ok(())
    }

    /// Creates a named pipe.
    pub fn fifo(&self, rel: &Path, mode: u32, uid: u32, gid: u32) -> Result<()> {
        let (dir, leaf) = self.parent(rel)?;
        Self::clear(&dir, &leaf);
        // SAFETY: mkfifoat on our descriptor.
        if unsafe { libc::mkfifoat(dir.as_raw_fd(), leaf.as_ptr(), mode & 0o777) } != 0 {
            return Err(self.err("create pipe", rel, errno()));
        }
        self.chown_at(&dir, &leaf, uid, gid, rel)
    }
}

fn set_meta(fd: &OwnedFd, mode: u32, uid: u32, gid: u32, mtime: i64) -> std::io::Result<()> {
    // SAFETY: fchown/fchmod/futimens on our own descriptor, with a stack timespec array.
    unsafe {
        if libc::fchown(fd.as_raw_fd(), uid, gid) != 0 {
            return Err(errno());
        }
        // chown clears set-id bits: the mode goes last.
        if libc::fchmod(fd.as_raw_fd(), mode & 0o7777) != 0 {
            return Err(errno());
        }
        let times = [
            libc::timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
            libc::timespec {
                tv_sec: mtime,
                tv_nsec: 0,
            },
        ];
        libc::futimens(fd.as_raw_fd(), times.as_ptr());
    }
    Ok(())
}

/// A member's path, relative and normalised; `..` is refused.
fn member_path(raw: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(refuse(format!(
                    "the archive member {} leaves the root filesystem ('..')",
                    raw.display()
                )))
            }
        }
    }
    Ok(out)
}

/// The archive, decompressed by the host's own tool if it is compressed.
fn open_stream(archive: &Path) -> Result<(Box<dyn Read>, Option<Child>)> {
    let mut file = File::open(archive).ctx("open", archive)?;
    let mut magic = [0u8; 6];
    let n = file.read(&mut magic).ctx("read", archive)?;
    file.seek(SeekFrom::Start(0)).ctx("read", archive)?;
    let tool = match &magic[..n] {
        [0x1f, 0x8b, ..] => Some("gzip"),
        [0xfd, b'7', b'z', b'X', b'Z', 0] => Some("xz"),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd"),
        [b'B', b'Z', b'h', ..] => Some("bzip2"),
        _ => None,
    };
    let Some(tool) = tool else {
        return Ok((Box::new(std::io::BufReader::new(file)), None));
    };
    let mut child = Command::new(tool)
        .args(["-d", "-c"])
        .stdin(Stdio::from(file))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            refuse(format!(
                "{} is {tool}-compressed, and {tool} cannot be run: {e}",
                archive.display()
            ))
        })?;
    let out = child.stdout.take().expect("piped stdout");
    Ok((Box::new(std::io::BufReader::new(out)), Some(child)))
}

fn id(v: std::io::Result<u64>, what: &str, path: &Path) -> Result<u32> {
    v.ok()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| refuse(format!("{}: bad {what} in the archive", path.display())))
}

/// Unpacks `archive` (a tarball, possibly gzip, xz, zstd or bzip2 compressed) into the
/// existing, empty directory `dest`.
pub fn unpack(archive: &Path, dest: &Path, opts: &ImportOptions) -> Result<Unpacked> {
    let root = Root::open(dest)?;
    let (stream, child) = open_stream(archive)?;
    let result = unpack_stream(stream, &root, opts, archive);
    let Some(mut child) = child else {
        return result.map(|(done, _)| done);
    };
    let (done, mut rest) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    // The decompressor must have reached the end of its input without error, or the
    // archive was cut short. What follows the tar's end (padding) is read, a little.
    let mut sink = [0u8; 64 << 10];
    let mut left = 16;
    let at_end = loop {
        match rest.read(&mut sink) {
            Ok(0) => break true,
            Ok(_) if left > 0 => left -= 1,
            _ => break false,
        }
    };
    drop(rest);
    if !at_end {
        let _ = child.kill();
        let _ = child.wait();
        return Ok(done);
    }
    let status = child.wait().ctx("wait for the decompressor of", archive)?;
    if !status.success() {
        return Err(refuse(format!(
            "{} is damaged or cut short (decompressing it failed)",
            archive.display()
        )));
    }
    Ok(done)
}

struct DirMeta {
    path: PathBuf,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

fn unpack_stream(
    stream: Box<dyn Read>,
    root: &Root,
    opts: &ImportOptions,
    archive: &Path,
) -> Result<(Unpacked, Box<dyn Read>)> {
    let shown = archive.display();
    let bad = |e: std::io::Error| refuse(format!("cannot unpack {shown} as a tarball: {e}"));
    let mut tar = tar::Archive::new(stream);
    let mut tally = Tally::new(opts, shown.to_string());
    let mut dirs = Vec::new();
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        tally.entry()?;
        let raw = entry.path().map_err(bad)?.into_owned();
        let rel = member_path(&raw)?;
        let header = entry.header().clone();
        let mode = tally.mode(header.mode().map_err(bad)?);
        let uid = id(header.uid(), "owner", &raw)?;
        let gid = id(header.gid(), "group", &raw)?;
        let mtime = header.mtime().unwrap_or(0).min(i64::MAX as u64) as i64;
        use tar::EntryType as T;
        match header.entry_type() {
            T::Directory => {
                root.mkdir(&rel)?;
                dirs.push(DirMeta {
                    path: rel,
                    mode,
                    uid,
                    gid,
                    mtime,
                });
            }
            T::Regular | T::Continuous => {
                if rel.as_os_str().is_empty() {
                    return Err(refuse(format!("{shown}: a file named like the root")));
                }
                tally.bytes(header.size().map_err(bad)?)?;
                root.file(&rel, &mut entry, mode, uid, gid, mtime)?;
            }
            T::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| refuse(format!("{}: a link without a target", raw.display())))?
                    .into_owned();
                root.symlink(&rel, &target, uid, gid)?;
            }
            T::Link => {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| refuse(format!("{}: a link without a target", raw.display())))?;
                let target = member_path(&target)?;
                root.hard_link(&rel, &target)?;
            }
            T::Fifo => root.fifo(&rel, mode, uid, gid)?,
            T::Char | T::Block => tally.done.devices_dropped += 1,
            // Headers tar reads for us (long names, PAX) and anything else: skipped.
            _ => {}
        }
    }
    // Deepest first, so a read-only parent is set after its children.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.components().count()));
    for d in dirs {
        root.finish_dir(&d.path, d.mode, d.uid, d.gid, d.mtime)?;
    }
    Ok((tally.done, tar.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_are_made_relative_and_dotdot_is_refused() {
        assert_eq!(
            member_path(Path::new("./etc/passwd")).unwrap(),
            Path::new("etc/passwd")
        );
        assert_eq!(
            member_path(Path::new("/usr/bin")).unwrap(),
            Path::new("usr/bin")
        );
        assert!(member_path(Path::new("etc/../../x")).is_err());
    }
}
