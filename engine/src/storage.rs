//! Per-container storage: a sparse ext4 image on a loop device holds the overlay's upper
//! and work dirs (so blocks and inodes are limited by the filesystem itself), the template
//! is bind-mounted through the container's id mapping, and the overlay of the two is the
//! container's root.

use std::fs::{self, OpenOptions};

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, IoContext, Result};
use crate::mounts;
use crate::store::Layout;

pub use crate::idmap::{idmapped_bind, idmapped_bind_with, userns_fd, userns_fd_reverse};
pub use crate::loopdev::{loop_detach, loop_set_capacity, loops_backed_by, LoopDevice};

/// Work to undo if a multi-step operation fails half-way; runs in reverse order on drop
/// unless [`Rollback::commit`] was called.
type UndoStep = (&'static str, Box<dyn FnOnce()>);

#[derive(Default)]
pub struct Rollback {
    steps: Vec<UndoStep>,
}

impl std::fmt::Debug for Rollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.steps.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Rollback").field("steps", &names).finish()
    }
}

impl Rollback {
    pub fn new() -> Self {
        Self::default()
    }
    /// Registers the undo of a step that just succeeded.
    pub fn push(&mut self, what: &'static str, undo: impl FnOnce() + 'static) {
        self.steps.push((what, Box::new(undo)));
    }
    /// Keeps everything: the operation succeeded.
    pub fn commit(mut self) {
        self.steps.clear();
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        while let Some((what, undo)) = self.steps.pop() {
            tracing::debug!(step = what, "rolling back");
            undo();
        }
    }
}

/// Runs an external tool, turning a non-zero exit into an error with its output.
pub fn run_tool(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd
        .output()
        .map_err(|e| Error::sys(format!("run {shown}"), e))?;
    if !out.status.success() {
        let mut output = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if output.is_empty() {
            output = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        return Err(Error::Command { cmd: shown, output });
    }
    Ok(())
}

/// Inodes held back from the tenant: overlayfs needs a few free ones to mount (its work
/// dir and feature probes), so placeholders hold them and are released just before.
pub const RESERVED_INODES: u64 = 8;
/// Blocks (4 KiB) reserved for host root, which mounts the overlay; tenants' root is not
/// host root, so a full disk can still be mounted.
pub const RESERVED_BLOCKS: u64 = 256;

/// Creates a sparse image of `size` bytes holding an empty ext4 with `inodes` inodes for
/// the tenant (plus the reserve).
pub fn make_image(image: &Path, size: u64, inodes: u64) -> Result<()> {
    let f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(image)
        .ctx("create disk image", image)?;
    f.set_len(size).ctx("size disk image", image)?;
    drop(f);
    run_tool(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "4096", "-I", "256", "-m", "0"])
            .args(["-N", &(inodes + RESERVED_INODES).to_string()])
            .args(["-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard"])
            .arg(image),
    )?;
    run_tool(
        Command::new("tune2fs")
            .args(["-r", &RESERVED_BLOCKS.to_string()])
            .arg(image),
    )
}

fn reserve_dir(layout: &Layout, name: &str) -> PathBuf {
    layout.disk(name).join("reserve")
}

/// Frees the reserved inodes (before mounting the overlay).
fn release_reserve(layout: &Layout, name: &str) {
    let _ = fs::remove_dir_all(reserve_dir(layout, name));
}

/// Takes the reserved inodes back, as far as the tenant left any free.
fn take_reserve(layout: &Layout, name: &str) {
    let dir = reserve_dir(layout, name);
    if fs::create_dir(&dir).is_ok() {
        for i in 1..RESERVED_INODES {
            if fs::write(dir.join(i.to_string()), b"").is_err() {
                break;
            }
        }
    }
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .ctx("create directory", path)
}

fn chown(path: &Path, id: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(id), Some(id)).ctx("chown", path)
}

/// Rejects state dirs whose path would break overlayfs' option string.
pub fn check_path_for_overlay(path: &Path) -> Result<()> {
    let s = path.to_string_lossy();
    if s.contains([',', ':', '\\', '\n']) {
        return Err(Error::Unsupported(format!(
            "the state dir {s:?} contains ',', ':' or '\\', which overlayfs cannot take"
        )));
    }
    Ok(())
}

/// Fail points for tests of the rollback; `None` in production.
pub type FailPoint = Option<&'static str>;

fn fail_at(fail: FailPoint, step: &'static str) -> Result<()> {
    if fail == Some(step) {
        return Err(Error::FailPoint(step));
    }
    Ok(())
}

