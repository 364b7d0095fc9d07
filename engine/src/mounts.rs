//! Mount table queries and thin wrappers over the mount syscalls the engine uses.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// Undoes the octal escapes (`\040` for a space) of mountinfo fields.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|oct| u8::from_str_radix(oct, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fs_type = right.next()?;
            let source = right.next().unwrap_or("");
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(mount_point)),
                fs_type: fs_type.to_string(),
                source: unescape(source),
            })
        })
        .collect()
}

/// The current mount table of this process's mount namespace.
pub fn mount_table() -> Result<Vec<MountEntry>> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    Ok(parse_mountinfo(&text))
}

/// The innermost mount at exactly `path`, if any.
pub fn mount_at(table: &[MountEntry], path: &Path) -> Option<MountEntry> {
    table.iter().rev().find(|m| m.mount_point == path).cloned()
}

pub(crate) fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("engine paths contain no NUL byte")
}

/// `mount(2)` with an optional data string.
pub fn mount(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<()> {
    let src = CString::new(source).expect("no NUL");
    let fst = CString::new(fstype).expect("no NUL");
    let tgt = cstring(target);
    let data = data.map(|d| CString::new(d).expect("no NUL"));
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fst.as_ptr(),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr() as *const libc::c_void),
        )
    };
    if rc != 0 {
        return Err(Error::last_os(format!(
            "mount {fstype} {source} on {}",
            target.display()
        )));
    }
    Ok(())
}

/// Unmounts `target`; with `lazy`, detaches it even if busy.
pub fn umount(target: &Path, lazy: bool) -> Result<()> {
    let tgt = cstring(target);
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: valid NUL-terminated path.
    let rc = unsafe { libc::umount2(tgt.as_ptr(), flags) };
    if rc != 0 {
        return Err(Error::last_os(format!("unmount {}", target.display())));
    }
    Ok(())
}

/// Unmounts every mount stacked at `target` (busy ones lazily). Missing is fine.
pub fn umount_all(target: &Path) -> Result<()> {
    for _ in 0..16 {
        let table = mount_table()?;
        if mount_at(&table, target).is_none() {
            return Ok(());
        }
        if umount(target, false).is_err() {
            umount(target, true)?;
        }
    }
    Err(Error::sys(
        format!("unmount {}", target.display()),
        std::io::Error::other("still mounted after 16 attempts"),
    ))
}

pub use nix::sys::statfs::{FsType, EXT4_SUPER_MAGIC, OVERLAYFS_SUPER_MAGIC};

/// `statfs(2)` type of the filesystem holding `path`.
pub fn fs_magic(path: &Path) -> Option<FsType> {
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|s| s.filesystem_type())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_escapes() {
        let text = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
                    90 27 7:3 / /var/lib/acetate/containers/a\\040b/disk rw shared:5 - ext4 /dev/loop3 rw\n";
        let t = parse_mountinfo(text);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].mount_point, PathBuf::from("/proc"));
        assert_eq!(t[1].fs_type, "ext4");
        assert_eq!(t[1].source, "/dev/loop3");
        assert_eq!(
            t[1].mount_point,
            PathBuf::from("/var/lib/acetate/containers/a b/disk")
        );
        assert!(mount_at(&t, Path::new("/proc")).is_some());
        assert!(mount_at(&t, Path::new("/sys")).is_none());
    }
}
