//! Fitting the trees of templates the engine builds itself (`host`, Debian's) for life as
//! a container, the way distributions' container images are made: what a booted init
//! would otherwise do for nothing at every start is turned off in the tree's `/etc`, where
//! a customer can turn it back on. Templates imported by the provider are left as they are.
//!
//! - systemd's generators with nothing to find in a container are masked: those for disks,
//!   encryption and boot loaders (`systemd-cryptsetup-generator`, `-gpt-auto-`,
//!   `-hibernate-resume-`, `-integritysetup-`, `-veritysetup-`), those that read the
//!   kernel's command line or look for consoles (`-debug-`, `-run-`, `-getty-`; a
//!   container has neither), and `-fstab-` with `systemd-remount-fs.service` (a container
//!   cannot mount: seccomp refuses `mount(2)`, Acetate mounts its disk). Each is a program
//!   started at every boot, with systemd's libraries to load: masked, a boot of the `host`
//!   template costs some 45 % less CPU.
//! - `systemd-shutdown` gets a program in `/usr/lib/systemd/system-shutdown` that notes in
//!   `/var/lib/acetate/halt` whether the container reboots or powers off: a container
//!   cannot do either itself, and the engine, reading the note once it has stopped, starts
//!   it again or keeps it stopped.
//! - SysV init's gettys on virtual consoles (`tty1`...) are commented out of
//!   `/etc/inittab`: a container has no such device, and init would respawn them, failing,
//!   until it gives up for five minutes and starts again.
//!
//! The tree is written through descriptors resolved inside it (a link in it cannot lead a
//! write out of it).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{Error, Result};
use crate::unpack::openat2;

/// Generators with nothing to do in a container (see the module's text).
const IDLE_GENERATORS: &[&str] = &[
    "systemd-cryptsetup-generator",
    "systemd-gpt-auto-generator",
    "systemd-hibernate-resume-generator",
    "systemd-integritysetup-generator",
    "systemd-veritysetup-generator",
    "systemd-debug-generator",
    "systemd-run-generator",
    "systemd-getty-generator",
    "systemd-fstab-generator",
];

/// Units with nothing to do in a container.
const IDLE_UNITS: &[&str] = &["systemd-remount-fs.service"];

const INITTAB_NOTE: &str =
    "# Acetate: a container has no virtual consoles (tty1...); its consoles are the panel's \
terminal and `acetate ct enter`.\n";

const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// Fits the tree at `rootfs` (see the module's text).
pub(crate) fn fit(rootfs: &Path) -> Result<()> {
    let root = openat2(libc::AT_FDCWD, rootfs, libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| Error::io("open", rootfs, e))?;
    mask_idle(&root, rootfs)?;
    note_halts(&root, rootfs)?;
    quiet_consoles(&root, rootfs)
}

/// Makes systemd note, as it goes down, whether the container reboots or powers off: a
/// program in `lib/systemd/system-shutdown`, which `systemd-shutdown` runs last with the
/// verb (`reboot`, `poweroff`, `halt`, `kexec`), writes it to the halt mark, which the
/// engine reads once the container has stopped.
fn note_halts(root: &OwnedFd, rootfs: &Path) -> Result<()> {
    let has = [
        "usr/lib/systemd/systemd-shutdown",
        "lib/systemd/systemd-shutdown",
    ]
    .iter()
    .any(|p| in_tree(root, p, libc::O_PATH).is_ok());
    if !has {
        return Ok(());
    }
    let mark = crate::halts::HALT_MARK;
    let dir = mark.rsplit_once('/').map_or("", |(d, _)| d);
    let text = format!(
        "#!/bin/sh\n\
         # Acetate: a container can neither restart nor power off itself; this notes which\n\
         # it asked for, and Acetate starts it again or keeps it stopped.\n\
         mkdir -p /{dir} && echo \"$1\" > /{mark}\n"
    );
    write_new(
        root,
        rootfs,
        "usr/lib/systemd/system-shutdown",
        "acetate-halt",
        &text,
        0o755,
    )
}

/// Writes `name` with `text` in directory `dir` of the tree (made if missing), unless
/// the tree has such a file already.
fn write_new(
    root: &OwnedFd,
    rootfs: &Path,
    dir: &str,
    name: &str,
    text: &str,
    mode: u32,
) -> Result<()> {
    let mut made = String::new();
    for part in dir.split('/') {
        let parent = in_tree(
            root,
            if made.is_empty() { "." } else { &made },
            libc::O_PATH | libc::O_DIRECTORY,
        )
        .map_err(|e| Error::io("open", rootfs.join(&made), e))?;
        match nix::sys::stat::mkdirat(
            Some(parent.as_raw_fd()),
            part,
            Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::io(
                    "create directory",
                    rootfs.join(&made).join(part),
                    e.into(),
                ))
            }
        }
        if !made.is_empty() {
            made.push('/');
        }
        made.push_str(part);
    }
    let path = rootfs.join(dir).join(name);
    let dir = in_tree(root, dir, libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| Error::io("open", rootfs.join(&made), e))?;
    let fd = match nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    ) {
        Ok(fd) => fd,
        Err(Errno::EEXIST) => return Ok(()),
        Err(e) => return Err(Error::io("create", &path, e.into())),
    };
    // SAFETY: openat just returned this descriptor, owned by nothing else.
    unsafe { File::from_raw_fd(fd) }
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("write", &path, e))
}

fn mask_idle(root: &OwnedFd, rootfs: &Path) -> Result<()> {
    mask(root, rootfs, "system-generators", IDLE_GENERATORS)?;
    mask(root, rootfs, "system", IDLE_UNITS)
}

