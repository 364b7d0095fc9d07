//! Templates: the read-only base layers that containers overlay. `host` is built from the
//! host's own OS without any download; others are imported from a directory or a tarball.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::spec::Init;
use crate::store::{read_json, unix_now, write_json, Layout};
pub use crate::unpack::ImportOptions;
use crate::unpack::{unpack, Tally};

/// What `template list` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub name: String,
    /// Where it came from: `host`, a directory or a tarball path.
    pub source: String,
    pub created_at: u64,
    /// Files, directories and links in the tree.
    pub entries: u64,
    /// Bytes of regular files (shared with the host where hard-linked).
    pub bytes: u64,
    /// Containers using it (filled in by the engine).
    #[serde(default)]
    pub containers: usize,
    /// The system inside, from its `/etc/os-release` (`Debian GNU/Linux 12 (bookworm)`).
    #[serde(default)]
    pub os: Option<String>,
    /// What its containers boot by default (filled in when listed).
    #[serde(default = "Init::minimal")]
    pub init: Init,
    /// How the `host` template's tree was made ([`HOST_TREE_VERSION`]); 0 for others.
    #[serde(default)]
    pub tree_version: u32,
}

/// Version of the `host` template's recipe: 2 leaves out the host's enabled services and
/// its fstab; 3 is fitted for containers ([`crate::fitting`]), 4 with more masked, 5
/// (and 6) notes reboots and power-offs, 7 masks the units that skip themselves in a
/// container and marks the tree up to date with its `/usr`, 8 keeps the journal on disk.
pub const HOST_TREE_VERSION: u32 = 8;

/// Whether the installed `host` template follows this engine's recipe.
pub fn host_is_current(layout: &Layout) -> bool {
    read_json::<TemplateInfo>(&layout.template("host").join("template.json"))
        .ok()
        .flatten()
        .is_some_and(|t| t.source != "host" || t.tree_version >= HOST_TREE_VERSION)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Hard-link files (same filesystem), copying where that is impossible.
    Link,
    /// Copy file contents.
    Copy,
}

/// Files of the host's /etc that must not reach tenants even if world-readable.
const ETC_SECRETS: &[&str] = &[
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "machine-id",
    "ssh/ssh_host_rsa_key",
    "ssh/ssh_host_ecdsa_key",
    "ssh/ssh_host_ed25519_key",
    "ssh/ssh_host_dsa_key",
];

/// `rc0.d` ... `rc6.d`, `rcS.d`: where SysV init scripts are enabled by links.
fn is_rc_dir(dir: Option<&Path>) -> bool {
    dir.and_then(|d| d.to_str()).is_some_and(|d| {
        d.len() == 5
            && d.starts_with("rc")
            && d.ends_with(".d")
            && matches!(d.as_bytes()[2], b'0'..=b'6' | b'S')
    })
}

/// Recreates `src` at `dst` (which must not exist) with owners and modes kept. Entries for
/// which `skip` answers true are left out; sockets and device nodes always are.
fn clone_tree(
    src: &Path,
    dst: &Path,
    mode: Mode,
    skip: &dyn Fn(&Path) -> bool,
    counts: &mut Tally,
) -> Result<()> {
    counts.entry()?;
    let meta = fs::symlink_metadata(src).ctx("read", src)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dst)
            .ctx("create directory", dst)?;
        let mut entries: Vec<_> = fs::read_dir(src)
            .ctx("read directory", src)?
            .collect::<std::io::Result<_>>()
            .ctx("read directory", src)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if skip(&path) {
                continue;
            }
            // Other filesystems mounted inside (e.g. /usr/local on its own disk) are left out.
            if let Ok(m) = fs::symlink_metadata(&path) {
                if m.is_dir() && m.dev() != meta.dev() {
                    continue;
                }
            }
            clone_tree(&path, &dst.join(entry.file_name()), mode, skip, counts)?;
        }
        std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).ctx("chown", dst)?;
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .ctx("chmod", dst)?;
    } else if ft.is_symlink() {
        let target = fs::read_link(src).ctx("read link", src)?;
        std::os::unix::fs::symlink(&target, dst).ctx("create link", dst)?;
        std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).ctx("chown", dst)?;
    } else if ft.is_file() {
        counts.bytes(meta.len())?;
        let file_mode = counts.mode(meta.mode());
        let linked = mode == Mode::Link
            && file_mode == meta.mode() & 0o7777
            && fs::hard_link(src, dst).is_ok();
        if !linked {
            fs::copy(src, dst).ctx("copy", src)?;
            std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid())).ctx("chown", dst)?;
            fs::set_permissions(dst, fs::Permissions::from_mode(file_mode)).ctx("chmod", dst)?;
        }
    }
    Ok(())
}

