//! Fitting the trees of templates the engine builds itself (`host`, Debian's) for life as
//! a container, the way distributions' container images are made: what a booted init
//! would otherwise do for nothing at every start is turned off in the tree's `/etc`, where
//! a customer can turn it back on. Templates imported by the provider are left as they
//! are unless the provider asks (`template import --fit`).
//!
//! - systemd's generators with nothing to find in a container are masked: those for disks,
//!   encryption and boot loaders (`systemd-cryptsetup-generator`, `-gpt-auto-`,
//!   `-hibernate-resume-`, `-integritysetup-`, `-veritysetup-`), those that read the
//!   kernel's command line or look for consoles (`-debug-`, `-run-`, `-getty-`; a
//!   container has neither), and `-fstab-` with `systemd-remount-fs.service` (a container
//!   cannot mount: seccomp refuses `mount(2)`, Acetate mounts its disk). Each is a program
//!   started at every boot, with systemd's libraries to load: masked, a boot of the `host`
//!   template costs some 45 % less CPU. So are the units that skip themselves in a
//!   container (udev, kernel modules, `sysctl`, binfmt, the kernel's file systems, TPM and
//!   first-boot units), which systemd would load with all they pull in first (a further
//!   ~10 %), and `etc/.updated` and `var/.updated` say the tree is up to date with its
//!   `/usr`, so `systemd-sysusers` does not run at every boot.
//! - `systemd-shutdown` gets a program in `/usr/lib/systemd/system-shutdown` that notes in
//!   `/var/lib/acetate/halt` whether the container reboots or powers off: a container
//!   cannot do either itself, and the engine, reading the note once it has stopped, starts
//!   it again or keeps it stopped.
//! - SysV init's gettys on virtual consoles (`tty1`...) are commented out of
//!   `/etc/inittab`: a container has no such device, and init would respawn them, failing,
//!   until it gives up for five minutes and starts again.
//!
//! The tree is written through [`Root`], every path resolved inside it (a link in it
//! cannot lead a write out of it).

use std::io::Read;
use std::path::Path;

use crate::error::Result;
use crate::unpack::Root;

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
    // Offline updates (`/system-update`) are for machines that reboot into them.
    "systemd-system-update-generator",
];

/// Units with nothing to do in a container: most would skip themselves by their
/// conditions (`ConditionVirtualization=!container`, a read-only `/sys`, a capability a
/// container lacks), but only after systemd loaded them and what they pull in.
const IDLE_UNITS: &[&str] = &[
    // Mounting: seccomp refuses mount(2); Acetate mounts the container's disk.
    "systemd-remount-fs.service",
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    // Devices and kernel modules belong to the host.
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-hwdb-update.service",
    "kmod-static-nodes.service",
    "systemd-modules-load.service",
    "modprobe@.service",
    "systemd-binfmt.service",
    // The kernel's settings, random seed and audit log are the host's.
    "systemd-sysctl.service",
    "systemd-random-seed.service",
    "systemd-journald-audit.socket",
    // Disks, TPMs, first-boot prompts and passwords asked on a console a container lacks.
    "systemd-repart.service",
    "systemd-pcrphase.service",
    "systemd-pcrphase-sysinit.service",
    "systemd-pcrphase-initrd.service",
    "systemd-firstboot.service",
    "systemd-machine-id-commit.service",
    "systemd-ask-password-console.path",
    "systemd-ask-password-wall.path",
];

const INITTAB_NOTE: &str =
    "# Acetate: a container has no virtual consoles (tty1...); its consoles are the panel's \
terminal and `acetate ct enter`.\n";

/// Fits the tree at `rootfs` (see the module's text).
pub(crate) fn fit(rootfs: &Path) -> Result<()> {
    let root = Root::open(rootfs)?;
    for (kind, names) in [
        ("system-generators", IDLE_GENERATORS),
        ("system", IDLE_UNITS),
    ] {
        for name in names {
            mask(&root, kind, name)?;
        }
    }
    note_halts(&root)?;
    mark_updated(&root)?;
    quiet_consoles(&root)
}

