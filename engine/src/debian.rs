//! Distribution templates built with Debian's own tools: `mmdebstrap` makes a root
//! filesystem of a Debian suite from the package registry the host uses, as a tarball in
//! the state dir, which the ordinary template import then unpacks (with its checks).
//! Packages come signed by Debian's archive keys (`debian-archive-keyring`), so set-uid
//! programs (`su`, `passwd`) keep their bits.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use crate::template::{ImportOptions, TemplateInfo};
use crate::{require_root, spec, Engine};

/// What to build.
#[derive(Debug, Clone)]
pub struct DebianBuild {
    /// `bookworm`, `trixie`...
    pub suite: String,
    /// The archive (default: the host's own Debian source).
    pub mirror: Option<String>,
    /// Packages beyond the minimal base (default: [`DEFAULT_INCLUDE`]).
    pub include: Vec<String>,
    /// The init system its containers boot: systemd (`systemd-sysv`, the default when
    /// `include` is empty), SysV init (`sysvinit-core`), or none (`Minimal`: Acetate's).
    /// Added to `include`.
    pub init: Option<spec::Init>,
}

impl DebianBuild {
    /// Every package asked for beyond the minimal base.
    fn packages(&self) -> Vec<String> {
        let mut out: Vec<String> = if self.include.is_empty() {
            DEFAULT_INCLUDE.iter().map(|p| p.to_string()).collect()
        } else {
            self.include.clone()
        };
        let init = match self.init {
            None if self.include.is_empty() => Some("systemd-sysv"),
            Some(spec::Init::Systemd) => Some("systemd-sysv"),
            Some(spec::Init::Sysvinit) => Some("sysvinit-core"),
            None | Some(spec::Init::Minimal) => None,
        };
        if let Some(init) = init {
            if !out.iter().any(|p| p == init) {
                out.insert(0, init.to_string());
            }
        }
        out
    }
}

/// Packages a hosting customer expects in a fresh container beyond Debian's minimal base
/// (with its init system, see [`DebianBuild::init`]): cron among them.
pub const DEFAULT_INCLUDE: &[&str] = &[
    "cron",
    "ca-certificates",
    "openssh-sftp-server",
    "procps",
    "iproute2",
    "less",
    "nano",
];

/// The first Debian archive the host's apt uses (deb822 `.sources` or `sources.list`),
/// else Debian's own.
pub fn host_mirror() -> String {
    let mut texts = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        let mut files: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        files.sort();
        texts.extend(files.into_iter().filter_map(|p| {
            let ext = p.extension()?.to_str()?;
            (ext == "sources" || ext == "list")
                .then(|| std::fs::read_to_string(&p).ok())
                .flatten()
        }));
    }
    texts.extend(std::fs::read_to_string("/etc/apt/sources.list").ok());
    texts
        .iter()
        .find_map(|t| mirror_in(t))
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

/// The first archive URI of a sources file that is Debian's main archive (not security).
fn mirror_in(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            l.strip_prefix("URIs:")
                .map(|u| u.split_whitespace().next().unwrap_or("").to_string())
                .or_else(|| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.first() == Some(&"deb"))
                        .then(|| f.iter().find(|x| x.contains("://")).map(|x| x.to_string()))
                        .flatten()
                })
        })
        .find(|u| u.contains("://") && !u.contains("security"))
}

/// A scratch directory removed when dropped, whatever happened.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn valid_word(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '+'))
        && !s.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{what} {s:?}: letters, digits, '-', '.', '+' only"
        )))
    }
}