/// Makes sure each of `dirs` is a real directory of `root` with its mode: anything else
/// there (a file, a symbolic link a crafted tree put in its place) is replaced, and no
/// link is ever followed. `root` is a tree this process is building, nobody else's.
fn mkdirs(root: &Path, dirs: &[(&str, u32)]) -> Result<()> {
    for (dir, mode) in dirs {
        let p = root.join(dir);
        let mut at = root.to_path_buf();
        for part in Path::new(dir).components() {
            at.push(part);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => fs::remove_file(&at).ctx("replace", &at)?,
                Err(_) => {}
            }
        }
        match fs::DirBuilder::new().recursive(true).create(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", p, e)),
        }
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).ctx("chmod", &p)?;
    }
    Ok(())
}

/// Writes `/etc/shadow` and `/etc/gshadow` with every account locked, for the users and
/// groups of the template's own passwd and group files.
fn fresh_shadow(etc: &Path) -> Result<()> {
    let names = |file: &str| -> Vec<String> {
        fs::read_to_string(etc.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(':').next())
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    };
    let days = unix_now() / 86400;
    let shadow: String = names("passwd")
        .iter()
        .map(|n| format!("{n}:*:{days}:0:99999:7:::\n"))
        .collect();
    let gshadow: String = names("group")
        .iter()
        .map(|n| format!("{n}:*::\n"))
        .collect();
    for (file, text) in [("shadow", shadow), ("gshadow", gshadow)] {
        let p = etc.join(file);
        fs::write(&p, text).ctx("write", &p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).ctx("chmod", &p)?;
        // Group "shadow" keeps its usual access where the template has that group.
        let gid = fs::read_to_string(etc.join("group"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                let f: Vec<_> = l.split(':').collect();
                (f.first() == Some(&"shadow")).then(|| f.get(2).and_then(|g| g.parse().ok()))?
            })
            .unwrap_or(0);
        std::os::unix::fs::lchown(&p, Some(0), Some(gid)).ctx("chown", &p)?;
    }
    Ok(())
}