/// Names of the steps of [`create`], in order (for fail-point tests).
pub const CREATE_STEPS: &[&str] = &["image", "loop", "mount-disk", "layout", "lower", "overlay"];

/// What a container's storage is made of.
#[derive(Debug, Clone, Copy)]
pub struct DiskSpec<'a> {
    pub template: &'a str,
    pub size: u64,
    pub inodes: u64,
    /// First host id of the container (its root), for the idmapped template.
    pub id_base: u32,
}

/// Builds a container's storage from nothing: image, loop device, mounts. On error every
/// step taken is undone. `rollback` receives the undo steps; the caller commits it.
pub fn create(
    layout: &Layout,
    name: &str,
    disk: &DiskSpec<'_>,
    fail: FailPoint,
    rollback: &mut Rollback,
) -> Result<()> {
    let image = layout.image(name);
    fail_at(fail, "image")?;
    make_image(&image, disk.size, disk.inodes)?;
    mount_all(layout, name, disk.template, disk.id_base, fail, rollback)
}

/// Mounts an existing container's storage (after create, or after a host reboot).
pub fn mount_all(
    layout: &Layout,
    name: &str,
    template: &str,
    id_base: u32,
    fail: FailPoint,
    rollback: &mut Rollback,
) -> Result<()> {
    let image = layout.image(name);
    let disk = layout.disk(name);
    let lower = layout.lower(name);
    let rootfs = layout.rootfs(name);
    for dir in [&disk, &lower, &rootfs] {
        if !dir.exists() {
            mkdir(dir, 0o700)?;
        }
    }

    fail_at(fail, "loop")?;
    let table = mounts::mount_table()?;
    if mounts::mount_at(&table, &disk).is_none() {
        let dev = LoopDevice::attach(&image)?;
        fail_at(fail, "mount-disk")?;
        mounts::mount(
            &dev.path.to_string_lossy(),
            &disk,
            "ext4",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME,
            Some("commit=30"),
        )?;
        drop(dev); // the mount now holds the device; auto-clear frees it on unmount
        let d = disk.clone();
        rollback.push("mount-disk", move || {
            let _ = mounts::umount_all(&d);
        });
    }

    fail_at(fail, "layout")?;
    let upper = layout.upper(name);
    let work = layout.work(name);
    if !upper.exists() {
        mkdir(&upper, 0o755)?;
        chown(&upper, id_base)?;
    }
    if !work.exists() {
        mkdir(&work, 0o700)?;
    }

    fail_at(fail, "lower")?;
    if mounts::mount_at(&table, &lower).is_none() {
        let ns = userns_fd(id_base)?;
        idmapped_bind(&layout.template_rootfs(template), &lower, &ns)?;
        let l = lower.clone();
        rollback.push("lower", move || {
            let _ = mounts::umount_all(&l);
        });
    }

    fail_at(fail, "overlay")?;
    if mounts::mount_at(&table, &rootfs).is_none() {
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        release_reserve(layout, name);
        // nodev: a device node in the template or the tenant's layer opens nothing; the
        // container's own /dev is a separate mount.
        let mounted = mounts::mount("overlay", &rootfs, "overlay", libc::MS_NODEV, Some(&opts));
        take_reserve(layout, name);
        mounted?;
        let r = rootfs.clone();
        rollback.push("overlay", move || {
            let _ = mounts::umount_all(&r);
        });
    }
    Ok(())
}

/// Mounts an existing container's storage; on failure, whatever was mounted is undone.
pub fn mount_existing(layout: &Layout, name: &str, template: &str, id_base: u32) -> Result<()> {
    let mut rollback = Rollback::new();
    mount_all(layout, name, template, id_base, None, &mut rollback)?;
    rollback.commit();
    Ok(())
}

/// True when the container's root overlay is mounted (one `statfs`).
pub fn is_mounted(layout: &Layout, name: &str) -> bool {
    mounts::fs_magic(&layout.rootfs(name)) == Some(mounts::OVERLAYFS_SUPER_MAGIC)
}

/// Major and minor number of the loop device holding the mounted disk of container
/// `name`, from the mount's device number (no scan of every loop device); `None` if the
/// disk is not mounted.
pub fn disk_device(layout: &Layout, name: &str) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let disk = layout.disk(name);
    if mounts::fs_magic(&disk) != Some(mounts::EXT4_SUPER_MAGIC) {
        return None;
    }
    let dev = fs::metadata(&disk).ok()?.dev();
    Some((libc::major(dev), libc::minor(dev)))
}