impl Engine {
    /// Builds template `name` from Debian suite `b.suite` with mmdebstrap.
    #[tracing::instrument(skip(self))]
    pub fn build_debian(&self, name: &str, b: &DebianBuild) -> Result<TemplateInfo> {
        spec::validate_name(name)?;
        require_root("build templates")?;
        valid_word("suite", &b.suite)?;
        for p in b.packages() {
            valid_word("package", &p)?;
        }
        let mirror = b.mirror.clone().unwrap_or_else(host_mirror);
        if !(mirror.starts_with("http://") || mirror.starts_with("https://"))
            || mirror.contains(char::is_whitespace)
        {
            return Err(Error::Unsupported(format!(
                "mirror {mirror:?}: give an http(s) URL of a Debian archive"
            )));
        }
        if crate::template::exists(&self.layout, name) {
            return Err(Error::TemplateExists(name.to_string()));
        }
        let tool = Path::new("/usr/bin/mmdebstrap");
        if !tool.exists() {
            return Err(Error::Unsupported(
                "building Debian templates needs mmdebstrap (apt install mmdebstrap)".into(),
            ));
        }
        // In the state dir: a root filesystem is too big for a RAM-backed /tmp.
        let work = WorkDir(
            self.layout
                .templates()
                .join(format!(".debian-build-{name}-{}", std::process::id())),
        );
        let _ = std::fs::remove_dir_all(&work.0);
        std::fs::create_dir_all(&work.0).map_err(|e| Error::io("create directory", &work.0, e))?;
        let tar = work.0.join("rootfs.tar");
        let include = b.packages().join(",");
        let out = Command::new(tool)
            .arg("--variant=minbase")
            .arg(format!("--include={include}"))
            .arg("--quiet")
            .arg(&b.suite)
            .arg(&tar)
            .arg(&mirror)
            .env("TMPDIR", &work.0)
            .output()
            .map_err(|e| Error::sys("run mmdebstrap", e))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last: Vec<&str> = err.lines().rev().take(5).collect();
            return Err(Error::Command {
                cmd: format!("mmdebstrap {} (from {mirror})", b.suite),
                output: last.into_iter().rev().collect::<Vec<_>>().join("\n"),
            });
        }
        let opts = ImportOptions {
            allow_setid: true,
            fit: true,
            ..Default::default()
        };
        let _g = self.layout.lock_global(crate::LOCK_TIMEOUT)?;
        let mut info = crate::template::import(&self.layout, name, &tar, &opts)?;
        info.source = format!("debian {} ({mirror})", b.suite);
        crate::template::set_source(&self.layout, name, &info.source)?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_debian_archive_is_found_in_either_format() {
        let deb822 = "Types: deb\n# http://snapshot.debian.org/x\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let list =
            "# deb http://old/\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            mirror_in(list).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(
            mirror_in("deb http://security.debian.org/debian-security bookworm-security main\n"),
            None
        );
    }

    #[test]
    fn the_init_asked_for_is_among_the_packages() {
        let build = |include: &[&str], init| DebianBuild {
            suite: "bookworm".into(),
            mirror: None,
            include: include.iter().map(|p| p.to_string()).collect(),
            init,
        };
        let default = build(&[], None).packages();
        assert_eq!(default[0], "systemd-sysv");
        assert!(default.iter().any(|p| p == "cron"));
        let sysv = build(&[], Some(spec::Init::Sysvinit)).packages();
        assert_eq!(sysv[0], "sysvinit-core");
        assert!(!sysv.iter().any(|p| p == "systemd-sysv"));
        assert!(sysv.iter().any(|p| p == "cron"));
        assert_eq!(build(&["nano"], None).packages(), ["nano"]);
        assert_eq!(
            build(&["nano"], Some(spec::Init::Systemd)).packages(),
            ["systemd-sysv", "nano"]
        );
        assert!(!build(&[], Some(spec::Init::Minimal))
            .packages()
            .iter()
            .any(|p| p.contains("sysv")));
    }

    #[test]
    fn suites_and_packages_are_single_words() {
        assert!(valid_word("suite", "bookworm").is_ok());
        assert!(valid_word("package", "g++").is_ok());
        assert!(valid_word("suite", "--keyring=/x").is_err());
        assert!(valid_word("suite", "a b").is_err());
        assert!(valid_word("package", "").is_err());
    }
}