/// Builds the host template's tree at `rootfs` from the host's `/`.
fn build_host_tree(host: &Path, rootfs: &Path, counts: &mut Tally) -> Result<()> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(rootfs)
        .ctx("create directory", rootfs)?;
    let never = |_: &Path| false;
    // The usr-merged top level: /bin, /lib... are links into /usr on modern Debian.
    for top in ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
        let src = host.join(top);
        if fs::symlink_metadata(&src).is_err() {
            continue;
        }
        clone_tree(&src, &rootfs.join(top), Mode::Link, &never, counts)?;
    }
    // /etc is copied without the host's secrets: its shadow files, SSH host keys, anything
    // not readable by everybody.
    let etc_src = host.join("etc");
    let secret = |p: &Path| {
        let rel = p.strip_prefix(&etc_src).unwrap_or(p);
        if ETC_SECRETS.iter().any(|s| rel == Path::new(s)) {
            return true;
        }
        // The host's enabled services (links under /etc/systemd/system) stay the host's:
        // a tenant's systemd starts the distribution's defaults, not the provider's
        // database or web server.
        if p.is_symlink() && (rel.starts_with("systemd/system") || is_rc_dir(rel.parent())) {
            return true;
        }
        fs::symlink_metadata(p)
            .map(|m| m.is_file() && m.mode() & 0o004 == 0)
            .unwrap_or(true)
    };
    let etc = rootfs.join("etc");
    clone_tree(&etc_src, &etc, Mode::Copy, &secret, counts)?;
    fresh_shadow(&etc)?;
    fs::write(etc.join("hostname"), "localhost\n").ctx("write", etc.join("hostname"))?;
    fs::write(etc.join("machine-id"), "").ctx("write", etc.join("machine-id"))?;
    // Nor its disks.
    fs::write(
        etc.join("fstab"),
        "# Nothing to mount: Acetate mounts the container's disk.\n",
    )
    .ctx("write", etc.join("fstab"))?;
    let mtab = etc.join("mtab");
    let _ = fs::remove_file(&mtab);
    std::os::unix::fs::symlink("../proc/self/mounts", &mtab).ctx("create link", &mtab)?;

    mkdirs(
        rootfs,
        &[
            ("proc", 0o555),
            ("sys", 0o555),
            ("dev", 0o755),
            ("run", 0o755),
            ("tmp", 0o1777),
            ("root", 0o700),
            ("home", 0o755),
            ("mnt", 0o755),
            ("srv", 0o755),
            ("opt", 0o755),
            ("media", 0o755),
            ("var", 0o755),
            ("var/lib", 0o755),
            ("var/log", 0o755),
            ("var/cache", 0o755),
            ("var/spool", 0o755),
            ("var/mail", 0o2775),
            ("var/local", 0o2775),
            ("var/opt", 0o755),
            ("var/backups", 0o755),
            ("var/tmp", 0o1777),
        ],
    )?;
    let _ = std::os::unix::fs::symlink("../run", rootfs.join("var/run"));
    let _ = std::os::unix::fs::symlink("../run/lock", rootfs.join("var/lock"));
    // The journal is kept on disk, as on the host (Debian's default): its directory, empty,
    // with the host's owner, group (`systemd-journal`, the template has the host's groups)
    // and mode.
    if let Some(meta) = fs::metadata(host.join("var/log/journal"))
        .ok()
        .filter(|m| m.is_dir())
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let journal = rootfs.join("var/log/journal");
        fs::create_dir(&journal).ctx("create directory", &journal)?;
        std::os::unix::fs::chown(&journal, Some(meta.uid()), Some(meta.gid()))
            .ctx("chown", &journal)?;
        fs::set_permissions(&journal, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .ctx("chmod", &journal)?;
    }
    // The package database, so that the package manager works inside containers.
    let dpkg = host.join("var/lib/dpkg");
    if dpkg.is_dir() {
        clone_tree(
            &dpkg,
            &rootfs.join("var/lib/dpkg"),
            Mode::Copy,
            &never,
            counts,
        )?;
    }
    Ok(())
}