/// The loop device holding the mounted disk of container `name`.
fn mounted_loop(layout: &Layout, name: &str) -> Option<PathBuf> {
    disk_device(layout, name)
        .filter(|(major, _)| *major == 7)
        .map(|(_, minor)| PathBuf::from(format!("/dev/loop{minor}")))
}

/// Whether loop device `dev` (`/dev/loopN`) is still attached to `image`.
fn loop_backs(dev: &Path, image: &Path) -> bool {
    let Some(name) = dev.file_name() else {
        return false;
    };
    fs::read(Path::new("/sys/block").join(name).join("loop/backing_file"))
        .map(|b| b.strip_suffix(b"\n").unwrap_or(&b) == image.as_os_str().as_encoded_bytes())
        .unwrap_or(false)
}

/// Unmounts everything of a container, in reverse order, and makes sure no loop device is
/// left on its image. The device is known from the mount; only debris of a crash (an
/// image attached but not mounted) needs a scan of every loop device.
pub fn unmount_all(layout: &Layout, name: &str) -> Result<()> {
    let mounted = mounted_loop(layout, name);
    mounts::umount_all(&layout.rootfs(name))?;
    mounts::umount_all(&layout.lower(name))?;
    mounts::umount_all(&layout.disk(name))?;
    let image = layout.image(name);
    let devices = match mounted {
        Some(dev) => vec![dev],
        None => loops_backed_by(&image),
    };
    for dev in devices {
        // Auto-clear is asynchronous after a lazy unmount; give it a moment first.
        for _ in 0..50 {
            if !loop_backs(&dev, &image) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if loop_backs(&dev, &image) {
            loop_detach(&dev)?;
        }
    }
    Ok(())
}

fn set_image_len(image: &Path, len: u64) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .open(image)
        .ctx("open", image)?
        .set_len(len)
        .ctx("resize disk image", image)
}

/// Whether this process holds CAP_SYS_RESOURCE, which ext4 demands for online resizing
/// (sandboxed hosts may withhold it even from root).
pub fn can_grow_online() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("CapEff:"))?;
            u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 24) != 0) // CAP_SYS_RESOURCE
}

/// Grows the image and its mounted filesystem from `old_size` to `new_size`, online. On
/// failure the image is put back to its old size.
pub fn grow_online(layout: &Layout, name: &str, old_size: u64, new_size: u64) -> Result<()> {
    if !can_grow_online() {
        return Err(Error::Unsupported(
            "growing a mounted disk needs CAP_SYS_RESOURCE, which this host withholds from \
             acetate: stop the container and grow it while stopped"
                .into(),
        ));
    }
    let image = layout.image(name);
    let table = mounts::mount_table()?;
    let entry = mounts::mount_at(&table, &layout.disk(name))
        .ok_or_else(|| Error::Unsupported(format!("the disk of {name:?} is not mounted")))?;
    let dev = PathBuf::from(&entry.source);
    set_image_len(&image, new_size)?;
    let result =
        loop_set_capacity(&dev).and_then(|()| run_tool(Command::new("resize2fs").arg(&dev)));
    if result.is_err() {
        let _ = set_image_len(&image, old_size).and_then(|()| loop_set_capacity(&dev));
    }
    result
}

/// Grows an unmounted image and its filesystem to `new_size` (checked first, as resize2fs
/// requires). On failure the image is put back to its old size.
pub fn grow_offline(layout: &Layout, name: &str, old_size: u64, new_size: u64) -> Result<()> {
    grow_image_file(&layout.image(name), old_size, new_size)
}

/// Grows the unmounted image file `image` and its filesystem (see [`grow_offline`]).
pub fn grow_image_file(image: &Path, old_size: u64, new_size: u64) -> Result<()> {
    // e2fsck exits 1 when it fixed something: the filesystem is then fine to resize.
    let out = Command::new("e2fsck")
        .args(["-f", "-p"])
        .arg(image)
        .output()
        .map_err(|e| Error::sys("run e2fsck", e))?;
    if !matches!(out.status.code(), Some(0 | 1)) {
        return Err(Error::Command {
            cmd: format!("e2fsck -f -p {}", image.display()),
            output: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        });
    }
    set_image_len(image, new_size)?;
    let result = run_tool(Command::new("resize2fs").arg(image));
    if result.is_err() {
        let _ = set_image_len(image, old_size);
    }
    result
}