/// Writes `etc/.updated` and `var/.updated` as `systemd-update-done` does after the first
/// boot of a machine (dated as its `/usr`, to the nanosecond in `TIMESTAMP_NSEC`): the tree
/// was made with its `/usr`, so what runs when `/usr` is newer (`ConditionNeedsUpdate=`:
/// `systemd-sysusers` in Debian) has nothing to do. Without them it ran at every boot of
/// every container, since a container's first boot never wrote them into the template.
/// An upgrade that touches `/usr` makes them due again, as on any machine.
fn mark_updated(root: &Root) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !systemd_has(root, "systemd") {
        return Ok(());
    }
    let Ok(usr) = root.open_in(Path::new("usr"), libc::O_PATH | libc::O_DIRECTORY) else {
        return Ok(());
    };
    let usr = std::fs::File::from(usr)
        .metadata()
        .map_err(|e| crate::error::Error::io("stat", "usr", e))?;
    let nsec = i128::from(usr.mtime()) * 1_000_000_000 + i128::from(usr.mtime_nsec());
    let text = format!(
        "# Acetate: this tree was made with its /usr (see ConditionNeedsUpdate= in \
         systemd.unit(5)).\nTIMESTAMP_NSEC={nsec}\n"
    );
    for dir in ["etc", "var"] {
        let stamp = Path::new(dir).join(".updated");
        if root.exists(Path::new(dir)) && !root.exists(&stamp) {
            root.file(&stamp, &mut text.as_bytes(), 0o644, 0, 0, usr.mtime())?;
        }
    }
    Ok(())
}

/// Whether the tree's systemd has `rel` (under `lib/systemd`, usr-merged or not).
fn systemd_has(root: &Root, rel: &str) -> bool {
    ["usr/lib/systemd", "lib/systemd"]
        .iter()
        .any(|d| root.exists(&Path::new(d).join(rel)))
}

/// Masks `name` of `lib/systemd/{kind}` with a link to `/dev/null` in
/// `etc/systemd/{kind}`, if the tree has it and no file of its own there.
fn mask(root: &Root, kind: &str, name: &str) -> Result<()> {
    let mask = Path::new("etc/systemd").join(kind).join(name);
    if !systemd_has(root, &format!("{kind}/{name}")) || root.exists(&mask) {
        return Ok(());
    }
    root.symlink(&mask, Path::new("/dev/null"), 0, 0)
}

/// Makes systemd note, as it goes down, whether the container reboots or powers off: a
/// program in `lib/systemd/system-shutdown`, which `systemd-shutdown` runs last with the
/// verb (`reboot`, `poweroff`, `halt`, `kexec`), writes it to the halt mark, which the
/// engine reads once the container has stopped.
fn note_halts(root: &Root) -> Result<()> {
    let program = Path::new("usr/lib/systemd/system-shutdown/acetate-halt");
    if !systemd_has(root, "systemd-shutdown") || root.exists(program) {
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
    root.file(program, &mut text.as_bytes(), 0o755, 0, 0, now())
        .map(drop)
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

fn quiet_consoles(root: &Root) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let inittab = Path::new("etc/inittab");
    let Ok(fd) = root.open_in(inittab, libc::O_RDONLY | libc::O_NOFOLLOW) else {
        return Ok(());
    };
    let mut file = std::fs::File::from(fd);
    let Ok(meta) = file.metadata() else {
        return Ok(());
    };
    let mut table = String::new();
    if !meta.is_file() || file.read_to_string(&mut table).is_err() {
        return Ok(());
    }
    let Some(fitted) = without_console_gettys(&table) else {
        return Ok(());
    };
    root.file(
        inittab,
        &mut fitted.as_bytes(),
        meta.mode() & 0o7777,
        meta.uid(),
        meta.gid(),
        now(),
    )
    .map(drop)
}

fn now() -> i64 {
    crate::store::unix_now() as i64
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
