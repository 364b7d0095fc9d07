//! Loop devices: attach an image with LOOP_CONFIGURE, resize, detach, and find the
//! devices that back an image.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_SET_CAPACITY: libc::c_ulong = 0x4C07;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// An attached loop device. With auto-clear set, the kernel detaches it once the last
/// user (our descriptor, then the mount) goes away, so a crash never orphans it.
#[derive(Debug)]
pub struct LoopDevice {
    pub path: PathBuf,
    fd: OwnedFd,
}

impl LoopDevice {
    /// Attaches `image` to a free loop device.
    pub fn attach(image: &Path) -> Result<LoopDevice> {
        let backing = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(image)
            .ctx("open disk image", image)?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/loop-control")
            .ctx("open", "/dev/loop-control")?;
        for _ in 0..64 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
            let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
            if n < 0 {
                return Err(Error::last_os("find a free loop device"));
            }
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let dev = match OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("open", &path, e)),
            };
            // SAFETY: LoopConfig is plain old data; all-zero is its documented default.
            let mut config: LoopConfig = unsafe { std::mem::zeroed() };
            config.fd = backing.as_raw_fd() as u32;
            config.block_size = 4096;
            config.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
            let name = image.as_os_str().as_encoded_bytes();
            let len = name.len().min(63);
            config.info.lo_file_name[..len].copy_from_slice(&name[..len]);
            // SAFETY: `config` is a valid loop_config that lives across the call.
            let rc = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, &config) };
            if rc == 0 {
                return Ok(LoopDevice {
                    path,
                    fd: dev.into(),
                });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EBUSY) {
                continue; // another process took it between GET_FREE and CONFIGURE
            }
            return Err(Error::io("configure loop device", &path, err));
        }
        Err(Error::sys(
            "attach loop device",
            std::io::Error::other("no free loop device after 64 attempts"),
        ))
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Tells a loop device that its backing file grew.
pub fn loop_set_capacity(device: &Path) -> Result<()> {
    let dev = File::options()
        .read(true)
        .write(true)
        .open(device)
        .ctx("open", device)?;
    // SAFETY: LOOP_SET_CAPACITY takes no argument.
    let rc = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_CAPACITY, 0) };
    if rc != 0 {
        return Err(Error::last_os(format!(
            "resize loop device {}",
            device.display()
        )));
    }
    Ok(())
}

/// Loop devices whose backing file is `image` (normally none once unmounted).
pub fn loops_backed_by(image: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let wanted = image.as_os_str().as_encoded_bytes();
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("loop"))
        .filter(|e| {
            fs::read(e.path().join("loop/backing_file"))
                .map(|b| b.strip_suffix(b"\n").unwrap_or(&b) == wanted)
                .unwrap_or(false)
        })
        .map(|e| PathBuf::from("/dev").join(e.file_name()))
        .collect()
}

/// Detaches a loop device (for leftovers not cleared automatically).
pub fn loop_detach(device: &Path) -> Result<()> {
    let dev = File::open(device).ctx("open", device)?;
    // SAFETY: LOOP_CLR_FD takes no argument.
    let rc = unsafe { libc::ioctl(dev.as_raw_fd(), 0x4C01, 0) };
    if rc != 0 {
        return Err(Error::last_os(format!("detach {}", device.display())));
    }
    Ok(())
}