/// Masks those of `names` that the tree's systemd has in `lib/systemd/{kind}` with links
/// to `/dev/null` in `etc/systemd/{kind}`.
fn mask(root: &OwnedFd, rootfs: &Path, kind: &str, names: &[&str]) -> Result<()> {
    let installed: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            ["usr/lib/systemd", "lib/systemd"]
                .iter()
                .any(|d| in_tree(root, &format!("{d}/{kind}/{n}"), libc::O_PATH).is_ok())
        })
        .collect();
    if installed.is_empty() {
        return Ok(());
    }
    let Ok(systemd) = in_tree(root, "etc/systemd", libc::O_PATH | libc::O_DIRECTORY) else {
        return Ok(());
    };
    let dir = rootfs.join("etc/systemd").join(kind);
    match nix::sys::stat::mkdirat(
        Some(systemd.as_raw_fd()),
        kind,
        Mode::from_bits_truncate(0o755),
    ) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(Error::io("create directory", &dir, e.into())),
    }
    let masks = in_tree(
        root,
        &format!("etc/systemd/{kind}"),
        libc::O_PATH | libc::O_DIRECTORY,
    )
    .map_err(|e| Error::io("open", &dir, e))?;
    for g in installed {
        // One the tree already has there (its own mask or override) stays.
        match nix::unistd::symlinkat("/dev/null", Some(masks.as_raw_fd()), g) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::io("create link", dir.join(g), e.into())),
        }
    }
    Ok(())
}

/// The table without its virtual-console gettys; `None` when it has none.
fn without_console_gettys(table: &str) -> Option<String> {
    let on_console = |line: &str| {
        let fields: Vec<&str> = line.splitn(4, ':').collect();
        let [_, _, action, process] = fields[..] else {
            return false;
        };
        !line.trim_start().starts_with('#')
            && matches!(action, "respawn" | "once" | "wait")
            && process.contains("getty")
            && process.split_whitespace().any(|w| {
                w.strip_prefix("tty")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
    };
    if !table.lines().any(on_console) {
        return None;
    }
    let mut out = String::with_capacity(table.len() + INITTAB_NOTE.len() + 16);
    let mut noted = false;
    for line in table.lines() {
        if on_console(line) {
            if !noted {
                out.push_str(INITTAB_NOTE);
                noted = true;
            }
            out.push('#');
        }
        out.push_str(line);
        out.push('\n');
    }
    Some(out)
}

fn quiet_consoles(root: &OwnedFd, rootfs: &Path) -> Result<()> {
    let path = rootfs.join("etc/inittab");
    let Ok(fd) = in_tree(root, "etc/inittab", libc::O_RDONLY | libc::O_NOFOLLOW) else {
        return Ok(());
    };
    let mut file = File::from(fd);
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let mut table = String::new();
    if file.read_to_string(&mut table).is_err() {
        return Ok(());
    }
    let Some(fitted) = without_console_gettys(&table) else {
        return Ok(());
    };
    let etc = in_tree(root, "etc", libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| Error::io("open", rootfs.join("etc"), e))?;
    let scratch = ".inittab.acetate";
    let _ = nix::unistd::unlinkat(
        Some(etc.as_raw_fd()),
        scratch,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    let fd = nix::fcntl::openat(
        Some(etc.as_raw_fd()),
        scratch,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|e| Error::io("create", &path, e.into()))?;
    // SAFETY: openat just returned this descriptor, owned by nothing else.
    let written = unsafe { File::from_raw_fd(fd) }.write_all(fitted.as_bytes());
    let moved = written
        .map_err(|e| Error::io("write", &path, e))
        .and_then(|()| {
            nix::fcntl::renameat(
                Some(etc.as_raw_fd()),
                scratch,
                Some(etc.as_raw_fd()),
                "inittab",
            )
            .map_err(|e| Error::io("replace", &path, e.into()))
        });
    if moved.is_err() {
        let _ = nix::unistd::unlinkat(
            Some(etc.as_raw_fd()),
            scratch,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    moved
}

/// Opens `path` of the tree, resolved inside it.
fn in_tree(root: &OwnedFd, path: &str, flags: i32) -> std::io::Result<OwnedFd> {
    openat2(
        root.as_raw_fd(),
        Path::new(path),
        flags | libc::O_CLOEXEC,
        RESOLVE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_virtual_console_gettys_are_commented_out() {
        let table = "id:2:initdefault:\nl2:2:wait:/etc/init.d/rc 2\n\
            1:2345:respawn:/sbin/getty --noclear 38400 tty1\n\
            2:23:respawn:/sbin/getty 38400 tty2\n\
            #3:23:respawn:/sbin/getty 38400 tty3\n\
            T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n";
        let out = without_console_gettys(table).unwrap();
        assert_eq!(
            out,
            format!(
                "id:2:initdefault:\nl2:2:wait:/etc/init.d/rc 2\n{INITTAB_NOTE}\
                 #1:2345:respawn:/sbin/getty --noclear 38400 tty1\n\
                 #2:23:respawn:/sbin/getty 38400 tty2\n\
                 #3:23:respawn:/sbin/getty 38400 tty3\n\
                 T0:23:respawn:/sbin/getty -L ttyS0 9600 vt100\n"
            )
        );
        // Fitted once, it has nothing more to fit.
        assert_eq!(without_console_gettys(&out), None);
        assert_eq!(without_console_gettys("id:2:initdefault:\n"), None);
    }
}