/// Blocks and inodes used and available in a container's writable layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DiskUsage {
    pub bytes_total: u64,
    pub bytes_used: u64,
    pub inodes_total: u64,
    pub inodes_used: u64,
    /// Host disk space the sparse image really takes.
    pub image_allocated: u64,
}

pub fn disk_usage(layout: &Layout, name: &str) -> Option<DiskUsage> {
    let disk = layout.disk(name);
    if mounts::fs_magic(&disk) != Some(mounts::EXT4_SUPER_MAGIC) {
        return None;
    }
    let st = nix::sys::statvfs::statvfs(&disk).ok()?;
    let frsize = st.fragment_size();
    let allocated = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(layout.image(name))
            .map(|m| m.blocks() * 512)
            .unwrap_or(0)
    };
    Some(DiskUsage {
        bytes_total: st.blocks() * frsize,
        bytes_used: (st.blocks() - st.blocks_free()) * frsize,
        inodes_total: st.files().saturating_sub(RESERVED_INODES),
        inodes_used: (st.files() - st.files_free()).saturating_sub(RESERVED_INODES),
        image_allocated: allocated,
    })
}

/// The nameservers of the host's `/etc/resolv.conf` that a container can reach: loopback
/// ones (systemd-resolved's 127.0.0.53, a local dnsmasq) would be the container's own
/// loopback inside its network namespace, so they are left out.
pub fn host_resolvers() -> Vec<std::net::IpAddr> {
    resolvers_in(&fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}

fn resolvers_in(text: &str) -> Vec<std::net::IpAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|v| v.trim().split('%').next()?.parse::<std::net::IpAddr>().ok())
        .filter(|ip| !ip.is_loopback())
        .collect()
}

/// `/etc/resolv.conf` for a new layer: the given nameservers, or none at all (the
/// resolver then fails at once instead of waiting on addresses it cannot reach).
fn resolv_conf(resolvers: &[std::net::IpAddr]) -> String {
    let mut text = String::from(
        "# Written by Acetate when this container's disk was made; it is yours to edit.\n",
    );
    if resolvers.is_empty() {
        text.push_str(
            "# The provider configured no resolver this container can reach \
             (acetate --resolver).\n",
        );
    }
    for ip in resolvers {
        text.push_str(&format!("nameserver {ip}\n"));
    }
    text.push_str("options timeout:2 attempts:2\n");
    text
}

/// Gives a new writable layer the container's identity: `/etc/hostname`, an `/etc/hosts`
/// that maps it (so that looking the container's own name up answers at once) and an
/// `/etc/resolv.conf` naming `resolvers`, owned by the container's root, which may edit
/// them afterwards. The layer is new: nothing in it can be a link yet.
pub fn write_identity(
    layout: &Layout,
    name: &str,
    hostname: &str,
    id_base: u32,
    resolvers: &[std::net::IpAddr],
) -> Result<()> {
    use std::io::Write;
    let etc = layout.upper(name).join("etc");
    match fs::DirBuilder::new().mode(0o755).create(&etc) {
        Ok(()) => {
            std::os::unix::fs::chown(&etc, Some(id_base), Some(id_base)).ctx("chown", &etc)?
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("create", &etc, e)),
    }
    let files = [
        ("hostname", format!("{hostname}\n")),
        (
            "hosts",
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                 127.0.1.1\t{hostname}\n"
            ),
        ),
        ("resolv.conf", resolv_conf(resolvers)),
    ];
    for (file, text) in files {
        let path = etc.join(file);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ctx("create", &path)?;
        f.write_all(text.as_bytes()).ctx("write", &path)?;
        std::os::unix::fs::fchown(&f, Some(id_base), Some(id_base)).ctx("chown", &path)?;
    }
    Ok(())
}

#[cfg(test)]
mod resolver_tests {
    use super::*;

    #[test]
    fn loopback_resolvers_are_left_out_and_none_is_said() {
        let text = "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\n\
                    nameserver ::1\nnameserver fe80::1%eth0\nnameserver bogus\nsearch x\n";
        let found = resolvers_in(text);
        assert_eq!(
            found,
            [
                "192.0.2.1".parse::<std::net::IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        let conf = resolv_conf(&found);
        assert!(
            conf.contains("nameserver 192.0.2.1\nnameserver fe80::1\n"),
            "{conf}"
        );
        let none = resolv_conf(&[]);
        assert!(
            !none.contains("nameserver ") && none.contains("--resolver"),
            "{none}"
        );
    }
}