/// Builds a template named `name` in a scratch directory and moves it into place; on any
/// error the scratch directory is removed.
fn install(
    layout: &Layout,
    name: &str,
    source: &str,
    opts: &ImportOptions,
    fill: impl FnOnce(&Path, &mut Tally) -> Result<()>,
) -> Result<TemplateInfo> {
    let final_dir = layout.template(name);
    if final_dir.exists() {
        return Err(Error::TemplateExists(name.to_string()));
    }
    let scratch = layout
        .templates()
        .join(format!(".{name}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&scratch)
        .ctx("create directory", &scratch)?;
    let result = (|| {
        let mut counts = Tally::new(opts, source);
        fill(&scratch.join("rootfs"), &mut counts)?;
        if counts.done.setid_cleared > 0 {
            tracing::warn!(
                template = name,
                files = counts.done.setid_cleared,
                "set-uid/set-gid bits cleared (allow them with --allow-setuid)"
            );
        }
        let info = TemplateInfo {
            name: name.to_string(),
            source: source.to_string(),
            created_at: unix_now(),
            entries: counts.done.entries,
            bytes: counts.done.bytes,
            containers: 0,
            os: os_of(&scratch.join("rootfs")),
            init: init_in(&scratch.join("rootfs")),
            tree_version: if source == "host" {
                HOST_TREE_VERSION
            } else {
                0
            },
        };
        write_json(&scratch.join("template.json"), &info)?;
        fs::rename(&scratch, &final_dir).ctx("move template into place", &final_dir)?;
        Ok(info)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&scratch);
    }
    result
}

/// The `PRETTY_NAME` of the tree's `os-release`, resolved inside the tree (it is often a
/// link into `/usr/lib`; a link cannot lead out of the tree).
fn os_of(rootfs: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let root =
        crate::unpack::openat2(libc::AT_FDCWD, rootfs, libc::O_PATH | libc::O_DIRECTORY, 0).ok()?;
    let file = crate::unpack::openat2(
        root.as_raw_fd(),
        Path::new("etc/os-release"),
        libc::O_RDONLY | libc::O_NONBLOCK,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
    .ok()?;
    let mut text = String::new();
    fs::File::from(file)
        .take(64 << 10)
        .read_to_string(&mut text)
        .ok()?;
    pretty_name(&text)
}

/// The init a container of template `name` boots by default: systemd where the
/// template's `/sbin/init` leads to it (resolved inside the tree), SysV init where
/// `/sbin/init` is that program beside `/etc/inittab` and `telinit`, Acetate's own
/// otherwise (no init, or one the engine does not know how to stop cleanly).
pub fn init_of(layout: &Layout, name: &str) -> Init {
    init_in(&layout.template_rootfs(name))
}

fn init_in(rootfs: &Path) -> Init {
    use std::os::fd::AsRawFd;
    let Ok(root) =
        crate::unpack::openat2(libc::AT_FDCWD, rootfs, libc::O_PATH | libc::O_DIRECTORY, 0)
    else {
        return Init::Minimal;
    };
    let Ok(init) = crate::unpack::openat2(
        root.as_raw_fd(),
        Path::new("sbin/init"),
        libc::O_PATH,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    ) else {
        return Init::Minimal;
    };
    let Ok(target) = fs::read_link(format!("/proc/self/fd/{}", init.as_raw_fd())) else {
        return Init::Minimal;
    };
    let base = fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    let Ok(rel) = target.strip_prefix(base) else {
        return Init::Minimal;
    };
    let in_tree = |path: &str| {
        crate::unpack::openat2(
            root.as_raw_fd(),
            Path::new(path),
            libc::O_PATH,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        )
        .is_ok()
    };
    if rel == Path::new("usr/lib/systemd/systemd") || rel == Path::new("lib/systemd/systemd") {
        Init::Systemd
    } else if (rel == Path::new("usr/sbin/init") || rel == Path::new("sbin/init"))
        && in_tree("etc/inittab")
        && in_tree("sbin/telinit")
    {
        // SysV init is a program of its own at /sbin/init, with its table and `telinit`
        // (busybox's init is a link to busybox and has no `telinit`).
        Init::Sysvinit
    } else {
        Init::Minimal
    }
}

fn pretty_name(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty() && v.len() <= 200)
}

/// Builds the `host` template from the host's own OS (no download).
pub fn build_host(layout: &Layout) -> Result<TemplateInfo> {
    let opts = ImportOptions {
        max_bytes: u64::MAX,
        max_entries: u64::MAX,
        allow_setid: true,
        fit: true,
    };
    install(layout, "host", "host", &opts, |rootfs, counts| {
        build_host_tree(Path::new("/"), rootfs, counts)?;
        crate::fitting::fit(rootfs)
    })
}

/// Imports a template from a root filesystem directory or tarball (gzip, xz, zstd or
/// bzip2 compressed, or plain), treating its contents as untrusted (see [`crate::unpack`]),
/// and, if `opts.fit`, fits it for containers as the engine's own builds are (see
/// [`crate::fitting`]).
pub fn import(
    layout: &Layout,
    name: &str,
    source: &Path,
    opts: &ImportOptions,
) -> Result<TemplateInfo> {
    let meta = fs::metadata(source).map_err(|e| match e.kind() {
        ErrorKind::NotFound => Error::Unsupported(format!(
            "cannot import {}: no such file or directory",
            source.display()
        )),
        _ => Error::io("read", source, e),
    })?;
    let shown = source.display().to_string();
    let source = fs::canonicalize(source).ctx("resolve", source)?;
    install(layout, name, &shown, opts, |rootfs, counts| {
        if meta.is_dir() {
            let never = |_: &Path| false;
            clone_tree(&source, rootfs, Mode::Copy, &never, counts)?;
        } else {
            fs::DirBuilder::new()
                .mode(0o755)
                .create(rootfs)
                .ctx("create directory", rootfs)?;
            let done = unpack(&source, rootfs, opts)?;
            counts.done = done;
            if done.devices_dropped > 0 {
                tracing::warn!(
                    template = name,
                    nodes = done.devices_dropped,
                    "device nodes left out of the template"
                );
            }
        }
        let is_dir = |p: &str| fs::symlink_metadata(rootfs.join(p)).is_ok_and(|m| m.is_dir());
        let has = |p: &str| fs::symlink_metadata(rootfs.join(p)).is_ok();
        if !is_dir("etc") || !has("bin") && !has("usr/bin") {
            return Err(Error::Unsupported(format!(
                "{shown} does not look like a root filesystem (it needs /etc and /bin or /usr/bin)"
            )));
        }
        mkdirs(
            rootfs,
            &[
                ("proc", 0o555),
                ("sys", 0o555),
                ("dev", 0o755),
                ("tmp", 0o1777),
                ("run", 0o755),
            ],
        )?;
        if opts.fit {
            crate::fitting::fit(rootfs)?;
        }
        Ok(())
    })
}

/// Every installed template.
pub fn list(layout: &Layout) -> Result<Vec<TemplateInfo>> {
    let dir = layout.templates();
    let mut out = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Some(mut info) = read_json::<TemplateInfo>(&entry.path().join("template.json"))? {
            info.init = init_of(layout, &info.name);
            out.push(info);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Whether template `name` is installed.
/// Records where template `name` came from.
pub(crate) fn set_source(layout: &Layout, name: &str, source: &str) -> Result<()> {
    let path = layout.template(name).join("template.json");
    let Some(mut info) = read_json::<TemplateInfo>(&path)? else {
        return Err(Error::NoSuchTemplate(name.to_string()));
    };
    info.source = source.to_string();
    write_json(&path, &info)
}

pub fn exists(layout: &Layout, name: &str) -> bool {
    layout.template(name).join("template.json").is_file()
}

/// Deletes template `name`: first renamed out of sight (`.deleting-...`), so that a crash
/// half-way never leaves a half template, then removed. The caller checks that no container
/// uses it, under the global lock.
pub fn delete(layout: &Layout, name: &str) -> Result<()> {
    if !exists(layout, name) {
        return Err(Error::NoSuchTemplate(name.to_string()));
    }
    let dir = layout.template(name);
    let trash = layout.templates().join(format!(".deleting-{name}"));
    let _ = fs::remove_dir_all(&trash);
    fs::rename(&dir, &trash).map_err(|e| Error::io("move away", &dir, e))?;
    fs::remove_dir_all(&trash).map_err(|e| Error::io("remove", &trash, e))
}
