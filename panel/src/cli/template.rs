//! `acetate template ...`

use std::path::PathBuf;

use acetate_engine::size::format_bytes;
use acetate_engine::{Engine, Result, TemplateInfo};
use clap::Subcommand;

use super::output::{table, Output};

#[derive(Debug, Subcommand)]
pub enum TemplateCmd {
    /// List installed templates.
    List,
    /// Build a template.
    #[command(subcommand)]
    Build(BuildCmd),
    /// Import a template from a root filesystem directory or tarball.
    Import {
        /// Name of the new template.
        name: String,
        /// A directory holding a root filesystem, or a tarball of one.
        path: PathBuf,
        /// Keep set-uid and set-gid bits (cleared by default: only for a template you trust).
        #[arg(long)]
        allow_setuid: bool,
        /// Fit it for containers as Acetate's own templates are: systemd's units and
        /// generators with nothing to do in a container masked, reboots and power-offs
        /// from inside noted for Acetate, SysV console gettys commented out (all in its
        /// /etc, where a customer can undo them).
        #[arg(long)]
        fit: bool,
    },
    /// Delete a template no container uses.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum BuildCmd {
    /// Build `host` from this machine's own OS (no download).
    Host,
    /// Build a Debian template with mmdebstrap from the Debian archive the host uses.
    Debian {
        /// The suite: bookworm, trixie...
        #[arg(long, default_value = "bookworm")]
        suite: String,
        /// The template's name (default: debian-SUITE).
        #[arg(long)]
        name: Option<String>,
        /// The archive (default: the host's own Debian source).
        #[arg(long)]
        mirror: Option<String>,
        /// Packages beyond the minimal base (comma-separated; default: cron,
        /// ca-certificates, openssh-sftp-server, procps, iproute2, less, nano).
        #[arg(long, value_delimiter = ',')]
        include: Vec<String>,
        /// The init system its containers boot, added to the packages: `systemd`
        /// (systemd-sysv; the default without --include), `sysvinit` (sysvinit-core) or
        /// `minimal` (none: Acetate's minimal init).
        #[arg(long)]
        init: Option<acetate_engine::spec::Init>,
    },
}

fn print_one(out: &Output, t: &TemplateInfo) {
    out.print(t, |t| {
        println!(
            "template {} ready ({} entries, {} of files)",
            t.name,
            t.entries,
            format_bytes(t.bytes)
        )
    });
}

pub fn run(engine: &Engine, out: &Output, cmd: TemplateCmd) -> Result<i32> {
    match cmd {
        TemplateCmd::List => {
            let list = engine.templates()?;
            out.print(&list, |list| {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.os.clone().unwrap_or_else(|| "-".into()),
                            t.init.as_str().to_string(),
                            t.source.clone(),
                            t.entries.to_string(),
                            format_bytes(t.bytes),
                            t.containers.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "NAME",
                        "OS",
                        "INIT",
                        "SOURCE",
                        "ENTRIES",
                        "SIZE",
                        "CONTAINERS",
                    ],
                    &rows,
                );
            });
        }
        TemplateCmd::Build(BuildCmd::Host) => print_one(out, &engine.build_host_template()?),
        TemplateCmd::Build(BuildCmd::Debian {
            suite,
            name,
            mirror,
            include,
            init,
        }) => {
            let name = name.unwrap_or_else(|| format!("debian-{suite}"));
            let build = acetate_engine::debian::DebianBuild {
                suite,
                mirror,
                include,
                init,
            };
            print_one(out, &engine.build_debian(&name, &build)?)
        }
        TemplateCmd::Import {
            name,
            path,
            allow_setuid,
            fit,
        } => {
            let opts = acetate_engine::template::ImportOptions {
                allow_setid: allow_setuid,
                fit,
                ..Default::default()
            };
            print_one(out, &engine.import_template_with(&name, &path, &opts)?)
        }
        TemplateCmd::Delete { name } => {
            engine.delete_template(&name)?;
            if !out.json {
                println!("template {name} deleted");
            }
        }
    }
    Ok(0)
}
